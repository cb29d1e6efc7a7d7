"""The keyspace: databases of keys, their values and their expiry times. Plain data, no I/O, no threads.

A ``Database`` is a ``KvStore`` (actors/data/kvstore.py: the storage, and the only writer of ``data`` and
``expires``) plus what belongs to a database number rather than to its contents: WATCHers, the SCAN snapshots
and the active-expiry cursor. ``Keyspace`` adds the rules around every write: WATCH and blocked clients are
told (``touch``), expired keys are deleted lazily and actively.

Only the master actor's event-loop thread touches a Keyspace. Values are plain Python objects chosen so that
reading them is cheap (for a forked snapshot child too) and the type of a key is one ``type()`` check:

    bytes                 string
    collections.deque     list   (of bytes)
    dict                  hash   (bytes -> bytes)
    set                   set    (of bytes)
    actors.data.types.ZSet     sorted set

Time comes from an injectable ``clock`` (milliseconds since the epoch), so tests move time instead of sleeping.
Expiry is lazy (a key past its time is deleted when touched) and active (``active_expire_cycle`` samples keys
with a TTL, as Redis's ``activeExpireCycle`` does). A replica never deletes keys itself: it reports expired
keys as missing and waits for the master's DEL.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from actors.data import events
from actors.data.evict import AccessTracker
from actors.data.kvstore import KvStore
from actors.data.memory import MemoryAccount
from actors.data.stream import Stream
from actors.data.types import ZSet


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


# Active expiry: keys sampled per database per round, and the share of expired keys in a sample above which
# another round runs at once (Redis: ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP = 20, ACCEPTABLE_STALE = 10%).
ACTIVE_EXPIRE_KEYS_PER_ROUND = 20
ACTIVE_EXPIRE_REPEAT_RATIO = 0.1
# A writable replica's own keys with a TTL checked per cron tick (Redis's expireSlaveKeys runs for ~1 ms).
REPLICA_EXPIRE_KEYS_PER_CYCLE = 1000
# How many SCAN snapshots a database keeps: SCAN walks a snapshot of the key list taken at cursor 0, so keys
# present for the whole walk are returned at least once however the dict is resized meanwhile.
SCAN_SNAPSHOTS_KEPT = 32

TYPE_NAMES: dict[type, bytes] = {bytes: b"string", deque: b"list", dict: b"hash", set: b"set", ZSet: b"zset"}
TYPE_NAMES[Stream] = b"stream"
# The "new key" event class, as a module constant: Keyspace.set tests it on every call.
_NEW = events.NEW


class Database(KvStore):
    """One numbered database: its keys and their expiry times (the KvStore), and who watches which key."""

    __slots__ = ("id", "watched", "_expire_cursor", "_scan_snapshots", "_next_scan_id", "avg_ttl_ms")

    def __init__(self, index: int, per_slot: bool = False) -> None:
        super().__init__(per_slot)
        self.id = index
        # key -> clients that WATCH it; each watcher has a ``dirty_cas`` flag that a write sets.
        self.watched: dict[bytes, set[Any]] = {}
        # Active expiry walks a snapshot of the expires keys, ACTIVE_EXPIRE_KEYS_PER_ROUND at a time.
        self._expire_cursor: Iterator[bytes] = iter(())
        # SCAN: snapshot id -> key list; ids grow so an old cursor never reads a newer snapshot.
        self._scan_snapshots: dict[int, list[bytes]] = {}
        self._next_scan_id = 1
        # INFO keyspace's avg_ttl: a running average of the TTLs active expiry samples (Redis's db->avg_ttl).
        self.avg_ttl_ms = 0

    def forget_cursors(self) -> None:
        """The contents were replaced: active expiry and SCAN start over on the new ones."""
        self._expire_cursor = iter(())
        self._scan_snapshots.clear()

    def scan_snapshot(self, cursor: int) -> tuple[int, list[bytes], int]:
        """Resolve a SCAN cursor into (snapshot id, key list, position). Cursor = id << 32 | position."""
        snap_id, position = cursor >> 32, cursor & 0xFFFFFFFF
        keys = self._scan_snapshots.get(snap_id) if cursor else None
        if keys is None:
            snap_id = self._next_scan_id
            self._next_scan_id += 1
            keys = list(self.data)
            self._scan_snapshots[snap_id] = keys
            while len(self._scan_snapshots) > SCAN_SNAPSHOTS_KEPT:
                del self._scan_snapshots[next(iter(self._scan_snapshots))]
            if cursor == 0:
                position = 0
        return snap_id, keys, position

    def scan_done(self, snap_id: int) -> None:
        self._scan_snapshots.pop(snap_id, None)


class Keyspace:
    """All databases of a node, with expiry and the counters INFO reports."""

    def __init__(
        self, databases: int = 16, clock: Callable[[], int] = wall_clock_ms, per_slot: bool = False
    ) -> None:
        # per_slot: cluster mode's per-slot key index (see actors/data/kvstore.py); nothing sets it yet.
        self.dbs = [Database(i, per_slot) for i in range(databases)]
        # The running total of the key charges (actors/data/memory.py), while access tracking is on.
        self.account = MemoryAccount()
        for db in self.dbs:
            db.account = self.account
        # Set while keys carry access stamps and memory charges (maxmemory or an eviction policy is set).
        self.tracker: AccessTracker | None = None
        self.clock = clock
        # The clock a key's expiry is judged by: ``clock``, except while a script runs, when it is frozen at
        # the script's start (Redis 7.0's scriptTimeSnapshot in keyIsExpired: no key expires mid-script; TTLs
        # are still set and read against the real clock). Swapped by actors/scripting/engine.py.
        self.expiry_clock = clock
        # Writes since the last successful save: drives save points and rdb_changes_since_last_save.
        self.dirty = 0
        # True on a replica: expired keys read as missing but stay until the master's DEL arrives.
        self.is_replica = False
        # True while applying the master's stream on a replica: TTLs are not consulted at all.
        self.ignore_ttl = False
        # A writable replica's keys that its own clients gave a TTL, as (db index, key), oldest first: the master
        # never sends their DELs, so the replica expires them itself (Redis's slaveKeysWithExpire).
        self.replica_written: dict[tuple[int, bytes], None] = {}
        # True on a replica that takes its clients' writes (replica-read-only no): a write that meets an expired
        # key deletes it first, as Redis's lookupKeyWrite does there (reads still only hide it).
        self.replica_writable = False
        # Called with (db index, key) when this node deletes a key because its time passed; the master
        # actor propagates a DEL to the AOF and the replicas.
        self.on_expired: Callable[[int, bytes], None] = lambda db, key: None
        # Called with (db, key) whenever a key's value or existence changes (blocked clients). Set through
        # set_on_modified, which keeps ``hooked``.
        self.on_modified: Callable[[Database, bytes], None] | None = None
        # Client-side caching's invalidation (actors/server/tracking.py), set only while a client tracks keys,
        # through set_on_invalidate.
        self.on_invalidate: Callable[[Database, bytes], None] | None = None
        # True while either hook above is set: one test for the writers that skip ``touch`` when nobody
        # listens (a write's touch also needs the database's WATCHes and per-key costs: db.watched, db.meta).
        self.hooked = False
        # True while an expired key's deletion is being signalled: a change no client made (Redis's
        # signalModifiedKey(NULL, ...)), so tracking's NOLOOP does not hide it from the client that read it.
        self.deleting_expired = False
        # True while maxmemory's eviction deletes a key: also a change no client made, and made before the
        # command that needed the room runs, so its invalidations go out before that command's reply.
        self.evicting = False
        # True during CLIENT PAUSE: expired keys read as missing but are not deleted (Redis keeps the dataset
        # constant while clients are paused, so a replica or a failover sees no writes).
        self.expiry_paused = False
        # Keyspace notifications: the classes that publish (actors/data/events.py; 0: off, so each hook below
        # costs one attribute test) and where an event goes: (db index, event, key), set by actors/server/notify.
        self.notify_flags = 0
        self.on_event: Callable[[int, bytes, bytes], None] = lambda db, event, key: None
        self.expired_keys = 0
        # Active expiry's statistics (INFO stats; see active_expire_cycle). The cycle's CPU time is counted by
        # its caller (actors/loop/master.py), which times it for the latency monitor anyway.
        self.expired_stale_perc = 0.0
        self.expired_time_cap_reached_count = 0
        self.expire_cycle_time_used_us = 0
        self.keyspace_hits = 0
        self.keyspace_misses = 0

    # -- lookups ---------------------------------------------------------------------------------------

    def lookup(self, db: Database, key: bytes, write: bool = True) -> Any:
        """The value of ``key``, or None if it does not exist or has expired (deleting it, on a master, and on a
        writable replica for a client's ``write``)."""
        value = db.data.get(key)
        if value is None:
            return None
        if db.meta is not None:
            db.note_access(key)  # an expired key's stamp moves too; it is about to go
        if not db.expires:
            return value
        when = db.expires.get(key)
        if when is None or when > self.expiry_clock() or self.ignore_ttl:
            return value
        if not self.expiry_paused and (not self.is_replica or (write and self.replica_writable)):
            self._delete_expired(db, key)
        return None

    def lookup_read(self, db: Database, key: bytes) -> Any:
        """``lookup`` that also counts keyspace hits and misses (for commands that read a value)."""
        # GET's path: the common case (no TTLs in this db) is answered here without a second call.
        value = db.data.get(key)
        if value is not None and (db.expires or db.meta is not None):
            value = self.lookup(db, key, False)
        if value is None:
            self.keyspace_misses += 1
            if self.notify_flags & events.KEY_MISS:
                self.on_event(db.id, b"keymiss", key)
        else:
            self.keyspace_hits += 1
        return value

    def exists(self, db: Database, key: bytes) -> bool:
        return self.lookup(db, key, False) is not None

    def get_expire(self, db: Database, key: bytes) -> int | None:
        return db.expires.get(key)

    # -- writes ----------------------------------------------------------------------------------------

    def notify(self, db: Database, event_class: int, event: bytes, key: bytes) -> None:
        """A command's keyspace event (Redis's notifyKeyspaceEvent): published if its class is enabled."""
        if self.notify_flags & event_class:
            self.on_event(db.id, event, key)

    def set(self, db: Database, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        """Store ``value`` under ``key``, dropping its TTL unless ``keep_ttl``. Signals the change."""
        if self.notify_flags & _NEW and key not in db.data:
            db.add(key, value)
            self.touch(db, key)
            self.on_event(db.id, b"new", key)
            return
        if keep_ttl:
            db.set_keep_ttl(key, value)
        else:
            db.set(key, value)
        if db.watched or self.hooked:  # else nobody listens: skip
            self.touch(db, key)

    def add(self, db: Database, key: bytes, value: Any) -> None:
        """Store a new key known not to exist (after a lookup returned None)."""
        db.add(key, value)
        self.touch(db, key)
        if self.notify_flags & events.NEW:
            self.on_event(db.id, b"new", key)

    def delete(self, db: Database, key: bytes) -> bool:
        if not db.delete(key):
            return False
        self.touch(db, key)
        return True

    def set_expire(self, db: Database, key: bytes, when_ms: int) -> None:
        db.set_expire(key, when_ms)
        self.touch(db, key)
        if self.is_replica and not self.ignore_ttl:  # a client's write on a writable replica
            self.replica_written[(db.id, key)] = None

    def persist(self, db: Database, key: bytes) -> bool:
        if not db.persist(key):
            return False
        self.touch(db, key)
        return True

    def set_on_modified(self, hook: Callable[[Database, bytes], None] | None) -> None:
        self.on_modified = hook
        self.hooked = hook is not None or self.on_invalidate is not None

    def set_on_invalidate(self, hook: Callable[[Database, bytes], None] | None) -> None:
        self.on_invalidate = hook
        self.hooked = hook is not None or self.on_modified is not None

    def touch(self, db: Database, key: bytes) -> None:
        """Signal that ``key`` changed: WATCHers of it will fail their EXEC; blocked clients may wake."""
        if db.watched:
            watchers = db.watched.get(key)
            if watchers:
                for client in watchers:
                    client.dirty_cas = True
        if db.meta is not None:
            db.recharge(key)  # a value changed in place (LPUSH, HSET ...) costs what it costs now
        if self.on_modified is not None:
            self.on_modified(db, key)
        if self.on_invalidate is not None:
            self.on_invalidate(db, key)

    def touch_all(self, db: Database) -> None:
        """A whole database changed (FLUSHDB, SWAPDB): every watcher of an existing key is dirtied."""
        for key, watchers in db.watched.items():
            if key in db.data:
                for client in watchers:
                    client.dirty_cas = True

    def flush_db(self, db: Database) -> int:
        self.touch_all(db)
        removed = db.clear()
        db.forget_cursors()
        return removed

    def flush_all(self) -> int:
        return sum(self.flush_db(db) for db in self.dbs)

    def swap(self, a: int, b: int) -> None:
        """SWAPDB: exchange contents (not watch lists, which belong to the index clients selected)."""
        da, dbb = self.dbs[a], self.dbs[b]
        self._touch_swapped(da, dbb)
        self._touch_swapped(dbb, da)
        da.swap_with(dbb)
        da.forget_cursors()
        dbb.forget_cursors()

    def _live(self, db: Database, key: bytes) -> bool:
        """``key`` is in ``db`` and not logically expired (it may sit there expired, unnoticed)."""
        if key not in db.data:
            return False
        when_ms = db.expires.get(key)
        return when_ms is None or self.ignore_ttl or when_ms > self.expiry_clock()

    def _touch_swapped(self, emptied: Database, replaced_with: Database) -> None:
        """Dirty the watchers of ``emptied``'s keys whose logical value SWAPDB changes (Redis's
        touchAllWatchedKeysInDb): a live key on either side is a change; a missing or expired key replaced
        by a missing or expired one is not."""
        for key, watchers in list(emptied.watched.items()):
            if self._live(emptied, key) or self._live(replaced_with, key):
                for client in watchers:
                    client.dirty_cas = True
            elif key in replaced_with.data:
                # An expired key about to replace a missing (or expired) one: deleted now, as any read would
                # (and propagated), so EXEC does not take it for a watched key that expired since WATCH.
                self.lookup(replaced_with, key)

    def replace_all(self, dbs: list[Database]) -> None:
        """Swap in a whole new dataset at once (RDB load, replica full sync)."""
        for db in self.dbs:
            self.touch_all(db)
        for i, db in enumerate(self.dbs):
            if i < len(dbs):
                db.replace_with(dbs[i])
            else:
                db.clear()
            db.forget_cursors()
            self.touch_all(db)

    # -- access tracking (actors/data/evict.py, memory.py) ---------------------------------------------------

    def start_tracking(self, tracker: AccessTracker) -> None:
        """Keep access stamps and memory charges from now on (O(keys) once), or switch the tracker."""
        self.tracker = tracker
        for db in self.dbs:
            if db.meta is None:
                db.start_tracking(tracker, self.account)
            else:
                db.tracker = tracker

    def stop_tracking(self) -> None:
        self.tracker = None
        for db in self.dbs:
            db.stop_tracking()
        self.account.dataset_bytes = 0

    # -- expiry ----------------------------------------------------------------------------------------

    def _delete_expired(self, db: Database, key: bytes) -> None:
        db.delete(key)
        self.expired_keys += 1
        self.deleting_expired = True
        try:
            self.touch(db, key)
        finally:
            self.deleting_expired = False
        self.on_expired(db.id, key)
        if self.notify_flags & events.EXPIRED:
            self.on_event(db.id, b"expired", key)

    def active_expire_cycle(self, time_limit_ms: float) -> int:
        """Delete expired keys by sampling, within ``time_limit_ms`` of CPU. Returns how many were deleted.

        Also keeps Redis's statistics of the cycle (activeExpireCycle): each database's ``avg_ttl_ms`` (the
        TTLs of each round's samples, in a running average), ``expired_stale_perc`` (the share of sampled keys
        found expired, averaged over cycles) and ``expired_time_cap_reached_count`` (cycles stopped by their
        time limit)."""
        if self.is_replica:
            return self._expire_replica_written()
        if self.expiry_paused:
            return 0
        deadline = time.perf_counter() + time_limit_ms / 1000.0
        deleted = 0
        now = self.clock()
        total_sampled = total_expired = 0
        try:
            for db in self.dbs:
                if not db.expires:
                    db.avg_ttl_ms = 0
                    continue
                while db.expires:
                    sampled = expired = ttl_sum_ms = ttl_samples = 0
                    for _ in range(ACTIVE_EXPIRE_KEYS_PER_ROUND):
                        key = next(db._expire_cursor, None)
                        if key is None:
                            db._expire_cursor = iter(list(db.expires))
                            key = next(db._expire_cursor, None)
                            if key is None:
                                break
                        when = db.expires.get(key)
                        if when is None:
                            continue
                        sampled += 1
                        if when <= now:
                            self._delete_expired(db, key)
                            expired += 1
                        else:
                            ttl_sum_ms += when - now
                            ttl_samples += 1
                    deleted += expired
                    total_sampled += sampled
                    total_expired += expired
                    if ttl_samples:
                        # Redis's running average: 98% of the estimate, 2% of this round's (the first round's
                        # average seeds it).
                        avg_ms = ttl_sum_ms // ttl_samples
                        if not db.avg_ttl_ms:
                            db.avg_ttl_ms = avg_ms
                        db.avg_ttl_ms = db.avg_ttl_ms // 50 * 49 + avg_ms // 50
                    if sampled == 0 or expired <= sampled * ACTIVE_EXPIRE_REPEAT_RATIO:
                        break
                    if time.perf_counter() > deadline:
                        self.expired_time_cap_reached_count += 1
                        return deleted
            return deleted
        finally:
            # Each cycle weighs 5%, an idle one (nothing sampled) as 0% stale, as in Redis.
            current = total_expired / total_sampled if total_sampled else 0.0
            self.expired_stale_perc = current * 0.05 + self.expired_stale_perc * 0.95

    def _expire_replica_written(self) -> int:
        """Redis's expireSlaveKeys: delete the keys a writable replica's clients gave a TTL once it passed, a
        bounded number per tick; a key gone, persisted or with no TTL any more is forgotten."""
        written = self.replica_written
        if not written or self.expiry_paused:
            return 0
        now = self.clock()
        deleted = 0
        for _ in range(min(len(written), REPLICA_EXPIRE_KEYS_PER_CYCLE)):
            entry = next(iter(written))
            del written[entry]
            db_id, key = entry
            db = self.dbs[db_id]  # (the number of databases is fixed at start)
            when = db.expires.get(key)
            if when is None:
                continue
            if when <= now:
                self._delete_expired(db, key)
                deleted += 1
            else:
                written[entry] = None  # to the back: checked again on a later tick
        return deleted

    # -- introspection ---------------------------------------------------------------------------------

    def type_name(self, value: Any) -> bytes:
        return TYPE_NAMES.get(type(value), b"none")

    def total_keys(self) -> int:
        return sum(len(db.data) for db in self.dbs)
