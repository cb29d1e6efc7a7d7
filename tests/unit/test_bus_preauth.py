"""protocol/bus_preauth.py: the msgpack header walker agrees with what msgpack would build, without building it."""

from __future__ import annotations

import random

import msgpack
import pytest

from protocol.bus_preauth import (
    PREAUTH_MAX_BULK_BYTES,
    PREAUTH_NODE_MAX_ITEMS,
    PREAUTH_REQUEST_MAX_ITEMS,
    REFUSED_BULK,
    REFUSED_ITEMS,
    preauth_refusal,
)
from protocol.envelope import encode_request
from protocol.peer import Psync, encode


def _request(argv: list[bytes]) -> str | None:
    return preauth_refusal(encode_request(7, argv), PREAUTH_REQUEST_MAX_ITEMS, PREAUTH_MAX_BULK_BYTES)


def test_redis_limits_on_requests() -> None:
    assert _request([b"AUTH", b"pw"]) is None
    assert _request([b"x"] * 10) is None
    assert _request([b"x"] * 11) == REFUSED_ITEMS
    assert _request([b"SET", b"k", b"v" * PREAUTH_MAX_BULK_BYTES]) is None
    assert _request([b"SET", b"k", b"v" * (PREAUTH_MAX_BULK_BYTES + 1)]) == REFUSED_BULK
    # Strings as str (utf-8) and as bin are both bounded.
    frame = msgpack.packb([1, 1, ["SET", "k", "v" * (PREAUTH_MAX_BULK_BYTES + 1)]], use_bin_type=True)
    assert preauth_refusal(frame, PREAUTH_REQUEST_MAX_ITEMS, PREAUTH_MAX_BULK_BYTES) == REFUSED_BULK


def test_announced_counts_are_refused_before_their_elements() -> None:
    # An array32 announcing 4 billion elements, and a frame of 100,000 tiny ones: refused at the header.
    assert preauth_refusal(b"\x93\x01\x01\xdd\xff\xff\xff\xff", 14, 16384) == REFUSED_ITEMS
    tiny = msgpack.packb([1, 1, [1] * 100_000])
    assert preauth_refusal(tiny, 14, 16384) == REFUSED_ITEMS
    assert preauth_refusal(msgpack.packb({i: i for i in range(8)}), 14, 16384) == REFUSED_ITEMS
    # Nested containers count with their elements.
    assert preauth_refusal(msgpack.packb([[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]), 14, 16384) == REFUSED_ITEMS


def test_garbage_is_left_to_the_decoder() -> None:
    assert preauth_refusal(b"\xc1not msgpack", 14, 16384) is None
    assert preauth_refusal(b"", 14, 16384) is None
    assert preauth_refusal(b"\x93\x01", 14, 16384) is None  # cut short


def test_a_replicas_psync_passes() -> None:
    header = encode(Psync("?", -1, "n" * 40, 6379, "127.0.0.1", "masteruser pw"))[1]
    assert preauth_refusal(header, PREAUTH_NODE_MAX_ITEMS, PREAUTH_MAX_BULK_BYTES) is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_walk_matches_msgpack_on_random_messages(seed: int) -> None:
    """The walker's element count is msgpack's: refused exactly when the built message has too many."""
    rng = random.Random(seed)
    print(f"seed {seed}")

    def value(depth: int) -> object:
        kind = rng.randrange(9 if depth < 3 else 6)
        if kind == 0:
            return rng.choice([0, 1, -1, 127, 128, -33, 2**16, 2**33, -(2**40), 2**64 - 1])
        if kind == 1:
            return rng.choice([None, True, False, 1.5])
        if kind == 2:
            return b"b" * rng.choice([0, 5, 40, 300, 70_000])
        if kind == 3:
            return "s" * rng.choice([0, 5, 31, 40, 300])
        if kind == 4:
            return msgpack.ExtType(1, b"e" * rng.choice([1, 2, 4, 8, 16, 3, 300]))
        if kind == 5:
            return rng.random()
        if kind in (6, 7):
            return [value(depth + 1) for _ in range(rng.randrange(0, 20))]
        return {i: value(depth + 1) for i in range(rng.randrange(0, 18))}

    def count(v: object) -> tuple[int, int]:
        if isinstance(v, list):
            parts = [count(x) for x in v]
            return 1 + sum(p[0] for p in parts), max([p[1] for p in parts], default=0)
        if isinstance(v, dict):
            parts = [count(k) for k in v] + [count(x) for x in v.values()]
            return 1 + sum(p[0] for p in parts), max([p[1] for p in parts], default=0)
        if isinstance(v, bytes | str):
            return 1, len(v)
        if isinstance(v, msgpack.ExtType):
            return 1, len(v.data)
        return 1, 0

    for _ in range(300):
        v = value(0)
        items, longest = count(v)
        got = preauth_refusal(msgpack.packb(v, use_bin_type=True), 40, 1000)
        if items > 40:
            # Over the count: refused, by the count or by a long string met first.
            assert got in (REFUSED_ITEMS, REFUSED_BULK)
        elif longest > 1000:
            assert got == REFUSED_BULK
        else:
            assert got is None
