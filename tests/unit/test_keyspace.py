"""The keyspace (actors/keyspace.py) with an injected clock: expiry lazy and active, watchers, counters, SCAN
snapshots. Time moves by assignment; nothing sleeps."""

from __future__ import annotations

from collections import deque

import pytest

from actors.data.keyspace import ACTIVE_EXPIRE_KEYS_PER_ROUND, Database, Keyspace
from actors.data.types import ZSet
from protocol.slots import keyslot

START_MS = 1_700_000_000_000


class FakeClock:
    """Milliseconds since the epoch, moved by the test."""

    def __init__(self, now_ms: int = START_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


class Watcher:
    dirty_cas = False


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ks(clock: FakeClock) -> Keyspace:
    return Keyspace(databases=4, clock=clock)


def test_set_lookup_delete(ks: Keyspace) -> None:
    db = ks.dbs[0]
    assert ks.lookup(db, b"k") is None
    ks.set(db, b"k", b"v")
    assert ks.lookup(db, b"k") == b"v"
    assert ks.exists(db, b"k")
    assert ks.delete(db, b"k") is True
    assert ks.delete(db, b"k") is False
    assert ks.lookup(db, b"k") is None


def test_databases_are_separate(ks: Keyspace) -> None:
    ks.set(ks.dbs[0], b"k", b"0")
    ks.set(ks.dbs[3], b"k", b"3")
    assert ks.lookup(ks.dbs[0], b"k") == b"0" and ks.lookup(ks.dbs[3], b"k") == b"3"
    assert ks.lookup(ks.dbs[1], b"k") is None
    assert ks.total_keys() == 2


def test_lookup_read_counts_hits_and_misses(ks: Keyspace) -> None:
    db = ks.dbs[0]
    ks.set(db, b"k", b"v")
    ks.lookup_read(db, b"k")
    ks.lookup_read(db, b"nokey")
    ks.lookup_read(db, b"nokey")
    assert (ks.keyspace_hits, ks.keyspace_misses) == (1, 2)
    ks.lookup(db, b"nokey")  # a plain lookup is not a read for the counters
    assert ks.keyspace_misses == 2


# -- lazy expiry -----------------------------------------------------------------------------------------


def test_a_key_expires_lazily_when_its_time_passes(ks: Keyspace, clock: FakeClock) -> None:
    db = ks.dbs[0]
    expired: list[tuple[int, bytes]] = []
    ks.on_expired = lambda index, key: expired.append((index, key))
    ks.set(db, b"k", b"v")
    ks.set_expire(db, b"k", clock.now_ms + 1000)
    clock.advance(999)
    assert ks.lookup(db, b"k") == b"v"
    assert expired == []
    clock.advance(1)  # due exactly now: gone, as in Redis (when <= now)
    assert ks.lookup(db, b"k") is None
    assert b"k" not in db.data and b"k" not in db.expires
    assert expired == [(0, b"k")]
    assert ks.expired_keys == 1


def test_set_drops_the_ttl_unless_asked_to_keep_it(ks: Keyspace, clock: FakeClock) -> None:
    db = ks.dbs[0]
    ks.set(db, b"k", b"v")
    ks.set_expire(db, b"k", clock.now_ms + 1000)
    ks.set(db, b"k", b"v2", keep_ttl=True)
    assert ks.get_expire(db, b"k") == clock.now_ms + 1000
    ks.set(db, b"k", b"v3")
    assert ks.get_expire(db, b"k") is None
    clock.advance(5000)
    assert ks.lookup(db, b"k") == b"v3"


def test_persist_removes_the_ttl(ks: Keyspace, clock: FakeClock) -> None:
    db = ks.dbs[0]
    ks.set(db, b"k", b"v")
    assert ks.persist(db, b"k") is False
    ks.set_expire(db, b"k", clock.now_ms + 10)
    assert ks.persist(db, b"k") is True
    clock.advance(100)
    assert ks.lookup(db, b"k") == b"v"


def test_delete_forgets_the_ttl(ks: Keyspace, clock: FakeClock) -> None:
    db = ks.dbs[0]
    ks.set(db, b"k", b"v")
    ks.set_expire(db, b"k", clock.now_ms + 10)
    ks.delete(db, b"k")
    assert db.expires == {}
    ks.add(db, b"k", b"new")
    clock.advance(100)
    assert ks.lookup(db, b"k") == b"new"


def test_a_replica_reports_expired_keys_missing_but_keeps_them(ks: Keyspace, clock: FakeClock) -> None:
    db = ks.dbs[0]
    expired: list[bytes] = []
    ks.on_expired = lambda index, key: expired.append(key)
    ks.is_replica = True
    ks.ignore_ttl = True  # (as the master's stream is applied)
    ks.set(db, b"k", b"v")
    ks.set_expire(db, b"k", clock.now_ms + 10)
    ks.ignore_ttl = False
    clock.advance(10)
    assert ks.lookup(db, b"k") is None
    assert b"k" in db.data and expired == []
    assert ks.active_expire_cycle(time_limit_ms=1000) == 0
    assert b"k" in db.data
    # A writable replica: a write deletes it (its reads still only hide it), as Redis's lookupKeyWrite.
    ks.replica_writable = True
    assert ks.lookup_read(db, b"k") is None and b"k" in db.data
    assert ks.lookup(db, b"k") is None and b"k" not in db.data and expired == [b"k"]


def test_a_writable_replica_expires_the_ttls_its_own_clients_set(ks: Keyspace, clock: FakeClock) -> None:
    """Redis's slaveKeysWithExpire: the master never sends a DEL for a key its replica's clients wrote."""
    db = ks.dbs[0]
    expired: list[bytes] = []
    ks.on_expired = lambda index, key: expired.append(key)
    ks.is_replica = ks.replica_writable = True
    for key in (b"a", b"b", b"persisted"):
        ks.set(db, key, b"v")
        ks.set_expire(db, key, clock.now_ms + 10)
    ks.set_expire(db, b"b", clock.now_ms + 1000)  # pushed back
    ks.persist(db, b"persisted")
    clock.advance(10)
    assert ks.active_expire_cycle(time_limit_ms=1000) == 1 and expired == [b"a"]
    assert list(ks.replica_written) == [(0, b"b")]  # the persisted key is forgotten, b is kept for later
    clock.advance(1000)
    assert ks.active_expire_cycle(time_limit_ms=1000) == 1 and expired == [b"a", b"b"]
    assert not ks.replica_written and set(db.data) == {b"persisted"}


def test_ignore_ttl_reads_expired_keys_while_the_master_stream_applies(
    ks: Keyspace, clock: FakeClock
) -> None:
    db = ks.dbs[0]
    ks.is_replica = True
    ks.set(db, b"k", b"v")
    ks.set_expire(db, b"k", clock.now_ms)
    ks.ignore_ttl = True
    assert ks.lookup(db, b"k") == b"v"
    ks.ignore_ttl = False
    assert ks.lookup(db, b"k") is None


# -- active expiry ---------------------------------------------------------------------------------------


def test_active_expiry_deletes_expired_keys_nobody_reads(ks: Keyspace, clock: FakeClock) -> None:
    db = ks.dbs[0]
    expired: list[bytes] = []
    ks.on_expired = lambda index, key: expired.append(key)
    for i in range(500):
        key = b"k%d" % i
        ks.set(db, key, b"v")
        ks.set_expire(db, key, clock.now_ms + (100 if i % 2 else 10_000))
    ks.set(db, b"forever", b"v")
    assert ks.active_expire_cycle(time_limit_ms=1000) == 0
    clock.advance(100)
    deleted = 0
    for _ in range(100):  # a few cron periods; each stops once a sample is mostly alive
        deleted += ks.active_expire_cycle(time_limit_ms=1000)
    assert deleted == 250
    assert len(db.data) == 251 and len(db.expires) == 250
    assert sorted(expired) == sorted(b"k%d" % i for i in range(1, 500, 2))
    assert ks.expired_keys == 250


def test_active_expiry_repeats_while_most_sampled_keys_are_expired(ks: Keyspace, clock: FakeClock) -> None:
    db = ks.dbs[0]
    for i in range(ACTIVE_EXPIRE_KEYS_PER_ROUND * 10):
        ks.set(db, b"k%d" % i, b"v")
        ks.set_expire(db, b"k%d" % i, clock.now_ms + 1)
    clock.advance(1)
    # Every sample is all expired, so one call keeps going until the database is clean.
    assert ks.active_expire_cycle(time_limit_ms=10_000) == ACTIVE_EXPIRE_KEYS_PER_ROUND * 10
    assert db.data == {} and db.expires == {}


def test_active_expiry_covers_every_database(ks: Keyspace, clock: FakeClock) -> None:
    for db in ks.dbs:
        ks.set(db, b"k", b"v")
        ks.set_expire(db, b"k", clock.now_ms + 5)
    clock.advance(5)
    assert ks.active_expire_cycle(time_limit_ms=1000) == len(ks.dbs)
    assert ks.total_keys() == 0


# -- watchers and hooks ----------------------------------------------------------------------------------


def test_writes_dirty_the_watchers_of_the_key(ks: Keyspace, clock: FakeClock) -> None:
    db = ks.dbs[0]
    watcher, other = Watcher(), Watcher()
    db.watched[b"k"] = {watcher}
    db.watched[b"other"] = {other}
    ks.set(db, b"k", b"v")
    assert watcher.dirty_cas and not other.dirty_cas
    watcher.dirty_cas = False
    ks.set_expire(db, b"k", clock.now_ms + 10)
    assert watcher.dirty_cas
    watcher.dirty_cas = False
    clock.advance(10)
    ks.lookup(db, b"k")  # expiring the key is a change too
    assert watcher.dirty_cas


def test_on_modified_hears_every_change(ks: Keyspace) -> None:
    db = ks.dbs[0]
    changes: list[bytes] = []
    ks.set_on_modified(lambda d, key: changes.append(key))
    ks.set(db, b"a", b"1")
    ks.add(db, b"b", b"2")
    ks.delete(db, b"a")
    ks.set_expire(db, b"b", 1)
    assert changes == [b"a", b"b", b"a", b"b"]


def test_flush_and_swap_dirty_watchers_of_existing_keys(ks: Keyspace) -> None:
    db0, db1 = ks.dbs[0], ks.dbs[1]
    present, absent = Watcher(), Watcher()
    ks.set(db0, b"k", b"v")
    db0.watched[b"k"] = {present}
    db0.watched[b"missing"] = {absent}
    assert ks.flush_db(db0) == 1
    assert present.dirty_cas and not absent.dirty_cas
    ks.set(db1, b"missing", b"now here")
    ks.swap(0, 1)
    assert absent.dirty_cas  # the key it watches exists after the swap
    assert ks.lookup(db0, b"missing") == b"now here" and ks.lookup(db1, b"missing") is None


def test_swap_moves_ttls_with_the_data(ks: Keyspace, clock: FakeClock) -> None:
    ks.set(ks.dbs[0], b"k", b"v")
    ks.set_expire(ks.dbs[0], b"k", clock.now_ms + 10)
    ks.swap(0, 2)
    assert ks.get_expire(ks.dbs[2], b"k") == clock.now_ms + 10
    clock.advance(10)
    assert ks.lookup(ks.dbs[2], b"k") is None


def test_flush_all_and_replace_all(ks: Keyspace) -> None:
    for db in ks.dbs:
        ks.set(db, b"k", b"v")
    assert ks.flush_all() == 4
    fresh = [Database(0), Database(1)]
    fresh[1].data[b"loaded"] = b"x"
    ks.replace_all(fresh)
    assert ks.lookup(ks.dbs[1], b"loaded") == b"x" and ks.total_keys() == 1


def test_type_names(ks: Keyspace) -> None:
    assert ks.type_name(b"s") == b"string"
    assert ks.type_name(deque()) == b"list"
    assert ks.type_name({}) == b"hash"
    assert ks.type_name(set()) == b"set"
    assert ks.type_name(ZSet([])) == b"zset"
    assert ks.type_name(42) == b"none"


# -- SCAN snapshots --------------------------------------------------------------------------------------


def test_scan_cursors_walk_a_snapshot_so_every_lasting_key_is_seen(ks: Keyspace) -> None:
    db = ks.dbs[0]
    for i in range(100):
        ks.set(db, b"k%d" % i, b"v")
    seen: list[bytes] = []
    snap_id, keys, position = db.scan_snapshot(0)
    seen += keys[position : position + 30]
    cursor = (snap_id << 32) | 30
    for i in range(100, 400):  # the dict grows meanwhile
        ks.set(db, b"k%d" % i, b"v")
    while True:
        snap_id, keys, position = db.scan_snapshot(cursor)
        chunk = keys[position : position + 30]
        seen += chunk
        if position + 30 >= len(keys):
            db.scan_done(snap_id)
            break
        cursor = (snap_id << 32) | (position + 30)
    assert {b"k%d" % i for i in range(100)} <= set(seen)
    assert len(seen) == 100  # the walk stayed on the snapshot taken at cursor 0


def test_an_unknown_scan_cursor_starts_a_fresh_snapshot(ks: Keyspace) -> None:
    db = ks.dbs[0]
    ks.set(db, b"a", b"1")
    snap_id, keys, position = db.scan_snapshot((999 << 32) | 5)
    assert keys == [b"a"] and position == 5 and snap_id != 999


# -- the kvstore under the keyspace: writers re-bound as TTLs come and go ------------------------------


def test_set_drops_ttls_that_arrived_by_swapdb_or_replace_all(ks: Keyspace, clock: FakeClock) -> None:
    # A database without TTLs stores SETs as a plain dict store; contents with TTLs swapped or loaded into
    # it must switch it to dropping them.
    ks.set(ks.dbs[1], b"k", b"v")
    ks.set_expire(ks.dbs[1], b"k", clock.now_ms + 10)
    ks.swap(0, 1)
    ks.set(ks.dbs[0], b"k", b"v2")
    assert ks.get_expire(ks.dbs[0], b"k") is None
    fresh = Database(2)
    fresh.merge_loaded({b"k": b"loaded"}, {b"k": clock.now_ms + 10})
    ks.replace_all([Database(0), Database(1), fresh])
    ks.set(ks.dbs[2], b"k", b"v3")
    clock.advance(100)
    assert ks.lookup(ks.dbs[2], b"k") == b"v3"


@pytest.mark.parametrize("per_slot", [False, True])
def test_random_operations_match_a_model_of_dicts(per_slot: bool, seed: int) -> None:
    import random

    rng = random.Random(seed)
    clock = FakeClock()
    ks = Keyspace(databases=3, clock=clock, per_slot=per_slot)
    # The model: per database, key -> (value, expiry ms or None); expired keys are dropped on read.
    model: list[dict[bytes, tuple[bytes, int | None]]] = [{} for _ in range(3)]

    def alive(index: int) -> dict[bytes, bytes]:
        return {k: v for k, (v, when) in model[index].items() if when is None or when > clock.now_ms}

    for step in range(4000):
        index = rng.randrange(3)
        db = ks.dbs[index]
        key = b"k%d" % rng.randrange(30)
        value = b"%d" % step
        op = rng.randrange(10)
        if op <= 2:
            keep = op == 2
            if ks.lookup(db, key) is None:  # as commands do before writing: an expired key is gone
                model[index].pop(key, None)
            ks.set(db, key, value, keep_ttl=keep)
            old = model[index].get(key)
            model[index][key] = (value, old[1] if keep and old else None)
        elif op == 3:
            ks.delete(db, key)
            model[index].pop(key, None)
        elif op == 4 and ks.lookup(db, key) is not None:
            when = clock.now_ms + rng.randrange(1, 50)
            ks.set_expire(db, key, when)
            model[index][key] = (model[index][key][0], when)
        elif op == 5 and ks.lookup(db, key) is not None:
            ks.persist(db, key)
            model[index][key] = (model[index][key][0], None)
        elif op == 6 and rng.randrange(40) == 0:
            other = rng.randrange(3)
            ks.swap(index, other)
            model[index], model[other] = model[other], model[index]
        elif op == 7 and rng.randrange(100) == 0:
            ks.flush_db(db)
            model[index] = {}
        elif op == 8:
            clock.advance(rng.randrange(5))
            if rng.randrange(10) == 0:
                ks.active_expire_cycle(1000.0)
        elif op == 9 and rng.randrange(200) == 0:
            # A reload: what is alive now, loaded into fresh databases (single mode, as the RDB loader's).
            fresh = [Database(i) for i in range(3)]
            for i in range(3):
                live = {k: (v, w) for k, (v, w) in model[i].items() if w is None or w > clock.now_ms}
                fresh[i].merge_loaded(
                    {k: v for k, (v, _) in live.items()},
                    {k: w for k, (_, w) in live.items() if w is not None},
                )
                model[i] = live
            ks.replace_all(fresh)
        for i in range(3):
            got = {k: ks.lookup(ks.dbs[i], k) for k in list(ks.dbs[i].data)}
            assert {k: v for k, v in got.items() if v is not None} == alive(i), f"step {step} db {i}"
            assert set(ks.dbs[i].expires) <= set(ks.dbs[i].data)
            if per_slot:
                for k in ks.dbs[i].data:
                    assert k in ks.dbs[i].keys_in_slot(keyslot(k), 100)
