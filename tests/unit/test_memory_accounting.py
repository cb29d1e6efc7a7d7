"""Memory accounting and victim selection (actors/data/memory.py, evict.py) on a Keyspace in process.

The running total is checked against tracemalloc (what the process's heap really grew by) for strings of
several sizes, with and without TTLs; against a recount from scratch after seeded random writes of every
type (so no write point is missed); and the eviction pool and LFU counter against Redis's definitions.
"""

from __future__ import annotations

import gc
import random
import sys
import tracemalloc
from collections import deque

import pytest

from actors.data.evict import (
    LFU_INIT_VAL,
    STAMP_BITS,
    STAMP_MASK,
    AccessTracker,
    EvictionPool,
    Policy,
    lfu_log_incr,
)
from actors.data.keyspace import Keyspace
from actors.data.memory import EXPIRE_SLOT_BYTES, estimate_dataset_bytes, key_charge_bytes
from actors.data.types import ZSet


def tracked_keyspace() -> Keyspace:
    keyspace = Keyspace(4)
    keyspace.start_tracking(AccessTracker())
    return keyspace


def recount(keyspace: Keyspace) -> int:
    """The total from scratch: what the running total must equal."""
    total = 0
    for db in keyspace.dbs:
        total += sum(key_charge_bytes(key, value) for key, value in db.data.items())
        total += len(db.expires) * EXPIRE_SLOT_BYTES
    return total


@pytest.mark.parametrize("value_bytes,count", [(3, 100_000), (100, 50_000), (1000, 20_000), (5000, 4_000)])
@pytest.mark.parametrize("with_ttl", [False, True])
def test_the_running_total_follows_the_heap_within_ten_percent(
    value_bytes: int, count: int, with_ttl: bool
) -> None:
    keyspace = tracked_keyspace()
    db = keyspace.dbs[0]
    keys = [b"key:%d" % i for i in range(count)]
    values = [b"%0*d" % (value_bytes, i) for i in range(count)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for key, value in zip(keys, values, strict=True):
            keyspace.set(db, key, value)
            if with_ttl:
                keyspace.set_expire(db, key, 10**13)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # The key and value objects were made before tracing started: add what they take.
    heap = grown + sum(map(sys.getsizeof, keys)) + sum(map(sys.getsizeof, values))
    estimate = keyspace.account.dataset_bytes
    print(
        f"{value_bytes} B values, ttl={with_ttl}: estimate {estimate}, heap {heap}, ratio {estimate / heap:.3f}"
    )
    assert 0.9 <= estimate / heap <= 1.1


def test_every_write_point_keeps_the_total_equal_to_a_recount(seed: int) -> None:
    rng = random.Random(seed)
    keyspace = tracked_keyspace()
    for _ in range(5000):
        db = keyspace.dbs[rng.randrange(2)]
        key = b"k%d" % rng.randrange(200)
        op = rng.randrange(9)
        if op == 0:
            keyspace.set(db, key, rng.randbytes(rng.randrange(1, 2000)))
        elif op == 1:
            keyspace.delete(db, key)
        elif op == 2 and key in db.data:
            keyspace.set_expire(db, key, 10**13)
        elif op == 3:
            keyspace.persist(db, key)
        elif op == 4:
            value = keyspace.lookup(db, key)
            if value is None:
                keyspace.add(db, key, deque([b"x" * rng.randrange(100)]))
            elif type(value) is deque:
                value.append(b"y" * rng.randrange(100))  # in place, then signalled as the commands do
                keyspace.touch(db, key)
        elif op == 5:
            value = keyspace.lookup(db, key)
            if value is None:
                keyspace.add(db, key, {b"f": b"v"})
            elif type(value) is dict:
                value[b"f%d" % rng.randrange(50)] = b"v" * rng.randrange(300)
                keyspace.touch(db, key)
        elif op == 6 and rng.random() < 0.05:
            keyspace.swap(0, 1)
        elif op == 7 and rng.random() < 0.02:
            keyspace.flush_db(db)
        elif op == 8:
            keyspace.set(db, key, ZSet([(b"m%d" % i, float(i)) for i in range(rng.randrange(1, 20))]))
    assert keyspace.account.dataset_bytes == recount(keyspace)
    assert sum(db.used_bytes for db in keyspace.dbs) == keyspace.account.dataset_bytes


def test_tracking_stops_and_starts_again_with_the_same_total() -> None:
    keyspace = Keyspace(2)
    db = keyspace.dbs[0]
    for i in range(1000):
        keyspace.set(db, b"k%d" % i, b"v" * i)
    untracked = estimate_dataset_bytes(list(keyspace.dbs))  # a sample, scaled
    keyspace.start_tracking(AccessTracker())
    assert db.set != db.data.__setitem__  # the writers now charge
    exact = keyspace.account.dataset_bytes
    assert exact == recount(keyspace)
    assert 0.7 < untracked / exact < 1.3
    keyspace.stop_tracking()
    assert db.meta is None and keyspace.account.dataset_bytes == 0


def test_the_lru_pool_evicts_the_least_recently_used_keys_first(seed: int) -> None:
    clock = [1_000_000]
    keyspace = tracked_keyspace()
    db = keyspace.dbs[0]
    for i in range(100):
        keyspace.set(db, b"k%d" % i, b"v")
        assert db.meta is not None
        db.meta[b"k%d" % i] = (db.meta[b"k%d" % i] & ~STAMP_MASK) | clock[0] + i  # k0 is the oldest
    pool = EvictionPool(Policy.ALLKEYS_LRU, AccessTracker(), 10)
    order = []
    for _ in range(30):
        victim = pool.select(keyspace.dbs)
        assert victim is not None
        order.append(int(victim[1][1:]))
        keyspace.delete(db, victim[1])
    # Sampling is approximate (as Redis's): the evicted are mostly among the oldest, never the newest.
    assert sum(1 for i in order if i < 50) >= 25, order
    assert max(order) < 90


def test_volatile_pools_choose_only_keys_with_a_ttl_and_fail_without_them() -> None:
    keyspace = tracked_keyspace()
    db = keyspace.dbs[0]
    keyspace.set(db, b"forever", b"v")
    for policy in (Policy.VOLATILE_LRU, Policy.VOLATILE_LFU, Policy.VOLATILE_RANDOM, Policy.VOLATILE_TTL):
        assert EvictionPool(policy, AccessTracker(), 5).select(keyspace.dbs) is None
    keyspace.set(db, b"soon", b"v")
    keyspace.set_expire(db, b"soon", 100)
    keyspace.set(db, b"late", b"v")
    keyspace.set_expire(db, b"late", 200)
    assert EvictionPool(Policy.VOLATILE_TTL, AccessTracker(), 5).select(keyspace.dbs) == (0, b"soon")


def test_the_lfu_counter_grows_logarithmically_as_redis_s() -> None:
    rng = random.Random(7).random
    counter = LFU_INIT_VAL
    at: dict[int, int] = {}
    for hit in range(1, 1_000_001):
        counter = lfu_log_incr(counter, 10, rng)
        if hit in (100, 1000, 100_000, 1_000_000):
            at[hit] = counter
    # redis.conf's table for lfu-log-factor 10: 100 hits -> 10, 1K -> 18, 100K -> 142, 1M -> 255.
    # (one seeded run: the counter is random, so the bounds leave room around the table)
    assert 7 <= at[100] <= 13 and 14 <= at[1000] <= 25 and 125 <= at[100_000] <= 160 and at[1_000_000] == 255
    stamp_lfu = AccessTracker(lfu=True).new_stamp()
    assert stamp_lfu & 255 == LFU_INIT_VAL and stamp_lfu < 1 << STAMP_BITS
