"""A ZeroMQ client for the native protocol (protocol/envelope.py), with Lazy Pirate reconnects.

``NativeClient`` talks to one node's bus port (the RESP port + 10000 unless the node's ``bus-port`` says
otherwise) through a DEALER socket:

    client = NativeClient("127.0.0.1", 17001, timeout_ms=2000, retries=3)
    client.call("SET", "k", "v")      -> "OK"   (status replies are str, bulk replies bytes)
    client.call("INCR", "k")          -> raises ReplyError("ERR value is not an integer or out of range")

Reliability follows the zguide's Lazy Pirate pattern: send, poll for the reply for ``timeout_ms``; on silence
close the socket (dropping whatever it still queues), open a new one and send again, up to ``retries`` times,
then raise ``ConnectionLost``. A retried request may run twice on the node if only its reply was lost, as
with any Lazy Pirate client; the shell uses it interactively, where that is acceptable.

The node keys a native client's state (AUTH, SELECT, subscriptions) by the ZeroMQ identity of the connection,
and a new connection is a new identity. So the client remembers what it authenticated with, which database it
selected and what it subscribed to, and replays them on a fresh connection before the next request. A fresh
connection happens two ways: the Lazy Pirate replaces the socket, or ZeroMQ reconnects a socket by itself
(the node restarted between two requests); a socket monitor catches the second. Either way ``on_reconnect``
is called with (host, port) once the node answers again.

Messages the node pushes unasked (pub/sub deliveries, ``KIND_PUSH``) are queued while ``call`` waits for its
reply; ``receive_push`` returns them, or waits for the next one.

Not thread-safe: one client per thread, as with ZeroMQ sockets.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from protocol import envelope
from protocol.curve import CurveKeys, apply_client
from protocol.envelope import KIND_ERROR, KIND_PUSH, ReplyError
from protocol.monitor import close_monitor, open_monitor
from protocol.ports import bus_port_for
from protocol.resp import arg_bytes

__all__ = ["ConnectionLost", "NativeClient", "ReplyError"]

# Lazy Pirate defaults (the zguide uses 2500 ms and 3 retries): long enough for a loaded node, short enough
# that a shell against a dead node gives up within seconds.
DEFAULT_TIMEOUT_MS = 2000
DEFAULT_RETRIES = 3
# How soon ZeroMQ retries a dropped TCP connection by itself (its default is 100 ms too; set so it is explicit).
RECONNECT_IVL_MS = 100


class ConnectionLost(Exception):
    """No reply from the node after every retry."""


class NativeClient:
    """One DEALER connection to a node's bus port. See the module docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = bus_port_for(6379),
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        retries: int = DEFAULT_RETRIES,
        on_reconnect: Callable[[str, int], None] | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        curve: tuple[CurveKeys, bytes] | None = None,
    ) -> None:
        self.host = host
        # (this client's keypair, the node's public key): a CURVE link to a node with bus keys (curve.py).
        self.curve = curve
        self.port = port
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.on_reconnect = on_reconnect
        self._context = context or zmq.Context.instance()
        self._ids = itertools.count(1)
        # Session state the node forgets when the connection changes; replayed on a fresh one.
        self._auth: list[bytes] | None = None
        self.db = 0
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()
        # Pushes (pub/sub deliveries) that arrived while a call waited for its own reply.
        self._pushes: deque[Any] = deque()
        self._socket: zmq.Socket[bytes] | None = None
        self._monitor: zmq.Socket[bytes] | None = None
        # True once the current connection has been answered on (a later disconnect is then a loss).
        self._was_connected = False
        # Set when the node's side of the session is gone: replay session state before the next request.
        self._session_lost = False
        # Set with _session_lost, cleared once the node answers: then on_reconnect is called.
        self._reconnected = False
        self._open()

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"

    # -- sockets ---------------------------------------------------------------------------------------

    def _open(self) -> None:
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        if ":" in self.host:
            sock.setsockopt(zmq.IPV6, 1)
        if self.curve is not None:
            apply_client(sock, *self.curve)
        self._monitor = open_monitor(sock, zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        sock.connect(self.endpoint)
        self._socket = sock

    def _close_socket(self) -> None:
        close_monitor(self._socket, self._monitor)  # the monitor first (protocol/monitor.py)
        self._monitor = None
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None

    def close(self) -> None:
        self._close_socket()

    def __enter__(self) -> NativeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drain_monitor(self) -> None:
        """Notice a connection ZeroMQ dropped (and maybe re-made) by itself since we last looked."""
        if self._monitor is None:
            return
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return
            if event["event"] == zmq.EVENT_DISCONNECTED and self._was_connected:
                self._session_lost = self._reconnected = True

    # -- requests --------------------------------------------------------------------------------------

    def call(self, *args: Any, timeout_ms: int | None = None, retries: int | None = None) -> Any:
        """Run one command; its reply value, or ``ReplyError`` for an error reply.

        ``timeout_ms`` (per attempt; 0 waits forever) and ``retries`` override the client's for this call:
        a blocking command (BLPOP 5, DEBUG SLEEP) needs a longer wait and must not be sent twice.
        Raises ``ConnectionLost`` when every attempt went unanswered.
        """
        if not args:
            raise ValueError("call() needs a command")
        argv = [arg_bytes(a) for a in args]
        wait_ms = self.timeout_ms if timeout_ms is None else timeout_ms
        attempts = 1 + (self.retries if retries is None else retries)
        for attempt in range(attempts):
            if attempt:
                # Lazy Pirate: the socket may hold a dead connection or stale replies; start over.
                self._close_socket()
                self._open()
                self._session_lost = self._reconnected = True
            try:
                self._drain_monitor()
                if self._session_lost:
                    self._replay_session(wait_ms)
                kind, value = self._request(argv, wait_ms)
            except TimeoutError:
                continue
            self._after_answer()
            if kind == KIND_ERROR:
                raise ReplyError(str(value))
            self._track(argv, value)
            return value
        raise ConnectionLost(f"no reply from {self.host}:{self.port} after {attempts} attempt(s)")

    def _request(self, argv: list[bytes], wait_ms: int) -> tuple[int, Any]:
        """Send one request and wait for its reply; raises TimeoutError on silence."""
        assert self._socket is not None
        request_id = next(self._ids)
        try:
            self._socket.send(envelope.encode_request(request_id, argv), zmq.NOBLOCK)
        except zmq.Again:
            raise TimeoutError from None
        deadline = None if wait_ms <= 0 else time.monotonic() + wait_ms / 1000.0
        while True:
            remaining_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if deadline is not None and remaining_ms == 0:
                raise TimeoutError
            if not self._socket.poll(remaining_ms, zmq.POLLIN):
                raise TimeoutError
            frame = self._socket.recv()
            try:
                reply_id, kind, value = envelope.decode_reply(frame)
            except Exception:  # a frame we cannot read is not our reply
                continue
            if kind == KIND_PUSH:
                self._pushes.append(value)
            elif reply_id == request_id or (kind == KIND_ERROR and reply_id == 0):
                return kind, value
            # else: the late reply of a request we gave up on; drop it

    def _replay_session(self, wait_ms: int) -> None:
        """On a fresh connection: AUTH, SELECT and (P)SUBSCRIBE again, as the node forgot them."""
        self._session_lost = False
        steps: list[list[bytes]] = []
        if self._auth is not None:
            steps.append([b"AUTH", *self._auth])
        if self.db:
            steps.append([b"SELECT", b"%d" % self.db])
        if self.channels:
            steps.append([b"SUBSCRIBE", *sorted(self.channels)])
        if self.patterns:
            steps.append([b"PSUBSCRIBE", *sorted(self.patterns)])
        try:
            for argv in steps:
                self._request(argv, wait_ms)  # an error reply here surfaces on the request itself
        except TimeoutError:
            self._session_lost = True
            raise

    def _after_answer(self) -> None:
        """The node answered: report a reconnection if this is the first answer on a fresh connection."""
        notify = self._reconnected and self._was_connected
        self._was_connected = True
        self._reconnected = False
        if notify and self.on_reconnect is not None:
            self.on_reconnect(self.host, self.port)

    def _track(self, argv: list[bytes], value: Any) -> None:
        """Remember session state a successful command set, to replay it on a fresh connection."""
        name = argv[0].lower()
        if name == b"auth":
            self._auth = argv[1:]
        elif name == b"hello":
            for i in range(2, len(argv) - 2):
                if argv[i].lower() == b"auth":
                    self._auth = argv[i + 1 : i + 3]
        elif name == b"select":
            self.db = int(argv[1])
        elif name == b"subscribe":
            self.channels.update(argv[1:])
        elif name == b"psubscribe":
            self.patterns.update(argv[1:])
        elif name == b"unsubscribe":
            if len(argv) > 1:
                self.channels.difference_update(argv[1:])
            else:
                self.channels.clear()
        elif name == b"punsubscribe":
            if len(argv) > 1:
                self.patterns.difference_update(argv[1:])
            else:
                self.patterns.clear()
        elif name == b"reset":
            self._auth = None
            self.db = 0
            self.channels.clear()
            self.patterns.clear()

    # -- pushes ----------------------------------------------------------------------------------------

    def receive_push(self, timeout_ms: int = 0) -> Any:
        """The next pushed message (pub/sub), waiting up to ``timeout_ms``; None if none came.

        Replies to requests this client gave up on are dropped. A lost connection is not detected here:
        callers that wait long (the shell's subscribe mode) send a PING now and then, which reconnects.
        """
        if self._pushes:
            return self._pushes.popleft()
        assert self._socket is not None
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not self._socket.poll(remaining_ms, zmq.POLLIN):
                return None
            try:
                _, kind, value = envelope.decode_reply(self._socket.recv())
            except Exception:
                continue
            if kind == KIND_PUSH:
                return value
            if remaining_ms == 0:
                return None

    def pending_pushes(self) -> int:
        return len(self._pushes)
