"""Build once, run every test in the sandbox, judge. The expected outputs stay in this
(trusted) process: the sandboxed program only ever receives a test's input."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from runner_image.bundle import Bundle
from runner_image.judge import Judgement, TestOutcome, compile_failure, judge, judge_execution
from runner_image.languages import LANGUAGES, language_problem
from runner_image.sandbox import Limits, execute

COMPILE_TIME_LIMIT_MS = 10_000


def _write_source(workdir: Path, filename: str, code: str) -> None:
    """O_EXCL|O_NOFOLLOW: never write through anything already at that path."""
    fd = os.open(workdir / filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as source:
        source.write(code)


def run_limits(bundle: Bundle) -> Limits:
    return Limits(
        cpu_ms=bundle.time_limit_ms,
        wall_ms=bundle.time_limit_ms * 2 + 500,
        memory_mb=bundle.memory_limit_mb,
    )


def grade(bundle: Bundle) -> Judgement:
    problem = language_problem(bundle.language)
    spec = LANGUAGES.get(bundle.language)
    if problem or spec is None:
        outcomes = [TestOutcome(t, "internal_error", None, problem) for t in bundle.tests]
        return judge(bundle, outcomes, "compile_error")
    workdir = Path(tempfile.mkdtemp(prefix="cloudemy-run-"))
    try:
        _write_source(workdir, spec.source_file, bundle.code)
        if spec.compile_argv:
            build = execute(
                spec.compile_argv,
                b"",
                workdir,
                Limits(
                    cpu_ms=COMPILE_TIME_LIMIT_MS, wall_ms=COMPILE_TIME_LIMIT_MS * 2, memory_mb=1024
                ),
            )
            if build.exit_code != 0:
                message = (build.stderr or build.stdout).decode("utf-8", "replace")
                message = message.replace(str(workdir) + "/", "")
                return judge(bundle, compile_failure(bundle.tests, message), spec.syntax_error_tag)
        limits = run_limits(bundle)
        outcomes = [
            judge_execution(
                test,
                execute(spec.run_argv, test.stdin.encode(), workdir, limits),
                bundle.time_limit_ms,
                bundle.memory_limit_mb,
            )
            for test in bundle.tests
        ]
        return judge(bundle, outcomes, spec.syntax_error_tag)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
