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
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog
import zmq

from actors.bus.admission import PeerAuthenticated
from actors.loop.connection import RespConnection
from actors.loop.fastlane import FastLane
from actors.loop.listeners import PortListeners, UnixListener
from actors.persistence.rdb import codec as rdb_codec
from actors.ratelog import remote_errors
from actors.server import latency
from actors.server.client import Client, ClientKind
from actors.server.errorstats import count_error_reply
from actors.server.server import BLOCKED, Server
from actors.server.stream import StreamBatch
from protocol import envelope
from protocol.errors import CommandError

log = structlog.get_logger("redactor.master")

# How often the cron runs per second is the `hz` directive; active expiry may use this share of each period.
ACTIVE_EXPIRE_CPU_SHARE = 0.25
# Native-protocol clients idle this long are forgotten (a ZeroMQ peer has no connection to close).
NATIVE_CLIENT_IDLE_S = 3600


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
        self._unix: UnixListener | None = None  # unixsocket's listener, when set
        self._stopped: asyncio.Event | None = None
        # INFO's instantaneous_ops_per_sec and instantaneous_input/output_kbps: rates over the last 16 cron
        # ticks' samples of (time, commands processed, bytes read, bytes written), as Redis's 16 samples.
        self.ops_per_sec = 0
        self.input_kbps = 0.0
        self.output_kbps = 0.0
        self._ops_samples: deque[tuple[float, int, int, int]] = deque(maxlen=16)
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
                        kind = "TCP" if context is None else "TLS"
                        log.warning(
                            "listen_failed",
                            address=f"{host}:{listen_port}",
                            reason=exc.strerror or str(exc),
                            message=f"Warning: Could not create server {kind} listening socket "
                            f"{host}:{listen_port}: bind: {exc.strerror or exc}",
                        )
                        # Redis's words (its test suite, and scripts, look for them to try another port)
                        errors.append(f"Failed listening on port {listen_port} ({kind}), aborting.")
        config = self.server.config
        if config["unixsocket"] and not errors:
            self._unix = UnixListener(config["unixsocket"], int(config["unixsocketperm"], 8))
            try:
                self._servers.append(
                    await self._unix.start(self.loop, lambda: RespConnection(self), config["tcp-backlog"])
                )
            except OSError as exc:
                errors.append(str(exc))
        if errors or not self._servers:
            for srv in self._servers:
                srv.close()
            if not errors:  # no address, or port 0 and no tls-port or unixsocket: Redis's words
                raise OSError("Configured to not listen anywhere, exiting.")
            raise OSError(errors[0])
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
        if self._unix is not None:
            self._unix.remove()
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
            server.stats.reads_processed += 1
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
            self.server.stats.writes_processed += 1
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
                cycle_us = (time.perf_counter_ns() - cycle_started_ns) // 1000
                server.keyspace.expire_cycle_time_used_us += cycle_us
                latency.expire_cycle_ran(server, cycle_us)
            now = time.monotonic()
            processed = server.total_commands_processed
            stats = server.stats
            sample = (now, processed, stats.net_input_bytes, stats.net_output_bytes)
            self._ops_samples.append(sample)
            first = self._ops_samples[0]
            elapsed_s = now - first[0]
            if elapsed_s > 0:
                # (CONFIG RESETSTAT zeroes the counters under the window: no negative rate meanwhile)
                self.ops_per_sec = max(0, int((processed - first[1]) / elapsed_s))
                self.input_kbps = max(0.0, (sample[2] - first[2]) / elapsed_s / 1024)
                self.output_kbps = max(0.0, (sample[3] - first[3]) / elapsed_s / 1024)
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
