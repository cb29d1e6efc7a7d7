"""The live append-only file (``AppendOnlyFile``: the open incr file, the manifest in use, the sizes INFO
reports) and the base writer (a rewrite's snapshot, as an RDB preamble or as commands).

Everything here runs on the master actor's loop thread, except ``write_base`` (a forked rewrite child runs it)
and the fsyncs the persistence actor makes on a descriptor the loop hands it. The file layout and the manifest
are in manifest.py; replay in replay.py.
"""

from __future__ import annotations

import os
import time
from enum import Enum
from typing import TYPE_CHECKING, Any, BinaryIO

import structlog

from actors.data import rdb_hooks
from actors.data.stream import Stream
from actors.data.types import ZSet

if TYPE_CHECKING:
    from actors.data.keyspace import Database
from actors.persistence.aof.manifest import (
    Manifest,
    temp_incr_name,
    write_manifest,
)
from actors.persistence.rdb.stream_codec import stream_rewrite_commands as stream_commands

log = structlog.get_logger("redactor.aof")

# Redis's AOF_REWRITE_ITEMS_PER_CMD: a command-format base splits big collections into commands this long.
REWRITE_ITEMS_PER_CMD = 64
# Buffered writes of a command-format base file.
BASE_WRITE_BUFFER_BYTES = 1 << 20


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _score(score: float) -> bytes:
    if score == float("inf"):
        return b"inf"
    if score == float("-inf"):
        return b"-inf"
    return b"%.17g" % score


def write_commands(out: BinaryIO, dbs: list[Database]) -> None:
    """The dataset as commands (rewriteAppendOnlyFileRio): SELECT, then per key SET / RPUSH / SADD / ZADD /
    HMSET in chunks of REWRITE_ITEMS_PER_CMD, then PEXPIREAT for keys with a TTL."""
    from collections import deque

    write = out.write
    for db in dbs:
        if not db.data:
            continue
        write(b"*2\r\n$6\r\nSELECT\r\n" + _bulk(b"%d" % db.id))
        expires = db.expires
        for key, value in db.data.items():
            kind = type(value)
            if kind is bytes:
                write(b"*3\r\n$3\r\nSET\r\n" + _bulk(key) + _bulk(value))
            elif kind is Stream:
                write(
                    b"".join(
                        b"*%d\r\n%s" % (len(c), b"".join(map(_bulk, c))) for c in stream_commands(key, value)
                    )
                )
            else:
                if kind is deque or kind is set:
                    name, items = (b"RPUSH" if kind is deque else b"SADD"), [[v] for v in value]
                elif kind is ZSet:
                    name, items = b"ZADD", [[_score(s), m] for m, s in value.items()]
                elif kind is dict:
                    name, items = b"HMSET", [[f, v] for f, v in value.items()]
                else:
                    raise TypeError(f"cannot rewrite a value of type {kind.__name__}")
                for i in range(0, len(items), REWRITE_ITEMS_PER_CMD):
                    chunk = items[i : i + REWRITE_ITEMS_PER_CMD]
                    parts = [b"*%d\r\n" % (2 + sum(len(c) for c in chunk)), _bulk(name), _bulk(key)]
                    for element in chunk:
                        parts.extend(_bulk(x) for x in element)
                    write(b"".join(parts))
            when = expires.get(key)
            if when is not None:
                write(b"*3\r\n$9\r\nPEXPIREAT\r\n" + _bulk(key) + _bulk(b"%d" % when))


def function_codes(records: bytes) -> list[bytes]:
    """The libraries' code out of RDB_OPCODE_FUNCTION2 records (an opcode, then an uncompressed RDB string:
    actors/scripting/functions.py writes them so)."""
    codes: list[bytes] = []
    pos = 0
    while pos < len(records):
        head = records[pos + 1]
        kind = head >> 6
        if kind == 0:
            length, pos = head & 0x3F, pos + 2
        elif kind == 1:
            length, pos = ((head & 0x3F) << 8) | records[pos + 2], pos + 3
        elif head == 0x80:
            length, pos = int.from_bytes(records[pos + 2 : pos + 6], "big"), pos + 6
        else:  # 0x81: a 64-bit length
            length, pos = int.from_bytes(records[pos + 2 : pos + 10], "big"), pos + 10
        codes.append(records[pos : pos + length])
        pos += length
    return codes


def write_base(
    path: str,
    dbs: list[Database],
    rdb_preamble: bool,
    aux: dict[str, Any] | None = None,
    timestamp: bool = False,
) -> int:
    """Write a complete base file to ``path`` (RDB format or commands) and fsync it. Returns its size.
    ``timestamp`` (aof-timestamp-enabled): a command-format base starts with a ``#TS:<now>`` line, as Redis's
    rewriteAppendOnlyFileRio writes one.

    Runs in a forked rewrite child or, for the first base on start-up, on the loop thread. The caller renames
    the file into place.
    """
    from actors.persistence.rdb import writer as rdb_writer

    with open(path, "wb", buffering=BASE_WRITE_BUFFER_BYTES) as out:
        if rdb_preamble:
            rdb_writer.dump(dbs, out, aux=aux)
        else:
            if timestamp:
                out.write(b"#TS:%d\r\n" % int(time.time()))
            # Redis's rewriteFunctions: the libraries first, as FUNCTION LOAD commands.
            for code in function_codes(rdb_hooks.function_records()):
                out.write(b"*3\r\n$8\r\nFUNCTION\r\n$4\r\nLOAD\r\n" + _bulk(code))
            write_commands(out, dbs)
        out.flush()
        os.fsync(out.fileno())
        return out.tell()


# -- the live AOF ------------------------------------------------------------------------------------------


class AofState(Enum):
    OFF = "off"  # appendonly no: nothing is written
    WAIT_REWRITE = "wait_rewrite"  # just switched on: writes go to a temp incr until the first base exists
    ON = "on"  # writes go to the last incr file of the manifest


class AppendOnlyFile:
    """The open AOF: its manifest, the incr file being appended to, and the sizes INFO reports.

    Lives on the loop side (in the persistence facade) so that it survives a restart of the persistence
    actor: the loop writes every byte, the actor only fsyncs.
    """

    def __init__(self, dirname: str, filename: str) -> None:
        self.dirname = dirname
        self.filename = filename
        self.manifest = Manifest()
        self.state = AofState.OFF
        # The descriptor writes go to (-1 when closed) and its file name (in the manifest, or the temp incr).
        self.fd = -1
        self.incr_name = ""
        # aof_current_size: base + incr files; aof_base_size: current size when the last rewrite ended.
        self.current_size = 0
        self.base_size = 0
        # Bytes of the open incr file, and how many of them are known to be on disk (fsynced).
        self.incr_size = 0
        self.fsynced_size = 0

    def path(self, name: str) -> str:
        return os.path.join(self.dirname, name)

    def ensure_dir(self) -> None:
        os.makedirs(self.dirname, exist_ok=True)

    def file_size(self, name: str) -> int:
        try:
            return os.stat(self.path(name)).st_size
        except OSError:
            return 0

    def loaded_sizes(self) -> None:
        """After loading: the sizes of the files the manifest lists (aof_current_size, aof_base_size)."""
        self.current_size = sum(self.file_size(info.name) for info in self.manifest.loadable())
        self.base_size = self.file_size(self.manifest.base.name) if self.manifest.base else 0

    def open_last_incr(self) -> None:
        """Start appending to the manifest's last incr file (a new one if there is none); persist the manifest."""
        manifest = self.manifest.copy()
        created = not manifest.incrs
        name = manifest.new_incr(self.filename) if created else manifest.incrs[-1].name
        fd = os.open(self.path(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if created:
                write_manifest(self.dirname, self.filename, manifest)
        except OSError:
            os.close(fd)
            raise
        self.manifest = manifest
        self.fd, self.incr_name = fd, name
        self.incr_size = self.fsynced_size = os.fstat(fd).st_size
        self.state = AofState.ON
        log.info("aof_incr_opened", file=name, created=created)

    def install_base(
        self, temp_path: str, keep_incr_open: bool, rdb_preamble: bool, keep_history: bool = False
    ) -> list[str]:
        """A rewrite's base is complete at ``temp_path``: make it the base, with the open incr (if any) after
        it. Returns the files that are now history (to delete), or none with ``keep_history``
        (aof-disable-auto-gc: they stay in the manifest as ``type h``). Raises OSError with nothing changed."""
        manifest = self.manifest.copy()
        base_name = manifest.new_base(self.filename, rdb_preamble)
        base_path = self.path(base_name)
        os.rename(temp_path, base_path)
        renamed_incr = ""
        try:
            if self.state is AofState.WAIT_REWRITE and self.fd >= 0:
                # The temp incr holds every write since the fork: it becomes the first incr after the base.
                manifest.mark_incrs_history(keep_last=False)
                renamed_incr = manifest.new_incr(self.filename)
                os.rename(self.path(self.incr_name), self.path(renamed_incr))
            else:
                manifest.mark_incrs_history(keep_last=keep_incr_open)
            history = [] if keep_history else [info.name for info in manifest.history]
            if not keep_history:
                # As Redis's aofDelHistoryFiles: the manifest leaves the replaced files out at once, and they
                # are removed after (a crash in between leaves files no manifest names, never a stale line).
                manifest.history = []
            write_manifest(self.dirname, self.filename, manifest)
        except OSError:
            if renamed_incr:
                os.rename(self.path(renamed_incr), self.path(self.incr_name))
            os.unlink(base_path)
            raise
        self.manifest = manifest
        if renamed_incr:
            self.incr_name = renamed_incr
            self.state = AofState.ON
        new_base_size = self.file_size(base_name)
        self.current_size = self.base_size = new_base_size + (self.incr_size if self.fd >= 0 else 0)
        return history

    def open_new_incr(self, temporary: bool) -> int:
        """Switch appends to a fresh incr file (listed in the manifest unless ``temporary``). Returns the old
        descriptor (or -1) for the caller to fsync and close. Raises OSError with nothing changed."""
        if temporary:
            name = temp_incr_name(self.filename)
            fd = os.open(self.path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        else:
            manifest = self.manifest.copy()
            name = manifest.new_incr(self.filename)
            fd = os.open(self.path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                write_manifest(self.dirname, self.filename, manifest)
            except OSError:
                os.close(fd)
                os.unlink(self.path(name))
                raise
            self.manifest = manifest
        old = self.fd
        self.fd, self.incr_name = fd, name
        self.incr_size = self.fsynced_size = 0
        log.info("aof_incr_opened", file=name, created=True, temporary=temporary)
        return old

    def write(self, data: bytes | memoryview) -> int:
        """Append ``data`` to the open incr file; returns the bytes written (all of them, or raises OSError)."""
        view = memoryview(data)
        total = len(view)
        while view:
            view = view[os.write(self.fd, view) :]
        self.incr_size += total
        self.current_size += total
        return total

    def close(self) -> int:
        """Stop appending; returns the descriptor for the caller to fsync and close (or -1)."""
        fd, self.fd = self.fd, -1
        self.state = AofState.OFF
        return fd

    def close_temp(self) -> int:
        """WAIT_REWRITE: give up the temp incr file (its rewrite failed); the state stays WAIT_REWRITE."""
        fd, self.fd = self.fd, -1
        self.incr_size = self.fsynced_size = 0
        return fd
