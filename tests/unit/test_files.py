"""actors/files.py: a file is replaced whole or not at all, and no temp file is left behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pytest

from actors.files import fsync_directory, write_atomically, write_bytes_atomically


def test_write_bytes_atomically_replaces_the_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    write_bytes_atomically(os.fspath(target), b"new contents")
    assert target.read_bytes() == b"new contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_failing_writer_leaves_the_old_file_and_removes_its_temp(tmp_path: Path) -> None:
    target = tmp_path / "dump.rdb"
    target.write_bytes(b"old")
    temp = tmp_path / "temp-1.rdb"

    def write(out: BinaryIO) -> int:
        out.write(b"half a fi")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_atomically(os.fspath(target), write, os.fspath(temp))
    assert target.read_bytes() == b"old"
    assert not temp.exists()


def test_write_atomically_returns_what_the_writer_returns(tmp_path: Path) -> None:
    target = tmp_path / "f"
    assert write_atomically(os.fspath(target), lambda out: out.write(b"abc")) == 3
    assert target.read_bytes() == b"abc"


def test_fsync_directory_accepts_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fsync_directory("")
    fsync_directory(os.fspath(tmp_path))
