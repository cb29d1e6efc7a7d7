"""The RESP listeners beyond the first binding: CONFIG SET port at run time, and the Unix socket.

CONFIG SET port moves the listeners to the new port, as Redis's changeListener does.

Every address of ``bind`` is bound on the new port first (``-`` marks an optional one, as at start); only if
they all are does the node close its listeners on the old port and serve the new sockets. A failure leaves
the old listeners as they were and fails CONFIG SET with Redis's "Unable to listen on this port. Check server
logs." (the reason is logged; actors/config.py restores the old value, a multi-pair CONFIG SET rolls back).
Connections already accepted stay open. Port 0 stops listening on the plain port (a ``tls-port`` may
still serve). A cluster node refuses (its peers announce its port; Redis re-announces it). Runs on the master actor's loop thread, inside the CONFIG SET command.

``unixsocket``: ``UnixListener`` serves RESP on a Unix socket beside the TCP ports (or alone, with ``port
0``), with mode ``unixsocketperm``, and removes the socket file when the node stops, as Redis does. A stale
socket left by a node that died is replaced; any other file at that path is left alone and the node does not
start (Redis unlinks whatever is there).
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
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
    """The TCP port ``srv`` listens on; None for the Unix socket's (its name is a path)."""
    sockets = srv.sockets
    name = sockets[0].getsockname() if sockets else None
    return int(name[1]) if isinstance(name, tuple) else None


class UnixListener:
    """The ``unixsocket`` listener of a master actor (see the module docstring)."""

    def __init__(self, path: str, perm: int) -> None:
        self.path = path
        self.perm = perm  # unixsocketperm: 0 leaves the mode the umask gave
        self.bound = False

    async def start(
        self, loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol], backlog: int
    ) -> asyncio.base_events.Server:
        """Listen; raises OSError with Redis's "Failed opening Unix socket" reason if it cannot."""
        try:
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)  # a node that died left it: nothing listens there any more
        except FileNotFoundError:
            pass
        try:
            srv = await loop.create_unix_server(factory, self.path, backlog=backlog)
            self.bound = True
            if self.perm:
                os.chmod(self.path, self.perm)
        except OSError as exc:
            raise OSError(f"Failed opening Unix socket: {exc.strerror or exc}") from None
        log.info(
            "unix_socket_listening",
            path=self.path,
            message=f"The server is now ready to accept connections at {self.path}",
        )
        return srv

    def remove(self) -> None:
        """Remove the socket file (the node is stopping), once."""
        if not self.bound:
            return
        self.bound = False
        try:
            os.unlink(self.path)
            log.info("unix_socket_removed", path=self.path, message="Removing the unix socket file.")
        except OSError as exc:
            log.warning("unix_socket_not_removed", path=self.path, reason=exc.strerror or str(exc))
