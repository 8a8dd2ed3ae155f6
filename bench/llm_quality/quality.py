"""How good is a model's feedback? For each submission of the labelled set (cases.py: a known
bug each, five languages), ask the configured model for feedback exactly as the runner does
(same prompt, schema and vetting), then score what a student would read:

- named: the failing tests the model explains (or names in backticks), of those that ran
  and failed; a discarded answer names none;
- cause: the feedback names the bug's cause (any of the case's patterns).

The model is given recorded executions (recorded.json), not fresh ones: the model only ever
sees the outcomes, so grading the 22 programs again (javac four times, a quadratic C++ run
into its time limit) would cost seconds of CPU for the same prompt. `--record` grades them
for real with the runner's grader and checks that each fails exactly its labelled tests.

    .venv/bin/python bench/llm_quality/quality.py            # LLM_API_KEY set: that model
    .venv/bin/python bench/llm_quality/quality.py --stand-in explain   # a local stand-in
    .venv/bin/python bench/llm_quality/quality.py --record   # re-grade the set (sandbox)

With LLM_API_KEY set, LLM_BASE_URL and LLM_MODEL choose the provider and the model, as for
the backend. Without it, the stand-in answers: `explain` (honest, reads the outcomes) or one
of the adversarial modes of tests/llm_fake_server.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.llm_quality.cases import CASES, Case  # noqa: E402
from runner_image.contract import Bundle, Status, TestResult, Verdict  # noqa: E402
from runner_image.grading.judge import Judgement  # noqa: E402
from runner_image.review.llm import LlmReply, request_feedback  # noqa: E402
from runner_image.review.prompt import explained_tests  # noqa: E402
from runner_image.review.vetting import vet  # noqa: E402
from runner_image.settings import RunnerSettings  # noqa: E402
from tests.llm_fake_server import MODES, explaining_model, fake_chat_server  # noqa: E402

RECORDED = Path(__file__).with_name("recorded.json")
STAND_INS = {"explain": explaining_model, **MODES}


def bundle_of(case: Case) -> Bundle:
    return Bundle(
        submission_id=f"quality-{case.id}",
        language=case.language,
        code=case.code,
        tests=case.tests,
        time_limit_ms=case.time_limit_ms,
        assignment={"title": case.language, "description": case.task},
    )


def _judgement_json(judgement: Judgement) -> dict[str, Any]:
    return {
        "status": judgement.status,
        "verdict": judgement.verdict,
        "score": judgement.score,
        "max_score": judgement.max_score,
        "fail_tags": judgement.fail_tags,
        "tests": [row.model_dump(mode="json") for row in judgement.tests],
        "metrics": judgement.metrics,
        "build_error": judgement.build_error,
    }


def _judgement(data: dict[str, Any]) -> Judgement:
    return Judgement(
        status=Status(data["status"]),
        verdict=None if data["verdict"] is None else Verdict(data["verdict"]),
        score=data["score"],
        max_score=data["max_score"],
        fail_tags=list(data["fail_tags"]),
        tests=[TestResult.model_validate(row) for row in data["tests"]],
        metrics=dict(data["metrics"]),
        build_error=data["build_error"],
    )


def label_problem(case: Case, judgement: Judgement) -> str | None:
    """Why the recorded run does not show the labelled bug, or None."""
    failed = {row.name for row in judgement.tests if row.verdict != Verdict.ACCEPTED}
    if failed != case.failing:
        return f"{case.id}: fails {sorted(failed)}, labelled {sorted(case.failing)}"
    if set(explained_tests(judgement)) != case.failing:
        return f"{case.id}: a labelled test did not run"
    return None


def record() -> dict[str, Judgement]:
    """Grade every case with the runner's grader, in the sandbox."""
    from runner_image.grading.grader import grade
    from runner_image.sandbox.isolation import probe_isolation

    isolation = probe_isolation()
    return {case.id: grade(bundle_of(case), isolation) for case in CASES}


def load_recorded(path: Path = RECORDED) -> dict[str, Judgement]:
    data = json.loads(path.read_text())
    return {case_id: _judgement(judgement) for case_id, judgement in data.items()}


@dataclass(frozen=True)
class CaseScore:
    case: Case
    status: str
    failing: int
    named: int
    cause: bool
    tags: list[str]
    dropped_tags: list[str]


def score_reply(case: Case, judgement: Judgement, reply: LlmReply) -> CaseScore:
    """What a student reads of the model, scored against the label."""
    failing = explained_tests(judgement)
    answer = reply.answer
    if answer is None:
        return CaseScore(case, reply.status, len(failing), 0, False, [], [])
    explained = {item.test for item in answer.explanations}
    named = [t for t in failing if t in explained or f"`{t}`" in answer.feedback]
    # A test's name is not a cause ("`empty` fails" says nothing of why).
    text = "\n".join(answer.texts)
    for test in case.tests:
        text = re.sub(rf"`?{re.escape(test.name)}`?", " ", text)
    cause = any(re.search(pattern, text, re.IGNORECASE) for pattern in case.patterns)
    return CaseScore(
        case, reply.status, len(failing), len(named), cause, reply.tags, sorted(reply.dropped_tags)
    )


def evaluate(
    settings: RunnerSettings, judgements: dict[str, Judgement], cases: Sequence[Case] = CASES
) -> list[CaseScore]:
    scores = []
    for case in cases:
        bundle, judgement = bundle_of(case), judgements[case.id]
        reply = vet(request_feedback(bundle, judgement, settings), bundle, judgement)
        scores.append(score_reply(case, judgement, reply))
    return scores


def _settings(base_url: str | None, key: str, model: str, timeout: float) -> RunnerSettings:
    return RunnerSettings.from_env(
        {},
        submission_id="quality",
        redis_url="redis://127.0.0.1:1/0",
        backend_internal_url="http://127.0.0.1:1/internal",
        internal_result_token="unused",
        llm_api_key=key,
        llm_base_url=base_url,
        llm_model=model,
        llm_timeout_seconds=timeout,
        llm_max_retries=1,
    )


@contextmanager
def model_settings(stand_in: str | None, timeout: float) -> Iterator[tuple[str, RunnerSettings]]:
    """The configured model (LLM_API_KEY set, no --stand-in), else a stand-in served here."""
    key = os.environ.get("LLM_API_KEY")
    if key and stand_in is None:
        model = os.environ.get("LLM_MODEL", "gpt-4o-mini")
        yield model, _settings(os.environ.get("LLM_BASE_URL"), key, model, timeout)
        return
    name = stand_in or "explain"
    with fake_chat_server(default=STAND_INS[name]) as server:
        yield f"stand-in:{name}", _settings(server.base_url, "stand-in", name, timeout)


def summary(scores: list[CaseScore]) -> dict[str, Any]:
    failing = sum(s.failing for s in scores)
    named = sum(s.named for s in scores)
    return {
        "cases": len(scores),
        "languages": len({s.case.language for s in scores}),
        "answers_kept": sum(s.status == "ok" for s in scores),
        "failing_tests": failing,
        "failing_tests_named": named,
        "named_rate": round(named / failing, 3) if failing else 0.0,
        "cases_all_named": sum(s.failing > 0 and s.named == s.failing for s in scores),
        "cases_right_cause": sum(s.cause for s in scores),
        "cause_rate": round(sum(s.cause for s in scores) / len(scores), 3) if scores else 0.0,
        "statuses": dict(Counter(s.status for s in scores)),
        "tags_kept": sum(len(s.tags) for s in scores),
        "tags_dropped": sum(len(s.dropped_tags) for s in scores),
    }


def report(model: str, scores: list[CaseScore]) -> str:
    lines = [f"model: {model}", ""]
    lines.append(f"{'case':38} {'language':10} {'llm':14} {'named':>7}  cause  tags")
    for s in scores:
        tags = ", ".join(s.tags) + (
            f" (dropped {', '.join(s.dropped_tags)})" * bool(s.dropped_tags)
        )
        lines.append(
            f"{s.case.id:38} {s.case.language:10} {s.status:14} {s.named:>3}/{s.failing:<3}"
            f"  {'yes' if s.cause else 'no ':5}  {tags}"
        )
    total = summary(scores)
    lines += [
        "",
        f"failing tests named: {total['failing_tests_named']}/{total['failing_tests']} "
        f"({total['named_rate']:.0%}); cases with every failing test named: "
        f"{total['cases_all_named']}/{total['cases']}",
        f"right cause: {total['cases_right_cause']}/{total['cases']} ({total['cause_rate']:.0%})",
        f"answers kept: {total['answers_kept']}/{total['cases']} {total['statuses']}; "
        f"tags kept {total['tags_kept']}, dropped {total['tags_dropped']}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true", help="re-grade the set (sandbox)")
    parser.add_argument("--stand-in", choices=sorted(STAND_INS), help="a local stand-in model")
    parser.add_argument("--timeout", type=float, default=60.0, help="LLM timeout per call, s")
    parser.add_argument("--json", type=Path, help="also write the scores here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.record:
        judgements = record()
        problems = [label_problem(c, judgements[c.id]) for c in CASES]
        if any(problems):
            print("\n".join(p for p in problems if p), file=sys.stderr)
            return 1
        data = {case_id: _judgement_json(j) for case_id, j in judgements.items()}
        RECORDED.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(data)} graded cases in {RECORDED.relative_to(ROOT)}")
        return 0
    judgements = load_recorded()
    problems = [label_problem(c, judgements[c.id]) for c in CASES]
    if any(problems):
        print("\n".join(p for p in problems if p), file=sys.stderr)
        return 1
    with model_settings(args.stand_in, args.timeout) as (model, settings):
        scores = evaluate(settings, judgements)
    print(report(model, scores))
    if args.json:
        args.json.write_text(json.dumps({"model": model, **summary(scores)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
