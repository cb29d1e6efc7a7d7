"""Ports: what the commands may see of the node's actors, as ``typing.Protocol`` classes.

The command table sits below every actor: a command reaches persistence, replication or the supervisor only
through ``server.persistence`` / ``server.replication`` / ``server.supervisor``, typed with these protocols,
so ``actors/commands`` and ``actors/server`` import no actor package (tests/unit/test_layout.py checks it).
The actors' loop-side facades implement them structurally (no inheritance); a node without an actor (a
sentinel, a unit test) leaves the handle None and the commands answer that the feature is not available.

Also here: the small shared vocabulary both sides need (``ChildKind``, ``SupervisorError``,
``WAIT_ON_REPLICA``), so neither side imports the other for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.server.client import Client
    from actors.server.server import Server

# The cluster's view for the fast lane's run of GET/SET (ClusterPort.lane_view): the slot -> owner id map, this
# node's id, the MIGRATING and the IMPORTING slots. A key is served inline only if its slot's owner is this
# node and the slot is in neither dict; any other key goes to Server.execute, which routes it.
LaneView = tuple[list[str | None], str, dict[int, str], dict[int, str]]


class ChildKind(Enum):
    RDB = "rdb"  # BGSAVE: writes dbfilename
    AOF = "aof"  # BGREWRITEAOF: writes a new AOF base file


class SupervisorError(Exception):
    """A request the supervisor refuses (unknown actor, actor not running)."""


WAIT_ON_REPLICA = (
    "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is "
    "configured to be writable (which is not the default) writes to replicas are just local and are not "
    "propagated."
)


class ForkedChildView(Protocol):
    """The running fork child, as the commands see it."""

    @property
    def kind(self) -> Enum: ...  # a ChildKind (compared by value: see commands/persistence.py's child_kind)


class PersistencePort(Protocol):
    """The loop-side persistence facade (actors/persistence): saves, rewrites, reloads (loop thread)."""

    server: Server
    bgsave_scheduled: bool
    aof_rewrite_scheduled: bool
    aof_rewrites_consecutive_failures: int
    # Test knobs (DEBUG SET-SAVE-DELAY / SET-LOAD-DELAY / AOF-FLUSH-SLEEP).
    child_delay_s: float
    load_delay_s: float
    aof_flush_sleep_us: int

    @property
    def lastsave_s(self) -> int: ...

    # INFO stats (the fork registry's, read-only here).
    @property
    def latest_fork_usec(self) -> int: ...

    @property
    def total_forks(self) -> int: ...

    @property
    def rdb_path(self) -> str: ...

    @property
    def child(self) -> ForkedChildView | None: ...

    def save(self) -> bool: ...

    def bgsave(self) -> int: ...

    def rewrite_background(self) -> int: ...

    def reload(self, save: bool) -> Coroutine[Any, Any, str | None]: ...

    def load_aof(self) -> Coroutine[Any, Any, str | None]: ...

    def snapshot_for_sync(self, done: Callable[[bool], None]) -> None: ...

    # A replica's full sync begins its load (the snapshot's size in bytes): INFO's loading_* fields.
    def replica_loading(self, total_bytes: int) -> None: ...

    def filtered_rdb(self, functions: bool) -> bytes: ...  # REPLCONF rdb-filter-only's RDB: no keys

    def data_flushed(self) -> None: ...  # FLUSHALL: a BGSAVE child (of data now gone) is stopped

    # The node's wiring (launcher/node.py) and the replication actor, not the commands: these can go once
    # they hold the facade by its own type.
    repl_info: Callable[[], tuple[str | None, int | None, int | None]]
    prefetched_load_helper: Any

    def load_on_start(self) -> Coroutine[Any, Any, None]: ...

    def prepare_shutdown(self, save: bool | None, force: bool = False) -> str | None: ...

    def start_append_only(self) -> None: ...

    def stop_append_only(self) -> None: ...


class ReplicationPort(Protocol):
    """The loop-side replication facade (actors/replication): role changes, WAIT, ROLE (loop thread)."""

    replid: str

    def set_master(self, host: str, port: int) -> str: ...

    def unset_master(self) -> None: ...

    def role(self) -> list[Any]: ...

    def wait(self, client: Client, numreplicas: int, timeout_ms: int) -> Any: ...

    def attach_resp_replica(self, client: Client, replid: str, offset: int, sync: bool) -> Any: ...

    def full_sync_in_progress(self) -> bool: ...  # a replica's full sync (INFO's master_sync_in_progress)

    def kill_replicas(self) -> int: ...  # CLIENT KILL TYPE replica: drop every replica's link; how many

    def getack_in_stream(self) -> None: ...

    def backlog_bytes(self) -> int: ...  # the replication backlog's history (INFO's mem_replication_backlog)

    def buffer_bytes(self) -> int: ...  # INFO's mem_total_replication_buffers (loop_side.py says how)

    # FAILOVER (actors/replication/failover.py): start one (raises CommandError), or abort (False: none).
    def failover(self, host: str | None, port: int, timeout_ms: int, force: bool) -> None: ...

    def failover_abort(self) -> bool: ...

    # A shutdown's wait (actors/server/shutdown.py): every replica acknowledged the whole stream? Ask them now;
    # describe those that did not.
    def replicas_caught_up(self) -> bool: ...

    def request_acks(self) -> None: ...

    def lagging_replicas(self) -> list[str]: ...

    def replica_count(self) -> int: ...

    # The node's wiring (launcher/node.py), not the commands (see PersistencePort).
    def on_dataset_loaded(self) -> None: ...

    def kill_children(self) -> None: ...


class LoadedSnapshot(Protocol):
    """What loading an RDB file produced, as DEBUG RELOAD uses it."""

    @property
    def dbs(self) -> list[Database]: ...


class SnapshotCodec(Protocol):
    """Redis's RDB encoding (the module actors/persistence/rdb/codec.py satisfies it): DUMP and RESTORE
    payloads, and DEBUG RELOAD's synchronous load. Errors are the codec's own classes, so callers catch
    ``codec.DumpPayloadError`` (a bad version or checksum) before ``codec.RdbError`` (anything else)."""

    @property
    def RdbError(self) -> type[Exception]: ...

    @property
    def DumpPayloadError(self) -> type[Exception]: ...

    def dump_value(self, value: Any, compress: bool = ...) -> bytes: ...

    def load_value(self, payload: bytes) -> Any: ...

    def load_file(self, path: str, num_dbs: int) -> LoadedSnapshot: ...

    def crc64(self, crc: int, data: bytes) -> int: ...

    def read_string(self, data: bytes, pos: int) -> tuple[bytes, int]: ...

    def sanitized_blobs(self, payload: bytes) -> int: ...


class ClusterPort(Protocol):
    """The loop-side cluster facade (actors/cluster): routing and the CLUSTER command (loop thread)."""

    def route(self, client: Client, cmd: Any, argv: list[bytes]) -> str | None: ...  # error text or None

    # The fast lane's per-run view (owners, my id, migrating, importing), or None: route everything.
    def lane_view(self, client: Client) -> LaneView | None: ...

    def command(self, client: Client, argv: list[bytes]) -> Any: ...  # CLUSTER <subcommand> ...

    def info_section(self) -> list[tuple[str, Any]]: ...  # INFO cluster

    def connections(self) -> int: ...  # INFO clients' cluster_connections

    def publish(self, channel: bytes, message: bytes) -> None: ...  # PUBLISH: to every other node

    # Whether this node is a replica in the cluster's configuration (nodes.conf names its master), known at
    # start before the replication link is set up: a replica's start-up load keeps keys that expired.
    def is_replica(self) -> bool: ...


class SupervisorPort(Protocol):
    """The node's supervisor (actors/supervision): fault injection for DEBUG CRASH-ACTOR (loop thread)."""

    def crash(self, name: str) -> None: ...  # raises SupervisorError


class MasterPort(Protocol):
    """The master actor (actors/loop): its event loop, for commands that answer later (DEBUG RELOAD)."""

    loop: asyncio.AbstractEventLoop | None
    ops_per_sec: int  # INFO stats' instantaneous rates (sampled by the cron)
    input_kbps: float
    output_kbps: float

    def flush_now(self) -> None: ...  # send every pending reply now (a busy script's turn)

    def call_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None: ...
