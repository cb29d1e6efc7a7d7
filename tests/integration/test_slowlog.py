"""SLOWLOG and INFO commandstats timing: commands are timed as they run, and the slow ones kept as Redis
keeps them (trimmed arguments, newest first, slowlog-max-len)."""

from __future__ import annotations

from tests.harness import NodeProcess
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
