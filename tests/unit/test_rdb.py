"""The RDB reader and writer (actors.persistence.rdb: reader.py, writer.py) on their own: round trips of every type, Redis's encodings, and bad
input. The payloads marked "from redis-server 7.0" were produced by DUMP on a real redis-server 7.0.15."""

from __future__ import annotations

import io
import os
import random
import struct
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from actors.data.digest import dataset_digest
from actors.data.keyspace import Database, Keyspace
from actors.data.types import ZSet
from actors.persistence.rdb import decode as rdb_decode
from actors.persistence.rdb import reader as rdb_reader
from actors.persistence.rdb import writer as rdb_writer
from actors.persistence.rdb.compact import listpack_encode, listpack_entries
from actors.persistence.rdb.format import (
    LIST_NODE_MAX_BYTES,
    QUICKLIST_NODE_PACKED,
    TYPE_HASH,
    TYPE_HASH_LISTPACK,
    TYPE_SET,
    TYPE_SET_INTSET,
    TYPE_ZSET_2,
    TYPE_ZSET_LISTPACK,
    RdbData,
    RdbError,
)
from actors.persistence.rdb.native import crc64, crc64_pure, lzf_compress, lzf_decompress, lzf_decompress_pure

# DUMP payloads from redis-server 7.0.15 (type byte, value, RDB version 10, CRC64).
REDIS_DUMP_LIST_QUICKLIST_2 = bytes.fromhex(  # RPUSH l a 1 -1 127 128 -4096 4095 4096 -32768 32768 ...
    "120102405d5d00000010008161020101dfff027f01c08002d00002cfff02f1001003f1008003f200800004f200008004f300"
    "00800005f4000000800000000009f4000000000000008009f4ffffffffffffff7f098b68656c6c6f20776f726c640cff0a00"
    "9b5e9966e0fc596a"
)
REDIS_DUMP_LIST_ITEMS = [
    b"a", b"1", b"-1", b"127", b"128", b"-4096", b"4095", b"4096", b"-32768", b"32768", b"-8388608",
    b"8388608", b"2147483648", b"-9223372036854775808", b"9223372036854775807", b"hello world",
]  # fmt: skip
REDIS_DUMP_HASH_LISTPACK = bytes.fromhex(  # HSET h f1 v1 n 12 neg -5000
    "101d1d00000006008266310382763103816e020c01836e656704f178ec03ff0a0036b7e2e1ec8b7f12"
)
REDIS_DUMP_ZSET_LISTPACK = bytes.fromhex(  # ZADD z 1.5 a -2 b 3 c inf d
    "1122220000000800816202dffe0281610283312e3504816302030181640283696e6604ff0a004d8d82d5140c86eb"
)
REDIS_DUMP_SET_INTSET = bytes.fromhex(  # SADD s 1 2 -3 70000 5000000000 (intset, LZF-compressed)
    "0bc32630040800000005200301fdff80000001200b4000000240042000017011a01102f2052a200900000a003285f4458846a901"
)


def make_db(index: int, data: dict[bytes, Any], expires: dict[bytes, int] | None = None) -> Database:
    db = Database(index)
    db.data.update(data)
    db.expires.update(expires or {})
    return db


def roundtrip(dbs: list[Database], num_dbs: int = 16, **options: Any) -> RdbData:
    blob = rdb_writer.dumps(dbs, rdb_writer.default_aux(None, None, None), **options)
    return rdb_reader.load(blob, num_dbs)


def digest_of(dbs: list[Database]) -> bytes:
    keyspace = Keyspace(16)
    for db in dbs:
        keyspace.dbs[db.id] = db
    return dataset_digest(keyspace)


def rdb_file(body: bytes, version: int = 10, checksum: bool = True) -> bytes:
    """A hand-made RDB: header, ``body``, EOF and (from version 5) the CRC64."""
    data = b"REDIS%04d" % version + body + b"\xff"
    if version >= 5:
        data += crc64(0, data).to_bytes(8, "little") if checksum else bytes(8)
    return data


def raw_string(s: bytes) -> bytes:
    assert len(s) < 64
    return bytes((len(s),)) + s


def payload_value(payload: bytes) -> bytes:
    """The type byte + serialized value of a DUMP payload, as it appears after a key in an RDB file."""
    return payload[:-10]


def rdb_with_value(payload: bytes, key: bytes = b"k") -> bytes:
    body = payload_value(payload)
    return rdb_file(b"\xfe\x00" + body[:1] + raw_string(key) + body[1:])


# -- the native primitives --------------------------------------------------------------------------------


def test_crc64_matches_redis_test_vector() -> None:
    assert crc64(0, b"123456789") == 0xE9C6D914C4B8D9CA
    assert crc64_pure(0, b"123456789") == 0xE9C6D914C4B8D9CA
    # Incremental use gives the same as one pass (the writer checksums block by block).
    assert crc64(crc64(0, b"1234"), b"56789") == 0xE9C6D914C4B8D9CA
    data = random.Random(7).randbytes(10_000)
    assert crc64(0, data) == crc64_pure(0, data)


def test_lzf_pure_decompressor_reads_native_output() -> None:
    rng = random.Random(3)
    assert lzf_compress is not None
    for text in (b"abc" * 100, rng.randbytes(50) + b"x" * 500, b"value:%d " * 0 + bytes(range(256)) * 20):
        packed = lzf_compress(text, len(text) - 4)
        assert packed is not None
        assert lzf_decompress_pure(packed, len(text)) == text
        assert lzf_decompress(packed, len(text)) == text
        assert lzf_decompress(packed, len(text) + 1) is None
    assert lzf_compress(rng.randbytes(100), 96) is None  # incompressible: not worth it
    assert lzf_decompress_pure(b"\x05ab", 6) is None


# -- round trips ------------------------------------------------------------------------------------------


def test_round_trip_every_type_with_ttls_and_digest() -> None:
    zset = ZSet([(b"a", 1.5), (b"b", -2.0), (b"c", float("inf")), (b"d", float("-inf")), (b"e", 0.1)])
    data: dict[bytes, Any] = {
        b"str": b"hello",
        b"empty": b"",
        b"list": deque([b"a", b"", b"123", b"x" * 100]),
        b"hash": {b"f": b"v", b"n": b"12", b"": b"empty field"},
        b"set": {b"m1", b"2", b"-3"},
        b"zset": zset,
        b"\x00binary\xff key": b"\x00\x01\x02",
    }
    expires = {b"str": 1_900_000_000_123, b"list": 1, b"zset": 2**62}
    dbs = [make_db(0, data, expires)]
    loaded = roundtrip(dbs)
    assert loaded.dbs[0].data == data
    assert loaded.dbs[0].expires == expires
    assert [type(v) for v in loaded.dbs[0].data.values()] == [type(v) for v in data.values()]
    assert list(loaded.dbs[0].data[b"zset"].items()) == list(zset.items())
    assert digest_of(loaded.dbs) == digest_of(dbs)
    assert all(len(db.data) == 0 for db in loaded.dbs[1:])


def random_bytes(rng: random.Random) -> bytes:
    shape = rng.randrange(6)
    if shape == 0:
        return b"%d" % rng.randrange(-(2**64), 2**64)
    if shape == 1:
        return rng.choice([b"a", b"b"]) * rng.randrange(0, 300)
    if shape == 2:
        return rng.randbytes(rng.choice([0, 1, 20, 21, 63, 64, 100, 5000]))
    return rng.randbytes(rng.randrange(0, 12))


def random_value(rng: random.Random) -> Any:
    kind = rng.randrange(5)
    size = rng.choice([1, 2, 5, 128, 129, 600])
    if kind == 0:
        return random_bytes(rng)
    if kind == 1:
        return deque(random_bytes(rng) for _ in range(size))
    if kind == 2:
        return {random_bytes(rng): random_bytes(rng) for _ in range(size)}
    if kind == 3:
        if rng.random() < 0.5:
            return {b"%d" % rng.randrange(-(2**63), 2**63) for _ in range(size)}
        return {random_bytes(rng) for _ in range(size)}
    scores = [rng.uniform(-1e9, 1e9), float(rng.randrange(-5, 5)), rng.choice([float("inf"), 1e-310, -0.5])]
    return ZSet((random_bytes(rng), rng.choice(scores)) for _ in range(size))


def test_random_datasets_round_trip_with_identical_digest(seed: int) -> None:
    rng = random.Random(seed)
    dbs = []
    for index in rng.sample(range(16), 3):
        db = make_db(index, {random_bytes(rng): random_value(rng) for _ in range(150)})
        for key in rng.sample(sorted(db.data), 40):
            db.expires[key] = rng.randrange(0, 2**50)
        dbs.append(db)
    loaded = roundtrip(dbs, compress=rng.random() < 0.7, checksum=rng.random() < 0.7)
    for db in dbs:
        assert loaded.dbs[db.id].data == db.data
        assert loaded.dbs[db.id].expires == db.expires
    assert digest_of(loaded.dbs) == digest_of(dbs)


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_integer_like_and_sized_strings(compress: bool) -> None:
    texts = [
        b"0", b"-1", b"127", b"128", b"-128", b"-129", b"32767", b"32768", b"-32768", b"-32769",
        b"2147483647", b"2147483648", b"-2147483648", b"-2147483649", b"9223372036854775807",
        b"007", b"+1", b" 1", b"1 ", b"1_0", b"-0", b"-", b"1e3", b"0x10", b"12345678901",
    ]  # fmt: skip
    data = {b"int:%d" % i: text for i, text in enumerate(texts)}
    rng = random.Random(5)
    for size in (20, 21, 63, 64, 16383, 16384, 70_000, 3_000_000):
        data[b"rand:%d" % size] = rng.randbytes(size)
        data[b"same:%d" % size] = b"a" * size
    data[b"k" * 64] = b"key of 64 bytes"
    data[b"k" * 20_000] = b"key of 20000 bytes"
    loaded = roundtrip([make_db(0, data)], compress=compress)
    assert loaded.dbs[0].data == data


def test_integer_strings_use_redis_integer_encodings() -> None:
    blob = rdb_writer.dumps([make_db(0, {b"a": b"-2147483648", b"b": b"007"})])
    assert b"\x00\x01a\xc2\x00\x00\x00\x80" in blob  # INT32
    assert b"\x00\x01b\x03007" in blob  # not canonical: a plain string


def test_compression_only_when_asked_and_worth_it() -> None:
    data = {b"k": b"a" * 1000, b"r": random.Random(1).randbytes(1000)}
    packed = rdb_writer.dumps([make_db(0, data)], compress=True)
    plain = rdb_writer.dumps([make_db(0, data)], compress=False)
    assert len(packed) < len(plain) - 900
    assert rdb_reader.load(packed, 1).dbs[0].data == rdb_reader.load(plain, 1).dbs[0].data == data


def test_big_collections_round_trip() -> None:
    rng = random.Random(11)
    items = deque(b"item:%d" % i for i in range(20_000))
    items.extend([b"x" * 9000, b"", b"y" * 5])  # an element bigger than a node, and an empty one
    data: dict[bytes, Any] = {
        b"list": items,
        b"hash": {b"f%d" % i: rng.randbytes(rng.randrange(0, 40)) for i in range(5000)},
        b"set": {b"%d" % i for i in range(3000)},
        b"zset": ZSet((b"m%d" % i, rng.uniform(-1e9, 1e9)) for i in range(4000)),
    }
    loaded = roundtrip([make_db(3, data)])
    assert loaded.dbs[3].data == data
    assert loaded.dbs[3].data[b"list"] == items  # order kept


def value_type(value: Any) -> int:
    return rdb_writer.dump_value(value)[0]


def test_small_collections_use_redis_compact_encodings() -> None:
    assert value_type({b"f": b"v" * 64}) == TYPE_HASH_LISTPACK
    assert value_type({b"f": b"v" * 65}) == TYPE_HASH
    assert value_type({b"f%d" % i: b"v" for i in range(129)}) == TYPE_HASH
    assert value_type({b"1", b"-2", b"9223372036854775807"}) == TYPE_SET_INTSET
    assert value_type({b"1", b"007"}) == TYPE_SET
    assert value_type({b"1", b"9223372036854775808"}) == TYPE_SET
    assert value_type({b"%d" % i for i in range(513)}) == TYPE_SET
    assert value_type(ZSet([(b"m" * 64, 1.0)])) == TYPE_ZSET_LISTPACK
    assert value_type(ZSet([(b"m" * 65, 1.0)])) == TYPE_ZSET_2
    assert value_type(ZSet((b"%d" % i, 1.0) for i in range(129))) == TYPE_ZSET_2


@pytest.mark.parametrize(
    "members",
    [
        {b"1", b"-2"},
        {b"70000", b"0"},
        {b"-32769"},
        {b"4294967296"},
        {b"-9223372036854775808", b"9223372036854775807"},
    ],
)
def test_intsets_of_every_width_round_trip(members: set[bytes]) -> None:
    assert rdb_reader.load_value(rdb_writer.dump_value(members)) == members


def test_listpack_zset_scores_are_exact_and_ordered() -> None:
    scores = [0.1, -0.0, 1e300, 5e-324, -1e-300, 3.0, float("inf"), float("-inf"), 2.0**53 + 2, 1 / 3]
    zset = ZSet((b"m%d" % i, score) for i, score in enumerate(scores))
    loaded = rdb_reader.load_value(rdb_writer.dump_value(zset))
    assert list(loaded.items()) == list(zset.items())
    assert [repr(loaded.score(member)) for member in zset.scores] == [repr(score) for score in scores]
    blob = rdb_writer.dump_value(zset, compress=False)
    members_in_blob = [item for item in listpack_entries(rdb_decode.read_string(blob, 1)[0])][0::2]
    assert members_in_blob == [member for member, _ in zset.items()]


def test_list_nodes_are_valid_listpacks_of_bounded_size() -> None:
    items = [b"v%d" % i for i in range(5000)]
    blob = rdb_writer.dumps([make_db(0, {b"l": deque(items)})], compress=False)
    start = blob.index(b"\x12\x01l") + 3
    nodes, pos = rdb_decode.read_len(blob, start)
    assert nodes > 1
    seen: list[bytes] = []
    for _ in range(nodes):
        container, pos = rdb_decode.read_len(blob, pos)
        assert container == QUICKLIST_NODE_PACKED
        node, pos = rdb_decode.read_string(blob, pos)
        assert len(node) <= LIST_NODE_MAX_BYTES
        seen += listpack_entries(node)
    assert seen == items


def test_multiple_databases_and_empty_ones() -> None:
    dbs = [make_db(i, {b"k%d" % i: b"v%d" % i}, {b"k%d" % i: 10**12 + i}) for i in (0, 5, 15)]
    dbs.insert(1, Database(1))
    loaded = roundtrip(dbs)
    assert len(loaded.dbs) == 16
    for db in dbs:
        assert loaded.dbs[db.id].data == db.data
        assert loaded.dbs[db.id].expires == db.expires


def test_aux_fields_survive() -> None:
    aux = rdb_writer.default_aux("8e9f" * 10, 123456789, 3)
    blob = rdb_writer.dumps([make_db(0, {b"k": b"v"})], aux)
    loaded = rdb_reader.load(blob, 16)
    assert loaded.aux["repl-id"] == b"8e9f" * 10
    assert loaded.aux["repl-offset"] == b"123456789"
    assert loaded.aux["repl-stream-db"] == b"3"
    assert loaded.aux["redis-ver"] == b"7.0.15"
    assert loaded.aux["redis-bits"] == b"64"
    assert loaded.aux["aof-base"] == b"0"
    assert list(loaded.aux)[:4] == ["redis-ver", "redis-bits", "ctime", "used-mem"]
    assert (
        "repl-id"
        not in rdb_reader.load(rdb_writer.dumps([], rdb_writer.default_aux(None, None, None)), 1).aux
    )
    assert loaded.end_offset == len(blob)


def test_dump_reports_bytes_and_checksum_off_writes_zeros() -> None:
    out = io.BytesIO()
    written = rdb_writer.dump([make_db(0, {b"k": b"v"})], out, checksum=False)
    blob = out.getvalue()
    assert written == len(blob)
    assert blob.startswith(b"REDIS0010") and blob.endswith(b"\xff" + bytes(8))
    assert rdb_reader.load(blob, 1).dbs[0].data == {b"k": b"v"}
    assert rdb_writer.dumps([]) == rdb_file(b"")


def test_save_file_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "dump.rdb"
    written = rdb_writer.save_file(
        str(path), [make_db(0, {b"k": b"v"})], rdb_writer.default_aux(None, None, None)
    )
    assert path.stat().st_size == written
    assert rdb_reader.load_file(str(path), 16).dbs[0].data == {b"k": b"v"}
    before = path.read_bytes()
    with pytest.raises(TypeError):
        rdb_writer.save_file(str(path), [make_db(0, {b"a": b"1", b"bad": object()})])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump.rdb"]


def test_load_from_stream_and_progress() -> None:
    data = {b"key:%d" % i: b"value:%d" % i for i in range(140_000)}
    blob = rdb_writer.dumps([make_db(0, data)])
    offsets: list[int] = []
    loaded = rdb_reader.load(io.BytesIO(blob), 16, progress=offsets.append)
    assert loaded.dbs[0].data == data
    assert len(offsets) >= 2 and offsets == sorted(offsets) and offsets[-1] == len(blob)


def test_expired_keys_kept_unless_dropped_by_a_master() -> None:
    dbs = [make_db(0, {b"old": b"1", b"new": b"2", b"plain": b"3"}, {b"old": 1000, b"new": 5000})]
    blob = rdb_writer.dumps(dbs)
    kept = rdb_reader.load(blob, 1)
    assert kept.dbs[0].expires == {b"old": 1000, b"new": 5000}
    dropped = rdb_reader.load(blob, 1, drop_expired_before_ms=3000)
    assert dropped.dbs[0].data == {b"new": b"2", b"plain": b"3"}
    assert dropped.dbs[0].expires == {b"new": 5000}
    assert dropped.expired_skipped == 1


def test_dump_value_and_load_value() -> None:
    for value in (b"abc", deque([b"1", b"2"]), {b"f": b"v"}, {b"m"}, ZSet([(b"a", 2.0)])):
        assert rdb_reader.load_value(rdb_writer.dump_value(value)) == value
    payload = bytearray(rdb_writer.dump_value(b"abc"))
    payload[-1] ^= 1
    with pytest.raises(RdbError, match="DUMP payload version or checksum are wrong"):
        rdb_reader.load_value(bytes(payload))


# -- Redis's own encodings --------------------------------------------------------------------------------


def test_reads_redis_7_dump_payloads() -> None:
    assert rdb_reader.load_value(REDIS_DUMP_LIST_QUICKLIST_2) == deque(REDIS_DUMP_LIST_ITEMS)
    assert rdb_reader.load_value(REDIS_DUMP_HASH_LISTPACK) == {b"f1": b"v1", b"n": b"12", b"neg": b"-5000"}
    zset = rdb_reader.load_value(REDIS_DUMP_ZSET_LISTPACK)
    assert list(zset.items()) == [(b"b", -2.0), (b"a", 1.5), (b"c", 3.0), (b"d", float("inf"))]
    assert rdb_reader.load_value(REDIS_DUMP_SET_INTSET) == {b"1", b"2", b"-3", b"70000", b"5000000000"}
    # Inside a whole file, too, and our own DUMP payloads carry the same checksum Redis computes.
    assert rdb_reader.load(rdb_with_value(REDIS_DUMP_HASH_LISTPACK), 1).dbs[0].data[b"k"][b"neg"] == b"-5000"
    assert rdb_writer.dump_value(b"abc")[-10:-8] == REDIS_DUMP_SET_INTSET[-10:-8]


def ziplist(items: list[bytes | int]) -> bytes:
    """A ziplist as ziplist.c lays it out (test-side encoder, every entry encoding)."""
    body, prevlen, tail = b"", 0, 10
    for item in items:
        prev = bytes((prevlen,)) if prevlen < 254 else b"\xfe" + prevlen.to_bytes(4, "little")
        if isinstance(item, int):
            if 0 <= item <= 12:
                enc = bytes((0xF1 + item,))
            elif -128 <= item <= 127:
                enc = b"\xfe" + item.to_bytes(1, "little", signed=True)
            elif -(2**15) <= item < 2**15:
                enc = b"\xc0" + item.to_bytes(2, "little", signed=True)
            elif -(2**23) <= item < 2**23:
                enc = b"\xf0" + item.to_bytes(3, "little", signed=True)
            elif -(2**31) <= item < 2**31:
                enc = b"\xd0" + item.to_bytes(4, "little", signed=True)
            else:
                enc = b"\xe0" + item.to_bytes(8, "little", signed=True)
        else:
            n = len(item)
            if n < 64:
                enc = bytes((n,)) + item
            elif n < 16384:
                enc = bytes((0x40 | n >> 8, n & 0xFF)) + item
            else:
                enc = b"\x80" + n.to_bytes(4, "big") + item
        entry = prev + enc
        tail = 10 + len(body)
        body += entry
        prevlen = len(entry)
    total = 10 + len(body) + 1
    return (
        total.to_bytes(4, "little")
        + tail.to_bytes(4, "little")
        + len(items).to_bytes(2, "little")
        + body
        + b"\xff"
    )


def string_blob(blob: bytes) -> bytes:
    return rdb_writer._encode_string(blob, False)


ZIPLIST_ITEMS: list[bytes | int] = [
    b"a", 0, 12, 13, -1, 127, -128, 300, -(2**15), 2**20, -(2**23), 2**31 - 1, -(2**31) - 1, 2**62,
    b"x" * 100, b"y" * 300, b"z" * 20000,
]  # fmt: skip
ZIPLIST_TEXT = [item if isinstance(item, bytes) else b"%d" % item for item in ZIPLIST_ITEMS]


def test_reads_pre_7_ziplist_types() -> None:
    pairs: list[bytes | int] = [b"f1", b"v1", b"n", 42, b"big", b"w" * 400]
    zpairs: list[bytes | int] = [b"a", 1, b"b", b"2.5", b"c", b"-inf"]
    body = b"\xfe\x00"
    body += b"\x0a" + raw_string(b"list10") + string_blob(ziplist(ZIPLIST_ITEMS))
    body += b"\x0e" + raw_string(b"list14") + b"\x02"
    body += string_blob(ziplist(ZIPLIST_ITEMS[:5])) + string_blob(ziplist(ZIPLIST_ITEMS[5:]))
    body += b"\x0d" + raw_string(b"hash13") + string_blob(ziplist(pairs))
    body += b"\x0c" + raw_string(b"zset12") + string_blob(ziplist(zpairs))
    loaded = rdb_reader.load(rdb_file(body, version=9), 1).dbs[0].data
    assert loaded[b"list10"] == deque(ZIPLIST_TEXT)
    assert loaded[b"list14"] == deque(ZIPLIST_TEXT)
    assert loaded[b"hash13"] == {b"f1": b"v1", b"n": b"42", b"big": b"w" * 400}
    assert list(loaded[b"zset12"].items()) == [(b"c", float("-inf")), (b"a", 1.0), (b"b", 2.5)]


def test_reads_old_plain_types_zipmap_and_second_expiry() -> None:
    zipmap = b"\x02" + b"\x01a" + b"\x02\x00vv" + b"\x02bb" + b"\x01\x03x" + b"pad" + b"\xff"
    body = b"\xfe\x00"
    body += b"\x09" + raw_string(b"zm") + string_blob(zipmap)
    body += b"\x01" + raw_string(b"list1") + b"\x02" + raw_string(b"x") + raw_string(b"y")
    body += b"\x03" + raw_string(b"zset3") + b"\x03" + raw_string(b"a") + b"\x031.5"
    body += raw_string(b"b") + b"\xfe" + raw_string(b"c") + b"\xff"
    body += b"\xfd" + struct.pack("<i", 1_700_000_000) + b"\x00" + raw_string(b"sec") + raw_string(b"v")
    loaded = rdb_reader.load(rdb_file(body, version=3), 1)
    data = loaded.dbs[0].data
    assert data[b"zm"] == {b"a": b"vv", b"bb": b"x"}
    assert data[b"list1"] == deque([b"x", b"y"])
    assert list(data[b"zset3"].items()) == [(b"c", float("-inf")), (b"a", 1.5), (b"b", float("inf"))]
    assert loaded.dbs[0].expires == {b"sec": 1_700_000_000_000}


def test_reads_set_listpack_and_skips_idle_freq_module_aux_and_functions() -> None:
    module_aux = b"\xf7" + b"\x81" + (12345).to_bytes(8, "big") + b"\x02" + b"\x02"
    module_aux += (
        b"\x02\x05" + b"\x05" + raw_string(b"blob") + b"\x04" + bytes(8) + b"\x03" + bytes(4) + b"\x00"
    )
    function = b"\xf5" + raw_string(b"#!lua name=lib\nreturn 1")
    body = module_aux + function + b"\xfe\x00" + b"\xf8\x05\xf9\x07"
    body += b"\x14" + raw_string(b"set20") + string_blob(listpack_encode([b"a", b"b"]))
    loaded = rdb_reader.load(rdb_file(body), 1)
    assert loaded.dbs[0].data == {b"set20": {b"a", b"b"}}
    assert loaded.functions == [b"#!lua name=lib\nreturn 1"]


def test_empty_collections_are_skipped_like_redis() -> None:
    body = b"\xfe\x00" + b"\x10" + raw_string(b"h") + string_blob(listpack_encode([]))
    body += b"\x02" + raw_string(b"s") + b"\x00" + b"\x00" + raw_string(b"k") + raw_string(b"")
    loaded = rdb_reader.load(rdb_file(body), 1)
    assert loaded.dbs[0].data == {b"k": b""}
    assert loaded.empty_skipped == 2


def test_accepts_every_version_up_to_10() -> None:
    body = b"\xfe\x00\x00" + raw_string(b"k") + raw_string(b"v")
    for version in range(1, 11):
        assert rdb_reader.load(rdb_file(body, version), 1).dbs[0].data == {b"k": b"v"}


# -- bad input --------------------------------------------------------------------------------------------


def small_file() -> bytes:
    data: dict[bytes, Any] = {
        b"s": b"x" * 50,
        b"l": deque([b"1", b"2"]),
        b"h": {b"a": b"b"},
        b"z": ZSet([(b"m", 1.0)]),
        b"n": b"12345",
    }
    return rdb_writer.dumps(
        [make_db(0, data, {b"s": 10**13}), make_db(2, {b"k": b"v"})], rdb_writer.default_aux("a" * 40, 7, 0)
    )


def test_bad_magic_and_newer_version() -> None:
    with pytest.raises(RdbError, match="Wrong signature trying to load DB from file at offset 0"):
        rdb_reader.load(b"REDIX0010\xff" + bytes(8), 16)
    with pytest.raises(RdbError, match="Wrong signature"):
        rdb_reader.load(b"", 16)
    with pytest.raises(RdbError, match="^Can't handle RDB format version 11 at offset 5$"):
        rdb_reader.load(rdb_file(b"", version=11), 16)


def test_bad_checksum_names_checksum_and_offset() -> None:
    blob = bytearray(small_file())
    blob[-3] ^= 0x40
    with pytest.raises(
        RdbError,
        match=r"^Wrong RDB checksum expected: \([0-9a-f]+\) but got \([0-9a-f]+\): RDB CRC error at offset",
    ):
        rdb_reader.load(bytes(blob), 16)
    blob = bytearray(small_file())
    flip = blob.index(b"\x10\x01h") + 2
    blob[flip] ^= 1  # the key name of the hash: parses fine, but the checksum catches it
    with pytest.raises(RdbError, match=f"checksum .* at offset {len(blob) - 8}$"):
        rdb_reader.load(bytes(blob), 16)


def test_every_truncation_raises() -> None:
    blob = small_file()
    assert rdb_reader.load(blob, 16).dbs[0].data
    for cut in range(len(blob)):
        with pytest.raises(RdbError, match="at offset"):
            rdb_reader.load(blob[:cut], 16)


def test_random_corruption_raises_rdb_error_or_loads() -> None:
    rng = random.Random(99)
    blob = small_file()
    unchecked = blob[:-8] + bytes(8)  # no checksum: the parser alone must cope with garbage
    for _ in range(2000):
        data = bytearray(unchecked)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(9, len(data) - 8)] = rng.randrange(256)
        try:
            rdb_reader.load(bytes(data), 16)
        except RdbError as exc:
            assert "at offset" in str(exc)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xfe\x00\x08" + raw_string(b"k") + raw_string(b"v"), "^unknown RDB object type 8 at offset 11$"),
        # Streams (types 15, 19, 21) are read now: one cut off after its node count runs into the EOF opcode.
        (b"\xfe\x00\x0f" + raw_string(b"k") + b"\x00", "^unknown length encoding 0xff at offset 11$"),
        (b"\xfe\x00\x13" + raw_string(b"k") + b"\x00", "^unknown length encoding 0xff at offset 11$"),
        (b"\xfe\x00\x15" + raw_string(b"k") + b"\x00", "^unknown length encoding 0xff at offset 11$"),
        (b"\xfe\x00\x07" + raw_string(b"k") + b"\x00", r"module type not supported \(RDB type 7\)"),
        (b"\xfe\x00\xf4", "^unknown RDB object type 244 at offset 11$"),
        (b"\xfe\x00\x08", "^unknown RDB object type 8 at offset 11$"),
        (b"\xf6\x00", "^Pre-release function format not supported at offset 9$"),
        (b"\xfe\x10", "configured to handle more than 16 databases"),
        (b"\xfe\x00\x00\x01k\xc3\x02\x10\x00\x00", "invalid LZF compressed string"),
        (b"\xfe\x00\x00\x01k\xc4", "unknown string encoding 4"),
        (b"\xfe\x00\x10\x01k\x07\x07\x00\x00\x00\x01\x00\xff", "listpack element count mismatch"),
        (b"\xfe\x00\x05\x01k\x01\x01m" + struct.pack("<d", float("nan")), "zset with NAN score detected"),
        (b"\xfe\x00\x00\x01k\x01v\x00\x01k\x01w", "^RDB has duplicated keys in DB 0 at offset"),
    ],
)
def test_malformed_content_is_refused_clearly(body: bytes, message: str) -> None:
    with pytest.raises(RdbError, match=message):
        rdb_reader.load(rdb_file(body), 16)


def test_load_file_missing_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        rdb_reader.load_file(os.fspath(tmp_path / "none.rdb"), 16)


def test_pure_python_fallbacks_read_the_same_file(monkeypatch: pytest.MonkeyPatch) -> None:
    data = {b"k%d" % i: b"compressible " * (i + 2) for i in range(50)}
    blob = rdb_writer.dumps([make_db(0, data)], compress=True)
    for module in (rdb_reader, rdb_writer):
        monkeypatch.setattr(module, "crc64", crc64_pure)
    monkeypatch.setattr(rdb_decode, "lzf_decompress", lzf_decompress_pure)
    monkeypatch.setattr(rdb_writer, "lzf_compress", None)
    assert rdb_reader.load(blob, 1).dbs[0].data == data
    uncompressed = rdb_writer.dumps([make_db(0, data)], compress=True)
    assert len(uncompressed) > len(blob)
    assert rdb_reader.load(uncompressed, 1).dbs[0].data == data
