"""Lazy freeing for UNLINK: a big value leaves the keyspace at once and is emptied in slices afterwards.

Deleting a collection of millions of elements takes CPython most of a second, during which the node answers
no one. Redis's UNLINK hands such values to a background thread; a Python thread would hold the GIL for the
whole deallocation just the same, so here the value is emptied on the master loop a slice at a time
(``SLICE_ELEMENTS`` per turn of the loop, other clients served in between) and dropped once empty.

Which values go this way is Redis 7.0's rule (lazyfreeGetFreeEffort, LAZYFREE_THRESHOLD): those whose free
"effort" passes 64, i.e. a hashtable-encoded hash or set, a skiplist sorted set, a list of many quicklist
nodes, a stream of many nodes or consumer-group entries; small encodings (listpack, intset) and strings are
one allocation and freed at once. INFO memory's ``lazyfree_pending_objects`` counts the values waiting or
being emptied, ``lazyfreed_objects`` those done since the start or CONFIG RESETSTAT. FLUSHDB / FLUSHALL
ASYNC still free synchronously (the keyspace has no detached-database path yet).
"""

from __future__ import annotations

import sys
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from actors.data.stream import Stream
from actors.data.types import ZSet

if TYPE_CHECKING:
    from actors.server.server import Server

# Redis's LAZYFREE_THRESHOLD: a value whose free effort is at most this is freed at once.
LAZYFREE_THRESHOLD = 64
# Elements removed per turn of the loop: a few milliseconds of work at most.
SLICE_ELEMENTS = 20_000
# sys.getrefcount(value) inside submit() when only the caller (UNLINK) holds the value: the caller's name,
# submit's parameter and getrefcount's own argument.
_SOLE_REFERENCES = 3
# A quicklist node holds up to 8 KB (list-max-listpack-size -2); a list's node count is estimated from its
# length as if its elements took this many bytes each (Redis counts the nodes it has).
_LIST_ELEMENTS_PER_NODE = 128


class LazyFree:
    """One node's queue of values being emptied, and its counters."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.queue: deque[Any] = deque()
        self.freed_objects = 0
        self._scheduled = False

    @property
    def pending_objects(self) -> int:
        return len(self.queue)

    def submit(self, value: Any) -> None:
        """``value`` just left the keyspace (UNLINK): free it in slices if it is big, else now (by returning).

        Only a value nothing else refers to is emptied (Redis: refcount 1): the caller's reference and this
        call's are the only ones then; one held elsewhere just loses this reference."""
        if sys.getrefcount(value) > _SOLE_REFERENCES or free_effort(value, self.server) <= LAZYFREE_THRESHOLD:
            return
        master = self.server.master_actor
        loop = master.loop if master is not None else None
        if loop is None:  # no loop to run slices on (a node without its actor): freed now
            return
        self.queue.append(value)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._slice)

    def _slice(self) -> None:
        """One turn's work: empty the oldest value by up to SLICE_ELEMENTS, then yield to the loop."""
        self._scheduled = False
        if not self.queue:
            return
        if _empty_some(self.queue[0], SLICE_ELEMENTS):
            self.queue.popleft()  # the last reference: what is left of it goes now, and it is small
            self.freed_objects += 1
        if self.queue:
            master = self.server.master_actor
            loop = master.loop if master is not None else None
            if loop is not None:
                self._scheduled = True
                loop.call_soon(self._slice)


def free_effort(value: Any, server: Server) -> int:
    """Redis's lazyfreeGetFreeEffort: about how many allocations freeing ``value`` takes."""
    kind = type(value)
    if kind is bytes:
        return 1
    if kind is deque:
        return -(-len(value) // _LIST_ELEMENTS_PER_NODE)
    if kind is Stream:
        effort = len(value.nodes)
        if value.groups:
            first = next(iter(value.groups.values()))
            effort += len(value.groups) * (1 + len(first.pel))
        return effort
    from actors.commands.keys import object_encoding  # lazily: commands import the server package

    if kind not in (dict, set, ZSet) or object_encoding(value, server.config) in ("listpack", "intset"):
        return 1  # one allocation, as in Redis (and any other kind of value: freed at once)
    return len(value)


def _empty_some(value: Any, budget: int) -> bool:
    """Remove up to ``budget`` elements from ``value``; True once it is empty (or has no parts to remove)."""
    kind = type(value)
    if kind is set or kind is deque:
        pop = value.pop
        for _ in range(min(budget, len(value))):
            pop()
        return not value
    if kind is dict:
        popitem = value.popitem
        for _ in range(min(budget, len(value))):
            popitem()
        return not value
    if kind is ZSet:
        popitem, pop = value.scores.popitem, value.ordered.pop
        for _ in range(min(budget, len(value.scores))):
            popitem()
            pop()
        return not value.scores
    if kind is Stream:
        for part in (value.entries, value.nodes):
            popitem = part.popitem
            for _ in range(min(budget, len(part))):
                popitem()
                budget -= 1
        for group in value.groups.values():
            popitem = group.pel.popitem
            for _ in range(min(budget, len(group.pel))):
                popitem()
                budget -= 1
        return not value.entries and not value.nodes and all(not g.pel for g in value.groups.values())
    return True


_instances: weakref.WeakKeyDictionary[Server, LazyFree] = weakref.WeakKeyDictionary()


def of(server: Server) -> LazyFree:
    """The server's lazy-free queue, made on first use."""
    found = _instances.get(server)
    if found is None:
        found = _instances[server] = LazyFree(server)
    return found


def stats(server: Server) -> tuple[int, int]:
    """INFO memory's (lazyfree_pending_objects, lazyfreed_objects)."""
    found = _instances.get(server)
    return (found.pending_objects, found.freed_objects) if found is not None else (0, 0)


def reset_stats(server: Server) -> None:
    """CONFIG RESETSTAT: lazyfreed_objects starts again from 0 (the pending ones stay pending)."""
    found = _instances.get(server)
    if found is not None:
        found.freed_objects = 0
