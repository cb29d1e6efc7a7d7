"""The node bus: a pykka actor whose thread owns the node's ZeroMQ ROUTER on the bus port.

Everything that reaches a node over ZeroMQ arrives here: native-protocol clients (the shell) and other nodes
(replication; later sentinel and cluster). ZeroMQ sockets belong to the thread that made them, so this
actor's thread makes and uses all of its sockets, and nothing else touches them:

    router   ROUTER on tcp://<bind>:<bus-port>, ROUTER_NOTIFY on where libzmq has it (an empty frame when a peer comes or goes)
    pull     PULL on the master actor's inproc endpoint: native replies and other messages from the loop

The actor runs a poll loop by telling itself ``_POLL`` after each slice, so pykka messages (control requests
from the supervisor or the master) are handled between slices, at most ``POLL_SLICE_MS`` late.

Wire conventions on the router: a client request is one frame (see protocol/envelope.py); a node-to-node
message is two frames, ``[b"N", msgpack]``, handled by ``on_node_message`` (the replication actor overrides it).

Supervision: the actor derives from ``SupervisedActor``, so any failure (in ``on_start`` too) reaches the
supervisor with its cause and ``DEBUG CRASH-ACTOR bus`` makes it raise in its own thread. A restarted bus binds
the same ports again (retrying while the dead incarnation's sockets finish closing) and asks the master actor
to reconnect its inproc PUSH, which does not reconnect to a re-bound PULL by itself.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog
import zmq

from actors.supervision.supervisor import SupervisedActor

if TYPE_CHECKING:
    from actors.loop.master import MasterActor

log = structlog.get_logger("redactor.bus")

# Longest a control message (pykka tell/ask) waits behind a poll; data on the sockets wakes the poll at once.
POLL_SLICE_MS = 20
NODE_FRAME = b"N"
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


class BusActor(SupervisedActor):
    """Owns the bus sockets. Subclasses add node-to-node protocols (replication)."""

    def __init__(self, master: MasterActor, binds: list[str], bus_port: int) -> None:
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
        self.on_bus_started()
        self.actor_ref.tell(_POLL)

    def on_stop(self) -> None:
        self._close_sockets()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._close_sockets()

    def _close_sockets(self) -> None:
        self.on_bus_stopping()
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
        return self.on_control(message)

    # -- the poll loop ---------------------------------------------------------------------------------

    def _poll_once(self) -> None:
        events = dict(self.poller.poll(POLL_SLICE_MS))
        if self.pull is not None and self.pull in events:
            self._drain_pull()
        if self.router is not None and self.router in events:
            self._drain_router()
        for sock, callback in list(self.extra_sockets.items()):
            if sock in events:
                callback()
        self.on_tick()

    def _drain_router(self) -> None:
        assert self.router is not None
        requests: list[tuple[bytes, bytes]] = []
        for _ in range(10_000):
            try:
                parts = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            identity = parts[0]
            if len(parts) == 2:
                requests.append((identity, parts[1]))
            elif len(parts) >= 3 and parts[1] == NODE_FRAME:
                try:
                    self.on_node_message(identity, parts[2:])
                except Exception:
                    log.exception("node_message_failed")
            else:
                log.info("client_error", transport="zmq", reason="unexpected frame layout", frames=len(parts))
        if requests:
            self.master.call_threadsafe(self.master.native_requests, requests)

    def _drain_pull(self) -> None:
        assert self.pull is not None and self.router is not None
        for _ in range(10_000):
            try:
                parts = self.pull.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if parts[0] == b"replies":
                for i in range(1, len(parts) - 1, 2):
                    self.send_to_peer(parts[i], [parts[i + 1]])
            else:
                self.on_loop_message(parts)

    def send_to_peer(self, identity: bytes, frames: list[bytes]) -> bool:
        """Send frames to a router peer; False if it is gone or its queue is full (the message is dropped)."""
        if self.router is None:
            return False
        try:
            self.router.send_multipart([identity, *frames], zmq.NOBLOCK)
            return True
        except zmq.ZMQError:
            return False

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

    # -- extension points (actor thread) ---------------------------------------------------------------

    def on_bus_started(self) -> None:
        """Called once the bus sockets exist."""

    def on_bus_stopping(self) -> None:
        """Called before the bus sockets close (stop or failure)."""

    def on_tick(self) -> None:
        """Called after every poll slice: timers live here."""

    def on_node_message(self, identity: bytes, frames: list[bytes]) -> None:
        """A node-to-node message arrived on the router."""
        log.info("node_message_ignored", reason="no handler", frames=len(frames))

    def on_loop_message(self, parts: list[bytes]) -> None:
        """A message from the master actor's loop other than native replies."""

    def on_control(self, message: Any) -> Any:
        """A pykka message (tell/ask) other than the poll (``Crash`` never gets here: see SupervisedActor)."""
        if message == "ping":
            return "pong"
        return None
