"""The backend's malloc settings (webapp.server.limit_retained_memory): a password hash's
block is returned to the kernel when freed instead of staying in a thread's arena, so an idle
pod that has served logins stays under the HPA's memory target (docs/deploy.md, section 14)."""

from __future__ import annotations

import platform

import pytest

from webapp.security import _hasher
from webapp.server import M_ARENA_MAX, M_MMAP_THRESHOLD, MALLOC_OPTIONS, limit_retained_memory


def test_a_password_hash_is_above_the_mmap_threshold() -> None:
    assert MALLOC_OPTIONS[M_MMAP_THRESHOLD] < _hasher.memory_cost * 1024


def test_every_option_is_set() -> None:
    calls: list[tuple[int, int]] = []

    def mallopt(option: int, value: int) -> int:
        calls.append((option, value))
        return 1

    assert limit_retained_memory(mallopt)
    assert calls == [(M_MMAP_THRESHOLD, 1024 * 1024), (M_ARENA_MAX, 2)]


def test_a_refused_option_is_reported_and_the_others_still_set() -> None:
    calls: list[int] = []

    def mallopt(option: int, value: int) -> int:
        calls.append(option)
        return 0 if option == M_MMAP_THRESHOLD else 1

    assert not limit_retained_memory(mallopt)
    assert calls == [M_MMAP_THRESHOLD, M_ARENA_MAX]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's options are glibc's")
def test_glibc_accepts_the_options() -> None:
    assert limit_retained_memory()
