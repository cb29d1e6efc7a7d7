"""Transactions and pub/sub inside one Server, no network: what EXEC propagates (the AOF / replication stream),
refusals that depend on the node's role, WATCH with a controlled clock, and registry clean-up."""

from __future__ import annotations

import random
from typing import Any

import pytest

from actors.commands import Command
from actors.config import Config
from actors.server.client import Client, ClientKind
from actors.server.server import Server, without_spans
from protocol.errors import CommandError
from protocol.resp import NULL_ARRAY, MultiReply, Push, encode, encode_command


class Clock:
    def __init__(self) -> None:
        self.now_ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> Server:
    s = Server(Config(), clock)
    s.aof_feeding = True  # something consumes the stream: propagate() records it
    return s


def run(server: Server, client: Client, *args: str | bytes) -> Any:
    return server.execute(client, [a.encode() if isinstance(a, str) else a for a in args])


def stream(*commands: list[bytes]) -> bytes:
    return b"".join(encode_command(argv) for argv in commands)


def test_single_write_is_propagated_alone(server: Server) -> None:
    c = Client(server)
    run(server, c, "MULTI")
    run(server, c, "SET", "a", "1")
    run(server, c, "GET", "a")
    assert run(server, c, "EXEC") == ["OK", b"1"]
    assert server.take_propagated() == stream([b"SELECT", b"0"], [b"SET", b"a", b"1"])
    assert server.exec_propagation is None


def test_several_writes_are_wrapped_in_multi_exec(server: Server) -> None:
    c = Client(server)
    run(server, c, "SELECT", "3")
    run(server, c, "MULTI")
    run(server, c, "SET", "a", "1")
    run(server, c, "INCR", "a")
    run(server, c, "SELECT", "5")
    run(server, c, "SET", "b", "2")
    run(server, c, "GET", "b")
    assert run(server, c, "EXEC") == ["OK", 2, "OK", "OK", b"2"]
    # MULTI in the first write's database, a SELECT where the writes change database, EXEC without one.
    assert server.take_propagated() == stream(
        [b"SELECT", b"3"],
        [b"MULTI"],
        [b"SET", b"a", b"1"],
        [b"INCR", b"a"],
        [b"SELECT", b"5"],
        [b"SET", b"b", b"2"],
        [b"EXEC"],
    )
    # The stream stays in database 5: the next write there needs no SELECT.
    run(server, c, "SET", "c", "3")
    assert server.take_propagated() == stream([b"SET", b"c", b"3"])


def test_reads_only_and_failed_writes_propagate_nothing(server: Server) -> None:
    c = Client(server)
    run(server, c, "SET", "s", "x")
    server.take_propagated()
    run(server, c, "MULTI")
    run(server, c, "GET", "s")
    run(server, c, "INCR", "s")  # fails at run time: no write
    reply = run(server, c, "EXEC")
    assert reply[0] == b"x" and str(reply[1]) == "ERR value is not an integer or out of range"
    assert server.take_propagated() == b""


def test_rewritten_writes_and_lazy_expiry_inside_exec(server: Server, clock: Clock) -> None:
    c = Client(server)
    run(server, c, "SET", "old", "v", "PX", "10")
    server.take_propagated()
    clock.now_ms += 20
    run(server, c, "MULTI")
    run(server, c, "GET", "old")  # deletes the expired key: a DEL joins the transaction
    run(server, c, "SET", "t", "v", "EX", "100")  # propagated with an absolute time
    assert run(server, c, "EXEC") == [None, "OK"]
    data = server.take_propagated()
    assert data.startswith(stream([b"MULTI"], [b"DEL", b"old"]))
    assert b"PXAT" in data.upper() and data.endswith(stream([b"EXEC"]))


def test_aborted_transactions_propagate_nothing(server: Server) -> None:
    c, other = Client(server), Client(server)
    run(server, c, "WATCH", "k")
    run(server, other, "SET", "k", "1")
    server.take_propagated()
    run(server, c, "MULTI")
    run(server, c, "SET", "x", "1")
    assert run(server, c, "EXEC") is NULL_ARRAY
    run(server, c, "MULTI")
    run(server, c, "SET", "x", "1")
    run(server, c, "NOPE")
    assert str(run(server, c, "EXEC")) == "EXECABORT Transaction discarded because of previous errors."
    assert server.take_propagated() == b""


def test_exec_propagation_is_restored_after_a_crash(server: Server) -> None:
    def boom(client: Client, argv: list[bytes]) -> Any:
        raise RuntimeError("bug in a command")

    broken = Command("boom", boom, 1, frozenset(), 0, 0, 0, "test", "")
    c = Client(server)
    run(server, c, "MULTI")
    run(server, c, "SET", "a", "1")
    assert c.multi is not None
    c.multi.append((broken, [b"boom"]))
    # A bug in a queued command is that command's error reply (Server.call: internal_error), the rest of the
    # transaction stands, and EXEC's propagation state is restored.
    replies = run(server, c, "EXEC")
    assert replies[0] == "OK"
    assert str(replies[1]) == "ERR internal error running 'boom' (RuntimeError); the node logged it"
    assert server.exec_propagation is None
    assert c.multi is None


# -- refusals ---------------------------------------------------------------------------------------------


def test_queued_write_refused_on_a_read_only_replica(server: Server) -> None:
    server.is_replica = True
    c = Client(server)
    run(server, c, "MULTI")
    assert str(run(server, c, "SET", "a", "1")) == "READONLY You can't write against a read only replica."
    assert run(server, c, "GET", "a") == "QUEUED"
    assert str(run(server, c, "EXEC")) == "EXECABORT Transaction discarded because of previous errors."


def test_exec_refused_when_the_node_changed_after_queuing(server: Server) -> None:
    c = Client(server)
    rejected_before = server.commands[b"exec"].rejected_calls  # the command table is shared by every Server
    run(server, c, "MULTI")
    run(server, c, "SET", "a", "1")
    server.is_replica = True  # became a read-only replica meanwhile
    assert str(run(server, c, "EXEC")) == (
        "EXECABORT Transaction discarded because of: READONLY You can't write against a read only replica."
    )
    assert c.multi is None and server.commands[b"exec"].rejected_calls == rejected_before + 1
    # Read-only transactions still run there.
    run(server, c, "MULTI")
    run(server, c, "GET", "a")
    assert run(server, c, "EXEC") == [None]
    server.is_replica = False
    run(server, c, "MULTI")
    run(server, c, "SET", "a", "1")
    server.write_refusal = "NOREPLICAS Not enough good replicas to write."
    assert str(run(server, c, "EXEC")) == (
        "EXECABORT Transaction discarded because of: NOREPLICAS Not enough good replicas to write."
    )
    # The master's stream is never refused.
    master = Client(server, ClientKind.MASTER)
    run(server, master, "MULTI")
    run(server, master, "SET", "a", "2")
    assert run(server, master, "EXEC") == ["OK"]


def test_loading_refusals_doom_the_transaction(server: Server) -> None:
    c = Client(server)
    run(server, c, "MULTI")
    server.loading = True
    assert str(run(server, c, "GET", "a")) == "LOADING Redis is loading the dataset in memory"
    assert run(server, c, "INFO") == "QUEUED"  # INFO may run while loading (PING may not, as in Redis 7.0)
    server.loading = False
    assert str(run(server, c, "EXEC")).startswith("EXECABORT")


# -- WATCH ------------------------------------------------------------------------------------------------


def test_watch_expiry_on_a_master(server: Server, clock: Clock) -> None:
    c = Client(server)
    run(server, c, "SET", "k", "v", "PX", "100")
    run(server, c, "WATCH", "k")
    clock.now_ms += 200  # expired, still stored: nothing looked at it
    assert b"k" in c.db.data
    run(server, c, "MULTI")
    assert run(server, c, "EXEC") is NULL_ARRAY
    # Already expired when watched: WATCH deletes it (propagating the DEL) and watches a missing key.
    run(server, c, "SET", "k2", "v", "PX", "100")
    clock.now_ms += 200
    server.take_propagated()
    run(server, c, "WATCH", "k2")
    assert b"k2" not in c.db.data
    assert server.take_propagated() == stream([b"DEL", b"k2"])
    run(server, c, "MULTI")
    assert run(server, c, "EXEC") == []


def test_watch_expiry_on_a_replica(server: Server, clock: Clock) -> None:
    server.keyspace.is_replica = True
    server.is_replica = True
    master, c = Client(server, ClientKind.MASTER), Client(server)
    run(server, master, "SET", "k", "v", "PX", "100")
    clock.now_ms += 200
    run(server, c, "WATCH", "k")  # already expired: a replica keeps it until its master's DEL
    assert b"k" in c.db.data
    run(server, c, "MULTI")
    assert run(server, c, "EXEC") == []
    # After UNWATCH, a fresh key of the same name expiring after WATCH does fail EXEC.
    run(server, master, "SET", "k", "v", "PX", "100")
    run(server, c, "WATCH", "k")
    clock.now_ms += 200
    run(server, c, "MULTI")
    assert run(server, c, "EXEC") is NULL_ARRAY


def test_watch_bookkeeping(server: Server) -> None:
    c, other = Client(server), Client(server)
    run(server, c, "WATCH", "a", "b", "a")
    assert c.watched == [(c.db, b"a"), (c.db, b"b")]
    assert c.db.watched == {b"a": {c}, b"b": {c}}
    run(server, other, "WATCH", "a")
    run(server, c, "UNWATCH")
    assert c.watched == [] and c.db.watched == {b"a": {other}}
    server.remove_client(other)
    assert c.db.watched == {}
    # Once dirty, WATCH watches nothing more (EXEC fails anyway).
    run(server, c, "WATCH", "a")
    run(server, other, "SET", "a", "1")
    run(server, c, "WATCH", "z")
    assert [key for _, key in c.watched] == [b"a"]
    run(server, c, "MULTI")
    assert run(server, c, "EXEC") is NULL_ARRAY
    assert c.watched == [] and c.db.watched == {}


# -- pub/sub ----------------------------------------------------------------------------------------------


def test_pubsub_replies_and_cleanup(server: Server) -> None:
    got: list[Any] = []
    sub, pub = Client(server), Client(server)
    sub.push = got.append
    reply = run(server, sub, "SUBSCRIBE", "a", "b")
    assert type(reply) is MultiReply and all(type(item) is Push for item in reply)
    assert reply == [[b"subscribe", b"a", 1], [b"subscribe", b"b", 2]]
    assert encode(reply) == encode([b"subscribe", b"a", 1]) + encode([b"subscribe", b"b", 2])
    assert encode(reply, resp3=True).startswith(b">3\r\n")
    run(server, sub, "PSUBSCRIBE", "a*")
    assert run(server, pub, "PUBLISH", "a", "m") == 2
    assert got == [[b"message", b"a", b"m"], [b"pmessage", b"a*", b"a", b"m"]]
    assert (set(server.pubsub_channels), set(server.pubsub_patterns)) == ({b"a", b"b"}, {b"a*"})
    assert run(server, sub, "RESET") == "RESET"
    assert (server.pubsub_channels, server.pubsub_patterns, sub.channels, sub.patterns) == (
        {},
        {},
        set(),
        set(),
    )
    run(server, sub, "SUBSCRIBE", "c")
    server.remove_client(sub)
    assert server.pubsub_channels == {}
    assert run(server, pub, "PUBLISH", "c", "m") == 0


def test_subscribed_resp2_client_refusals_doom_nothing_and_count(server: Server) -> None:
    c = Client(server)
    run(server, c, "SUBSCRIBE", "a")
    reply = run(server, c, "CONFIG", "GET", "port")
    assert isinstance(reply, CommandError)
    assert str(reply).startswith("ERR Can't execute 'config|get': only (P|S)SUBSCRIBE")
    assert server.commands[b"config"].rejected_calls >= 1
    c.resp3 = True
    assert run(server, c, "GET", "x") is None


def test_publish_goes_to_the_replication_stream_but_not_to_the_aof(server: Server) -> None:
    c = Client(server)
    run(server, c, "SET", "a", "1")
    run(server, c, "PUBLISH", "ch", "lost")  # no backlog yet: nothing to propagate it to
    assert server.take_propagated() == stream([b"SELECT", b"0"], [b"SET", b"a", b"1"])
    assert server.taken_repl_only_spans == []
    server.repl_feeding = True
    offset = server.repl_offset
    run(server, c, "SET", "b", "2")
    run(server, c, "PUBLISH", "ch", "m1")
    run(server, c, "MULTI")
    run(server, c, "SET", "c", "3")
    run(server, c, "PUBLISH", "ch", "m2")
    run(server, c, "EXEC")
    run(server, c, "PUBLISH", "ch", "m3")
    data = server.take_propagated()
    everything = [
        [b"SET", b"b", b"2"],
        [b"PUBLISH", b"ch", b"m1"],
        [b"MULTI"],
        [b"SET", b"c", b"3"],
        [b"PUBLISH", b"ch", b"m2"],
        [b"EXEC"],
        [b"PUBLISH", b"ch", b"m3"],
    ]
    assert data == stream(*everything)  # the replicas' stream, counted in the offset
    assert server.repl_offset - offset == len(data)
    aof = without_spans(data, 0, server.taken_repl_only_spans)
    assert aof == stream(*(argv for argv in everything if argv[0] != b"PUBLISH"))
    # Whatever prefix an AOF sink already handled (a switch of incr files mid-tick), the rest is filtered alike.
    for skip in range(len(data) + 1):
        assert (
            without_spans(data[skip:], skip, server.taken_repl_only_spans)
            == aof[len(without_spans(data[:skip], 0, server.taken_repl_only_spans)) :]
        )


def test_without_spans_matches_a_byte_by_byte_filter(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        size = rng.randrange(0, 60)
        data = bytes(rng.randrange(256) for _ in range(size))
        cuts = sorted(rng.sample(range(size + 1), k=min(size + 1, 2 * rng.randrange(0, 4))))
        spans = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
        offset = rng.randrange(0, size + 1)
        want = bytes(b for i, b in enumerate(data) if i >= offset and not any(s <= i < e for s, e in spans))
        assert without_spans(data[offset:], offset, spans) == want, (spans, offset)
