"""Redis replicas on RESP connections (bus thread side): a redis-server started with ``--replicaof`` a
redactor node, or ``REPLICAOF`` sent to one, replicates over Redis's own protocol.

The loop hands the connection's socket over at PSYNC (``AttachRespReplica``); from then on the replica is an
ordinary entry of ``PrimarySide.replicas`` (the same PSYNC decision, snapshot jobs, backlog, acks for WAIT and
INFO), and only the transport differs: where a bus replica gets peer frames, a ``RespReplicaLink`` writes what
Redis's master would (replication.c):

    FullResync -> ``+FULLRESYNC <replid> <offset>`` (nothing for SYNC)
    Continue   -> ``+CONTINUE <replid>`` (``+CONTINUE`` for a replica without ``capa psync2``)
    snapshot   -> ``$EOF:<40 bytes>`` + the file as the child writes it + the 40 bytes (``capa eof``), or
                  ``$<size>`` + the file once complete (disk-based sync)
    Stream     -> the stream's bytes as they are (RESP commands, offsets as the bus replicas see them); after
                  an EOF-marked snapshot, held back until the replica's first ACK, as Redis's master does
    Ping(-1)   -> ``\\n`` while the replica waits for its snapshot (Redis's keep-alive newline)
    Error      -> ``-<message>`` and the connection closes

The PINGs and ``REPLCONF GETACK *`` of an online Redis replica travel inside the stream (resp_feed.py puts
them there), as Redis does, so its offsets stay the bus replicas' offsets and one backlog serves both.

Each link has a writer thread (blocking ``sendall`` from a queue whose size the bulk sender reads as its
window, so a slow replica holds at most a window of the snapshot in memory) and a reader thread (the
replica's ``REPLCONF ACK <offset>``, parsed with hiredis). Both report to the actor as control messages.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import hiredis
import structlog

from actors.replication import messages as m
from protocol import errors, peer

if TYPE_CHECKING:
    from actors.replication.primary import PrimarySide

log = structlog.get_logger("redactor.replication")

# The EOF mark of a diskless-form snapshot is this many random bytes (Redis's CONFIG_RUN_ID_SIZE).
EOF_MARK_BYTES = 40
# What one replica may hold queued (stream bytes it does not read) unless client-output-buffer-limit's
# replica class says otherwise: Redis's default hard limit; past it the replica is dropped.
OUTPUT_LIMIT_BYTES = 256 * 1024 * 1024
# A replica that sends more than this without a command end is not a Redis replica.
READ_LIMIT_BYTES = 1024 * 1024


class RespAck(NamedTuple):
    """``REPLCONF ACK <offset>`` read from a Redis replica (reader thread -> actor)."""

    identity: bytes
    offset: int


class RespClosed(NamedTuple):
    """The connection of a Redis replica broke or was closed by it (reader or writer thread -> actor)."""

    identity: bytes
    reason: str


_next_link = itertools.count(1)


def attach(primary: PrimarySide, message: m.AttachRespReplica) -> None:
    """The loop handed over a Redis replica's connection at its PSYNC: answer it as a master does."""
    identity = b"resp-replica:%d" % next(_next_link)
    bus = primary.bus

    def report(event: RespAck | RespClosed) -> None:  # from the link's threads
        bus.actor_ref.tell(event)
        bus.wake()

    # client-output-buffer-limit's replica class: its hard limit (Redis checks the soft one over time too).
    hard_bytes = primary.config["client-output-buffer-limit"].get("slave", (0, 0, 0))[0]
    link = RespReplicaLink(identity, message.fd, message.capa, message.sync, report, hard_bytes)
    link.write(message.pending)
    if not primary.actor.ready:
        link.send_frame(peer.Error(errors.LOADING))
        return
    primary.resp_links[identity] = link
    # PSYNC's offset is the first byte it misses; SYNC and "PSYNC ? -1" have no history (a full sync).
    replid = message.replid if message.offset >= 0 else "?"
    primary.accept_psync(
        identity, replid, message.offset, identity.decode(), message.ip, message.port, time.monotonic()
    )
    if identity not in primary.replicas:  # refused (NOMASTERLINK): accept_psync sent the error
        primary.resp_links.pop(identity, None)


def on_event(primary: PrimarySide, event: RespAck | RespClosed) -> None:
    """What a Redis replica's link threads reported, handled on the bus thread."""
    replica = primary.replicas.get(event.identity)
    if replica is None:
        return
    now = time.monotonic()
    if isinstance(event, RespClosed):
        primary.drop_replica(replica, event.reason)
        return
    replica.last_io_s = now
    if event.offset >= 0:
        replica.ack_offset = max(replica.ack_offset, event.offset)
        replica.ack_time_s = now
        primary.actor.replicas_dirty = True


class RespReplicaLink:
    """The socket of one Redis replica and the translation of peer frames into Redis's replication bytes."""

    def __init__(
        self,
        identity: bytes,
        fd: int,
        capa: frozenset[bytes],
        sync: bool,
        report: Callable[[RespAck | RespClosed], None],
        limit_bytes: int = OUTPUT_LIMIT_BYTES,
    ) -> None:
        self.identity = identity
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(True)
        self.capa_eof = b"eof" in capa and not sync
        self.capa_psync2 = b"psync2" in capa
        self.sync = sync
        self._report = report
        self.limit_bytes = limit_bytes  # 0: no limit, as client-output-buffer-limit's 0
        self._queue: deque[bytes] = deque()
        self._cond = threading.Condition()
        self.queued_bytes = 0  # bytes queued and not yet written: the snapshot window reads it
        self.closed = False
        self._eof_mark = os.urandom(EOF_MARK_BYTES // 2).hex().encode()
        self._snapshot_header_sent = False
        # After an EOF-marked snapshot the stream waits for the replica's first ACK: a Redis replica finds
        # the mark only at the end of a read, so nothing may follow it until it has loaded (Redis's master
        # does the same: repl_start_cmd_stream_on_ack). None: not holding.
        self._held: list[bytes] | None = None
        threading.Thread(target=self._write_loop, name="resp-replica-writer", daemon=True).start()
        threading.Thread(target=self._read_loop, name="resp-replica-reader", daemon=True).start()

    # -- what the primary side sends -------------------------------------------------------------------------

    def send_frame(self, frame: peer.PeerFrame) -> None:
        """Translate a frame meant for a bus replica into what a Redis replica expects."""
        if isinstance(frame, peer.Stream):
            self.write(frame.data)
        elif isinstance(frame, peer.FullResync):
            if not self.sync:
                self.write(b"+FULLRESYNC %s %d\r\n" % (frame.replid.encode(), frame.offset))
        elif isinstance(frame, peer.Continue):
            self.write(b"+CONTINUE %s\r\n" % frame.replid.encode() if self.capa_psync2 else b"+CONTINUE\r\n")
        elif isinstance(frame, peer.SnapChunk):
            if not self._snapshot_header_sent:
                self._snapshot_header_sent = True
                self.write(b"$EOF:" + self._eof_mark + b"\r\n")
            self.write(frame.data)
        elif isinstance(frame, peer.Ping):
            if frame.sent < 0 and not self._snapshot_header_sent:
                self.write(b"\n")  # keep-alive while the snapshot is made (Redis: a newline a second)
        elif isinstance(frame, peer.Error):
            self.write(b"-" + frame.message.encode("utf-8", "replace").replace(b"\r\n", b" ") + b"\r\n")
            self.close(after_writes=True)
        elif isinstance(frame, peer.Bye):
            self.close(after_writes=True)
        # GetAck travels in the stream; SnapBegin says nothing a Redis replica needs.

    def send_snapshot_end(self, path_size: int) -> None:
        """The whole snapshot went out as chunks: the EOF mark ends it (an empty file still needs the header)."""
        if not self._snapshot_header_sent:
            self._snapshot_header_sent = True
            self.write(b"$EOF:" + self._eof_mark + b"\r\n")
        self.write(self._eof_mark)
        with self._cond:
            if not self.closed:
                self._held = []

    def send_sized_snapshot(self, data_size: int) -> None:
        """Disk-based form: the size first; the file's chunks follow as SnapChunk frames."""
        self._snapshot_header_sent = True
        self.write(b"$%d\r\n" % data_size)

    def write(self, data: bytes) -> None:
        if not data:
            return
        with self._cond:
            if self.closed:
                return
            (self._queue if self._held is None else self._held).append(data)
            self.queued_bytes += len(data)
            over = 0 < self.limit_bytes < self.queued_bytes
            self._cond.notify()
        if over:
            self._fail("replica output buffer limit reached")

    def close(self, after_writes: bool = False) -> None:
        """Close the connection (after what is queued, when ``after_writes``)."""
        with self._cond:
            if self.closed:
                return
            self.closed = True
            if not after_writes:
                self._queue.clear()
                self.queued_bytes = 0
            self._held = None
            self._cond.notify()
        if not after_writes:
            self._shutdown()

    # -- threads ------------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self.closed:
                    self._cond.wait()
                if not self._queue:
                    break  # closed and drained
                parts = list(self._queue)
                self._queue.clear()
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self._fail(f"write failed: {exc.strerror or exc}")
                return
            with self._cond:
                self.queued_bytes = max(0, self.queued_bytes - len(data))
        self._shutdown()

    def _read_loop(self) -> None:
        reader = hiredis.Reader()
        buffered = 0
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError as exc:
                self._fail(f"read failed: {exc.strerror or exc}")
                return
            if not data:
                self._fail("replica closed the connection")
                return
            buffered += len(data)
            reader.feed(data)
            while True:
                try:
                    request = reader.gets()
                except hiredis.ProtocolError:
                    self._fail("protocol error from the replica")
                    return
                if request is False:
                    break
                buffered = 0
                self._on_request(request)
            if buffered > READ_LIMIT_BYTES:
                self._fail("replica sent an oversized request")
                return

    def _on_request(self, request: object) -> None:
        if not isinstance(request, list) or len(request) < 3:
            return  # a newline or anything else a replica may send: nothing to do (Redis ignores it too)
        name, option, value = request[0], request[1], request[2]
        if not (isinstance(name, bytes) and isinstance(option, bytes) and isinstance(value, bytes)):
            return
        if name.lower() == b"replconf" and option.lower() == b"ack":
            try:
                offset = int(value)
            except ValueError:
                return
            with self._cond:
                if self._held is not None:  # loaded: the stream may flow now
                    self._queue.extend(self._held)
                    self._held = None
                    self._cond.notify()
            self._report(RespAck(self.identity, offset))

    def _fail(self, reason: str) -> None:
        with self._cond:
            was_closed = self.closed
            self.closed = True
            self._queue.clear()
            self._held = None
            self.queued_bytes = 0
            self._cond.notify()
        self._shutdown()
        if not was_closed:
            self._report(RespClosed(self.identity, reason))

    def _shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
