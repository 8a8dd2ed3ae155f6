"""sandbox.namespaces.bwrap_argv: the bwrap command line of a run, read option by option.
(Running it is tests/sandbox' business.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner_image.sandbox.namespaces import (
    ETC_FILES,
    PRIVATE_TMPFS,
    SANDBOX_WORKDIR,
    TMPFS_BYTES,
    bwrap_argv,
)

BWRAP = "/opt/bwrap/bin/bwrap"
WORKDIR = Path("/var/grading/cloudemy-grading-x/run-0")
# The program's own arguments, made to look like bwrap options: they must come after "--"
# untouched, and never be read as options.
COMMAND = ["python3", "-c", "print(1)", "--", "--bind", "/", "/"]

# How many arguments each option bwrap_argv may use takes. An option not listed here fails
# the test: whatever it exposes must be reviewed and added here on purpose.
ARITY = {
    "--unshare-user": 0,
    "--unshare-pid": 0,
    "--unshare-ipc": 0,
    "--unshare-uts": 0,
    "--unshare-net": 0,
    "--unshare-cgroup-try": 0,
    "--disable-userns": 0,
    "--die-with-parent": 0,
    "--new-session": 0,
    "--hostname": 1,
    "--proc": 1,
    "--dev": 1,
    "--size": 1,
    "--perms": 1,
    "--tmpfs": 1,
    "--chdir": 1,
    "--remount-ro": 1,
    "--seccomp": 1,
    "--overlay-src": 1,
    "--tmp-overlay": 1,
    "--symlink": 2,
    "--bind": 2,
    "--ro-bind": 2,
    "--ro-bind-try": 2,
}
# Options that make a host path visible inside (source first).
HOST_PATH_OPTIONS = {"--bind", "--ro-bind", "--ro-bind-try", "--overlay-src"}


def options(argv: list[str]) -> tuple[list[tuple[str, ...]], list[str]]:
    """(the options, each with its arguments, in order; the command after "--")."""
    assert argv[0] == BWRAP
    parsed: list[tuple[str, ...]] = []
    index = 1
    while argv[index] != "--":
        name = argv[index]
        assert name in ARITY, f"bwrap option {name} is not known to this test"
        parsed.append((name, *argv[index + 1 : index + 1 + ARITY[name]]))
        index += 1 + ARITY[name]
    return parsed, argv[index + 1 :]


def named(parsed: list[tuple[str, ...]], name: str) -> list[tuple[str, ...]]:
    return [option[1:] for option in parsed if option[0] == name]


@pytest.fixture
def parsed() -> list[tuple[str, ...]]:
    return options(bwrap_argv(BWRAP, WORKDIR, COMMAND))[0]


def test_the_command_follows_the_first_double_dash_untouched():
    argv = bwrap_argv(BWRAP, WORKDIR, COMMAND)
    assert argv[0] == BWRAP
    assert options(argv)[1] == COMMAND
    assert argv[argv.index("--") + 1 :] == COMMAND


def test_every_namespace_is_fresh_and_no_nested_user_namespace_allowed(parsed):
    flags = {option[0] for option in parsed if len(option) == 1}
    assert {
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--unshare-cgroup-try",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
    } <= flags
    assert named(parsed, "--hostname") == [("sandbox",)]


def test_the_workdir_is_bound_at_work_and_is_the_cwd(parsed):
    assert named(parsed, "--bind") == [(str(WORKDIR), SANDBOX_WORKDIR)]
    assert SANDBOX_WORKDIR == "/work"
    assert named(parsed, "--chdir") == [(SANDBOX_WORKDIR,)]


def test_without_keep_writes_the_workdir_is_an_overlay_and_never_bound_writable():
    parsed, _ = options(bwrap_argv(BWRAP, WORKDIR, COMMAND, keep_writes=False))
    assert named(parsed, "--bind") == []
    assert named(parsed, "--overlay-src") == [(str(WORKDIR),)]
    assert named(parsed, "--tmp-overlay") == [(SANDBOX_WORKDIR,)]
    assert named(parsed, "--chdir") == [(SANDBOX_WORKDIR,)]


def test_four_private_size_capped_tmpfs(parsed):
    assert set(PRIVATE_TMPFS) == {"/tmp", "/var/tmp", "/dev/shm", "/run/lock"}
    assert TMPFS_BYTES == 64 * 1024 * 1024
    for path in PRIVATE_TMPFS:
        at = parsed.index(("--tmpfs", path))
        # bwrap's --size and --perms apply to the next tmpfs only.
        assert set(parsed[at - 2 : at]) == {("--size", str(TMPFS_BYTES)), ("--perms", "1777")}
    assert sorted(named(parsed, "--tmpfs")) == sorted((path,) for path in PRIVATE_TMPFS)


@pytest.mark.parametrize("keep_writes", [True, False])
def test_no_host_path_but_usr_the_listed_etc_files_and_the_workdir_is_visible(keep_writes):
    parsed, _ = options(bwrap_argv(BWRAP, WORKDIR, COMMAND, keep_writes=keep_writes))
    sources = {option[1] for option in parsed if option[0] in HOST_PATH_OPTIONS}
    assert sources == {"/usr", *ETC_FILES, str(WORKDIR)}
    # /usr and /etc read-only, each at the same place inside.
    assert named(parsed, "--ro-bind") == [("/usr", "/usr")]
    assert named(parsed, "--ro-bind-try") == [(path, path) for path in ETC_FILES]
    assert all(path.startswith("/etc/") for path in ETC_FILES)
    # Everything else is bwrap's own: symlinks into /usr, a fresh /proc and /dev.
    assert all(target.startswith("usr/") for target, _ in named(parsed, "--symlink"))
    assert named(parsed, "--proc") == [("/proc",)]
    assert named(parsed, "--dev") == [("/dev",)]
    # The root is made read-only once everything is in place (bwrap applies them in order).
    remount = parsed.index(("--remount-ro", "/"))
    mounts = {*HOST_PATH_OPTIONS, "--tmp-overlay", "--symlink", "--proc", "--dev", "--tmpfs"}
    assert all(at < remount for at, option in enumerate(parsed) if option[0] in mounts)


def test_seccomp_program_only_when_given():
    without, _ = options(bwrap_argv(BWRAP, WORKDIR, COMMAND))
    assert named(without, "--seccomp") == []
    with_fd, command = options(bwrap_argv(BWRAP, WORKDIR, COMMAND, seccomp_fd=7))
    assert named(with_fd, "--seccomp") == [("7",)]
    assert command == COMMAND
