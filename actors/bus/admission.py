"""Who may use the bus, and how much an unauthenticated peer may cost: the bus's door.

ZeroMQ hides connections behind routing ids, so a ROUTER cannot close one peer and never says when one
connects or goes (ROUTER_NOTIFY is a draft option most libzmq builds lack). This module watches the router's
monitor socket instead: ``ACCEPTED`` and ``DISCONNECTED`` events carry the connection's file descriptor, and
every received frame carries its source descriptor (``ZMQ_SRCFD``), which ties routing ids to connections. To
drop a connection it calls ``shutdown()`` on that descriptor (never ``close()``: libzmq owns it), so libzmq sees
the end of the stream and forgets the peer as if it had left.

With that, each bus connection is one ``BusConnection`` in one of two states (``PeerState``):

    UNAUTHENTICATED   accepted; has not proven the password yet (and one is needed): it may send at most
                      ``PREAUTH_FRAME_BYTES`` per frame and ``PREAUTH_TOTAL_BYTES`` in all, frames within Redis's
                      limits before AUTH (10 arguments, 16 KiB per string: protocol/bus_preauth.py walks the
                      msgpack headers without decoding them), is dropped when idle
                      for ``bus-auth-timeout-ms`` or unauthenticated for ``PREAUTH_LIFETIME_S``, and at most
                      ``bus-max-unauthenticated-peers`` such connections exist (a newcomer over the cap pushes
                      the oldest one out)
    AUTHENTICATED     AUTH succeeded (the loop says so), or a replica's Hello / PSYNC carried the password (the
                      replication handler says so): only the router's ZMQ_MAXMSGSIZE bounds it

When no password is needed every peer is treated as authenticated (as Redis's default user without a password)
and only protected mode applies: with ``protected-mode yes`` and no ``requirepass``, a connection from an
address that is not loopback is dropped at accept, as the RESP port refuses it.

When a connection goes (or is dropped) the loop is told its routing ids are gone (the empty frame
ROUTER_NOTIFY would have sent), so native clients do not linger for NATIVE_CLIENT_IDLE_S. Frames over the
limits are dropped before anything decodes them, and their connection with them (as Redis closes a client
over its limits; no error reply, which the shutdown would race). Every refusal is logged through
actors/ratelog.py and counted in ``INFO bus`` (``info``).
"""

from __future__ import annotations

import enum
import ipaddress
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import zmq
from zmq.utils.monitor import parse_monitor_message

from actors.ratelog import remote_errors
from protocol.bus_preauth import (
    PREAUTH_MAX_BULK_BYTES,
    PREAUTH_NODE_MAX_ITEMS,
    PREAUTH_REQUEST_MAX_ITEMS,
    preauth_refusal,
)
from protocol.monitor import close_monitor, open_monitor
from protocol.ports import CLUSTER_FAMILY

if TYPE_CHECKING:
    from actors.bus.bus import BusActor

# What an unauthenticated peer may send: one frame (Redis allows 10 bulks of 16 KiB before AUTH) and in all.
PREAUTH_FRAME_BYTES = 256 * 1024
PREAUTH_TOTAL_BYTES = 1024 * 1024
# However busy, a peer still unauthenticated after this long is dropped (an AUTH takes one round trip).
PREAUTH_LIFETIME_S = 60.0
# Slack over client-query-buffer-limit for the envelope around the arguments (ZMQ_MAXMSGSIZE).
FRAME_ENVELOPE_SLACK_BYTES = 1024 * 1024
_MONITOR_EVENTS = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED
# A dropped connection whose DISCONNECTED event has not come after this long is forgotten anyway.
DROPPED_FORGET_S = 10.0
# How often the timers look at the connections (the bus ticks every poll slice, 20 ms).
SWEEP_INTERVAL_S = 0.25
# How often the bytes an unauthenticated connection has sent are read from the kernel (TCP_INFO), so a frame
# over the limits is cut off while libzmq is still reading it rather than buffered whole (up to ZMQ_MAXMSGSIZE).
INFLIGHT_CHECK_INTERVAL_S = 0.02
# TCP bytes an unauthenticated connection may have sent: its budget, one frame over it (refused when it
# completes anyway), and the ZMTP greeting and framing.
PREAUTH_TCP_BYTES = PREAUTH_TOTAL_BYTES + PREAUTH_FRAME_BYTES + 64 * 1024
# struct tcp_info (linux/tcp.h): tcpi_bytes_received, a u64 at this offset (Linux 4.1 and later).
_TCPI_BYTES_RECEIVED = struct.Struct("=Q")
_TCPI_BYTES_RECEIVED_OFFSET = 128


class PeerAuthenticated(NamedTuple):
    """Loop -> bus (``MasterActor.tell_bus``): the native client behind ``identity`` is authenticated."""

    identity: bytes


class PeerState(enum.Enum):
    UNAUTHENTICATED = "unauthenticated"  # waits for AUTH (or a replica's password); budgeted and timed
    AUTHENTICATED = "authenticated"  # proved the password: only the frame size limit applies
    DROPPED = (
        "dropped"  # shut down by us, waits for libzmq's DISCONNECTED: frames already queued are discarded
    )


class BusConnection:
    """One TCP connection to the bus router, known by its file descriptor."""

    __slots__ = (
        "fd",
        "addr",
        "accepted_s",
        "last_frame_s",
        "state",
        "preauth_bytes",
        "identities",
        "admitted",
    )

    def __init__(self, fd: int, addr: str, now: float) -> None:
        self.fd = fd
        self.addr = addr  # "ip:port" of the peer, as CLIENT LIST shows it
        self.accepted_s = now
        self.last_frame_s = now
        self.state = PeerState.UNAUTHENTICATED
        self.preauth_bytes = 0
        # Routing ids seen on this connection (one for a ROUTER peer; a set so a reused id cannot confuse us).
        self.identities: set[bytes] = set()
        # True once a frame of it went on to the loop: only then must the loop hear that it is gone (a flood of
        # refused connections costs the loop thread nothing).
        self.admitted = False


def _peer_of(fd: int) -> tuple[str, int] | None:
    """The (host, port) at the other end of ``fd``, or None if it is no TCP socket any more."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        peer = sock.getpeername()
        return (str(peer[0]), int(peer[1]))
    except OSError:
        return None
    finally:
        sock.detach()  # libzmq owns the descriptor


def _tcp_bytes_received(fd: int) -> int | None:
    """Payload bytes the kernel has received on ``fd`` (read by libzmq or not), or None where unknown."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return None
    finally:
        sock.detach()  # libzmq owns the descriptor
    end = _TCPI_BYTES_RECEIVED_OFFSET + _TCPI_BYTES_RECEIVED.size
    if len(info) < end:
        return None  # a kernel older than 4.1
    return int(_TCPI_BYTES_RECEIVED.unpack_from(info, _TCPI_BYTES_RECEIVED_OFFSET)[0])


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _shape_refusal(parts: list[zmq.Frame]) -> str | None:
    """Redis's limits before AUTH on what a frame holds, walked before anything decodes it (or None)."""
    if len(parts) == 2:  # a client request [version, request_id, argv]
        return preauth_refusal(parts[1].buffer, PREAUTH_REQUEST_MAX_ITEMS, PREAUTH_MAX_BULK_BYTES)
    if len(parts) > 4:
        return "unauthenticated frame layout"
    if len(parts) >= 3 and parts[1].bytes != CLUSTER_FAMILY:
        # A node message's header (a replica's Hello / Psync carries the password). Cluster gossip is left
        # out: Redis's cluster bus takes no password, so its handler admits whoever speaks it (with CURVE keys
        # configured, only trusted nodes get that far).
        return preauth_refusal(parts[2].buffer, PREAUTH_NODE_MAX_ITEMS, PREAUTH_MAX_BULK_BYTES)
    return None


def format_addr(peer: tuple[str, int]) -> str:
    host, port = peer
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Admission:
    """The bus's door: registered as a bus extension (see actors/bus/bus.py), runs on the bus thread."""

    def __init__(self, bus: BusActor) -> None:
        self.bus = bus
        self.server = bus.master.server
        self.config = self.server.config
        self.conns: dict[int, BusConnection] = {}
        self.by_identity: dict[bytes, BusConnection] = {}
        self.monitor: zmq.Socket[bytes] | None = None
        self.dropped_total = 0
        self.frames_refused = 0
        self._next_sweep_s = 0.0
        self._next_inflight_check_s = 0.0
        self.server.info_sections["bus"] = self.info
        bus.register_lifecycle(self._started, self._stopping)
        bus.register_tick(self._tick)
        bus.register_loop_message(PeerAuthenticated, lambda m: self.peer_authenticated(m.identity))

    # -- lifecycle (bus thread) ------------------------------------------------------------------------

    def configure_router(self, router: zmq.Socket[bytes]) -> None:
        """Before bind: the largest frame any peer may send (Redis's bound on one request, plus the envelope)."""
        router.setsockopt(
            zmq.MAXMSGSIZE, self.config["client-query-buffer-limit"] + FRAME_ENVELOPE_SLACK_BYTES
        )

    def _started(self) -> None:
        assert self.bus.router is not None
        self.monitor = open_monitor(self.bus.router, _MONITOR_EVENTS)
        self.bus.add_socket(self.monitor, self._drain_monitor)

    def _stopping(self) -> None:
        if self.monitor is not None:
            # Stopped before its reader closes (protocol/monitor.py); the bus forgets the closed reader.
            self.bus.remove_socket(self.monitor, close=False)
            close_monitor(self.bus.router, self.monitor)
        self.monitor = None
        self.conns.clear()
        self.by_identity.clear()

    # -- what the bus asks -----------------------------------------------------------------------------

    def password_needed(self) -> bool:
        # Read from the bus thread: ACL's default user is replaced whole on change, never half-updated.
        return self.server.acl.auth_required_by_default()

    def admit(self, parts: list[zmq.Frame]) -> bool:
        """A multipart message from the router (identity first): may it go on to be decoded and handled?"""
        identity = parts[0].bytes
        conn = self.by_identity.get(identity)
        if conn is None:
            conn = self._connection_of(parts[0], identity)
            if conn is None:
                return False
        if conn.state is PeerState.AUTHENTICATED:
            conn.admitted = True
            return True
        if conn.state is PeerState.DROPPED:
            self.frames_refused += 1
            return False  # queued before the shutdown: nothing of it is read (the cheap path of a flood)
        conn.last_frame_s = time.monotonic()
        if not self.password_needed():
            # As Redis's clients: one that connected while no password was needed stays authenticated after
            # CONFIG SET requirepass (a replica's link must not be timed out for it).
            conn.state = PeerState.AUTHENTICATED
            conn.admitted = True
            return True
        size = sum(len(p) for p in parts) - len(identity)
        conn.preauth_bytes += size
        if size > PREAUTH_FRAME_BYTES:
            self._refuse(conn, "unauthenticated frame too big", size_bytes=size)
            return False
        if conn.preauth_bytes > PREAUTH_TOTAL_BYTES:
            self._refuse(conn, "unauthenticated peer sent too much", total_bytes=conn.preauth_bytes)
            return False
        refusal = _shape_refusal(parts)
        if refusal is not None:
            self._refuse(conn, refusal, frames=len(parts) - 1)
            return False
        conn.admitted = True
        return True

    def _refuse(self, conn: BusConnection, reason: str, **fields: Any) -> None:
        self.frames_refused += 1
        self.drop(conn, reason, **fields)

    def info(self) -> list[tuple[str, Any]]:
        """``INFO bus``: Redis has no bus port for clients, so these fields (and the section) are redactor's own.

        Read on the loop thread while the bus thread updates them: counters are plain ints, and the connections
        are copied in one C-level step before they are counted.
        """
        states = [c.state for c in list(self.conns.values())]
        return [
            ("bus_authenticated_peers", states.count(PeerState.AUTHENTICATED)),
            ("bus_unauthenticated_peers", states.count(PeerState.UNAUTHENTICATED)),
            ("bus_peers_dropped", self.dropped_total),
            ("bus_frames_refused", self.frames_refused),
        ]

    def _connection_of(self, frame: zmq.Frame, identity: bytes) -> BusConnection | None:
        """The connection a new routing id arrived on (its ACCEPTED event may still be queued)."""
        try:
            fd = int(frame.get(zmq.SRCFD))
        except (zmq.ZMQError, ValueError, TypeError):
            return None
        # Events first: a descriptor the kernel reused has its old connection's DISCONNECTED and its own
        # ACCEPTED queued. If they are still in flight, the socket's peer tells the connection apart (a new
        # peer must never inherit the old one's address: enable-debug-command local judges it).
        self._drain_monitor()
        conn = self.conns.get(fd)
        if conn is not None:
            peer = _peer_of(fd)
            if peer is None or format_addr(peer) != conn.addr:
                self._forget(fd)
                conn = None
        if conn is None:
            conn = self._accept(fd)
            if conn is None:
                return None
        conn.identities.add(identity)
        self.by_identity[identity] = conn
        self.bus.master.peer_addresses[identity] = conn.addr
        return conn

    def peer_authenticated(self, identity: bytes) -> None:
        """The peer behind ``identity`` proved the password (AUTH, or a replica's Hello / PSYNC)."""
        conn = self.by_identity.get(identity)
        if conn is not None and conn.state is PeerState.UNAUTHENTICATED:
            conn.state = PeerState.AUTHENTICATED

    def unauthenticated_count(self) -> int:
        return sum(1 for c in self.conns.values() if c.state is PeerState.UNAUTHENTICATED)

    # -- connections come and go -----------------------------------------------------------------------

    def _drain_monitor(self) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        for _ in range(10_000):
            try:
                frames = monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                event = parse_monitor_message(frames)
            except Exception:
                continue
            fd = int(event["value"])
            if event["event"] == zmq.EVENT_ACCEPTED:
                self._forget(fd)  # a reused descriptor: the old connection is gone
                self._accept(fd)
            elif event["event"] == zmq.EVENT_DISCONNECTED:
                self._forget(fd)

    def _accept(self, fd: int) -> BusConnection | None:
        peer = _peer_of(fd)
        if peer is None:
            return None
        conn = BusConnection(fd, format_addr(peer), time.monotonic())
        self.conns[fd] = conn
        if self.config["protected-mode"] and not self.password_needed() and not _is_loopback(peer[0]):
            self.drop(conn, "protected mode: not loopback and no password")
            return None
        cap = self.config["bus-max-unauthenticated-peers"]
        if self.password_needed() and self.unauthenticated_count() > cap:
            # Over the cap the OLDEST unauthenticated peer goes, not the newcomer: a real client sends AUTH
            # within a round trip of connecting, so it gets its chance even while a flood (whose sockets
            # reconnect on their own) holds every other slot.
            oldest = next(c for c in self.conns.values() if c.state is PeerState.UNAUTHENTICATED)
            self.drop(oldest, "too many unauthenticated bus peers", limit=cap)
        return conn

    def _forget(self, fd: int) -> None:
        conn = self.conns.pop(fd, None)
        if conn is None:
            return
        gone = []
        addresses = self.bus.master.peer_addresses
        for identity in conn.identities:
            addresses.pop(identity, None)
            if self.by_identity.get(identity) is conn:
                del self.by_identity[identity]
                gone.append((identity, b""))  # the loop's "peer went away" frame (ROUTER_NOTIFY's)
        if gone:
            # A replica whose connection closed is dropped at once, as Redis drops a replica's client.
            self.bus.peers_gone([identity for identity, _ in gone])
        if gone and conn.admitted:
            master = self.bus.master
            master.call_threadsafe(master.native_requests, gone)

    def drop(self, conn: BusConnection, reason: str, **fields: Any) -> None:
        """End ``conn``: shut its socket down so libzmq closes it (after checking the descriptor is still it)."""
        if conn.state is PeerState.DROPPED:
            return
        self.dropped_total += 1
        remote_errors.info("bus_peer_dropped", addr=conn.addr, reason=reason, **fields)
        conn.state = PeerState.DROPPED
        conn.last_frame_s = time.monotonic()  # when it was dropped (the sweep forgets it if no event comes)
        fd = conn.fd
        peer = _peer_of(fd)
        if peer is not None and format_addr(peer) == conn.addr:
            try:
                sock = socket.socket(fileno=fd)
            except OSError:
                sock = None
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                finally:
                    sock.detach()
        else:
            self._forget(fd)  # the descriptor is gone already: nothing more will arrive from it

    def _check_inflight(self) -> None:
        """Drop an unauthenticated connection whose peer has sent more than it may, even mid-frame.

        ``admit`` sees a frame only once libzmq has read all of it, and libzmq reads up to ZMQ_MAXMSGSIZE (the
        router's, for every peer: it cannot be set per connection). The kernel counts what each connection
        received, so a huge frame from a peer without the password is cut off after a few ticks' worth of bytes.
        """
        if not self.conns or not self.password_needed():
            return
        for conn in list(self.conns.values()):
            if conn.state is not PeerState.UNAUTHENTICATED:
                continue
            received = _tcp_bytes_received(conn.fd)
            if received is not None and received > PREAUTH_TCP_BYTES:
                self._refuse(conn, "unauthenticated peer is sending too much", received_bytes=received)

    # -- timers ------------------------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        if now >= self._next_inflight_check_s:
            self._next_inflight_check_s = now + INFLIGHT_CHECK_INTERVAL_S
            self._check_inflight()
        if now < self._next_sweep_s:
            return
        self._next_sweep_s = now + SWEEP_INTERVAL_S
        remote_errors.flush_due(now)
        if not self.conns:
            return
        password_needed = self.password_needed()
        idle_s = self.config["bus-auth-timeout-ms"] / 1000.0
        for conn in list(self.conns.values()):
            if conn.state is PeerState.AUTHENTICATED:
                continue
            if conn.state is PeerState.DROPPED:
                if now - conn.last_frame_s > DROPPED_FORGET_S:
                    self._forget(conn.fd)  # libzmq's DISCONNECTED never came (monitor queue overflowed?)
                continue
            if not password_needed:
                continue
            if now - conn.last_frame_s > idle_s:
                self.drop(conn, "unauthenticated and idle", idle_ms=int((now - conn.last_frame_s) * 1000))
            elif now - conn.accepted_s > PREAUTH_LIFETIME_S:
                self.drop(conn, "still unauthenticated", age_s=int(now - conn.accepted_s))
