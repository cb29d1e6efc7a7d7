"""MULTI / EXEC / DISCARD / WATCH / UNWATCH against a real node, with the exact replies Redis 7.0 gives.

Transactions are per connection, so most tests drive one dedicated connection with raw commands (no redis-py
callbacks, no pool switching connections under us); a second client plays the other party in WATCH races.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest
import redis

from tests.harness import NodeProcess, wait_for

NOT_IN_MULTI = "Command not allowed inside a transaction"
EXECABORT = "EXECABORT Transaction discarded because of previous errors."


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    n = NodeProcess(Path(tmp_path_factory.mktemp("transactions"))).start()
    yield n
    n.stop()


class Conn:
    """One RESP2 connection, commands sent raw and replies parsed by hiredis exactly as they arrive."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = hiredis.Reader()

    def send(self, *args: Any) -> None:
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))

    def read(self) -> Any:
        while True:
            reply = self.reader.gets()
            if reply is not False:
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the node")
            self.reader.feed(data)

    def __call__(self, *args: Any) -> Any:
        self.send(*args)
        return self.read()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def conn(node: NodeProcess) -> Iterator[Conn]:
    c = Conn(node.port)
    yield c
    c.close()


@pytest.fixture
def other(node: NodeProcess) -> Iterator[redis.Redis]:
    r = node.client(protocol=2)
    r.flushall()
    yield r
    r.close()


def err(reply: Any) -> str:
    assert isinstance(reply, hiredis.ReplyError), f"expected an error reply, got {reply!r}"
    return str(reply)


# -- MULTI / EXEC / DISCARD ------------------------------------------------------------------------------


def test_queued_replies_and_exec_results(conn: Conn, other: redis.Redis) -> None:
    assert conn("MULTI") == b"OK"
    assert conn("SET", "k", "1") == b"QUEUED"
    assert conn("INCR", "k") == b"QUEUED"
    assert conn("GET", "k") == b"QUEUED"
    assert conn("GET", "missing") == b"QUEUED"
    assert other.get("k") is None  # nothing runs before EXEC
    assert conn("EXEC") == [b"OK", 2, b"2", None]
    assert other.get("k") == b"2"
    assert err(conn("EXEC")) == "ERR EXEC without MULTI"


def test_empty_transaction(conn: Conn) -> None:
    assert conn("MULTI") == b"OK"
    assert conn("EXEC") == []


def test_exact_bytes_of_a_transaction(node: NodeProcess, other: redis.Redis) -> None:
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(b"MULTI\r\nSET a 1\r\nGET nokey\r\nEXEC\r\n")
        expected = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n$-1\r\n"
        data = b""
        while len(data) < len(expected):
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
        assert data == expected


def test_errors_outside_and_inside_multi(conn: Conn) -> None:
    assert err(conn("EXEC")) == "ERR EXEC without MULTI"
    assert err(conn("DISCARD")) == "ERR DISCARD without MULTI"
    assert conn("MULTI") == b"OK"
    # Neither error dooms the transaction.
    assert err(conn("MULTI")) == "ERR MULTI calls can not be nested"
    assert err(conn("WATCH", "k")) == "ERR WATCH inside MULTI is not allowed"
    assert conn("SET", "k", "v") == b"QUEUED"
    assert conn("EXEC") == [b"OK"]


def test_execabort_after_queuing_errors(conn: Conn, other: redis.Redis) -> None:
    assert conn("MULTI") == b"OK"
    assert conn("SET", "a", "1") == b"QUEUED"
    assert (
        err(conn("NOSUCHCOMMAND", "x"))
        == "ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' "
    )
    assert conn("SET", "b", "1") == b"QUEUED"
    assert err(conn("EXEC")) == EXECABORT
    assert other.exists("a", "b") == 0
    # Wrong arity dooms it too, and the connection is out of MULTI after the abort.
    assert conn("MULTI") == b"OK"
    assert err(conn("GET")) == "ERR wrong number of arguments for 'get' command"
    assert err(conn("EXEC")) == EXECABORT
    assert conn("SET", "c", "1") == b"OK"


@pytest.mark.parametrize("argv", [("SHUTDOWN",), ("SHUTDOWN", "NOSAVE"), ("SAVE",)])
def test_commands_not_allowed_inside_a_transaction(
    conn: Conn, other: redis.Redis, argv: tuple[str, ...]
) -> None:
    assert conn("MULTI") == b"OK"
    assert conn("SET", "a", "1") == b"QUEUED"
    assert err(conn(*argv)) == f"ERR {NOT_IN_MULTI}"
    assert err(conn("EXEC")) == EXECABORT
    assert other.ping() is True  # the node is still up
    assert other.exists("a") == 0


def test_connection_commands_queue_like_redis(conn: Conn) -> None:
    # AUTH, HELLO, SELECT, UNWATCH, PING, SUBSCRIBE queue inside MULTI (only MULTI, EXEC, DISCARD, WATCH,
    # QUIT and RESET run at once).
    assert conn("MULTI") == b"OK"
    for argv in (("UNWATCH",), ("SELECT", "1"), ("PING",), ("ECHO", "x"), ("HELLO", "2")):
        assert conn(*argv) == b"QUEUED", argv
    reply = conn("EXEC")
    assert reply[:4] == [b"OK", b"OK", b"PONG", b"x"]
    assert reply[4][:2] == [b"server", b"redis"]


def test_runtime_errors_are_per_command(conn: Conn, other: redis.Redis) -> None:
    other.set("str", "abc")
    assert conn("MULTI") == b"OK"
    assert conn("INCR", "str") == b"QUEUED"
    assert conn("LPUSH", "str", "x") == b"QUEUED"
    assert conn("SET", "after", "ok") == b"QUEUED"
    assert conn("APPEND", "str", "d") == b"QUEUED"
    reply = conn("EXEC")
    assert len(reply) == 4
    assert err(reply[0]) == "ERR value is not an integer or out of range"
    assert err(reply[1]) == "WRONGTYPE Operation against a key holding the wrong kind of value"
    assert reply[2:] == [b"OK", 4]
    assert other.get("after") == b"ok"
    assert other.get("str") == b"abcd"


def test_discard(conn: Conn, other: redis.Redis) -> None:
    assert conn("MULTI") == b"OK"
    assert conn("SET", "a", "1") == b"QUEUED"
    assert conn("DISCARD") == b"OK"
    assert other.exists("a") == 0
    assert err(conn("EXEC")) == "ERR EXEC without MULTI"
    # DISCARD also unwatches: a later change of the key no longer matters.
    assert conn("WATCH", "w") == b"OK"
    assert conn("MULTI") == b"OK"
    assert conn("DISCARD") == b"OK"
    other.set("w", "changed")
    assert conn("MULTI") == b"OK"
    assert conn("GET", "w") == b"QUEUED"
    assert conn("EXEC") == [b"changed"]


def test_quit_inside_multi_closes_the_connection(conn: Conn, other: redis.Redis) -> None:
    assert conn("MULTI") == b"OK"
    assert conn("SET", "a", "1") == b"QUEUED"
    assert conn("QUIT") == b"OK"
    with pytest.raises((ConnectionError, OSError)):
        conn("PING")
    assert other.exists("a") == 0


def test_reset_inside_multi(conn: Conn, other: redis.Redis) -> None:
    assert conn("WATCH", "k") == b"OK"
    assert conn("MULTI") == b"OK"
    assert conn("SET", "a", "1") == b"QUEUED"
    assert conn("RESET") == b"RESET"
    assert err(conn("EXEC")) == "ERR EXEC without MULTI"
    other.set("k", "x")  # no longer watched
    assert conn("MULTI") == b"OK"
    assert conn("EXEC") == []


def test_blocking_commands_do_not_block_inside_exec(conn: Conn) -> None:
    assert conn("MULTI") == b"OK"
    assert conn("BLPOP", "nolist", "0") == b"QUEUED"
    assert conn("BRPOPLPUSH", "nolist", "dst", "0") == b"QUEUED"
    assert conn("EXEC") == [None, None]


def test_client_list_shows_the_transaction(conn: Conn, other: redis.Redis) -> None:
    conn("CLIENT", "SETNAME", "txclient")
    assert conn("MULTI") == b"OK"
    assert conn("GET", "a") == b"QUEUED"
    assert conn("GET", "b") == b"QUEUED"
    entry = next(entry for entry in other.client_list() if entry["name"] == "txclient")
    assert (entry["flags"], entry["multi"]) == ("x", "2")
    assert conn("EXEC") == [None, None]


# -- WATCH ------------------------------------------------------------------------------------------------


def test_watch_race_another_client_modifies(conn: Conn, other: redis.Redis) -> None:
    other.set("balance", "10")
    assert conn("WATCH", "balance") == b"OK"
    assert conn("GET", "balance") == b"10"
    other.incrby("balance", 5)  # the race
    assert conn("MULTI") == b"OK"
    assert conn("SET", "balance", "11") == b"QUEUED"
    assert conn("EXEC") is None  # RESP2 *-1
    assert other.get("balance") == b"15"
    # The failed EXEC unwatched everything: the retry goes through.
    assert conn("WATCH", "balance") == b"OK"
    assert conn("MULTI") == b"OK"
    assert conn("SET", "balance", "16") == b"QUEUED"
    assert conn("EXEC") == [b"OK"]


def test_watch_null_array_bytes(node: NodeProcess, other: redis.Redis) -> None:
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(b"WATCH k\r\n")
        assert sock.recv(100) == b"+OK\r\n"
        other.set("k", "v")
        sock.sendall(b"MULTI\r\nPING\r\nEXEC\r\n")
        expected = b"+OK\r\n+QUEUED\r\n*-1\r\n"
        data = b""
        while len(data) < len(expected):
            data += sock.recv(100)
        assert data == expected


def test_watch_untouched_keys_and_several_keys(conn: Conn, other: redis.Redis) -> None:
    other.mset({"a": "1", "b": "2"})
    assert conn("WATCH", "a", "b", "nokey") == b"OK"
    other.set("unrelated", "x")
    other.get("a")  # reads do not count
    other.delete("neverexisted")  # deleting nothing is no change
    other.expire("nokey", 10)  # nor is expiring a missing key
    assert conn("MULTI") == b"OK"
    assert conn("PING") == b"QUEUED"
    assert conn("EXEC") == [b"PONG"]
    # A change to any one of several watched keys fails the transaction; so does creating a watched key.
    for key in ("b", "nokey2"):
        assert conn("WATCH", "a", key) == b"OK"
        other.set(key, "new")
        assert conn("MULTI") == b"OK"
        assert conn("PING") == b"QUEUED"
        assert conn("EXEC") is None


def test_watch_own_change_before_multi_counts(conn: Conn) -> None:
    assert conn("WATCH", "k") == b"OK"
    assert conn("SET", "k", "mine") == b"OK"
    assert conn("MULTI") == b"OK"
    assert conn("GET", "k") == b"QUEUED"
    assert conn("EXEC") is None


def test_change_inside_the_transaction_does_not_abort_it(conn: Conn) -> None:
    assert conn("WATCH", "k") == b"OK"
    assert conn("MULTI") == b"OK"
    assert conn("SET", "k", "1") == b"QUEUED"
    assert conn("INCR", "k") == b"QUEUED"
    assert conn("EXEC") == [b"OK", 2]


def test_watch_other_database(conn: Conn, other: redis.Redis) -> None:
    assert conn("SELECT", "2") == b"OK"
    assert conn("WATCH", "k") == b"OK"
    other.set("k", "db0")  # same name, another database
    assert conn("MULTI") == b"OK"
    assert conn("PING") == b"QUEUED"
    assert conn("EXEC") == [b"PONG"]
    assert conn("WATCH", "k") == b"OK"
    other.execute_command("SELECT", "2")
    other.set("k", "db2")
    assert conn("MULTI") == b"OK"
    assert conn("PING") == b"QUEUED"
    assert conn("EXEC") is None


def test_unwatch(conn: Conn, other: redis.Redis) -> None:
    assert conn("WATCH", "k") == b"OK"
    other.set("k", "1")
    assert conn("UNWATCH") == b"OK"  # also forgets that k changed
    assert conn("MULTI") == b"OK"
    assert conn("PING") == b"QUEUED"
    assert conn("EXEC") == [b"PONG"]
    assert conn("UNWATCH") == b"OK"  # with nothing watched
    assert err(conn("WATCH")) == "ERR wrong number of arguments for 'watch' command"
    assert err(conn("UNWATCH", "x")) == "ERR wrong number of arguments for 'unwatch' command"


@pytest.mark.parametrize("flush", [("FLUSHALL",), ("FLUSHDB",), ("FLUSHALL", "ASYNC"), ("SWAPDB", "0", "1")])
def test_watch_and_flush(conn: Conn, other: redis.Redis, flush: tuple[str, ...]) -> None:
    other.set("k", "v")
    assert conn("WATCH", "k") == b"OK"
    assert other.execute_command(*flush) in (True, b"OK")
    assert conn("MULTI") == b"OK"
    assert conn("PING") == b"QUEUED"
    assert conn("EXEC") is None


def test_flush_of_a_missing_watched_key_is_no_change(conn: Conn, other: redis.Redis) -> None:
    assert conn("WATCH", "nokey") == b"OK"
    other.flushall()
    assert conn("MULTI") == b"OK"
    assert conn("PING") == b"QUEUED"
    assert conn("EXEC") == [b"PONG"]


def _server_ms(r: redis.Redis) -> int:
    seconds, micros = r.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_watched_key_expiring_unnoticed_fails_exec(conn: Conn, other: redis.Redis) -> None:
    # Active expiry off and nobody reads the key: it is still in the database at EXEC, but logically gone.
    assert other.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0") in (True, b"OK")
    try:
        other.set("k", "v")
        other.pexpire("k", 150)
        deadline_ms = other.execute_command("PEXPIRETIME", "k")
        assert conn("WATCH", "k") == b"OK"
        wait_for(lambda: _server_ms(other) > deadline_ms, 5, what="the key's expiry time to pass")
        assert other.dbsize() == 1  # not deleted yet
        assert conn("MULTI") == b"OK"
        assert conn("PING") == b"QUEUED"
        assert conn("EXEC") is None
    finally:
        other.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_watched_key_expiring_fails_exec(conn: Conn, other: redis.Redis) -> None:
    other.set("k", "v")
    assert other.pexpire("k", 100)
    assert conn("WATCH", "k") == b"OK"
    wait_for(lambda: other.exists("k") == 0, 5, what="the key to expire")
    assert conn("MULTI") == b"OK"
    assert conn("SET", "k", "again") == b"QUEUED"
    assert conn("EXEC") is None
    assert other.exists("k") == 0


def test_key_already_expired_at_watch_is_a_missing_key(conn: Conn, other: redis.Redis) -> None:
    assert other.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0") in (True, b"OK")
    try:
        other.set("k", "v")
        other.pexpire("k", 1)
        deadline_ms = other.execute_command("PEXPIRETIME", "k")
        wait_for(lambda: _server_ms(other) > deadline_ms, 5, what="the key's expiry time to pass")
        assert conn("WATCH", "k") == b"OK"
        other.get("k")  # its deletion is no change: it was already gone when watched
        assert conn("MULTI") == b"OK"
        assert conn("PING") == b"QUEUED"
        assert conn("EXEC") == [b"PONG"]
        # ...but creating it again is.
        other.set("k2", "v")
        other.pexpire("k2", 1)
        deadline_ms = other.execute_command("PEXPIRETIME", "k2")
        wait_for(lambda: _server_ms(other) > deadline_ms, 5, what="the key's expiry time to pass")
        assert conn("WATCH", "k2") == b"OK"
        other.set("k2", "new")
        assert conn("MULTI") == b"OK"
        assert conn("PING") == b"QUEUED"
        assert conn("EXEC") is None
    finally:
        other.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_persist_of_a_watched_key_is_a_change(conn: Conn, other: redis.Redis) -> None:
    other.set("k", "v", ex=100)
    assert conn("WATCH", "k") == b"OK"
    assert other.persist("k") is True
    assert conn("MULTI") == b"OK"
    assert conn("PING") == b"QUEUED"
    assert conn("EXEC") is None


# -- redis-py's transaction API, RESP2 and RESP3 -----------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_optimistic_locking(node: NodeProcess, other: redis.Redis, protocol: int) -> None:
    r = node.client(protocol=protocol)
    try:
        other.set("counter", "1")
        with r.pipeline() as pipe:
            pipe.watch("counter")
            value = int(pipe.get("counter") or 0)
            pipe.multi()
            pipe.set("counter", value + 1)
            pipe.get("counter")
            assert pipe.execute() == [True, b"2"]
        with r.pipeline() as pipe:
            pipe.watch("counter")
            other.set("counter", "100")
            pipe.multi()
            pipe.set("counter", "3")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        assert other.get("counter") == b"100"
        with r.pipeline() as pipe:
            pipe.set("x", "1").incr("x").lpush("x", "a")
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                pipe.execute()
        assert other.get("x") == b"2"
    finally:
        r.close()


def test_resp3_exec_reply(node: NodeProcess) -> None:
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(b"HELLO 3\r\n")
        reader = hiredis.Reader()
        while reader.gets() is False:
            reader.feed(sock.recv(4096))
        sock.sendall(b"WATCH wk\r\nSET wk 1\r\nMULTI\r\nPING\r\nEXEC\r\nMULTI\r\nGET nokey\r\nEXEC\r\n")
        expected = b"+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n_\r\n+OK\r\n+QUEUED\r\n*1\r\n_\r\n"
        data = b""
        while len(data) < len(expected):
            data += sock.recv(4096)
        assert data == expected
