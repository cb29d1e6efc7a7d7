"""The shell's RESP client, for servers without a ZeroMQ bus: sentinels (``redactor cli -p 26379 sentinel
masters``) and redis-servers. Same interface as protocol/client.py's NativeClient as the shell uses it (call,
receive_push, db, close), with the same exceptions (envelope ReplyError values, client ConnectionLost), over
protocol/resp_client.py. A lost connection is reopened on the next call."""

from __future__ import annotations

from typing import Any

from protocol.client import ConnectionLost
from protocol.envelope import ReplyError
from protocol.resp_client import BlockingRespClient
from protocol.resp_client import ConnectionLost as RespConnectionLost
from protocol.resp_client import ReplyError as RespReplyError

_SUBSCRIBE = {b"SUBSCRIBE": "subscribe", b"PSUBSCRIBE": "psubscribe"}
_UNSUBSCRIBE = {b"UNSUBSCRIBE": "unsubscribe", b"PUNSUBSCRIBE": "punsubscribe"}


class RespShellClient:
    def __init__(self, host: str, port: int, timeout_ms: int) -> None:
        self.host, self.port = host, port
        self.timeout_s = timeout_ms / 1000 if timeout_ms else None
        self.db = 0
        self._client: BlockingRespClient | None = None

    def _connected(self) -> BlockingRespClient:
        if self._client is None or self._client.client.is_closed:
            try:
                self._client = BlockingRespClient.connect(
                    self.host, self.port, timeout_s=self.timeout_s, db=self.db
                )
            except (OSError, RespConnectionLost) as exc:
                raise ConnectionLost(str(exc)) from None
        return self._client

    def call(self, *args: Any, timeout_ms: int | None = None, retries: int | None = None) -> Any:
        client = self._connected()
        verb = (args[0].encode() if isinstance(args[0], str) else bytes(args[0])).upper()
        try:
            if verb in _SUBSCRIBE or verb in _UNSUBSCRIBE:
                method = _SUBSCRIBE.get(verb) or _UNSUBSCRIBE[verb]
                getattr(client, method)(*args[1:])
                names = sorted(client.client.patterns if verb[0:1] == b"P" else client.client.channels)
                count = len(client.client.channels) + len(client.client.patterns)
                return [[method.encode(), name, count] for name in (args[1:] or names)]
            options = {} if timeout_ms is None else {"timeout_s": timeout_ms / 1000 or None}
            reply = client.call(*args, **options)
        except RespReplyError as exc:
            raise ReplyError(str(exc)) from None
        except (OSError, RespConnectionLost) as exc:
            self.close()
            raise ConnectionLost(str(exc)) from None
        if verb == b"SELECT" and len(args) == 2:
            self.db = int(args[1])
        return reply

    def receive_push(self, timeout_ms: int) -> Any:
        client = self._connected()
        try:
            message = client.get_message(timeout_ms / 1000)
        except (OSError, RespConnectionLost) as exc:
            self.close()
            raise ConnectionLost(str(exc)) from None
        if message is None:
            return None
        if message.kind == "pmessage":
            return [b"pmessage", message.pattern, message.channel, message.data]
        if message.channel is None:
            return message.data
        return [message.kind.encode(), message.channel, message.data]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
