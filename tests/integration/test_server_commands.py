"""Connection and server commands against a real node: PING, HELLO, CLIENT, COMMAND, INFO, CONFIG, TIME, DEBUG,
SHUTDOWN. Exact replies and errors as Redis 7.0 gives them."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, wait_for
from tests.integration.shared import error_of, module_node_fixture, raw, resp2_client_fixture

DEBUG_REFUSED = (
    'DEBUG command not allowed. If the enable-debug-command option is set to "local", you can run it from a '
    "local connection, otherwise you need to set this option in the configuration file, and then restart the "
    "server."
)


node = module_node_fixture()
r = resp2_client_fixture()


def exchange(port: int, data: bytes, expect_bytes: int = 1 << 30, until: bytes | None = None) -> bytes:
    """Send raw bytes and read until ``expect_bytes`` arrived, the reply ends with ``until``, or the peer closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        out = b""
        while len(out) < expect_bytes and not (until and out.endswith(until)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


# -- connection ------------------------------------------------------------------------------------------


def test_ping_and_echo(r: redis.Redis) -> None:
    assert raw(r, "PING") == b"PONG"
    assert raw(r, "PING", "hello") == b"hello"
    assert error_of(r.execute_command, "PING", "a", "b") == "wrong number of arguments for 'ping' command"
    assert r.echo("x\r\ny") == b"x\r\ny"


def test_unknown_command_error_lists_its_arguments(r: redis.Redis) -> None:
    assert (
        error_of(r.execute_command, "NOSUCH", "a", "b")
        == "unknown command 'NOSUCH', with args beginning with: 'a' 'b' "
    )
    assert error_of(r.execute_command, "NOSUCH") == "unknown command 'NOSUCH', with args beginning with: "


def test_hello_3_answers_with_a_resp3_map(node: NodeProcess, r: redis.Redis) -> None:
    client_id = r.client_id()
    reply = exchange(node.port, b"HELLO 3\r\n", 100)
    assert reply.startswith(
        b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:"
    )
    assert reply.endswith(
        b"\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    )
    assert int(reply.split(b"id\r\n:")[1].split(b"\r\n")[0]) > client_id


def test_hello_2_answers_with_a_flat_array_and_hello_3_switches_the_protocol(node: NodeProcess) -> None:
    r2 = node.client(protocol=2)
    hello = raw(r2, "HELLO", "2")
    assert isinstance(hello, list) and hello[:6] == [b"server", b"redis", b"version", b"7.0.15", b"proto", 2]
    r3 = node.client(protocol=3)
    assert raw(r3, "HELLO", "3")[b"proto"] == 3  # type: ignore[index]
    assert raw(r3, "CONFIG", "GET", "maxmemory") == {b"maxmemory": b"0"}  # a map in RESP3
    assert raw(r2, "CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]  # a flat array in RESP2
    r2.close()
    r3.close()


def test_hello_errors(r: redis.Redis) -> None:
    assert error_of(r.execute_command, "HELLO", "4") == "NOPROTO unsupported protocol version"
    assert error_of(r.execute_command, "HELLO", "abc") == "Protocol version is not an integer or out of range"
    assert error_of(r.execute_command, "HELLO", "2", "FOO") == "Syntax error in HELLO option 'FOO'"
    assert error_of(r.execute_command, "HELLO", "2", "SETNAME", "a b") == (
        "Client names cannot contain spaces, newlines or special characters."
    )


def test_hello_setname_names_the_connection(node: NodeProcess) -> None:
    c = node.client(protocol=2)
    raw(c, "HELLO", "2", "SETNAME", "worker-1")
    assert raw(c, "CLIENT", "GETNAME") == b"worker-1"
    c.close()


def test_quit_answers_ok_and_closes_the_connection(node: NodeProcess) -> None:
    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as sock:
        sock.sendall(b"QUIT\r\nPING\r\n")
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    assert out == b"+OK\r\n"  # the PING behind it is never run


def test_reset_returns_the_connection_to_its_defaults(node: NodeProcess) -> None:
    reply = exchange(
        node.port,
        b"HELLO 3\r\nSELECT 2\r\nCLIENT SETNAME before\r\nRESET\r\nCLIENT INFO\r\n",
        until=b"\n\r\n",
    )
    after = reply.split(b"+RESET\r\n", 1)[1]
    assert after.startswith(b"$") and b" db=0 " in after and b" resp=2 " in after and b" name= " in after


# -- CLIENT ----------------------------------------------------------------------------------------------


def test_client_setname_getname_id(r: redis.Redis) -> None:
    assert raw(r, "CLIENT", "GETNAME") is None
    assert r.client_setname("conn-a") is True
    assert raw(r, "CLIENT", "GETNAME") == b"conn-a"
    assert r.client_setname("") is True
    assert raw(r, "CLIENT", "GETNAME") is None
    assert isinstance(r.client_id(), int) and r.client_id() > 0
    assert (
        error_of(r.client_setname, "a b")
        == "Client names cannot contain spaces, newlines or special characters."
    )


def test_client_list_and_info_describe_connections(node: NodeProcess, r: redis.Redis) -> None:
    r.client_setname("lister")
    other = node.client(db=2, protocol=2)
    other.client_setname("other")
    other.ping()
    text = raw(r, "CLIENT", "LIST")
    assert isinstance(text, bytes) and text.endswith(b"\n")
    lines = {
        dict(f.split("=", 1) for f in line.split(" "))["name"]: line for line in text.decode().splitlines()
    }
    assert {"lister", "other"} <= set(lines)
    fields = dict(f.split("=", 1) for f in lines["other"].split(" "))
    assert fields["db"] == "2" and fields["id"] == str(other.client_id()) and fields["flags"] == "N"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", fields["addr"])
    assert fields["laddr"] == f"127.0.0.1:{node.port}"
    info = raw(r, "CLIENT", "INFO")
    assert (
        isinstance(info, bytes)
        and info.startswith(f"id={r.client_id()} ".encode())
        and b" name=lister " in info
    )
    only = raw(r, "CLIENT", "LIST", "ID", str(other.client_id()))
    assert isinstance(only, bytes) and only.count(b"\n") == 1 and b"name=other" in only
    assert b"name=lister" in raw(r, "CLIENT", "LIST", "TYPE", "normal")  # type: ignore[operator]
    assert error_of(r.execute_command, "CLIENT", "LIST", "TYPE", "foo") == "Unknown client type 'foo'"
    other.close()


def test_client_kill_by_addr_and_by_id(node: NodeProcess, r: redis.Redis) -> None:
    victim = node.client(protocol=2)
    victim.client_setname("victim")
    info = raw(victim, "CLIENT", "INFO")
    assert isinstance(info, bytes)
    addr = dict(f.split("=", 1) for f in info.decode().split(" "))["addr"]
    assert raw(r, "CLIENT", "KILL", addr) == b"OK"
    wait_for(lambda: b"name=victim" not in raw(r, "CLIENT", "LIST"), 5, what="the killed client to go")  # type: ignore[operator]
    assert error_of(r.execute_command, "CLIENT", "KILL", addr) == "No such client"
    second = node.client()
    second_id = second.client_id()
    assert raw(r, "CLIENT", "KILL", "ID", str(second_id)) == 1
    assert raw(r, "CLIENT", "KILL", "ID", str(second_id)) == 0
    assert raw(r, "CLIENT", "KILL", "ID", str(r.client_id())) == 0  # SKIPME yes by default
    assert error_of(r.execute_command, "CLIENT", "KILL", "FOO", "bar") == "syntax error"
    assert (
        error_of(r.execute_command, "CLIENT", "KILL") == "wrong number of arguments for 'client|kill' command"
    )
    victim.close()
    second.close()


def test_client_subcommand_errors(r: redis.Redis) -> None:
    assert error_of(r.execute_command, "CLIENT", "FOO") == "unknown subcommand 'FOO'. Try CLIENT HELP."
    assert (
        error_of(r.execute_command, "CLIENT", "GETNAME", "x")
        == "wrong number of arguments for 'client|getname' command"
    )
    assert (
        error_of(r.execute_command, "CLIENT", "INFO", "x")
        == "wrong number of arguments for 'client|info' command"
    )


# -- COMMAND ---------------------------------------------------------------------------------------------


def test_command_count_list_info_docs(r: redis.Redis) -> None:
    count = raw(r, "COMMAND", "COUNT")
    assert isinstance(count, int) and count >= 60
    everything = raw(r, "COMMAND")
    assert isinstance(everything, list) and len(everything) == count
    listed = raw(r, "COMMAND", "LIST")
    assert isinstance(listed, list) and {c[0] for c in everything} <= set(listed)
    assert raw(r, "COMMAND", "LIST", "FILTERBY", "PATTERN", "getr*") == [b"getrange"]
    info = raw(r, "COMMAND", "INFO", "get", "nosuch")
    assert isinstance(info, list) and info[1] is None
    name, arity, flags, first, last, step = info[0][:6]
    assert (name, arity, first, last, step) == (b"get", 2, 1, 1, 1)
    assert set(flags) == {b"readonly", b"fast"}
    assert raw(r, "COMMAND", "INFO", "set")[0][:2] == [b"set", -3]  # type: ignore[index]
    docs = raw(r, "COMMAND", "DOCS", "get")
    assert isinstance(docs, list) and docs[0] == b"get"
    doc = dict(zip(docs[1][::2], docs[1][1::2], strict=True))
    assert doc[b"summary"] == b"Get the value of a key" and doc[b"group"] == b"string"
    assert raw(r, "COMMAND", "DOCS", "nosuch") == []


def test_command_getkeys(r: redis.Redis) -> None:
    assert raw(r, "COMMAND", "GETKEYS", "SET", "a", "b") == [b"a"]
    assert raw(r, "COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2") == [b"a", b"b"]
    assert error_of(r.execute_command, "COMMAND", "GETKEYS", "NOSUCH", "a") == "Invalid command specified"
    assert error_of(r.execute_command, "COMMAND", "GETKEYS", "GET", "a", "b") == (
        "Invalid number of arguments specified for command"
    )
    assert (
        error_of(r.execute_command, "COMMAND", "GETKEYS", "PING", "x") == "The command has no key arguments"
    )
    assert error_of(r.execute_command, "COMMAND", "GETKEYS", "GET") == (
        "wrong number of arguments for 'command|getkeys' command"
    )
    assert (
        error_of(r.execute_command, "COMMAND", "COUNT", "x")
        == "wrong number of arguments for 'command|count' command"
    )
    assert error_of(r.execute_command, "COMMAND", "FOO") == "unknown subcommand 'FOO'. Try COMMAND HELP."


# -- INFO ------------------------------------------------------------------------------------------------


def test_info_default_sections_and_server_fields(node: NodeProcess, r: redis.Redis) -> None:
    text = raw(r, "INFO")
    assert isinstance(text, bytes)
    headers = re.findall(rb"^# (\w+)\r$", text, re.M)
    for section in (b"Server", b"Clients", b"Memory", b"Stats", b"Replication", b"CPU", b"Keyspace"):
        assert section in headers
    server = r.info("server")
    assert server["redis_version"] == "7.0.15"
    assert server["redactor_version"] == "0.1.0"
    assert server["process_id"] == node.pid
    assert re.fullmatch(r"[0-9a-f]{40}", server["run_id"])
    assert server["tcp_port"] == node.port
    assert isinstance(server["uptime_in_seconds"], int) and server["uptime_in_seconds"] >= 0
    assert server["redis_mode"] == "standalone"
    assert list(r.info("server")) == list(server)  # only that section
    assert raw(r, "INFO", "nosuchsection") == b""


def test_info_text_is_crlf_lines_with_a_blank_line_between_sections(r: redis.Redis) -> None:
    text = raw(r, "INFO", "server", "clients")
    assert isinstance(text, bytes)
    assert text.startswith(b"# Server\r\n") and b"\r\n\r\n# Clients\r\n" in text and text.endswith(b"\r\n")
    assert all(b":" in line for line in text.split(b"\r\n") if line and not line.startswith(b"#"))


def test_info_counts_clients_commands_and_keys(node: NodeProcess, r: redis.Redis) -> None:
    before = r.info("stats")["total_commands_processed"]
    for _ in range(5):
        r.ping()
    assert r.info("stats")["total_commands_processed"] >= before + 5
    r.mset({"a": "1", "b": "2"})
    r.expire("a", 100)
    assert r.info("keyspace")["db0"] == {"keys": 2, "expires": 1, "avg_ttl": 0}
    other = node.client()
    other.ping()
    assert r.info("clients")["connected_clients"] >= 2
    other.close()
    r.get("a")
    r.get("missing")
    stats = r.info("stats")
    assert stats["keyspace_hits"] >= 1 and stats["keyspace_misses"] >= 1
    everything = r.info("all")
    assert "cmdstat_ping" in everything and everything["cmdstat_ping"]["calls"] >= 5
    assert r.info("replication")["role"] == "master"


# -- CONFIG ----------------------------------------------------------------------------------------------


def test_config_get_patterns_and_several_arguments(r: redis.Redis) -> None:
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    got = r.config_get("maxmemory*")
    assert {"maxmemory", "maxmemory-policy"} <= set(got) and got["maxmemory-policy"] == "noeviction"
    assert raw(r, "CONFIG", "GET", "port", "databases") in (
        [b"port", str(r.connection_pool.connection_kwargs["port"]).encode(), b"databases", b"16"],
        [b"databases", b"16", b"port", str(r.connection_pool.connection_kwargs["port"]).encode()],
    )
    assert r.config_get("nosuch") == {}
    assert r.config_get("save") == {"save": ""}
    assert r.config_get("appendonly") == {"appendonly": "no"}
    assert (
        error_of(r.execute_command, "CONFIG", "GET") == "wrong number of arguments for 'config|get' command"
    )


def test_config_set_validates_and_applies(r: redis.Redis) -> None:
    try:
        assert r.config_set("maxmemory", "1mb") is True
        assert r.config_get("maxmemory") == {"maxmemory": "1048576"}
        assert raw(r, "CONFIG", "SET", "maxmemory", "0", "hz", "20") == b"OK"
        assert r.config_get("hz") == {"hz": "20"}
        assert error_of(r.config_set, "maxmemory", "abc") == (
            "CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
        )
        assert error_of(r.execute_command, "CONFIG", "SET", "maxmemory", "10", "hz", "abc") == (
            "CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer"
        )
        assert r.config_get("maxmemory") == {"maxmemory": "0"}  # all or nothing
        assert error_of(r.config_set, "nosuch", "1") == (
            "Unknown option or number of arguments for CONFIG SET - 'nosuch'"
        )
        assert error_of(r.execute_command, "CONFIG", "SET", "hz", "10", "hz", "11") == (
            "CONFIG SET failed (possibly related to argument 'hz') - duplicate parameter"
        )
        assert error_of(r.execute_command, "CONFIG", "SET", "maxmemory") == (
            "wrong number of arguments for 'config|set' command"
        )
        assert r.config_set("hz", "1000") is True
        assert r.config_get("hz") == {"hz": "500"}  # clamped, as Redis does
        assert r.config_set("save", "100 10") is True
        assert r.config_get("save") == {"save": "100 10"}
    finally:
        raw(r, "CONFIG", "SET", "maxmemory", "0", "hz", "10", "save", "")


def test_config_resetstat_zeroes_the_counters(r: redis.Redis) -> None:
    r.get("missing")
    assert r.config_resetstat() is True
    stats = r.info("stats")
    assert stats["keyspace_misses"] == 0
    assert stats["total_commands_processed"] <= 2
    assert "cmdstat_get" not in r.info("commandstats")
    assert error_of(r.execute_command, "CONFIG", "RESETSTAT", "x") == (
        "wrong number of arguments for 'config|resetstat' command"
    )
    assert error_of(r.execute_command, "CONFIG", "FOO") == "unknown subcommand 'FOO'. Try CONFIG HELP."


# -- TIME, DEBUG -----------------------------------------------------------------------------------------


def test_time_is_seconds_and_microseconds_now(r: redis.Redis) -> None:
    reply = raw(r, "TIME")
    assert isinstance(reply, list) and len(reply) == 2
    seconds, micros = int(reply[0]), int(reply[1])
    assert abs(seconds - time.time()) < 5 and 0 <= micros < 1_000_000


def test_debug_digest_is_redis_digest_of_the_dataset(node: NodeProcess, r: redis.Redis) -> None:
    assert raw(r, "DEBUG", "DIGEST") == b"0" * 40
    r.set("a", "1")
    # The value redis-server 7.0 gives for exactly this dataset: the same algorithm, so datasets compare.
    assert raw(r, "DEBUG", "DIGEST") == b"943d800368fb9c0e951138f1bc0e313ac769d91f"
    assert raw(r, "DEBUG", "DIGEST-VALUE", "a", "nokey") == [
        b"b4fc66738120fba0b5aa500ab5c2bf89cea1c5da",
        b"0" * 40,
    ]


def test_debug_error_replies_its_argument_as_an_error(r: redis.Redis) -> None:
    # redis-server 7.0: DEBUG ERROR <string> replies -<string> (CR and LF made spaces); clients test with it.
    with pytest.raises(redis.exceptions.BusyLoadingError):
        r.execute_command("DEBUG", "ERROR", "LOADING fake message")
    assert error_of(r.execute_command, "DEBUG", "ERROR", "ERR two\r\nlines") == "two  lines"
    assert "unknown subcommand" in error_of(r.execute_command, "DEBUG", "ERROR")


def test_debug_log_writes_its_line_in_the_log(node: NodeProcess) -> None:
    # Redis's serverLog(LL_WARNING, "DEBUG LOG: %s"): its test suite marks its steps in the servers' logs.
    assert node.client().execute_command("DEBUG", "LOG", "step one") == b"OK"
    wait_for(lambda: "DEBUG LOG: step one" in node.log(), 5, what="the line in the log")


def test_equal_datasets_give_equal_digests_and_different_ones_do_not(r: redis.Redis) -> None:
    pairs = [(f"k{i}", f"v{i}") for i in range(200)]
    for key, value in pairs:
        r.set(key, value)
    r.expire("k7", 1000)
    first = raw(r, "DEBUG", "DIGEST")
    r.flushall()
    for key, value in reversed(pairs):
        r.set(key, value)
    assert raw(r, "DEBUG", "DIGEST") != first  # k7 has no TTL now
    r.expire("k7", 500)
    assert raw(r, "DEBUG", "DIGEST") == first  # the expiry time itself is not hashed, only its presence
    r.set("k0", "changed")
    assert raw(r, "DEBUG", "DIGEST") != first
    r.set("k0", "v0")
    r.move("k1", 1)
    assert raw(r, "DEBUG", "DIGEST") != first


def test_debug_sleep_blocks_the_node(node: NodeProcess, r: redis.Redis) -> None:
    other = node.client()
    other.ping()
    done: list[float] = []

    def ping_meanwhile() -> None:
        time.sleep(0.05)
        started = time.monotonic()
        other.ping()
        done.append(time.monotonic() - started)

    thread = threading.Thread(target=ping_meanwhile)
    started = time.monotonic()
    thread.start()
    assert raw(r, "DEBUG", "SLEEP", "0.3") == b"OK"
    elapsed = time.monotonic() - started
    thread.join(5)
    assert elapsed >= 0.3
    assert done and done[0] >= 0.15  # the other client waited for the sleep to end
    assert raw(r, "DEBUG", "SLEEP", "abc") == b"OK"  # strtod: no number is 0
    other.close()


def test_debug_errors(r: redis.Redis) -> None:
    assert error_of(r.execute_command, "DEBUG", "FOO") == (
        "unknown subcommand or wrong number of arguments for 'FOO'. Try DEBUG HELP."
    )
    assert error_of(r.execute_command, "DEBUG", "SLEEP") == (
        "unknown subcommand or wrong number of arguments for 'SLEEP'. Try DEBUG HELP."
    )


def test_debug_is_refused_when_enable_debug_command_is_no(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path, "nodebug", enable_debug_command="no").start()
    try:
        r = node.client()
        assert error_of(r.execute_command, "DEBUG", "DIGEST") == DEBUG_REFUSED
        assert error_of(r.execute_command, "DEBUG", "SLEEP", "0") == DEBUG_REFUSED
        assert r.ping() is True
    finally:
        node.stop()


def test_debug_local_allows_loopback_clients(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path, "localdebug", enable_debug_command="local").start()
    try:
        assert raw(node.client(), "DEBUG", "DIGEST") == b"0" * 40
    finally:
        node.stop()


# -- SHUTDOWN --------------------------------------------------------------------------------------------


def test_shutdown_syntax_error_keeps_the_node_up(r: redis.Redis) -> None:
    assert error_of(r.execute_command, "SHUTDOWN", "FOO") == "syntax error"
    assert r.ping() is True


def test_shutdown_exits_the_process_with_status_0(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path, "doomed").start()
    r = node.client()
    r.set("a", "1")
    with pytest.raises(redis.ConnectionError):
        r.execute_command("SHUTDOWN", "NOSAVE")
    assert node.wait_exit(15) == 0
    node.stop()


def test_debug_object_line_has_redis_fields_and_values(
    r: redis.Redis, redis_servers: Any, tmp_path: Path
) -> None:
    """DEBUG OBJECT: the status line redis-server prints, field for field (at:, lru: and the idle time vary)."""
    reference = redis.Redis(port=redis_servers(tmp_path).port)
    fields = r"Value at:0x[0-9a-f]+ refcount:(\d+) encoding:(\S+) serializedlength:(\d+) lru:\d+ lru_seconds_idle:\d+"
    try:
        for client in (r, reference):
            client.set("shared", "12")
            client.set("word", "hello world")
            client.set("big", "x" * 100)
            client.sadd("ints", 1, 2, 3)
            client.hset("h", mapping={"f": "v"})
        for key in ("shared", "word", "big", "ints", "h"):
            ours = re.fullmatch(fields, r.execute_command("DEBUG", "OBJECT", key).decode())
            theirs = re.fullmatch(fields, reference.execute_command("DEBUG", "OBJECT", key).decode())
            assert ours is not None and theirs is not None, key
            assert ours.groups() == theirs.groups(), key
        for client in (r, reference):
            with pytest.raises(redis.ResponseError, match="^no such key$"):
                client.execute_command("DEBUG", "OBJECT", "missing")
    finally:
        reference.close()
