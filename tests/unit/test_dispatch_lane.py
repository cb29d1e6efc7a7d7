"""The general lane (actors/server/dispatch.py): which commands it may run, and that a run of them has exactly
the effects ``Server.execute`` has one by one (replies, propagation, statistics), checked in process on two
servers fed the same seeded random commands."""

from __future__ import annotations

import inspect
import random
from time import perf_counter_ns
from typing import Any

from actors.commands import BLOCKED, Command, load_all
from actors.commands.lazy import LazyCommandFn
from actors.config import Config
from actors.server.client import Client
from actors.server.dispatch import GeneralLane, build_tables, lane_eligible
from actors.server.errorstats import count_error_reply
from actors.server.server import Server
from protocol.errors import CommandError
from protocol.resp import encode_into

# Commands that change what Server.execute checks before each command, or that can block: never in the lane.
STATE_CHANGING = {
    "multi", "exec", "discard", "watch", "auth", "hello", "select", "client", "config", "subscribe",
    "psubscribe", "ssubscribe", "unsubscribe", "eval", "evalsha", "fcall", "function", "script", "monitor",
    "acl", "debug", "reset", "quit", "replicaof", "wait", "migrate", "blpop", "brpop", "blmove", "bzpopmin",
    "bzmpop", "blmpop", "xread", "xreadgroup", "flushall", "shutdown", "get", "set",
}  # fmt: skip


def test_the_lane_runs_data_commands_only() -> None:
    table, fast_names = build_tables(load_all())
    names = {record[4] for record in table.values()}
    assert not names & STATE_CHANGING
    assert set(fast_names) == {b"GET", b"get", b"SET", b"set"}
    assert {
        "hset",
        "lpush",
        "rpop",
        "sadd",
        "spop",
        "zadd",
        "zpopmin",
        "incr",
        "mset",
        "lrange",
        "ping",
    } <= names
    for sent in (b"GET", b"get", b"SET", b"set"):  # the fast lane's
        assert sent not in table
    for cmd in load_all().values():
        if "blocking" in cmd.flags:
            assert not lane_eligible(cmd), cmd.name


def _config_set(server: Server, name: str, value: str) -> None:
    assert server.execute(Client(server), [b"CONFIG", b"SET", name.encode(), value.encode()]) == "OK"


def _server() -> tuple[Server, Client]:
    server = Server(Config())
    server.stream.aof_feeding = True  # so propagation is observable
    return server, Client(server)


def _random_argv(rng: random.Random) -> list[bytes]:
    key = rng.choice((b"k1", b"k2", b"k3"))
    member = b"m%d" % rng.randrange(5)
    number = b"%d" % rng.randrange(-3, 20)
    name, *args = rng.choice(
        [
            (b"LPUSH", key, member),
            (b"RPOP", key),
            (b"HSET", key, member, number),
            (b"HINCRBY", key, member, number),
            (b"SADD", key, member),
            (b"SREM", key, member),
            (b"ZADD", key, number, member),
            (b"ZPOPMIN", key),
            (b"INCR", key),
            (b"INCRBYFLOAT", key, b"1.5"),  # propagated as SET
            (b"EXPIRE", key, b"100"),  # propagated as PEXPIREAT
            (b"APPEND", key, member),
            (b"DEL", key),
            (b"MGET", key, b"k1"),
            (b"PING",),
            (b"LLEN",),  # wrong arity: the lane stops, execute answers
            (b"NOSUCH", key),  # unknown: the lane stops
            (b"GET", key),  # the fast lane's: the lane runs it only first in a run
            (b"SET", key, member, b"EX", b"100"),  # not the fast lane's form: the lane runs it
            (b"SELECT", b"0"),  # not a lane command
        ]
    )
    return [rng.choice((name, name.lower())), *args]


def _stats(server: Server) -> Any:
    return (
        {
            name: (c.calls, c.failed_calls, sum(c.latency_us) + sum(c.latency_large.values()))
            for name, c in server.commands.items()
            if c.calls
        },
        server.stats.total_error_replies,
        dict(server.stats.error_counts),
        server.keyspace.keyspace_hits,
        server.keyspace.keyspace_misses,
        server.keyspace.dirty,
    )


def test_a_run_has_the_effects_of_execute_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    clock = [1_700_000_000_000]
    lane_server = Server(Config(), clock=lambda: clock[0])
    plain_server = Server(Config(), clock=lambda: clock[0])
    for server in (lane_server, plain_server):
        server.stream.aof_feeding = True
    lane_client = Client(lane_server)
    plain_client = Client(plain_server)
    lane = lane_server.general_lane
    ran_in_lane = 0
    for _ in range(300):
        commands = [_random_argv(rng) for _ in range(rng.randrange(1, 20))]
        lane_out: list[bytes] = []
        index = 0
        while index < len(commands):
            stop = lane.run(lane_client, commands, index, lane_out)
            ran_in_lane += stop - index
            if stop == index:  # the caller's general path: execute, then encode
                reply = lane_server.execute(lane_client, commands[index])
                if isinstance(reply, CommandError):
                    count_error_reply(lane_server, reply)
                encode_into(lane_out, reply, False)
                stop = index + 1
            index = stop
        plain_out: list[bytes] = []
        for argv in commands:
            reply = plain_server.execute(plain_client, argv)
            if isinstance(reply, CommandError):
                count_error_reply(plain_server, reply)
            encode_into(plain_out, reply, False)
        assert b"".join(lane_out) == b"".join(plain_out), commands
        assert lane_server.take_propagated() == plain_server.take_propagated(), commands
        assert lane_client.last_command == plain_client.last_command
    assert _stats(lane_server) == _stats(plain_server)
    assert ran_in_lane > 1000  # the lane did run most of them


def test_the_lane_stays_out_while_a_check_applies() -> None:
    server, client = _server()
    lane = server.general_lane
    commands = [[b"LPUSH", b"l", b"a"], [b"LPUSH", b"l", b"b"]]
    client.multi = []  # inside MULTI: commands queue, execute's job
    assert lane.run(client, commands, 0, []) == 0
    client.multi = None
    _config_set(server, "notify-keyspace-events", "KEA")  # notifications: the full path
    assert lane.run(client, commands, 0, []) == 0
    _config_set(server, "notify-keyspace-events", "")
    client.channels.add(b"ch")  # RESP2 pub/sub context
    assert lane.run(client, commands, 0, []) == 0
    client.channels.clear()
    out: list[bytes] = []
    assert lane.run(client, commands, 0, out) == 2
    assert out == [b":1\r\n", b":2\r\n"]


def test_a_write_that_feeds_a_waiting_client_ends_the_run_after_serving_it() -> None:
    server, client = _server()
    served: list[int] = []

    def serve() -> None:
        served.append(1)
        server.after_command = None

    commands = [[b"LPUSH", b"l", b"a"], [b"LPUSH", b"l", b"b"]]
    lane = server.general_lane
    server.after_command = serve  # someone waits already: the lane leaves the run to execute
    assert lane.run(client, commands, 0, []) == 0
    server.after_command = None
    original = server.commands[b"lpush"].fn

    def lpush_waking(c: Client, argv: list[bytes]) -> Any:
        server.after_command = serve
        return original(c, argv)

    lane.table[b"LPUSH"] = (server.commands[b"lpush"], lpush_waking, 3, 1 << 62, "lpush")
    assert lane.run(client, commands, 0, []) == 1
    assert served == [1]


def test_a_slow_command_reaches_the_latency_monitor_and_the_slowlog() -> None:
    def slow(client: Client, argv: list[bytes]) -> Any:
        until = perf_counter_ns() + 3_000_000  # a command that takes 3 ms
        while perf_counter_ns() < until:
            pass
        return b"done"

    spec = Command("slowcmd", slow, 1, frozenset({"readonly"}), 0, 0, 0, "string", "")
    server = Server(Config(), commands={**load_all(), b"slowcmd": spec})  # load_all: also when run alone
    _config_set(server, "latency-monitor-threshold", "1")
    _config_set(server, "slowlog-log-slower-than", "2000")
    client = Client(server)
    lane = GeneralLane(server)
    out: list[bytes] = []
    assert lane.run(client, [[b"SLOWCMD"], [b"SLOWCMD"]], 0, out) == 2
    assert out == [b"$4\r\n", b"done", b"\r\n"] * 2
    # (a CONFIG SET above may be logged too on a loaded machine: only SLOWCMD's entries are counted)
    assert [entry[3] for entry in server.slowlog if entry[3][0] == b"SLOWCMD"] == [[b"SLOWCMD"]] * 2
    assert server.commands[b"slowcmd"].calls == 2
    assert server.commands[b"slowcmd"].usec >= 6000
    latest = server.execute(client, [b"LATENCY", b"LATEST"])
    assert latest and latest[0][0] == b"command"


def test_blocked_is_never_a_lane_reply() -> None:
    # Every command function that may return BLOCKED is kept out of the lane (blocking flag, WAIT, MIGRATE).
    table, fast_names = build_tables(load_all())
    for record in [*table.values(), *fast_names.values()]:
        fn = record[1]
        # A command of a module imported on first call (actors/commands/lazy.py): the function it will run.
        source = inspect.getsource(fn.load() if isinstance(fn, LazyCommandFn) else fn)
        assert "BLOCKED" not in source, record[4]
    assert all(record[1](Client(Server(Config())), [b"PING"]) is not BLOCKED for record in [table[b"PING"]])


def test_stretches_of_one_command_are_counted_exactly(monkeypatch: Any) -> None:
    # A stretch of one command under 1 us is added to its record when the command changes and at the end of
    # the run: calls, usec and latency-tracking bucket 0 must come out as if counted one by one.
    now = [0]

    def clock() -> int:
        now[0] += 300  # each clock read 300 ns after the previous one: a command takes 0 us...
        return now[0]

    def lpush_2us(client: Client, argv: list[bytes]) -> Any:
        now[0] += 2000  # ...except this LPUSH, which takes 2 us
        return 1

    monkeypatch.setattr("actors.server.dispatch.perf_counter_ns", clock)
    server, client = _server()
    lane = server.general_lane
    lane.table[b"LPUSH"] = (server.commands[b"lpush"], lpush_2us, 3, 1 << 62, "lpush")
    commands = [[b"PING"]] * 3 + [[b"LPUSH", b"k", b"v"]] * 2 + [[b"PING"], [b"ECHO", b"x"], [b"PING"]]
    assert lane.run(client, commands, 0, []) == len(commands)
    ping, echo, lpush = (server.commands[name] for name in (b"ping", b"echo", b"lpush"))
    assert (ping.calls, ping.usec, ping.latency_us[0]) == (5, 0, 5)
    assert (echo.calls, echo.usec, echo.latency_us[0]) == (1, 0, 1)
    assert (lpush.calls, lpush.usec, lpush.latency_us[2], lpush.latency_us[0]) == (2, 4, 2, 0)
    assert server.total_commands_processed == 8
