"""The node bus: a pykka actor whose thread owns the node's ZeroMQ ROUTER on the bus port.

Everything that reaches a node over ZeroMQ arrives here: native-protocol clients (the shell) and other nodes
(replication; later sentinel and cluster). ZeroMQ sockets belong to the thread that made them, so this
actor's thread makes and uses all of its sockets, and nothing else touches them:

    router   ROUTER on tcp://<bind>:<bus-port>, ROUTER_NOTIFY on where libzmq has it (an empty frame when a peer comes or goes)
    pull     PULL on the master actor's inproc endpoint: native replies, and wake-ups for the loop's messages

The actor runs a poll loop by telling itself ``_POLL`` after each slice, so pykka messages (control requests
from the supervisor or the master) are handled between slices; a message another thread puts in the inbox
ends the current slice at once (``_WakingInbox``), so none waits out the ``POLL_SLICE_MS`` poll.

Extended by registration, not inheritance: the bus is built with extension factories (``extensions``), each
called once with the bus (in the constructor, so a restarted bus gets fresh ones) to register what it handles:

    register_family(family, handler)       node-to-node messages whose first frame is ``family`` (replication:
                                           protocol/peer.py's ``PEER_FAMILY``; cluster gossip: its own)
    register_loop_message(type, handler)   typed messages the loop sent with ``MasterActor.tell_bus``
    register_control(type, handler)        pykka messages told to the actor (a worker thread's result, say)
    register_tick(handler)                 called with time.monotonic() after every poll slice: timers
    register_bulk(handler)                 bulk senders (snapshot transfers): handler(budget_bytes) -> more?
    register_lifecycle(started, stopping)  once the sockets exist / before they close
    register_gone(handler)                 routing ids whose connection closed (admission.py sees it)
    add_socket(sock, callback)             poll another socket of this thread (or a file descriptor) too

Wire conventions on the router: a client request is one frame (see protocol/envelope.py); a node-to-node
message is ``[family, ...]`` (two or more frames), handed to the family's handler with the sender's identity.

Small control frames before bulk: every iteration first drains the inproc PULL, the router and the extra
sockets (pings, acks, hellos, gossip), runs the timers, and only then lets the bulk senders send, at most
``BULK_BYTES_PER_POLL`` (one snapshot chunk) per iteration. A frame that arrives during a transfer therefore
waits for at most one chunk's read and send on this thread, never for a whole window of them; while a bulk
sender has more to send the next poll does not block, so the transfer runs at full speed between control
frames. (ZeroMQ keeps one FIFO pipe per peer: a frame to a peer that is itself receiving a transfer still
follows the chunks already queued to it, at most the transfer's window; other peers are not affected.)

Supervision: the actor derives from ``SupervisedActor``, so any failure (in ``on_start`` too) reaches the
supervisor with its cause and ``DEBUG CRASH-ACTOR <name>`` makes it raise in its own thread. A restarted bus
binds the same ports again (retrying while the dead incarnation's sockets finish closing) and asks the master
actor to reconnect its inproc PUSH, which does not reconnect to a re-bound PULL by itself.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
import zmq

from actors.bus.admission import Admission
from actors.bus.curve import BusCurve
from actors.ratelog import remote_errors
from actors.supervision.supervisor import SupervisedActor

if TYPE_CHECKING:
    from actors.loop.master import MasterActor

log = structlog.get_logger("redactor.bus")

# Longest a poll blocks when nothing arrives: data on the sockets and messages put in the actor's inbox by other
# threads wake it at once; the slice bounds how late the timers (register_tick) run.
POLL_SLICE_MS = 20
# Bytes the bulk senders may send per poll iteration, after the control frames (one snapshot chunk).
BULK_BYTES_PER_POLL = 1024 * 1024
# First frame of the loop's PULL messages: native replies, and "the loop queued typed messages" (tell_bus).
REPLIES_FRAME = b"replies"
LOOP_MESSAGES_FRAME = b"messages"
# A restarted bus binds the ports its dead incarnation just closed; ZeroMQ releases them asynchronously.
BIND_RETRY_S = 2.0
BIND_RETRY_INTERVAL_S = 0.01


def bind_retrying(sock: zmq.Socket[bytes], endpoint: str, retry_s: float = BIND_RETRY_S) -> None:
    """Bind, retrying while the address is still held by a socket that is closing (EADDRINUSE)."""
    deadline = time.monotonic() + retry_s
    while True:
        try:
            sock.bind(endpoint)
            return
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(BIND_RETRY_INTERVAL_S)


class _Poll:
    __slots__ = ()


_POLL = _Poll()


def zmq_endpoints(binds: list[str], port: int) -> list[str]:
    out = []
    for addr in binds:
        host = addr.lstrip("-")
        if host in ("*", "0.0.0.0"):
            out.append(f"tcp://*:{port}")
        elif ":" in host:
            out.append(f"tcp://[{host}]:{port}")
        else:
            out.append(f"tcp://{host}:{port}")
    return out


Extension = Callable[["BusActor"], Any]


class _WakingInbox(queue.Queue[Any]):
    """The bus actor's pykka inbox: a message put by another thread ends the actor's current poll at once.

    The actor handles pykka messages between poll slices, so without this a tell or ask from another thread
    waited out the slice: the supervisor's start-up confirmation (an ask right after ``on_start`` told itself
    ``_POLL``) cost every node start ~20 ms and every stop as much. The actor's own ``_POLL`` tells come from
    its thread and wake nothing (waking for them would turn the poll into a spin).
    """

    def __init__(self) -> None:
        super().__init__()
        self.wake: Callable[[], None] | None = None  # set once the actor's wake pipe exists (on_start)
        self.owner_thread = 0  # threading.get_ident() of the actor's thread

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        wake = self.wake
        if wake is not None and threading.get_ident() != self.owner_thread:
            wake()


class BusActor(SupervisedActor):
    """Owns the bus sockets and the poll loop; extensions register handlers (see the module docstring)."""

    def __init__(
        self, master: MasterActor, binds: list[str], bus_port: int, extensions: Sequence[Extension] = ()
    ) -> None:
        super().__init__()
        self.master = master
        self.binds = binds
        self.bus_port = bus_port
        self.router: zmq.Socket[bytes] | None = None
        self.pull: zmq.Socket[bytes] | None = None
        self.poller = zmq.Poller()
        # Extra sockets made by subclasses on this thread (or plain file descriptors, such as a pipe from a
        # child process), with the callback that drains each.
        self.extra_sockets: dict[zmq.Socket[bytes] | int, Any] = {}
        # A pipe whose read end is polled with the sockets: ``wake`` makes the poll return at once, so a
        # message told to the actor by a worker thread is handled now rather than after the poll slice.
        self._wake_r = self._wake_w = -1
        self._wake_lock = threading.Lock()
        # The registry (actor thread once started; filled by the extensions' constructors).
        self._families: dict[bytes, Callable[[bytes, list[bytes]], None]] = {}
        self._loop_handlers: dict[type, Callable[[Any], None]] = {}
        self._control_handlers: dict[type, Callable[[Any], Any]] = {}
        self._ticks: list[Callable[[float], None]] = []
        self._bulk_senders: list[Callable[[int], bool]] = []
        self._started_hooks: list[Callable[[], None]] = []
        self._gone_handlers: list[Callable[[list[bytes]], None]] = []
        self._stopping_hooks: list[Callable[[], None]] = []
        # True when a bulk sender stopped only for its budget: the next poll must not block.
        self._bulk_pending = False
        # The door (actors/bus/admission.py): who may connect, and what they may send before AUTH.
        self.admission = Admission(self)
        # CURVE keys (actors/bus/curve.py): encrypted links, only trusted peers; off without keys.
        self.curve = BusCurve(self)
        self.extensions = [make(self) for make in extensions]

    # -- the registry ------------------------------------------------------------------------------------

    def register_family(self, family: bytes, handler: Callable[[bytes, list[bytes]], None]) -> None:
        """Node messages ``[family, ...]`` go to ``handler(identity, frames)`` (frames: family first)."""
        if not family or family in self._families:
            raise ValueError(f"bus family {family!r} is empty or taken")
        self._families[family] = handler

    def register_loop_message(self, kind: type, handler: Callable[[Any], None]) -> None:
        """Messages of type ``kind`` the loop sends with ``MasterActor.tell_bus`` go to ``handler``."""
        self._loop_handlers[kind] = handler

    def register_control(self, kind: type, handler: Callable[[Any], Any]) -> None:
        """pykka messages of type ``kind`` told (or asked) to this actor go to ``handler``."""
        self._control_handlers[kind] = handler

    def register_tick(self, handler: Callable[[float], None]) -> None:
        """``handler(now)`` after every poll slice (time.monotonic()): timers live here."""
        self._ticks.append(handler)

    def register_bulk(self, handler: Callable[[int], bool]) -> None:
        """``handler(budget_bytes)`` sends at most about that much bulk data now; True if it has more ready."""
        self._bulk_senders.append(handler)

    def register_lifecycle(
        self, started: Callable[[], None] | None = None, stopping: Callable[[], None] | None = None
    ) -> None:
        """``started()`` once the sockets exist; ``stopping()`` before they close (stop or failure)."""
        if started is not None:
            self._started_hooks.append(started)
        if stopping is not None:
            self._stopping_hooks.append(stopping)

    def register_gone(self, handler: Callable[[list[bytes]], None]) -> None:
        """``handler(identities)`` when the connection those routing ids came from has closed."""
        self._gone_handlers.append(handler)

    def peers_gone(self, identities: list[bytes]) -> None:
        """Admission saw a connection close (actor thread): tell the extensions which routing ids went."""
        for handler in self._gone_handlers:
            handler(identities)

    # -- pykka hooks (actor thread) --------------------------------------------------------------------

    def on_start(self) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        try:
            router.setsockopt(zmq.ROUTER_NOTIFY, zmq.NOTIFY_CONNECT | zmq.NOTIFY_DISCONNECT)
        except zmq.ZMQError:
            # A draft option: libzmq builds without the draft API refuse it (EINVAL). Gone peers are then
            # forgotten by the master's idle sweep (NATIVE_CLIENT_IDLE_S) instead of at once.
            pass
        router.setsockopt(zmq.SNDHWM, 100_000)
        router.setsockopt(zmq.RCVHWM, 100_000)
        self.admission.configure_router(router)
        try:
            self.curve.configure_router(router)
        except zmq.ZMQError:
            router.close(0)
            raise
        bound = 0
        for endpoint, optional in zip(
            zmq_endpoints(self.binds, self.bus_port), [b.startswith("-") for b in self.binds], strict=True
        ):
            if "[" in endpoint:
                router.setsockopt(zmq.IPV6, 1)
            try:
                bind_retrying(router, endpoint)
                bound += 1
            except zmq.ZMQError as exc:
                if not optional:
                    router.close(0)
                    raise OSError(f"could not bind bus port {endpoint}: {exc}") from exc
        if not bound:
            router.close(0)
            raise OSError(f"could not bind bus port {self.bus_port}")
        pull = ctx.socket(zmq.PULL)
        pull.setsockopt(zmq.LINGER, 0)
        pull.setsockopt(zmq.RCVHWM, 0)
        try:
            bind_retrying(pull, self.master.bus_endpoint)
        except zmq.ZMQError:
            router.close(0)
            pull.close(0)
            raise
        self.router, self.pull = router, pull
        # After a restart the loop's PUSH still points at the dead PULL: have it connect to this one.
        self.master.call_threadsafe(self.master.reconnect_bus)
        self.poller.register(router, zmq.POLLIN)
        self.poller.register(pull, zmq.POLLIN)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        with self._wake_lock:
            self._wake_r, self._wake_w = wake_r, wake_w
        self.add_socket(wake_r, self._drain_wake)
        inbox = self.actor_inbox
        if isinstance(inbox, _WakingInbox):
            inbox.owner_thread = threading.get_ident()
            inbox.wake = self.wake
        for hook in self._started_hooks:
            hook()
        self.actor_ref.tell(_POLL)

    @staticmethod
    def _create_actor_inbox() -> _WakingInbox:  # pykka's hook: the queue its ActorRef puts messages in
        return _WakingInbox()

    def on_stop(self) -> None:
        self._close_sockets()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._close_sockets()

    def _close_sockets(self) -> None:
        for hook in self._stopping_hooks:
            hook()
        for sock in list(self.extra_sockets):
            self.remove_socket(sock, close=True)
        with self._wake_lock:
            if self._wake_w >= 0:
                os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
        for own in (self.router, self.pull):
            if own is not None:
                try:
                    self.poller.unregister(own)
                except KeyError:
                    pass
                own.close(0)
        self.router = self.pull = None

    def on_receive(self, message: Any) -> Any:
        if message is _POLL:
            self._poll_once()
            self.actor_ref.tell(_POLL)
            return None
        handler = self._control_handlers.get(type(message))
        if handler is not None:
            return handler(message)
        if message == "ping":
            return "pong"
        return None

    # -- the poll loop ---------------------------------------------------------------------------------

    def _poll_once(self) -> None:
        events = dict(self.poller.poll(0 if self._bulk_pending else POLL_SLICE_MS))
        # Control first: the loop's messages, node and client frames, the extra sockets; then timers.
        if self.pull is not None and self.pull in events:
            self._drain_pull()
        if self.router is not None and self.router in events:
            self._drain_router()
        for sock, callback in list(self.extra_sockets.items()):
            if sock in events:
                callback()
        now = time.monotonic()
        for tick in self._ticks:
            tick(now)
        # Bulk last, and bounded, so the next iteration's control frames wait for at most one chunk.
        pending = False
        for send_bulk in self._bulk_senders:
            if send_bulk(BULK_BYTES_PER_POLL):
                pending = True
        self._bulk_pending = pending

    def _drain_router(self) -> None:
        assert self.router is not None
        requests: list[tuple[bytes, bytes]] = []
        admit = self.admission.admit
        for _ in range(10_000):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            # Sizes and the sender are checked before anything decodes the frames (admission.py).
            if not admit(frames):
                continue
            parts = [frame.bytes for frame in frames]
            identity = parts[0]
            if len(parts) == 2:
                requests.append((identity, parts[1]))
            elif len(parts) >= 3 and parts[1] in self._families:
                try:
                    self._families[parts[1]](identity, parts[1:])
                except Exception:
                    log.exception("node_message_failed")
            else:
                remote_errors.info(
                    "client_error", transport="zmq", reason="unexpected frame layout", frames=len(parts)
                )
        if requests:
            self.master.call_threadsafe(self.master.native_requests, requests)

    def _drain_pull(self) -> None:
        assert self.pull is not None and self.router is not None
        for _ in range(10_000):
            try:
                parts = self.pull.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if parts[0] == REPLIES_FRAME:
                for i in range(1, len(parts) - 1, 2):
                    self.send_to_peer(parts[i], [parts[i + 1]])
            elif parts[0] == LOOP_MESSAGES_FRAME:
                self._drain_loop_messages()

    def _drain_loop_messages(self) -> None:
        """Run the typed messages the loop queued (``MasterActor.tell_bus``), in order."""
        outbox = self.master.bus_outbox
        handlers = self._loop_handlers
        while outbox:
            message = outbox.popleft()
            handler = handlers.get(type(message))
            if handler is None:
                log.warning("loop_message_ignored", type=type(message).__name__)
                continue
            handler(message)

    def send_to_peer(self, identity: bytes, frames: list[bytes]) -> bool:
        """Send frames to a router peer; False if it is gone or its queue is full (the message is dropped)."""
        if self.router is None:
            return False
        try:
            self.router.send_multipart([identity, *frames], zmq.NOBLOCK)
            return True
        except zmq.ZMQError:
            return False

    def peer_authenticated(self, identity: bytes) -> None:
        """Bus thread: the peer behind ``identity`` proved the password (lifts admission's limits)."""
        self.admission.peer_authenticated(identity)

    def add_socket(self, sock: zmq.Socket[bytes] | int, callback: Any) -> None:
        """Poll ``sock`` (a socket of this thread, or a file descriptor) too; ``callback()`` when readable."""
        self.extra_sockets[sock] = callback
        self.poller.register(sock, zmq.POLLIN)

    def remove_socket(self, sock: zmq.Socket[bytes] | int, close: bool = True) -> None:
        if self.extra_sockets.pop(sock, None) is not None:
            try:
                self.poller.unregister(sock)
            except KeyError:
                pass
        if close:
            if isinstance(sock, int):
                os.close(sock)
            else:
                sock.close(0)

    def wake(self) -> None:
        """Any thread: end the actor's current poll now (after telling the actor something)."""
        with self._wake_lock:
            if self._wake_w >= 0:
                try:
                    os.write(self._wake_w, b"w")
                except OSError:
                    pass  # the pipe is full: the poll is woken already

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except OSError:
            pass
