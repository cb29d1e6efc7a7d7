"""An asyncio RESP client on hiredis.Reader, for whatever in redactor talks RESP to a node or a redis-server.

Users: the launcher (status, readiness, shutdown), the tests, and next the sentinel and MIGRATE::

    client = await RespClient.connect("127.0.0.1", 7001, password="pw", db=2, timeout_s=2.0)
    await client.call("SET", "k", "v")                  -> b"OK"   (status and bulk replies are bytes)
    await client.call("INCR", "nokey-but-a-list")       -> raises ReplyError("WRONGTYPE Operation ...")
    await client.pipeline([["INCR", "n"], ["GET", "n"]]) -> [1, b"1"]   (one write, replies in order)
    await client.subscribe("news"); await client.psubscribe("log.*")
    async for message in client.messages(): ...         -> PubSubMessage(kind, channel, data, pattern)
    await client.close()

``BlockingRespClient`` wraps it for scripts and tests (its own event loop; not for use inside a running loop).

One task per connection reads: it feeds hiredis, hands each reply to the oldest waiting call (calls are
answered in the order they were written, so concurrent callers simply pipeline), and puts pub/sub messages
on their own queue. A pub/sub message is a RESP3 push (``>``), or in RESP2 an array starting with
``message`` / ``pmessage`` / ``smessage`` once the connection has entered subscribed mode.

Bounds, as Redis bounds its clients: a reply bigger than ``max_reply_bytes`` closes the connection with
``ReplyTooLarge`` (hiredis buffers a reply until it is complete; the check runs per read, so a reply that
arrives whole within one read of ``READ_CHUNK_BYTES`` passes whatever its size), and more than ``max_pending_messages``
unread pub/sub messages close it with ``ConnectionLost`` (Redis's client-output-buffer-limit pubsub, seen
from the other side). A call that times out closes the connection too: its reply may still come, and every
later reply would then be handed to the wrong call.

The exception tree::

    hiredis.ReplyError
    +-- ReplyError            an error reply; str(e) is Redis's text ("ERR ...", "MOVED 3999 ..."), e.code
    OSError
    +-- ConnectionError
    |   +-- ConnectionLost    the server closed the connection (also mid-reply), or the client gave up on it
    |       +-- ReplyTooLarge a reply over max_reply_bytes
    |       +-- RespProtocolError  bytes that are not RESP
    +-- TimeoutError
        +-- RespTimeout       no connection or no reply within timeout_s (the connection is closed)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import hiredis

from protocol.resp import arg_bytes, encode_command

__all__ = [
    "BlockingRespClient",
    "ConnectionLost",
    "PubSubMessage",
    "ReplyError",
    "ReplyTooLarge",
    "RespClient",
    "RespProtocolError",
    "RespTimeout",
]

# How long connecting and each call may take unless the caller says otherwise (None: wait forever, for
# blocking commands such as BLPOP 0).
DEFAULT_TIMEOUT_S = 10.0
# The biggest reply the client buffers: Redis's largest bulk string (proto-max-bulk-len's default) plus room
# for its header. Lower it for clients that only expect small replies (the launcher's INFO).
DEFAULT_MAX_REPLY_BYTES = 512 * 1024 * 1024 + 64
# Unread pub/sub messages before the connection is dropped (the subscriber is not keeping up).
DEFAULT_MAX_PENDING_MESSAGES = 100_000
# Bytes asked of the socket per read.
READ_CHUNK_BYTES = 64 * 1024
# Pub/sub replies that deliver a message, and the ones that confirm a (un)subscription.
_MESSAGE_KINDS = frozenset((b"message", b"pmessage", b"smessage"))
_SUBSCRIBE_KINDS = frozenset((b"subscribe", b"psubscribe", b"ssubscribe"))
_UNSUBSCRIBE_KINDS = frozenset((b"unsubscribe", b"punsubscribe", b"sunsubscribe"))
# Commands whose replies only the subscription methods count right (one per channel, or per subscription).
_PUBSUB_VERBS = frozenset(
    (b"SUBSCRIBE", b"PSUBSCRIBE", b"UNSUBSCRIBE", b"PUNSUBSCRIBE", b"SSUBSCRIBE", b"SUNSUBSCRIBE")
)
# Marks the end of the message queue once the connection is gone.
_CLOSED: Any = object()

Arg = bytes | str | int | float | bytearray | memoryview


class _Default(Enum):
    """A call's timeout when the caller names none: the client's ``timeout_s``."""

    TIMEOUT = "the client's timeout_s"


Timeout = float | None | _Default


class ReplyError(hiredis.ReplyError):
    """An error reply. ``str(self)`` is the message as Redis sent it, code first (``ERR``, ``WRONGTYPE``)."""

    @property
    def code(self) -> str:
        """The first word of the message: ``ERR``, ``WRONGTYPE``, ``MOVED``, ``NOAUTH``, ..."""
        return str(self).split(" ", 1)[0]


class ConnectionLost(ConnectionError):
    """The connection is gone: closed by the server (before or in the middle of a reply), or by this client."""


class ReplyTooLarge(ConnectionLost):
    """A reply bigger than ``max_reply_bytes``: the connection was closed rather than buffer it."""


class RespProtocolError(ConnectionLost):
    """The server sent bytes that are not RESP (hiredis refused them); the connection was closed."""


class RespTimeout(TimeoutError):
    """No connection, or no reply, within the timeout. The connection (if any) was closed."""


@dataclass(frozen=True, slots=True)
class PubSubMessage:
    """One delivered message. ``kind``: ``message``, ``pmessage`` (``pattern`` set), ``smessage``, or for a
    RESP3 push of another kind (``invalidate``, ...) that kind with the whole push in ``data``."""

    kind: str
    channel: bytes | None
    data: Any
    pattern: bytes | None = None


def _message_of(reply: list[Any]) -> PubSubMessage:
    kind = reply[0].decode("ascii", "replace") if isinstance(reply[0], bytes) else str(reply[0])
    if kind == "pmessage" and len(reply) == 4:
        return PubSubMessage(kind, reply[2], reply[3], reply[1])
    if kind in ("message", "smessage") and len(reply) == 3:
        return PubSubMessage(kind, reply[1], reply[2])
    return PubSubMessage(kind, None, list(reply))


class _Pending:
    """A call waiting for its replies (``count`` of them: a pipeline, or one per channel of a SUBSCRIBE)."""

    __slots__ = ("count", "replies", "future", "pubsub")

    def __init__(self, count: int, future: asyncio.Future[list[Any]], pubsub: bool) -> None:
        self.count = count
        self.replies: list[Any] = []
        self.future = future
        self.pubsub = pubsub  # a (P)(UN)SUBSCRIBE: its replies change what the connection is subscribed to


class RespClient:
    """One RESP connection. Build it with ``await RespClient.connect(...)``; see the module docstring."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        resp3: bool = False,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        max_pending_messages: int = DEFAULT_MAX_PENDING_MESSAGES,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.resp3 = resp3
        self.timeout_s = timeout_s
        self.max_reply_bytes = max_reply_bytes
        self.max_pending_messages = max_pending_messages
        self._parser = hiredis.Reader(replyError=ReplyError)
        # Calls written and not yet answered, oldest first: replies arrive in the order requests were written.
        self._pending: deque[_Pending] = deque()
        # Pub/sub messages not yet read; bounded by max_pending_messages (checked on put).
        self._messages: asyncio.Queue[Any] = asyncio.Queue()
        # RESP2 only: set once a (P)SUBSCRIBE is confirmed, cleared when the last subscription goes. While
        # set, arrays that start with "message"/"pmessage" are deliveries, not replies.
        self._subscribed = False
        # What the server confirmed we are subscribed to (UNSUBSCRIBE with no argument answers once each).
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()
        # Why the connection ended (None while it is open): raised by every later call.
        self._error: ConnectionLost | None = None
        self._closed = asyncio.Event()
        # True when close() ended the connection (messages() then ends instead of raising).
        self._closed_by_us = False
        # Futures are made on this loop also when a blocking wrapper writes while the loop is not running.
        self._loop = asyncio.get_running_loop()
        self._read_task = self._loop.create_task(self._read_loop())

    # -- connecting -------------------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        password: str | bytes | None = None,
        username: str | bytes | None = None,
        protocol: int = 2,
        db: int = 0,
        client_name: str | bytes | None = None,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        max_pending_messages: int = DEFAULT_MAX_PENDING_MESSAGES,
    ) -> RespClient:
        """Open a connection and set it up in one write: HELLO 3 (with AUTH and SETNAME) for ``protocol=3``,
        else AUTH and CLIENT SETNAME; then SELECT ``db``. An error reply raises ``ReplyError`` (closed)."""
        if protocol not in (2, 3):
            raise ValueError("protocol must be 2 or 3")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=READ_CHUNK_BYTES), timeout_s
            )
        except TimeoutError:
            raise RespTimeout(f"no connection to {host}:{port} within {timeout_s}s") from None
        client = cls(
            reader,
            writer,
            resp3=protocol == 3,
            timeout_s=timeout_s,
            max_reply_bytes=max_reply_bytes,
            max_pending_messages=max_pending_messages,
        )
        setup: list[list[Arg]] = []
        if protocol == 3:
            hello: list[Arg] = ["HELLO", "3"]
            if password is not None:
                hello += ["AUTH", username or "default", password]
            if client_name is not None:
                hello += ["SETNAME", client_name]
            setup.append(hello)
        else:
            if password is not None:
                setup.append(["AUTH", username, password] if username is not None else ["AUTH", password])
            if client_name is not None:
                setup.append(["CLIENT", "SETNAME", client_name])
        if db:
            setup.append(["SELECT", db])
        if setup:
            try:
                await client.pipeline(setup)
            except BaseException:
                await client.close()
                raise
        return client

    # -- calls ------------------------------------------------------------------------------------------

    async def call(self, *args: Arg, timeout_s: Timeout = _Default.TIMEOUT) -> Any:
        """Send one command; its reply. An error reply raises ``ReplyError``."""
        (reply,) = await self._request([args], 1, timeout_s)
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def pipeline(
        self,
        commands: Iterable[Sequence[Arg]],
        *,
        raise_on_error: bool = True,
        timeout_s: Timeout = _Default.TIMEOUT,
    ) -> list[Any]:
        """Send many commands in one write; their replies in order. With ``raise_on_error`` the first error
        reply is raised once every reply has arrived (the connection stays usable); without, errors are
        returned in place as ``ReplyError`` values."""
        commands = list(commands)
        if not commands:
            return []
        replies = await self._request(commands, len(commands), timeout_s)
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, ReplyError):
                    raise reply
        return replies

    def send(self, *args: Arg) -> asyncio.Future[list[Any]]:
        """Write one command now and return the future of its reply list, without waiting (SHUTDOWN, whose
        answer is the connection closing: then the future fails with ``ConnectionLost``)."""
        future = self._write([args], 1)
        future.add_done_callback(_retrieve)
        return future

    async def _drain_then(self, future: asyncio.Future[list[Any]]) -> list[Any]:
        await self._writer.drain()
        return await future

    def _lost(self) -> ConnectionLost:
        """A fresh copy of why the connection ended (raising one instance again and again grows its traceback)."""
        assert self._error is not None
        return type(self._error)(str(self._error))

    def _write(
        self, commands: Sequence[Sequence[Arg]], count: int, pubsub: bool = False
    ) -> asyncio.Future[list[Any]]:
        if self._error is not None:
            raise self._lost()
        if not pubsub:
            for command in commands:
                if command and arg_bytes(command[0]).upper() in _PUBSUB_VERBS:
                    verb = arg_bytes(command[0]).decode("ascii", "replace")
                    raise ValueError(f"{verb} answers once per name: use the client's (un)subscribe methods")
        payload = b"".join(encode_command([arg_bytes(a) for a in command]) for command in commands)
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        # Registered and written with no await in between: the order of _pending is the order on the wire.
        self._pending.append(_Pending(count, future, pubsub))
        self._writer.write(payload)
        return future

    async def _request(
        self,
        commands: Sequence[Sequence[Arg]],
        count: int,
        timeout_s: Timeout,
        pubsub: bool = False,
    ) -> list[Any]:
        future = self._write(commands, count, pubsub)
        limit = self.timeout_s if timeout_s is _Default.TIMEOUT else timeout_s
        try:
            # The timeout covers the write too: a server that stops reading fills the socket buffer.
            return await asyncio.wait_for(self._drain_then(future), limit)
        except TimeoutError:
            error = RespTimeout(f"no reply within {limit}s")
            self._fail(ConnectionLost("closed after a timeout"))
            await self._finish_close()
            raise error from None
        except ConnectionError as exc:
            if isinstance(exc, ConnectionLost):
                raise
            if self._error is not None:
                raise self._lost() from exc
            lost = ConnectionLost(f"connection lost: {exc}")
            self._fail(lost)
            raise lost from exc

    # -- pub/sub ----------------------------------------------------------------------------------------

    async def subscribe(self, *channels: Arg) -> None:
        """SUBSCRIBE: returns once the server confirmed every channel."""
        await self._subscription("SUBSCRIBE", channels, len(channels))

    async def psubscribe(self, *patterns: Arg) -> None:
        """PSUBSCRIBE: returns once the server confirmed every pattern."""
        await self._subscription("PSUBSCRIBE", patterns, len(patterns))

    async def unsubscribe(self, *channels: Arg) -> None:
        """UNSUBSCRIBE (every channel when none is named)."""
        await self._subscription("UNSUBSCRIBE", channels, len(channels) or max(len(self.channels), 1))

    async def punsubscribe(self, *patterns: Arg) -> None:
        """PUNSUBSCRIBE (every pattern when none is named)."""
        await self._subscription("PUNSUBSCRIBE", patterns, len(patterns) or max(len(self.patterns), 1))

    async def _subscription(self, verb: str, names: Sequence[Arg], confirmations: int) -> None:
        if verb in ("SUBSCRIBE", "PSUBSCRIBE") and not names:
            raise ValueError(f"{verb} needs at least one name")
        replies = await self._request([[verb, *names]], confirmations, _Default.TIMEOUT, pubsub=True)
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise reply

    async def get_message(self, timeout_s: float | None = None) -> PubSubMessage | None:
        """The next pub/sub message; None if none came within ``timeout_s`` (None: wait for one).
        Raises ``ConnectionLost`` once the connection is gone and every queued message was read."""
        try:
            item = await asyncio.wait_for(self._messages.get(), timeout_s)
        except TimeoutError:
            return None
        if item is _CLOSED:
            self._messages.put_nowait(_CLOSED)  # every later reader sees the end too
            raise self._lost()
        message: PubSubMessage = item
        return message

    async def messages(self) -> AsyncIterator[PubSubMessage]:
        """Every pub/sub message, as it arrives; ends when this client is closed (``close()``), raises
        ``ConnectionLost`` when the server closes the connection."""
        while True:
            try:
                message = await self.get_message()
            except ConnectionLost:
                if self._closed_by_us:
                    return
                raise
            assert message is not None
            yield message

    # -- the reading task -------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        parser = self._parser
        gets = parser.gets
        buffered = 0  # bytes fed to hiredis since it last completed a reply (an incomplete one's size)
        try:
            while True:
                data = await self._reader.read(READ_CHUNK_BYTES)
                if not data:
                    what = "in the middle of a reply" if buffered else "by the server"
                    self._fail(ConnectionLost(f"connection closed {what}"))
                    return
                parser.feed(data)
                buffered += len(data)
                while True:
                    try:
                        reply = gets()
                    except hiredis.ProtocolError as exc:
                        self._fail(RespProtocolError(f"not RESP: {exc}"))
                        return
                    if reply is False:
                        break
                    buffered = 0
                    if not self._dispatch(reply):
                        return
                if buffered > self.max_reply_bytes:
                    self._fail(ReplyTooLarge(f"a reply over {self.max_reply_bytes} bytes"))
                    return
        except OSError as exc:
            self._fail(ConnectionLost(f"connection lost: {exc}"))
        except asyncio.CancelledError:
            self._fail(ConnectionLost("connection closed by the client"))
            raise
        finally:
            self._writer.close()

    def _dispatch(self, reply: Any) -> bool:
        """Hand one reply to its call, or queue it as a pub/sub message. False if the connection was failed."""
        if self._is_message(reply):
            if self._messages.qsize() >= self.max_pending_messages:
                self._fail(ConnectionLost(f"over {self.max_pending_messages} pub/sub messages not read"))
                return False
            self._messages.put_nowait(_message_of(reply))
            return True
        if not self._pending:
            self._fail(RespProtocolError(f"a reply nobody asked for: {reply!r:.100}"))
            return False
        pending = self._pending[0]
        if pending.pubsub and isinstance(reply, list) and len(reply) == 3:
            self._track_subscription(reply)
        pending.replies.append(reply)
        if len(pending.replies) == pending.count:
            self._pending.popleft()
            if not pending.future.done():
                pending.future.set_result(pending.replies)
        return True

    def _is_message(self, reply: Any) -> bool:
        if self.resp3:
            # A push is out of band, except (un)subscribe confirmations, which answer their command.
            return isinstance(reply, hiredis.PushNotification) and not (
                reply and (reply[0] in _SUBSCRIBE_KINDS or reply[0] in _UNSUBSCRIBE_KINDS)
            )
        return self._subscribed and type(reply) is list and bool(reply) and reply[0] in _MESSAGE_KINDS

    def _track_subscription(self, reply: list[Any]) -> None:
        kind, name, count = reply
        if not isinstance(count, int) or not (kind in _SUBSCRIBE_KINDS or kind in _UNSUBSCRIBE_KINDS):
            return
        names = self.patterns if kind[:1] == b"p" else self.channels
        if kind in _SUBSCRIBE_KINDS:
            names.add(name)
        elif name is not None:
            names.discard(name)
        self._subscribed = count > 0

    def _fail(self, error: ConnectionLost) -> None:
        """The connection is over: every waiting call and the message readers get ``error``."""
        if self._error is not None:
            return
        self._error = error
        while self._pending:
            future = self._pending.popleft().future
            if not future.done():
                future.set_exception(error)
                future.add_done_callback(_retrieve)
        self._messages.put_nowait(_CLOSED)
        self._writer.close()
        self._closed.set()

    # -- closing ----------------------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._error is not None

    @property
    def local_address(self) -> tuple[str, int] | None:
        """This end's (ip, port), as getsockname() says (the address a sentinel announces in its hellos)."""
        sockname = self._writer.get_extra_info("sockname")
        return (str(sockname[0]), int(sockname[1])) if sockname else None

    async def wait_closed(self, timeout_s: float | None = None) -> bool:
        """True once the connection is over (the server closed it: SHUTDOWN, a kill); False on timeout."""
        try:
            await asyncio.wait_for(self._closed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Close the connection; calls still waiting fail with ``ConnectionLost``. Safe to call twice."""
        self._closed_by_us = self._closed_by_us or self._error is None
        self._fail(ConnectionLost("connection closed by the client"))
        await self._finish_close()

    async def _finish_close(self) -> None:
        task = self._read_task
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionLost):
            await task
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def __aenter__(self) -> RespClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen: nobody may be waiting on it (a timed-out call, a SHUTDOWN)."""
    if not future.cancelled():
        future.exception()


class BlockingRespClient:
    """``RespClient`` for code without an event loop (scripts, tests, the launcher): each method runs the
    client's coroutine to completion on a loop of its own. Not for use from inside a running event loop; one
    thread at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: RespClient) -> None:
        self._loop = loop
        self.client = client

    @classmethod
    def connect(cls, host: str = "127.0.0.1", port: int = 6379, **options: Any) -> BlockingRespClient:
        """``RespClient.connect``'s arguments."""
        loop = asyncio.new_event_loop()
        try:
            client = loop.run_until_complete(RespClient.connect(host, port, **options))
        except BaseException:
            loop.close()
            raise
        return cls(loop, client)

    def call(self, *args: Arg, **options: Any) -> Any:
        return self._loop.run_until_complete(self.client.call(*args, **options))

    def pipeline(self, commands: Iterable[Sequence[Arg]], **options: Any) -> list[Any]:
        return self._loop.run_until_complete(self.client.pipeline(commands, **options))

    def send(self, *args: Arg) -> None:
        """Write a command and do not wait for its reply (SHUTDOWN; then ``wait_closed``)."""
        self.client.send(*args)

    def subscribe(self, *channels: Arg) -> None:
        self._loop.run_until_complete(self.client.subscribe(*channels))

    def psubscribe(self, *patterns: Arg) -> None:
        self._loop.run_until_complete(self.client.psubscribe(*patterns))

    def unsubscribe(self, *channels: Arg) -> None:
        self._loop.run_until_complete(self.client.unsubscribe(*channels))

    def punsubscribe(self, *patterns: Arg) -> None:
        self._loop.run_until_complete(self.client.punsubscribe(*patterns))

    def get_message(self, timeout_s: float | None = None) -> PubSubMessage | None:
        return self._loop.run_until_complete(self.client.get_message(timeout_s))

    def wait_closed(self, timeout_s: float | None = None) -> bool:
        return self._loop.run_until_complete(self.client.wait_closed(timeout_s))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._loop.run_until_complete(self.client.close())
        finally:
            self._loop.close()

    def __enter__(self) -> BlockingRespClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
