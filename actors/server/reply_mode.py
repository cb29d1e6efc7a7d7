"""CLIENT REPLY ON | OFF | SKIP: a client that asked for no replies gets none, as Redis's CLIENT_REPLY_OFF /
CLIENT_REPLY_SKIP.

While at least one client is not ON, ``Server.execute`` is wrapped (an instance attribute over the method, so
the common case pays nothing) by a function that swallows the replies such a client must not see, and the
fast lane is kept off (``Server.restrict``), since it writes replies itself. ``OFF``: no reply until
``CLIENT REPLY ON`` (whose OK is sent); ``SKIP``: the next command's reply is dropped; the ``CLIENT REPLY OFF``
and ``SKIP`` commands themselves get no reply. Pub/sub traffic is not a reply (Redis writes it with
CLIENT_PUSHING): messages and (un)subscribe confirmations still arrive, on both protocols.

Runs on the master actor's event-loop thread only.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from actors.commands import BLOCKED
from actors.server.wrappers import set_wrapper
from protocol.resp import MultiReply, Push

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server

RESTRICTION = "client-reply"
# An empty MultiReply encodes to nothing: the connection sends no bytes for it.
_SILENT = MultiReply()


class ReplyMode(Enum):
    ON = 0  # replies are sent (the default)
    OFF = 1  # no replies until CLIENT REPLY ON
    SKIP_NEXT = 2  # CLIENT REPLY SKIP ran: the next command's reply is dropped


class ReplyModes:
    """Which clients have replies off, and the execute wrapper that honours it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        # Clients whose mode is not ON.
        self._quiet: set[Client] = set()
        server.client_removed_hooks.append(self._forget)

    def set_mode(self, client: Client, mode: ReplyMode) -> None:
        if mode is ReplyMode.ON:
            self._quiet.discard(client)
        else:
            self._quiet.add(client)
        client.reply_mode = mode
        self._install()

    def _install(self) -> None:
        server = self.server
        set_wrapper(server, RESTRICTION, self._wrap if self._quiet else None)
        server.restrict(RESTRICTION, bool(self._quiet))

    def _wrap(self, real: Callable[[Client, list[bytes]], Any]) -> Callable[[Client, list[bytes]], Any]:
        def execute(client: Client, argv: list[bytes]) -> Any:
            mode = client.reply_mode
            if mode is ReplyMode.SKIP_NEXT:
                client.reply_mode = ReplyMode.ON  # this command's reply is the one skipped
                reply = real(client, argv)
                if client.reply_mode is ReplyMode.ON:
                    self.set_mode(client, ReplyMode.ON)
                # CLIENT REPLY ON clears the skip before its OK is written, so that OK is sent (as Redis).
                on = _is_reply_on(argv, self.server.renamed)
                return reply if reply is BLOCKED or on or _pushes(reply) else _SILENT
            reply = real(client, argv)
            if reply is BLOCKED or client.reply_mode is ReplyMode.ON or _pushes(reply):
                return reply  # ON all along, or CLIENT REPLY ON ended OFF: its OK is sent
            return _SILENT  # OFF, or CLIENT REPLY OFF / SKIP itself

        return execute

    def _forget(self, client: Client) -> None:
        if client in self._quiet:
            self._quiet.discard(client)
            self._install()


def _is_reply_on(argv: list[bytes], renamed: dict[bytes, bytes]) -> bool:
    """CLIENT REPLY ON, by whatever name rename-command gave CLIENT (``renamed``: Server.renamed)."""
    name = argv[0].lower()
    return (
        len(argv) == 3
        and renamed.get(name, name) == b"client"
        and argv[1].lower() == b"reply"
        and argv[2].lower() == b"on"
    )


def _pushes(reply: Any) -> bool:
    """Pub/sub confirmations are pushes, sent whatever the reply mode (SUBSCRIBE's reply is one per channel)."""
    kind = type(reply)
    return kind is Push or (kind is MultiReply and bool(reply) and type(reply[0]) is Push)


_by_server: weakref.WeakKeyDictionary[Server, ReplyModes] = weakref.WeakKeyDictionary()


def reply_modes(server: Server) -> ReplyModes:
    """The server's ReplyModes, made on first use (most nodes never see CLIENT REPLY)."""
    found = _by_server.get(server)
    if found is None:
        found = _by_server[server] = ReplyModes(server)
    return found
