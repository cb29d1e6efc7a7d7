"""The replication backlog: the latest bytes of the replication stream, addressed by stream offset.

Pure data, no I/O and no threads; the replication actor owns one (actors/replication/actor.py). It is Redis's
``repl_backlog``: a bounded window of the stream that lets a replica which lost its link continue from the
byte it was at (a partial resync) instead of loading a whole snapshot again.

Offsets: the stream is counted in bytes from the start of a replication history. ``end_pos`` is how many bytes
the stream holds in all (Redis's ``master_repl_offset``); the backlog keeps the bytes at positions
``[start_pos, end_pos)`` (zero-based), so Redis's ``repl_backlog_first_byte_offset`` (one-based) is
``start_pos + 1`` and its ``repl_backlog_histlen`` is ``end_pos - start_pos``.

Besides the bytes the backlog remembers where the stream SELECTs a database (``select points``), so that a
replica continuing from any position learns which database the commands after it apply to: replicas then
never depend on remembering that themselves (across a restart, say).

Storage is a deque of chunks (one per tick of writes, coalesced while small) rather than one ring buffer:
appends never copy what is already held, trimming drops whole chunks, and only a read (a partial resync,
rare) walks the chunks.
"""

from __future__ import annotations

from collections import deque

# Chunks smaller than this are merged into the next append, so a stream of tiny ticks does not become a
# deque of tiny objects (each costs ~50 bytes of overhead).
COALESCE_BELOW_BYTES = 16 * 1024


class Backlog:
    """A bounded window ``[start_pos, end_pos)`` of a replication stream.

    Args:
        size_bytes: the most bytes kept (``repl-backlog-size``).
        start_pos: the stream position the backlog starts at (what the stream held when it was created).
        start_db: the database the stream has selected at ``start_pos``; -1 when unknown, which the writer
            guarantees is harmless (it SELECTs before the next command).
    """

    def __init__(self, size_bytes: int, start_pos: int, start_db: int = -1) -> None:
        self.size_bytes = max(1, size_bytes)
        self.start_pos = start_pos
        self.end_pos = start_pos
        # Chunks in stream order; the bytes they hold are exactly [start_pos, end_pos).
        self._chunks: deque[bytes | bytearray] = deque()
        # (position of a SELECT's first byte, its database), ascending; only those inside the window.
        self._selects: deque[tuple[int, int]] = deque()
        # The database in effect at start_pos (the last SELECT trimmed away, or start_db).
        self._db_at_start = start_db

    # -- writing ---------------------------------------------------------------------------------------

    def append(self, data: bytes, selects: list[tuple[int, int]] | tuple[tuple[int, int], ...] = ()) -> None:
        """Add the bytes that follow ``end_pos``; ``selects`` are the SELECTs inside them (absolute positions)."""
        if not data:
            return
        for point in selects:
            self._selects.append((int(point[0]), int(point[1])))
        chunks = self._chunks
        if chunks and len(chunks[-1]) < COALESCE_BELOW_BYTES:
            last = chunks[-1]
            if not isinstance(last, bytearray):
                last = bytearray(last)
                chunks[-1] = last
            last += data
        else:
            chunks.append(data)
        self.end_pos += len(data)
        self._trim()

    def resize(self, size_bytes: int) -> None:
        """``CONFIG SET repl-backlog-size``: keep at most the new size (the newest bytes)."""
        self.size_bytes = max(1, size_bytes)
        self._trim()

    def _trim(self) -> None:
        excess = self.end_pos - self.start_pos - self.size_bytes
        chunks = self._chunks
        while excess > 0 and chunks:
            first = chunks[0]
            if len(first) <= excess:
                chunks.popleft()
                self.start_pos += len(first)
                excess -= len(first)
            else:
                chunks[0] = bytes(first[excess:])
                self.start_pos += excess
                excess = 0
        selects = self._selects
        while selects and selects[0][0] < self.start_pos:
            self._db_at_start = selects.popleft()[1]

    # -- reading ---------------------------------------------------------------------------------------

    @property
    def histlen(self) -> int:
        return self.end_pos - self.start_pos

    @property
    def first_byte_offset(self) -> int:
        """Redis's ``repl_backlog_first_byte_offset``: the one-based offset of the oldest byte kept."""
        return self.start_pos + 1

    def covers(self, pos: int) -> bool:
        """True if a replica that holds the stream up to ``pos`` can continue from the backlog."""
        return self.start_pos <= pos <= self.end_pos

    def read(self, pos: int, max_bytes: int | None = None) -> bytes:
        """The bytes from ``pos`` on (at most ``max_bytes``). Raises ValueError if ``pos`` is not covered."""
        if not self.covers(pos):
            raise ValueError(f"position {pos} is outside the backlog [{self.start_pos}, {self.end_pos}]")
        limit = self.end_pos - pos if max_bytes is None else min(max_bytes, self.end_pos - pos)
        out: list[bytes] = []
        skip = pos - self.start_pos
        for chunk in self._chunks:
            if limit <= 0:
                break
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            piece = bytes(chunk[skip : skip + limit])
            skip = 0
            out.append(piece)
            limit -= len(piece)
        return b"".join(out)

    def db_at(self, pos: int) -> int:
        """The database the stream has selected for the command starting at ``pos`` (-1: a SELECT follows)."""
        db = self._db_at_start
        for point, index in self._selects:
            if point >= pos:
                break
            db = index
        return db
