"""Build once, run every test in the sandbox, judge. The expected outputs stay in this
(trusted) process: the sandboxed program only ever receives a test's input."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from runner_image.bundle import Bundle, TestSpec
from runner_image.isolation import Isolation
from runner_image.judge import Judgement, TestOutcome, compile_failure, judge, judge_execution
from runner_image.languages import LANGUAGES, LanguageSpec, language_problem
from runner_image.sandbox import Limits, execute

COMPILE_TIME_LIMIT_MS = 20_000

# Runs a `call` test: the submission's prints go to stderr, and only the returned value, as
# JSON, to stdout. The call expression is the test's input, never its expected answer.
CALL_HARNESS = """\
import json, runpy, sys
sys.stdout = sys.stderr
namespace = runpy.run_path("main.py", run_name="submission")
value = eval(sys.argv[1], namespace)
sys.__stdout__.write(json.dumps(value))
"""


def _write_source(workdir: Path, filename: str, code: str) -> None:
    """O_EXCL|O_NOFOLLOW: never write through anything already at that path."""
    fd = os.open(workdir / filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as source:
        source.write(code)


def _limits(spec: LanguageSpec, cpu_ms: int, wall_ms: int, memory_mb: int) -> Limits:
    return Limits(
        cpu_ms=cpu_ms,
        wall_ms=wall_ms,
        memory_mb=memory_mb,
        memory_mode=spec.memory_limit,
        memory_overhead_mb=spec.address_space_overhead_mb,
    )


def _test_command(spec: LanguageSpec, test: TestSpec, memory_mb: int) -> tuple[str, ...]:
    if test.call is None:
        return spec.run_command(memory_mb)
    python = spec.run_argv[: spec.run_argv.index("main.py")]
    return (*python, "-c", CALL_HARNESS, test.call)


def _unsupported(bundle: Bundle, message: str) -> Judgement:
    outcomes = [TestOutcome(t, "internal_error", None, message) for t in bundle.tests]
    return judge(bundle, outcomes, "compile_error")


def grade(bundle: Bundle, isolation: Isolation) -> Judgement:
    spec = LANGUAGES.get(bundle.language)
    problem = language_problem(bundle.language)
    if problem or spec is None:
        return _unsupported(bundle, problem or "unknown language")
    if any(t.call is not None for t in bundle.tests) and bundle.language != "python":
        return _unsupported(bundle, "call tests are only available for python")
    workdir = Path(tempfile.mkdtemp(prefix="cloudemy-run-"))
    try:
        if isolation.uid is not None:
            os.chown(workdir, isolation.uid, isolation.uid)
        _write_source(workdir, spec.source_file, bundle.code)
        if spec.compile_argv:
            limits = _limits(
                spec, COMPILE_TIME_LIMIT_MS, COMPILE_TIME_LIMIT_MS * 2, spec.compile_memory_mb
            )
            build = execute(spec.compile_argv, b"", workdir, limits, isolation)
            if build.exit_code != 0 or build.timed_out:
                message = (build.stderr or build.stdout).decode("utf-8", "replace")
                if build.timed_out:
                    message = f"compilation took longer than {COMPILE_TIME_LIMIT_MS} ms\n{message}"
                message = message.replace(str(workdir) + "/", "")
                return judge(bundle, compile_failure(bundle.tests, message), spec.syntax_error_tag)
        limits = _limits(
            spec, bundle.time_limit_ms, bundle.time_limit_ms * 2 + 500, bundle.memory_limit_mb
        )
        outcomes = [
            judge_execution(
                test,
                execute(
                    _test_command(spec, test, bundle.memory_limit_mb),
                    test.stdin.encode(),
                    workdir,
                    limits,
                    isolation,
                ),
                bundle.time_limit_ms,
                bundle.memory_limit_mb,
                spec.out_of_memory_markers,
            )
            for test in bundle.tests
        ]
        return judge(bundle, outcomes, spec.syntax_error_tag)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
