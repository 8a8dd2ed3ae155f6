"""Deterministic detection of text aimed at an LLM grader inside a submission.

A hit tags the submission `suspected_injection` for the instructor only; it never changes the
score (the tests own it) and is never shown to the student as an accusation. Detection is
pure regexes over normalised text, so it is reproducible and cannot itself be talked out of
anything, unlike asking the model.

Normalisation defeats the cheap disguises: NFKC (fullwidth and other compatibility forms),
Unicode tag characters decoded (invisible "ASCII smuggling" that models still read), zero-width
and bidi controls dropped, accents stripped, case folded, common Cyrillic/Greek look-alikes
mapped to Latin. Patterns then run over three views: the normalised text, its words (any run
of non-alphanumerics is one space: `ignore_previous-instructions` reads as words), and its
letters squashed together (`i g n o r e  p.r.e.v.i.o.u.s ...`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

INSTRUCTOR_TAG = "suspected_injection"
MAX_SCANNED_CHARS = 256 * 1024

# Lower-case look-alikes (after case folding) of Latin letters, the usual homoglyph swaps:
# Cyrillic, Latin script g, Armenian vo, then Greek, each mapped to the Latin letter under it.
_CONFUSABLES = str.maketrans(
    "\u0430\u0432\u0435\u0451\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443"
    "\u0445\u0456\u0457\u0458\u0455\u0501\u04bb\u04cf\u0261\u0578\u03b1\u03b2"
    "\u03b5\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7",
    "abeekmhopctyxiijsdhlgnabeikvoptux",
)
# Invisible characters that are not format (Cf) characters: variation selectors, fillers.
_INVISIBLE = re.compile("[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0]")
_TAG_CHARS = re.compile("[\U000e0000-\U000e007f]")


def _decode_tag(match: re.Match[str]) -> str:
    code = ord(match.group()) - 0xE0000
    return chr(code) if 0x20 <= code < 0x7F else ""


def normalise(text: str) -> str:
    """The text as a model would read it, with the disguises taken off."""
    text = _TAG_CHARS.sub(_decode_tag, text[:MAX_SCANNED_CHARS])
    text = unicodedata.normalize("NFKC", text)
    text = "".join(
        char
        for char in unicodedata.normalize("NFKD", text)
        if unicodedata.category(char) not in ("Cf", "Mn")
    )
    text = _INVISIBLE.sub("", text)
    return text.casefold().translate(_CONFUSABLES)


def _words(text: str) -> str:
    return re.sub(r"[^a-z0-9%]+", " ", text).strip()


def _squashed(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text)


_ADDRESSEE = (
    r"(ai|llm|a ?i grader|grader|grading (model|system|bot|ai|assistant)|autograder|"
    r"auto grader|evaluator|examiner|assistant|language model|model|chatgpt|gpt\w*|"
    r"claude|gemini|bot|reviewer)"
)
_PRIOR = r"(previous|prior|above|earlier|preceding|former|original|system|grading|grader|your)"
_ORDERS = r"(instructions?|prompts?|rules|directions|guidelines|messages|context)"
_REWARD = (
    r"(the |a )?(full|maximum|max|perfect|100 ?%|100 percent|10 10|100 100|an a|a 10)"
    r" ?(marks?|scores?|points|credits?|grades?)?"
)
_WORK = r"(submission|solution|code|program|answer|work|assignment|homework)"


@dataclass(frozen=True)
class Rule:
    name: str
    view: str  # "text", "words" or "squashed"
    pattern: re.Pattern[str]


RULES: tuple[Rule, ...] = (
    Rule(
        "override_instructions",
        "words",
        re.compile(
            rf"\b(ignore|disregard|forget|override|bypass)"
            rf"( (all|any|every|the|of|these|those|my|your))* ({_PRIOR} )+{_ORDERS}\b"
            rf"|\b(ignore|disregard|forget) (all|any|every|your) {_ORDERS}\b"
            r"|\bnew system (instructions?|prompts?)\b|\bsystem prompt\b"
            r"|\b(here are|these are|follow) (your|the|these) new instructions\b"
        ),
    ),
    Rule(
        "asks_for_marks",
        "words",
        re.compile(
            rf"\b(give|award|grant|assign)( (me|us|this|it|him|her|the student|the author|my"
            rf"|{_WORK}))+( \w+){{0,2}} {_REWARD}"
            rf"|\b(this|my) {_WORK}( \w+){{0,3}} (gets?|receives?|be given|be awarded|deserves?"
            rf"|earns?|merits?)( \w+){{0,2}} {_REWARD}"
            rf"|\b(grade|score|rate|evaluate|mark) (this|it|me|my)( {_WORK})? as"
            r" (correct|passed|passing|accepted|perfect|flawless|excellent)\b"
        ),
    ),
    Rule(
        "addresses_the_grader",
        "words",
        re.compile(
            rf"\b(dear|attention|hey|hello|hi)( the| my)? {_ADDRESSEE}\b"
            rf"|\b(note|message|instructions?|request|memo|hint) (to|for)"
            rf" (the |my |any |our |an? )?{_ADDRESSEE}\b"
        ),
    ),
    Rule(
        "role_play",
        "words",
        re.compile(
            rf"\b(you are|you re|youre|u r) (now |no longer |actually )?(\w+ ){{0,3}}{_ADDRESSEE}\b"
            rf"|\b(act|behave|respond|answer) as (if you were |if you are )?(a |an |the )?"
            rf"(\w+ )?{_ADDRESSEE}\b"
            rf"|\bpretend (you are|you re|that you are|that you re)\b"
            rf"|\bpretend to be (a |an |the )?(\w+ )?{_ADDRESSEE}\b"
            r"|\brole ?play\b|\bjailbr[oe]a?k|\bdo anything now\b|\bdan mode\b"
        ),
    ),
    Rule(
        "fake_grader_output",
        "text",
        re.compile(
            r"rubric_score|fail_tags|suspected_injection|instructor_tags"
            r"|\"verdict\"\s*:\s*\"accepted\"|\"status\"\s*:\s*\"graded\""
            r"|\"score\"\s*:\s*\"?100\b"
            r"|\b(score|grade|marks?|result)\s*[:=]\s*\"?100\s*(/|out of)\s*100\b"
        ),
    ),
    Rule(
        "chat_markup",
        "text",
        re.compile(
            r"<\|(im_start|im_end|system|user|assistant|endoftext|begin_of_text|"
            r"start_header_id|end_header_id|eot_id)\|>|\[/?inst\]|<</?sys>>"
            r"|^\s*(#|//|--|/?\*+|;)?\s*(###\s*)?(system|assistant|developer)\s*"
            r"(message|prompt)?\s*:\s*(you|ignore|the|this|from|new)\b",
            re.MULTILINE,
        ),
    ),
    Rule(
        "fake_data_boundary",
        "words",
        re.compile(
            r"\b(begin|end)( of)? untrusted\b|\bend of (the )?(student|untrusted|submitted)"
            r" (code|data|submission|input|block)\b|\bstudent code (ends|is over)\b"
        ),
    ),
    Rule(
        "disguised_command",
        "squashed",
        re.compile(
            r"(ignore|disregard|forget)(all|any|the|your)*(previous|prior|above|earlier)"
            r"(instructions|prompts|rules)"
            r"|(gives?|awards?|grants?)(me|this|it|thestudent|thissubmission|thissolution)?"
            r"(fullmarks|fullscore|fullpoints|fullcredit|perfectscore|100points|100percent)"
            r"|(gives?|awards?|grants?)(me|this|it|thestudent|thissubmission|thissolution)"
            r"(the)?(maximum|max)(score|marks|points|grade)"
        ),
    ),
)


def detect_injection(*texts: str) -> list[str]:
    """The names of the rules that match any of `texts` (code, program output), sorted."""
    hits: set[str] = set()
    for raw in texts:
        if not raw:
            continue
        text = normalise(raw)
        views = {"text": text, "words": _words(text), "squashed": _squashed(text)}
        hits.update(rule.name for rule in RULES if rule.pattern.search(views[rule.view]))
    return sorted(hits)
