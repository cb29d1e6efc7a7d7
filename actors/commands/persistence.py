"""Persistence commands: SAVE, BGSAVE [SCHEDULE], LASTSAVE, BGREWRITEAOF, DEBUG RELOAD and DEBUG LOADAOF.

They are thin: the work is done by the loop-side persistence facade (actors/persistence, reached as
``server.persistence``, a ``PersistencePort``), which owns the fork children, the AOF and the counters.
Replies and error strings are Redis 7.0's (rdb.c ``saveCommand`` / ``bgsaveCommand``, aof.c ``bgrewriteaofCommand``, debug.c).

Test knobs (DEBUG subcommands, like Redis's hidden ``rdb-key-save-delay`` / ``key-load-delay`` configs):

    DEBUG SET-SAVE-DELAY <ms>    fork children (BGSAVE, BGREWRITEAOF) sleep this long before writing, so a test
                                 can see a save in progress, SCHEDULE, or kill it; 0 turns it off
    DEBUG SET-LOAD-DELAY <ms>    loads (DEBUG RELOAD, LOADAOF) hold -LOADING this much longer before reading
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from actors.commands import command
from actors.commands._util import parse_int
from actors.commands.debug import DEBUG_HANDLERS
from actors.data import rdb_hooks
from actors.server.client import ClientKind
from actors.server.ports import ChildKind
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.ports import PersistencePort

log = structlog.get_logger("redactor.persistence")

BGSAVE_IN_PROGRESS = "ERR Background save already in progress"
BGSAVE_CHILD_ACTIVE = (
    "ERR Another child process is active (AOF?): can't BGSAVE right now. "
    "Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible."
)
REWRITE_IN_PROGRESS = "ERR Background append only file rewriting already in progress"
REWRITE_FAILED = (
    "ERR Can't execute an AOF background rewriting. Please check the server logs for more information."
)


def _persistence(client: Client) -> PersistencePort:
    persistence = client.server.persistence
    if persistence is None:
        raise CommandError("ERR persistence is not available on this node")
    return persistence


def child_kind(persistence: PersistencePort) -> ChildKind | None:
    """The kind of the running fork child, if any. By value: the persistence actor may still name its kinds
    with an enum of its own (the same values) until it imports ``ChildKind`` from the port module. A full
    sync's snapshot child is an RDB child, as in Redis (its replication BGSAVE): SAVE and BGSAVE answer
    "Background save already in progress" while it runs."""
    child = persistence.child
    if child is None:
        return None
    return ChildKind.AOF if child.kind.value == ChildKind.AOF.value else ChildKind.RDB


def _in_exec(client: Client) -> bool:
    return client.server.stream.exec_writes is not None


@command(
    "save", 1, "admin noscript deny-multi", (0, 0, 0), "server", "Synchronously save the dataset to disk"
)
def cmd_save(client: Client, argv: list[bytes]) -> Any:
    persistence = _persistence(client)
    if child_kind(persistence) is ChildKind.RDB:
        raise CommandError(BGSAVE_IN_PROGRESS)
    if not persistence.save():
        raise CommandError("ERR")
    return OK


@command("bgsave", -1, "admin noscript", (0, 0, 0), "server", "Asynchronously save the dataset to disk")
def cmd_bgsave(client: Client, argv: list[bytes]) -> Any:
    schedule = False
    if len(argv) > 1:
        if len(argv) == 2 and argv[1].lower() == b"schedule":
            schedule = True
        else:
            raise CommandError(errors.SYNTAX)
    persistence = _persistence(client)
    kind = child_kind(persistence)
    if kind is ChildKind.RDB:
        raise CommandError(BGSAVE_IN_PROGRESS)
    if kind is not None or _in_exec(client):
        if schedule or _in_exec(client):
            persistence.bgsave_scheduled = True
            return "Background saving scheduled"
        raise CommandError(BGSAVE_CHILD_ACTIVE)
    try:
        persistence.bgsave()
    except (OSError, RuntimeError):
        raise CommandError("ERR") from None
    return "Background saving started"


@command(
    "lastsave",
    1,
    "loading stale fast",
    (0, 0, 0),
    "server",
    "Get the UNIX time stamp of the last successful save to disk",
)
def cmd_lastsave(client: Client, argv: list[bytes]) -> Any:
    return _persistence(client).lastsave_s


@command(
    "bgrewriteaof", 1, "admin noscript", (0, 0, 0), "server", "Asynchronously rewrite the append-only file"
)
def cmd_bgrewriteaof(client: Client, argv: list[bytes]) -> Any:
    persistence = _persistence(client)
    kind = child_kind(persistence)
    if kind is ChildKind.AOF:
        raise CommandError(REWRITE_IN_PROGRESS)
    if kind is not None or _in_exec(client):
        persistence.aof_rewrite_scheduled = True
        persistence.aof_rewrites_consecutive_failures = 0
        return "Background append only file rewriting scheduled"
    try:
        persistence.rewrite_background()
    except (OSError, RuntimeError):
        raise CommandError(REWRITE_FAILED) from None
    return "Background append only file rewriting started"


# -- DEBUG -----------------------------------------------------------------------------------------------------


def debug_reload(client: Client, argv: list[bytes]) -> Any:
    """DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save the RDB, then load it back. The caller waits for the
    load; other clients get -LOADING meanwhile (Redis serves events while loading too).

    NOFLUSH keeps the dataset and the function libraries and loads the file over them (synchronously, as
    Redis's rdbLoad): a key or library already there is an error unless MERGE lets the file's replace it.
    Where Redis would panic on a duplicate key, the node refuses before changing anything."""
    save = flush = True
    merge = False
    for raw in argv[2:]:
        option = raw.lower()
        if option == b"nosave":
            save = False
        elif option == b"noflush":
            flush = False
        elif option == b"merge":
            merge = True
        else:
            raise CommandError("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
    persistence = _persistence(client)
    server = client.server
    if server.loading:
        raise CommandError(errors.LOADING)
    if not flush:
        return _reload_over(persistence, save, merge)
    can_wait = (
        client.kind in (ClientKind.RESP, ClientKind.NATIVE) and not _in_exec(client) and client.multi is None
    )
    loop = server.master_actor.loop if server.master_actor is not None else None
    if not can_wait or loop is None:
        # No way to answer later (inside EXEC, internal client): load synchronously, blocking the node.
        return _reload_now(persistence, save)
    if save and not persistence.save():
        raise CommandError("ERR")

    async def reload_then_reply() -> None:
        error = await persistence.reload(save=False)
        client.deliver(CommandError(error) if error else OK)

    loop.create_task(reload_then_reply())
    from actors.commands import BLOCKED

    return BLOCKED


def debug_loadaof(client: Client, argv: list[bytes]) -> Any:
    """DEBUG LOADAOF: empty the dataset and load it back from the AOF files. The caller waits for the load;
    other clients get -LOADING meanwhile."""
    if len(argv) != 2:
        raise errors.wrong_arity("debug|loadaof")
    persistence = _persistence(client)
    server = client.server
    if server.loading:
        raise CommandError(errors.LOADING)
    loop = server.master_actor.loop if server.master_actor is not None else None
    can_wait = (
        client.kind in (ClientKind.RESP, ClientKind.NATIVE) and not _in_exec(client) and client.multi is None
    )
    if loop is None or not can_wait:
        # The replay runs in slices between the loop's events: there is no synchronous form.
        raise CommandError("ERR DEBUG LOADAOF can only be called from a client connection, outside MULTI")

    async def load_then_reply() -> None:
        error = await persistence.load_aof()
        client.deliver(CommandError(error) if error else OK)

    loop.create_task(load_then_reply())
    from actors.commands import BLOCKED

    return BLOCKED


def _codec_after_save(persistence: PersistencePort, save: bool) -> Any:
    """DEBUG RELOAD's first steps: the node's RDB codec, after a SAVE unless NOSAVE was given."""
    codec = persistence.server.rdb_codec
    if codec is None:
        raise CommandError("ERR DEBUG RELOAD is not available on this node (no RDB codec)")
    if save and not persistence.save():
        raise CommandError("ERR")
    return codec


def _reload_now(persistence: PersistencePort, save: bool) -> Any:
    server = persistence.server
    codec = _codec_after_save(persistence, save)
    try:
        data = codec.load_file(persistence.rdb_path, len(server.keyspace.dbs))
    except (codec.RdbError, OSError):
        raise CommandError("ERR Error trying to load the RDB dump") from None
    server.keyspace.replace_all(data.dbs)
    return OK


def _reload_over(persistence: PersistencePort, save: bool, merge: bool) -> Any:
    """DEBUG RELOAD NOFLUSH [MERGE]: the file's keys and libraries added to what the node holds."""
    server = persistence.server
    codec = _codec_after_save(persistence, save)
    failed = CommandError("ERR Error trying to load the RDB dump")
    codes: list[bytes] = []
    installer = rdb_hooks.functions_loaded
    rdb_hooks.functions_loaded = codes.extend  # (the libraries are merged below, not swapped in)
    try:
        data = codec.load_file(persistence.rdb_path, len(server.keyspace.dbs))
    except (codec.RdbError, OSError):
        raise failed from None
    finally:
        rdb_hooks.functions_loaded = installer
    keyspace = server.keyspace
    pairs = list(zip(keyspace.dbs, data.dbs, strict=False))
    store = server.scripting.functions if codes else None
    if not merge:
        duplicate = next((key for db, loaded in pairs for key in loaded.data if key in db.data), None)
        if duplicate is not None:
            log.warning("reload_duplicate_key", key=duplicate.decode("utf-8", "replace"))
            raise failed
        # Imported here: the function libraries' module is loaded with the Lua engine, not at start-up.
        from actors.scripting.functions import parse_library_header

        if store is not None and any(parse_library_header(code) in store.libraries for code in codes):
            log.warning("reload_duplicate_library")
            raise failed
    if store is not None:
        try:
            for code in codes:
                store.load(code, replace=True)
        except CommandError as exc:
            log.warning("reload_library_refused", reason=str(exc))
            raise failed from None
    for db, loaded in pairs:
        if not loaded.data:
            continue
        keyspace.touch_all(db)
        for key in loaded.data:
            db.delete(key)  # a merged key takes the file's value and TTL (or none), as a fresh load would
        db.merge_loaded(loaded.data, loaded.expires)
        keyspace.touch_all(db)
    return OK


def debug_set_save_delay(client: Client, argv: list[bytes]) -> Any:
    if len(argv) != 3:
        raise errors.wrong_arity("debug|set-save-delay")
    _persistence(client).child_delay_s = max(parse_int(argv[2]), 0) / 1000.0
    return OK


def debug_set_load_delay(client: Client, argv: list[bytes]) -> Any:
    if len(argv) != 3:
        raise errors.wrong_arity("debug|set-load-delay")
    _persistence(client).load_delay_s = max(parse_int(argv[2]), 0) / 1000.0
    return OK


def debug_aof_flush_sleep(client: Client, argv: list[bytes]) -> Any:
    if len(argv) != 3:
        raise errors.wrong_arity("debug|aof-flush-sleep")
    _persistence(client).aof_flush_sleep_us = max(parse_int(argv[2]), 0)
    return OK


DEBUG_HANDLERS[b"reload"] = debug_reload
DEBUG_HANDLERS[b"aof-flush-sleep"] = debug_aof_flush_sleep
DEBUG_HANDLERS[b"loadaof"] = debug_loadaof
DEBUG_HANDLERS[b"set-save-delay"] = debug_set_save_delay
DEBUG_HANDLERS[b"set-load-delay"] = debug_set_load_delay
