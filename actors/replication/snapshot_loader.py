"""The replica's snapshot loader: a full sync's RDB parsed in a worker thread while it is being received.

Owns ``SnapshotLoader`` (the thread and the chunks it has not parsed yet) and ``Loaded``, its result as told to
the replication actor (replica.py installs it). key-load-delay, Redis's hidden test knob, stretches the load.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from actors.persistence.loading import KEY_LOAD_DELAY_SLICE_S, key_load_delay_s
from actors.persistence.rdb import reader as rdb_reader
from actors.persistence.rdb.format import RdbData


class Loaded(NamedTuple):
    """A loader thread finished parsing a received snapshot, or gave up on it (told to the actor)."""

    attempt: int
    result: RdbData | Exception
    duration_ms: float


class _LoadAbandoned(Exception):
    """The transfer a loader thread parses was abandoned (the link was lost): the thread just ends."""


class SnapshotLoader:
    """Parses a full sync's snapshot in a worker thread while it is being received (replica side).

    The actor feeds each chunk as it arrives (``feed``), then ``finish`` at the snapshot's end or ``abandon``
    if the link is lost; the thread parses with ``rdb_reader.load_stream``, so loading overlaps the transfer (and
    the master's child writing it) instead of following it, and only the part not parsed yet is held in
    memory. The result (databases, or the error) is told to the actor as ``Loaded``; the live keyspace is
    not touched: the loop swaps the new databases in at once, so a failed sync leaves the old data in place.
    """

    def __init__(
        self, attempt: int, num_dbs: int, deliver: Any, delay_us: Callable[[], int] = lambda: 0
    ) -> None:
        self.attempt = attempt
        self._num_dbs = num_dbs
        self._deliver = deliver  # called with the Loaded, from the loader thread
        self._delay_us = delay_us  # key-load-delay, read as the load goes (CONFIG SET may change it)
        self._pieces: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._started_s = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="replication-snapshot-load", daemon=True)
        self._thread.start()

    def feed(self, chunk: bytes) -> None:
        if chunk:
            self._pieces.put(chunk)

    def finish(self) -> None:
        self._pieces.put(b"")

    def abandon(self) -> None:
        self._pieces.put(None)

    def _next_piece(self) -> bytes:
        piece = self._pieces.get()
        if piece is None:
            raise _LoadAbandoned
        return piece

    def _serve_key_load_delay(self, keys: int) -> None:
        """``key-load-delay``: the load takes as much longer as Redis's per-key sleeps would (Redis's cluster suite
        catches a replica mid-load this way: CLUSTER SHARDS' "loading", a loading replica left out of CLUSTER
        SLOTS). Served after the parse, in slices that re-read the setting; a lost link ends it."""
        started_s = time.monotonic()
        while (left_s := key_load_delay_s(self._delay_us(), keys) - (time.monotonic() - started_s)) > 0:
            try:
                piece = self._pieces.get(timeout=min(left_s, KEY_LOAD_DELAY_SLICE_S))
            except queue.Empty:
                continue
            if piece is None:
                raise _LoadAbandoned

    def _run(self) -> None:
        result: RdbData | Exception
        try:
            result = rdb_reader.load_stream(self._next_piece, self._num_dbs)
            self._serve_key_load_delay(sum(len(db.data) for db in result.dbs))
        except _LoadAbandoned:
            return
        except Exception as exc:  # reported to the actor, which drops the link
            result = exc
        try:
            self._deliver(Loaded(self.attempt, result, round((time.monotonic() - self._started_s) * 1000, 1)))
        except Exception:
            pass  # the actor stopped meanwhile
