"""Value types that Python does not already provide: the sorted set.

A sorted set is a dict (member -> score, O(1) ZSCORE) beside a ``SortedList`` of ``(score, member)`` pairs
(O(log n) rank and range queries), the same pair of structures as Redis's skiplist + dict encoding. Ties in
score order by member bytes, as Redis's memcmp does, which is exactly tuple ordering on ``(float, bytes)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sortedcontainers import SortedList


class ZSet:
    __slots__ = ("scores", "ordered")

    def __init__(self, pairs: Iterable[tuple[bytes, float]] = ()) -> None:
        # member -> score: ZSCORE, ZADD's "is it new", membership.
        self.scores: dict[bytes, float] = {}
        # (score, member) in Redis order: ranks and ranges in O(log n).
        self.ordered: SortedList = SortedList()
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
        clone.ordered = SortedList(self.ordered)
        return clone
