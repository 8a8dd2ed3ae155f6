"""Filters over the model's feedback before anyone reads it: no hidden test quoted, no raw
HTML or images (quotes of the rubric and the system prompt: review.consistency). Pure."""

from __future__ import annotations

import json
import re

from runner_image.contract import Bundle, TestCase

# Leak filter: a hidden value (or a line of one) this long or longer must not appear in stored
# feedback unless it is also in something the student already sees.
MIN_LEAK_CHARS = 3
MIN_LEAK_LINE_CHARS = 6


def io_of(spec: TestCase) -> tuple[str, str]:
    """A test's input and expected answer as text, for io and call tests alike."""
    if spec.call is not None:
        return spec.call, json.dumps(spec.expected)
    return spec.stdin, spec.expected_stdout


def _squeezed(text: str) -> str:
    return " ".join(text.split()).casefold()


def _fragments(value: str) -> set[str]:
    whole = _squeezed(value)
    found = {whole} if len(whole) >= MIN_LEAK_CHARS else set()
    lines = (_squeezed(line) for line in value.splitlines())
    return found | {line for line in lines if len(line) >= MIN_LEAK_LINE_CHARS}


def hidden_leak(feedback: str, bundle: Bundle) -> str | None:
    """The name of a hidden test whose input or expected output (or a line of one) the
    feedback quotes, or None. Text the student already sees (the assignment, public tests,
    their own code) does not count: quoting it reveals nothing."""
    seen_by_student = _squeezed(
        "\n".join(
            [
                bundle.assignment.title,
                bundle.assignment.description,
                bundle.code,
                *(part for spec in bundle.tests if not spec.hidden for part in io_of(spec)),
            ]
        )
    )
    said = _squeezed(feedback)
    for spec in bundle.tests:
        if not spec.hidden:
            continue
        for value in io_of(spec):
            for fragment in _fragments(value):
                if fragment in seen_by_student:
                    continue
                if re.search(rf"(?<!\w){re.escape(fragment)}(?!\w)", said):
                    return spec.name
    return None


_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")


def plain_markdown(feedback: str) -> str:
    """The model's markdown without raw HTML or images: text that a prompt injection steers
    should not become markup or a tracking pixel in the student's or instructor's UI."""
    return _IMAGE.sub("", _HTML_TAG.sub("", feedback))
