"""Memory: shared integer strings (actors/data/integers.py), the command table, the heap trimmer (allocator.py).

Counters made by INCR and friends, and integer-encoded strings read from an RDB, hold Redis's shared objects
for 0..9999 (one bytes object per value, not one per key); every string command still sees plain bytes. The
registered command specs keep no latency histogram of their own (only each Server's copies count). A burst's
free malloc heap is given back once the node is idle, not while it reads requests.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from actors.commands import COMMANDS, LATENCY_SMALL_US
from actors.commands._util import _SMALL_INT_VALUES, SMALL_INT_LOWEST, parse_int
from actors.config import Config
from actors.data.allocator import HeapTrimmer, free_heap_bytes, trim_before_fork
from actors.data.integers import SHARED_INTEGER_BYTES, SHARED_INTEGERS, integer_string
from actors.data.keyspace import Database
from actors.persistence.rdb import reader as rdb_reader
from actors.persistence.rdb import writer as rdb_writer
from actors.server.client import Client
from actors.server.latencystats import SMALL_US
from actors.server.server import Server


def run(server: Server, client: Client, *args: str) -> Any:
    return server.execute(client, [a.encode() for a in args])


def test_counters_hold_the_shared_objects_and_string_commands_still_work() -> None:
    server = Server(Config())
    client = Client(server)
    data = client.db.data
    assert run(server, client, "INCR", "c") == 1
    assert data[b"c"] is SHARED_INTEGER_BYTES[1]
    assert run(server, client, "INCRBY", "c", "9998") == 9999
    assert data[b"c"] is SHARED_INTEGER_BYTES[9999]
    assert run(server, client, "INCR", "c") == 10000
    assert data[b"c"] == b"10000" and data[b"c"] is not integer_string(10000)  # past the shared range
    assert run(server, client, "DECRBY", "c", "10001") == -1
    assert data[b"c"] == b"-1"
    run(server, client, "INCR", "a")
    run(server, client, "INCR", "b")
    assert data[b"a"] is data[b"b"]  # two keys, one object
    assert run(server, client, "OBJECT", "ENCODING", "a") == b"int"
    assert run(server, client, "OBJECT", "REFCOUNT", "a") == 2**31 - 1
    # Changing one key's value never changes the shared object (bytes are immutable).
    assert run(server, client, "APPEND", "a", "0") == 2
    assert run(server, client, "SETRANGE", "b", "0", "7") == 1
    assert run(server, client, "GET", "a") == b"10"
    assert run(server, client, "GET", "b") == b"7"
    assert SHARED_INTEGER_BYTES[1] == b"1"
    assert run(server, client, "STRLEN", "a") == 2
    assert run(server, client, "GETRANGE", "a", "0", "0") == b"1"
    assert run(server, client, "HINCRBY", "h", "f", "42") == 42
    assert data[b"h"][b"f"] is SHARED_INTEGER_BYTES[42]
    run(server, client, "INCR", "d")
    assert run(server, client, "INCRBYFLOAT", "d", "0.5") == b"1.5"
    assert SHARED_INTEGER_BYTES[1] == b"1"


def test_integer_strings_loaded_from_an_rdb_are_shared() -> None:
    texts = [b"0", b"5", b"127", b"128", b"9999", b"10000", b"-1", b"-200", b"40000", b"0123"]
    db = Database(0)
    for i, text in enumerate(texts):
        db.add(b"k%d" % i, text)
    blob = rdb_writer.dumps([db], rdb_writer.default_aux(None, None, None))
    loaded = rdb_reader.load(blob, 16).dbs[0].data
    assert [loaded[b"k%d" % i] for i in range(len(texts))] == texts
    shared = {b"0", b"5", b"127", b"128", b"9999"}  # canonical, 0..9999 (INT8 and INT16 encodings)
    for i, text in enumerate(texts):
        is_shared = any(loaded[b"k%d" % i] is SHARED_INTEGER_BYTES[n] for n in (0, 5, 127, 128, 9999))
        assert is_shared is (text in shared), text


def test_parse_int_table_is_keyed_by_the_shared_strings() -> None:
    shared_ids = {id(raw) for raw in SHARED_INTEGER_BYTES}
    assert sum(id(raw) in shared_ids for raw in _SMALL_INT_VALUES) == SHARED_INTEGERS
    assert len(_SMALL_INT_VALUES) == SHARED_INTEGERS - SMALL_INT_LOWEST
    assert sys.getsizeof(_SMALL_INT_VALUES) < 300_000  # a 2^14-slot table, not 2^15
    assert all(parse_int(raw) == value for raw, value in _SMALL_INT_VALUES.items())
    assert parse_int(b"-1000") == -1000 and parse_int(b"-128") == -128 and parse_int(b"9999") == 9999


def test_only_each_servers_copy_of_a_command_keeps_a_latency_histogram() -> None:
    assert LATENCY_SMALL_US == SMALL_US
    assert all(not spec.latency_us for spec in COMMANDS.values())
    server = Server(Config())
    client = Client(server)
    assert run(server, client, "CONFIG", "GET", "maxmemory")  # a container: its subcommand gets a record too
    assert all(len(cmd.latency_us) == SMALL_US for cmd in server.commands.values())
    assert len(server.commands[b"config"].sub_stats["get"].latency_us) == SMALL_US  # type: ignore[index]


def test_the_heap_trimmer_gives_a_bursts_free_heap_back_once_the_node_is_idle() -> None:
    if free_heap_bytes() is None:
        pytest.skip("no mallinfo2 in this C library")
    now = [100.0]
    reads = [0]
    trimmer = HeapTrimmer(lambda: reads[0], clock=lambda: now[0], min_free_bytes=1 << 20, idle_s=1.0)
    # A burst: objects over pymalloc's 512 bytes come from the malloc heap; one in 50 stays, so the rest are
    # free chunks in the middle of the heap, which glibc keeps resident.
    burst = [bytes(600 + i % 7) for i in range(20_000)]
    kept = burst[::50]
    reads[0] += 1
    del burst
    for step_s in (0.5, 0.6):  # the first look (after idle_s) sees the requests read: busy, no trim
        now[0] += step_s
        trimmer.cron()
        assert trimmer.trims == 0
    now[0] += 0.5
    trimmer.cron()
    assert trimmer.trims == 0  # less than idle_s since the last look
    now[0] += 0.6
    trimmer.cron()
    assert trimmer.trims == 1  # a whole idle_s without a request
    for _ in range(3):
        now[0] += 1.1
        trimmer.cron()
    assert trimmer.trims == 1  # idle and nothing new: the heap is not read again
    assert len(kept) == 400


def test_a_fork_or_memory_purge_trims_a_heap_with_free_chunks() -> None:
    if free_heap_bytes() is None:
        pytest.skip("no mallinfo2 in this C library")
    burst = [bytes(600 + i % 7) for i in range(20_000)]
    kept = burst[::50]
    del burst
    assert trim_before_fork(min_free_bytes=1 << 20)  # free chunks with whole pages in them: released
    assert not trim_before_fork(min_free_bytes=1 << 40)  # below the threshold: not even tried
    server = Server(Config())
    assert run(server, Client(server), "MEMORY", "PURGE") == "OK"
    assert len(kept) == 400
