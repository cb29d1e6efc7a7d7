"""CONFIG SET port at run time: the RESP listeners move to the new port, as Redis's changeListener does.

Every address of ``bind`` is bound on the new port first (``-`` marks an optional one, as at start); only if
they all are does the node close its listeners on the old port and serve the new sockets. A failure leaves
the old listeners as they were and fails CONFIG SET with Redis's "Unable to listen on this port. Check server
logs." (the reason is logged; actors/config.py restores the old value, a multi-pair CONFIG SET rolls back).
Connections already accepted stay open. Port 0 stops listening on the plain port (a ``tls-port`` may
still serve). A cluster node refuses (its peers announce its port; Redis re-announces it). Runs on the master actor's loop thread, inside the CONFIG SET command.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import structlog

from actors.config import ConfigError
from actors.server.server import Server

log = structlog.get_logger("redactor.master")


class PortListeners:
    """The plain (non-TLS) RESP listeners of a master actor, found in ``servers`` by the port they listen on."""

    def __init__(
        self,
        server: Server,
        loop: asyncio.AbstractEventLoop,
        servers: list[asyncio.base_events.Server],
        factory: Callable[[], asyncio.Protocol],
        binds: list[str],
        port: int,
        backlog: int,
    ) -> None:
        self.server = server
        self.loop = loop
        self.servers = servers  # the master's own list: its stop() closes whatever is in it
        self.factory = factory
        self.binds = binds
        self.port = port
        self.backlog = backlog

    def change(self, new_port: int) -> None:
        """The ``port`` directive's listener. Raises ConfigError (nothing changed) if it cannot listen."""
        if new_port == self.port:
            return
        if self.server.cluster is not None:  # its nodes would keep sending clients to the old port
            raise ConfigError("can't change the port of a cluster node at run time")
        sockets = self._bind_all(new_port) if new_port else []
        for srv in [srv for srv in self.servers if _listening_port(srv) == self.port]:
            srv.close()
            self.servers.remove(srv)
        for sock in sockets:
            self.loop.create_task(self._serve(sock))
        self.port = self.server.port = new_port  # INFO's tcp_port, the port a replica announces

    async def _serve(self, sock: socket.socket) -> None:
        srv = await self.loop.create_server(self.factory, sock=sock, backlog=self.backlog)
        self.servers.append(srv)

    def _bind_all(self, port: int) -> list[socket.socket]:
        bound: list[socket.socket] = []
        try:
            for addr in self.binds:
                optional = addr.startswith("-")
                try:
                    bound.extend(self._bind(addr.lstrip("-"), port))
                except OSError:
                    if not optional:
                        raise
            if not bound:
                raise OSError(0, "no address of bind could be bound")
        except OSError as exc:
            for sock in bound:
                sock.close()
            log.warning("port_change_failed", port=port, reason=exc.strerror or str(exc))
            raise ConfigError("Unable to listen on this port. Check server logs.") from None
        return bound

    def _bind(self, host: str, port: int) -> list[socket.socket]:
        """Listening sockets for every address ``host`` resolves to, as asyncio's create_server binds them."""
        infos = socket.getaddrinfo(
            host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
        bound: list[socket.socket] = []
        try:
            for family, kind, proto, _name, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                bound.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(self.backlog)
                sock.setblocking(False)
        except OSError:
            for sock in bound:
                sock.close()
            raise
        return bound


def _listening_port(srv: Any) -> int | None:
    sockets = srv.sockets
    return int(sockets[0].getsockname()[1]) if sockets else None
