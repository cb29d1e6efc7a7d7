"""Value types that Python does not already provide: the sorted set, and its range bounds.

A sorted set is a dict (member -> score, O(1) ZSCORE) beside a ``SortedList`` of ordering keys (O(log n) rank
and range queries), the same pair of structures as Redis's skiplist + dict encoding. Each member's ordering key
is one bytes object: its score in 8 order-preserving bytes (``score_key``), then the member's bytes. Bytewise
order on these keys is exactly Redis's order - score, then member by memcmp - and one comparison is one memcmp
on one object. (A ``(score, member)`` tuple compared a tuple, two floats and, on equal scores, two bytes: on a
100k-member set each of an insertion's ~20 comparisons was several cache misses.) The ``scores`` dict stays
the source of every score a reply shows; a key's first 8 bytes are only for ordering.

Range queries resolve their bounds to a half-open index interval ``[start, stop)`` of ``ordered`` by bisection
(``score_start``/``score_stop``, ``lex_start``/``lex_stop``), so ZRANGEBYSCORE, ZCOUNT, ZREMRANGEBYLEX and
friends cost O(log n) plus the size of what they return, never a sort or a scan.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter

from sortedcontainers import SortedList

_INF = math.inf
_pack_double = struct.Struct(">d").pack
# Every byte inverted: a negative score's IEEE 754 bytes read in reverse order of magnitude.
_INVERT = bytes(255 - b for b in range(256))
# The key of 0.0 and of -0.0: one score to Redis (0 == -0), so one position.
_ZERO_KEY = _pack_double(-0.0)
# The length of a key's score prefix.
SCORE_KEY_BYTES = 8
# key -> member: a C-level slice, no Python frame per element.
_member_of = itemgetter(slice(SCORE_KEY_BYTES, None))


def score_key(score: float) -> bytes:
    """8 bytes whose bytewise order is the numeric order of the scores (NaN is refused before it gets here).

    IEEE 754 big-endian with the sign bit flipped for a positive score (which is the encoding of ``-score``:
    one pack, no bit twiddling) and every bit flipped for a negative one, so -inf < negatives < 0 < positives
    < +inf byte by byte; 0.0 and -0.0 share one key.
    """
    if score > 0.0:
        return _pack_double(-score)
    if score < 0.0:
        return _pack_double(score).translate(_INVERT)
    return _ZERO_KEY


class _Ordered(SortedList):
    """The sorted set's ordering keys: a SortedList with sublists of ~512 keys instead of ~1000.

    ZPOPMIN deletes the first key of the first sublist, a memmove of the whole sublist: at 1000 that copy was
    a sixth of a pipelined ZPOPMIN (~7,000 of 43,900 instructions). Halving the load factor makes it and
    ZADD's insertion shorter for one more comparison in the bisection of the sublists' maxima (measured on a
    10-60k member set: ZPOPMIN -25%, ZADD -3%; 256 made ZADD dearer, splitting sublists twice as often)."""

    DEFAULT_LOAD_FACTOR = 512


@dataclass(frozen=True, slots=True)
class LexBound:
    """One end of a ZRANGEBYLEX interval: ``-`` (below everything), ``+`` (above everything), ``[v`` or ``(v``."""

    # -1 for "-", +1 for "+", 0 for a member value.
    infinity: int
    value: bytes = b""
    # True for "(v": the value itself is outside the interval.
    exclusive: bool = False


class ZSet:
    __slots__ = ("scores", "ordered")

    def __init__(self, pairs: Iterable[tuple[bytes, float]] = ()) -> None:
        """A sorted set of ``pairs`` (a member given twice keeps its last score), ordered in one sort."""
        # member -> score: ZSCORE, ZADD's "is it new", membership, and every score a reply shows.
        self.scores: dict[bytes, float] = dict(pairs)
        # score_key(score) + member, in Redis order: ranks and ranges in O(log n).
        self.ordered: SortedList = _Ordered()
        if self.scores:
            self.ordered.update([score_key(score) + member for member, score in self.scores.items()])

    def __len__(self) -> int:
        return len(self.scores)

    def __contains__(self, member: object) -> bool:
        return member in self.scores

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ZSet) and self.scores == other.scores

    def __repr__(self) -> str:
        return f"ZSet({list(self.items())!r})"

    def add(self, member: bytes, score: float) -> bool:
        """Set ``member``'s score. Returns True if the member is new."""
        old = self.scores.get(member)
        if old is None:
            self.insert(member, score)
            return True
        if old != score:
            self.move(member, old, score)
        return False

    # insert and move inline score_key's positive branch (the common score): ZADD's paths, without a call.

    def insert(self, member: bytes, score: float) -> None:
        """``add`` of a member known to be new (the caller looked it up): one dict probe less."""
        self.scores[member] = score
        self.ordered.add((_pack_double(-score) if score > 0.0 else score_key(score)) + member)

    def move(self, member: bytes, old: float, score: float) -> None:
        """``add`` of a member known to hold ``old`` (the caller looked it up), a different score."""
        ordered = self.ordered
        ordered.remove((_pack_double(-old) if old > 0.0 else score_key(old)) + member)
        self.scores[member] = score
        ordered.add((_pack_double(-score) if score > 0.0 else score_key(score)) + member)

    @classmethod
    def adopt(cls, scores: dict[bytes, float]) -> ZSet:
        """A sorted set holding ``scores`` itself (not a copy), ordered in one sort: a loader's bulk build."""
        zset = cls()
        zset.scores = scores
        zset.ordered.update([score_key(score) + member for member, score in scores.items()])
        return zset

    def remove(self, member: bytes) -> bool:
        old = self.scores.pop(member, None)
        if old is None:
            return False
        self.ordered.remove(score_key(old) + member)
        return True

    def score(self, member: bytes) -> float | None:
        return self.scores.get(member)

    def rank(self, member: bytes) -> int | None:
        score = self.scores.get(member)
        if score is None:
            return None
        return int(self.ordered.index(score_key(score) + member))

    def members(self) -> list[bytes]:
        """Every member, in ascending order."""
        return list(map(_member_of, self.ordered))

    def items(self) -> Iterator[tuple[bytes, float]]:
        """(member, score) in ascending order."""
        scores = self.scores
        for member in map(_member_of, self.ordered):
            yield member, scores[member]

    def pair_at(self, index: int) -> tuple[float, bytes]:
        """The ``(score, member)`` pair at rank ``index`` (negative from the end)."""
        member = self.ordered[index][SCORE_KEY_BYTES:]
        return self.scores[member], member

    def copy(self) -> ZSet:
        clone = ZSet()
        clone.scores = dict(self.scores)
        clone.ordered = _Ordered(self.ordered)
        return clone

    # -- range queries (O(log n) bounds; see the module docstring) -------------------------------------

    def score_start(self, low: float, exclusive: bool) -> int:
        """Index of the first element whose score is >= ``low`` (> when ``exclusive``)."""
        if exclusive:
            if low == _INF:
                return len(self.ordered)
            low = math.nextafter(low, _INF)
        # The bare score key sorts before every key that extends it: this lands on the first element with
        # this score.
        return int(self.ordered.bisect_left(score_key(low)))

    def score_stop(self, high: float, exclusive: bool) -> int:
        """Index just past the last element whose score is <= ``high`` (< when ``exclusive``)."""
        return self.score_start(high, not exclusive)

    def lex_start(self, bound: LexBound) -> int:
        """Index of the first element at or after ``bound`` as the start of a lex interval."""
        if bound.infinity < 0:
            return 0
        if bound.infinity > 0:
            return len(self.ordered)
        return self._lex_bisect(bound.value, after_equal=bound.exclusive)

    def lex_stop(self, bound: LexBound) -> int:
        """Index just past the last element at or before ``bound`` as the end of a lex interval."""
        if bound.infinity < 0:
            return 0
        if bound.infinity > 0:
            return len(self.ordered)
        return self._lex_bisect(bound.value, after_equal=not bound.exclusive)

    def _lex_bisect(self, value: bytes, after_equal: bool) -> int:
        """First index whose member is > ``value`` (``after_equal``) or >= it.

        Lex ranges are meant for sets whose members all share one score (then members are in byte order and
        key bisection is exact). With mixed scores Redis's answer is unspecified; this walks the positions
        comparing members only, as Redis's skiplist walk does, in O(log^2 n).
        """
        ordered = self.ordered
        n = len(ordered)
        if n == 0:
            return 0
        first_score = ordered[0][:SCORE_KEY_BYTES]
        if first_score == ordered[-1][:SCORE_KEY_BYTES]:
            probe = first_score + value
            return int(ordered.bisect_right(probe) if after_equal else ordered.bisect_left(probe))
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            member = ordered[mid][SCORE_KEY_BYTES:]
            if member > value or (member == value and not after_equal):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def slice(self, start: int, stop: int, reverse: bool = False) -> list[tuple[float, bytes]]:
        """The ``(score, member)`` pairs at indexes ``[start, stop)``, highest index first if ``reverse``."""
        if start >= stop:
            return []
        scores = self.scores
        members = map(_member_of, self.ordered.islice(start, stop, reverse=reverse))
        return [(scores[member], member) for member in members]

    def pop(self, count: int, highest: bool) -> list[tuple[bytes, float]]:
        """Remove and return up to ``count`` (member, score) pairs from the low (or high) end, in pop order."""
        out: list[tuple[bytes, float]] = []
        pop_key = self.ordered.pop
        scores = self.scores
        end = -1 if highest else 0
        for _ in range(min(count, len(scores))):
            member = pop_key(end)[SCORE_KEY_BYTES:]
            out.append((member, scores[member]))
            del scores[member]
        return out

    def remove_slice(self, start: int, stop: int) -> int:
        """Remove the elements at indexes ``[start, stop)``; returns how many went."""
        if start >= stop:
            return 0
        doomed = list(map(_member_of, self.ordered.islice(start, stop)))
        del self.ordered[start:stop]
        scores = self.scores
        for member in doomed:
            del scores[member]
        return len(doomed)
