"""MIGRATE and RESTORE-ASKING: moving keys to another node (Redis's cluster.c migrateCommand).

MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw] [AUTH2 user pw] [KEYS k...] dumps each key
(the DUMP payload, so a redis-server target takes it too), sends ``[AUTH] SELECT db`` and one RESTORE per key
(RESTORE-ASKING in cluster mode, so the target serves it in an IMPORTING slot) in one pipeline, and, unless
COPY, deletes the keys the target accepted; the deletion propagates as DEL.

Redis talks to the target with blocking socket calls; here the exchange runs on the loop as an asyncio task
over protocol/resp_client.py, bounded by ``timeout`` milliseconds (connecting, then the whole pipeline), so a
slow or dead target holds only the client that sent MIGRATE: it is marked blocked (``client.blocked``, its
pipelined commands queue behind it) and gets its reply when the task ends; other clients are served
meanwhile. The keys stay put until the target answered; each is watched as WATCH watches a key, and a key
another client changed while the exchange ran is not deleted (the newer value stays here, where every
client still reads it; Redis, frozen during MIGRATE, cannot meet that case). As in Redis, the connection to a
target is kept for the next MIGRATE (``_TargetCache``: 64 at most, 10 s idle). Where a client cannot block
(MULTI / EXEC, a script, the master's stream, loading) the exchange stays synchronous, as in Redis.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import hiredis

from actors.commands import BLOCKED, command
from actors.commands._util import parse_int
from actors.commands.keys import cmd_restore
from actors.server.blocking import can_block
from actors.server.client import ClientKind
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.server.client import Client
    from actors.server.server import Server
    from protocol.resp_client import RespClient

KEYS_NEED_EMPTY_KEY = "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"
IOERR_CONNECT = "IOERR error or timeout connecting to the client"
IOERR_WRITE = "IOERR error or timeout writing to target instance"
IOERR_READ = "IOERR error or timeout reading to target instance"


class _KeyWatch:
    """A WATCH-style watcher of one key sent to the target: ``Keyspace.touch`` sets ``dirty_cas`` on a write."""

    __slots__ = ("dirty_cas",)

    def __init__(self) -> None:
        self.dirty_cas = False


class MigrateWait:
    """``client.blocked`` while MIGRATE waits for its target, with a watcher per key sent (module docstring)."""

    __slots__ = ("db", "watches")

    def __init__(self, db: Database, keys: list[bytes]) -> None:
        self.db = db
        self.watches = {key: _KeyWatch() for key in keys}
        for key, watch in self.watches.items():
            db.watched.setdefault(key, set()).add(watch)

    def changed(self, key: bytes) -> bool:
        return self.watches[key].dirty_cas

    def unwatch(self) -> None:
        for key, watch in self.watches.items():
            watchers = self.db.watched.get(key)
            if watchers is not None:
                watchers.discard(watch)
                if not watchers:
                    del self.db.watched[key]

    def __repr__(self) -> str:
        return "MIGRATE"


def _request(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _read_replies(sock: socket.socket, count: int) -> list[Any]:
    reader = hiredis.Reader()
    replies: list[Any] = []
    while len(replies) < count:
        reply = reader.gets()
        if reply is not False:
            replies.append(reply)
            continue
        try:
            data = sock.recv(65536)
        except OSError:
            raise CommandError(IOERR_READ) from None
        if not data:
            raise CommandError(IOERR_READ)
        reader.feed(data)
    return replies


@command(
    "migrate", -6, "write random", (0, 0, 0), "keyspace", "Atomically transfer a key to another instance"
)
def cmd_migrate(client: Client, argv: list[bytes]) -> Any:
    copy = replace = False
    auth: list[bytes] = []
    keys = [argv[3]]
    i = 6
    while i < len(argv):
        option = argv[i].lower()
        if option == b"copy":
            copy = True
        elif option == b"replace":
            replace = True
        elif option == b"auth" and i + 1 < len(argv):
            auth = [b"AUTH", argv[i + 1]]
            i += 1
        elif option == b"auth2" and i + 2 < len(argv):
            auth = [b"AUTH", argv[i + 1], argv[i + 2]]
            i += 2
        elif option == b"keys":
            if argv[3]:
                raise CommandError(KEYS_NEED_EMPTY_KEY)
            keys = argv[i + 1 :]
            break
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    port = parse_int(argv[2])
    db_index = parse_int(argv[4])
    timeout_ms = parse_int(argv[5])
    if timeout_ms <= 0:
        timeout_ms = 1000
    server = client.server
    keyspace = server.keyspace
    codec = server.rdb_codec
    if codec is None:
        raise CommandError("ERR DUMP / RESTORE are not available on this node (no RDB codec)")
    db = client.db
    now = keyspace.clock()
    found: list[tuple[bytes, bytes, int]] = []
    for key in keys:
        value = keyspace.lookup_read(db, key)
        if value is None:
            continue
        expire_at = db.expires.get(key)
        ttl_ms = 0
        if expire_at is not None:
            ttl_ms = max(1, expire_at - now)
        found.append((key, codec.dump_value(value, compress=bool(server.config["rdbcompression"])), ttl_ms))
    if not found:
        return "NOKEY"
    restore = b"RESTORE-ASKING" if server.cluster is not None else b"RESTORE"
    restores: list[list[bytes]] = []
    for key, payload, ttl_ms in found:
        args = [restore, key, b"%d" % ttl_ms, payload]
        if replace:
            args.append(b"REPLACE")
        restores.append(args)
    host = argv[1].decode("utf-8", "replace")
    master = server.master_actor
    loop = master.loop if master is not None else None
    if loop is None or not can_block(client) or client.kind not in (ClientKind.RESP, ClientKind.NATIVE):
        setup = ([auth] if auth else []) + [[b"SELECT", b"%d" % db_index]]
        replies = _exchange_now(host, port, setup + restores, timeout_ms)
        return _finish(client, db, found, replies, copy, len(setup), None)
    waiting = MigrateWait(db, [key for key, _, _ in found])
    client.blocked = waiting
    task = loop.create_task(_exchange(_targets(server), host, port, auth, db_index, restores, timeout_ms))
    task.add_done_callback(lambda done: _completed(client, waiting, done, found, copy))
    return BLOCKED


def _exchange_now(host: str, port: int, pipeline: list[list[bytes]], timeout_ms: int) -> list[Any]:
    """The synchronous exchange (where the client cannot block): a socket bounded by ``timeout_ms``."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout_ms / 1000)
    except OSError:
        raise CommandError(IOERR_CONNECT) from None
    with sock:
        sock.settimeout(timeout_ms / 1000)
        try:
            sock.sendall(b"".join(_request(*args) for args in pipeline))
        except OSError:
            raise CommandError(IOERR_WRITE) from None
        return _read_replies(sock, len(pipeline))


class _Target:
    """A connection to a MIGRATE target kept for the next MIGRATE (Redis's migrate_cached_sockets)."""

    __slots__ = ("client", "db_index", "idle_timer")

    def __init__(self, client: RespClient) -> None:
        self.client = client
        self.db_index = -1  # the database last SELECTed on it (-1: none yet)
        self.idle_timer: asyncio.TimerHandle | None = None


class _TargetCache:
    """Idle connections to MIGRATE targets by (host, port): a reshard sends one MIGRATE per 10 keys to the
    same target, and a fresh connection each time (connect, the target's client set-up, close) cost more
    than the keys. As Redis: at most MIGRATE_SOCKET_CACHE_ITEMS, each closed after MIGRATE_SOCKET_IDLE_S
    unused, and SELECT sent only when the database differs from the last one sent on it. A connection is
    taken out while a MIGRATE uses it, so two concurrent MIGRATEs never share one (the second connects)."""

    def __init__(self) -> None:
        self.idle: dict[tuple[str, int], _Target] = {}

    def take(self, address: tuple[str, int]) -> _Target | None:
        target = self.idle.pop(address, None)
        if target is not None and target.idle_timer is not None:
            target.idle_timer.cancel()
        return target

    def give_back(self, address: tuple[str, int], target: _Target) -> None:
        if target.client.is_closed or address in self.idle or len(self.idle) >= MIGRATE_SOCKET_CACHE_ITEMS:
            _close_soon(target.client)
            return
        self.idle[address] = target
        loop = asyncio.get_running_loop()
        target.idle_timer = loop.call_later(MIGRATE_SOCKET_IDLE_S, self._expire, address, target)

    def _expire(self, address: tuple[str, int], target: _Target) -> None:
        if self.idle.get(address) is target:
            del self.idle[address]
            _close_soon(target.client)


MIGRATE_SOCKET_CACHE_ITEMS = 64
MIGRATE_SOCKET_IDLE_S = 10.0
_caches: WeakKeyDictionary[Server, _TargetCache] = WeakKeyDictionary()


def _targets(server: Server) -> _TargetCache:
    found = _caches.get(server)
    if found is None:
        found = _caches[server] = _TargetCache()
    return found


def cached_sockets(server: Server) -> int:
    """INFO stats ``migrate_cached_sockets``: connections to MIGRATE targets kept for reuse."""
    found = _caches.get(server)
    return 0 if found is None else len(found.idle)


def _close_soon(client: RespClient) -> None:
    asyncio.get_running_loop().create_task(client.close())


async def _exchange(
    cache: _TargetCache,
    host: str,
    port: int,
    auth: list[bytes],
    db_index: int,
    restores: list[list[bytes]],
    timeout_ms: int,
) -> tuple[list[Any], int]:
    """The exchange on the loop, over a cached connection or a new one (connecting, then the whole pipeline,
    each bounded by ``timeout_ms``): the replies and how many of them answer the set-up (AUTH, SELECT).
    A cached connection the target closed meanwhile is replaced once, as Redis retries once on a socket
    error that is not a timeout."""
    from protocol.resp_client import ConnectionLost, RespClient  # only MIGRATE needs it: not loaded at start

    address = (host, port)
    timeout_s = timeout_ms / 1000
    target = cache.take(address)
    while True:
        cached = target is not None
        if target is None:
            try:
                target = _Target(await RespClient.connect(host, port, timeout_s=timeout_s))
            except (TimeoutError, OSError):
                raise CommandError(IOERR_CONNECT) from None
        setup = [auth] if auth else []
        select = target.db_index != db_index
        if select:
            setup.append([b"SELECT", b"%d" % db_index])
        try:
            replies = await target.client.pipeline(
                setup + restores, raise_on_error=False, timeout_s=timeout_s
            )
        except ConnectionLost:
            await target.client.close()
            if cached:
                target = None
                continue
            raise CommandError(IOERR_READ) from None
        except (TimeoutError, OSError):
            await target.client.close()
            raise CommandError(IOERR_READ) from None
        if select and not isinstance(replies[len(setup) - 1], hiredis.ReplyError):
            target.db_index = db_index
        cache.give_back(address, target)
        return replies, len(setup)


def _completed(
    client: Client,
    waiting: MigrateWait,
    task: asyncio.Task[tuple[list[Any], int]],
    found: list[tuple[bytes, bytes, int]],
    copy: bool,
) -> None:
    """The task ended (loop thread): delete what moved, propagate, answer the client, run what it queued."""
    waiting.unwatch()
    if client.blocked is waiting:
        client.blocked = None
    reply: Any
    if task.cancelled():
        reply = CommandError(IOERR_READ)
    else:
        error = task.exception()
        if isinstance(error, CommandError):
            reply = error
        elif error is not None:
            reply = CommandError(IOERR_READ)
        else:
            try:
                replies, setup_count = task.result()
                reply = _finish(client, waiting.db, found, replies, copy, setup_count, waiting)
            except CommandError as exc:
                reply = exc
    client.deliver(reply)


def _finish(
    client: Client,
    db: Database,
    found: list[tuple[bytes, bytes, int]],
    replies: list[Any],
    copy: bool,
    setup_count: int,
    waiting: MigrateWait | None,
) -> Any:
    """The target's replies: delete (unless COPY) each key it accepted and propagate the DEL; the reply."""
    keyspace = client.server.keyspace
    for reply in replies[:setup_count]:  # AUTH, SELECT
        if isinstance(reply, hiredis.ReplyError):
            raise CommandError(f"ERR Target instance replied with error: {reply}")
    first_error: str | None = None
    moved: list[bytes] = []
    for (key, _, _), reply in zip(found, replies[setup_count:], strict=True):
        if isinstance(reply, hiredis.ReplyError):
            if first_error is None:
                first_error = f"ERR Target instance replied with error: {reply}"
            continue
        if copy:
            continue
        if waiting is not None and waiting.changed(key):
            continue  # written meanwhile: the newer value stays here
        keyspace.delete(db, key)
        moved.append(key)
    if moved:
        keyspace.dirty += 1
        if waiting is None:
            client.propagate_as = [[b"DEL", *moved]]
        else:
            client.server.propagate(db.id, [b"DEL", *moved])
    if first_error is not None:
        raise CommandError(first_error)
    return OK


@command(
    "restore-asking",
    -4,
    "write denyoom asking",
    (1, 1, 1),
    "keyspace",
    "An internal command for migrating keys in a cluster",
)
def cmd_restore_asking(client: Client, argv: list[bytes]) -> Any:
    return cmd_restore(client, argv)
