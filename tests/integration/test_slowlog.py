"""SLOWLOG and INFO commandstats timing: commands are timed as they run, and the slow ones kept as Redis
keeps them (trimmed arguments, newest first, slowlog-max-len)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis

from tests.harness import NodeProcess, RedisServer, wait_for
from tests.integration.shared import error_of


def test_slow_commands_are_logged_newest_first_with_trimmed_arguments(node: NodeProcess) -> None:
    r = node.client()
    r.client_setname("tester")
    r.execute_command("DEBUG", "SLEEP", "0.02")  # 20 ms: over the default 10 ms threshold
    r.set("fast", "1")
    entries = r.execute_command("SLOWLOG", "GET")
    assert len(entries) == 1
    entry_id, timestamp, duration_us, args, addr, name = entries[0]
    assert args == [b"DEBUG", b"SLEEP", b"0.02"] and duration_us >= 20_000 and timestamp > 0
    assert name == b"tester" and addr.startswith(b"127.0.0.1:")
    assert r.execute_command("SLOWLOG", "LEN") == 1

    r.config_set("slowlog-log-slower-than", 0)  # now everything, GET/SET included
    r.set("k", "v" * 200)
    r.execute_command("RPUSH", "l", *[str(i) for i in range(40)])
    newest = r.execute_command("SLOWLOG", "GET", 2)
    assert newest[0][3] == [b"RPUSH", b"l", *[b"%d" % i for i in range(29)], b"... (11 more arguments)"]
    assert newest[1][3] == [b"SET", b"k", b"v" * 128 + b"... (72 more bytes)"]  # as the client sent it
    assert newest[0][0] > newest[1][0] > entry_id  # ids grow, newest first
    length = r.execute_command("SLOWLOG", "LEN")
    assert len(r.execute_command("SLOWLOG", "GET", -1)) == length + 1  # SLOWLOG LEN itself was logged too

    r.config_set("slowlog-max-len", 3)
    r.get("fast")
    assert r.execute_command("SLOWLOG", "LEN") == 3
    assert r.execute_command("SLOWLOG", "RESET") == b"OK"  # logged itself once it has run, as in Redis
    r.config_set("slowlog-log-slower-than", -1)  # off
    r.execute_command("DEBUG", "SLEEP", "0.02")
    assert [entry[3] for entry in r.execute_command("SLOWLOG", "GET")] == [[b"SLOWLOG", b"RESET"]]


def test_slowlog_errors_are_redis_errors(node: NodeProcess) -> None:
    call = node.client().execute_command
    assert error_of(call, "SLOWLOG", "GET", "-2") == "count should be greater than or equal to -1"
    assert error_of(call, "SLOWLOG", "GET", "x") == "count should be greater than or equal to -1"
    assert error_of(call, "SLOWLOG", "foo") == "unknown subcommand 'foo'. Try SLOWLOG HELP."
    assert error_of(call, "SLOWLOG", "LEN", "1") == "wrong number of arguments for 'slowlog|len' command"
    assert error_of(call, "SLOWLOG", "GET", "1", "2") == (
        "unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP."
    )
    assert call("SLOWLOG", "HELP")[0] == b"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"


def test_commandstats_count_time_as_redis_reports_it(node: NodeProcess) -> None:
    r = node.client()
    for i in range(200):
        r.set(f"k{i}", "v")
        r.lpush("l", i)
    stats = r.info("commandstats")
    for name in ("cmdstat_set", "cmdstat_lpush"):
        assert stats[name]["calls"] == 200 and stats[name]["usec"] > 0 and stats[name]["usec_per_call"] > 0


def _logged_args(client: redis.Redis, steps: list[tuple[str, ...]]) -> list[list[bytes]]:
    """The SLOWLOG arguments of ``steps`` (every command logged), oldest first. One connection throughout:
    redis-py would reconnect after AUTH's error, and its handshake would be logged too."""
    conn = client.connection_pool.get_connection()
    try:
        for step in [("CONFIG", "SET", "slowlog-log-slower-than", "0"), ("SLOWLOG", "RESET"), *steps]:
            conn.send_command(*step)
            try:
                conn.read_response(disconnect_on_error=False)
            except redis.RedisError:  # the reply was an error: the connection stays usable
                pass
        conn.send_command("CONFIG", "SET", "slowlog-log-slower-than", "-1")
        conn.read_response()
        conn.send_command("SLOWLOG", "GET", "-1")
        return [entry[3] for entry in reversed(conn.read_response())]
    finally:
        client.connection_pool.release(conn)


def test_slowlog_redacts_credentials_as_redis_server_does(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """Passwords and ACL rules show as (redacted) in SLOWLOG, as Redis 7.0's redactClientCommandArgument.

    First, on the fresh node: FUNCTION FLUSH on a node that never ran a script has nothing to drop, so it does
    not build the Lua engine (~15 ms once, which put it in SLOWLOG at the default 10 ms threshold). Checked by
    the engine's own trace, INFO's Lua memory (0 until it exists), not by SLOWLOG: the first FUNCTION call also
    imports its command module (actors/commands/lazy.py, ~5 ms quiet), and under CI's load the two together
    crossed 10 ms with no engine built."""
    client = node.client()
    call = client.execute_command
    assert call("FUNCTION", "FLUSH") == b"OK"
    assert client.info("memory")["used_memory_vm_eval"] == 0
    call("FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function() return 1 end)")
    assert call("FUNCTION", "FLUSH", "SYNC") == b"OK" and call("FUNCTION", "LIST") == []  # still empties
    theirs = redis_servers(tmp_path).client
    steps = [
        ("AUTH", "nopass"),
        ("AUTH", "someone", "nopass"),
        ("HELLO", "2", "AUTH", "default", "wrong"),
        ("ACL", "SETUSER", "slowlog user", "on", ">pw", "+get"),
        ("ACL", "SETUSER", "bob", "on", ">pw", "~*", "+get"),
        ("ACL", "GETUSER", "bob"),
        ("ACL", "DELUSER", "bob"),
        ("CONFIG", "SET", "maxmemory", "0", "masterauth", "secret"),
        ("CONFIG", "SET", "requirepass", ""),
        ("CONFIG", "SET", "masteruser", "someone"),
        ("CONFIG", "SET", "masteruser", "", "masterauth", ""),
        ("MIGRATE", "127.0.0.1", "1", "key", "9", "10", "AUTH", "pw"),
        ("MIGRATE", "127.0.0.1", "1", "key", "9", "10", "COPY", "AUTH2", "user", "pw"),
        ("MIGRATE", "127.0.0.1", "1", "", "9", "10", "AUTH", "pw", "KEYS", "a", "AUTH2", "u", "p"),
        ("SET", "auth", "password"),
    ]
    want = _logged_args(theirs, steps)
    assert [b"acl", b"setuser", *[b"(redacted)"] * 4] in [
        [a.lower() for a in e] for e in want
    ]  # a real check
    assert _logged_args(node.client(), steps) == want


def test_blocked_command_is_logged_once_served(node: NodeProcess) -> None:
    """A BLPOP that blocked enters SLOWLOG when a push serves it, as sent (not as the LPOP it propagates);
    one that times out is not logged (Redis 7.0's updateStatsOnUnblock)."""
    r = node.client()
    waiter = node.client()
    r.config_set("slowlog-log-slower-than", 0)
    r.execute_command("SLOWLOG", "RESET")
    waiter.execute_command("BLPOP", "gone", "0.05")  # times out: not logged
    conn = waiter.connection_pool.get_connection()
    conn.send_command("BLPOP", "l", "0")
    wait_for(lambda: r.info("clients")["blocked_clients"] == 1, timeout_s=10)
    r.execute_command("SLOWLOG", "RESET")
    r.lpush("l", "x")
    assert conn.read_response() == [b"l", b"x"]
    waiter.connection_pool.release(conn)
    logged = [entry[3] for entry in r.execute_command("SLOWLOG", "GET", -1)]
    assert logged[:2] == [[b"BLPOP", b"l", b"0"], [b"LPUSH", b"l", b"x"]]
    assert [b"BLPOP", b"gone", b"0.05"] not in logged


def test_each_threshold_reports_on_its_own_whichever_is_lower(node: NodeProcess) -> None:
    """Server.call tests a command's duration against the lower of the two thresholds first: each must still
    report by its own, with the other off or higher, and follow CONFIG SET."""
    r = node.client(protocol=2)
    r.config_set("slowlog-log-slower-than", -1)
    r.config_set("latency-monitor-threshold", 5)  # ms
    r.execute_command("DEBUG", "SLEEP", "0.02")
    assert r.execute_command("SLOWLOG", "LEN") == 0
    assert [event[0] for event in r.execute_command("LATENCY", "LATEST")] == [b"command"]
    r.execute_command("LATENCY", "RESET")
    r.config_set("latency-monitor-threshold", 0)
    r.config_set("slowlog-log-slower-than", 5000)  # us
    r.execute_command("DEBUG", "SLEEP", "0.02")
    r.execute_command("DEBUG", "SLEEP", "0")
    assert [entry[3] for entry in r.execute_command("SLOWLOG", "GET")] == [[b"DEBUG", b"SLEEP", b"0.02"]]
    assert r.execute_command("LATENCY", "LATEST") == []
    r.config_set("latency-monitor-threshold", 100)  # higher than SLOWLOG's: only the slow log hears of 20 ms
    r.execute_command("DEBUG", "SLEEP", "0.02")
    assert r.execute_command("SLOWLOG", "LEN") == 2
    assert r.execute_command("LATENCY", "LATEST") == []
