"""The master actor: the event-loop thread that owns the keyspace and serves clients.

Not a pykka actor on purpose: a pykka ``ask`` per command costs ~25 us and GIL hand-offs, which cut throughput
to a fraction of Redis's. Instead one uvloop thread reads each socket, parses every command in the buffer
(hiredis), runs it against the keyspace right there, and buffers the reply. Work for other actors leaves in
batches, one per loop tick:

    1. commands run; their replies wait in each connection's buffer, writes accumulate in ``server.stream``
    2. at the end of the tick (``_flush``, scheduled once with call_soon) the tick's ``StreamBatch`` (taken
       once from the stream) goes to every stream sink: the AOF writer (one write, plus one fdatasync with
       appendfsync always: group commit) and the replication feed (one message to the replication actor)
    3. only then do the replies leave, so no client hears "OK" for a write the AOF has not received.

Native-protocol requests arrive from the bus thread (actors/bus.py) in batches through
``call_soon_threadsafe`` and their replies go back, batched, over an inproc ZeroMQ socket this thread owns.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog
import zmq

from actors.bus.admission import PeerAuthenticated
from actors.loop.fastlane import NAMES as FAST_LANE_NAMES
from actors.loop.fastlane import FastLane
from actors.loop.listeners import PortListeners
from actors.loop.preauth import refuse as refuse_preauth
from actors.persistence.rdb import codec as rdb_codec
from actors.ratelog import remote_errors
from actors.server import latency
from actors.server.client import Client, ClientKind
from actors.server.errorstats import count_error_reply
from actors.server.server import BLOCKED, Server
from actors.server.stream import StreamBatch
from protocol import envelope
from protocol.errors import CommandError, ProtocolError
from protocol.resp import BULK_HEADERS, CRLF, OK, OK_REPLY, SMALL_INTS, encode_into
from protocol.resp_parse import RequestParser
from protocol.resp_preauth import PreAuthGuard

log = structlog.get_logger("redactor.master")

# Redis's PROTO_REPLY_CHUNK_BYTES: the static reply buffer every client has before its reply list.
REPLY_CHUNK_BYTES = 16 * 1024
# How often the cron runs per second is the `hz` directive; active expiry may use this share of each period.
ACTIVE_EXPIRE_CPU_SHARE = 0.25
# Native-protocol clients idle this long are forgotten (a ZeroMQ peer has no connection to close).
NATIVE_CLIENT_IDLE_S = 3600
DENIED_MESSAGE = (
    "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for "
    "the default user. In this mode connections are only accepted from the loopback interface. If you want to "
    "connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable "
    "protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by "
    "connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly "
    "accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
    "Alternatively you can just disable the protected mode by editing the Redis configuration file, and "
    "setting the protected mode option to 'no', and then restarting the server. 3) If you started the server "
    "manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an "
    "authentication password for the default user. NOTE: You only need to do one of the above things in order "
    "for the server to start accepting connections from the outside.\r\n"
)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


class RespConnection(asyncio.Protocol):
    """One RESP client socket. Runs commands as they are parsed; replies leave at the end of the tick."""

    def __init__(self, master: MasterActor) -> None:
        self.master = master
        self.server = master.server
        self.transport: Any = None
        self.client: Client | None = None
        config = self.server.config
        self.parser = RequestParser(config=config.values)
        # Encoded replies of this tick, written with one writelines() in the flush.
        self.out: list[bytes] = []
        # True while this connection sits in the master's pending-flush list.
        self.pending = False
        # Commands that arrived while the client was blocked (BLPOP ...): run once it is woken.
        self.backlog: deque[list[bytes]] = deque()
        self.closed = False
        # Walks the reads while the client is unauthenticated (Redis 7's limits: actors/loop/preauth.py).
        self.guard: PreAuthGuard | None = PreAuthGuard()
        # The fast lane (actors/loop/fastlane.py) as _run calls it: a read's only GET/SET, or a pipeline's run.
        self.run_one: Callable[[Client, list[bytes], list[bytes]], bool] = master.fast_lane.run_one
        self.lane_run: Callable[[Client, list[list[bytes]], int, list[bytes]], int] = master.fast_lane.run
        self.output_limits = self.server.output_limits
        # The reply bytes of ``out`` counted so far (buffers(): counted once each, however often it is asked).
        self._counted_out: list[bytes] = self.out
        self._counted_items = 0
        self._counted_bytes = 0

    # -- asyncio callbacks ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport subclasses
        peer = transport.get_extra_info("peername") or ("?", 0)
        local = transport.get_extra_info("sockname") or ("?", 0)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        server = self.server
        if len(server.clients) >= server.config["maxclients"]:
            server.stats.rejected_connections += 1
            self.transport.write(b"-ERR max number of clients reached\r\n")
            transport.close()
            self.closed = True
            return
        if server.config["protected-mode"] and not server.requirepass and not is_loopback(str(peer[0])):
            server.stats.rejected_connections += 1
            self.transport.write(DENIED_MESSAGE.encode())
            transport.close()
            self.closed = True
            return
        client = Client(server, ClientKind.RESP, _fmt_addr(peer), _fmt_addr(local))
        client.push = self.push
        client.deliver = self.deliver
        client.kill = self.kill
        client.abort = self.abort
        client.buffers = self.buffers
        client.write_raw = self.write_raw
        client.detach = self.detach
        self.client = client
        server.add_client(client)

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None or self.closed:
            return
        # (``unchecked`` implies authenticated: a plain attribute read first spares most reads the property)
        if not client.unchecked and not client.authenticated and self.guard is not None:
            refusal = self.guard.check(data)
            if refusal is not None:
                refuse_preauth(self, data, refusal)
                return
        self.server.stats.net_input_bytes += len(data)
        commands: list[list[bytes]] = []
        try:
            self.parser.feed_parse(data, commands)
        except ProtocolError as exc:
            self._run(client, commands)
            if (
                not exc.silent
            ):  # a client over client-query-buffer-limit is closed without a word, as in Redis
                self.out.append(b"-" + str(exc).encode() + b"\r\n")
            remote_errors.info("client_error", client_id=client.id, addr=client.addr, reason=str(exc))
            client.close_requested = True
            self.master.schedule_flush(self)
            return
        client.last_interaction_s = time.monotonic()
        if not commands:
            self.server.client_eviction.partial_read(client)  # a request still arriving holds memory too
            if self.closed:
                return
        if self.backlog or client.blocked is not None:
            self.backlog.extend(commands)
            return
        self._run(client, commands)

    def _run(self, client: Client, commands: list[list[bytes]]) -> None:
        # Setup kept to what every command uses: unpipelined, it is paid once per request.
        server = self.server
        call = server.call
        by_sent_name = server._by_sent_name
        fast_lane = self.lane_run
        general_lane = server.general_lane.run
        out = self.out
        index = 0
        end = len(commands)
        while index < end:
            if commands[index][0] in FAST_LANE_NAMES:
                # GET/SET in the common state run inline, several at a time; whatever the lane leaves (another
                # command, or one it cannot run with the dispatcher's exact semantics) goes the general way.
                if end == 1:  # unpipelined: the lane's run of one, without the setup for runs
                    if self.run_one(client, commands[0], out):
                        break
                else:
                    index = fast_lane(client, commands, index, out)
                    if index == end:
                        break
            # Runs of other data commands, checked once per run (actors/server/dispatch.py); it stops at a
            # GET/SET (the fast lane's) or at a command for the general path below. A lone command (unpipelined)
            # takes the path below: the lane's set-up per run costs more than it saves on one command.
            if index + 1 < end:
                ran = general_lane(client, commands, index, out)
                if ran != index:
                    index = ran
                    continue
            argv = commands[index]
            index += 1
            cmd = by_sent_name.get(argv[0])
            if (
                cmd is not None
                and (len(argv) == cmd.arity if cmd.arity > 0 else len(argv) >= -cmd.arity)
                and client.multi is None
                and server._unrestricted
                and client.unchecked
                and not (client.channels or client.patterns)
            ):
                # Server.execute's common case (the same test, in the same order of effects), without its
                # call: ~7% of a pipelined command's instructions. Everything else goes through execute.
                reply = call(client, cmd, argv)
                if server.after_command is not None:
                    server.after_command()
            else:
                # Read each time: CLIENT REPLY / TRACKING may have wrapped it (actors/server/wrappers.py).
                reply = server.execute(client, argv)
            if reply is BLOCKED:
                self.backlog.extendleft(reversed(commands[index:]))
                break
            kind = type(reply)
            if kind is bytes:
                # Bulk replies are the common case: encoded here, saving a call per command.
                n = len(reply)
                out.append(BULK_HEADERS[n] if n < 1024 else b"$%d\r\n" % n)
                out.append(reply)
                out.append(CRLF)
                continue
            if reply is OK:  # SET's reply, as common as a bulk
                out.append(OK_REPLY)
                if client.close_requested:  # QUIT
                    break
                continue
            if kind is int:  # INCR, LPUSH, SADD, HSET...: as common as OK, and saves encode_into's call
                out.append(SMALL_INTS[reply + 1] if -1 <= reply <= 1023 else b":%d\r\n" % reply)
                if client.close_requested:  # CLIENT KILL of itself
                    break
                continue
            if isinstance(reply, CommandError):
                count_error_reply(server, reply)
            encode_into(out, reply, client.resp3)
            if client.close_requested:
                break
        if out or client.close_requested:
            # Replies leave at the end of the tick, never here: writes of the tick must reach the AOF and the
            # replicas first, and writing every connection's replies in one burst (as Redis's beforeSleep does)
            # wakes the clients' side once per tick instead of once per socket, which measured ~30% less CPU
            # per request under redis-benchmark -P 16 than replying as soon as a read was run.
            self.master.schedule_flush(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.client is not None:
            self.server.remove_client(self.client)

    # -- used by the master and by commands ----------------------------------------------------------------

    def flush(self) -> None:
        self.pending = False
        transport = self.transport
        if transport is None:
            return
        client = self.client
        if self.out:
            data = b"".join(self.out)
            self.out = []
            self.server.stats.net_output_bytes += len(data)
            if not self.closed:
                if (
                    client is not None
                    and (
                        client.channels
                        or client.patterns
                        or self.output_limits.watch_all
                        or not client.authenticated
                    )
                    and self.output_limits.exceeded(client, unsent_bytes(transport, len(data)))
                ):
                    # client-output-buffer-limit, checked before writing as Redis checks it while replies
                    # pile up: the client is dropped without this tick's replies or what it did not read.
                    self.abort()
                    return
                # One write() of the joined buffer: uvloop's writelines() costs several times more per call.
                transport.write(data)
        if client is not None and client.close_requested and not self.closed:
            self.closed = True
            transport.close()
            # Gone at once, as Redis frees a client right after its last reply: a command another client runs
            # before the close completes must not find it (a tracking redirect to it is broken by then).
            self.server.remove_client(client)
            self.client = None

    def push(self, value: Any) -> None:
        """Send an out-of-band message (pub/sub) with the tick's other replies."""
        if self.closed or self.client is None:
            return
        encode_into(self.out, value, self.client.resp3)
        self.master.schedule_flush(self)

    def deliver(self, value: Any) -> None:
        """The reply of a command that blocked; then run whatever the client pipelined behind it."""
        if self.closed or self.client is None:
            return
        encode_into(self.out, value, self.client.resp3)
        self.master.schedule_flush(self)
        if self.backlog and self.client.blocked is None and not self.client.close_requested:
            queued = self.backlog  # (a client released to be closed runs nothing it pipelined: UNBLOCKED)
            self.backlog = deque()
            self._run(self.client, list(queued))

    def kill(self) -> None:
        if self.client is not None:
            self.client.close_requested = True
        self.master.schedule_flush(self)

    def abort(self) -> None:
        """Close at once, dropping unsent replies (client eviction, output buffer limits); the client is gone."""
        if self.client is not None:
            self.client.close_requested = True  # a command loop running for it stops (RespConnection._run)
            self.server.remove_client(self.client)
            self.client = None
        self.out = []
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    def buffers(self) -> tuple[int, int, int]:
        """(query buffer, its room, unsent replies) in bytes, as client memory counts them
        (actors/server/client_memory.py)."""
        out = self.out
        if out is not self._counted_out:
            self._counted_out, self._counted_items, self._counted_bytes = out, 0, 0
        if len(out) > self._counted_items:
            self._counted_bytes += sum(map(len, out[self._counted_items :]))
            self._counted_items = len(out)
        transport = self.transport
        unsent = (
            unsent_bytes(transport, self._counted_bytes) if transport is not None and not self.closed else 0
        )
        qbuf, room = self.parser.query_buffer_bytes()
        return qbuf, room, unsent

    def write_raw(self, data: bytes) -> None:
        """Send ``data`` as it is, with the tick's other output (SYNC's RDB payload)."""
        if self.closed or self.client is None:
            return
        self.out.append(data)
        self.master.schedule_flush(self)

    def detach(self) -> tuple[int, bytes] | None:
        """Give the socket away (a Redis replica's PSYNC: the replication actor serves it from now on).

        Returns a duplicate of the descriptor and the reply bytes of this tick not yet written; the
        transport is aborted (closing only its own descriptor) and the client forgotten. None when the
        transport still holds unsent output, which the new owner could not send in order."""
        transport = self.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None or self.closed or transport.get_write_buffer_size():
            return None
        fd = os.dup(sock.fileno())
        pending = b"".join(self.out)
        self.out = []
        self.closed = True
        transport.abort()
        if self.client is not None:
            self.server.remove_client(self.client)
            self.client = None
        return fd, pending


def unsent_bytes(transport: Any, tick_bytes: int) -> int:
    """Redis's omem: replies not sent yet beyond the first REPLY_CHUNK_BYTES of this tick's (Redis keeps those
    in the client's static buffer, which omem and the output buffer limits do not count), plus what the
    socket did not take."""
    return max(0, tick_bytes - REPLY_CHUNK_BYTES) + transport.get_write_buffer_size()


def _fmt_addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr)


class NativePeer:
    """A native-protocol (ZeroMQ) client: its Client record and where its replies go."""

    __slots__ = ("identity", "client", "last_seen_s")

    def __init__(self, identity: bytes, client: Client) -> None:
        self.identity = identity
        self.client = client
        self.last_seen_s = time.monotonic()


class MasterActor:
    """Owns the event loop, the keyspace (through ``server``) and the client sockets.

    ``run()`` blocks the calling thread (the process's main thread) until shutdown.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        server.master_actor = self
        server.rdb_codec = (
            rdb_codec  # DUMP / RESTORE / DEBUG RELOAD: the commands see the codec, not its package
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[RespConnection] = []
        self._flush_scheduled = False
        # Called with the tick's StreamBatch (bytes, start offset, select points, the AOF's excluded spans)
        # before any reply leaves, in registration order.
        self.batch_sinks: list[Callable[[StreamBatch], None]] = []
        # Called after the batch sinks with the batch's bytes only: the AOF writer and the replication feed,
        # which still read the rest from the Server's compatibility names (see actors/server/stream.py).
        self.stream_sinks: list[Callable[[bytes], None]] = []
        # Plain GET/SET run inline by the RESP connections (actors/fastlane.py).
        self.fast_lane: FastLane = FastLane(server)
        # Called at the end of each tick after the stream sinks (e.g. group-commit bookkeeping).
        self.after_flush: list[Callable[[], None]] = []
        # Called once per cron period (hz) on the loop thread.
        self.cron_jobs: list[Callable[[], None]] = []
        self.cron_jobs.append(server.client_eviction.cron)
        # Native protocol: peers by ZeroMQ identity, and their encoded replies of this tick.
        self.native_peers: dict[bytes, NativePeer] = {}
        # Bus thread -> loop: the "ip:port" of a native peer, written before its first frame is handed over.
        self.peer_addresses: dict[bytes, str] = {}
        self._native_out: list[tuple[bytes, bytes]] = []
        self._bus_push: zmq.Socket[bytes] | None = None
        # Typed messages for the bus thread's handlers (tell_bus), passed by reference; the bus pops them.
        self.bus_outbox: deque[Any] = deque()
        # True while messages to the bus are being dropped (logged once per outage, not once per tick).
        self._bus_unreachable = False
        self.bus_endpoint = f"inproc://redactor-bus-{id(self)}"
        self._servers: list[asyncio.base_events.Server] = []
        self._stopped: asyncio.Event | None = None
        self.ops_per_sec = 0
        self._ops_samples: deque[tuple[float, int]] = deque(maxlen=16)
        self.shutdown_hooks: list[Callable[[], None]] = []

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(
        self, binds: list[str], port: int, tls_port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        """Bind the RESP port (and ``tls-port`` with ``ssl_context``, actors/server/tls.py) on every address of
        ``bind``; port 0 is not listened on, as in Redis. Raises OSError if an address cannot be bound."""
        self.loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        errors: list[str] = []
        listeners = [(p, ctx) for p, ctx in ((port, None), (tls_port, ssl_context)) if p]
        for addr in binds:
            optional = addr.startswith("-")
            host = addr.lstrip("-")
            for listen_port, context in listeners:
                try:
                    srv = await self.loop.create_server(
                        lambda: RespConnection(self),
                        host,
                        listen_port,
                        backlog=self.server.config["tcp-backlog"],
                        reuse_address=True,
                        ssl=context,
                    )
                    self._servers.append(srv)
                except OSError as exc:
                    if not optional:
                        errors.append(f"{host}:{listen_port}: {exc.strerror or exc}")
        if errors or not self._servers:
            for srv in self._servers:
                srv.close()
            raise OSError("could not bind " + "; ".join(errors or [f"any address on port {port}"]))
        # CONFIG SET port moves the plain listeners (actors/loop/listeners.py).
        backlog = self.server.config["tcp-backlog"]
        moves = PortListeners(
            self.server, self.loop, self._servers, lambda: RespConnection(self), binds, port, backlog
        )
        self.server.config.on_change("port", moves.change)
        self._bus_push = zmq.Context.instance().socket(zmq.PUSH)
        self._bus_push.setsockopt(zmq.LINGER, 0)
        self._bus_push.setsockopt(zmq.SNDHWM, 0)
        self._bus_push.connect(self.bus_endpoint)
        self.loop.call_later(1.0 / self.server.config["hz"], self._cron)

    async def wait_stopped(self) -> None:
        assert self._stopped is not None
        await self._stopped.wait()

    def stop(self) -> None:
        """Stop accepting clients and end ``wait_stopped`` (loop thread only)."""
        for srv in self._servers:
            srv.close()
        self._servers.clear()
        if self._stopped is not None:
            self._stopped.set()

    def close(self) -> None:
        if self._bus_push is not None:
            self._bus_push.close(0)
            self._bus_push = None

    def reconnect_bus(self) -> None:
        """Give the inproc PUSH a fresh connection to a (re)started bus actor (loop thread).

        An inproc PUSH whose PULL peer closed does not reconnect when a new PULL binds the same endpoint, so
        without this a restarted bus would never hear from the loop again. Messages queued for the dead bus
        (replies to peers it had) are dropped with the old socket.
        """
        if self._bus_push is None:
            return  # closed: the node is stopping
        self._bus_push.close(0)
        self.bus_outbox.clear()  # messages for the dead bus go with its socket, as its queued replies do
        push: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.setsockopt(zmq.SNDHWM, 0)
        push.connect(self.bus_endpoint)
        self._bus_push = push

    # -- the tick --------------------------------------------------------------------------------------

    def schedule_flush(self, conn: RespConnection | None = None) -> None:
        if conn is not None and not conn.pending:
            conn.pending = True
            self._pending.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self.loop is not None
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """End of tick: hand the propagated writes to their sinks, then let the replies go."""
        self._flush_scheduled = False
        stream = self.server.stream
        if stream.chunks:
            batch = stream.take()
            for batch_sink in self.batch_sinks:
                batch_sink(batch)
            data = batch.data
            for sink in self.stream_sinks:
                sink(data)
        for hook in self.after_flush:
            hook()
        if self._native_out:
            self._send_native_replies()
        pending = self._pending
        if pending:
            self._pending = []
            for conn in pending:
                conn.flush()

    def flush_now(self) -> None:
        """Run the end-of-tick work at once (before SHUTDOWN exits, after loading)."""
        self._flush()

    # -- the native protocol ---------------------------------------------------------------------------

    def native_requests(self, frames: list[tuple[bytes, bytes]]) -> None:
        """A batch of (identity, frame) from the bus thread; runs on the loop thread."""
        server = self.server
        for identity, frame in frames:
            if not frame:  # ROUTER_NOTIFY: the peer connected or went away
                peer = self.native_peers.pop(identity, None)
                if peer is not None:
                    server.remove_client(peer.client)
                continue
            server.stats.net_input_bytes += len(frame)
            try:
                request_id, argv = envelope.decode_request(frame)
            except CommandError as exc:
                self._native_out.append(
                    (identity, envelope.encode_error(envelope.peek_request_id(frame), str(exc)))
                )
                remote_errors.info("client_error", transport="zmq", reason=str(exc))
                continue
            except envelope.ProtocolVersionError as exc:
                self._native_out.append(
                    (identity, envelope.encode_error(envelope.peek_request_id(frame), str(exc)))
                )
                remote_errors.info("client_error", transport="zmq", reason=str(exc))
                continue
            peer = self.native_peers.get(identity)
            if peer is None:
                # The bus wrote the peer's address here before handing over its first frame (admission.py).
                addr = self.peer_addresses.pop(identity, None) or identity.hex()
                client = Client(server, ClientKind.NATIVE, f"zmq:{addr}", f"zmq:{server.port}")
                peer = NativePeer(identity, client)
                client.push = self._native_pusher(identity)
                client.deliver = self._native_deliverer(identity, peer)
                client.kill = self._native_killer(identity)
                self.native_peers[identity] = peer
                server.add_client(client)
            peer.last_seen_s = time.monotonic()
            peer.client.last_interaction_s = peer.last_seen_s
            peer.client.native_request_id = request_id
            was_authenticated = peer.client.authenticated
            reply = server.execute(peer.client, argv)
            if peer.client.authenticated and not was_authenticated:
                self.tell_bus(PeerAuthenticated(identity))  # lifts the bus's limits before AUTH
            if reply is BLOCKED:
                continue
            if isinstance(reply, CommandError):
                count_error_reply(server, reply)
            self._native_out.append((identity, envelope.encode_reply(request_id, reply)))
            if peer.client.close_requested:
                self.native_peers.pop(identity, None)
                server.remove_client(peer.client)
        self.schedule_flush()

    def _native_pusher(self, identity: bytes) -> Callable[[Any], None]:
        def push(value: Any) -> None:
            self._native_out.append((identity, envelope.encode_push(value)))
            self.schedule_flush()

        return push

    def _native_deliverer(self, identity: bytes, peer: NativePeer) -> Callable[[Any], None]:
        def deliver(value: Any) -> None:
            request_id = peer.client.native_request_id
            self._native_out.append((identity, envelope.encode_reply(request_id, value)))
            self.schedule_flush()

        return deliver

    def _native_killer(self, identity: bytes) -> Callable[[], None]:
        def kill() -> None:
            peer = self.native_peers.pop(identity, None)
            if peer is not None:
                self.server.remove_client(peer.client)

        return kill

    def _send_native_replies(self) -> None:
        out = self._native_out
        self._native_out = []
        if self._bus_push is None:
            return
        parts: list[bytes] = [b"replies"]
        for identity, frame in out:
            self.server.stats.net_output_bytes += len(frame)
            parts.append(identity)
            parts.append(frame)
        try:
            self._bus_push.send_multipart(parts, zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("native_replies_dropped", count=len(out), reason=str(exc))

    def tell_bus(self, message: Any) -> bool:
        """Hand a typed message to the bus thread's handler for its type (actors/bus/bus.py), in order.

        The message object itself is queued (no serialisation); one small frame on this thread's inproc PUSH
        wakes the bus to run it. Returns False if it could not be queued (the actor is dead and being
        restarted): the message is dropped. Never raises, because this runs inside the tick's flush and the
        tick's replies must still leave. A dropped stream batch leaves a gap the replication actor detects by
        offset (replicas resync).
        """
        if self._bus_push is None:
            return False
        self.bus_outbox.append(message)
        try:
            self._bus_push.send(b"messages", zmq.NOBLOCK)  # actors/bus/bus.py: LOOP_MESSAGES_FRAME
        except zmq.ZMQError as exc:
            # No bus to take it (only this thread appends, and no bus pops while none is connected).
            self.bus_outbox.pop()
            if not self._bus_unreachable:
                self._bus_unreachable = True
                log.warning("bus_message_dropped", reason=str(exc), verb=type(message).__name__)
            return False
        self._bus_unreachable = False
        return True

    def call_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread (from any thread)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    # -- cron ------------------------------------------------------------------------------------------

    def _cron(self) -> None:
        server = self.server
        assert self.loop is not None
        hz = server.config["hz"]
        period_s = 1.0 / hz
        try:
            if server.cron_paused:
                return  # DEBUG PAUSE-CRON 1
            if server.script_busy is not None:
                return  # a busy script still owns the keyspace (actors/scripting), as in Redis: no cron
            if server.active_expire_enabled and not server.loading:
                cycle_started_ns = time.perf_counter_ns()
                server.keyspace.active_expire_cycle(period_s * 1000 * ACTIVE_EXPIRE_CPU_SHARE)
                latency.expire_cycle_ran(server, (time.perf_counter_ns() - cycle_started_ns) // 1000)
            now = time.monotonic()
            processed = server.total_commands_processed
            self._ops_samples.append((now, processed))
            first_t, first_n = self._ops_samples[0]
            if now > first_t:
                self.ops_per_sec = int((processed - first_n) / (now - first_t))
            timeout_s = server.config["timeout"]
            if timeout_s:
                for client in list(server.clients.values()):
                    if (
                        client.kind is ClientKind.RESP
                        and client.blocked is None
                        and not client.in_pubsub
                        and now - client.last_interaction_s > timeout_s
                    ):
                        client.kill()
            for identity, peer in list(self.native_peers.items()):
                if now - peer.last_seen_s > NATIVE_CLIENT_IDLE_S and not peer.client.in_pubsub:
                    del self.native_peers[identity]
                    server.remove_client(peer.client)
            for job in self.cron_jobs:
                job()
        except Exception:
            log.exception("cron_failed")
        finally:
            if server.stream.chunks:
                self.schedule_flush()
            self.loop.call_later(period_s, self._cron)
