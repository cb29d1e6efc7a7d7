"""Durable file replacement: the one place that writes a file atomically and fsyncs a directory.

Redis's recipe (rdb.c rdbSave, aof.c writeAofManifestFile, cluster.c clusterSaveConfig): write a temp file
beside the target, fsync it, rename it over the target, then fsync the directory so the rename itself survives
a crash. A reader of ``path`` therefore sees the old file or the new one, never a part of either.

Used by the RDB writer (dbfilename), the AOF manifest, and the launcher's topology state; ``fsync_directory``
also by whoever renames a file it wrote and fsynced itself (the AOF base, whose manifest write follows).
Pure code: no logging, no locks, so a fork child may call it too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO, TypeVar

T = TypeVar("T")


def fsync_directory(path: str) -> None:
    """fsync the directory ``path`` ("" is the current one) so renames and new files in it survive a crash."""
    fd = os.open(path or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str, write: Callable[[BinaryIO], T], temp_path: str | None = None) -> T:
    """Replace ``path`` with what ``write(file)`` writes: temp file, fsync, rename, fsync the directory.

    ``temp_path`` defaults to a hidden name beside ``path`` (it must be on the same file system). The file is
    unbuffered, so ``write`` may hand it straight to code that batches its own writes. Returns what ``write``
    returns. On any error the temp file is removed, ``path`` is left untouched and the error propagates.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if temp_path is None:
        temp_path = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(temp_path, "wb", buffering=0) as raw:
            result = write(raw)
            os.fsync(raw.fileno())
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except OSError:
            pass
        raise
    fsync_directory(directory)
    return result


def write_bytes_atomically(path: str, data: bytes, temp_path: str | None = None) -> None:
    """``write_atomically`` for data already in memory (manifests, small state files)."""

    def write(out: BinaryIO) -> None:
        view = memoryview(data)
        while view:  # a raw file may write less than asked
            written = out.write(view)
            view = view[written or 0 :]

    write_atomically(path, write, temp_path)
