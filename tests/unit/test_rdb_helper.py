"""The RDB load helper (actors/persistence/rdb/helper.py): a real helper process parses runs of string keys on another core.

Whatever the helper does (merges most of the file, gives up, dies, sends garbage), ``rdb_reader.load_file`` must
return exactly what it returns alone, and fail with exactly the same error. Each test starts its helper
processes through ``LoadHelper`` and closes them; randomised cases print their seed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.data.integers import SHARED_INTEGER_BYTES, SHARED_INTEGERS
from actors.data.types import ZSet
from actors.persistence.rdb import helper as rdbhelper
from actors.persistence.rdb import reader as rdb_reader
from actors.persistence.rdb import writer as rdb_writer
from actors.persistence.rdb.format import RdbData, RdbError
from actors.persistence.rdb.helper import LoadHelper
from tests.unit.test_rdb import make_db
from tests.unit.test_rdb_stream import every_type_file

NOW_MS = 1_700_000_000_000


@pytest.fixture
def helpers() -> Iterator[list[LoadHelper]]:
    """Helpers a test started: closed (killed if still running, reaped) when it ends."""
    started: list[LoadHelper] = []
    yield started
    for helper in started:
        helper.close()
        assert helper.proc.returncode is not None


def spawn(path: Path, helpers: list[LoadHelper], drop_before_ms: int | None = None) -> LoadHelper:
    helper = LoadHelper.spawn(str(path), drop_before_ms, min_bytes=0, min_cpus=1)
    assert helper is not None
    helpers.append(helper)
    return helper


def strings_file(keys: int, seed: int) -> bytes:
    """Mostly string keys of every encoding, some with TTLs (a few already past NOW_MS), a hash now and then,
    spread over three databases: runs start and stop at every kind of boundary."""
    rng = random.Random(seed)
    dbs = []
    for index in (0, 5, 15):
        data: dict[bytes, Any] = {}
        expires: dict[bytes, int] = {}
        for i in range(keys):
            key = b"k%d:%d" % (index, i)
            shape = rng.random()
            if shape < 0.80:
                value: Any = b"v%d" % i  # short raw (usually int-encoded when it is all digits: not here)
            elif shape < 0.85:
                value = b"%d" % rng.randrange(-(10**9), 10**9)  # integer-encoded
            elif shape < 0.90:
                value = b"x" * rng.randrange(64, 300)  # a 14-bit length (LZF-compressed when it shrinks)
            elif shape < 0.93:
                value = rng.randbytes(rng.randrange(256, 1000))  # raw, 256+ bytes: BINBYTES in the pickle
            elif shape < 0.94:
                key = b"long-key-" + b"q" * rng.randrange(60, 400) + b"%d" % i
                value = b"v"
            elif shape < 0.945:
                value = {b"f": b"%d" % i}  # another type ends a run
            else:
                value = b"ttl%d" % i
                expires[key] = NOW_MS + rng.randrange(-(10**6), 10**6)
            data[key] = value
        dbs.append(make_db(index, data, expires))
    return rdb_writer.dumps(dbs, rdb_writer.default_aux("c" * 40, 1234, 0))


def written(tmp_path: Path, seed: int) -> tuple[Path, RdbData, list[bytes]]:
    """``strings_file(20000, seed)`` as tmp_path/dump.rdb: its path, what it loads to without a helper, and
    the frames a helper sends for it (``scan`` run in this process)."""
    blob = strings_file(20000, seed)
    path = tmp_path / "dump.rdb"
    path.write_bytes(blob)
    frames: list[bytes] = []
    rdbhelper.scan(blob, None, frames.append)
    return path, rdb_reader.load_file(str(path), 16), frames


def assert_same(helped: RdbData, alone: RdbData) -> None:
    for got, want in zip(helped.dbs, alone.dbs, strict=True):
        assert len(got.data) == len(want.data), f"db {want.id}"
        assert got.data == want.data, f"db {want.id}"
        assert got.expires == want.expires, f"db {want.id}"
    assert helped.expired_skipped == alone.expired_skipped
    assert helped.empty_skipped == alone.empty_skipped
    assert helped.aux == alone.aux
    assert helped.end_offset == alone.end_offset


def load_both(
    tmp_path: Path, blob: bytes, helpers: list[LoadHelper], drop_before_ms: int | None = None
) -> tuple[RdbData, RdbData, LoadHelper]:
    path = tmp_path / "dump.rdb"
    path.write_bytes(blob)
    alone = rdb_reader.load_file(str(path), 16, None, drop_before_ms)
    helper = spawn(path, helpers, drop_before_ms)
    helped = rdb_reader.load_file(str(path), 16, None, drop_before_ms, helper)
    return helped, alone, helper


def error_of(path: Path, helper: LoadHelper | None = None) -> str:
    with pytest.raises(RdbError) as info:
        rdb_reader.load_file(str(path), 16, None, None, helper)
    return str(info.value)


@pytest.mark.parametrize("drop_before_ms", [None, NOW_MS])
def test_the_helper_merges_most_keys_and_the_result_is_the_same(
    tmp_path: Path, helpers: list[LoadHelper], drop_before_ms: int | None
) -> None:
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    helped, alone, helper = load_both(tmp_path, strings_file(20000, seed), helpers, drop_before_ms)
    assert_same(helped, alone)
    total = sum(len(db.data) for db in alone.dbs)
    assert helper.keys_applied > 0.9 * total  # most keys came through runs, not the node's own parse
    assert helper.runs_applied > 3 * 2  # runs of RUN_KEYS, cut by databases and the odd hash
    if drop_before_ms is not None:
        assert alone.expired_skipped > 0


def test_keys_with_a_ttl_share_the_key_object_of_their_value(
    tmp_path: Path, helpers: list[LoadHelper]
) -> None:
    db = make_db(
        0, {b"k%d" % i: b"v" for i in range(100)}, {b"k%d" % i: NOW_MS + i for i in range(0, 100, 3)}
    )
    helped, alone, helper = load_both(tmp_path, rdb_writer.dumps([db]), helpers)
    assert_same(helped, alone)
    assert helper.keys_applied == 100
    data = helped.dbs[0].data
    for key in helped.dbs[0].expires:
        assert next(k for k in data if k == key) is key  # one object, as the node's own parse stores it


def test_integer_values_come_through_runs_as_the_shared_strings(
    tmp_path: Path, helpers: list[LoadHelper]
) -> None:
    data = {b"c%d" % i: b"%d" % (i * 7 % 12000) for i in range(5000)}
    db = make_db(0, data, {b"c%d" % i: NOW_MS + i for i in range(0, 5000, 5)})
    helped, alone, helper = load_both(tmp_path, rdb_writer.dumps([db]), helpers)
    assert_same(helped, alone)
    assert helper.keys_applied == 5000
    for loaded in (helped.dbs[0].data, alone.dbs[0].data):
        assert loaded == data
        shared = [v for v in loaded.values() if int(v) < SHARED_INTEGERS]
        assert all(v is SHARED_INTEGER_BYTES[int(v)] for v in shared) and len(shared) > 4000


def test_a_file_of_other_types_loads_the_same(tmp_path: Path, helpers: list[LoadHelper]) -> None:
    helped, alone, _ = load_both(tmp_path, every_type_file(), helpers)
    assert_same(helped, alone)


def test_the_helper_gives_up_on_a_file_of_mostly_other_types(
    tmp_path: Path, helpers: list[LoadHelper]
) -> None:
    rng = random.Random(1)
    data: dict[bytes, Any] = {
        b"h%d" % i: {b"f%d" % j: rng.randbytes(20) for j in range(10)} for i in range(8000)
    }
    data.update({b"s%d" % i: b"v" for i in range(20000)})  # after 2 MiB of hashes
    data[b"z"] = ZSet([(b"a", 1.0)])
    helped, alone, helper = load_both(tmp_path, rdb_writer.dumps([make_db(0, data)]), helpers)
    assert_same(helped, alone)
    assert helper.keys_applied == 0
    assert helper.proc.wait(timeout=10) == 0  # it stopped by itself, before the strings


@pytest.mark.parametrize("cut", ["header", "aux", "early", "middle", "run-boundary", "late", "checksum"])
def test_a_truncated_file_fails_as_it_fails_alone(
    tmp_path: Path, helpers: list[LoadHelper], cut: str
) -> None:
    blob = strings_file(20000, seed=7)
    frames: list[bytes] = []
    rdbhelper.scan(blob, None, frames.append)
    second_run_start = rdbhelper._FRAME.unpack_from(frames[1])[0]
    at = {
        "header": 5,
        "aux": 30,
        "early": second_run_start // 3,
        "middle": len(blob) // 2 + 1,
        "run-boundary": second_run_start,
        "late": len(blob) - 20,
        "checksum": len(blob) - 3,
    }[cut]
    path = tmp_path / "dump.rdb"
    path.write_bytes(blob[:at])
    want = error_of(path)
    assert error_of(path, spawn(path, helpers)) == want


def test_a_corrupt_record_and_a_wrong_checksum_fail_as_they_fail_alone(
    tmp_path: Path, helpers: list[LoadHelper]
) -> None:
    blob = bytearray(strings_file(20000, seed=11))
    frames: list[bytes] = []
    rdbhelper.scan(bytes(blob), None, frames.append)
    record = rdbhelper._FRAME.unpack_from(frames[2])[0]  # a record in the middle of the file
    path = tmp_path / "dump.rdb"
    bad_type = bytearray(blob)
    bad_type[record] = 200  # no such type or opcode
    path.write_bytes(bad_type)
    want = error_of(path)
    assert "unknown RDB object type 200" in want
    assert error_of(path, spawn(path, helpers)) == want
    bad_sum = bytearray(blob)
    bad_sum[-1] ^= 0xFF
    path.write_bytes(bad_sum)
    want = error_of(path)
    assert "Wrong RDB checksum" in want
    assert error_of(path, spawn(path, helpers)) == want


def test_a_killed_helper_only_costs_speed(tmp_path: Path, helpers: list[LoadHelper]) -> None:
    path, alone, _ = written(tmp_path, seed=3)
    helper = spawn(path, helpers)
    helper.prime()  # the first run has arrived
    helper.proc.kill()
    helper.proc.wait()
    assert_same(rdb_reader.load_file(str(path), 16, None, None, helper), alone)


def fake_helper(tmp_path: Path, path: Path, frames: bytes, helpers: list[LoadHelper]) -> LoadHelper:
    """A LoadHelper whose process sends ``frames`` instead of scanning the file."""
    sent = tmp_path / "frames.bin"
    sent.write_bytes(frames)
    code = f"import sys; sys.stdout.buffer.write(open({str(sent)!r}, 'rb').read())"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    helper = LoadHelper(proc, str(path), None)
    helpers.append(helper)
    return helper


def test_frames_that_do_not_fit_are_dropped(tmp_path: Path, helpers: list[LoadHelper]) -> None:
    path, alone, frames = written(tmp_path, seed=5)
    start, end, keys, expired, _ = rdbhelper._FRAME.unpack_from(frames[0])
    bogus = b"}(C\x05bogusC\x01!u}(u\x86."  # {b"bogus": b"!"}: must never reach the dataset
    sent = (
        rdbhelper._FRAME.pack(start + 1, end, 1, 0, len(bogus))
        + bogus  # not at a record: passed, dropped
        + rdbhelper._FRAME.pack(start + 2, end, 1, 0, 3)
        + b"xyz"  # behind the node by then: dropped
        + rdbhelper._FRAME.pack(end, end + 10, 1, 0, 7)
        + b"garbage"  # at a record, not a pickle: ends it
        + frames[1]  # never read: the helper is no longer trusted
    )
    helper = fake_helper(tmp_path, path, sent, helpers)
    assert_same(rdb_reader.load_file(str(path), 16, None, None, helper), alone)
    assert helper.runs_applied == 0


def test_a_malformed_frame_header_ends_the_help(tmp_path: Path, helpers: list[LoadHelper]) -> None:
    path, alone, frames = written(tmp_path, seed=9)
    start, end, *_ = rdbhelper._FRAME.unpack_from(frames[0])
    for header in (rdbhelper._FRAME.pack(start, start, 1, 0, 0), b"\x01\x02\x03"):  # empty run; cut short
        helper = fake_helper(tmp_path, path, header + frames[0], helpers)
        assert_same(rdb_reader.load_file(str(path), 16, None, None, helper), alone)
        assert helper.runs_applied == 0


def test_small_files_and_single_cpus_load_without_a_helper(tmp_path: Path) -> None:
    path = tmp_path / "dump.rdb"
    path.write_bytes(rdb_writer.dumps([make_db(0, {b"k": b"v"})]))
    assert LoadHelper.spawn(str(path), None) is None  # under MIN_FILE_BYTES
    assert LoadHelper.spawn(str(path), None, min_bytes=0, min_cpus=10**6) is None
    assert LoadHelper.spawn(str(tmp_path / "missing.rdb"), None, min_bytes=0, min_cpus=1) is None


def test_a_run_cut_short_by_the_end_of_the_data_is_never_sent() -> None:
    blob = rdb_writer.dumps([make_db(0, {b"k%d" % i: b"v%d" % i for i in range(rdbhelper.RUN_KEYS + 10)})])
    frames: list[bytes] = []
    rdbhelper.scan(blob, None, frames.append)
    _, first_end, keys, _, _ = rdbhelper._FRAME.unpack_from(frames[0])  # its last record ends at first_end
    assert keys == rdbhelper.RUN_KEYS  # a full run: nothing after its last record is read
    sent: list[bytes] = []
    with pytest.raises(IndexError):
        rdbhelper.scan(blob[: first_end - 1], None, sent.append)
    assert sent == []
    rdbhelper.scan(blob[:first_end] + blob[first_end:], None, sent.append)  # whole again: the same frames
    assert sent == frames


def test_a_stopped_helper_is_given_up_on(tmp_path: Path, helpers: list[LoadHelper]) -> None:
    path, alone, _ = written(tmp_path, seed=17)
    helper = spawn(path, helpers)
    helper.stall_timeout_s = 0.3
    helper.prime()  # the first run has arrived; the rest never will
    os.kill(helper.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert_same(rdb_reader.load_file(str(path), 16, None, None, helper), alone)
        assert time.monotonic() - started < 10
        assert helper.proc.poll() is None  # still there, stopped: the node went on without it
    finally:
        os.kill(helper.proc.pid, signal.SIGCONT)
