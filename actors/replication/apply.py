"""The replica side of replication on the loop thread: the master's stream applied as the master client.

``StreamApplier`` is a mixin of ``Replication`` (loop_side.py): it owns the master client (the stream runs
as it, with its selected db), the hiredis reader of the current link and the bytes it holds that are not
applied yet, the batches held while a script is busy, and the Feed of each applied batch to this node's own
backlog and direct replicas (chained replication).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import hiredis
import structlog

from actors.panic import panic
from actors.replication import messages as m
from actors.server.client import Client, ClientKind
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.loop.master import MasterActor
    from actors.replication.direct import DirectStreams
    from actors.server.server import Server

log = structlog.get_logger("redactor.replication")

# Failed commands of the master's stream (the datasets diverged) are logged, at most this many per window: Redis
# logs each, but a diverged replica can fail every command of a busy stream.
APPLY_ERROR_LOG_INTERVAL_S = 10.0
APPLY_ERROR_LOG_BURST = 10


def _command_size(argv: list[bytes]) -> int:
    """Bytes of ``argv`` as ``encode_command`` writes it: how far one command of the stream reaches."""
    size = 3 + len(str(len(argv)))
    for arg in argv:
        n = len(arg)
        size += n + 5 + len(str(n))
    return size


class StreamApplier:
    """Applies the master's stream on a replica (a mixin: ``Replication`` owns the state it names)."""

    server: Server
    master: MasterActor
    direct: DirectStreams
    gen: int
    master_host: str | None
    master_port: int
    psync_known: bool
    replid: str
    fed_pos: int
    master_client: Client | None
    _reader: Any
    _tail: bytearray
    _read_pos: int
    _held: list[tuple[int, int, bytes]]
    _applying: bool
    _getack_after_batch: bool
    _last_apply_error_log_s: float  # the start of the current window
    _apply_errors_logged: int  # lines logged in it

    def _tell(self, message: m.LoopToActor) -> None:
        raise NotImplementedError

    def _ensure_master_client(self) -> Client:
        client = self.master_client
        if client is None:
            host = self.master_host or "?"
            client = Client(
                self.server, ClientKind.MASTER, f"{host}:{self.master_port}", f"bus:{self.server.port}"
            )
            client.authenticated = True
            # CLIENT KILL TYPE master: drop the link; the replica reconnects and resyncs, as Redis does.
            client.kill = lambda: self._tell(m.Relink(self.gen, "killed by CLIENT KILL"))
            self.master_client = client
            self.server.add_client(client)
        return client

    def _drop_master_client(self) -> None:
        client = self.master_client
        if client is not None:
            self.master_client = None
            client.multi = None
            self.server.remove_client(client)

    def _reset_reader(self) -> None:
        self.direct.close_inbound()
        self._reader = hiredis.Reader()
        self._tail = bytearray()
        self._read_pos = self.server.repl_offset
        master_client = self.master_client
        if master_client is not None:
            # A transaction the old link left open can never be completed by the new one.
            master_client.multi = None
            master_client.multi_error = False

    def prepare_link(self, gen: int) -> None:
        """The actor is about to (re)connect: every batch it handed over so far has been applied (FIFO), so
        the applied offset is where the new link continues. A partial command left in the parser is dropped
        (the master sends it again from the offset)."""
        if gen != self.gen or self.master_host is None:
            return
        self._reset_reader()
        replid = self.replid if self.psync_known else "?"
        self._tell(m.LinkReady(gen, replid, self.server.repl_offset))

    def apply_stream(self, gen: int, start: int, data: bytes) -> None:
        """Run a batch of the master's stream as the master client, in order; then feed it to our backlog.

        While a script is busy the batch is held, as Redis stops reading its master then: the script sees
        the dataset it started with, here as on a master, and the batches run in order once it ends."""
        if self.server.script_busy is not None:
            self._held.append((gen, start, data))
            return
        if self._held:
            self._release_held()
        self._apply_stream(gen, start, data)

    def _release_held(self) -> None:
        """After each tick (an after_flush hook): the batches held during a busy script, once it ended."""
        if self._held and self.server.script_busy is None:
            held, self._held = self._held, []
            for gen, start, data in held:
                self._apply_stream(gen, start, data)

    def _apply_stream(self, gen: int, start: int, data: bytes) -> None:
        server = self.server
        if gen != self.gen or self.master_host is None:
            return
        if start != self._read_pos:
            log.warning("replication_stream_out_of_order", expected=self._read_pos, got=start)
            self._tell(m.Relink(gen, "stream out of order"))
            return
        self._read_pos += len(data)
        tail_was_empty = not self._tail
        reader = self._reader
        reader.feed(data)
        self._tail += data
        client = self._ensure_master_client()
        keyspace = server.keyspace
        base = server.repl_offset
        consumed = 0
        selects: list[tuple[int, int]] = []  # handed over as a tuple (Feed)
        execute = server.execute
        keyspace.ignore_ttl = True
        self._applying = True
        try:
            while True:
                try:
                    argv = reader.gets()
                except hiredis.ProtocolError as exc:
                    log.error("replication_stream_unreadable", offset=base + consumed, reason=str(exc))
                    self._tell(m.Relink(gen, "stream unreadable"))
                    break
                if argv is False:
                    break
                if not isinstance(argv, list) or not argv or not all(isinstance(a, bytes) for a in argv):
                    log.error("replication_stream_unreadable", offset=base + consumed, reason="not a command")
                    self._tell(m.Relink(gen, "stream unreadable"))
                    break
                if len(argv) == 2 and argv[0].lower() == b"select" and argv[1].isdigit():
                    selects.append((base + consumed, int(argv[1])))
                reply = execute(client, argv)
                consumed += _command_size(argv)
                if isinstance(reply, CommandError):
                    self._log_apply_error(argv, reply)
        finally:
            keyspace.ignore_ttl = False
            self._applying = False
        if not consumed:
            return
        if tail_was_empty and consumed == len(data):
            applied = data
            self._tail = bytearray()
        else:
            applied = bytes(self._tail[:consumed])
            del self._tail[:consumed]
        server.stream.reset_offset(base + consumed)
        self.fed_pos = server.repl_offset
        self._tell(m.Feed(base, tuple(selects), applied))
        if self.direct.outs:
            self.direct.write(base, applied)  # chained: this node's own direct replicas
        if self._getack_after_batch:
            self._getack_after_batch = False
            self._tell(m.GetAckInStream(gen))  # after the Feed: the ack covers the whole batch
        self.master.schedule_flush()  # the AOF sink writes what the stream changed

    def _log_apply_error(self, argv: list[bytes], reply: CommandError) -> None:
        server = self.server
        server.stats.unexpected_error_replies += 1
        cmd = server.commands.get(argv[0].lower())
        known = cmd.name if cmd is not None else "<unknown>"
        now = time.monotonic()
        if now - self._last_apply_error_log_s >= APPLY_ERROR_LOG_INTERVAL_S:
            self._last_apply_error_log_s = now
            self._apply_errors_logged = 0
        if self._apply_errors_logged < APPLY_ERROR_LOG_BURST:
            self._apply_errors_logged += 1
            name = argv[0].decode("utf-8", "replace")
            log.warning(
                "replicated_command_failed",
                command=name,
                reason=str(reply),
                message=f"== CRITICAL == This replica is sending an error to its master: '{reply}' after "
                f"processing the command '{known}'",
            )
        # propagation-error-behavior panic / panic-on-replicas: a read-only replica stops rather than go on
        # with a dataset that now differs from its master's (a writable one may have diverged on purpose).
        behavior = server.config["propagation-error-behavior"]
        if behavior in ("panic", "panic-on-replicas") and server.replica_read_only:
            panic(
                f"This replica panicked sending an error to its master after processing the command '{known}'"
            )
