"""client-output-buffer-limit: closing clients whose unsent replies grow past their class's limits.

Redis's ``checkClientOutputBufferLimits``: each client belongs to a class (``normal``, ``slave``, ``pubsub``;
a subscribed client is ``pubsub``, a MONITOR one ``normal``); past the class's hard limit it is closed at once,
past its soft limit for ``soft seconds`` in a row it is closed too, and the node logs Redis's line ("Client ...
scheduled to be closed ASAP for overcoming of output buffer limits.") with the client's CLIENT LIST line. A
client that never reads (a stalled subscriber of a busy channel) so costs the node at most the hard limit.

What counts as the client's output buffer here: the bytes the socket did not take yet, which the event loop's
transport holds (``get_write_buffer_size()``), measured after each flush of the client's replies. The closing
drops them (``abort``), as Redis frees the client without sending the rest. Replicas stream over the ZeroMQ
bus, not a RESP socket, so the ``slave`` class applies to RESP clients that asked for a snapshot (SYNC,
``redis-cli --rdb``).

The check runs only for classes with a limit (the default ``normal 0 0 0`` leaves plain clients unchecked, so
the GET/SET path pays one flag test per flush).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server

log = structlog.get_logger("redactor.buffers")


# Redis 7.0 closes a client that has not authenticated once its unread replies pass 1 KiB.
UNAUTHENTICATED_LIMIT_BYTES = 1024


class OutputBufferLimits:
    """The node's client-output-buffer-limit settings and the soft-limit clocks of its clients."""

    def __init__(self, server: Server) -> None:
        self.server = server
        # class -> (hard bytes, soft bytes, soft seconds); 0 disables that limit.
        self.limits: dict[str, tuple[int, int, int]] = {}
        # True when the normal class has a limit: every client's flush is checked, not only pub/sub ones.
        self.watch_all = False
        # client id -> monotonic time it went over its soft limit (cleared when it drops back under).
        self._soft_since: dict[int, float] = {}
        # Clients closed for their output buffer (a figure for tests and the log).
        self.disconnections = 0
        server.config.on_change("client-output-buffer-limit", self._reconfigure)
        server.client_removed_hooks.append(self._forget)
        self._reconfigure(server.config["client-output-buffer-limit"])

    def _reconfigure(self, value: Any) -> None:
        self.limits = dict(value)
        hard, soft, _seconds = self.limits.get("normal", (0, 0, 0))
        self.watch_all = bool(hard or soft)

    def soft_clocked(self) -> list[int]:
        """Ids of the clients past their soft limit, whose clock runs: the cron checks them with no traffic."""
        return list(self._soft_since)

    def _forget(self, client: Client) -> None:
        self._soft_since.pop(client.id, None)

    def class_of(self, client: Client) -> str:
        """getClientType, for the classes a limit can name."""
        if client.rdb_only or client.last_command in ("sync", "psync"):
            return "slave"
        if client.channels or client.patterns:
            return "pubsub"
        return "normal"

    def exceeded(self, client: Client, pending_bytes: int) -> bool:
        """Whether ``client``, holding ``pending_bytes`` unsent, must be closed now (logged if so)."""
        hard, soft, soft_seconds = self.limits.get(self.class_of(client), (0, 0, 0))
        over = False
        if not client.authenticated and pending_bytes > UNAUTHENTICATED_LIMIT_BYTES:
            over = True  # a client that has not authenticated may not pile up replies it does not read
        elif hard and pending_bytes >= hard:
            over = True
        elif soft and pending_bytes >= soft:
            now = time.monotonic()
            since = self._soft_since.setdefault(client.id, now)
            over = now - since >= soft_seconds
        else:
            self._soft_since.pop(client.id, None)
        if over:
            self.disconnections += 1
            self._soft_since.pop(client.id, None)
            log.warning(
                "client_output_buffer_limit_reached",
                message=f"Client {client.describe()} scheduled to be closed ASAP for overcoming of output "
                "buffer limits.",
                pending_bytes=pending_bytes,
            )
        return over
