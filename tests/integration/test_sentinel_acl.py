"""ACL users in a sentinel, on our sentinels and on redis-sentinel with the same files and commands: ``user``
lines in sentinel.conf, AUTH / HELLO AUTH, a disabled user, ACL SETUSER / GETUSER / DELUSER / WHOAMI / USERS /
LIST / CAT, NOPERM on redis-sentinel's command table, CLIENT KILL USER, the default user turned off, the config
rewrite keeping the users, and Redis's sentinel unit 09 (sentinels that authenticate to each other with
``sentinel-user`` / ``sentinel-pass``)."""

from __future__ import annotations

import hashlib
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, wait_for
from tests.sentinel_harness import (
    MASTER_NAME,
    SentinelProcess,
    start_sentinels,
    stop_sentinels,
    wait_discovered,
)

REAL = pytest.param(
    True, marks=pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server")
)
KINDS = pytest.mark.parametrize("real", [False, REAL], ids=["redactor-sentinel", "redis-sentinel"])

USERS = "user alice on >pw +@all -ping\nuser bob off >pw2 +@all\n"
WRONGPASS = "invalid username-password pair or user is disabled."  # (redis-py drops the error code)


def digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


@pytest.fixture
def sentinel_factory(
    node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> Iterator[Callable[[bool], SentinelProcess]]:
    started: list[SentinelProcess] = []
    master = node_factory("m")

    def make(real: bool) -> SentinelProcess:
        s = SentinelProcess(tmp_path, f"s{len(started)}", master.port, real=real, prelude=USERS)
        started.append(s)
        return s.start()

    yield make
    for raw in _raws:
        raw.sock.close()
    _raws.clear()
    stop_sentinels(started)


_raws: list[Raw] = []


class Raw:
    """One connection without redis-py's reconnecting retries: a closed connection shows as b"" at once, an
    error reply keeps its code. Closed by the fixture."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        _raws.append(self)

    def call(self, *args: str) -> bytes:
        self.sock.sendall(
            b"".join([f"*{len(args)}\r\n".encode(), *(f"${len(a)}\r\n{a}\r\n".encode() for a in args)])
        )
        return self.sock.recv(65536)

    def closed(self) -> bool:
        try:
            self.sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return self.sock.recv(65536) == b""
        except OSError:
            return True


def error_of(fn: Callable[[], object]) -> str:
    with pytest.raises(redis.RedisError) as info:
        fn()
    return str(info.value)


@KINDS
def test_user_lines_auth_and_the_acl_replies(
    real: bool, sentinel_factory: Callable[[bool], SentinelProcess]
) -> None:
    s = sentinel_factory(real)
    admin = s.client(decode_responses=True)
    assert admin.execute_command("ACL", "LIST") == [
        f"user alice on #{digest('pw')} resetchannels +@all -ping",
        f"user bob off #{digest('pw2')} resetchannels +@all",
        "user default on nopass ~* &* +@all",
    ]
    assert admin.execute_command("ACL", "USERS") == ["alice", "bob", "default"]
    assert admin.execute_command("ACL", "WHOAMI") == "default"
    # A bare password is the default user's, which has none.
    alice = Raw(s.port)
    assert alice.call("AUTH", "x") == (
        b"-ERR AUTH <password> called without any password configured for the default user. "
        b"Are you sure your configuration is correct?\r\n"
    )
    assert alice.call("AUTH", "alice", "bad") == f"-WRONGPASS {WRONGPASS}\r\n".encode()
    assert alice.call("AUTH", "bob", "pw2") == f"-WRONGPASS {WRONGPASS}\r\n".encode()  # disabled
    assert alice.call("AUTH", "alice", "x", "y") == b"-ERR syntax error\r\n"
    assert alice.call("AUTH", "alice", "pw") == b"+OK\r\n"
    assert alice.call("ACL", "WHOAMI") == b"$5\r\nalice\r\n"
    assert alice.call("PING") == b"-NOPERM this user has no permissions to run the 'ping' command\r\n"
    assert alice.call("SENTINEL", "MYID").startswith(b"$40\r\n")

    # A user of one sentinel subcommand; its GETUSER, DRYRUN and NOPERM replies.
    assert admin.execute_command("ACL", "SETUSER", "carol", "on", ">c", "-@all", "+sentinel|myid") == "OK"
    user = admin.execute_command("ACL", "GETUSER", "carol")
    reply = user if isinstance(user, dict) else dict(zip(user[::2], user[1::2], strict=True))
    assert reply["flags"] == ["on"]
    assert reply["passwords"] == [digest("c")]
    assert reply["commands"] == "-@all +sentinel|myid"
    assert admin.execute_command("ACL", "DRYRUN", "carol", "sentinel", "myid") == "OK"
    assert admin.execute_command("ACL", "DRYRUN", "carol", "sentinel", "masters") == (
        "This user has no permissions to run the 'sentinel|masters' command"
    )
    carol = s.client(decode_responses=True, protocol=3)
    assert carol.execute_command("HELLO", "3", "AUTH", "carol", "c")["mode"] == "sentinel"
    assert carol.execute_command("SENTINEL", "MYID") == admin.execute_command("SENTINEL", "MYID")
    assert error_of(lambda: carol.execute_command("SENTINEL", "MASTERS")) == (
        "this user has no permissions to run the 'sentinel|masters' command"  # (redis-py drops NOPERM)
    )
    assert error_of(lambda: carol.execute_command("CLIENT", "LIST")) == (
        "this user has no permissions to run the 'client|list' command"
    )
    log = admin.execute_command("ACL", "LOG", "1")
    entry = log[0] if isinstance(log[0], dict) else dict(zip(log[0][::2], log[0][1::2], strict=True))
    assert (entry["object"], entry["reason"], entry["username"]) == ("client|list", "command", "carol")
    # ACL CAT: the sentinel's own command table.
    assert "sentinel|myid" in admin.execute_command("ACL", "CAT", "admin")
    assert sorted(admin.execute_command("ACL", "CAT", "fast")) == ["auth", "hello", "ping", "publish", "role"]
    assert error_of(lambda: admin.execute_command("ACL", "SETUSER", "x", "+get")) == (
        "Error in ACL SETUSER modifier '+get': Unknown command or category name in ACL"
    )

    raw = Raw(s.port)
    assert raw.call("AUTH", "carol", "c") == b"+OK\r\n"
    assert admin.execute_command("ACL", "DELUSER", "carol", "nobody") == 1
    assert admin.execute_command("ACL", "GETUSER", "carol") is None
    assert raw.closed()  # a deleted user's connections are closed


@KINDS
def test_client_kill_user_and_the_default_user_off(
    real: bool, sentinel_factory: Callable[[bool], SentinelProcess]
) -> None:
    s = sentinel_factory(real)
    admin = s.client(decode_responses=True)
    alices = [Raw(s.port) for _ in range(2)]
    for r in alices:
        assert r.call("AUTH", "alice", "pw") == b"+OK\r\n"
    assert (
        error_of(lambda: admin.execute_command("CLIENT", "KILL", "USER", "nobody")) == "No such user 'nobody'"
    )
    assert admin.execute_command("CLIENT", "KILL", "USER", "alice") == 2
    assert all(r.closed() for r in alices)

    assert admin.execute_command("ACL", "SETUSER", "default", "off") == "OK"
    assert admin.execute_command("ACL", "WHOAMI") == "default"  # (logged in before)
    fresh = Raw(s.port)
    assert fresh.call("SENTINEL", "MYID") == b"-NOAUTH Authentication required.\r\n"
    assert fresh.call("AUTH", "default", "") == f"-WRONGPASS {WRONGPASS}\r\n".encode()
    assert fresh.call("AUTH", "alice", "pw") == b"+OK\r\n"
    assert fresh.call("SENTINEL", "MYID").startswith(b"$40\r\n")
    # SKIPME no: the caller goes too, after its reply.
    caller = Raw(s.port)
    assert caller.call("AUTH", "alice", "pw") == b"+OK\r\n"
    assert caller.call("CLIENT", "KILL", "USER", "alice", "SKIPME", "no") == b":2\r\n"
    assert caller.closed()


@KINDS
def test_the_config_rewrite_keeps_the_users(
    real: bool, sentinel_factory: Callable[[bool], SentinelProcess]
) -> None:
    s = sentinel_factory(real)
    admin = s.client(decode_responses=True)
    assert admin.execute_command("ACL", "SETUSER", "dave", "on", ">d", "+@all", "-@dangerous") == "OK"
    assert admin.execute_command("ACL", "DELUSER", "bob") == 1
    assert admin.execute_command("SENTINEL", "SET", MASTER_NAME, "down-after-milliseconds", "1500") == "OK"
    users = [line for line in s.conf.read_text().splitlines() if line.startswith("user ")]
    assert sorted(users) == [
        f"user alice on #{digest('pw')} resetchannels +@all -ping",
        f"user dave on #{digest('d')} resetchannels +@all -@dangerous",
        "user default on nopass ~* &* +@all",
    ]
    s.stop()
    s.start()
    assert s.client(decode_responses=True).execute_command("ACL", "USERS") == ["alice", "dave", "default"]


@pytest.mark.slow
@KINDS
def test_unit_09_sentinels_authenticate_with_sentinel_user_and_pass(
    real: bool, node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> None:
    """Redis's tests/sentinel/tests/09-acl-support.tcl: with the default user off everywhere, a sentinel's
    links to the others fail (they go SDOWN: NOQUORUM) until sentinel-user / sentinel-pass are set."""
    master = node_factory("m")
    sentinels = start_sentinels(tmp_path, master.port, count=3, real=real)
    try:
        wait_discovered(sentinels, replicas=0)
        clients = []
        for s in sentinels:
            r = s.client(decode_responses=True, single_connection_client=True)
            assert r.execute_command("ACL", "SETUSER", "testuser", ">secret", "+@all", "on") == "OK"
            assert r.execute_command("ACL", "SETUSER", "default", "off") == "OK"
            r.execute_command("CLIENT", "KILL", "USER", "default", "SKIPME", "yes")
            assert r.execute_command("AUTH", "testuser", "secret")
            clients.append(r)
        assert clients[1].execute_command("ACL", "WHOAMI") == "testuser"

        def ckquorum_error() -> str:
            try:
                clients[1].execute_command("SENTINEL", "CKQUORUM", MASTER_NAME)
            except redis.ResponseError as exc:
                return str(exc)
            return ""

        assert "NOQUORUM" in wait_for(ckquorum_error, 20, interval_s=0.1, what="CKQUORUM to fail")
        for r in clients:
            assert r.execute_command("SENTINEL", "CONFIG", "SET", "sentinel-user", "testuser") == "OK"
            assert r.execute_command("SENTINEL", "CONFIG", "SET", "sentinel-pass", "secret") == "OK"
        wait_for(lambda: not ckquorum_error(), 20, interval_s=0.1, what="CKQUORUM to pass")
        assert "OK" in clients[1].execute_command("SENTINEL", "CKQUORUM", MASTER_NAME)
    finally:
        stop_sentinels(sentinels)
