"""ACL details from Redis's tests/unit/acl.tcl and auth.tcl, compared with redis-server 7.0: subscribers whose
channel permission is taken away are closed (SSUBSCRIBE's too, and when allchannels is revoked); ACL CAT /
GENPASS / LOG take one optional argument; lowering acllog-max-len keeps the entries until the next one; a
client that has not authenticated is closed once it leaves more than 1 KiB of replies unread."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from tests.harness import NodeProcess, RedisServer, wait_for


def _reply(r: redis.Redis, *argv: str) -> Any:
    try:
        return r.execute_command(*argv)
    except redis.ResponseError as exc:
        return f"error: {exc}"


def _subscriber_survives(port: int, subscribe: str, channel: str, before: str) -> bool:
    admin = redis.Redis(port=port)
    admin.execute_command("ACL", "SETUSER", "psuser", "reset", "on", "nopass", "+@all", before)
    sub = redis.Redis(port=port, username="psuser", password="x", client_name="deathrow")
    pubsub = sub.pubsub()
    getattr(pubsub, subscribe)(channel)
    pubsub.get_message(timeout=5)
    admin.execute_command("ACL", "SETUSER", "psuser", "resetchannels")
    alive = "deathrow" in admin.execute_command("CLIENT", "LIST").decode()
    pubsub.close()
    sub.close()
    admin.close()
    return alive


def _observe(port: int) -> list[Any]:
    r = redis.Redis(port=port)
    seen: list[Any] = [
        _subscriber_survives(port, "ssubscribe", "orders", "&orders"),
        _subscriber_survives(port, "psubscribe", "foo", "allchannels"),
        _reply(r, "ACL", "CAT", "NON_EXISTS", "NON_EXISTS2"),
        _reply(r, "ACL", "GENPASS", "64", "x"),
        _reply(r, "ACL", "LOG", "1", "x"),
    ]
    r.execute_command("ACL", "LOG", "RESET")
    r.execute_command("ACL", "SETUSER", "limited", "on", "nopass", "-@all")
    # A raw connection: redis-py's handshake (CLIENT SETINFO ...) would add entries Redis 7.0 does not know.
    limited = socket.create_connection(("127.0.0.1", port), timeout=10)

    def run(*argv: bytes) -> None:
        limited.sendall(b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv))
        data = b""
        while not data.endswith(b"\r\n"):
            data += limited.recv(4096)

    run(b"AUTH", b"limited", b"x")
    for _ in range(3):
        run(b"GET", b"k")  # one grouped entry: same reason, object and user
        run(b"SET", b"k", b"v")
    r.config_set("acllog-max-len", "0")
    seen.append(len(r.execute_command("ACL", "LOG")))  # kept: the log is trimmed when an entry is added
    run(b"INCR", b"k")
    seen.append(len(r.execute_command("ACL", "LOG")))
    r.config_set("acllog-max-len", "128")
    limited.close()
    r.close()
    return seen


def _unauthenticated_closed(port: int) -> bool:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n5\r\n" * 1000
    try:
        for _ in range(2000):  # ~60 MB of NOAUTH replies if nobody stopped it
            sock.sendall(request)
    except OSError:
        return True
    finally:
        sock.close()
    return False


def test_acl_revocations_match_redis(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path)
    ours = _observe(node.port)
    assert ours[:2] == [False, False]
    assert ours == _observe(reference.port)
    for port in (node.port, reference.port):
        admin = redis.Redis(port=port)
        admin.config_set("requirepass", "secret")
        try:
            assert _unauthenticated_closed(port)
        finally:
            wait_for(lambda a=admin: a.config_set("requirepass", "") is True, 10.0, what="requirepass off")
            admin.close()
