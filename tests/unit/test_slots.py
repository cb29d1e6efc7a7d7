"""Hash slots (protocol/slots.py) and the bus-port rule (protocol/ports.py): Redis's vectors and edge cases.

The comparison with redis-server's CLUSTER KEYSLOT needs a redis-server started with cluster mode on; it
answers KEYSLOT with no slots assigned.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from protocol.ports import BUS_PORT_OFFSET, bus_port_for
from protocol.slots import SLOTS, hashtag, keyslot
from tests.harness import RedisServer


def test_crc16_is_redis_xmodem_variant() -> None:
    from binascii import crc_hqx

    assert crc_hqx(b"123456789", 0) == 0x31C3  # the check value in Redis's crc16.c
    assert keyslot(b"123456789") == 0x31C3 & (SLOTS - 1)


@pytest.mark.parametrize(
    ("key", "slot"),
    [
        # The cluster tutorial's and redis-cli's examples.
        (b"foo", 12182),
        (b"bar", 5061),
        (b"hello", 866),
        (b"somekey", 11058),
        (b"", 0),
        (b"{user1000}.following", 3443),
        (b"{user1000}.followers", 3443),
    ],
)
def test_keyslot_matches_redis_documented_examples(key: bytes, slot: int) -> None:
    assert keyslot(key) == slot


@pytest.mark.parametrize(
    ("key", "tag"),
    [
        (b"{user1000}.following", b"user1000"),
        (b"foo{{bar}}zap", b"{bar"),  # the cluster spec: from the first '{' to the first '}'
        (b"foo{bar}{zap}", b"bar"),  # only the first tag counts
        (b"foo{}{bar}", b"foo{}{bar}"),  # an empty tag: the whole key is hashed
        (b"{}", b"{}"),
        (b"{", b"{"),
        (b"}{", b"}{"),  # a '}' before the first '{' closes nothing
        (b"a}b{c}", b"c"),
        (b"no braces", b"no braces"),
        (b"{a}", b"a"),
        (b"x{\x00\xff}y", b"\x00\xff"),  # binary-safe
    ],
)
def test_hashtag_follows_the_cluster_spec(key: bytes, tag: bytes) -> None:
    assert hashtag(key) == tag
    assert keyslot(key) == keyslot(tag)  # keyslot hashes exactly what hashtag names


def test_keys_with_one_tag_share_a_slot() -> None:
    assert len({keyslot(b"{tag}%d" % i) for i in range(100)}) == 1
    assert len({keyslot(b"%d" % i) for i in range(100)}) > 90


def test_bus_port_is_the_resp_port_plus_ten_thousand_unless_explicit() -> None:
    assert BUS_PORT_OFFSET == 10000
    assert bus_port_for(6379) == 16379
    assert bus_port_for(7001, 9000) == 9000
    assert bus_port_for(7001, 0) == 17001


def _random_key(rng: random.Random) -> bytes:
    alphabet = b"ab{}x\x00\xff"
    if rng.random() < 0.5:
        return bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 8)))
    return rng.randbytes(rng.randrange(0, 24))


@pytest.mark.compat
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_keyslot_equals_redis_server_cluster_keyslot_on_random_keys(
    redis_servers: Callable[..., RedisServer], tmp_path: Path, seed: int
) -> None:
    nodes_conf = tmp_path / "nodes.conf"
    server = redis_servers(tmp_path, "--cluster-enabled", "yes", "--cluster-config-file", str(nodes_conf))
    rng = random.Random(seed)
    keys = [_random_key(rng) for _ in range(2000)] + [b"{}", b"{", b"}", b"{{}}", b"{a}{b}"]
    pipe = server.client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("CLUSTER", "KEYSLOT", key)
    theirs = pipe.execute()
    for key, slot in zip(keys, theirs, strict=True):
        assert keyslot(key) == slot, f"seed={seed} key={key!r}: redis-server says {slot}"
