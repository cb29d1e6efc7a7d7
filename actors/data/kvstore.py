"""The storage of one database (Valkey 8's kvstore): the ONLY code that adds, replaces or deletes keys.

A ``KvStore`` holds a database's keys and their expiry times and is the one writer of both: every command, the
fast lane, DEBUG POPULATE, the RDB loader (and its helper's runs), FLUSHDB/FLUSHALL, SWAPDB and a replica's
snapshot install reach the key data through the methods below, so later features (eviction, cluster slots,
keyspace notifications) have one place to hook into. ``tests/unit/test_kvstore.py`` scans the source tree for
writes that bypass it.

Reading stays as fast as a plain dict: ``data`` (key -> value) and ``expires`` (key -> absolute expiry in ms,
a separate dict as in Redis, so keys without a TTL cost nothing there) are plain dicts that readers may hold
and look up directly. Their identity changes only when the whole contents change (``clear``, ``swap_with``,
``replace_with``), so a reader holds them for one command (or one fast-lane run), not across commands.

Writers that must be as cheap as a dict store are instance attributes, re-bound by the store whenever what
they have to do changes: while the database has no TTL (and no slot index) ``set`` is ``operator.setitem``
bound to ``data`` (a C call, with no Python frame: measured ~18 ns over ``data[key] = value`` where
``data.__setitem__`` costs ~33 ns, as a method-wrapper has no vectorcall); once a TTL exists it becomes a
method that also drops the key's TTL. A caller may keep ``set`` in a local only while it makes no other write
to the store (the fast lane does, for a run of plain SETs); ``add`` and ``set_keep_ttl`` change only when the
whole contents do.

Cluster mode (``per_slot=True``; nothing turns it on yet): Valkey keeps 16384 per-slot dicts. Here lookups
keep ONE dict (a read in Python would otherwise pay a CRC16 and a second probe per key, and every reader of
``data`` - KEYS, SCAN, the RDB and AOF writers, DEBUG DIGEST - would have to learn about slots), and the store
keeps beside it a per-slot index of the keys (slot -> set of keys, created on first use), updated by the same
writers. Slot counts and slot key listing are then facts of the data structure (``count_in_slot``,
``keys_in_slot``), at the cost of a keyslot per added or deleted key in cluster mode only. Random sampling for
eviction (``sample``, ``random_key``) works on ``data`` and so is the same in both modes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from itertools import islice
from operator import setitem
from types import MethodType
from typing import Any

from actors.data.evict import STAMP_BITS, STAMP_MASK, AccessTracker
from actors.data.memory import EXPIRE_SLOT_BYTES, MemoryAccount, key_charge_bytes
from protocol.slots import keyslot

# A sample's draws beyond the keys asked for, before giving up on a key list full of deleted keys.
SAMPLE_EXTRA_DRAWS = 8
# What one draw of a deleted key costs from the sample key list's budget: stale lists are rebuilt sooner.
SAMPLE_STALE_DRAW_COST = 2


# The writer slots (bound methods of the store's own dicts: re-created, never pickled or copied).
_WRITERS = frozenset(("set", "set_keep_ttl", "add"))


class _KeySampler:
    """Random draws from one of the store's dicts, through a key list rebuilt once its budget is spent."""

    __slots__ = ("keys", "budget")

    def __init__(self) -> None:
        # The key list draws come from (None: not built yet, or the contents were replaced).
        self.keys: list[bytes] | None = None
        self.budget = 0

    def reset(self) -> None:
        self.keys = None

    def draw(self, source: dict[bytes, Any], count: int, rng: random.Random | None) -> list[bytes]:
        if count <= 0:
            return []
        if count >= len(source):
            return list(source)  # all of them: nothing to draw
        rand = (rng or random).random  # int(rand() * n): a C call, where randrange is three Python frames
        picked: dict[bytes, None] = {}
        rebuilt = False
        keys = self.keys
        budget = self.budget
        size = len(keys) if keys is not None else 0
        draws_left = count + SAMPLE_EXTRA_DRAWS
        found = 0
        while found < count:
            if keys is None or budget <= 0 or draws_left <= 0:
                if rebuilt:
                    break  # a fresh list and still short: the keys drawn twice were all there is to it
                keys = self.keys = list(source)
                budget = size = len(keys)
                draws_left = count * 2 + SAMPLE_EXTRA_DRAWS
                rebuilt = True
            key = keys[int(rand() * size)]
            draws_left -= 1
            if key in source:
                budget -= 1
                if key not in picked:
                    picked[key] = None
                    found += 1
            else:
                budget -= SAMPLE_STALE_DRAW_COST
        self.budget = budget
        return list(picked)


class KvStore:
    """One database's keys, values and expiry times; see the module docstring for the rules."""

    __slots__ = (
        "data",
        "expires",
        "per_slot",
        "set",
        "set_keep_ttl",
        "add",
        "_slot_keys",
        "_sampler",
        "_ttl_sampler",
        "meta",
        "used_bytes",
        "account",
        "tracker",
    )

    def __init__(self, per_slot: bool = False) -> None:
        # key -> value. Read directly by hot paths; written only by this class.
        self.data: dict[bytes, Any] = {}
        # key -> absolute expiry in ms; its keys are always a subset of data's.
        self.expires: dict[bytes, int] = {}
        # True in cluster mode: keys are also indexed by hash slot. Fixed for the store's life.
        self.per_slot = per_slot
        # slot -> keys of that slot (cluster mode only; a slot's set exists only while it has keys).
        self._slot_keys: dict[int, set[bytes]] | None = {} if per_slot else None
        # Random sampling draws from a list of the keys, rebuilt when its budget of draws is spent, so the
        # O(keys) copy is paid once per O(keys) draws; one for all keys, one for the keys with a TTL.
        self._sampler = _KeySampler()
        self._ttl_sampler = _KeySampler()
        # Access metadata (actors/data/evict.py, memory.py): key -> charge_bytes << STAMP_BITS | access stamp, kept
        # only while the node tracks memory and access (maxmemory or an eviction policy set); None otherwise,
        # and then the writers below are the plain dict stores.
        self.meta: dict[bytes, int] | None = None
        # Sum of this store's charges (keys and TTLs) while ``meta`` is kept.
        self.used_bytes = 0
        # The node-wide total the charges also go to (the Keyspace gives every store the same one).
        self.account = MemoryAccount()
        # Stamps new and accessed keys while ``meta`` is kept.
        self.tracker: AccessTracker | None = None
        # Store ``value`` under ``key``, dropping any TTL it had (SET's semantics).
        self.set: Callable[[bytes, Any], None]
        # Store ``value`` under ``key``, keeping its TTL (INCR, APPEND, SETRANGE ...).
        self.set_keep_ttl: Callable[[bytes, Any], None]
        # Store a key known not to exist (so it has no TTL): DEBUG POPULATE, commands after a failed lookup.
        self.add: Callable[[bytes, Any], None]
        self._bind_writers()

    def __len__(self) -> int:
        return len(self.data)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle and copy support: every slot but the writers, which are bound again on the way back."""
        names = (name for cls in type(self).__mro__ for name in getattr(cls, "__slots__", ()))
        return {name: getattr(self, name) for name in names if name not in _WRITERS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
        self._bind_writers()

    def _bind_writers(self) -> None:
        """Point ``set``/``set_keep_ttl``/``add`` at the cheapest code that is right for the current state.

        Called whenever ``data``/``expires`` are replaced or ``expires`` turns empty or non-empty.
        """
        if self.meta is not None:
            self.set = self._set_tracked
            self.set_keep_ttl = self.add = self._set_keep_ttl_tracked
            return
        if self._slot_keys is not None:
            self.set = self._set_indexed
            self.set_keep_ttl = self.add = self._set_keep_ttl_indexed
            return
        store = MethodType(setitem, self.data)  # store(key, value) is setitem(data, key, value), all in C
        self.set = self._set_dropping_ttl if self.expires else store
        self.set_keep_ttl = self.add = store

    def set_run(self, commands: list[list[bytes]], start: int, stop: int) -> None:
        """``set(key, value)`` for each ``[name, key, value]`` of ``commands[start:stop]``: the fast lane's run of
        plain SETs (actors/loop/fastlane.py) stored in one loop. While the database has no TTL, no slot index and no
        maxmemory bookkeeping (``meta``), each store is a dict assignment in this frame, which costs a call less per SET than ``set`` (measured:
        ~490 fewer instructions per pipelined SET, the whole regression of SET -P 16 after the restructure)."""
        if self.meta is None and self._slot_keys is None and not self.expires:
            data = self.data
            for _, key, value in commands[start:stop]:
                data[key] = value
            return
        slot_keys = self._slot_keys
        if self.meta is None and slot_keys is not None and not self.expires:
            # Cluster mode: ``_set_indexed`` inlined (a new key joins its slot's set), two calls less per SET.
            data = self.data
            for _, key, value in commands[start:stop]:
                if key not in data:
                    slot = keyslot(key)
                    keys = slot_keys.get(slot)
                    if keys is None:
                        slot_keys[slot] = {key}
                    else:
                        keys.add(key)
                data[key] = value
            return
        for _, key, value in commands[start:stop]:
            self.set(key, value)  # read each time: dropping the last TTL re-binds it

    # -- single keys -------------------------------------------------------------------------------------

    def set_pairs(self, argv: list[bytes], start: int) -> None:
        """``set(key, value)`` for each key, value pair of ``argv[start:]``, in order (MSET). While the database
        has no TTL, no slot index and no ``meta``, the pairs go into ``data`` in one ``dict.update`` over a zip
        of one iterator with itself, all in C (measured: ~1,500 fewer instructions on a 10-key MSET than a
        ``set`` call per key from a Python loop)."""
        if self.meta is None and self._slot_keys is None and not self.expires:
            args = islice(argv, start, None)
            self.data.update(zip(args, args))  # noqa: B905 (the caller checked the count is even)
            return
        for i in range(start, len(argv) - 1, 2):
            self.set(argv[i], argv[i + 1])  # read each time: dropping the last TTL re-binds it

    def _set_dropping_ttl(self, key: bytes, value: Any) -> None:
        self.data[key] = value
        expires = self.expires
        if expires.pop(key, None) is not None and not expires:
            self._bind_writers()  # the last TTL went: plain stores again

    def _set_indexed(self, key: bytes, value: Any) -> None:
        data = self.data
        if key not in data:
            self._index_add(key)
        data[key] = value
        if self.expires:
            self.expires.pop(key, None)

    def _set_keep_ttl_indexed(self, key: bytes, value: Any) -> None:
        data = self.data
        if key not in data:
            self._index_add(key)
        data[key] = value

    # -- tracked writers (while ``meta`` is kept) ----------------------------------------------------------

    def _set_tracked(self, key: bytes, value: Any) -> None:
        data = self.data
        if self._slot_keys is not None and key not in data:
            self._index_add(key)
        data[key] = value
        expires = self.expires
        if expires and expires.pop(key, None) is not None:
            self._charge_delta(-EXPIRE_SLOT_BYTES)
        self.recharge(key, True)

    def _set_keep_ttl_tracked(self, key: bytes, value: Any) -> None:
        data = self.data
        if self._slot_keys is not None and key not in data:
            self._index_add(key)
        data[key] = value
        self.recharge(key, True)

    def _charge_delta(self, delta: int) -> None:
        self.used_bytes += delta
        self.account.dataset_bytes += delta

    def recharge(self, key: bytes, accessed: bool = False) -> None:
        """Charge ``key`` for what its value costs now (after a write, or a change in place). A new key gets
        a fresh access stamp; an existing one is stamped as accessed when a value was stored (``accessed``:
        Redis's SET looks the key up for writing first), else keeps its stamp (a change in place follows a
        lookup, which stamped it)."""
        meta = self.meta
        if meta is None:
            return
        value = self.data.get(key)
        if value is None:
            return
        charge = key_charge_bytes(key, value)
        old = meta.get(key)
        if old is None:
            assert self.tracker is not None
            meta[key] = charge << STAMP_BITS | self.tracker.new_stamp()
            self._charge_delta(charge)
        else:
            stamp = old & STAMP_MASK
            if accessed:
                assert self.tracker is not None
                stamp = self.tracker.touched(stamp)
            meta[key] = charge << STAMP_BITS | stamp
            self._charge_delta(charge - (old >> STAMP_BITS))

    def set_access_stamp(self, key: bytes, stamp: int) -> None:
        """RESTORE's IDLETIME / FREQ (objectSetLRUOrLFU): the key's access stamp as given, while kept."""
        meta = self.meta
        if meta is None:
            return
        old = meta.get(key)
        if old is not None:
            meta[key] = (old & ~STAMP_MASK) | (stamp & STAMP_MASK)

    def note_access(self, key: bytes) -> None:
        """A read or write looked ``key`` up: its access stamp moves (LRU clock, LFU counter)."""
        meta = self.meta
        assert meta is not None and self.tracker is not None
        old = meta.get(key)
        if old is not None:
            meta[key] = (old & ~STAMP_MASK) | self.tracker.touched(old & STAMP_MASK)

    def start_tracking(self, tracker: AccessTracker, account: MemoryAccount) -> None:
        """Keep charges and access stamps from now on: every key is charged once (O(keys)) and stamped
        as new (Redis's objects carry a stamp from birth; ours start when tracking does)."""
        self.tracker = tracker
        self.account = account
        self._rebuild_meta()

    def stop_tracking(self) -> None:
        if self.meta is not None:
            self._charge_delta(-self.used_bytes)
        self.meta = None
        self.used_bytes = 0
        self._bind_writers()

    def _rebuild_meta(self) -> None:
        """Charge every key afresh (tracking started, or the contents were replaced wholesale)."""
        if self.tracker is None:
            return
        old_meta = self.meta or {}
        self.account.dataset_bytes -= self.used_bytes
        stamp = self.tracker.new_stamp()
        meta: dict[bytes, int] = {}
        total = len(self.expires) * EXPIRE_SLOT_BYTES
        for key, value in self.data.items():
            charge = key_charge_bytes(key, value)
            old = old_meta.get(key)
            meta[key] = charge << STAMP_BITS | (stamp if old is None else old & STAMP_MASK)
            total += charge
        self.meta = meta
        self.used_bytes = total
        self.account.dataset_bytes += total
        self._bind_writers()

    def delete(self, key: bytes) -> bool:
        """Remove ``key`` and its TTL. Returns whether it existed."""
        if self.data.pop(key, None) is None:
            return False
        meta = self.meta
        if meta is not None:
            old = meta.pop(key, None)
            if old is not None:
                self._charge_delta(-(old >> STAMP_BITS))
        expires = self.expires
        if expires and expires.pop(key, None) is not None:
            if meta is not None:
                self._charge_delta(-EXPIRE_SLOT_BYTES)
            if not expires:
                self._bind_writers()
        if self._slot_keys is not None:
            self._index_remove(key)
        return True

    def set_expire(self, key: bytes, when_ms: int) -> None:
        """Give the existing ``key`` an absolute expiry time (ms since the epoch)."""
        expires = self.expires
        had_ttls = bool(expires)
        if self.meta is not None and key not in expires:
            self._charge_delta(EXPIRE_SLOT_BYTES)
        expires[key] = when_ms
        if not had_ttls:
            self._bind_writers()  # SET must now drop TTLs

    def persist(self, key: bytes) -> bool:
        """Drop ``key``'s TTL. Returns whether it had one."""
        expires = self.expires
        if expires.pop(key, None) is None:
            return False
        if self.meta is not None:
            self._charge_delta(-EXPIRE_SLOT_BYTES)
        if not expires:
            self._bind_writers()
        return True

    # -- whole contents ----------------------------------------------------------------------------------

    def clear(self) -> int:
        """Drop every key (FLUSHDB). Returns how many there were.

        New dicts, not ``dict.clear()``: a forked snapshot child or a reader holding the old ones keeps them.
        """
        removed = len(self.data)
        self._adopt({}, {})
        return removed

    def swap_with(self, other: KvStore) -> None:
        """Exchange the whole contents with ``other`` (SWAPDB). Both must be in the same mode."""
        if self.per_slot != other.per_slot:
            raise ValueError("cannot swap the contents of stores in different modes")
        self.data, other.data = other.data, self.data
        self.expires, other.expires = other.expires, self.expires
        self._slot_keys, other._slot_keys = other._slot_keys, self._slot_keys
        # The charges go with the contents (both stores share the node-wide account, so its total holds).
        self.meta, other.meta = other.meta, self.meta
        self.used_bytes, other.used_bytes = other.used_bytes, self.used_bytes
        for store in (self, other):
            store._sampler.reset()
            store._ttl_sampler.reset()
            store._bind_writers()

    def replace_with(self, other: KvStore) -> None:
        """Take over ``other``'s contents (RDB load, a replica's snapshot install), without a copy.

        ``other`` is a loader's throwaway result: it may still be read (the replication actor counts its keys
        for a log line after handing it to the loop), but must not be written again, as it shares the dicts.
        """
        self._adopt(other.data, other.expires, other._slot_keys if self.per_slot else None)

    def merge_loaded(self, data: dict[bytes, Any], expires: dict[bytes, int]) -> None:
        """Bulk load: add ``data`` (with the TTLs in ``expires``), replacing keys that exist.

        Takes ownership of both dicts (the RDB loader's per-database dicts, the load helper's runs merged
        in): into an empty store they are adopted as they are, with no copy, which is why loading a file
        costs no more than filling one dict.
        """
        if not self.data and not self.expires:
            self._adopt(data, expires)
            return
        self.data.update(data)
        if expires:
            self.expires.update(expires)
        if self._slot_keys is not None:
            for key in data:
                self._index_add(key)
        self._sampler.reset()
        self._ttl_sampler.reset()
        if self.meta is not None:
            self._rebuild_meta()
        self._bind_writers()

    def _adopt(
        self,
        data: dict[bytes, Any],
        expires: dict[bytes, int],
        slot_keys: dict[int, set[bytes]] | None = None,
    ) -> None:
        """Make ``data``/``expires`` the contents (the slot index given, or rebuilt in cluster mode)."""
        self.data, self.expires = data, expires
        self._sampler.reset()
        self._ttl_sampler.reset()
        if self.meta is not None:
            self.meta = {}
            self._rebuild_meta()
        if self.per_slot:
            if slot_keys is None:
                self._slot_keys = {}
                for key in data:
                    self._index_add(key)
            else:
                self._slot_keys = slot_keys
        self._bind_writers()

    # -- cluster slots -----------------------------------------------------------------------------------

    def _index_add(self, key: bytes) -> None:
        slot_keys = self._slot_keys
        assert slot_keys is not None
        slot = keyslot(key)
        keys = slot_keys.get(slot)
        if keys is None:
            slot_keys[slot] = {key}
        else:
            keys.add(key)

    def _index_remove(self, key: bytes) -> None:
        slot_keys = self._slot_keys
        assert slot_keys is not None
        slot = keyslot(key)
        keys = slot_keys.get(slot)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del slot_keys[slot]

    def count_in_slot(self, slot: int) -> int:
        """Keys in hash ``slot`` (CLUSTER COUNTKEYSINSLOT). O(1) in cluster mode, a scan otherwise."""
        if self._slot_keys is not None:
            keys = self._slot_keys.get(slot)
            return len(keys) if keys is not None else 0
        return sum(1 for key in self.data if keyslot(key) == slot)

    def keys_in_slot(self, slot: int, count: int) -> list[bytes]:
        """Up to ``count`` keys of hash ``slot`` (CLUSTER GETKEYSINSLOT), in no particular order."""
        if count <= 0:
            return []
        if self._slot_keys is not None:
            return list(islice(self._slot_keys.get(slot, ()), count))
        return list(islice((key for key in self.data if keyslot(key) == slot), count))

    def slots_in_use(self) -> Iterable[int]:
        """The slots that hold at least one key (cluster mode: a view of the index; else computed)."""
        if self._slot_keys is not None:
            return self._slot_keys.keys()
        return sorted({keyslot(key) for key in self.data})

    # -- random sampling (eviction, RANDOMKEY) -----------------------------------------------------------

    def sample(self, count: int, rng: random.Random | None = None) -> list[bytes]:
        """Up to ``count`` distinct existing keys drawn at random (maxmemory eviction's sample); all of them
        when there are no more than ``count``.

        Draws come from a list of the keys taken earlier, rebuilt once as many draws as it has keys were
        made (deleted keys cost more), so the copy is O(1) per draw amortised. Keys added after the list was
        built are not drawn until it is rebuilt, as Redis's sampling is also only approximately uniform.
        """
        return self._sampler.draw(self.data, count, rng)

    def sample_expiring(self, count: int, rng: random.Random | None = None) -> list[bytes]:
        """``sample`` among the keys with a TTL (the volatile-* policies)."""
        return self._ttl_sampler.draw(self.expires, count, rng)

    def random_key(self, rng: random.Random | None = None) -> bytes | None:
        """One existing key at random, or None when the store is empty."""
        keys = self.sample(1, rng)
        return keys[0] if keys else None
