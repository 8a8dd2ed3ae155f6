"""sandbox.uids.allocate_uid with a lock directory and a uid range of the test's own. Its
locks are flock locks on separate open files, so two allocations in this one process
exclude each other exactly as two runners would."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from runner_image.sandbox.uids import SANDBOX_UIDS, NoSandboxUid, SandboxUid, allocate_uid

UIDS = range(200_000, 200_003)


@pytest.fixture
def lock_dir(tmp_path: Path) -> Path:
    return tmp_path / "locks"


@pytest.fixture
def taken():
    """Allocations of a test, released at its end (their lock files stay open otherwise)."""
    held: list[SandboxUid] = []
    yield held
    for allocation in held:
        allocation.release()


def test_the_default_range_is_unprivileged_and_far_from_system_uids():
    assert SANDBOX_UIDS.start >= 100_000
    assert len(SANDBOX_UIDS) >= 1000


def test_the_lock_directory_is_created_for_root_only(lock_dir, taken):
    taken.append(allocate_uid(lock_dir, UIDS))
    assert stat.S_IMODE(lock_dir.stat().st_mode) == 0o700
    assert (lock_dir / str(taken[0].uid)).is_file()


def test_concurrent_allocations_get_different_uids_in_the_range(lock_dir, taken):
    taken.append(allocate_uid(lock_dir, UIDS))
    taken.append(allocate_uid(lock_dir, UIDS))
    assert taken[0].uid != taken[1].uid
    assert {taken[0].uid, taken[1].uid} <= set(UIDS)


def test_an_exhausted_range_raises(lock_dir, taken):
    taken.extend(allocate_uid(lock_dir, UIDS) for _ in UIDS)
    assert sorted(allocation.uid for allocation in taken) == list(UIDS)
    with pytest.raises(NoSandboxUid, match="all 3 sandbox uids are in use"):
        allocate_uid(lock_dir, UIDS)


def test_a_released_uid_can_be_taken_again(lock_dir, taken):
    allocations = [allocate_uid(lock_dir, UIDS) for _ in UIDS]
    released = allocations.pop(1)
    taken.extend(allocations)
    released.release()
    again = allocate_uid(lock_dir, UIDS)
    taken.append(again)
    assert again.uid == released.uid


def test_a_lock_directory_that_is_a_file_raises(tmp_path):
    """(isolation.runner_sandbox_uid turns this, like NoSandboxUid, into no uid layer.)"""
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(OSError):
        allocate_uid(not_a_folder, UIDS)
