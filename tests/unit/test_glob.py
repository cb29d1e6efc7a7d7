"""compile_glob against a plain backtracking reference (Redis's stringmatchlen, transcribed) on random input."""

from __future__ import annotations

import random

from actors.commands._util import compile_glob, glob_match


def stringmatch(p: bytes, s: bytes) -> bool:
    """A direct transcription of Redis 7.0's stringmatchlen (util.c), exponential but exact: the reference."""
    pi, si = 0, 0
    while pi < len(p) and si < len(s):
        c = p[pi]
        if c == 0x2A:
            while pi + 1 < len(p) and p[pi + 1] == 0x2A:
                pi += 1
            if pi + 1 == len(p):
                return True
            return any(stringmatch(p[pi + 1 :], s[k:]) for k in range(si, len(s)))
        if c == 0x3F:
            si += 1
        elif c == 0x5B:
            pi += 1
            negate = pi < len(p) and p[pi] == 0x5E
            if negate:
                pi += 1
            match = False
            while True:
                if pi < len(p) and p[pi] == 0x5C and len(p) - pi >= 2:
                    pi += 1
                    match |= p[pi] == s[si]
                elif pi < len(p) and p[pi] == 0x5D:
                    break
                elif pi >= len(p):
                    pi -= 1
                    break
                elif len(p) - pi >= 3 and p[pi + 1] == 0x2D:
                    low, high = sorted((p[pi], p[pi + 2]))
                    match |= low <= s[si] <= high
                    pi += 2
                else:
                    match |= p[pi] == s[si]
                pi += 1
            if match == negate:
                return False
            si += 1
        else:
            if c == 0x5C and len(p) - pi >= 2:
                pi += 1
                c = p[pi]
            if c != s[si]:
                return False
            si += 1
        pi += 1
        if si == len(s):
            while pi < len(p) and p[pi] == 0x2A:
                pi += 1
            break
    return pi == len(p) and si == len(s)


def test_random_patterns_agree_with_stringmatchlen(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(20000):
        pattern = bytes(rng.choice(b"ab*?[]^-\\") for _ in range(rng.randint(0, 8)))
        subject = bytes(rng.choice(b"ab-]^\\[*?") for _ in range(rng.randint(0, 7)))
        assert compile_glob(pattern)(subject) == stringmatch(pattern, subject), (pattern, subject)


def test_a_lone_star_lists_every_key_as_keys_and_scan_do() -> None:
    assert glob_match(b"*", b"") and not compile_glob(b"*")(b"")


def test_twenty_stars_against_forty_bytes_is_immediate() -> None:
    assert not glob_match(b"a*" * 20 + b"b", b"a" * 40)
    assert glob_match(b"a*" * 20 + b"b", b"a" * 39 + b"b")
