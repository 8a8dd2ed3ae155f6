"""sandbox.seccomp.build_filter, read from libseccomp's own rendering of the program (its
pseudo filter code, `export_pfc`), without loading it anywhere. (What a filtered program
meets is tests/hostile/test_seccomp_layer.py.)"""

from __future__ import annotations

import errno
import re
import socket
import tempfile

import pytest

from runner_image.sandbox.seccomp import (
    NAMESPACE_FLAGS,
    REFUSED_CALLS,
    SIGNAL_CALLS,
    build_filter,
    seccomp_available,
)

pytestmark = pytest.mark.skipif(not seccomp_available(), reason="libseccomp is not available")

RUNNER_PID = 4242
EPERM, EACCES, ENOSYS = errno.EPERM, errno.EACCES, errno.ENOSYS
FILTER_FOR = re.compile(r'^\s*# filter for syscall "(?P<name>[^"]+)"', re.MULTILINE)


def pfc_rules(runner_pid: int = RUNNER_PID) -> tuple[dict[str, str], str]:
    """(the rules of each syscall the filter names, by name; the whole text)."""
    with tempfile.TemporaryFile("w+") as exported:
        build_filter(runner_pid).export_pfc(exported)
        exported.seek(0)
        text = exported.read()
    starts = list(FILTER_FOR.finditer(text))
    end_of_rules = text.index("# default action")
    rules = {}
    for at, match in enumerate(starts):
        stop = starts[at + 1].start() if at + 1 < len(starts) else end_of_rules
        rules[match["name"]] = text[match.end() : stop]
    return rules, text


@pytest.fixture(scope="module")
def rules() -> dict[str, str]:
    return pfc_rules()[0]


def conditions(block: str) -> list[tuple[str, int]]:
    """The (condition on an argument, errno) of each action in a syscall's block, the
    condition being the line just before the action (empty for an unconditional one)."""
    lines = [line.strip() for line in block.strip().splitlines()]
    found = []
    for at, line in enumerate(lines):
        action = re.fullmatch(r"action ERRNO\((\d+)\);", line)
        if action:
            before = lines[at - 1] if at else ""
            found.append((before if before.startswith("if ($a") else "", int(action[1])))
    return found


def test_everything_else_is_allowed_and_a_foreign_architecture_killed():
    _, text = pfc_rules()
    default = text[text.index("# default action") :]
    assert "action ALLOW;" in default.split("# invalid architecture action")[0]
    assert "action KILL;" in default.split("# invalid architecture action")[1]


@pytest.mark.parametrize(
    "family",
    [socket.AF_INET, socket.AF_INET6, socket.AF_UNIX, socket.AF_NETLINK],
    ids=["inet", "inet6", "unix", "netlink"],
)
def test_socket_families_are_refused(rules, family):
    refused = dict(conditions(rules["socket"]))
    matching = [cond for cond in refused if re.search(rf"\$a0\.lo32 .*== {family}\)$", cond)]
    assert len(matching) == 1, rules["socket"]
    assert refused[matching[0]] == EACCES


def test_socket_families_are_matched_on_the_32_bits_the_kernel_reads(rules):
    """socket() takes an int: a family with higher bits set is the same family to the
    kernel, so the filter must ignore those bits rather than require them to be zero."""
    block = rules["socket"]
    assert "$a0.hi32 == 0" not in block
    assert "$a0.hi32 & 0x00000000 == 0" in block
    assert all("& 0xffffffff ==" in cond for cond, _ in conditions(block))


def test_only_the_refused_families_are_named(rules):
    families = sorted(
        int(re.search(r"== (\d+)\)$", cond)[1]) for cond, _ in conditions(rules["socket"])
    )
    expected = [socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK]
    assert families == sorted(expected)


def test_socketpair_is_not_filtered(rules):
    _, text = pfc_rules()
    assert "socketpair" not in rules
    assert '"socketpair"' not in text


def test_clone_with_any_namespace_flag_is_refused(rules):
    assert sorted(NAMESPACE_FLAGS) == sorted(
        [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000]
    )
    refused = conditions(rules["clone"])
    assert len(refused) == len(NAMESPACE_FLAGS)
    for flag in NAMESPACE_FLAGS:
        assert (f"if ($a0.lo32 & 0x{flag:08x} == {flag})", EPERM) in refused


def test_clone3_answers_enosys_so_libc_falls_back_to_clone(rules):
    assert conditions(rules["clone3"]) == [("", ENOSYS)]


@pytest.mark.parametrize(
    "call",
    [
        "unshare",
        "setns",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "keyctl",
        "add_key",
        "request_key",
        "mount",
        "umount2",
        "pivot_root",
        "move_mount",
        "open_tree",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "mount_setattr",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "pidfd_send_signal",
        "setsid",
        "setpgid",
    ],
)
def test_each_refused_call_is_refused_whatever_its_arguments(rules, call):
    assert call in REFUSED_CALLS
    assert conditions(rules[call]) == [("", EPERM)]


def test_no_other_call_is_filtered(rules):
    expected = {"socket", "clone", "clone3", "kill", *REFUSED_CALLS, *SIGNAL_CALLS}
    assert set(rules) == expected


def test_signals_to_the_runner_its_group_and_everyone_are_refused(rules):
    refused = conditions(rules["kill"])
    targets = sorted(int(re.search(r"== (\d+)\)$", cond)[1]) for cond, _ in refused)
    assert targets == sorted([RUNNER_PID, -RUNNER_PID & 0xFFFFFFFF, 0xFFFFFFFF])
    assert {code for _, code in refused} == {EPERM}
    for call in SIGNAL_CALLS:
        assert conditions(rules[call]) == [(f"if ($a0.lo32 & 0xffffffff == {RUNNER_PID})", EPERM)]


def test_the_runner_pid_is_the_one_given():
    other = pfc_rules(runner_pid=777)[0]
    assert "== 777)" in "".join(cond for cond, _ in conditions(other["kill"]))
    assert str(RUNNER_PID) not in "".join(other.values())
