"""sandbox.control_files: what pathlib's read_text and write_text did for the runner's
control files, with plain system calls."""

from __future__ import annotations

import pytest

from runner_image.sandbox.control_files import read_control_file, status_kb, write_control_file


def test_a_file_longer_than_one_read_is_read_whole(tmp_path):
    stat = "".join(f"counter_{n} {n}\n" for n in range(10_000))  # about 160 KB
    (tmp_path / "memory.stat").write_text(stat)

    assert read_control_file(str(tmp_path / "memory.stat")) == stat


def test_a_write_replaces_what_was_there(tmp_path):
    (tmp_path / "pids.max").write_text("max")

    write_control_file(str(tmp_path / "pids.max"), 12)

    assert (tmp_path / "pids.max").read_text() == "12"


def test_a_missing_control_file_is_an_error_not_a_new_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_control_file(str(tmp_path / "memory.limit_in_bytes"), 1)
    assert not (tmp_path / "memory.limit_in_bytes").exists()


def test_a_status_figure_is_read_in_kb_and_is_none_for_a_process_that_is_gone():
    rss = status_kb("self", "VmRSS")
    assert rss is not None and rss > 1024  # an interpreter holds more than a MiB
    assert status_kb("self", "NoSuchField") is None
    assert status_kb(2**22 + 1, "VmRSS") is None  # above pid_max: never a process
