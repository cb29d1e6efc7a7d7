"""The kvstore (actors/data/kvstore.py): the one writer of a database's keys, in both modes.

Covers the writers and their re-binding (a plain dict store while there are no TTLs), whole-content changes
(clear, swap, replace, bulk-load merge), cluster mode's per-slot index against the data it indexes (seeded
random operations, also through the Keyspace), keyslot and slot counts against a cluster-mode redis-server,
random sampling, and a scan of the source tree for writes to a Database's dicts that bypass the kvstore.
"""

from __future__ import annotations

import ast
import binascii
import copy
import pickle
import random
import time
from collections.abc import Callable
from operator import setitem
from pathlib import Path
from typing import Any

import pytest

from actors.data.keyspace import Database, Keyspace
from actors.data.kvstore import KvStore
from protocol.slots import SLOTS as CLUSTER_SLOTS
from protocol.slots import keyslot
from tests.harness import RedisServer, wait_for

REPO = Path(__file__).resolve().parents[2]
START_MS = 1_700_000_000_000


def slot_facts(store: KvStore) -> dict[int, set[bytes]]:
    """What the per-slot index must say, computed from ``data`` alone."""
    facts: dict[int, set[bytes]] = {}
    for key in store.data:
        facts.setdefault(keyslot(key), set()).add(key)
    return facts


def plain_store(writer: Callable[[bytes, Any], None], store: KvStore) -> bool:
    """Whether ``writer`` is a bare dict store into ``store.data`` (a C call, no Python frame)."""
    return getattr(writer, "__func__", None) is setitem and getattr(writer, "__self__", None) is store.data


def assert_index_matches(store: KvStore) -> None:
    facts = slot_facts(store)
    assert sorted(store.slots_in_use()) == sorted(facts)
    for slot, keys in facts.items():
        assert store.count_in_slot(slot) == len(keys)
        assert set(store.keys_in_slot(slot, len(keys) + 1)) == keys
    assert set(store.expires) <= set(store.data)


# -- writers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_slot", [False, True])
def test_set_drops_the_ttl_and_set_keep_ttl_keeps_it(per_slot: bool) -> None:
    store = KvStore(per_slot)
    store.add(b"a", b"1")
    store.set_expire(b"a", START_MS)
    store.set_keep_ttl(b"a", b"2")
    assert store.data == {b"a": b"2"} and store.expires == {b"a": START_MS}
    store.set(b"a", b"3")
    assert store.data == {b"a": b"3"} and store.expires == {}


@pytest.mark.parametrize("per_slot", [False, True])
def test_delete_and_persist_report_whether_there_was_something(per_slot: bool) -> None:
    store = KvStore(per_slot)
    store.set(b"a", b"1")
    store.set_expire(b"a", START_MS)
    assert store.persist(b"a") and not store.persist(b"a")
    store.set_expire(b"a", START_MS)
    assert store.delete(b"a") and not store.delete(b"a")
    assert store.data == {} and store.expires == {} and len(store) == 0
    assert_index_matches(store)


def test_set_is_a_plain_dict_store_exactly_while_the_database_has_no_ttl() -> None:
    # The fast lane's speed rests on this: without TTLs a SET is one C call, no Python frame.
    store = KvStore()
    assert plain_store(store.set, store)
    store.set(b"a", b"1")
    store.set(b"b", b"1")
    store.set_expire(b"a", START_MS)
    store.set_expire(b"b", START_MS)
    assert not plain_store(store.set, store)
    store.set(b"a", b"2")  # drops one TTL: one left, SET must keep dropping them
    assert not plain_store(store.set, store) and store.expires == {b"b": START_MS}
    store.delete(b"b")  # the last TTL went with its key
    assert plain_store(store.set, store)
    store.set_expire(b"a", START_MS)
    store.persist(b"a")
    assert plain_store(store.set, store)
    store.set_expire(b"a", START_MS)
    store.clear()
    assert plain_store(store.set, store) and plain_store(store.add, store)


def test_a_database_pickles_and_copies_with_its_writers_bound_to_its_own_dicts() -> None:
    db = Database(3)
    db.set(b"a", b"1")
    db.watched[b"a"] = set()
    for clone in (pickle.loads(pickle.dumps(db)), copy.deepcopy(db)):
        assert clone.id == 3 and clone.data == {b"a": b"1"} and clone.watched == {b"a": set()}
        clone.set(b"b", b"2")
        assert clone.data == {b"a": b"1", b"b": b"2"} and db.data == {b"a": b"1"}
        assert plain_store(clone.set, clone)


def test_a_cached_set_stays_correct_while_only_sets_follow() -> None:
    # The fast lane caches ``set`` for a run of SETs: one that drops the last TTL must not break the rest.
    store = KvStore()
    store.set(b"a", b"1")
    store.set_expire(b"a", START_MS)
    cached = store.set
    cached(b"a", b"2")
    cached(b"b", b"3")
    assert store.data == {b"a": b"2", b"b": b"3"} and store.expires == {}


# -- whole contents --------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_slot", [False, True])
def test_clear_counts_and_leaves_holders_of_the_old_dicts_alone(per_slot: bool) -> None:
    store = KvStore(per_slot)
    for i in range(5):
        store.set(b"k%d" % i, b"v")
    store.set_expire(b"k0", START_MS)
    old_data, old_expires = store.data, store.expires
    assert store.clear() == 5
    assert store.data == {} and store.expires == {} and len(old_data) == 5 and len(old_expires) == 1
    assert store.count_in_slot(keyslot(b"k1")) == 0
    store.set(b"new", b"v")
    assert b"new" not in old_data


@pytest.mark.parametrize("per_slot", [False, True])
def test_swap_with_exchanges_contents_ttls_and_slot_index(per_slot: bool) -> None:
    a, b = KvStore(per_slot), KvStore(per_slot)
    a.set(b"x", b"1")
    a.set_expire(b"x", START_MS)
    b.set(b"y", b"2")
    a.swap_with(b)
    assert a.data == {b"y": b"2"} and a.expires == {}
    assert b.data == {b"x": b"1"} and b.expires == {b"x": START_MS}
    assert plain_store(a.set, a) or per_slot
    b.set(b"x", b"3")  # b has the TTL now: its SET must drop it
    assert b.expires == {}
    assert_index_matches(a)
    assert_index_matches(b)
    with pytest.raises(ValueError):
        a.swap_with(KvStore(not per_slot))


@pytest.mark.parametrize(("live_per_slot", "loaded_per_slot"), [(False, False), (True, False), (True, True)])
def test_replace_with_adopts_the_loaded_contents_without_a_copy(
    live_per_slot: bool, loaded_per_slot: bool
) -> None:
    live, loaded = KvStore(live_per_slot), KvStore(loaded_per_slot)
    live.set(b"old", b"v")
    loaded.merge_loaded({b"a": b"1", b"{t}b": b"2"}, {b"a": START_MS})
    live.replace_with(loaded)
    assert live.data is loaded.data and live.data == {b"a": b"1", b"{t}b": b"2"}
    assert live.expires == {b"a": START_MS}
    assert not plain_store(live.set, live)  # there is a TTL: SET drops TTLs
    assert_index_matches(live)


@pytest.mark.parametrize("per_slot", [False, True])
def test_merge_loaded_adopts_into_an_empty_store_and_merges_into_a_full_one(per_slot: bool) -> None:
    store = KvStore(per_slot)
    first: dict[bytes, object] = {b"a": b"1"}
    store.merge_loaded(first, {})
    assert store.data is first and store.data == {b"a": b"1"}  # adopted: no copy of a loaded database
    store.merge_loaded({b"a": b"2", b"b": b"3"}, {b"b": START_MS})
    assert store.data == {b"a": b"2", b"b": b"3"} and store.expires == {b"b": START_MS}
    store.set(b"b", b"4")
    assert store.expires == {}
    assert_index_matches(store)


# -- cluster mode: the per-slot index --------------------------------------------------------------------


def random_key(rng: random.Random) -> bytes:
    """Keys that share slots often: a few hash tags, a few plain names, an occasional empty tag."""
    shape = rng.randrange(4)
    n = rng.randrange(40)
    if shape == 0:
        return b"{user%d}.field%d" % (rng.randrange(5), n)
    if shape == 1:
        return b"foo{}%d" % n
    return b"key:%d" % n


def test_random_writes_keep_the_slot_index_equal_to_the_data(seed: int) -> None:
    rng = random.Random(seed)
    indexed, plain = KvStore(per_slot=True), KvStore()
    for step in range(3000):
        key = random_key(rng)
        op = rng.randrange(8)
        batch = {random_key(rng): b"m" for _ in range(3)}
        run = [[b"SET", random_key(rng), b"r%d" % step] for _ in range(3)]  # the fast lane's run of SETs
        for store in (indexed, plain):
            if op == 0:
                store.set(key, b"%d" % step)
            elif op == 1:
                if key in store.data:
                    store.set_keep_ttl(key, b"%d" % step)
                else:
                    store.add(key, b"%d" % step)
            elif op == 2:
                store.delete(key)
            elif op == 3 and key in store.data:
                store.set_expire(key, START_MS + step)
            elif op == 4:
                store.persist(key)
            elif op == 5 and step % 500 == 0:
                store.clear()
            elif op == 6 and step % 50 == 0:
                store.merge_loaded(dict(batch), {})  # a copy each: an empty store adopts the dict
            elif op == 7:
                store.set_run([[b"GET", b"x"], *run], 1, 4)
        if step % 250 == 0:
            assert_index_matches(indexed)
    assert indexed.data == plain.data and indexed.expires == plain.expires
    assert_index_matches(indexed)
    for slot in {keyslot(key) for key in plain.data}:
        assert indexed.count_in_slot(slot) == plain.count_in_slot(slot)
        assert set(indexed.keys_in_slot(slot, 1000)) == set(plain.keys_in_slot(slot, 1000))
    assert indexed.keys_in_slot(keyslot(b"{user1}"), 0) == []


def test_keyspace_in_cluster_mode_keeps_the_index_through_expiry_flush_swap_and_replace() -> None:
    now = [START_MS]
    ks = Keyspace(databases=2, clock=lambda: now[0], per_slot=True)
    db = ks.dbs[0]
    for i in range(50):
        ks.set(db, b"{tag}%d" % i, b"v")
        ks.set_expire(db, b"{tag}%d" % i, START_MS + 10)
    ks.set(db, b"other", b"v")
    assert db.count_in_slot(keyslot(b"tag")) == 50
    now[0] += 10
    assert ks.active_expire_cycle(1000.0) == 50
    assert db.count_in_slot(keyslot(b"tag")) == 0 and db.count_in_slot(keyslot(b"other")) == 1
    ks.swap(0, 1)
    assert ks.dbs[1].count_in_slot(keyslot(b"other")) == 1 and ks.dbs[0].count_in_slot(keyslot(b"other")) == 0
    fresh = Database(0)  # the RDB loader's databases are always in single mode
    fresh.merge_loaded({b"{tag}x": b"1", b"y": b"2"}, {})
    ks.replace_all([fresh])
    assert ks.dbs[0].count_in_slot(keyslot(b"tag")) == 1 and ks.dbs[1].count_in_slot(keyslot(b"other")) == 0
    assert_index_matches(ks.dbs[0])
    ks.flush_all()
    assert list(ks.dbs[0].slots_in_use()) == []


# -- keyslot: Redis's CRC16 and hash-tag rule ------------------------------------------------------------


def test_keyslot_is_redis_crc16_of_the_hash_tag() -> None:
    assert binascii.crc_hqx(b"123456789", 0) == 0x31C3  # Redis's crc16 test vector (XMODEM)
    assert keyslot(b"somekey") == 11058  # the CLUSTER KEYSLOT examples of the Redis documentation
    assert keyslot(b"foo{hash_tag}") == keyslot(b"bar{hash_tag}") == 2515
    assert keyslot(b"foo{bar}{zap}") == keyslot(b"bar")  # the first tag only
    assert keyslot(b"foo{}{bar}") == binascii.crc_hqx(b"foo{}{bar}", 0) & 0x3FFF  # empty tag: whole key
    assert keyslot(b"foo{{bar}}zap") == keyslot(b"{bar")
    assert all(0 <= keyslot(b"%d" % i) < CLUSTER_SLOTS for i in range(1000))


@pytest.fixture
def cluster_redis(redis_servers: Callable[..., RedisServer], tmp_path: Path) -> RedisServer:
    """A one-node cluster-mode redis-server owning every slot (so it takes writes)."""
    server = redis_servers(tmp_path, "--cluster-enabled", "yes", "--cluster-config-file", "nodes-kv.conf")
    server.client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, CLUSTER_SLOTS - 1)

    def writable() -> bool:
        info = server.client.execute_command("CLUSTER", "INFO")
        text = info.decode() if isinstance(info, bytes) else str(info)
        return "cluster_state:ok" in text

    wait_for(writable, 15, what="redis-server's cluster to reach state ok")
    return server


def test_keyslot_and_slot_facts_match_a_cluster_mode_redis_server(
    seed: int, cluster_redis: RedisServer
) -> None:
    rng = random.Random(seed)
    alphabet = b"{}ab:x\x00\xff"
    keys = {bytes(rng.choice(alphabet) for _ in range(rng.randrange(12))) for _ in range(1500)}
    keys |= {random_key(rng) for _ in range(300)}
    client = cluster_redis.client
    pipe = client.pipeline(transaction=False)
    for key in sorted(keys):
        pipe.execute_command("CLUSTER", "KEYSLOT", key)
    assert pipe.execute() == [keyslot(key) for key in sorted(keys)]
    store = KvStore(per_slot=True)
    for key in sorted(keys):
        store.set(key, b"v")
        pipe.set(key, b"v")
    pipe.execute()
    for slot in sorted({keyslot(key) for key in keys})[:200]:
        assert client.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == store.count_in_slot(slot)
        theirs = client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
        assert sorted(theirs) == sorted(store.keys_in_slot(slot, 1000))
        assert len(store.keys_in_slot(slot, 1)) == 1


# -- random sampling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_slot", [False, True])
def test_sample_returns_distinct_existing_keys_and_never_deleted_ones(per_slot: bool, seed: int) -> None:
    rng = random.Random(seed)
    store = KvStore(per_slot)
    assert store.sample(5, rng) == [] and store.random_key(rng) is None
    for i in range(1000):
        store.set(b"k%d" % i, b"v")
    first = store.sample(16, rng)
    assert len(first) == len(set(first)) == 16 and all(key in store.data for key in first)
    for i in range(0, 1000, 2):
        store.delete(b"k%d" % i)  # half the sample list is stale now
    for _ in range(200):
        sample = store.sample(5, rng)
        assert len(sample) == 5 and all(key in store.data for key in sample)
    assert sorted(store.sample(10_000, rng)) == sorted(store.data)
    store.clear()
    store.set(b"only", b"v")
    assert store.random_key(rng) == b"only"


def test_sample_draws_every_key_about_as_often(seed: int) -> None:
    rng = random.Random(seed)
    store = KvStore()
    for i in range(20):
        store.set(b"k%d" % i, b"v")
    counts = dict.fromkeys(store.data, 0)
    for _ in range(20_000):
        key = store.random_key(rng)
        assert key is not None
        counts[key] += 1
    assert min(counts.values()) > 700 and max(counts.values()) < 1300  # expected 1000 each


def test_sampling_a_big_store_copies_the_keys_rarely() -> None:
    store = KvStore()
    store.merge_loaded({b"key:%d" % i: b"v" for i in range(200_000)}, {})
    started = time.perf_counter()
    for _ in range(2000):
        store.sample(5)
    elapsed_s = time.perf_counter() - started
    # One list(data) of 200k keys is some milliseconds; a copy per call would take seconds here.
    assert elapsed_s < 1.0, f"2000 samples took {elapsed_s:.2f} s"


# -- the source tree writes key data only through the kvstore -------------------------------------------

# Attributes of a Database that hold key data, and the dict methods that change a dict.
STORAGE_ATTRS = frozenset(("data", "expires"))
WRITE_METHODS = frozenset(("pop", "popitem", "update", "clear", "setdefault", "__setitem__", "__delitem__"))
# Functions that write into (or bind a writer to) a dict passed as an argument.
WRITE_FUNCTIONS = frozenset(("setitem", "delitem", "MethodType"))
SCANNED_PACKAGES = ("actors", "launcher", "protocol")
# path -> why it may write the dicts. Only the kvstore; add a file here only while it is being converted.
ALLOWED_WRITERS = {"actors/data/kvstore.py": "the one writer"}


def _storage_aliases(function: ast.AST) -> set[str]:
    """Names bound to ``<x>.data`` / ``<x>.expires`` in ``function`` (``data = db.data``, tuple forms too)."""
    aliases: set[str] = set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        pairs: list[tuple[ast.expr, ast.expr]] = []
        for target in node.targets:
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs += zip(target.elts, node.value.elts, strict=False)
            else:
                pairs.append((target, node.value))
        for target, value in pairs:
            if (
                isinstance(target, ast.Name)
                and isinstance(value, ast.Attribute)
                and value.attr in STORAGE_ATTRS
            ):
                aliases.add(target.id)
    return aliases


def direct_storage_writes(source: str) -> list[tuple[int, str]]:
    """(line, code) of every write to a Database's dicts in ``source`` made around the kvstore."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    scopes: list[ast.AST] = [tree] + [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    for scope in scopes:
        aliases = _storage_aliases(scope)

        def is_storage(expr: ast.expr, aliases: set[str] = aliases) -> bool:
            if isinstance(expr, ast.Attribute):
                return expr.attr in STORAGE_ATTRS
            return isinstance(expr, ast.Name) and expr.id in aliases

        for node in ast.walk(scope):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            elif isinstance(node, ast.Delete):
                targets = list(node.targets)
            flat: list[ast.expr] = []
            for target in targets:
                flat += target.elts if isinstance(target, ast.Tuple) else [target]
            for target in flat:
                if isinstance(target, ast.Subscript) and is_storage(target.value):
                    found.append((target.lineno, ast.unparse(target)))
                elif isinstance(target, ast.Attribute) and target.attr in STORAGE_ATTRS:
                    found.append((target.lineno, ast.unparse(target)))
            if isinstance(node, ast.Attribute) and node.attr in WRITE_METHODS and is_storage(node.value):
                found.append((node.lineno, ast.unparse(node)))
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name in WRITE_FUNCTIONS and any(is_storage(arg) for arg in node.args):
                    found.append((node.lineno, ast.unparse(node)))
    return sorted(set(found))


def test_the_scanner_finds_every_kind_of_direct_write() -> None:
    source = """
def f(db, client, key):
    db.data[key] = 1
    client.db.expires[key] = 2
    del db.data[key]
    db.data.pop(key)
    db.expires.update({})
    db.data.clear()
    db.data = {}
    store = db.data.__setitem__
    data, expires = db.data, db.expires
    data[key] = 3
    expires.pop(key, None)
    operator.setitem(db.data, key, 4)
    fast = MethodType(setitem, db.data)

def g(db, key):
    data = db.data
    return data.get(key), key in db.expires, len(db.data)  # reads: fine
"""
    lines = [line for line, _ in direct_storage_writes(source)]
    assert lines == [3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15]


def test_only_the_kvstore_writes_key_data() -> None:
    offenders: list[str] = []
    for package in SCANNED_PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if relative in ALLOWED_WRITERS:
                continue
            for line, code in direct_storage_writes(path.read_text()):
                offenders.append(f"{relative}:{line}: {code}")
    assert not offenders, "key data written around the kvstore:\n" + "\n".join(offenders)
