"""Value types that Python does not already provide: the sorted set, and its range bounds.

A sorted set is a dict (member -> score, O(1) ZSCORE) beside a ``SortedList`` of ``(score, member)`` pairs
(O(log n) rank and range queries), the same pair of structures as Redis's skiplist + dict encoding. Ties in
score order by member bytes, as Redis's memcmp does, which is exactly tuple ordering on ``(float, bytes)``.

Range queries resolve their bounds to a half-open index interval ``[start, stop)`` of ``ordered`` by bisection
(``score_start``/``score_stop``, ``lex_start``/``lex_stop``), so ZRANGEBYSCORE, ZCOUNT, ZREMRANGEBYLEX and
friends cost O(log n) plus the size of what they return, never a sort or a scan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sortedcontainers import SortedList

_INF = math.inf


class _Ordered(SortedList):
    """The sorted set's ordered pairs: a SortedList with sublists of ~512 pairs instead of ~1000.

    ZPOPMIN deletes the first pair of the first sublist, a memmove of the whole sublist: at 1000 that copy was
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
        # member -> score: ZSCORE, ZADD's "is it new", membership.
        self.scores: dict[bytes, float] = {}
        # (score, member) in Redis order: ranks and ranges in O(log n).
        self.ordered: SortedList = _Ordered()
        for member, score in pairs:
            self.add(member, score)

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
        if old is not None:
            if old == score:
                return False
            self.ordered.remove((old, member))
            self.scores[member] = score
            self.ordered.add((score, member))
            return False
        self.scores[member] = score
        self.ordered.add((score, member))
        return True

    def remove(self, member: bytes) -> bool:
        old = self.scores.pop(member, None)
        if old is None:
            return False
        self.ordered.remove((old, member))
        return True

    def score(self, member: bytes) -> float | None:
        return self.scores.get(member)

    def rank(self, member: bytes) -> int | None:
        score = self.scores.get(member)
        if score is None:
            return None
        return int(self.ordered.index((score, member)))

    def items(self) -> Iterator[tuple[bytes, float]]:
        """(member, score) in ascending order."""
        for score, member in self.ordered:
            yield member, score

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
        # b"" sorts before every member, so this lands on the first element with this score.
        return int(self.ordered.bisect_left((low, b"")))

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
        tuple bisection is exact). With mixed scores Redis's answer is unspecified; this walks the positions
        comparing members only, as Redis's skiplist walk does, in O(log^2 n).
        """
        ordered = self.ordered
        n = len(ordered)
        if n == 0:
            return 0
        first_score = ordered[0][0]
        if first_score == ordered[-1][0]:
            probe = (first_score, value)
            return int(ordered.bisect_right(probe) if after_equal else ordered.bisect_left(probe))
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            member = ordered[mid][1]
            if member > value or (member == value and not after_equal):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def slice(self, start: int, stop: int, reverse: bool = False) -> Iterator[tuple[float, bytes]]:
        """The ``(score, member)`` pairs at indexes ``[start, stop)``, highest index first if ``reverse``."""
        if start >= stop:
            return iter(())
        return iter(self.ordered.islice(start, stop, reverse=reverse))

    def insert(self, member: bytes, score: float) -> None:
        """``add`` of a member known to be new (the caller looked it up): one dict probe less."""
        self.scores[member] = score
        self.ordered.add((score, member))

    def pop_one(self, highest: bool) -> tuple[bytes, float]:
        """Remove and return the (member, score) pair at the low (or high) end of a non-empty set."""
        score, member = self.ordered.pop(-1 if highest else 0)
        del self.scores[member]
        return member, score

    def pop(self, count: int, highest: bool) -> list[tuple[bytes, float]]:
        """Remove and return up to ``count`` (member, score) pairs from the low (or high) end, in pop order."""
        out: list[tuple[bytes, float]] = []
        ordered = self.ordered
        scores = self.scores
        for _ in range(min(count, len(ordered))):
            score, member = ordered.pop(-1 if highest else 0)
            del scores[member]
            out.append((member, score))
        return out

    def remove_slice(self, start: int, stop: int) -> int:
        """Remove the elements at indexes ``[start, stop)``; returns how many went."""
        if start >= stop:
            return 0
        doomed = list(self.ordered.islice(start, stop))
        del self.ordered[start:stop]
        scores = self.scores
        for _, member in doomed:
            del scores[member]
        return len(doomed)
