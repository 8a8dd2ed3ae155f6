"""The seccomp filter every run of untrusted code gets: allow by default, refuse what a
graded program never needs and an escape would. It needs no privilege, so it also holds
inside an unprivileged Kubernetes pod where namespaces are refused.

Refused:
- sockets that reach anything: AF_INET/AF_INET6 (the network), AF_UNIX (host services
  listening on sockets: databases, a Redis), AF_NETLINK (the kernel's routing and audit
  interfaces); `socketpair` stays, runtimes use it for their own pipes;
- new namespaces (`unshare`, `setns`, namespace flags on `clone`; `clone3`, whose flags
  a filter cannot read, answers ENOSYS so libc falls back to `clone`);
- kernel attack surface a program has no use for: io_uring, bpf, perf_event_open,
  userfaultfd, keyrings, every mount call;
- looking into or signalling other processes: ptrace, process_vm_readv/writev, pidfd
  signals, and signals to the runner, its group or every process (-1);
- session escapes: setsid, setpgid (so a group kill finds everything).
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import tempfile

try:
    import pyseccomp
except (ImportError, OSError):  # no libseccomp on this machine: the layer is reported absent
    pyseccomp = None

LOW32 = 0xFFFFFFFF
REFUSED_SOCKET_FAMILIES = (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX, socket.AF_NETLINK)
NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
REFUSED_CALLS = (
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
)
SIGNAL_CALLS = (
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "pidfd_open",
    "prlimit64",
)


def seccomp_available() -> bool:
    return pyseccomp is not None


def build_filter(runner_pid: int):
    """The filter as a libseccomp object, ready to `load()` in a child or to export as BPF.
    Compiled in the runner: a child that switched uid may no longer read the library."""
    if pyseccomp is None:
        raise OSError("libseccomp is not available")
    sc = pyseccomp
    denied = sc.ERRNO(errno.EPERM)
    rules = sc.SyscallFilter(defaction=sc.ALLOW)
    for family in REFUSED_SOCKET_FAMILIES:
        rules.add_rule(sc.ERRNO(errno.EACCES), "socket", sc.Arg(0, sc.MASKED_EQ, LOW32, family))
    for flag in NAMESPACE_FLAGS:
        rules.add_rule(denied, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for call in REFUSED_CALLS:
        rules.add_rule(denied, call)
    # Signals to the runner, to its process group, or to every process (-1) are refused.
    for target in (runner_pid, -runner_pid & LOW32, LOW32):
        rules.add_rule(denied, "kill", sc.Arg(0, sc.MASKED_EQ, LOW32, target))
    for call in SIGNAL_CALLS:
        rules.add_rule(denied, call, sc.Arg(0, sc.MASKED_EQ, LOW32, runner_pid))
    return rules


@functools.cache
def _bpf_program(runner_pid: int) -> bytes:
    with tempfile.TemporaryFile() as program:
        build_filter(runner_pid).export_bpf(program)
        program.seek(0)
        return program.read()


def bpf_program_fd(runner_pid: int) -> int:
    """The filter compiled to a BPF program (once per runner) in a memory file, for
    bubblewrap's `--seccomp FD`, which installs it just before it executes the program
    (after its own set-up). A new file each run: bwrap reads it to the end."""
    fd = os.memfd_create("cloudemy-seccomp", 0)
    os.write(fd, _bpf_program(runner_pid))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
