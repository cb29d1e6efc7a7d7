"""The direct stream: the master's loop writes the replication stream straight into an online replica's socket,
and the replica's loop applies it as it reads; no thread in between, as in Redis (the master writes its
replicas' output from its event loop in beforeSleep, the replica applies in its own event loop).

Why: over the bus a batch of writes crossed five threads (master loop -> bus thread -> ZeroMQ I/O thread ->
the replica's ZeroMQ I/O thread -> its bus thread -> its loop); under load every Python one of them waits for
the GIL and a core first, and that wait was most of the replication lag (ops/bench's lag rows). The bus keeps
everything else: the handshake and the PSYNC decision, snapshots, the backlog, acks, pings, GETACK frames.

Hand-over, with no byte lost or doubled:
    1. the replica's link comes up (Continue, or its snapshot installed): its actor says ``OpenDirect`` and the
       loop (``DirectIn``) connects to the master's RESP port: ``AUTH`` (masteruser / masterauth, if set),
       then ``PSYNC redactor-direct:<run id> 0``;
    2. the master's PSYNC (resp_feed.py) hands the connection to its loop (``DirectOut``, ATTACHING); at the end
       of that tick, after its Feed, the loop tells the actor ``DirectAttach(start)``, ``start`` being where
       its feed stands, and holds the stream from ``start`` on (PENDING);
    3. the actor accepts if the replica is online and has been queued exactly the stream before ``start``: it
       flushes that to the replica over the bus and sends it no more stream (``DirectAccepted``); else it
       refuses (``DirectClosed``) and the bus goes on carrying the stream;
    4. accepted, the loop writes ``+DIRECT <start>``, what it held, and from then on each tick's stream as it
       is fed (STREAMING). The replica applies direct bytes once the bus has delivered everything before
       ``start`` (it holds them until then: the two paths race).

Failures fall back to the bus or resync: a refused or failed connection leaves the bus stream running; a direct
socket lost while streaming drops the replica (master) or the link (replica), which resyncs partially from the
backlog. WAIT's ack requests travel inside the stream (``REPLCONF GETACK *``, as Redis does) while a direct
replica is attached, so an ack never overtakes the writes it is about. Never used with bus CURVE keys (the
direct socket is plain TCP and the bus is encrypted).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from enum import Enum
from typing import TYPE_CHECKING, Any

import structlog

from actors.replication import messages as m
from actors.replication.states import LinkState, ReplicaState
from actors.server.server import BLOCKED
from protocol.errors import CommandError
from protocol.resp import encode_command

if TYPE_CHECKING:
    from actors.replication.loop_side import Replication
    from actors.replication.primary import PrimarySide
    from actors.server.client import Client

log = structlog.get_logger("redactor.replication")

# The replid argument of a PSYNC that asks for a direct stream (never a Redis replication id: 40 hex digits).
DIRECT_MARKER = "redactor-direct:"
HEADER_PREFIX = b"+DIRECT "
# A master's replies before the header are a few short lines (AUTH's, then the header or an error).
HANDSHAKE_LIMIT_BYTES = 64 * 1024
# What one direct replica may have queued and unsent (Redis's default client-output-buffer-limit for replicas,
# hard limit, as primary.py's REPLICA_BUFFER_LIMIT_BYTES); past it the replica is dropped and resyncs.
OUTPUT_LIMIT_BYTES = 256 * 1024 * 1024
# The socket buffer the kernel may hold for a direct replica: a tick's stream goes out in one send.
SEND_BUFFER_BYTES = 4 * 1024 * 1024


class OutState(Enum):
    ATTACHING = "attaching"  # handed over during this tick: its start is taken at the end of the tick
    PENDING = "pending"  # DirectAttach told: the stream from start is held until the actor answers
    STREAMING = "streaming"  # accepted: each tick's stream is written as it is fed


class DirectOut:
    """Master side (loop thread): one replica's direct socket and what is queued for it."""

    __slots__ = (
        "token",
        "node_id",
        "sock",
        "state",
        "start",
        "pos",
        "preamble",
        "held",
        "held_bytes",
        "unsent",
        "addr",
    )

    def __init__(self, token: int, node_id: str, sock: socket.socket, preamble: bytes, addr: str) -> None:
        self.token = token
        self.node_id = node_id
        self.sock = sock
        self.state = OutState.ATTACHING
        self.start = -1  # stream position of the first byte it gets
        self.pos = -1  # stream position just past the last byte queued for it
        self.preamble = preamble  # the replies the connection had not written (AUTH's): they go first
        self.held: list[bytes] = []  # the stream from start while PENDING: written on acceptance
        self.held_bytes = 0
        self.unsent = bytearray()  # what the socket did not take yet (written when it is writable)
        self.addr = addr


class DirectStreams:
    """Both ends of direct streams on the loop thread (``Replication.direct``): the sockets this node writes
    its stream to (as a master) and the one it reads its master's stream from (as a replica)."""

    def __init__(self, replication: Replication) -> None:
        self.replication = replication
        self.server = replication.server
        self.master = replication.master
        self.outs: dict[int, DirectOut] = {}
        self._attaching: list[DirectOut] = []
        self._tokens = itertools.count(1)
        self.inbound: DirectIn | None = None
        self._epoch = 0  # bumped whenever the link resets: a connection of an older epoch closes itself
        replication._handlers[m.DirectAccepted] = lambda msg: self.accepted(msg.token)
        replication._handlers[m.DirectClosed] = lambda msg: self.close_out(msg.token, msg.reason)
        replication._handlers[m.OpenDirect] = lambda msg: self.open_inbound(msg.gen)
        replication._handlers[m.ApplyStream] = self._apply_from_bus
        self.master.after_flush.append(self._after_flush)

    def enabled(self) -> bool:
        """Not with bus CURVE keys: the bus is encrypted and authenticated, a direct socket would not be."""
        return not self.server.config["bus-curve-secret-key-file"]

    # -- master side -------------------------------------------------------------------------------------

    def streaming(self) -> bool:
        return any(out.state is not OutState.ATTACHING for out in self.outs.values())

    def attach(self, client: Client, node_id: str) -> Any:
        """``PSYNC redactor-direct:<run id> ...`` from a replica of this node: keep its socket on this thread."""
        if not self.enabled():
            raise CommandError("ERR direct replication streams are off on this node (bus CURVE keys)")
        detached = client.detach()
        if detached is None:
            raise CommandError("ERR the connection has unsent output: retry the PSYNC")
        fd, pending = detached
        try:
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        except OSError as exc:
            log.warning("direct_stream_failed", role="master", reason=str(exc))
            return BLOCKED
        out = DirectOut(next(self._tokens), node_id, sock, pending, client.addr)
        self.outs[out.token] = out
        self._attaching.append(out)
        assert self.master.loop is not None
        self.master.loop.add_reader(sock.fileno(), self._on_readable, out)
        self.master.schedule_flush()
        return BLOCKED

    def _after_flush(self) -> None:
        """End of tick, after the Feeds: an attached socket gets the stream from where the feed stands."""
        if not self._attaching:
            return
        attaching, self._attaching = self._attaching, []
        for out in attaching:
            if self.outs.get(out.token) is out:
                out.state = OutState.PENDING
                out.start = out.pos = self.replication.fed_pos
                self.replication._tell(m.DirectAttach(out.node_id, out.token, out.start))

    def write(self, start: int, data: bytes) -> None:
        """Stream bytes [start, start + len) just fed to the actor: to every direct replica, in order."""
        end = start + len(data)
        for out in list(self.outs.values()):
            if out.state is OutState.ATTACHING or end <= out.pos:
                continue  # attaching: its start is after these bytes
            if start > out.pos:
                self._lost(out, f"stream gap at {out.pos}")
                continue
            piece = data if start == out.pos else data[out.pos - start :]
            out.pos = end
            if out.state is OutState.PENDING:
                out.held.append(piece)
                out.held_bytes += len(piece)
                if out.held_bytes > OUTPUT_LIMIT_BYTES:
                    self._lost(out, "output buffer limit reached before the hand-over")
            else:
                self._send(out, piece)

    def accepted(self, token: int) -> None:
        out = self.outs.get(token)
        if out is None or out.state is not OutState.PENDING:
            return
        out.state = OutState.STREAMING
        held, out.held, out.held_bytes = out.held, [], 0
        header = HEADER_PREFIX + b"%d\r\n" % out.start
        self._send(out, out.preamble + header + b"".join(held))
        out.preamble = b""
        log.info("direct_stream_started", role="master", replica=out.addr, offset=out.start)

    def close_out(self, token: int, reason: str) -> None:
        """The actor refused the socket or dropped its replica: close it (a refusal says why first)."""
        out = self.outs.pop(token, None)
        if out is None:
            return
        if out.state is OutState.PENDING:
            try:
                out.sock.send(out.preamble + b"-ERR direct stream refused: %s\r\n" % reason.encode())
            except OSError:
                pass
        self._close(out)

    def close_outs(self, reason: str) -> None:
        """The actor restarted: it knows none of these replicas any more (they resync with the new one)."""
        for token in list(self.outs):
            self.close_out(token, reason)

    def _send(self, out: DirectOut, data: bytes) -> None:
        if out.unsent:
            out.unsent += data
        else:
            try:
                sent = out.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._lost(out, exc.strerror or str(exc))
                return
            if sent == len(data):
                return
            out.unsent += memoryview(data)[sent:]
            assert self.master.loop is not None
            self.master.loop.add_writer(out.sock.fileno(), self._on_writable, out)
        if len(out.unsent) > OUTPUT_LIMIT_BYTES:
            self._lost(out, "output buffer limit reached")

    def _on_writable(self, out: DirectOut) -> None:
        if self.outs.get(out.token) is not out:
            return
        try:
            sent = out.sock.send(out.unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(out, exc.strerror or str(exc))
            return
        del out.unsent[:sent]
        if not out.unsent:
            assert self.master.loop is not None
            self.master.loop.remove_writer(out.sock.fileno())

    def _on_readable(self, out: DirectOut) -> None:
        """A replica sends nothing on its direct socket: readable means closed (or a broken peer)."""
        try:
            data = out.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            data, reason = b"", exc.strerror or str(exc)
        else:
            reason = "replica closed the direct stream" if not data else "replica wrote on the direct stream"
        if self.outs.get(out.token) is out:
            self._lost(out, reason)

    def _lost(self, out: DirectOut, reason: str) -> None:
        if self.outs.pop(out.token, None) is None:
            return
        self._close(out)
        log.warning("direct_stream_lost", role="master", replica=out.addr, reason=reason)
        self.replication._tell(m.DirectLost(out.token, reason))

    def _close(self, out: DirectOut) -> None:
        loop = self.master.loop
        fd = out.sock.fileno()
        if loop is not None and fd >= 0:
            loop.remove_reader(fd)
            loop.remove_writer(fd)
        out.sock.close()

    # -- replica side --------------------------------------------------------------------------------------

    def open_inbound(self, gen: int) -> None:
        """The link to the master is up: connect a direct stream to its RESP port (the bus carries the stream
        meanwhile, and on if this fails)."""
        replication = self.replication
        host, port = replication.master_host, replication.master_port
        if gen != replication.gen or host is None or not port or not self.enabled():
            return
        self.close_inbound()
        config = self.server.config
        preamble = b""
        replies = 0
        password = config["masterauth"]
        if password:
            user = config["masteruser"]
            auth = [b"AUTH", user.encode(), password.encode()] if user else [b"AUTH", password.encode()]
            preamble += encode_command(auth)
            replies += 1
        marker = (DIRECT_MARKER + self.server.run_id).encode()
        preamble += encode_command([b"PSYNC", marker, b"0"])
        loop = self.master.loop
        assert loop is not None
        epoch = self._epoch
        conn = DirectIn(self, epoch, gen, preamble, replies)
        self.inbound = conn
        loop.create_task(self._connect(conn, host, port))

    async def _connect(self, conn: DirectIn, host: str, port: int) -> None:
        loop = self.master.loop
        assert loop is not None
        try:
            await loop.create_connection(lambda: conn, host, port)
        except OSError as exc:
            if self.inbound is conn:
                self.inbound = None
                log.info("direct_stream_unavailable", master=f"{host}:{port}", reason=str(exc))

    def close_inbound(self) -> None:
        """The link resets (or the master changes): the direct connection of the old link closes."""
        self._epoch += 1
        conn, self.inbound = self.inbound, None
        if conn is not None:
            conn.close()

    def inbound_data(self, conn: DirectIn, start: int, data: bytes) -> None:
        """Stream bytes read from the direct socket: applied now, or held until the bus caught up to them."""
        replication = self.replication
        if conn is not self.inbound:
            return
        if conn.held or start > replication._read_pos:
            conn.held.append((start, data))
            conn.held_bytes += len(data)
            if conn.held_bytes > OUTPUT_LIMIT_BYTES:
                self.inbound_lost(conn, "the bus stream did not catch up with the direct stream")
            else:
                self.drain_held()
            return
        self._apply(conn, start, data)

    def _apply(self, conn: DirectIn, start: int, data: bytes) -> None:
        replication = self.replication
        read_pos = replication._read_pos
        if start + len(data) <= read_pos:
            return
        if start < read_pos:
            data = data[read_pos - start :]
            start = read_pos
        replication.apply_stream(conn.gen, start, data)

    def _apply_from_bus(self, message: m.ApplyStream) -> None:
        """A batch the bus carried (before the hand-over, or with no direct socket); then what it unblocks."""
        self.replication.apply_stream(message.gen, message.start, message.data)
        if self.inbound is not None:
            self.drain_held()

    def drain_held(self) -> None:
        """After a batch from the bus: the direct bytes held for it may go now."""
        conn = self.inbound
        if conn is None or not conn.held:
            return
        replication = self.replication
        while conn.held and conn.held[0][0] <= replication._read_pos and conn is self.inbound:
            start, data = conn.held.pop(0)
            conn.held_bytes -= len(data)
            self._apply(conn, start, data)

    def inbound_lost(self, conn: DirectIn, reason: str) -> None:
        if conn is not self.inbound:
            return
        self.inbound = None
        conn.close()
        replication = self.replication
        if conn.streaming:
            log.warning("direct_stream_lost", role="replica", reason=reason)
            if conn.gen == replication.gen:
                replication._tell(m.Relink(conn.gen, f"direct stream lost: {reason}"))
                # The link is down from now on (the actor's view says so once it has dropped it): INFO and
                # ROLE read at once after the master closed it say so, as a Redis replica's would.
                if replication.link_view.state is LinkState.CONNECTED:
                    replication.link_view = replication.link_view._replace(
                        state=LinkState.CONNECT, down_since_s=time.time()
                    )
                    replication._follow_link()
        else:
            log.info("direct_stream_unavailable", role="replica", reason=reason)


class DirectIn(asyncio.Protocol):
    """Replica side (loop thread): the direct connection to the master, its handshake, then the stream."""

    def __init__(self, streams: DirectStreams, epoch: int, gen: int, preamble: bytes, replies: int) -> None:
        self.streams = streams
        self.epoch = epoch
        self.gen = gen
        self.preamble = preamble
        self.replies = replies  # replies to skip before the header (AUTH's)
        self.transport: Any = None
        self.buffer = b""  # handshake bytes not parsed yet
        self.streaming = False
        self.pos = 0  # stream position of the next byte read
        self.held: list[tuple[int, bytes]] = []
        self.held_bytes = 0
        self.closed = False
        self.started_s = time.monotonic()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if self.closed or self.streams.inbound is not self or self.epoch != self.streams._epoch:
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.transport.write(self.preamble)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.streaming:
            start = self.pos
            self.pos += len(data)
            self.streams.inbound_data(self, start, data)
            return
        self.buffer += data
        while not self.streaming:
            end = self.buffer.find(b"\r\n")
            if end < 0:
                if len(self.buffer) > HANDSHAKE_LIMIT_BYTES:
                    self.streams.inbound_lost(self, "no handshake from the master")
                return
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            if line.startswith(b"-"):
                self.streams.inbound_lost(self, line[1:].decode("utf-8", "replace"))
                return
            if self.replies:
                self.replies -= 1
                continue
            if not line.startswith(HEADER_PREFIX) or not line[len(HEADER_PREFIX) :].isdigit():
                self.streams.inbound_lost(self, f"unexpected handshake line {line[:64]!r}")
                return
            self.streaming = True
            self.pos = int(line[len(HEADER_PREFIX) :])
            log.info("direct_stream_started", role="replica", offset=self.pos)
        rest, self.buffer = self.buffer, b""
        if rest:
            self.data_received(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.streams.inbound_lost(self, str(exc) if exc else "master closed the direct stream")


# -- actor side (bus thread): the decision ---------------------------------------------------------------------


def on_attach(primary: PrimarySide, message: m.DirectAttach) -> None:
    """Accept a direct socket if its replica is online and was queued exactly the stream before its start."""
    actor = primary.actor
    replica = next(
        (
            r
            for r in primary.replicas.values()
            if r.node_id == message.node_id and r.identity not in primary.resp_links
        ),
        None,
    )
    if replica is None or replica.state is not ReplicaState.ONLINE or replica.direct:
        actor.tell_loop(m.DirectClosed(message.token, "not an online replica of this node"))
        return
    if replica.stream_pos != message.start:
        actor.tell_loop(
            m.DirectClosed(message.token, f"replica at {replica.stream_pos}, stream at {message.start}")
        )
        return
    primary.flush_replica(replica)  # the rest before start goes over the bus; the stream from start, direct
    replica.direct = message.token
    actor.tell_loop(m.DirectAccepted(message.token))


def on_lost(primary: PrimarySide, message: m.DirectLost) -> None:
    """The loop lost a direct socket: its replica missed bytes, so it resyncs (partially, from the backlog)."""
    for replica in list(primary.replicas.values()):
        if replica.direct == message.token:
            replica.direct = 0  # the socket is gone already: no DirectClosed for it
            primary.drop_replica(replica, f"direct stream lost: {message.reason}")
