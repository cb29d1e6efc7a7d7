"""The append-only file, Redis 7's multi-part layout: manifest, base and incr files, and their replay.

Everything here runs on the master actor's loop thread, except ``write_base`` (a forked rewrite child runs it)
and ``fsync`` calls the persistence actor makes on a descriptor the loop hands it. Layout, in ``appenddirname``
under ``dir`` (names from ``appendfilename``, here the default)::

    appendonly.aof.manifest        which files make up the AOF, in order (replaced atomically)
    appendonly.aof.3.base.rdb      a snapshot: RDB format (aof-use-rdb-preamble yes) or .base.aof (commands)
    appendonly.aof.5.incr.aof      every write since that snapshot, as RESP commands (several after a failed
    appendonly.aof.6.incr.aof      rewrite, or while a rewrite runs); only the last one is appended to

The manifest has one line per file, exactly as Redis's aof.c writes it (``aofInfoFormat``)::

    file appendonly.aof.3.base.rdb seq 3 type b
    file appendonly.aof.5.incr.aof seq 5 type i

(``type h`` marks history files: replaced files not yet deleted.) Loading reads the base, then each incr in
order. A rewrite (``BGREWRITEAOF``) opens a new incr file and lists it in the manifest *before* it forks, so
the snapshot the child writes is exactly the old base plus the old incrs; when the child succeeds the manifest
is replaced by "new base + new incr" and the old files are deleted. At every instant the manifest on disk
names a complete dataset.

Replay (``AofReplay``) parses commands itself rather than with hiredis because it needs the byte offset of
every command boundary: a torn tail (the process died inside a write) is cut at the last whole command, and
any other damage is reported with its file and offset.
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, BinaryIO

import structlog

from actors.data.stream import Stream
from actors.data.types import ZSet
from actors.persistence.rdb.stream_codec import stream_rewrite_commands as stream_commands
from actors.server.client import Client
from protocol.errors import CommandError
from protocol.resp import split_inline

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.server.server import Server

log = structlog.get_logger("redactor.aof")

BASE_SUFFIX = ".base"
INCR_SUFFIX = ".incr"
RDB_FORMAT_SUFFIX = ".rdb"
AOF_FORMAT_SUFFIX = ".aof"
MANIFEST_SUFFIX = ".manifest"
TEMP_PREFIX = "temp-"
# Redis's AOF_REWRITE_ITEMS_PER_CMD: a command-format base splits big collections into commands this long.
REWRITE_ITEMS_PER_CMD = 64
# Longest header line (`*<argc>` or `$<len>`) worth searching for its CRLF; a longer one is damage.
MAX_HEADER_LINE_BYTES = 32
# Redis's MANIFEST_MAX_LINE.
MANIFEST_MAX_LINE_BYTES = 1024
# Buffered writes of a command-format base file.
BASE_WRITE_BUFFER_BYTES = 1 << 20


class AofFileType(Enum):
    BASE = "b"  # the snapshot every load starts from; at most one
    HISTORY = "h"  # replaced by a rewrite, waiting to be deleted; never loaded
    INCR = "i"  # writes after the base, loaded in sequence order


class ManifestError(Exception):
    """The manifest cannot be read or is malformed (start-up stops, as in Redis)."""


class AofLoadError(Exception):
    """The AOF cannot be loaded: the message names the file and the offset. Nothing on disk was changed."""


class AofTruncated(Exception):
    """The data ends inside a command; ``offset`` is where the last whole command ended."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


class AofFormatError(Exception):
    """Bytes that are not the AOF's RESP commands at ``offset``."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"{reason} at offset {offset}")
        self.offset = offset
        self.reason = reason


# -- manifest ------------------------------------------------------------------------------------------------


@dataclass
class AofInfo:
    name: str
    seq: int
    type: AofFileType


def _quote_name(name: str) -> str:
    """Redis's sdscatrepr when the name needs it (spaces, quotes, control bytes), else the name itself."""
    if name and all(c.isprintable() and c not in " \"'\\" for c in name):
        return name
    out = []
    for c in name:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c.isprintable():
            out.append(c)
        else:
            out.append("".join(f"\\x{b:02x}" for b in c.encode()))
    return '"' + "".join(out) + '"'


@dataclass
class Manifest:
    """The files that make up the AOF, as ``aofManifest`` in aof.c."""

    base: AofInfo | None = None
    history: list[AofInfo] = field(default_factory=list)
    incrs: list[AofInfo] = field(default_factory=list)
    # Highest sequence numbers used so far, so a new file never reuses a name.
    curr_base_seq: int = 0
    curr_incr_seq: int = 0

    def copy(self) -> Manifest:
        def dup(info: AofInfo) -> AofInfo:
            return AofInfo(info.name, info.seq, info.type)

        return Manifest(
            dup(self.base) if self.base else None,
            [dup(i) for i in self.history],
            [dup(i) for i in self.incrs],
            self.curr_base_seq,
            self.curr_incr_seq,
        )

    def render(self) -> str:
        lines = []
        for info in ([self.base] if self.base else []) + self.history + self.incrs:
            lines.append(f"file {_quote_name(info.name)} seq {info.seq} type {info.type.value}\n")
        return "".join(lines)

    @classmethod
    def parse(cls, text: str, path: str) -> Manifest:
        """Parse a manifest with aofLoadManifestFromFile's rules; ManifestError names the line."""
        manifest = cls()
        max_seq = 0
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        if not lines or text == "":
            raise ManifestError(f"Found an empty AOF manifest ({path})")
        for number, raw in enumerate(lines, 1):
            if raw.startswith("#"):
                continue
            if len(raw) > MANIFEST_MAX_LINE_BYTES:
                raise ManifestError(f"The AOF manifest file {path} contains too long line (line {number})")
            line = raw.strip(" \t\r\n")
            try:
                argv = [a.decode() for a in split_inline(line.encode())] if line else []
            except Exception:
                argv = []
            if len(argv) < 6 or len(argv) % 2:
                raise ManifestError(f"Invalid AOF manifest file format: {path} line {number}: '{line}'")
            name, seq, kind = None, 0, ""
            for i in range(0, len(argv), 2):
                key, value = argv[i].lower(), argv[i + 1]
                if key == "file":
                    name = value
                    if "/" in name:
                        raise ManifestError(f"File can't be a path, just a filename: {path} line {number}")
                elif key == "seq":
                    seq = int(value) if value.lstrip("-").isdigit() else 0
                elif key == "type":
                    kind = value[:1]
            if not name or not seq or not kind:
                raise ManifestError(f"Invalid AOF manifest file format: {path} line {number}: '{line}'")
            try:
                file_type = AofFileType(kind)
            except ValueError:
                raise ManifestError(f"Unknown AOF file type '{kind}': {path} line {number}") from None
            info = AofInfo(name, seq, file_type)
            if file_type is AofFileType.BASE:
                if manifest.base is not None:
                    raise ManifestError(f"Found duplicate base file information: {path} line {number}")
                manifest.base = info
                manifest.curr_base_seq = seq
            elif file_type is AofFileType.HISTORY:
                manifest.history.append(info)
            else:
                if seq <= max_seq:
                    raise ManifestError(f"Found a non-monotonic sequence number: {path} line {number}")
                manifest.incrs.append(info)
                manifest.curr_incr_seq = max_seq = seq
        return manifest

    def new_base(self, filename: str, rdb_preamble: bool) -> str:
        """Name a new base file, turning the current base into history (getNewBaseFileNameAndMarkPreAsHistory)."""
        if self.base is not None:
            self.base.type = AofFileType.HISTORY
            self.history.insert(0, self.base)
        self.curr_base_seq += 1
        suffix = RDB_FORMAT_SUFFIX if rdb_preamble else AOF_FORMAT_SUFFIX
        self.base = AofInfo(
            f"{filename}.{self.curr_base_seq}{BASE_SUFFIX}{suffix}", self.curr_base_seq, AofFileType.BASE
        )
        return self.base.name

    def new_incr(self, filename: str) -> str:
        self.curr_incr_seq += 1
        info = AofInfo(
            f"{filename}.{self.curr_incr_seq}{INCR_SUFFIX}{AOF_FORMAT_SUFFIX}",
            self.curr_incr_seq,
            AofFileType.INCR,
        )
        self.incrs.append(info)
        return info.name

    def mark_incrs_history(self, keep_last: bool) -> None:
        """After a rewrite: the incrs the new base covers become history (the open one stays if ``keep_last``)."""
        covered = self.incrs[:-1] if keep_last else self.incrs
        self.incrs = self.incrs[-1:] if keep_last else []
        for info in reversed(covered):
            info.type = AofFileType.HISTORY
            self.history.insert(0, info)

    def loadable(self) -> list[AofInfo]:
        return ([self.base] if self.base else []) + self.incrs


def manifest_name(filename: str) -> str:
    return filename + MANIFEST_SUFFIX


def temp_incr_name(filename: str) -> str:
    """The incr file written while ``CONFIG SET appendonly yes`` waits for its first base (getTempIncrAofName)."""
    return f"{TEMP_PREFIX}{filename}{INCR_SUFFIX}"


def fsync_dir(path: str) -> None:
    """fsync a directory so a rename or a new file in it survives a crash."""
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(dirname: str, filename: str) -> Manifest | None:
    """The manifest in ``dirname``, or None if the directory or the manifest does not exist."""
    path = os.path.join(dirname, manifest_name(filename))
    if not os.path.isdir(dirname) or not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ManifestError(
            f"Fatal error: can't open the AOF manifest file {path} for reading: {exc.strerror}"
        ) from None
    return Manifest.parse(raw.decode("utf-8", "replace"), path)


def write_manifest(dirname: str, filename: str, manifest: Manifest) -> None:
    """Replace the manifest atomically: temp file, fsync, rename, fsync the directory."""
    final = os.path.join(dirname, manifest_name(filename))
    temp = os.path.join(dirname, TEMP_PREFIX + manifest_name(filename))
    data = manifest.render().encode()
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temp, final)
    fsync_dir(dirname)


# -- the command stream ------------------------------------------------------------------------------------


def _header_number(buf: Any, pos: int, end: int, start: int) -> tuple[int, int]:
    """The number after the type byte at ``pos`` and the offset past its CRLF."""
    limit = min(end, pos + MAX_HEADER_LINE_BYTES)
    crlf = buf.find(b"\r\n", pos, limit)
    if crlf < 0:
        if limit == end:
            raise AofTruncated(start)
        raise AofFormatError(pos, "header line without CRLF")
    digits = bytes(buf[pos + 1 : crlf])
    if not digits.isdigit():
        raise AofFormatError(pos, f"bad number {digits!r}")
    return int(digits), crlf + 2


def iter_commands(buf: Any, pos: int, end: int) -> Iterator[tuple[list[bytes], int]]:
    """Yield ``(argv, offset after it)`` for each RESP command in ``buf[pos:end]``.

    ``#`` annotation lines (aof-timestamp-enabled) are skipped. Raises AofTruncated if the data ends inside a
    command (with the offset where the last whole command ended) and AofFormatError on anything else that is
    not a multibulk command, including a bulk string not followed by CRLF.
    """
    find = buf.find
    while pos < end:
        start = pos
        first = buf[pos]
        if first == 0x23:  # '#': an annotation line
            newline = find(b"\n", pos, end)
            if newline < 0:
                raise AofTruncated(start)
            pos = newline + 1
            continue
        if first != 0x2A:  # '*'
            raise AofFormatError(pos, "expected '*'")
        argc, pos = _header_number(buf, pos, end, start)
        if argc < 1:
            raise AofFormatError(start, "empty command")
        argv: list[bytes] = []
        for _ in range(argc):
            if pos >= end:
                raise AofTruncated(start)
            if buf[pos] != 0x24:  # '$'
                raise AofFormatError(pos, "expected '$'")
            size, pos = _header_number(buf, pos, end, start)
            stop = pos + size
            if stop + 2 > end:
                raise AofTruncated(start)
            if buf[stop] != 0x0D or buf[stop + 1] != 0x0A:
                raise AofFormatError(stop, "bulk string not followed by CRLF")
            argv.append(bytes(buf[pos:stop]))
            pos = stop + 2
        yield argv, pos


class ReplayState(Enum):
    RUNNING = "running"  # commands remain; call ``run`` again
    DONE = "done"  # the whole file was applied
    TRUNCATED = "truncated"  # a torn tail was dropped (and the file cut) under aof-load-truncated


class AofReplay:
    """Applies one AOF file's commands to the keyspace, a slice at a time, on the loop thread.

    Commands run through their implementations directly (as Redis's loader calls ``cmd->proc``), on an
    internal client, with propagation off and TTLs not consulted (Redis's ``keyIsExpired`` returns false while
    loading: a key written, expired by time, then written again in the log must replay the same way). MULTI
    blocks are applied at their EXEC; a block the file ends inside is dropped like a torn command.
    """

    def __init__(
        self, server: Server, path: str, name: str, start: int, last_file: bool, load_truncated: bool
    ) -> None:
        self.server = server
        self.path = path
        self.name = name
        self.last_file = last_file
        self.load_truncated = load_truncated
        self.client = Client(server)
        self._file: BinaryIO | None = open(path, "rb")  # closed by close()
        self.size_bytes = os.fstat(self._file.fileno()).st_size
        self._map: mmap.mmap | None = None
        buf: Any = b""
        if self.size_bytes > start:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            buf = self._map
        self._commands = iter_commands(buf, start, self.size_bytes)
        self.position = start
        self.valid_up_to = start
        self._multi: list[list[bytes]] | None = None
        self._valid_before_multi = start
        self.commands_applied = 0
        self.state = ReplayState.RUNNING

    def close(self) -> None:
        self._commands = iter(())
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def run(self, budget_s: float, delay_us: int = 0) -> ReplayState:
        """Apply commands for about ``budget_s``. Raises AofLoadError when the file cannot be loaded."""
        if self.state is not ReplayState.RUNNING:
            return self.state
        server = self.server
        keyspace = server.keyspace
        saved = (server.aof_feeding, server.repl_feeding, keyspace.ignore_ttl)
        server.aof_feeding = server.repl_feeding = False
        keyspace.ignore_ttl = True
        deadline = time.perf_counter() + budget_s
        count = 0
        try:
            for argv, after in self._commands:
                self.position = after
                self._apply(argv)
                self.valid_up_to = after
                count += 1
                if delay_us:
                    time.sleep(delay_us / 1e6)
                if not count & 63 and time.perf_counter() > deadline:
                    return self.state
            if self._multi is not None:
                log.warning("aof_incomplete_multi_reverted", file=self.name)
                self._torn(self._valid_before_multi)
            else:
                self.state = ReplayState.DONE
        except AofTruncated as exc:
            self._torn(self._valid_before_multi if self._multi is not None else exc.offset)
        except AofFormatError as exc:
            raise AofLoadError(
                f"Bad file format reading the append only file {self.name} at offset {exc.offset} ({exc.reason}): "
                f"make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"
            ) from None
        finally:
            self.commands_applied += count
            server.aof_feeding, server.repl_feeding, keyspace.ignore_ttl = saved
            server.prop_chunks.clear()
        return self.state

    def _apply(self, argv: list[bytes]) -> None:
        name = argv[0].lower()
        if name == b"multi":
            self._valid_before_multi = self.valid_up_to
            self._multi = []
            return
        if self._multi is not None:
            if name == b"exec":
                queued, self._multi = self._multi, None
                for queued_argv in queued:
                    self._call(queued_argv)
            else:
                self._multi.append(argv)
            return
        self._call(argv)

    def _call(self, argv: list[bytes]) -> None:
        cmd = self.server.commands.get(argv[0].lower())
        if cmd is None:
            raise AofLoadError(
                f"Unknown command '{argv[0].decode('utf-8', 'replace')}' reading the append only file {self.name} "
                f"at offset {self.valid_up_to}"
            )
        if (cmd.arity > 0 and len(argv) != cmd.arity) or len(argv) < -cmd.arity:
            raise AofLoadError(
                f"Wrong number of arguments for '{cmd.name}' reading the append only file {self.name} "
                f"at offset {self.valid_up_to}"
            )
        client = self.client
        try:
            cmd.fn(client, argv)
        except CommandError as exc:
            # As in Redis, a command that fails on replay (it failed when it ran, too) changes nothing.
            log.debug("aof_command_failed", file=self.name, command=cmd.name, reason=str(exc))
        client.propagate_as = None

    def _torn(self, valid_up_to: int) -> None:
        """The file ends inside a command (or a MULTI block) at ``valid_up_to``."""
        dropped = self.size_bytes - valid_up_to
        if not self.last_file:
            raise AofLoadError(
                f"Fatal error: the truncated file is not the last file: {self.name} ends inside a command after "
                f"offset {valid_up_to}"
            )
        if not self.load_truncated:
            raise AofLoadError(
                f"Unexpected end of file reading the append only file {self.name} after offset {valid_up_to}. "
                "You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. "
                "2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
            )
        self.close()
        os.truncate(self.path, valid_up_to)
        log.warning(
            "aof_truncated_tail_dropped",
            file=self.name,
            offset=valid_up_to,
            dropped_bytes=dropped,
            reason="short read while loading the AOF: the last command was incomplete",
        )
        self.size_bytes = valid_up_to
        self.state = ReplayState.TRUNCATED


# -- rewriting: a base file in command form ----------------------------------------------------------------


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


def write_base(path: str, dbs: list[Database], rdb_preamble: bool, aux: dict[str, Any] | None = None) -> int:
    """Write a complete base file to ``path`` (RDB format or commands) and fsync it. Returns its size.

    Runs in a forked rewrite child or, for the first base on start-up, on the loop thread. The caller renames
    the file into place.
    """
    from actors.persistence.rdb import rdb

    with open(path, "wb", buffering=BASE_WRITE_BUFFER_BYTES) as out:
        if rdb_preamble:
            rdb.dump(dbs, out, aux=aux)
        else:
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

    def install_base(self, temp_path: str, keep_incr_open: bool, rdb_preamble: bool) -> list[str]:
        """A rewrite's base is complete at ``temp_path``: make it the base, with the open incr (if any) after
        it. Returns the files that are now history (to delete). Raises OSError with nothing changed."""
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
            write_manifest(self.dirname, self.filename, manifest)
        except OSError:
            if renamed_incr:
                os.rename(self.path(renamed_incr), self.path(self.incr_name))
            os.unlink(base_path)
            raise
        history = [info.name for info in manifest.history]
        manifest.history = []
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
