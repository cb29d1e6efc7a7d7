"""DUMP and RESTORE: Redis's payloads and error replies (redis-py drops the "ERR " of generic errors), TTLs, REPLACE, and how RESTORE is propagated (a
relative TTL becomes an absolute one, as Redis rewrites it). Payloads across servers: test_persistence_compat."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.harness import NodeProcess, RedisServer
from tests.integration.shared import error_of

NodeFactory = Callable[..., NodeProcess]


def test_dump_restore_round_trips_with_ttls_and_options(node: NodeProcess) -> None:
    r = node.client()
    r.set("s", "hello")
    r.rpush("l", "a", "b", "c")
    r.hset("h", mapping={"f": "v"})
    r.zadd("z", {"m": 1.5})
    r.sadd("set", "x")
    for key in ("s", "l", "h", "z", "set"):
        payload = r.dump(key)
        assert payload is not None and payload[-10:-8] == b"\x0a\x00"  # RDB version 10, then the CRC64
        assert error_of(r.restore, key, 0, payload) == "BUSYKEY Target key name already exists."
        assert r.restore(key + "-copy", 0, payload) == b"OK"
        assert r.type(key + "-copy") == r.type(key) and r.ttl(key + "-copy") == -1
        assert r.dump(key + "-copy") == payload
    assert r.dump("missing") is None
    payload = r.dump("s")
    assert r.restore("s", 5000, payload, replace=True) == b"OK"
    assert 3000 < r.pttl("s") <= 5000
    deadline_ms = int(time.time() * 1000) + 60_000
    assert r.restore("abs", deadline_ms, payload, absttl=True) == b"OK"
    assert r.pexpiretime("abs") == deadline_ms
    assert r.restore("past", 1000, payload, absttl=True) == b"OK" and r.exists("past") == 0
    assert r.restore("s", 1000, payload, absttl=True, replace=True) == b"OK" and r.exists("s") == 0
    assert r.restore("idle", 0, payload, idletime=10) == b"OK"
    assert r.restore("freq", 0, payload, frequency=5) == b"OK"


def test_restore_refuses_what_redis_refuses(node: NodeProcess) -> None:
    r = node.client()
    r.set("s", "v")
    payload = r.dump("s")
    assert payload is not None
    call = r.execute_command
    assert error_of(call, "RESTORE", "t", "-1", payload) == "Invalid TTL value, must be >= 0"
    assert error_of(call, "RESTORE", "t", "abc", payload) == "value is not an integer or out of range"
    wrong = "DUMP payload version or checksum are wrong"
    assert error_of(call, "RESTORE", "t", "0", payload[:-1] + b"x") == wrong
    assert error_of(call, "RESTORE", "t", "0", b"junk") == wrong
    assert error_of(call, "RESTORE", "t", "0", b"\x00\x03bar\x0b\x00" + payload[-8:]) == wrong  # RDB 11
    assert (
        error_of(call, "RESTORE", "t", "0", payload, "IDLETIME", "-1")
        == "Invalid IDLETIME value, must be >= 0"
    )
    assert error_of(call, "RESTORE", "t", "0", payload, "FREQ", "300") == (
        "Invalid FREQ value, must be >= 0 and <= 255"
    )
    assert error_of(call, "RESTORE", "t", "0", payload, "FREQ", "3", "IDLETIME", "5") == "syntax error"
    assert error_of(call, "RESTORE", "t", "0", payload, "BOGUS") == "syntax error"
    assert error_of(call, "DUMP") == "wrong number of arguments for 'dump' command"
    assert error_of(call, "RESTORE", "t", "0") == "wrong number of arguments for 'restore' command"
    assert r.exists("t") == 0


def test_restore_with_a_relative_ttl_is_propagated_with_the_absolute_deadline(
    node_factory: NodeFactory,
) -> None:
    node = node_factory("n", appendonly="yes")
    r = node.client()
    r.set("s", "v")
    payload = r.dump("s")
    assert r.restore("t", 600_000, payload) == b"OK"
    deadline = r.pexpiretime("t")
    aof = b"".join(path.read_bytes() for path in sorted((node.dir / "appendonlydir").iterdir()))
    assert b"ABSTTL" in aof and b"%d" % deadline in aof
    node.stop()
    node.start()
    r = node.client()
    assert r.pexpiretime("t") == deadline and r.get("t") == b"v"


def test_restore_of_garbage_that_passes_the_checksum_is_bad_data_format(node: NodeProcess) -> None:
    from actors.persistence.rdb.native import crc64

    body = b"\x04\x05junk!\x0a\x00"  # a hash whose "length" is followed by too little
    payload = body + crc64(0, body).to_bytes(8, "little")
    assert error_of(node.client().execute_command, "RESTORE", "t", "0", payload) == "Bad data format"
    empty_hash = b"\x04\x00\x0a\x00"
    payload = empty_hash + crc64(0, empty_hash).to_bytes(8, "little")
    assert error_of(node.client().execute_command, "RESTORE", "t", "0", payload) == "Bad data format"


def test_info_counts_payload_sanitizations_as_redis_server_does(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """INFO's dump_payload_sanitizations: one per ziplist / listpack / intset blob RESTORE deep-checks, which
    sanitize-dump-payload decides (no: none; yes: every RESTORE; clients: a plain client's, not a user with
    skip-sanitize-payload). The same payloads go to redis-server and the counts must match."""
    reference = redis_servers(tmp_path)
    source = reference.client
    source.hset("h", mapping={"f": "v"})  # listpack: 1
    source.sadd("ints", 1, 2, 3)  # intset: 1
    source.sadd("big", *[f"m{i}" for i in range(200)])  # hashtable: 0
    source.config_set("list-max-listpack-size", "2")
    source.rpush("l", "a", "b", "c", "d", "e")  # a quicklist of 3 packed nodes: 3
    source.xadd("s", {"f": "v"})  # one listpack: 1
    payloads = {key: source.dump(key) for key in ("h", "ints", "big", "l", "s")}
    source.flushall()
    seen = []
    for r in (node.client(), source):
        counts = []
        for mode in ("no", "yes", "clients"):
            r.config_set("sanitize-dump-payload", mode)
            for key, payload in payloads.items():
                r.restore(f"{key}-{mode}", 0, payload)
            counts.append(int(r.info("stats")["dump_payload_sanitizations"]))
        r.execute_command("ACL", "SETUSER", "trusted", "on", "nopass", "+@all", "~*", "skip-sanitize-payload")
        r.execute_command("AUTH", "trusted", "x")
        r.restore("h-trusted", 0, payloads["h"])
        counts.append(int(r.info("stats")["dump_payload_sanitizations"]))
        seen.append(counts)
    assert seen[0] == seen[1] == [0, 6, 12, 12], seen
