"""AOF replay: parse an AOF file's RESP commands and apply them to the keyspace, a slice at a time.

Runs on the master actor's loop thread at start-up (loading.py drives it). ``AofReplay`` parses commands
itself rather than with hiredis because it needs the byte offset of every command boundary: a torn tail (the
process died inside a write) is cut at the last whole command (under aof-load-truncated), and any other
damage is reported with its file and offset.
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Iterator
from enum import Enum
from typing import TYPE_CHECKING, Any, BinaryIO

import structlog

from actors.panic import panic
from actors.server.client import Client
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.server import Server

log = structlog.get_logger("redactor.aof")

# Longest header line (`*<argc>` or `$<len>`) worth searching for its CRLF; a longer one is damage.
MAX_HEADER_LINE_BYTES = 32


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

    def run(self, budget_s: float, max_commands: int = 0) -> ReplayState:
        """Apply commands for about ``budget_s`` (and at most ``max_commands`` of them, if not 0). Raises
        AofLoadError when the file cannot be loaded."""
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
                if count == max_commands or (not count & 63 and time.perf_counter() > deadline):
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
        name = argv[0].lower()
        # By the name clients use, then by the command's own (rename-command since the file was written; Redis
        # would refuse the file: a node loads what it ran, as lookupCommandOrOriginal resolves a rewrite).
        cmd = self.server.commands.get(name) or self.server.orig_commands.get(name)
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
            # As in Redis, a command that fails on replay (it failed when it ran, too) changes nothing; it is
            # logged as Redis logs an error replied to its AOF-loading client, and panics on request.
            self.server.stats.unexpected_error_replies += 1
            log.warning(
                "aof_command_failed",
                file=self.name,
                command=cmd.name,
                reason=str(exc),
                message=f"== CRITICAL == This server is sending an error to its AOF-loading-client: '{exc}' after "
                f"processing the command '{cmd.name}'",
            )
            if self.server.config["propagation-error-behavior"] == "panic":
                panic(
                    "This server panicked sending an error to its AOF-loading-client after processing the command "
                    f"'{cmd.name}'"
                )
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
