"""One RESP client connection on the master's event loop: parse, run each command where it is read, reply.

``RespConnection`` is the asyncio protocol of a client socket. Its commands run as they are parsed (GET/SET
runs through the fast lane, actors/loop/fastlane.py; the rest through ``Server.execute``); replies wait in the
connection's buffer until the tick's end, when the master actor (master.py) has handed the tick's writes to the
AOF and the replicas, and then leave in one write. Protected mode, pre-AUTH limits, output buffer limits and
client memory (what CLIENT LIST and client eviction count) are checked here, per connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any

import structlog

from actors.loop.fastlane import NAMES as FAST_LANE_NAMES
from actors.loop.preauth import refuse as refuse_preauth
from actors.ratelog import remote_errors
from actors.server.client import Client, ClientKind
from actors.server.errorstats import count_error_reply
from actors.server.server import BLOCKED
from actors.sockets import set_keepalive
from protocol.errors import CommandError, ProtocolError
from protocol.resp import BULK_HEADERS, CRLF, OK, OK_REPLY, SMALL_INTS, encode_into
from protocol.resp_parse import RequestParser
from protocol.resp_preauth import PreAuthGuard

if TYPE_CHECKING:
    from actors.loop.master import MasterActor

log = structlog.get_logger("redactor.master")

# Redis's PROTO_REPLY_CHUNK_BYTES: the static reply buffer every client has before its reply list.
REPLY_CHUNK_BYTES = 16 * 1024

DENIED_MESSAGE = (
    "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for "
    "the default user. In this mode connections are only accepted from the loopback interface. If you want to "
    "connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable "
    "protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by "
    "connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly "
    "accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
    "Alternatively you can just disable the protected mode by editing the Redis configuration file, and "
    "setting the protected mode option to 'no', and then restarting the server. 3) If you started the server "
    "manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an "
    "authentication password for the default user. NOTE: You only need to do one of the above things in order "
    "for the server to start accepting connections from the outside.\r\n"
)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


class RespConnection(asyncio.Protocol):
    """One RESP client socket. Runs commands as they are parsed; replies leave at the end of the tick."""

    def __init__(self, master: MasterActor) -> None:
        self.master = master
        self.server = master.server
        self.transport: Any = None
        self.client: Client | None = None
        config = self.server.config
        self.parser = RequestParser(config=config.values)
        # Encoded replies of this tick, written with one writelines() in the flush.
        self.out: list[bytes] = []
        # True while this connection sits in the master's pending-flush list.
        self.pending = False
        # Commands that arrived while the client was blocked (BLPOP ...): run once it is woken.
        self.backlog: deque[list[bytes]] = deque()
        self.closed = False
        # Walks the reads while the client is unauthenticated (Redis 7's limits: actors/loop/preauth.py).
        self.guard: PreAuthGuard | None = PreAuthGuard()
        # The fast lane (actors/loop/fastlane.py) as _run calls it: a read's only GET/SET, or a pipeline's run.
        self.run_one: Callable[[Client, list[bytes], list[bytes]], bool] = master.fast_lane.run_one
        self.lane_run: Callable[[Client, list[list[bytes]], int, list[bytes]], int] = master.fast_lane.run
        self.output_limits = self.server.output_limits
        # The reply bytes of ``out`` counted so far (buffers(): counted once each, however often it is asked).
        self._counted_out: list[bytes] = self.out
        self._counted_items = 0
        self._counted_bytes = 0

    # -- asyncio callbacks ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport subclasses
        peer = transport.get_extra_info("peername") or ("?", 0)
        local = transport.get_extra_info("sockname") or ("?", 0)
        sock = transport.get_extra_info("socket")
        unix = sock is not None and sock.family == socket.AF_UNIX
        if unix:
            # (unixsocket) Redis's addr and laddr of such a client: the socket's path, port 0.
            peer = local = f"{local if isinstance(local, str) and local else '?'}:0"
        elif sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            set_keepalive(sock, self.server.config["tcp-keepalive"])
        server = self.server
        if len(server.clients) >= server.config["maxclients"]:
            server.stats.rejected_connections += 1
            self.transport.write(b"-ERR max number of clients reached\r\n")
            transport.close()
            self.closed = True
            return
        if (
            server.config["protected-mode"]
            and not server.requirepass
            and not unix  # a local socket is as local as loopback
            and not is_loopback(str(peer[0]))
        ):
            server.stats.rejected_connections += 1
            self.transport.write(DENIED_MESSAGE.encode())
            transport.close()
            self.closed = True
            return
        client = Client(server, ClientKind.RESP, _fmt_addr(peer), _fmt_addr(local))
        client.unix_socket = unix
        client.push = self.push
        client.deliver = self.deliver
        client.kill = self.kill
        client.abort = self.abort
        client.buffers = self.buffers
        client.write_raw = self.write_raw
        client.detach = self.detach
        self.client = client
        server.add_client(client)

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None or self.closed:
            return
        # (``unchecked`` implies authenticated: a plain attribute read first spares most reads the property)
        if not client.unchecked and not client.authenticated and self.guard is not None:
            refusal = self.guard.check(data)
            if refusal is not None:
                refuse_preauth(self, data, refusal)
                return
        stats = self.server.stats
        stats.net_input_bytes += len(data)
        stats.reads_processed += 1
        commands: list[list[bytes]] = []
        try:
            self.parser.feed_parse(data, commands)
        except ProtocolError as exc:
            self._run(client, commands)
            if (
                not exc.silent
            ):  # a client over client-query-buffer-limit is closed without a word, as in Redis
                self.out.append(b"-" + exc.wire_bytes() + b"\r\n")
            remote_errors.info("client_error", client_id=client.id, addr=client.addr, reason=str(exc))
            client.close_requested = True
            self.master.schedule_flush(self)
            return
        client.last_interaction_s = monotonic()
        if not commands:
            self.server.client_eviction.partial_read(client)  # a request still arriving holds memory too
            if self.closed:
                return
        if self.backlog or client.blocked is not None:
            self.backlog.extend(commands)
            return
        self._run(client, commands)

    def _run(self, client: Client, commands: list[list[bytes]]) -> None:
        # Setup kept to what every command uses: unpipelined, it is paid once per request.
        # (No bound methods made here: a lone command would pay for them and use at most one.)
        server = self.server
        by_sent_name = server._by_sent_name
        out = self.out
        index = 0
        end = len(commands)
        while index < end:
            if commands[index][0] in FAST_LANE_NAMES:
                # GET/SET in the common state run inline, several at a time; whatever the lane leaves (another
                # command, or one it cannot run with the dispatcher's exact semantics) goes the general way.
                if end == 1:  # unpipelined: the lane's run of one, without the setup for runs
                    if self.run_one(client, commands[0], out):
                        break
                else:
                    index = self.lane_run(client, commands, index, out)
                    if index == end:
                        break
            # Runs of other data commands, checked once per run (actors/server/dispatch.py); it stops at a
            # GET/SET (the fast lane's) or at a command for the general path below. A lone command (unpipelined)
            # takes the path below: the lane's set-up per run costs more than it saves on one command.
            if index + 1 < end:
                ran = server.general_lane.run(client, commands, index, out)
                if ran != index:
                    index = ran
                    continue
            argv = commands[index]
            index += 1
            cmd = by_sent_name.get(argv[0])
            if (
                cmd is not None
                and (len(argv) == cmd.arity if cmd.arity > 0 else len(argv) >= -cmd.arity)
                and client.multi is None
                and server._unrestricted
                and client.unchecked
                and not (client.channels or client.patterns)
            ):
                # Server.execute's common case (the same test, in the same order of effects), without its
                # call: ~7% of a pipelined command's instructions. Everything else goes through execute.
                reply = server.call(client, cmd, argv)
                if server.after_command is not None:
                    server.after_command()
            else:
                # Read each time: CLIENT REPLY / TRACKING may have wrapped it (actors/server/wrappers.py).
                reply = server.execute(client, argv)
            if reply is BLOCKED:
                self.backlog.extendleft(reversed(commands[index:]))
                break
            kind = type(reply)
            if kind is bytes:
                # Bulk replies are the common case: encoded here, saving a call per command.
                n = len(reply)
                out.append(BULK_HEADERS[n] if n < 1024 else b"$%d\r\n" % n)
                out.append(reply)
                out.append(CRLF)
                continue
            if reply is OK:  # SET's reply, as common as a bulk
                out.append(OK_REPLY)
                if client.close_requested:  # QUIT
                    break
                continue
            if kind is int:  # INCR, LPUSH, SADD, HSET...: as common as OK, and saves encode_into's call
                out.append(SMALL_INTS[reply + 1] if -1 <= reply <= 1023 else b":%d\r\n" % reply)
                if client.close_requested:  # CLIENT KILL of itself
                    break
                continue
            if isinstance(reply, CommandError):
                count_error_reply(server, reply)
            encode_into(out, reply, client.resp3)
            if client.close_requested:
                break
        if out or client.close_requested:
            # Replies leave at the tick's end (MasterActor._flush), never here, as Redis's beforeSleep sends them:
            # - the tick's writes reach the AOF and the replicas first (a reply may show them), and the output
            #   buffer limits and a close are checked there (``flush``);
            # - every connection's replies leave in one burst after the poll's reads, so the clients' side is
            #   woken once per tick rather than once per socket. uvloop writes at once when a transport has
            #   nothing queued (strace: read, write, read, write...), so handing a lone command's reply to the
            #   transport here interleaved the writes with the reads: fewer instructions, more kernel time.
            #   redis-benchmark -c 50 -P 1, median of 9, at the tick's end: PING_MBULK, INCR +8%, LRANGE_100
            #   +13%, GET +3%, HSET and RPOP unchanged (README, "Replies at the tick's end again").
            self.master.schedule_flush(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.client is not None:
            self.server.remove_client(self.client)

    # -- used by the master and by commands ----------------------------------------------------------------

    def flush(self) -> None:
        self.pending = False
        transport = self.transport
        if transport is None:
            return
        client = self.client
        if self.out:
            data = b"".join(self.out)
            self.out = []
            stats = self.server.stats
            stats.net_output_bytes += len(data)
            if not self.closed:
                if (
                    client is not None
                    and (
                        client.channels
                        or client.patterns
                        or self.output_limits.watch_all
                        or (not client.unchecked and not client.authenticated)  # (unchecked: authenticated)
                    )
                    and self.output_limits.exceeded(client, unsent_bytes(transport, len(data)))
                ):
                    # client-output-buffer-limit, checked before writing as Redis checks it while replies
                    # pile up: the client is dropped without this tick's replies or what it did not read.
                    self.abort()
                    return
                # One write() of the joined buffer: uvloop's writelines() costs several times more per call.
                stats.writes_processed += 1
                transport.write(data)
        if client is not None and client.close_requested and not self.closed:
            self.closed = True
            transport.close()
            # Gone at once, as Redis frees a client right after its last reply: a command another client runs
            # before the close completes must not find it (a tracking redirect to it is broken by then).
            self.server.remove_client(client)
            self.client = None

    def push(self, value: Any) -> None:
        """Send an out-of-band message (pub/sub) with the tick's other replies."""
        if self.closed or self.client is None:
            return
        encode_into(self.out, value, self.client.resp3)
        self.master.schedule_flush(self)

    def deliver(self, value: Any) -> None:
        """The reply of a command that blocked; then run whatever the client pipelined behind it."""
        if self.closed or self.client is None:
            return
        encode_into(self.out, value, self.client.resp3)
        self.master.schedule_flush(self)
        if self.backlog and self.client.blocked is None and not self.client.close_requested:
            queued = self.backlog  # (a client released to be closed runs nothing it pipelined: UNBLOCKED)
            self.backlog = deque()
            self._run(self.client, list(queued))

    def kill(self) -> None:
        if self.client is not None:
            self.client.close_requested = True
        self.master.schedule_flush(self)

    def abort(self) -> None:
        """Close at once, dropping unsent replies (client eviction, output buffer limits); the client is gone."""
        if self.client is not None:
            self.client.close_requested = True  # a command loop running for it stops (RespConnection._run)
            self.server.remove_client(self.client)
            self.client = None
        self.out = []
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    def buffers(self) -> tuple[int, int, int]:
        """(query buffer, its room, unsent replies) in bytes, as client memory counts them
        (actors/server/client_memory.py)."""
        out = self.out
        if out is not self._counted_out:
            self._counted_out, self._counted_items, self._counted_bytes = out, 0, 0
        if len(out) > self._counted_items:
            self._counted_bytes += sum(map(len, out[self._counted_items :]))
            self._counted_items = len(out)
        transport = self.transport
        unsent = (
            unsent_bytes(transport, self._counted_bytes) if transport is not None and not self.closed else 0
        )
        qbuf, room = self.parser.query_buffer_bytes()
        return qbuf, room, unsent

    def write_raw(self, data: bytes) -> None:
        """Send ``data`` as it is, with the tick's other output (SYNC's RDB payload)."""
        if self.closed or self.client is None:
            return
        self.out.append(data)
        self.master.schedule_flush(self)

    def detach(self) -> tuple[int, bytes] | None:
        """Give the socket away (a Redis replica's PSYNC: the replication actor serves it from now on).

        Returns a duplicate of the descriptor and the reply bytes of this tick not yet written; the
        transport is aborted (closing only its own descriptor) and the client forgotten. None when the
        transport still holds unsent output, which the new owner could not send in order."""
        transport = self.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None or self.closed or transport.get_write_buffer_size():
            return None
        fd = os.dup(sock.fileno())
        pending = b"".join(self.out)
        self.out = []
        self.closed = True
        transport.abort()
        if self.client is not None:
            self.server.remove_client(self.client)
            self.client = None
        return fd, pending


def unsent_bytes(transport: Any, tick_bytes: int) -> int:
    """Redis's omem: replies not sent yet beyond the first REPLY_CHUNK_BYTES of this tick's (Redis keeps those
    in the client's static buffer, which omem and the output buffer limits do not count), plus what the
    socket did not take."""
    return max(0, tick_bytes - REPLY_CHUNK_BYTES) + transport.get_write_buffer_size()


def _fmt_addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr)
