"""The sentinel's RESP listener: only the commands Redis Sentinel serves, and its own pub/sub of events.

Served: ACL, AUTH, CLIENT (SETNAME, GETNAME, ID, SETINFO, LIST, INFO, KILL), COMMAND (COUNT, DOCS, INFO:
empty), HELLO, INFO, PING, (P)SUBSCRIBE, (P)UNSUBSCRIBE, PUBLISH (hellos only), ROLE, SENTINEL, SHUTDOWN.
Anything else gets Redis's ``unknown command`` error. Each client runs as an ACL user (actors/sentinel/acl.py):
NOAUTH, then the user's permissions, are checked before a command runs, as Redis's processCommand checks them.
Events from the monitor are published here (``publish``) to clients subscribed to the event's name or to a
matching pattern, as ``PSUBSCRIBE *`` subscribers expect.

The listener runs on the listener actor's loop, the monitor on the monitor actor's (system.py): a command that
reads or changes the monitor's state is handed to the monitor's loop (``OnMonitor``), and its client waits for
the reply without blocking the others. With ``enable-debug-command yes|local`` it also serves ``DEBUG
CRASH-ACTOR <config-writer|monitor|listener>`` and ``INFO actors`` (fault injection for tests); otherwise DEBUG
is an unknown command, as on redis-sentinel.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fnmatch
import ipaddress
import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actors.commands.acl import ACL_SUBCOMMANDS
from actors.sentinel.acl import SentinelAcl, kill_filter
from actors.sentinel.commands import ListenerInfo, info_text, sentinel_command, subcommand_names
from actors.sentinel.monitor import Monitor
from actors.sentinel.state import HELLO_CHANNEL
from actors.server.client import ClientKind
from actors.sockets import set_keepalive
from actors.supervision.supervisor import SupervisorError
from actors.version import REDIS_VERSION
from protocol.errors import (
    NOAUTH,
    WRONGPASS,
    CommandError,
    ProtocolError,
    echoed,
    unknown_command,
    unknown_subcommand,
    wrong_arity,
)
from protocol.resp import MultiReply, Push, Verbatim, encode
from protocol.resp_parse import RequestParser

if TYPE_CHECKING:
    from actors.sentinel.config import SentinelConfig
    from actors.sentinel.system import SentinelSystem
    from actors.server.acl_rules import User

# How long a client waits for the monitor (it may be restarting) before getting an error.
MONITOR_WAIT_S = 5.0
# How often clients idle past ``timeout`` are looked for (Redis's clientsCron visits each about once a second).
IDLE_CHECK_INTERVAL_S = 1.0

_ids = itertools.count(1)
SUBSCRIBED_ALLOWED = frozenset(
    (b"ping", b"subscribe", b"psubscribe", b"unsubscribe", b"punsubscribe", b"reset", b"quit")
)


class OnMonitor:
    """A reply still to compute: ``fn(monitor)`` runs on the monitor's loop, the client awaits it."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Monitor], Any]) -> None:
        self.fn = fn


class SentinelClient:
    """One client connection."""

    def __init__(
        self, server: SentinelServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.id = next(_ids)
        self.name = b""
        self.command_name = b""  # as the client spelt it: Redis's unknown-command error repeats it
        self.resp3 = False
        # ACL: the user this client runs as, and whether it logged in (Redis's c->authenticated).
        self.user: User = server.acl.default
        self.authenticated = not server.acl.auth_required_by_default()
        self.close_requested = False  # CLIENT KILL / ACL DELUSER: closed once the current reply is out
        self.executing = False
        self.last_command = "NULL"
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()
        peer = writer.get_extra_info("peername")
        self.addr = f"{peer[0]}:{peer[1]}" if peer else "?"
        local = writer.get_extra_info("sockname")
        self.laddr = f"{local[0]}:{local[1]}" if local else "?"
        self.created_s = time.monotonic()
        self.last_interaction_s = time.monotonic()  # (the timeout directive)

    # -- what the ACL needs of a connection (actors/server/acl.py's Client) --------------------------------------

    kind = ClientKind.RESP
    multi = None
    shard_channels: frozenset[bytes] = frozenset()

    @property
    def in_pubsub(self) -> bool:
        return bool(self.channels or self.patterns)

    def refresh_unchecked(self) -> None:
        pass  # (every command is checked: the sentinel has no fast path to keep)

    def kill(self) -> None:
        self.close_requested = True
        if not self.executing:
            self.writer.close()

    def describe(self) -> str:
        age = int(time.monotonic() - self.created_s)
        idle = int(time.monotonic() - self.last_interaction_s)
        return (
            f"id={self.id} addr={self.addr} laddr={self.laddr} fd=0 name={self.name.decode('utf-8', 'replace')} "
            f"age={age} idle={idle} flags={'P' if self.in_pubsub else 'N'} db=0 sub={len(self.channels)} "
            f"psub={len(self.patterns)} ssub=0 multi=-1 cmd={self.last_command} user={self.user.name} "
            f"resp={3 if self.resp3 else 2}"
        )

    def send(self, value: Any) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(value, self.resp3))

    async def serve(self) -> None:
        parser = RequestParser()
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    return
                self.last_interaction_s = time.monotonic()
                commands: list[list[bytes]] = []
                error: ProtocolError | None = None
                try:
                    parser.feed_parse(data, commands)
                except ProtocolError as exc:
                    error = exc
                for argv in commands:
                    if argv:
                        self.executing = True
                        try:
                            reply = await self.resolve(self.execute(argv))
                        finally:
                            self.executing = False
                        if reply is _CLOSE:
                            return
                        self.send(reply)
                        if self.close_requested:
                            await self.writer.drain()
                            return
                if error is not None:
                    self.send(error)
                    return
                await self.writer.drain()
        except (ConnectionError, OSError):
            return
        finally:
            self.server.clients.pop(self.id, None)
            self.writer.close()

    async def resolve(self, reply: Any) -> Any:
        if isinstance(reply, OnMonitor):
            try:
                return await self.server.on_monitor(reply.fn)
            except CommandError as exc:
                return exc
        if reply is _SHUTDOWN:
            with contextlib.suppress(CommandError):
                await self.server.on_monitor(lambda monitor: monitor.flush_config())
            self.server.system.request_shutdown()
            return _CLOSE
        return reply

    def execute(self, argv: list[bytes]) -> Any:
        name = argv[0].lower()
        args = argv[1:]
        acl = self.server.acl
        try:
            handler = _HANDLERS.get(name)
            if handler is None:
                raise unknown_command(echoed(argv[0]), args)
            if not self.authenticated and name not in (b"auth", b"hello") and acl.auth_required_by_default():
                raise CommandError(NOAUTH)
            refusal = acl.refusal(self, argv)
            if refusal is not None:
                raise CommandError(refusal)
            if (self.channels or self.patterns) and not self.resp3 and name not in SUBSCRIBED_ALLOWED:
                raise CommandError(
                    f"ERR Can't execute '{echoed(name)}': only (P|S)SUBSCRIBE / "
                    "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
                )
            self.command_name = argv[0]
            self.last_command = name.decode("utf-8", "replace")
            self.server.commands_processed += 1
            return handler(self, args)
        except CommandError as exc:
            return exc

    # -- commands ---------------------------------------------------------------------------------------

    def ping(self, args: list[bytes]) -> Any:
        if len(args) > 1:
            raise wrong_arity("ping")
        if (self.channels or self.patterns) and not self.resp3:
            return [b"pong", args[0] if args else b""]
        return args[0] if args else "PONG"

    def auth(self, args: list[bytes]) -> Any:
        """AUTH [<user>] <password> (Redis 7.0's authCommand): a bare password is the default user's."""
        if not args:
            raise wrong_arity("auth")
        if len(args) > 2:
            raise CommandError("ERR syntax error")
        acl = self.server.acl
        if len(args) == 1 and acl.default.nopass:
            raise CommandError(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
            )
        username = args[0] if len(args) == 2 else b"default"
        if not acl.authenticate(self, username, args[-1], b"AUTH"):
            raise CommandError(WRONGPASS)
        return "OK"

    def hello(self, args: list[bytes]) -> Any:
        index = 0
        if args:
            try:
                version = int(args[0])
            except ValueError:
                raise CommandError("ERR Protocol version is not an integer or out of range") from None
            if version not in (2, 3):
                raise CommandError("NOPROTO unsupported protocol version")
            index = 1
        credentials: list[bytes] = []
        name: bytes | None = None
        while index < len(args):
            option = args[index].lower()
            if option == b"auth" and index + 2 < len(args):
                credentials = args[index + 1 : index + 3]
                index += 3
            elif option == b"setname" and index + 1 < len(args):
                name = args[index + 1]
                index += 2
            else:
                raise CommandError(f"ERR Syntax error in HELLO option '{echoed(args[index])}'")
        acl = self.server.acl
        if credentials and not acl.authenticate(self, credentials[0], credentials[1], b"HELLO"):
            raise CommandError(WRONGPASS)
        if not self.authenticated and acl.auth_required_by_default():
            raise CommandError(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
            )
        if name is not None:
            self.name = name
        if args:
            self.resp3 = args[0] == b"3"
        return {
            b"server": b"redis", b"version": REDIS_VERSION.encode(), b"proto": 3 if self.resp3 else 2,
            b"id": self.id, b"mode": b"sentinel", b"modules": [],  # (no role in sentinel mode)
        }  # fmt: skip

    def info(self, args: list[bytes]) -> Any:
        sections = [a.decode("utf-8", "replace") for a in args]
        server = self.server
        listener = ListenerInfo(
            clients=len(server.clients),
            port=server.port,
            maxclients=server.maxclients,
            connections_received=server.connections_received,
            rejected_connections=server.rejected_connections,
            commands_processed=server.commands_processed,
            pubsub_channels=len({name for c in server.clients.values() for name in c.channels}),
            pubsub_patterns=sum(len(c.patterns) for c in server.clients.values()),
        )
        actors = ""
        if any(s.lower() == "actors" for s in sections) and self.debug_allowed():
            lines = self.server.system.supervisor.info_lines()
            actors = "# Actors\r\n" + "".join(f"{key}:{value}\r\n" for key, value in lines)

        def run(monitor: Monitor) -> Any:
            text = info_text(monitor, sections, listener)
            if actors:
                text = f"{text}\r\n{actors}" if text else actors
            return Verbatim(text.encode())

        return OnMonitor(run)

    def role(self, args: list[bytes]) -> Any:
        if args:
            raise wrong_arity("role")
        return OnMonitor(lambda monitor: [b"sentinel", [name.encode() for name in monitor.state.masters]])

    def sentinel(self, args: list[bytes]) -> Any:
        resp3 = self.resp3
        return OnMonitor(lambda monitor: sentinel_command(monitor, args, resp3))

    def publish(self, args: list[bytes]) -> Any:
        if len(args) != 2:
            raise wrong_arity("publish")
        if args[0] != HELLO_CHANNEL.encode():
            raise CommandError("ERR Only HELLO messages are accepted by Sentinel instances.")
        hello = args[1].decode("utf-8", "replace")

        def run(monitor: Monitor) -> int:
            monitor.process_hello(hello)
            return 1

        return OnMonitor(run)

    def debug_allowed(self) -> bool:
        mode = self.server.system.settings.enable_debug_command
        if mode == "local":
            host = self.addr.rpartition(":")[0]
            with contextlib.suppress(ValueError):
                return ipaddress.ip_address(host).is_loopback
            return False
        return mode == "yes"

    def debug(self, args: list[bytes]) -> Any:
        """DEBUG CRASH-ACTOR <name> (fault injection). Unknown, as on redis-sentinel, unless enabled."""
        if not self.debug_allowed():
            raise unknown_command(echoed(self.command_name), args)
        if len(args) == 2 and args[0].lower() == b"crash-actor":
            try:
                self.server.system.crash(args[1].decode("utf-8", "replace"))
            except (ValueError, SupervisorError) as exc:
                raise CommandError(f"ERR {exc}") from None
            return "OK"
        if args:
            raise unknown_subcommand(echoed(args[0]), "DEBUG")
        raise wrong_arity("debug")

    def subscribe(self, args: list[bytes], pattern: bool = False) -> Any:
        if not args:
            raise wrong_arity("psubscribe" if pattern else "subscribe")
        names = self.patterns if pattern else self.channels
        kind = b"psubscribe" if pattern else b"subscribe"
        replies = MultiReply()
        for name in args:
            names.add(name)
            replies.append(Push([kind, name, len(self.channels) + len(self.patterns)]))
        return replies

    def unsubscribe(self, args: list[bytes], pattern: bool = False) -> Any:
        names = self.patterns if pattern else self.channels
        kind = b"punsubscribe" if pattern else b"unsubscribe"
        targets = list(args) if args else sorted(names)
        replies = MultiReply()
        if not targets:
            return Push([kind, None, len(self.channels) + len(self.patterns)])
        for name in targets:
            names.discard(name)
            replies.append(Push([kind, name, len(self.channels) + len(self.patterns)]))
        return replies

    def client(self, args: list[bytes]) -> Any:
        if not args:
            raise wrong_arity("client")
        sub = args[0].lower()
        if sub == b"setname" and len(args) == 2:
            if b" " in args[1]:
                raise CommandError("ERR Client names cannot contain spaces, newlines or special characters.")
            self.name = args[1]
            return "OK"
        if sub == b"getname" and len(args) == 1:
            return self.name or None
        if sub == b"id" and len(args) == 1:
            return self.id
        if sub == b"setinfo" and len(args) == 3:
            return "OK"
        if sub in (b"list", b"info"):
            clients = [self] if sub == b"info" else sorted(self.server.clients.values(), key=lambda c: c.id)
            return Verbatim("".join(c.describe() + "\n" for c in clients).encode())
        if sub == b"kill" and len(args) >= 2:
            return self.client_kill(args[1:])
        raise unknown_subcommand(echoed(args[0]), "CLIENT")

    def client_kill(self, args: list[bytes]) -> Any:
        """CLIENT KILL <addr> (OK) or CLIENT KILL <filter> <value> ... (how many were killed), as Redis 7.0's
        clientKillCommand; a killed client is closed once its reply is out (the caller's own too)."""
        match, skipme = kill_filter(args, self.server.acl)
        killed = 0
        for client in list(self.server.clients.values()):
            if (client is self and skipme) or not match(client):
                continue
            client.kill()
            killed += 1
        if len(args) == 1:
            if not killed:
                raise CommandError("ERR No such client")
            return "OK"
        return killed

    def acl(self, args: list[bytes]) -> Any:
        if not args:
            raise wrong_arity("acl")
        return self.server.acl.command(self, [b"acl", *args])

    def command_cmd(self, args: list[bytes]) -> Any:
        sub = args[0].lower() if args else b""
        if sub == b"count":
            return len(_HANDLERS)
        if sub == b"list":
            if len(args) > 1:
                raise CommandError("ERR COMMAND LIST FILTERBY is not supported by redactor's sentinel")
            # As redis-sentinel's: every command, and each container's subcommands as "container|sub".
            names = [name.decode() for name in _HANDLERS]
            names += [f"sentinel|{sub}" for sub in subcommand_names()]
            names += [f"{name}|{sub}" for name, subs in _CONTAINER_SUBCOMMANDS.items() for sub in subs]
            return [name.encode() for name in names]
        return {} if sub == b"docs" else []

    def shutdown(self, args: list[bytes]) -> Any:
        return _SHUTDOWN


# The subcommands this sentinel's CLIENT and COMMAND answer (SENTINEL's are actors/sentinel/commands.py's).
_CONTAINER_SUBCOMMANDS = {
    "acl": tuple(sub.decode() for sub in ACL_SUBCOMMANDS),
    "client": ("getname", "id", "info", "kill", "list", "setinfo", "setname"),
    "command": ("count", "docs", "info", "list"),
}
_CLOSE: Any = object()
_SHUTDOWN: Any = object()
_HANDLERS: dict[bytes, Any] = {
    b"ping": SentinelClient.ping,
    b"auth": SentinelClient.auth,
    b"hello": SentinelClient.hello,
    b"info": SentinelClient.info,
    b"role": SentinelClient.role,
    b"sentinel": SentinelClient.sentinel,
    b"publish": SentinelClient.publish,
    b"subscribe": SentinelClient.subscribe,
    b"psubscribe": lambda c, a: c.subscribe(a, pattern=True),
    b"unsubscribe": SentinelClient.unsubscribe,
    b"punsubscribe": lambda c, a: c.unsubscribe(a, pattern=True),
    b"client": SentinelClient.client,
    b"command": SentinelClient.command_cmd,
    b"shutdown": SentinelClient.shutdown,
    b"debug": SentinelClient.debug,
    b"acl": SentinelClient.acl,
}


class SentinelServer:
    """The listener: accepts clients, and delivers the monitor's events to subscribers."""

    def __init__(self, system: SentinelSystem, config: SentinelConfig) -> None:
        self.system = system
        self.bind = config.bind
        self.port = config.port
        assert config.acl is not None  # (built when the file was read)
        self.acl: SentinelAcl = config.acl
        self.maxclients = config.maxclients
        self.tcp_keepalive_s = config.tcp_keepalive_s
        self.timeout_s = config.timeout_s
        self.clients: dict[int, SentinelClient] = {}
        self.acl.listener_clients = self.clients
        # INFO stats (listener thread): connections accepted and refused, commands run.
        self.connections_received = 0
        self.rejected_connections = 0
        self.commands_processed = 0
        self._servers: list[asyncio.base_events.Server] = []
        self._idle_closer: asyncio.Task[None] | None = None

    async def on_monitor(self, fn: Callable[[Monitor], Any]) -> Any:
        """``fn(monitor)`` on the monitor's loop; waits (bounded) while the monitor actor restarts."""
        deadline = asyncio.get_running_loop().time() + MONITOR_WAIT_S
        while True:
            target = self.system.current_monitor()
            if target is not None:
                monitor, loop = target
                future: concurrent.futures.Future[Any] = concurrent.futures.Future()

                def run(monitor: Monitor = monitor, future: concurrent.futures.Future[Any] = future) -> None:
                    if not future.set_running_or_notify_cancel():
                        return
                    try:
                        future.set_result(fn(monitor))
                    except BaseException as exc:
                        future.set_exception(exc)

                try:
                    loop.call_soon_threadsafe(run)
                except RuntimeError:
                    pass  # its loop closed: the monitor is restarting
                else:
                    try:
                        return await asyncio.wait_for(asyncio.wrap_future(future), MONITOR_WAIT_S)
                    except TimeoutError:
                        raise CommandError("ERR the sentinel's monitor did not answer in time") from None
            if asyncio.get_running_loop().time() > deadline:
                raise CommandError("ERR the sentinel's monitor is restarting, try again")
            await asyncio.sleep(0.02)

    async def start(self) -> None:
        for host in self.bind:
            host = host.lstrip("-")
            self._servers.append(
                await asyncio.start_server(self._accept, host, self.port, reuse_address=True)
            )
        if self.timeout_s > 0:
            self._idle_closer = asyncio.ensure_future(self._close_idle_clients())

    async def _close_idle_clients(self) -> None:
        """``timeout``: a client idle longer is closed, as Redis's clientsCronHandleTimeout closes it (not a
        subscriber, which waits for messages by design)."""
        while True:
            await asyncio.sleep(IDLE_CHECK_INTERVAL_S)
            deadline = time.monotonic() - self.timeout_s
            for client in list(self.clients.values()):
                if client.last_interaction_s < deadline and not (client.channels or client.patterns):
                    client.writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_received += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            set_keepalive(sock, self.tcp_keepalive_s)
        if len(self.clients) >= self.maxclients:
            # Redis's acceptCommonHandler: told why, then closed.
            self.rejected_connections += 1
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(b"-ERR max number of clients reached\r\n")
                writer.close()
            return
        client = SentinelClient(self, reader, writer)
        self.clients[client.id] = client
        with contextlib.suppress(asyncio.CancelledError):  # the process is exiting
            await client.serve()

    def publish(self, channel: str, message: str) -> None:
        """Deliver an event to every subscriber of ``channel`` or of a pattern matching it."""
        name, payload = channel.encode(), message.encode()
        for client in list(self.clients.values()):
            if name in client.channels:
                client.send(Push([b"message", name, payload]))
            for pattern in client.patterns:
                if fnmatch.fnmatchcase(channel, pattern.decode("utf-8", "replace")):
                    client.send(Push([b"pmessage", pattern, name, payload]))

    async def stop(self) -> None:
        if self._idle_closer is not None:
            self._idle_closer.cancel()
        for server in self._servers:
            server.close()
        for client in list(self.clients.values()):
            client.writer.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
