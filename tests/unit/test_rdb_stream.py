"""``rdb_reader.load_stream``: an RDB parsed piece by piece as it arrives (a replica's full sync), which must give what
``rdb_reader.load`` gives for the whole file, and fail the same way, wherever the pieces happen to be cut."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from actors.data.types import ZSet
from actors.persistence.rdb import reader as rdb_reader
from actors.persistence.rdb import writer as rdb_writer
from actors.persistence.rdb.format import PROGRESS_EVERY_KEYS, RdbError
from tests.unit.test_rdb import digest_of, make_db, small_file


def more_from(chunks: Iterable[bytes]) -> Callable[[], bytes]:
    """A ``more`` that hands out ``chunks`` one by one, then b"" (the end of the stream)."""
    it = iter(chunks)
    return lambda: next(it, b"")


def pieces_of(blob: bytes, size: int) -> Callable[[], bytes]:
    """A ``more`` that hands out ``blob`` ``size`` bytes at a time."""
    return more_from(blob[i : i + size] for i in range(0, len(blob), size))


def every_type_file() -> bytes:
    """Every kind of value the writer emits, some larger than the pieces, with TTLs, in three databases."""
    data: dict[bytes, Any] = {
        b"short": b"v",
        b"int": b"-12345",
        b"compressible": b"abc" * 400,  # LZF
        b"big": bytes(range(256)) * 40,  # 10 KiB raw, spans many pieces
        b"k" * 100: b"long key",
        b"list": deque([b"%d" % i for i in range(3000)]),  # several quicklist nodes
        b"hash-small": {b"f": b"v", b"n": b"1"},
        b"hash-big": {b"f%d" % i: b"x" * 70 for i in range(200)},
        b"set-ints": {b"1", b"2", b"-3"},
        b"set-big": {b"m%d" % i for i in range(600)},
        b"zset-small": ZSet([(b"a", 1.5), (b"b", -2.0)]),
        b"zset-big": ZSet((b"m%d" % i, i / 3) for i in range(300)),  # ZSET_2: binary doubles
    }
    dbs = [
        make_db(0, data, {b"short": 10**13, b"big": 10**13 + 1}),
        make_db(3, {b"three": b"3"}),
        make_db(15, {b"n%d" % i: b"%d" % i for i in range(500)}, {b"n7": 10**13}),
    ]
    return rdb_writer.dumps(dbs, rdb_writer.default_aux("b" * 40, 99, 3))


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1000, 1 << 20])
def test_any_piece_size_loads_what_the_whole_file_loads(size: int) -> None:
    blob = every_type_file()
    whole = rdb_reader.load(blob, 16)
    streamed = rdb_reader.load_stream(pieces_of(blob, size), 16)
    assert digest_of(streamed.dbs) == digest_of(whole.dbs)
    for got, want in zip(streamed.dbs, whole.dbs, strict=True):
        assert got.data == want.data
        assert got.expires == want.expires
    assert streamed.aux == whole.aux
    assert streamed.end_offset == whole.end_offset == len(blob)


def test_random_piece_sizes_load_the_same() -> None:
    blob = every_type_file()
    want = digest_of(rdb_reader.load(blob, 16).dbs)
    rng = random.Random(5)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(blob)), 40))
        chunks = [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True)]
        assert digest_of(rdb_reader.load_stream(more_from(chunks), 16).dbs) == want


def test_progress_reports_stream_offsets() -> None:
    blob = rdb_writer.dumps([make_db(0, {b"k%d" % i: b"v" for i in range(3 * PROGRESS_EVERY_KEYS)})])
    offsets: list[int] = []
    rdb_reader.load_stream(pieces_of(blob, 4096), 16, progress=offsets.append)
    assert len(offsets) >= 3 and offsets == sorted(offsets) and offsets[-1] == len(blob)


def test_every_truncated_stream_is_an_unexpected_eof_at_its_length() -> None:
    # Wherever the stream ends, the parser must notice it is short: no read may take a cut-off item for a
    # whole one (a short slice never raises by itself).
    blob = small_file()
    for cut in range(9, len(blob)):
        with pytest.raises(RdbError, match=f"^Unexpected EOF reading RDB file at offset {cut}$"):
            rdb_reader.load_stream(pieces_of(blob[:cut], 5), 16)
    with pytest.raises(RdbError, match="^Wrong signature"):
        rdb_reader.load_stream(pieces_of(blob[:5], 5), 16)


def test_truncated_large_file_fails_whatever_the_piece_size() -> None:
    blob = every_type_file()
    rng = random.Random(11)
    for cut in rng.sample(range(9, len(blob)), 60):
        with pytest.raises(RdbError, match=f"^Unexpected EOF reading RDB file at offset {cut}$"):
            rdb_reader.load_stream(pieces_of(blob[:cut], rng.choice([1, 13, 500, 4096])), 16)


def test_bytes_after_the_checksum_are_refused() -> None:
    blob = small_file()
    with pytest.raises(RdbError, match=f"^3 unexpected bytes after the RDB checksum at offset {len(blob)}$"):
        rdb_reader.load_stream(pieces_of(blob + b"xyz", 7), 16)


def test_a_wrong_checksum_is_reported_as_load_reports_it() -> None:
    blob = bytearray(small_file())
    flip = blob.index(b"\x10\x01h") + 2
    blob[flip] ^= 1
    with pytest.raises(RdbError) as whole:
        rdb_reader.load(bytes(blob), 16)
    with pytest.raises(RdbError) as streamed:
        rdb_reader.load_stream(pieces_of(bytes(blob), 3), 16)
    assert str(streamed.value) == str(whole.value)
    assert str(whole.value).endswith(f"at offset {len(blob) - 8}")


def test_corrupt_content_names_its_stream_offset() -> None:
    blob = small_file()
    bad = blob[:-9] + b"\x08\x01k\x01v" + blob[-9:]  # an unknown object type just before EOF
    with pytest.raises(RdbError, match=f"^unknown RDB object type 8 at offset {len(blob) - 9}$"):
        rdb_reader.load_stream(pieces_of(bad, 4), 16)


class Abandoned(Exception):
    pass


def test_an_exception_from_more_passes_through() -> None:
    blob = every_type_file()
    handed = 0

    def more() -> bytes:
        nonlocal handed
        if handed >= len(blob) // 2:
            raise Abandoned
        handed += 100
        return blob[handed - 100 : handed]

    with pytest.raises(Abandoned):
        rdb_reader.load_stream(more, 16)
