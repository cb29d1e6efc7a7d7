"""The AOF's pure parts: the manifest (Redis's exact line syntax) and the command scanner's offsets."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from actors.data.keyspace import Database
from actors.data.types import ZSet
from actors.persistence.aof.file import write_commands
from actors.persistence.aof.manifest import (
    AofFileType,
    Manifest,
    ManifestError,
    read_manifest,
    write_manifest,
)
from actors.persistence.aof.replay import AofFormatError, AofTruncated, iter_commands
from protocol.resp import encode_command


def test_manifest_renders_lines_exactly_as_redis_writes_them() -> None:
    manifest = Manifest()
    assert manifest.new_base("appendonly.aof", rdb_preamble=True) == "appendonly.aof.1.base.rdb"
    assert manifest.new_incr("appendonly.aof") == "appendonly.aof.1.incr.aof"
    assert manifest.render() == (
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    )


def test_a_rewrite_turns_the_old_base_and_covered_incrs_into_history() -> None:
    manifest = Manifest.parse("file a.1.base.rdb seq 1 type b\nfile a.1.incr.aof seq 1 type i\n", "m")
    manifest.new_incr("a")  # opened when the rewrite starts
    manifest.new_base("a", rdb_preamble=False)
    manifest.mark_incrs_history(keep_last=True)
    assert manifest.render() == (
        "file a.2.base.aof seq 2 type b\n"
        "file a.1.incr.aof seq 1 type h\n"  # Redis's order: covered incrs, then the old base
        "file a.1.base.rdb seq 1 type h\n"
        "file a.2.incr.aof seq 2 type i\n"
    )
    assert [info.name for info in manifest.loadable()] == ["a.2.base.aof", "a.2.incr.aof"]


def test_manifest_parse_round_trips_and_quotes_odd_names() -> None:
    manifest = Manifest()
    manifest.new_base("my aof", rdb_preamble=True)
    text = manifest.render()
    assert text == 'file "my aof.1.base.rdb" seq 1 type b\n'
    parsed = Manifest.parse(text, "m")
    assert parsed.base is not None and parsed.base.name == "my aof.1.base.rdb"
    assert parsed.base.type is AofFileType.BASE


@pytest.mark.parametrize(
    "text",
    [
        "",
        "file a seq 1\n",
        "file a.1.base.rdb seq 1 type b\nfile a.2.base.rdb seq 2 type b\n",
        "file a.2.incr.aof seq 2 type i\nfile a.1.incr.aof seq 1 type i\n",
        "file dir/a seq 1 type b\n",
        "file a seq 1 type x\n",
    ],
)
def test_malformed_manifests_are_refused(text: str) -> None:
    with pytest.raises(ManifestError):
        Manifest.parse(text, "m")


def test_write_manifest_replaces_the_file(tmp_path: Path) -> None:
    manifest = Manifest()
    manifest.new_base("appendonly.aof", rdb_preamble=True)
    write_manifest(str(tmp_path), "appendonly.aof", manifest)
    assert (
        tmp_path / "appendonly.aof.manifest"
    ).read_text() == "file appendonly.aof.1.base.rdb seq 1 type b\n"
    assert not (tmp_path / "temp-appendonly.aof.manifest").exists()
    loaded = read_manifest(str(tmp_path), "appendonly.aof")
    assert loaded is not None and loaded.render() == manifest.render()


def _stream(*commands: list[bytes]) -> bytes:
    return b"".join(encode_command(c) for c in commands)


def test_iter_commands_yields_each_command_with_its_end_offset() -> None:
    data = _stream([b"SET", b"k", b"v"], [b"DEL", b"k"])
    first = len(encode_command([b"SET", b"k", b"v"]))
    assert list(iter_commands(data, 0, len(data))) == [
        ([b"SET", b"k", b"v"], first),
        ([b"DEL", b"k"], len(data)),
    ]


def test_iter_commands_skips_timestamp_annotations() -> None:
    data = b"#TS:1700000000\r\n" + _stream([b"PING"])
    assert [argv for argv, _ in iter_commands(data, 0, len(data))] == [[b"PING"]]


def test_a_torn_tail_reports_where_the_last_whole_command_ended() -> None:
    whole = _stream([b"SET", b"a", b"1"])
    torn = _stream([b"SET", b"b", b"2"])
    for cut in range(1, len(torn)):
        data = whole + torn[:cut]
        seen = []
        with pytest.raises(AofTruncated) as info:
            for argv, _ in iter_commands(data, 0, len(data)):
                seen.append(argv)
        assert info.value.offset == len(whole), cut
        assert seen == [[b"SET", b"a", b"1"]]


def test_damage_in_the_middle_is_a_format_error_with_its_offset() -> None:
    good = _stream([b"SET", b"a", b"1"])
    data = good + b"xx" + _stream([b"SET", b"b", b"2"])
    with pytest.raises(AofFormatError) as info:
        list(iter_commands(data, 0, len(data)))
    assert info.value.offset == len(good)
    bad_length = b"*3\r\n$3\r\nSET\r\n$1\r\nab\r\n$1\r\n1\r\n"
    with pytest.raises(AofFormatError):
        list(iter_commands(bad_length, 0, len(bad_length)))


def test_command_form_base_rebuilds_every_type() -> None:
    import io

    db = Database(2)
    db.data = {
        b"s": b"v",
        b"l": deque([b"%d" % i for i in range(130)]),
        b"h": {b"f": b"1", b"g": b"2"},
        b"set": {b"a", b"b"},
        b"z": ZSet([(b"m", 1.5), (b"n", float("inf"))]),
    }
    db.expires = {b"s": 4102444800000}
    out = io.BytesIO()
    write_commands(out, [Database(0), Database(1), db])
    data = out.getvalue()
    commands = [argv for argv, _ in iter_commands(data, 0, len(data))]
    assert commands[0] == [b"SELECT", b"2"]
    assert [b"SET", b"s", b"v"] in commands
    assert [b"PEXPIREAT", b"s", b"4102444800000"] in commands
    rpush = [c for c in commands if c[0] == b"RPUSH"]
    assert [len(c) - 2 for c in rpush] == [64, 64, 2]
    assert sorted(c[0] for c in commands) == sorted(
        [b"SELECT", b"SET", b"PEXPIREAT", b"RPUSH", b"RPUSH", b"RPUSH", b"HMSET", b"SADD", b"ZADD"]
    )
    zadd = next(c for c in commands if c[0] == b"ZADD")
    assert zadd[2:] == [b"1.5", b"m", b"inf", b"n"]
