"""Build once, run every test in the sandbox, judge. The expected outputs stay in this
(trusted) process: the sandboxed program only ever receives a test's input."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import replace
from pathlib import Path

from runner_image.contract import Bundle, Status, TestCase, Verdict
from runner_image.grading.judge import (
    Judgement,
    TestOutcome,
    compile_failure,
    judge,
    judge_execution,
)
from runner_image.sandbox.isolation import Isolation, in_child_as
from runner_image.sandbox.languages import LANGUAGES, LanguageSpec, language_problem
from runner_image.sandbox.namespaces import SANDBOX_WORKDIR
from runner_image.sandbox.process import Limits, execute

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


def _test_command(spec: LanguageSpec, test: TestCase, memory_mb: int) -> tuple[str, ...]:
    if test.call is None:
        return spec.run_command(memory_mb)
    python = spec.run_argv[: spec.run_argv.index("main.py")]
    return (*python, "-c", CALL_HARNESS, test.call)


def _unsupported(bundle: Bundle, message: str) -> Judgement:
    outcomes = [TestOutcome(t, Verdict.INTERNAL_ERROR, None, message) for t in bundle.tests]
    judgement = judge(bundle, outcomes, Verdict.COMPILE_ERROR)
    if outcomes:
        return judgement
    # Without tests there is no row to carry the error: the judgement itself says it.
    return replace(
        judgement, status=Status.ERROR, verdict=Verdict.INTERNAL_ERROR, build_error=message
    )


def _private_dir(parent: Path, name: str, isolation: Isolation) -> Path:
    folder = parent / name
    folder.mkdir(mode=0o700)
    if isolation.uid is not None:
        os.chown(folder, isolation.uid, isolation.uid)
    return folder


def _fresh_copy(build_dir: Path, run_dir: Path, isolation: Isolation) -> Path:
    """A new working directory per test, so nothing one run leaves (a stashed hidden input,
    a planted symlink) is there for the next. Links are copied as links, never followed."""
    shutil.copytree(build_dir, run_dir, symlinks=True, dirs_exist_ok=True, ignore=_special_files)
    if isolation.uid is not None:
        os.chown(run_dir, isolation.uid, isolation.uid)
    return run_dir


def _special_files(folder: str, names: list[str]) -> set[str]:
    """FIFOs, sockets and devices are not copied: opening one could block the runner."""
    kept = []
    for name in names:
        mode = os.lstat(os.path.join(folder, name)).st_mode
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
            kept.append(name)
    return set(names) - set(kept)


def _without_paths(text: str, workdir: Path) -> str:
    """Messages name files relative to the working directory, as the student wrote them."""
    return text.replace(f"{workdir}/", "").replace(f"{SANDBOX_WORKDIR}/", "")


def _remove(folder: Path, isolation: Isolation) -> None:
    """Delete a working directory once every process of the run is dead. Its contents are
    the sandbox uid's, so they are deleted as that uid: root never walks a directory that
    untrusted code could write. The emptied folder itself sits in root's grading folder."""
    if isolation.uid is not None:
        in_child_as(isolation.uid, lambda: _empty(folder))
    shutil.rmtree(folder, ignore_errors=True)


def _empty(folder: Path) -> None:
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)


def _build(
    spec: LanguageSpec, bundle: Bundle, build_dir: Path, isolation: Isolation
) -> Judgement | None:
    """The compile step; a judgement of every test as not compiled when it fails."""
    assert spec.compile_argv is not None
    limits = _limits(spec, COMPILE_TIME_LIMIT_MS, COMPILE_TIME_LIMIT_MS * 2, spec.compile_memory_mb)
    build = execute(spec.compile_argv, b"", build_dir, limits, isolation)
    if build.exit_code == 0 and not build.timed_out:
        return None
    message = (build.stderr or build.stdout).decode("utf-8", "replace")
    if build.timed_out:
        message = f"compilation took longer than {COMPILE_TIME_LIMIT_MS} ms\n{message}"
    message = _without_paths(message, build_dir)
    outcomes = compile_failure(bundle.tests, message)
    return judge(bundle, outcomes, spec.syntax_error_tag, build_error=message)


def _may_not_compile(spec: LanguageSpec, outcome: TestOutcome) -> bool:
    """Whether a first run failed the way a source that does not compile fails."""
    execution = outcome.execution
    return (
        spec.compile_argv is not None
        and outcome.verdict == Verdict.RUNTIME_ERROR
        and execution is not None
        and any(marker in execution.stderr for marker in spec.compile_error_markers)
    )


def _run_test(
    spec: LanguageSpec, bundle: Bundle, index: int, build_dir: Path, isolation: Isolation
) -> TestOutcome:
    """One test, from a pristine build: in namespaces the build is an overlay whose writes
    vanish with the run; without them, a fresh copy that is removed after it."""
    test = bundle.tests[index]
    limits = _limits(
        spec, bundle.time_limit_ms, bundle.time_limit_ms * 2 + 500, bundle.memory_limit_mb
    )
    command = _test_command(spec, test, bundle.memory_limit_mb)
    if isolation.namespaces:
        run_dir = build_dir
        execution = execute(
            command, test.stdin.encode(), build_dir, limits, isolation, keep_writes=False
        )
    else:
        run_dir = _fresh_copy(
            build_dir, _private_dir(build_dir.parent, f"run-{index}", isolation), isolation
        )
        try:
            execution = execute(command, test.stdin.encode(), run_dir, limits, isolation)
        finally:
            _remove(run_dir, isolation)
    outcome = judge_execution(
        test, execution, bundle.time_limit_ms, bundle.memory_limit_mb, spec.out_of_memory_markers
    )
    if outcome.message:
        outcome = replace(outcome, message=_without_paths(outcome.message, run_dir))
    return outcome


def grade(bundle: Bundle, isolation: Isolation) -> Judgement:
    spec = LANGUAGES.get(bundle.language)
    problem = language_problem(bundle.language)
    if problem or spec is None:
        return _unsupported(bundle, problem or "unknown language")
    if any(t.call is not None for t in bundle.tests) and bundle.language != "python":
        return _unsupported(bundle, "call tests are only available for python")
    # Root-owned and unlistable: the sandbox uid reaches its own folder inside and nothing
    # else, and the sweep of what that uid leaves behind never deletes our folders.
    grading_dir = Path(tempfile.mkdtemp(prefix="cloudemy-grading-"))
    grading_dir.chmod(0o711)
    # Whether untrusted code may have written into the build folder: a compile step runs in
    # it, and without namespaces a test's program (in its fresh copy) can reach it. In
    # namespaces a test sees the build only as an overlay, whose writes vanish with it.
    written_by_untrusted = not isolation.namespaces
    try:
        build_dir = _private_dir(grading_dir, "build", isolation)
        _write_source(build_dir, spec.source_file, bundle.code)
        if spec.compiles_first:
            written_by_untrusted = True
            if failed := _build(spec, bundle, build_dir, isolation):
                return failed
        # Public tests run first: whatever a hidden test's input could leave behind where
        # runs share a /tmp (an unprivileged pod, without namespaces) is never there for a
        # test whose output the student sees.
        order = sorted(range(len(bundle.tests)), key=lambda i: bundle.tests[i].hidden)
        outcomes: dict[int, TestOutcome] = {}
        for i in order:
            outcome = _run_test(spec, bundle, i, build_dir, isolation)
            if not outcomes and _may_not_compile(spec, outcome):
                written_by_untrusted = True
                if failed := _build(spec, bundle, build_dir, isolation):
                    return failed
            outcomes[i] = outcome
        return judge(bundle, [outcomes[i] for i in range(len(bundle.tests))], spec.syntax_error_tag)
    finally:
        if written_by_untrusted and (grading_dir / "build").is_dir():
            _remove(grading_dir / "build", isolation)
        shutil.rmtree(grading_dir, ignore_errors=True)
