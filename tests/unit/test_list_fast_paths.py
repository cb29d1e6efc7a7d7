"""The one-frame pushes and pops of actors/commands/lists.py: they skip ``Keyspace.touch`` and ``_changed`` only
while those would do nothing, so each state that needs them (a WATCH, memory charges, a blocked client's hook,
key tracking, list notifications, a TTL, an emptied list) still gets their effects. Checked in process on a
Server, for LPUSH / RPUSH / LPOP / RPOP on a list that already exists (the path the inline test guards)."""

from __future__ import annotations

from collections import deque

import pytest

from actors.config import Config
from actors.data.evict import STAMP_BITS
from actors.data.keyspace import Database
from actors.server.client import Client
from actors.server.server import Server
from protocol.resp import NULL_ARRAY

KEY = b"mylist"
# One command of each kind on an existing three-element list, and the list event it publishes.
WRITES = [
    ([b"LPUSH", KEY, b"x"], b"lpush"),
    ([b"RPUSH", KEY, b"x"], b"rpush"),
    ([b"LPUSHX", KEY, b"x"], b"lpush"),
    ([b"RPUSH", KEY, b"x", b"y"], b"rpush"),
    ([b"LPOP", KEY], b"lpop"),
    ([b"RPOP", KEY], b"rpop"),
]


def _server() -> tuple[Server, Client]:
    server = Server(Config())
    client = Client(server)
    server.add_client(client)
    assert server.execute(client, [b"RPUSH", KEY, b"a", b"b", b"c"]) == 3
    return server, client


@pytest.mark.parametrize(("argv", "event"), WRITES)
def test_a_watched_list_fails_the_exec(argv: list[bytes], event: bytes) -> None:
    server, client = _server()
    watcher = Client(server)
    server.add_client(watcher)
    assert server.execute(watcher, [b"WATCH", KEY]) == "OK"
    server.execute(client, argv)
    assert server.execute(watcher, [b"MULTI"]) == "OK"
    server.execute(watcher, [b"LLEN", KEY])
    assert server.execute(watcher, [b"EXEC"]) is NULL_ARRAY


@pytest.mark.parametrize(("argv", "event"), WRITES)
def test_the_blocked_clients_hook_and_tracking_hear_of_the_change(argv: list[bytes], event: bytes) -> None:
    server, client = _server()
    keyspace = server.keyspace
    modified: list[bytes] = []
    invalidated: list[bytes] = []

    def on_modified(db: Database, key: bytes) -> None:
        modified.append(key)

    def on_invalidate(db: Database, key: bytes) -> None:
        invalidated.append(key)

    keyspace.set_on_modified(on_modified)
    server.execute(client, argv)
    assert modified == [KEY]
    keyspace.set_on_modified(None)
    keyspace.set_on_invalidate(on_invalidate)
    server.execute(client, argv)
    assert invalidated == [KEY]


@pytest.mark.parametrize(("argv", "event"), WRITES)
def test_list_notifications_publish_the_event(argv: list[bytes], event: bytes) -> None:
    server, client = _server()
    heard: list[tuple[int, bytes, bytes]] = []
    publish = server.keyspace.on_event

    def on_event(db_index: int, name: bytes, key: bytes) -> None:
        heard.append((db_index, name, key))
        publish(db_index, name, key)

    assert server.execute(client, [b"CONFIG", b"SET", b"notify-keyspace-events", b"Kl"]) == "OK"
    server.keyspace.on_event = on_event
    server.execute(client, argv)
    assert heard == [(0, event, KEY)]


@pytest.mark.parametrize(("argv", "event"), WRITES)
def test_memory_charges_follow_the_change(argv: list[bytes], event: bytes) -> None:
    server, client = _server()
    assert server.execute(client, [b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lru"]) == "OK"
    db = server.keyspace.dbs[0]
    assert db.meta is not None
    before = db.meta[KEY] >> STAMP_BITS
    server.execute(client, argv)
    after = db.meta[KEY] >> STAMP_BITS
    assert after != before
    assert db.used_bytes == sum(meta >> STAMP_BITS for meta in db.meta.values())


@pytest.mark.parametrize("name", [b"LPUSH", b"RPUSH", b"LPUSHX", b"LPOP", b"RPOP"])
def test_an_expired_list_is_gone_before_the_command(name: bytes) -> None:
    now_ms = [1_000_000]
    server, client = _server()
    server.keyspace.clock = server.keyspace.expiry_clock = lambda: now_ms[0]
    assert server.execute(client, [b"PEXPIRE", KEY, b"10"]) == 1
    now_ms[0] += 20
    argv = [name, KEY] if name.endswith(b"POP") else [name, KEY, b"x"]
    reply = server.execute(client, argv)
    if name == b"LPUSHX":
        assert reply == 0
    elif name.endswith(b"POP"):
        assert reply is None
    else:
        assert reply == 1
        assert server.execute(client, [b"PTTL", KEY]) == -1
    assert server.keyspace.expired_keys == 1


@pytest.mark.parametrize(("name", "value"), [(b"LPOP", b"a"), (b"RPOP", b"c")])
def test_popping_the_last_element_deletes_the_key(name: bytes, value: bytes) -> None:
    server, client = _server()
    heard: list[bytes] = []
    assert server.execute(client, [b"CONFIG", b"SET", b"notify-keyspace-events", b"Kgl"]) == "OK"
    publish = server.keyspace.on_event

    def on_event(db_index: int, event: bytes, key: bytes) -> None:
        heard.append(event)
        publish(db_index, event, key)

    server.keyspace.on_event = on_event
    keep = b"0" if name == b"LPOP" else b"2"
    assert server.execute(client, [b"LTRIM", KEY, keep, keep]) == "OK"
    heard.clear()
    assert server.execute(client, [name, KEY]) == value
    assert KEY not in server.keyspace.dbs[0].data
    assert heard == [name.lower(), b"del"]


def test_the_quiet_path_changes_only_the_list_and_dirty() -> None:
    server, client = _server()
    keyspace = server.keyspace
    dirty = keyspace.dirty
    assert server.execute(client, [b"LPUSH", KEY, b"z"]) == 4
    assert server.execute(client, [b"RPUSH", KEY, b"y", b"w"]) == 6
    assert server.execute(client, [b"LPOP", KEY]) == b"z"
    assert server.execute(client, [b"RPOP", KEY]) == b"w"
    assert keyspace.dbs[0].data[KEY] == deque([b"a", b"b", b"c", b"y"])
    assert keyspace.dirty == dirty + 5


def test_wrong_type_and_count_forms_keep_their_replies() -> None:
    server, client = _server()
    server.execute(client, [b"SET", b"s", b"v"])
    for argv in ([b"LPUSH", b"s", b"x"], [b"RPUSHX", b"s", b"x"], [b"LPOP", b"s"], [b"RPOP", b"s"]):
        reply = server.execute(client, argv)
        assert str(reply).startswith("WRONGTYPE"), argv
    assert server.execute(client, [b"LPOP", KEY, b"2"]) == [b"a", b"b"]
    assert str(server.execute(client, [b"RPOP", KEY, b"1", b"2"])).startswith("ERR wrong number of arguments")
    assert server.execute(client, [b"RPOP", KEY, b"5"]) == [b"c"]
    assert server.execute(client, [b"RPOP", KEY, b"5"]) is NULL_ARRAY  # a count pop of no list


@pytest.mark.parametrize("name", [b"LPOP", b"RPOP"])
def test_popping_the_last_element_deletes_the_key_with_nothing_listening(name: bytes) -> None:
    server, client = _server()
    for _ in range(3):
        assert server.execute(client, [name, KEY]) is not None
    assert KEY not in server.keyspace.dbs[0].data
    assert server.execute(client, [b"EXISTS", KEY]) == 0


def test_lrange_takes_the_full_lookup_when_a_key_has_a_ttl_or_is_missing() -> None:
    now_ms = [1_000_000]
    server, client = _server()
    keyspace = server.keyspace
    keyspace.clock = keyspace.expiry_clock = lambda: now_ms[0]
    hits, misses = keyspace.keyspace_hits, keyspace.keyspace_misses
    assert server.execute(client, [b"LRANGE", KEY, b"0", b"-1"]) == [b"a", b"b", b"c"]
    assert server.execute(client, [b"LRANGE", b"nosuchkey", b"0", b"-1"]) == []
    assert (keyspace.keyspace_hits, keyspace.keyspace_misses) == (hits + 1, misses + 1)
    server.execute(client, [b"SET", b"s", b"v"])
    assert str(server.execute(client, [b"LRANGE", b"s", b"0", b"-1"])).startswith("WRONGTYPE")
    assert server.execute(client, [b"PEXPIRE", KEY, b"10"]) == 1
    now_ms[0] += 20
    assert server.execute(client, [b"LRANGE", KEY, b"0", b"-1"]) == []
    assert keyspace.expired_keys == 1
    assert keyspace.keyspace_misses == misses + 2
