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
client still reads it; Redis, frozen during MIGRATE, cannot meet that case). Where a client cannot block
(MULTI / EXEC, a script, the master's stream, loading) the exchange stays synchronous, as in Redis.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

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
    pipeline: list[list[bytes]] = []
    if auth:
        pipeline.append(auth)
    pipeline.append([b"SELECT", b"%d" % db_index])
    for key, payload, ttl_ms in found:
        args = [restore, key, b"%d" % ttl_ms, payload]
        if replace:
            args.append(b"REPLACE")
        pipeline.append(args)
    host = argv[1].decode("utf-8", "replace")
    master = server.master_actor
    loop = master.loop if master is not None else None
    if loop is None or not can_block(client) or client.kind not in (ClientKind.RESP, ClientKind.NATIVE):
        replies = _exchange_now(host, port, pipeline, timeout_ms)
        return _finish(client, db, found, replies, copy, len(pipeline) - len(found), None)
    waiting = MigrateWait(db, [key for key, _, _ in found])
    client.blocked = waiting
    task = loop.create_task(_exchange(host, port, pipeline, timeout_ms))
    task.add_done_callback(
        lambda done: _completed(client, waiting, done, found, copy, len(pipeline) - len(found))
    )
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


async def _exchange(host: str, port: int, pipeline: list[list[bytes]], timeout_ms: int) -> list[Any]:
    """The exchange on the loop: connect, then the whole pipeline, each bounded by ``timeout_ms``."""
    from protocol.resp_client import RespClient  # only MIGRATE needs the client: not loaded at start

    try:
        target = await RespClient.connect(host, port, timeout_s=timeout_ms / 1000)
    except (TimeoutError, OSError):
        raise CommandError(IOERR_CONNECT) from None
    try:
        return await target.pipeline(pipeline, raise_on_error=False, timeout_s=timeout_ms / 1000)
    except (TimeoutError, OSError):
        raise CommandError(IOERR_READ) from None
    finally:
        await target.close()


def _completed(
    client: Client,
    waiting: MigrateWait,
    task: asyncio.Task[list[Any]],
    found: list[tuple[bytes, bytes, int]],
    copy: bool,
    setup_count: int,
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
                reply = _finish(client, waiting.db, found, task.result(), copy, setup_count, waiting)
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
