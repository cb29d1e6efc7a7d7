"""Eviction's data side: the policies, the per-key access stamps (LRU clock, LFU counter) and victim selection.

Redis keeps 24 bits of access data in every object (``robj.lru``): for the LRU policies a clock in seconds, for
the LFU ones 16 bits of "last decrement time" in minutes and an 8-bit logarithmic access counter. Here the
stamp lives in the store's access-metadata dict (``KvStore.meta``: key -> charge << STAMP_BITS | stamp, beside
the key's memory charge, see actors/data/memory.py), kept only while the node needs them, and this module
computes it as Redis's evict.c does (``LFULogIncr``, ``LFUDecrAndReturn``, ``estimateObjectIdleTime``), with
one deliberate difference: the LRU clock counts milliseconds in 40 bits (wrapping after ~35 years) where
Redis counts seconds in 24, since a Python int has the room. With a 1 s clock every key written or read in the
same second looks equally old, and a hot set read between bursts of writes loses to the burst.

Victims are chosen as Redis 7.0 chooses them: the LRU, LFU and TTL policies sample ``maxmemory-samples`` keys
per database (all keys, or the keys with a TTL for the volatile-* ones) into a 16-entry eviction pool ordered by
"idle" score, and evict the best entry whose key still exists; the random ones take a random key, the
databases visited in turn. Only plain data here: the dispatcher side (when to evict, DEL propagation, the OOM
error, slices) is actors/server/maxmemory.py.
"""

from __future__ import annotations

import random
import time
from bisect import insort
from collections.abc import Callable, Sequence
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.data.kvstore import KvStore

# The LRU clock: milliseconds, in 40 bits (Redis: seconds in 24; see the module docstring). The LFU stamp
# (16 bits of minutes, 8 of counter) fits in the same field.
STAMP_BITS = 40
LRU_CLOCK_MAX = (1 << STAMP_BITS) - 1
STAMP_MASK = LRU_CLOCK_MAX
# A new key's LFU counter (LFU_INIT_VAL): new keys are not evicted before they had a chance to be read.
LFU_INIT_VAL = 5
# The LFU stamp's "last decrement time": minutes, in 16 bits.
LFU_MINUTES_MASK = 65535
# EVPOOL_SIZE: the best candidates kept between eviction rounds.
EVICTION_POOL_SIZE = 16


class Policy(Enum):
    NOEVICTION = "noeviction"  # refuse denyoom commands past maxmemory, evict nothing
    ALLKEYS_LRU = "allkeys-lru"  # least recently used among all keys
    VOLATILE_LRU = "volatile-lru"  # least recently used among keys with a TTL
    ALLKEYS_LFU = "allkeys-lfu"  # least frequently used among all keys
    VOLATILE_LFU = "volatile-lfu"  # least frequently used among keys with a TTL
    ALLKEYS_RANDOM = "allkeys-random"  # any key
    VOLATILE_RANDOM = "volatile-random"  # any key with a TTL
    VOLATILE_TTL = "volatile-ttl"  # the key with the nearest expiry time

    @property
    def is_lfu(self) -> bool:
        return self in (Policy.ALLKEYS_LFU, Policy.VOLATILE_LFU)

    @property
    def volatile(self) -> bool:
        return self.value.startswith("volatile-")

    @property
    def random(self) -> bool:
        return self in (Policy.ALLKEYS_RANDOM, Policy.VOLATILE_RANDOM)


def lru_clock() -> int:
    return time.time_ns() // 1_000_000 & LRU_CLOCK_MAX


def lfu_minutes() -> int:
    return (int(time.time()) // 60) & LFU_MINUTES_MASK


def lfu_log_incr(counter: int, log_factor: int, rng: Callable[[], float] = random.random) -> int:
    """LFULogIncr: the counter grows with probability 1 / ((counter - LFU_INIT_VAL) * factor + 1)."""
    if counter == 255:
        return 255
    base = max(counter - LFU_INIT_VAL, 0)
    if rng() < 1.0 / (base * log_factor + 1):
        counter += 1
    return counter


def lfu_decayed(stamp: int, decay_time_min: int) -> int:
    """LFUDecrAndReturn: the counter less one per ``decay_time_min`` minutes since its last decrement."""
    counter = stamp & 255
    if not decay_time_min:
        return counter
    last = stamp >> 8
    now = lfu_minutes()
    elapsed = now - last if now >= last else LFU_MINUTES_MASK - last + now
    periods = elapsed // decay_time_min
    return max(counter - periods, 0)


def lru_idle_ms(stamp: int) -> int:
    """estimateObjectIdleTime: milliseconds since the stamp, across the clock's wrap."""
    now = lru_clock()
    if now >= stamp:
        return now - stamp
    return now + (LRU_CLOCK_MAX - stamp)


def restored_stamp(lfu: bool, idle_s: int, freq: int) -> int | None:
    """objectSetLRUOrLFU: the stamp RESTORE's FREQ (under an LFU policy) or IDLETIME (under the others) asks
    for, or None when the option that counts for the policy was not given."""
    if lfu:
        return lfu_minutes() << 8 | freq if freq >= 0 else None
    if idle_s < 0:
        return None
    now = lru_clock()
    stamp = now - idle_s * 1000
    if stamp < 0:  # before the clock's start: half-way round the wrapping clock, so it stays old (as Redis)
        stamp = (now + LRU_CLOCK_MAX // 2) % LRU_CLOCK_MAX
    return stamp


class AccessTracker:
    """Stamps keys on creation and access for the current policy (shared by every database of a node)."""

    __slots__ = ("lfu", "log_factor", "decay_time_min")

    def __init__(self, lfu: bool = False, log_factor: int = 10, decay_time_min: int = 1) -> None:
        # True under an LFU policy: stamps are minutes << 8 | counter; else LRU clock seconds.
        self.lfu = lfu
        self.log_factor = log_factor
        self.decay_time_min = decay_time_min

    def new_stamp(self) -> int:
        if self.lfu:
            return lfu_minutes() << 8 | LFU_INIT_VAL
        return lru_clock()

    def touched(self, stamp: int) -> int:
        """The stamp after one more access (Redis's updateLFU, or the LRU clock now)."""
        if self.lfu:
            counter = lfu_log_incr(lfu_decayed(stamp, self.decay_time_min), self.log_factor)
            return lfu_minutes() << 8 | counter
        return lru_clock()


class EvictionPool:
    """Redis's eviction pool: the best candidates seen, ascending by idle score (best last)."""

    def __init__(self, policy: Policy, tracker: AccessTracker, samples: int) -> None:
        self.policy = policy
        self.tracker = tracker
        self.samples = samples
        # (idle score, db index, key), ascending; at most EVICTION_POOL_SIZE entries.
        self.entries: list[tuple[int, int, bytes]] = []
        # The random policies visit the databases in turn (Redis's static next_db).
        self._next_db = 0

    def _populate(self, db_index: int, store: KvStore) -> None:
        """evictionPoolPopulate: score a sample of ``store``'s keys into the pool (higher: evict sooner)."""
        policy = self.policy
        if policy.volatile:
            keys = store.sample_expiring(self.samples)
        else:
            keys = store.sample(self.samples)
        if policy is Policy.VOLATILE_TTL:
            expires = store.expires
            scored = [((1 << 64) - expires[key], key) for key in keys]  # nearest expiry = highest score
        else:
            meta = store.meta or {}
            stamps = [(meta.get(key, 0) & STAMP_MASK, key) for key in keys]
            if policy.is_lfu:
                decay = self.tracker.decay_time_min
                scored = [(255 - lfu_decayed(stamp, decay), key) for stamp, key in stamps]
            else:
                now = lru_clock()
                scored = [
                    (now - stamp if now >= stamp else now + LRU_CLOCK_MAX - stamp, key)
                    for stamp, key in stamps
                ]
        entries = self.entries
        for score, key in scored:
            if len(entries) >= EVICTION_POOL_SIZE and score <= entries[0][0]:
                continue  # no better than the worst of a full pool
            entry = (score, db_index, key)
            if entry in entries:
                continue
            insort(entries, entry)
            if len(entries) > EVICTION_POOL_SIZE:
                del entries[0]

    def select(self, stores: Sequence[KvStore]) -> tuple[int, bytes] | None:
        """The (db index, key) to evict next, or None when no key qualifies (EVICT_FAIL)."""
        policy = self.policy
        volatile = policy.volatile
        if policy.random:
            count = len(stores)
            for _ in range(count):
                index = self._next_db
                self._next_db = (index + 1) % count
                store = stores[index]
                keys = store.sample_expiring(1) if volatile else store.sample(1)
                if keys:
                    return index, keys[0]
            return None
        while True:
            any_keys = False
            for index, store in enumerate(stores):
                if store.expires if volatile else store.data:
                    any_keys = True
                    self._populate(index, store)
            if not any_keys:
                return None
            entries = self.entries
            while entries:
                _score, index, key = entries.pop()
                store = stores[index]
                if key in (store.expires if volatile else store.data):
                    return index, key
            # Every pooled key was gone (deleted meanwhile): sample again, as Redis's loop does.

    def forget(self) -> None:
        """The policy, samples or dataset changed wholesale: start from an empty pool."""
        self.entries.clear()
