"""Checks on the model's text before a student reads it: it must not contradict the run
(claim success, correctness or a passing test while tests failed, or a failing test on a
passing submission), must not state a score (the headline gives the real one), and must not
quote what only the platform and the instructor see (the system prompt, the rubric). Pure.

A failed check discards the whole answer for the deterministic feedback: rewriting a
model's sentence would put words in its mouth. The checks are phrase patterns over the
prose (code spans and blocks removed, so `score = 100` in code is not a score), each guarded
against negation and hypotheticals ("not all tests pass", "once every test passes"); a
rare false positive only costs the model's prose, never a point.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from runner_image.contract import Bundle, Verdict
from runner_image.grading.judge import Judgement
from runner_image.review.filters import io_of

MIN_QUOTE_WORDS = 8
# What of each text the student sees is searched for a quote: a rubric sentence past the
# first 256 KiB of a test's input is no excuse worth reading megabytes for.
MAX_SEEN_CHARS = 256 * 1024

CLAIMS_SUCCESS = "claims_success"
CONTRADICTS_TEST = "contradicts_test"
STATES_SCORE = "states_score"
QUOTES_SYSTEM_PROMPT = "quotes_system_prompt"
QUOTES_RUBRIC = "quotes_rubric"


@dataclass(frozen=True)
class Inconsistency:
    """Why an answer was discarded: `reason` is a code for statistics, `detail` a sentence
    for staff."""

    reason: str
    detail: str


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_BACKTICKS = re.compile(r"`+")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")

# Words before a claim that make it something else: negated, conditional, future, partial.
_BEFORE = re.compile(
    r"\b(not|no|never|none|nor|neither|without|once|when|whenever|if|unless|until|after|"
    r"before|would|will|should|could|might|may|must|can|make|makes|making|so that|almost|"
    r"nearly|most|some|few|several|half|yet|expect|expects|expected|want|wants|needs?|"
    r"ensure|check|verify|aim|goal|hope)\b|n't\b"
)
# Words after a claim that limit it to part of the run or make it hypothetical.
_AFTER = re.compile(
    r"\b(except|apart from|other than|save for|but (not|one|two|three|for)|besides|once|if|"
    r"when|after|as soon as|only (for|on|with|when))\b"
)

_TESTS = r"(tests?|test cases?|cases|checks)"
_NUMBER = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten)"
_WORK = r"(code|solution|program|submission|implementation|answer|function|work)"
# A claim about some inputs only: "correct for positive numbers".
_PARTLY = r" (for|on|with|when|if|except|but|only|in (the|some|most)|up to|until|as long)\b"
_SUCCESS_CLAIMS = tuple(
    re.compile(pattern)
    for pattern in (
        rf"\ball (of )?(the |your |{_NUMBER} )*{_TESTS} (now )?(pass|passed|succeed|succeeded|"
        r"are passing|are green|went through|run successfully)\b",
        rf"\b(pass(es|ed)?|succeed(s|ed)? (on|in)|clears?) (all|every|each)( of)?( the| your)?"
        rf"( {_NUMBER})? {_TESTS}\b",
        r"\bevery (single )?test (now )?(passes|passed|succeeds|succeeded)\b",
        rf"\b(zero|no) (failing {_TESTS}|failures|failed {_TESTS}|{_TESTS} fail(ed)?)\b",
        rf"\b(your|the|this) {_WORK}( \w+)? (is|looks|seems|appears)( to be)?"
        r"( (fully|completely|entirely|totally|100 ?%|absolutely|perfectly))?"
        r" (correct|perfect|flawless|right|bug ?free|error ?free|impeccable)\b"
        rf"(?!{_PARTLY})",
        rf"\b(perfect|flawless|impeccable) {_WORK}\b",
        rf"\b(your|the|this) {_WORK} (works|runs) (correctly|perfectly|flawlessly|as expected)\b"
        rf"(?!{_PARTLY})",
        r"\b(there are|has|contains|with|you have) no (bugs|mistakes)\b",
    )
)
_FAILURE_CLAIMS = (
    re.compile(
        rf"\b({_NUMBER}|some|several|a few|many|the|these|those) (of (the|your) )?{_TESTS}"
        r" (fail|fails|failed|are failing|did not pass|didn't pass|do not pass|don't pass)\b"
    ),
)
_SCORE_STATEMENTS = tuple(
    re.compile(pattern)
    for pattern in (
        r"\b\d+(\.\d+)?\s*(/|out of)\s*\d+(\.\d+)?\s*(points|marks|pts|score)\b",
        r"(?<![\w/.])\d+(\.\d+)?\s*/\s*(10|20|100)\b(?!\s*(tests?|test cases?|cases|checks))",
        r"\b(full|maximum|max|perfect|top) (marks|score|credit|points|grade)\b",
    )
)
# Score words an assignment about scores (a game's points, a grade book) uses for its data.
_DOMAIN_SCORE_STATEMENTS = tuple(
    re.compile(pattern)
    for pattern in (
        r"\b(your|a|the|final|total|overall)( final| total| overall)? (score|grade|mark)s?"
        r"\s*(of|is|:|=|would be|will be)\s*\d",
        r"\b(get|gets|got|earn|earns|earned|deserve|deserves|receive|receives|received|award|"
        r"awarded|scored?|worth)\s+(\w+\s+){0,2}\d+(\.\d+)?\s*(points|marks|pts|%|percent)\b",
    )
)
# Case-sensitive: a letter grade is a capital.
_LETTER_GRADE = re.compile(
    r"\b(?i:grade|deserves?|earns?|gets?|receives?|awarded)\s+(?i:of\s+|is\s+|an?\s+)?"
    r"[A-F][+-]?(?![\w])"
)
_DOMAIN_WORDS = re.compile(r"\b(score|scores|grade|grades|mark|marks|points)\b")


def _without_code_spans(text: str) -> str:
    """The text with each code span (a run of backticks up to the next run of the same
    length, as in Markdown) made a space. Linear: a regex with a backreference takes cubic
    time on a text of backticks, which a steered model can send."""
    runs = list(_BACKTICKS.finditer(text))
    by_length: dict[int, list[int]] = {}
    for index, run in enumerate(runs):
        by_length.setdefault(len(run.group()), []).append(index)
    kept, position, index = [], 0, 0
    while index < len(runs):
        opening = runs[index]
        same = by_length[len(opening.group())]
        after = bisect.bisect_right(same, index)
        if after == len(same):
            index += 1
            continue
        closing = same[after]
        kept += [text[position : opening.start()], " "]
        position, index = runs[closing].end(), closing + 1
    kept.append(text[position:])
    return "".join(kept)


def _without_fenced_blocks(text: str) -> str:
    """The text with each fenced code block (``` or ~~~, up to a closing fence at least as
    long, or the end) made empty lines. Line by line, so linear in the text."""
    kept: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            opening = _FENCE.match(line)
            if opening:
                fence = opening.group(1)
                line = ""
        else:
            closing = line.strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                fence = None
            line = ""
        kept.append(line)
    return "\n".join(kept)


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans, whose contents are code."""
    return _without_code_spans(_without_fenced_blocks(text))


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _claims(pattern: re.Pattern[str], sentence: str) -> Iterator[str]:
    """The matches of `pattern` in `sentence` that are plain assertions."""
    for match in pattern.finditer(sentence):
        clause = re.split(r"[,(]", sentence[: match.start()])[-1]
        if _BEFORE.search(clause) or _AFTER.search(sentence[match.end() :]):
            continue
        yield match.group(0)


def _first_claim(patterns: tuple[re.Pattern[str], ...], text: str) -> str | None:
    for sentence in _sentences(text.casefold()):
        for pattern in patterns:
            for claim in _claims(pattern, sentence):
                return claim
    return None


def _test_claims(text: str, judgement: Judgement) -> str | None:
    """A failing test said to pass, or a passing test said to fail."""
    said = text.casefold()
    for row in judgement.tests:
        name = re.escape(row.name.casefold())
        name = rf"(`{name}`|\b{name}\b)" if len(row.name) >= 3 else f"`{name}`"
        if row.verdict == Verdict.ACCEPTED:
            claim = rf"{name}( test)? (now )?(fails|failed|is failing|crashes|times out)\b"
        else:
            claim = rf"{name}( test)? (now )?(passes|passed|succeeds|succeeded|is accepted)\b"
        for sentence in _sentences(said):
            for found in _claims(re.compile(claim), sentence):
                return f"says {found!r}, but `{row.name}` is {row.verdict}"
    return None


_EXPLANATION_PASSES = re.compile(
    r"^(this test|the test|it)( now)? (passes|passed|succeeds|succeeded|is accepted)\b"
    r"|\b(output|answer|result) (is|was) (correct|right|as expected)\b"
    r"|\b(prints|outputs|returns|produces|gives) the (correct|right|expected) "
    r"(answer|output|result|value)\b"
)


def _explanation_claims(name: str, explanation: str) -> str | None:
    for sentence in _sentences(prose(explanation).casefold()):
        for found in _claims(_EXPLANATION_PASSES, sentence):
            return f"explains the failing test `{name}` with {found!r}"
    return None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.casefold())


def _shingles(text: str, size: int = MIN_QUOTE_WORDS) -> set[tuple[str, ...]]:
    words = _words(text)
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def shared_run(said: str, secret: str, seen: Iterable[str] = ()) -> str | None:
    """A run of `MIN_QUOTE_WORDS` words of `secret` that `said` repeats, unless the student
    sees it anyway in one of the `seen` texts; None when there is none. The seen texts
    (up to megabytes of test data) are read only when there is a candidate."""
    quoted = _shingles(secret) & _shingles(said)
    if not quoted:
        return None
    visible = [f" {' '.join(_words(text[:MAX_SEEN_CHARS]))} " for text in seen]
    for run in sorted(quoted):
        phrase = f" {' '.join(run)} "
        if not any(phrase in text for text in visible):
            return phrase.strip()
    return None


def student_visible(bundle: Bundle) -> Iterator[str]:
    """What the student sees anyway: the assignment, their code, the public tests. Quoting
    it reveals nothing."""
    yield bundle.assignment.title
    yield bundle.assignment.description
    yield bundle.code
    for spec in bundle.tests:
        if not spec.hidden:
            yield from io_of(spec)


def _score_statement(text: str, bundle: Bundle) -> str | None:
    """A score or grade the text states. An assignment whose own subject is scores or
    grades only has the unmistakable forms checked ("85/100", "full marks")."""
    plain = prose(text)
    assignment = f"{bundle.assignment.title}\n{bundle.assignment.description}".casefold()
    about_scores = bool(_DOMAIN_WORDS.search(assignment))
    patterns = _SCORE_STATEMENTS if about_scores else _SCORE_STATEMENTS + _DOMAIN_SCORE_STATEMENTS
    for pattern in patterns:
        match = pattern.search(plain.casefold())
        if match:
            return match.group(0)
    match = None if about_scores else _LETTER_GRADE.search(plain)
    return match.group(0) if match else None


def inconsistency(
    feedback: str,
    explanations: dict[str, str],
    bundle: Bundle,
    judgement: Judgement,
    system_prompt: str,
) -> Inconsistency | None:
    """The first reason to discard the answer (`feedback` and the explanations of failing
    tests, by test name), or None when a student may read it."""
    texts = [feedback, *explanations.values()]
    everything = "\n".join(texts)
    quoted = shared_run(everything, system_prompt, student_visible(bundle))
    if quoted:
        return Inconsistency(QUOTES_SYSTEM_PROMPT, f"quotes the system prompt ({quoted!r})")
    quoted = shared_run(everything, bundle.feedback.rubric or "", student_visible(bundle))
    if quoted:
        return Inconsistency(QUOTES_RUBRIC, f"quotes the rubric ({quoted!r})")
    for text in texts:
        stated = _score_statement(text, bundle)
        if stated:
            return Inconsistency(STATES_SCORE, f"states a score ({stated!r})")
    failed = [row for row in judgement.tests if row.verdict != Verdict.ACCEPTED]
    if failed or judgement.verdict == Verdict.COMPILE_ERROR:
        for text in texts:
            claim = _first_claim(_SUCCESS_CLAIMS, prose(text))
            if claim:
                what = f"{len(failed)} test(s)" if failed else "the build"
                return Inconsistency(
                    CLAIMS_SUCCESS, f"claims success ({claim!r}) while {what} failed"
                )
    elif judgement.tests:
        for text in texts:
            claim = _first_claim(_FAILURE_CLAIMS, prose(text))
            if claim:
                return Inconsistency(
                    CONTRADICTS_TEST, f"claims a failure ({claim!r}) while every test passed"
                )
    for text in texts:
        contradiction = _test_claims(text, judgement)
        if contradiction:
            return Inconsistency(CONTRADICTS_TEST, contradiction)
    for name, explanation in explanations.items():
        contradiction = _explanation_claims(name, explanation)
        if contradiction:
            return Inconsistency(CONTRADICTS_TEST, contradiction)
    return None
