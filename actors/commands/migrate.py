"""MIGRATE and RESTORE-ASKING: moving keys to another node (Redis's cluster.c migrateCommand).

MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw] [AUTH2 user pw] [KEYS k...] dumps each key
(the DUMP payload, so a redis-server target takes it too), sends ``[AUTH] SELECT db`` and one RESTORE per key
(RESTORE-ASKING in cluster mode, so the target serves it in an IMPORTING slot) in one pipeline, and, unless
COPY, deletes the keys the target accepted; the deletion propagates as DEL. As in Redis, the call is
synchronous on the loop thread, bounded by ``timeout`` milliseconds per socket operation.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import hiredis

from actors.commands import command
from actors.commands._util import parse_int
from actors.commands.keys import cmd_restore
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client

KEYS_NEED_EMPTY_KEY = "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"
IOERR_CONNECT = "IOERR error or timeout connecting to the client"
IOERR_WRITE = "IOERR error or timeout writing to target instance"
IOERR_READ = "IOERR error or timeout reading to target instance"


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
    pipeline = []
    if auth:
        pipeline.append(_request(*auth))
    pipeline.append(_request(b"SELECT", b"%d" % db_index))
    for key, payload, ttl_ms in found:
        args = [restore, key, b"%d" % ttl_ms, payload]
        if replace:
            args.append(b"REPLACE")
        pipeline.append(_request(*args))
    host = argv[1].decode("utf-8", "replace")
    try:
        sock = socket.create_connection((host, port), timeout=timeout_ms / 1000)
    except OSError:
        raise CommandError(IOERR_CONNECT) from None
    with sock:
        sock.settimeout(timeout_ms / 1000)
        try:
            sock.sendall(b"".join(pipeline))
        except OSError:
            raise CommandError(IOERR_WRITE) from None
        replies = _read_replies(sock, len(pipeline))
    first_error: str | None = None
    for reply in replies[: len(pipeline) - len(found)]:  # AUTH, SELECT
        if isinstance(reply, hiredis.ReplyError):
            raise CommandError(f"ERR Target instance replied with error: {reply}")
    moved: list[bytes] = []
    for (key, _, _), reply in zip(found, replies[len(pipeline) - len(found) :], strict=True):
        if isinstance(reply, hiredis.ReplyError):
            if first_error is None:
                first_error = f"ERR Target instance replied with error: {reply}"
            continue
        if not copy:
            keyspace.delete(db, key)
            moved.append(key)
    if moved:
        keyspace.dirty += 1
        client.propagate_as = [[b"DEL", *moved]]
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
