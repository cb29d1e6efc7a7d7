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

from collections.abc import Callable, Coroutine
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server


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
    def kind(self) -> Enum: ...  # a ChildKind (by value: see commands/persistence.py's _child_kind)


class PersistencePort(Protocol):
    """The loop-side persistence facade (actors/persistence): saves, rewrites, reloads (loop thread)."""

    server: Server
    rdb_path: str
    lastsave_s: int
    bgsave_scheduled: bool
    aof_rewrite_scheduled: bool
    aof_rewrites_consecutive_failures: int
    child_delay_s: float
    load_delay_s: float
    latest_fork_usec: int
    total_forks: int

    @property
    def child(self) -> ForkedChildView | None: ...

    def save(self) -> bool: ...

    def bgsave(self) -> int: ...

    def rewrite_background(self) -> int: ...

    def reload(self, save: bool = ...) -> Coroutine[Any, Any, str | None]: ...

    def snapshot_for_sync(self, done: Callable[[bool], None]) -> None: ...


class ReplicationPort(Protocol):
    """The loop-side replication facade (actors/replication): role changes, WAIT, ROLE (loop thread)."""

    replid: str

    def set_master(self, host: str, port: int) -> Any: ...

    def unset_master(self) -> None: ...

    def role(self) -> list[Any]: ...

    def wait(self, client: Client, numreplicas: int, timeout_ms: int) -> Any: ...


class SupervisorPort(Protocol):
    """The node's supervisor (actors/supervision): fault injection for DEBUG CRASH-ACTOR (loop thread)."""

    def crash(self, name: str) -> None: ...  # raises SupervisorError


class MasterPort(Protocol):
    """The master actor (actors/loop): its event loop, for commands that answer later (DEBUG RELOAD)."""

    loop: Any  # asyncio.AbstractEventLoop | None
    ops_per_sec: int
