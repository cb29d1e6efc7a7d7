"""The replication backlog: an offset-addressed window of the stream, with the stream's SELECT points."""

from __future__ import annotations

import random

import pytest

from actors.replication.backlog import COALESCE_BELOW_BYTES, Backlog


def test_a_new_backlog_is_empty_at_its_start_position() -> None:
    backlog = Backlog(100, 42)
    assert (backlog.start_pos, backlog.end_pos, backlog.histlen, backlog.first_byte_offset) == (42, 42, 0, 43)
    assert backlog.covers(42)
    assert not backlog.covers(41) and not backlog.covers(43)
    assert backlog.read(42) == b""


def test_reads_return_the_bytes_from_any_covered_position() -> None:
    backlog = Backlog(1000, 10)
    backlog.append(b"hello ")
    backlog.append(b"world")
    assert backlog.end_pos == 21
    assert backlog.read(10) == b"hello world"
    assert backlog.read(16) == b"world"
    assert backlog.read(13, max_bytes=4) == b"lo w"
    assert backlog.read(21) == b""


def test_old_bytes_are_trimmed_once_the_size_is_exceeded() -> None:
    backlog = Backlog(10, 0)
    backlog.append(b"0123456789")
    backlog.append(b"abcd")
    assert (backlog.start_pos, backlog.end_pos, backlog.histlen) == (4, 14, 10)
    assert backlog.read(4) == b"456789abcd"
    assert not backlog.covers(3)
    with pytest.raises(ValueError):
        backlog.read(3)


def test_an_append_larger_than_the_backlog_keeps_only_its_tail() -> None:
    backlog = Backlog(4, 0)
    backlog.append(b"abcdefgh")
    assert (backlog.start_pos, backlog.end_pos) == (4, 8)
    assert backlog.read(4) == b"efgh"


def test_resize_keeps_the_newest_bytes() -> None:
    backlog = Backlog(100, 0)
    backlog.append(b"x" * 50 + b"y" * 50)
    backlog.resize(30)
    assert backlog.start_pos == 70
    assert backlog.read(70) == b"y" * 30


def test_random_appends_match_a_plain_bytes_model(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randrange(1, 5000)
    backlog = Backlog(size, 7)
    stream = bytearray()
    for _ in range(300):
        chunk = bytes(
            rng.randrange(256) for _ in range(rng.choice([0, 1, 5, 100, COALESCE_BELOW_BYTES + 3, 3000]))
        )
        backlog.append(chunk)
        stream += chunk
        assert backlog.end_pos == 7 + len(stream)
        assert backlog.histlen == min(size, len(stream))
        pos = rng.randrange(backlog.start_pos, backlog.end_pos + 1)
        assert backlog.read(pos) == bytes(stream[pos - 7 :])


def test_db_at_reports_the_database_selected_before_a_position() -> None:
    backlog = Backlog(1000, 0, start_db=-1)
    backlog.append(b"S1 cmd cmd ", [(0, 1)])
    backlog.append(b"S4 cmd", [(11, 4)])
    assert backlog.db_at(0) == -1  # the SELECT at 0 is itself the first command sent
    assert backlog.db_at(3) == 1
    assert backlog.db_at(11) == 1
    assert backlog.db_at(14) == 4
    assert backlog.db_at(backlog.end_pos) == 4


def test_db_at_survives_trimming_the_select_away() -> None:
    backlog = Backlog(8, 0, start_db=2)
    assert backlog.db_at(0) == 2
    backlog.append(b"S5xxxxxx", [(0, 5)])
    backlog.append(b"yyyy")
    assert backlog.start_pos == 4
    assert backlog.db_at(4) == 5
    assert backlog.db_at(12) == 5
