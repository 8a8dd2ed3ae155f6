"""The tag vocabulary: the verdict tags come from execution alone (grading.judge); the model
may only suggest the feedback tags below and the assignment's own, so it can never claim a
verdict. Even those are kept only with evidence from the run (review.evidence)."""

from __future__ import annotations

import re

from runner_image.contract import Bundle, tag_key
from runner_image.grading.judge import VERDICT_TAGS

FEEDBACK_TAGS = ("edge_case", "off_by_one", "inefficient", "style")
TAG_MEANINGS = {
    "edge_case": "fails on boundary or unusual inputs (empty, zero, negative, very large)",
    "off_by_one": "a loop bound or index is off by one",
    "inefficient": "too slow or too memory-hungry for large inputs",
    "style": "hard to read: naming, structure, duplication",
}
MAX_ASSIGNMENT_TAGS = 20

_TAG_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def assignment_tags(bundle: Bundle) -> list[str]:
    """The assignment's own tags (`feedback.tags`), tidied; bad entries dropped."""
    tags = {tag_key(t) for t in bundle.feedback.tags}
    allowed = {*VERDICT_TAGS, *FEEDBACK_TAGS}
    return sorted(t for t in tags if _TAG_NAME.match(t) and t not in allowed)[:MAX_ASSIGNMENT_TAGS]


def suggestible_tags(bundle: Bundle) -> list[str]:
    """The tags the model is offered: only those the run could show evidence of
    (review.evidence). Tags about a run need tests; `style` needs a rubric to judge by."""
    has_rubric = bool((bundle.feedback.rubric or "").strip())
    offered = [tag for tag in FEEDBACK_TAGS if (has_rubric if tag == "style" else bundle.tests)]
    return offered + (assignment_tags(bundle) if bundle.tests else [])


def kept_tags(suggested: list[str], allowed: list[str]) -> list[str]:
    """The suggested tags that are in the vocabulary; anything else is dropped, silently."""
    return sorted({t.strip().lower() for t in suggested} & set(allowed))
