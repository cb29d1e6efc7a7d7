"""The Server's node-wide flags and its propagation stream's older names, as two mixins of ``Server``.

``NodeRestrictions`` owns the flags that keep commands off the fast paths (loading, a read-only replica, a
stale replica, a refused write, a disk error, a busy script, cluster mode, and whatever ``restrict`` names),
and what a replica does with its master's writes while its own disk fails:
each setter recomputes ``_lane_open`` (the fast lane may run) and ``_unrestricted`` (a command may skip
``Server.execute``'s checks), so the hot path reads two booleans instead of testing every flag per command.
``StreamNames`` keeps the ``prop_*`` / ``repl_*`` names the actors still use for ``server.stream``'s state
(actors/server/stream.py). Split from actors/server/server.py, which keeps the dispatcher; both mixins only
read and write attributes ``Server.__init__`` sets (declared below for the type checker).

Runs on the master actor's event-loop thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from actors.panic import panic

if TYPE_CHECKING:
    from actors.config import Config
    from actors.data.keyspace import Keyspace
    from actors.server.client import Client
    from actors.server.maxmemory import MemoryGuard
    from actors.server.oom_score import OomScore
    from actors.server.ports import ClusterPort
    from actors.server.stream import PropagationStream, SelectPoint, Span

# The fast lane does not time its GET/SETs one by one: with a SLOWLOG threshold below this, where they could
# qualify, commands take the general path, which times each.
SLOWLOG_FAST_LANE_FLOOR_US = 1000
# A replica applying its master's writes despite a disk error says so at most this often (Redis's 10 s).
DISK_ERROR_LOG_INTERVAL_S = 10.0

log = structlog.get_logger("redactor.node")


class NodeRestrictions:
    """The node-wide flags behind ``Server._lane_open`` and ``Server._unrestricted`` (see the module docstring)."""

    # Set by Server.__init__.
    _lane_open: bool
    _unrestricted: bool
    _loading: bool
    _is_replica: bool
    _replica_read_only: bool
    _refuse_stale: bool
    _write_refusal: str | None
    _disk_error: str | None
    _disk_error_logged_s: float
    config: Config
    _script_busy: str | None
    _cluster: ClusterPort | None
    _restricted_by: set[str]
    monitors: list[Client]
    keyspace: Keyspace
    pubsub_shard_channels: dict[bytes, dict[Client, None]]
    slowlog_threshold_us: int
    memory: MemoryGuard
    oom_score: OomScore

    def _restrictions_changed(self) -> None:
        self._lane_open = not (
            self._loading
            or (self._is_replica and self._replica_read_only)
            or self._refuse_stale
            or self._write_refusal is not None
            or self._disk_error is not None
            or self._script_busy is not None
            or bool(self.monitors)
            or bool(self.pubsub_shard_channels)
            or 0 <= self.slowlog_threshold_us < SLOWLOG_FAST_LANE_FLOOR_US
            or bool(self._restricted_by)
        )
        # Cluster mode: the fast lane checks each key's slot itself (routing.lane_view); the rest is routed.
        self._unrestricted = self._lane_open and not self.memory.tracking and self._cluster is None
        # A writable replica's writes delete the expired keys they meet (Keyspace.lookup).
        self.keyspace.replica_writable = self._is_replica and not self._replica_read_only

    def restrict(self, feature: str, on: bool) -> None:
        """Keep commands off the fast paths (``_unrestricted``, the fast lane) while ``feature`` needs it."""
        if on:
            self._restricted_by.add(feature)
        else:
            self._restricted_by.discard(feature)
        self._restrictions_changed()

    @property
    def cluster(self) -> ClusterPort | None:
        return self._cluster

    @cluster.setter
    def cluster(self, value: ClusterPort | None) -> None:
        self._cluster = value
        self._restrictions_changed()

    @property
    def loading(self) -> bool:
        return self._loading

    @loading.setter
    def loading(self, value: bool) -> None:
        self._loading = value
        self._restrictions_changed()

    @property
    def is_replica(self) -> bool:
        return self._is_replica

    @is_replica.setter
    def is_replica(self, value: bool) -> None:
        self._is_replica = value
        self._restrictions_changed()
        self.oom_score.role_changed()

    @property
    def replica_read_only(self) -> bool:
        return self._replica_read_only

    @replica_read_only.setter
    def replica_read_only(self, value: bool) -> None:
        self._replica_read_only = value
        self._restrictions_changed()

    @property
    def refuse_stale(self) -> bool:
        return self._refuse_stale

    @refuse_stale.setter
    def refuse_stale(self, value: bool) -> None:
        self._refuse_stale = value
        self._restrictions_changed()

    @property
    def write_refusal(self) -> str | None:
        return self._write_refusal

    @write_refusal.setter
    def write_refusal(self, value: str | None) -> None:
        self._write_refusal = value
        self._restrictions_changed()

    @property
    def disk_error(self) -> str | None:
        return self._disk_error

    @disk_error.setter
    def disk_error(self, value: str | None) -> None:
        self._disk_error = value
        self._restrictions_changed()

    def master_write_despite_disk_error(self, command_name: str) -> None:
        """A write (or PING) from our master while persistence fails (Redis 7.0's processCommand): the replica
        panics, its memory about to hold what its disk cannot, unless replica-ignore-disk-write-errors yes,
        which applies it and says so at most every 10 s."""
        if not self.config["replica-ignore-disk-write-errors"] and command_name != "ping":
            panic("Replica was unable to write command to disk.")
        now = time.monotonic()
        if now - self._disk_error_logged_s >= DISK_ERROR_LOG_INTERVAL_S:
            self._disk_error_logged_s = now
            log.warning(
                "replica_applying_despite_disk_error",
                message="Replica is applying a command even though it is unable to write to disk.",
            )

    @property
    def script_busy(self) -> str | None:
        return self._script_busy

    @script_busy.setter
    def script_busy(self, value: str | None) -> None:
        self._script_busy = value
        self._restrictions_changed()


class StreamNames:
    """``server.stream``'s state under the names the actors still use (see the module docstring)."""

    # Set by Server.__init__.
    stream: PropagationStream
    propagate: Callable[[int, list[bytes]], None]

    def _propagate_expired(self, db_index: int, key: bytes) -> None:
        self.propagate(db_index, [b"DEL", key])

    def take_propagated(self) -> bytes:
        """The bytes propagated since the last call (tests; the master loop calls ``stream.take()``)."""
        if not self.stream.chunks:
            return b""
        return self.stream.take().data

    @property
    def prop_chunks(self) -> list[bytes]:
        return self.stream.chunks

    @property
    def prop_db(self) -> int:
        return self.stream.db

    @property
    def aof_feeding(self) -> bool:
        return self.stream.aof_feeding

    @aof_feeding.setter
    def aof_feeding(self, value: bool) -> None:
        self.stream.aof_feeding = value

    @property
    def repl_feeding(self) -> bool:
        return self.stream.repl_feeding

    @repl_feeding.setter
    def repl_feeding(self, value: bool) -> None:
        self.stream.repl_feeding = value

    @property
    def repl_offset(self) -> int:
        return self.stream.offset

    @property
    def repl_select_points(self) -> list[SelectPoint]:
        return self.stream.select_points

    @property
    def repl_only_spans(self) -> list[Span]:
        return self.stream.repl_only_spans

    @property
    def taken_repl_only_spans(self) -> list[Span]:
        return self.stream.taken_repl_only_spans

    @property
    def exec_propagation(self) -> list[tuple[int, list[bytes], bool]] | None:
        return self.stream.exec_writes

    @exec_propagation.setter
    def exec_propagation(self, value: list[tuple[int, list[bytes], bool]] | None) -> None:
        self.stream.exec_writes = value
