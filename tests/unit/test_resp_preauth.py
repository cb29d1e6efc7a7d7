"""PreAuthGuard (protocol/resp_preauth.py): Redis 7's limits before AUTH, whatever the read boundaries."""

from __future__ import annotations

import random

import pytest

from protocol.resp_preauth import PreAuthGuard, PreAuthRefusal


def _bulk(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _walk(data: bytes, cuts: list[int]) -> tuple[int, str] | None:
    """Feed ``data`` cut at ``cuts``; the absolute offset and reply of the first refusal, or None."""
    guard = PreAuthGuard()
    start = 0
    for end in [*cuts, len(data)]:
        refusal = guard.check(data[start:end])
        if refusal is not None:
            return start + refusal.offset, refusal.reply
        start = end
    return None


CASES: list[tuple[bytes, tuple[int, str] | None]] = [
    (_bulk(b"PING"), None),
    (_bulk(b"AUTH", b"pw") + _bulk(b"GET", b"k" * 16384), None),
    (_bulk(b"GET", b"k" * 16385), (0, "ERR Protocol error: unauthenticated bulk length")),
    (_bulk(*[b"x"] * 10), None),
    (_bulk(b"PING") + _bulk(*[b"x"] * 11), (14, "ERR Protocol error: unauthenticated multibulk length")),
    (b"PING\r\n" + _bulk(b"SET", b"k", b"v" * 20000), (6, "ERR Protocol error: unauthenticated bulk length")),
    (b"*0\r\n*-1\r\n" + _bulk(b"PING"), None),
]


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_whole_reads(data: bytes, expected: tuple[int, str] | None) -> None:
    assert _walk(data, []) == expected


def test_any_split_gives_the_same_answer(seed: int) -> None:
    rng = random.Random(seed)
    for data, expected in CASES:
        for _ in range(200):
            cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6))))
            got = _walk(data, cuts)
            if expected is None:
                assert got is None, (data[:40], cuts)
            else:
                # A refused request that began in an earlier read is refused at the start of the read where its
                # header completed (the bytes before were parsed already).
                assert got is not None and got[1] == expected[1], (data[:40], cuts)
                assert got[0] == expected[0] or (got[0] in cuts and got[0] > expected[0]), (
                    got,
                    expected,
                    cuts,
                )


def test_refusal_carries_redis_reason() -> None:
    refusal = PreAuthGuard().check(b"*11\r\n")
    assert refusal == PreAuthRefusal(
        0, "ERR Protocol error: unauthenticated multibulk length", "unauth mbulk count"
    )
