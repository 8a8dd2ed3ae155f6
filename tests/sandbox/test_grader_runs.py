"""grading.grader.grade end to end on python bundles, with the real sandbox and the isolation
layers this machine supports (as the runner probes them). What grade decides without running
anything is in tests/unit/runner/test_runner_grader.py."""

from __future__ import annotations

import os

import pytest

from runner_image.contract import Bundle, TestCase
from runner_image.grading import grader
from runner_image.review.feedback import deterministic_feedback
from runner_image.sandbox.isolation import Isolation, probe_isolation
from runner_image.sandbox.namespaces import SANDBOX_WORKDIR
from runner_image.sandbox.process import execute

SUM_PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\n"


@pytest.fixture(scope="module")
def isolation() -> Isolation:
    return probe_isolation()


@pytest.fixture
def grade(isolation):
    return lambda bundle: grader.grade(bundle, isolation)


def spec(name: str, stdin: str = "", expected_stdout: str = "", **fields) -> TestCase:
    return TestCase(name=name, stdin=stdin, expected_stdout=expected_stdout, **fields)


def python_bundle(code: str, *tests: TestCase, **overrides) -> Bundle:
    fields = {"time_limit_ms": 1000, "memory_limit_mb": 256}
    fields.update(overrides)
    return Bundle(submission_id="s1", language="python", code=code, tests=tests, **fields)


def test_accepted(grade):
    judgement = grade(
        python_bundle(
            SUM_PROGRAM,
            spec("small", "1 2\n", "3\n"),
            spec("negative", "-5 2\n", "-3\n", hidden=True),
        )
    )
    assert judgement.status == "graded"
    assert judgement.verdict == "accepted"
    assert judgement.score == 100.0
    assert judgement.fail_tags == []
    assert [row.verdict for row in judgement.tests] == ["accepted", "accepted"]
    assert [row.stdout for row in judgement.tests] == ["3\n", "-3\n"]
    assert judgement.metrics["tests_passed"] == 2
    assert judgement.metrics["tests_total"] == 2


def test_wrong_answer_scores_partially(grade):
    code = "a, b = map(int, input().split())\nprint(a + b if a > 0 else a - b)\n"
    judgement = grade(
        python_bundle(
            code,
            spec("positive", "1 2\n", "3\n", weight=1),
            spec("negative", "-5 2\n", "-3\n", weight=3),
        )
    )
    assert judgement.status == "graded"
    assert judgement.verdict == "wrong_answer"
    assert judgement.score == 25.0
    assert judgement.fail_tags == ["wrong_answer", "partial"]
    assert [row.verdict for row in judgement.tests] == ["accepted", "wrong_answer"]
    assert judgement.tests[1].stdout == "-7\n"


def test_runtime_error(grade):
    judgement = grade(python_bundle("raise ValueError('boom')\n", spec("t", "", "1\n")))
    assert judgement.status == "failed"
    assert judgement.verdict == "runtime_error"
    row = judgement.tests[0]
    assert row.message.startswith("exited with code 1\n")
    assert "ValueError: boom" in row.message


def test_program_killed_by_a_realtime_signal_is_a_runtime_error(grade):
    judgement = grade(python_bundle("import os\nos.kill(os.getpid(), 40)\n", spec("t", "", "1\n")))
    assert judgement.status == "failed"
    assert judgement.verdict == "runtime_error"


def test_time_limit(grade):
    judgement = grade(
        python_bundle("import time\ntime.sleep(30)\n", spec("t", "", "1\n"), time_limit_ms=200)
    )
    assert judgement.verdict == "time_limit_exceeded"
    assert judgement.fail_tags == ["time_limit_exceeded"]


def test_syntax_error_is_a_compile_error_on_every_test(grade, workdirs):
    judgement = grade(
        python_bundle(
            "def f(:\n    pass\n",
            spec("a", "1 2\n", "3\n"),
            spec("b", "3 4\n", "7\n", hidden=True),
        )
    )
    assert judgement.status == "failed"
    assert judgement.verdict == "compile_error"
    assert judgement.score == 0.0
    assert "syntax_error" in judgement.fail_tags
    assert [row.verdict for row in judgement.tests] == ["compile_error", "compile_error"]
    message = judgement.tests[0].message
    assert "SyntaxError" in message
    assert "main.py" in message
    assert "cloudemy-run-" not in message
    assert str(workdirs[0]) not in message
    assert "Your code does not compile" in deterministic_feedback(judgement)


@pytest.fixture
def commands(monkeypatch) -> list[tuple[str, ...]]:
    """The command of every process the grader runs, in order."""
    seen: list[tuple[str, ...]] = []
    real_execute = grader.execute

    def recording(argv, *args, **kwargs):
        seen.append(tuple(argv))
        return real_execute(argv, *args, **kwargs)

    monkeypatch.setattr(grader, "execute", recording)
    return seen


@pytest.mark.parametrize(
    "code",
    [
        "raise SyntaxError('made at run time')\n",
        "exec('def f(:')\n",
        "import sys\nsys.stderr.write('SyntaxError: pretended\\n')\nsys.exit(1)\n",
    ],
    ids=["raised", "exec", "printed"],
)
def test_a_program_that_only_looks_like_a_syntax_error_is_a_runtime_error(grade, commands, code):
    """Python's compile check runs only after a first run failed like a syntax error, and
    it decides: source that compiles is judged by its runs."""

    judgement = grade(python_bundle(code, spec("a", "1 2\n", "3\n"), spec("b", "3 4\n", "7\n")))

    assert judgement.verdict == "runtime_error"
    assert "syntax_error" not in judgement.fail_tags
    assert [row.verdict for row in judgement.tests] == ["runtime_error", "runtime_error"]
    assert sum("py_compile" in argv for argv in commands) == 1
    assert len(commands) == 3


def test_a_program_that_compiles_costs_no_compile_check(grade, commands):

    judgement = grade(python_bundle(SUM_PROGRAM, spec("a", "1 2\n", "3\n")))

    assert judgement.verdict == "accepted"
    assert not [argv for argv in commands if "py_compile" in argv]


def test_each_test_runs_in_its_own_directory_and_all_are_removed(
    grade, isolation, workdirs, monkeypatch
):
    """Each test starts from the pristine build, whatever an earlier test wrote: in
    namespaces /work is an overlay on the build whose writes vanish with the run (the host
    folder never changes); without them, a fresh copy per test. Every folder is removed."""
    runs = []

    def recording_execute(argv, stdin, workdir, limits, isolation, **options):
        execution = execute(argv, stdin, workdir, limits, isolation, **options)
        runs.append((workdir, sorted(os.listdir(workdir))))
        return execution

    monkeypatch.setattr(grader, "execute", recording_execute)
    code = (
        "import os\n"
        "print(os.getcwd(), *sorted(os.listdir('.')))\n"
        "open('left-by-' + input(), 'w').close()\n"
    )
    judgement = grade(python_bundle(code, spec("t1", "t1\n", "x\n"), spec("t2", "t2\n", "x\n")))
    assert len(workdirs) == 1
    assert workdirs[0].name.startswith("cloudemy-grading-")
    runs = runs[-2:]  # the tests', after the build's
    cwds = [row.stdout.split()[0] for row in judgement.tests]
    listings = [row.stdout.split()[1:] for row in judgement.tests]
    assert "main.py" in listings[0]
    assert listings[1] == listings[0]  # nothing left by the first test
    assert not any(name.startswith("left-by-") for name in listings[0])
    if isolation.namespaces:
        assert cwds == [SANDBOX_WORKDIR] * 2
        assert [listing for _, listing in runs] == listings  # the host folder never changed
    else:
        assert [folder for folder, _ in runs] == [workdirs[0] / "run-0", workdirs[0] / "run-1"]
        assert cwds == [str(folder) for folder, _ in runs]
    assert not workdirs[0].exists()


def test_working_directory_is_removed_after_a_compile_error(grade, workdirs):
    grade(python_bundle("def f(:\n", spec("t", "", "x\n")))
    assert len(workdirs) == 1
    assert not workdirs[0].exists()


def test_call_tests_compare_the_returned_value(grade):
    code = "def add(a, b):\n    print('debug output is ignored')\n    return a + b\n"
    judgement = grade(
        python_bundle(
            code,
            spec("right", call="add(2, 3)", expected=5),
            spec("list", call="add([1], [2.0])", expected=[1, 2]),
            spec("wrong", call="add(2, 2)", expected=5),
        )
    )
    assert [row.verdict for row in judgement.tests] == [
        "accepted",
        "accepted",
        "wrong_answer",
    ]
    assert judgement.tests[0].stdout == "5"


LEAK_SEARCH = """
import os, sys

secret = "zebra-" + str(7780 + 1) + "-quokka"
places = [sys.stdin.read(), repr(dict(os.environ))]
for name in ("environ", "cmdline"):
    for pid in ("self", str(os.getppid())):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f:
                places.append(f.read().decode("utf-8", "replace"))
        except OSError:
            pass
for root in {os.getcwd(), os.environ.get("HOME", "."), os.environ.get("TMPDIR", ".")}:
    for folder, _, files in os.walk(root):
        for file in files:
            try:
                with open(os.path.join(folder, file), "rb") as f:
                    places.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
print("LEAK" if any(secret in place for place in places) else "NOLEAK")
"""


def test_expected_output_is_never_visible_to_the_program(grade):
    """The program rebuilds the expected string at run time, so its own source does not
    contain it, and searches everything it can reach; the control test proves the search
    finds the string when it is really there (in its stdin)."""
    assert "zebra-7781-quokka" not in LEAK_SEARCH
    judgement = grade(
        python_bundle(
            LEAK_SEARCH,
            spec("public", "input\n", "zebra-7781-quokka\n"),
            spec("hidden", "input\n", "zebra-7781-quokka\n", hidden=True),
            spec("control", "zebra-7781-quokka\n", "LEAK\n"),
        )
    )
    assert [row.stdout for row in judgement.tests] == ["NOLEAK\n", "NOLEAK\n", "LEAK\n"]
    assert [row.verdict for row in judgement.tests] == [
        "wrong_answer",
        "wrong_answer",
        "accepted",
    ]


STASH_PROGRAM = """
import os, sys

data = sys.stdin.read()
if os.path.exists("stash"):
    with open("stash") as f:
        print(f.read())
with open("stash", "a") as f:
    f.write(data)
"""


def test_hidden_input_does_not_reach_a_later_public_test(grade):
    judgement = grade(
        python_bundle(
            STASH_PROGRAM,
            spec("hidden", "hidden-input-4242\n", "x\n", hidden=True),
            spec("public", "public-input\n", "x\n"),
        )
    )
    public = judgement.tests[1]
    assert public.hidden is False
    assert "hidden-input-4242" not in public.stdout


def test_hidden_input_left_in_shared_tmp_never_reaches_a_public_test(tmp_path):
    """Same uid as the runner (an unprivileged pod: nothing sweeps /tmp between tests), yet
    the public test cannot print what the hidden one stashed: public tests run first."""
    stash = tmp_path / "stash"
    code = (
        "import os, sys\n"
        f"path = {str(stash)!r}\n"
        "if os.path.exists(path):\n"
        "    print(open(path).read())\n"
        "open(path, 'a').write(sys.stdin.read())\n"
        "print('x')\n"
    )
    same_uid = Isolation(seccomp=True, runner_pid=os.getpid())
    judgement = grader.grade(
        python_bundle(
            code,
            spec("hidden", "hidden-input-4242\n", "x\n", hidden=True),
            spec("public", "public-input\n", "x\n"),
        ),
        same_uid,
    )
    public = judgement.tests[1]
    assert public.name == "public"
    assert public.verdict == "accepted"
    assert "hidden-input-4242" not in public.stdout
    assert "hidden-input-4242" in stash.read_text()  # the hidden test did run, afterwards
