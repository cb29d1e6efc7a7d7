"""The propagation stream: every write the node propagates, as RESP, on its way to the AOF and the replicas.

One object owns what used to be loose Server fields written from four places: this tick's chunks, the
database the stream has selected, the replication offset (this is its only writer: ``propagate`` advances it,
``reset_offset`` moves it when replication says where the stream stands), the select points the backlog
keeps, the spans only the replicas get (PUBLISH: Redis's PROPAGATE_REPL), and the writes an EXEC collects.

Once per loop tick the master actor calls ``take()`` and hands the ``StreamBatch`` to the stream sinks (the
AOF writer and the replication feed), then lets the replies go.

Offsets: ``offset`` counts the bytes propagated while ``repl_feeding`` (Redis's ``master_repl_offset``); bytes
propagated while only the AOF consumes the stream are not counted. A batch's ``start`` is the offset of its
first counted byte; when the batch also holds uncounted bytes (the AOF started first), they come first.

Runs on the master actor's event-loop thread only; ``propagate`` is on every write's path (the fast lane's
SETs included), so it keeps to a few slot reads and one list append.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.resp import encode_command

# A (stream offset, database) pair: the stream selected ``database`` at ``offset``.
SelectPoint = tuple[int, int]
# [start, end) stream offsets of bytes that only the replicas get.
Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class StreamBatch:
    """One tick's stream, as every sink gets it."""

    data: bytes
    # Replication offset of the first counted byte of ``data`` (see the module docstring).
    start: int
    # The SELECTs inside the batch's counted bytes: the backlog keeps them for replicas that continue mid-way.
    selects: list[SelectPoint] = field(default_factory=list)
    # [start, end) positions in ``data`` of what the AOF leaves out (PUBLISH: for the replicas only):
    # ``without_spans(data, 0, aof_excluded_spans)`` is the AOF's share.
    aof_excluded_spans: list[Span] = field(default_factory=list)


def without_spans(data: bytes, offset: int, spans: list[Span]) -> bytes:
    """``data`` (the tick's stream from ``offset`` on) without the bytes inside ``spans`` (ascending stream
    offsets): what the AOF gets of a stream that carries commands for the replicas only."""
    end = offset + len(data)
    parts = []
    pos = offset
    for start, stop in spans:
        if stop <= pos or start >= end:
            continue
        if start > pos:
            parts.append(data[pos - offset : start - offset])
        pos = max(pos, stop)
    if pos < end:
        parts.append(data[pos - offset :])
    return b"".join(parts)


class PropagationStream:
    """The node's outgoing write stream; see the module docstring."""

    __slots__ = (
        "chunks",
        "db",
        "aof_feeding",
        "repl_feeding",
        "offset",
        "select_points",
        "repl_only_spans",
        "taken_repl_only_spans",
        "exec_writes",
        "_counted_chunks",
        "_counted_bytes",
        "_tick_start",
    )

    def __init__(self) -> None:
        # RESP-encoded writes of the current tick, in order (a list: one append per write, one join per tick).
        self.chunks: list[bytes] = []
        # The database the stream has selected (-1: none yet, so the next write SELECTs).
        self.db = -1
        # Whether anything consumes the stream: an AOF, a replication backlog. With neither, writes are dropped.
        self.aof_feeding = False
        self.repl_feeding = False
        # Bytes propagated while repl_feeding: the master replication offset.
        self.offset = 0
        # (offset, db) of each SELECT propagated while repl_feeding (the backlog keeps them). The replication
        # feed clears them once it has handed them on.
        self.select_points: list[SelectPoint] = []
        # This tick's replica-only spans, as positions in this tick's stream; ``take`` moves them to
        # ``taken_repl_only_spans`` with the bytes it hands out.
        self.repl_only_spans: list[Span] = []
        self.taken_repl_only_spans: list[Span] = []
        # Inside EXEC: (db, argv, replicas only) of each write, propagated as one MULTI/EXEC block at the end.
        self.exec_writes: list[tuple[int, list[bytes], bool]] | None = None
        # How many chunks _counted_bytes sums (see length): the tick's size without re-summing every chunk.
        self._counted_chunks = 0
        self._counted_bytes = 0
        # The offset at the start of this tick (or at the latest reset_offset): the next batch's start.
        self._tick_start = 0

    # -- writing (the only writers of offset) -----------------------------------------------------------

    def propagate(self, db_index: int, argv: list[bytes]) -> None:
        """Queue one write for the AOF and the replicas (a no-op while nothing consumes the stream)."""
        if self.exec_writes is not None:
            self.exec_writes.append((db_index, argv, False))
            return
        if not (self.aof_feeding or self.repl_feeding):
            return
        if db_index != self.db:
            self._select(db_index)
        data = encode_command(argv)
        self.chunks.append(data)
        if self.repl_feeding:
            self.offset += len(data)

    def propagate_several(self, db_index: int, argvs: list[list[bytes]]) -> None:
        """One command propagated as several (XREADGROUP as XCLAIMs and XGROUP SETID): wrapped in MULTI/EXEC,
        as Redis wraps a command's also-propagated ops, unless an EXEC or a script already collects them."""
        wrap = len(argvs) > 1 and self.exec_writes is None
        if wrap:
            self.propagate(db_index, [b"MULTI"])
        for argv in argvs:
            self.propagate(db_index, argv)
        if wrap:
            self.propagate(db_index, [b"EXEC"])

    def propagate_to_replicas(self, db_index: int, argv: list[bytes]) -> None:
        """Queue a command for the replicas (and the backlog) but not the AOF: PUBLISH, so that subscribers
        on replicas get the message too. It counts in the replication offset, as in Redis."""
        if self.exec_writes is not None:
            self.exec_writes.append((db_index, argv, True))
            return
        if not self.repl_feeding:
            return
        if db_index != self.db:  # as in propagate: the SELECT goes to both (harmless in the AOF)
            self._select(db_index)
        start = self.length()
        data = encode_command(argv)
        self._append(data)
        self.repl_only_spans.append((start, start + len(data)))

    def propagate_heartbeat(self, argv: list[bytes]) -> None:
        """Queue a command for the replicas only, with no SELECT before it: the PING and ``REPLCONF GETACK *``
        a Redis master puts in its stream (replicationFeedSlaves with the selected db). It counts in the
        offset like any other byte of the stream; the AOF leaves it out."""
        if not self.repl_feeding or self.exec_writes is not None:
            return
        start = self.length()
        data = encode_command(argv)
        self._append(data)
        self.repl_only_spans.append((start, start + len(data)))

    def _select(self, db_index: int) -> None:
        if self.repl_feeding:
            self.select_points.append((self.offset, db_index))
        self._append(encode_command([b"SELECT", b"%d" % db_index]))
        self.db = db_index

    def _append(self, data: bytes) -> None:
        self.chunks.append(data)
        if self.repl_feeding:
            self.offset += len(data)

    def reset_offset(self, offset: int) -> None:
        """Replication says where the stream stands (a loaded RDB's offset, a full sync's, the master's
        stream a replica applied): the next byte propagated is at ``offset``."""
        self.offset = self._tick_start = offset

    def forget_db(self) -> None:
        """The next write SELECTs its database again (a new AOF file, a new backlog)."""
        self.db = -1

    def start_replication_feed(self) -> None:
        """A backlog starts at the current offset: count from here, SELECT afresh, no older select points."""
        self.repl_feeding = True
        self.db = -1
        self.select_points.clear()

    # -- reading -------------------------------------------------------------------------------------------

    def length(self) -> int:
        """Bytes queued in this tick's stream so far (summing only the chunks added since the last call)."""
        chunks = self.chunks
        counted = self._counted_chunks
        if counted > len(chunks):  # the chunks were cleared behind take's back (AOF loading): count afresh
            counted = self._counted_bytes = 0
        if counted < len(chunks):
            self._counted_bytes += sum(len(chunks[i]) for i in range(counted, len(chunks)))
            self._counted_chunks = len(chunks)
        return self._counted_bytes

    def take(self) -> StreamBatch:
        """The tick's stream, once: the chunks are handed out and the next tick starts empty."""
        chunks = self.chunks
        data = b"".join(chunks) if chunks else b""
        chunks.clear()
        start = self._tick_start
        self._tick_start = self.offset
        spans = self.repl_only_spans
        self.taken_repl_only_spans = spans
        self.repl_only_spans = []
        points = self.select_points
        selects = [point for point in points if point[0] >= start] if points else []
        self._counted_chunks = self._counted_bytes = 0
        return StreamBatch(data, start, selects, spans)
