"""The command table: every command's implementation, arity, flags and key positions.

Layout (one module per family, each registering its commands with ``@command`` on import):
    strings.py      SET, GET, INCR, ...               keys.py        DEL, EXPIRE, SCAN, ...
    server.py       PING, INFO, CONFIG, CLIENT, ...   hashes.py      lists.py  sets.py  zsets.py
    transactions.py MULTI, EXEC, WATCH                pubsub.py      persistence.py  replication.py
    streams.py      XADD, XRANGE, XTRIM, XSETID, ...  streams_read.py XREAD, XREADGROUP (+ BLOCK)
    streams_groups.py XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM       streams_info.py XINFO

A command is ``fn(client, argv) -> reply``: it runs on the master actor's event-loop thread, reads and writes
the keyspace through ``client.server``, and returns a reply value (see protocol/resp.py) or raises
``CommandError``. A write increments ``keyspace.dirty``; the dispatcher then propagates ``argv`` (or
``client.propagate_as``, for commands whose effect is not a pure function of their arguments) to the AOF and
the replicas. Arity follows Redis: ``n`` exactly n arguments including the name, ``-n`` at least n.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.server.client import Client

CommandFn = Callable[["Client", list[bytes]], Any]


@dataclass(slots=True)
class Command:
    name: str
    fn: CommandFn
    arity: int
    flags: frozenset[str]
    first_key: int
    last_key: int
    key_step: int
    group: str
    summary: str
    # Derived from flags once, so the dispatcher tests booleans, not set membership.
    is_write: bool = False
    is_admin: bool = False
    allowed_while_loading: bool = False
    allowed_in_pubsub: bool = False
    no_auth: bool = False
    queues_in_multi: bool = True
    allowed_when_stale: bool = False
    subcommands: list[str] = field(default_factory=list)
    calls: int = 0
    usec: int = 0
    failed_calls: int = 0
    rejected_calls: int = 0


COMMANDS: dict[bytes, Command] = {}


def command(
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    group: str = "generic",
    summary: str = "",
    subcommands: tuple[str, ...] = (),
) -> Callable[[CommandFn], CommandFn]:
    """Register ``fn`` as the implementation of ``name``.

    flags (Redis's names): write, readonly, fast, admin, pubsub, noscript, loading, stale, no-auth,
    no-multi (runs at once even inside MULTI: EXEC, DISCARD, WATCH, ...), deny-multi (refused inside MULTI
    with "Command not allowed inside a transaction": Redis's no_multi, SAVE, SHUTDOWN, SYNC, PSYNC), denyoom,
    blocking.
    """

    def register(fn: CommandFn) -> CommandFn:
        flag_set = frozenset(flags.split())
        COMMANDS[name.lower().encode()] = Command(
            name=name.lower(),
            fn=fn,
            arity=arity,
            flags=flag_set,
            first_key=keys[0],
            last_key=keys[1],
            key_step=keys[2],
            group=group,
            summary=summary,
            is_write="write" in flag_set,
            is_admin="admin" in flag_set,
            allowed_while_loading="loading" in flag_set,
            allowed_in_pubsub="pubsub-ok" in flag_set,
            no_auth="no-auth" in flag_set,
            queues_in_multi="no-multi" not in flag_set,
            allowed_when_stale="stale" in flag_set,
            subcommands=list(subcommands),
        )
        return fn

    return register


def load_all() -> dict[bytes, Command]:
    """Import every command module so the table is complete; returns the table."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return COMMANDS
