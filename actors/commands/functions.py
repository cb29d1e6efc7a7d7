"""FUNCTION LOAD | DELETE | FLUSH | LIST | DUMP | RESTORE | STATS | KILL | HELP, FCALL and FCALL_RO, as Redis 7.0.

The libraries live in actors/scripting/functions.py and run through the script engine. The FUNCTION
subcommands that change the libraries are writes: they are propagated as they are, so replicas and the AOF
hold the same libraries. FCALL's effects are propagated as EVAL's are (wrapped in MULTI/EXEC).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands.scripting import parse_numkeys, prepare_run
from actors.scripting.functions import DUMP_RDB_VERSION, OPCODE_FUNCTION2, parse_library_header
from protocol import errors
from protocol.errors import CommandError, echoed
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.ports import SnapshotCodec

_SUBCOMMANDS = {
    b"load": -3,
    b"delete": 3,
    b"flush": -2,
    b"list": -2,
    b"dump": 2,
    b"restore": -3,
    b"stats": 2,
    b"kill": 2,
    b"help": 2,
}
_WRITES = {b"load", b"delete", b"flush", b"restore"}
# FUNCTION HELP's lines, as Redis 7.0 answers them.
_HELP = [
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
]


@command(
    "function",
    -2,
    "noscript",
    (0, 0, 0),
    "scripting",
    "A container for function commands",
    subcommands=tuple(name.decode() for name in _SUBCOMMANDS),
)
def cmd_function(client: Client, argv: list[bytes]) -> Any:
    sub = argv[1].lower()
    arity = _SUBCOMMANDS.get(sub)
    if arity is None:
        raise errors.unknown_subcommand(errors.echoed(argv[1]), "function")
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        raise errors.wrong_arity(f"function|{sub.decode()}")
    server = client.server
    if sub in _WRITES and client.kind.name != "MASTER":
        if server.is_replica and server.replica_read_only:
            raise CommandError(errors.READONLY)
    if sub == b"flush":
        if len(argv) > 3:
            raise _syntax_error(argv[1])
        if len(argv) == 3 and argv[2].lower() not in (b"async", b"sync"):
            raise CommandError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
        started = server.scripting_started  # none yet: no library to drop, and no engine to build for it
        if started is not None:
            started.functions.flush()
        server.keyspace.dirty += 1
        return OK
    engine = server.scripting
    store = engine.functions
    if sub == b"help":
        return _HELP
    if sub == b"kill":
        return engine.kill(functions=True)
    if sub == b"stats":
        return _stats(client)
    if sub == b"load":
        replace = False
        args = argv[2:]
        if len(args) > 1:
            if args[0].lower() != b"replace":
                raise CommandError(f"ERR Unknown option given: {echoed(args[0])}")
            replace = True
            args = args[1:]
        if len(args) != 1:
            raise errors.wrong_arity("function|load")
        name = store.load(args[0], replace)
        server.keyspace.dirty += 1
        return name.encode()
    if sub == b"delete":
        store.delete(argv[2].decode("utf-8", "replace"))
        server.keyspace.dirty += 1
        return OK
    if sub == b"list":
        pattern = None
        with_code = False
        i = 2
        while i < len(argv):
            opt = argv[i].lower()
            if opt == b"withcode" and not with_code:
                with_code = True
                i += 1
            elif opt == b"libraryname" and pattern is None:
                if i + 1 >= len(argv):
                    raise CommandError("ERR library name argument was not given")
                pattern = argv[i + 1]
                i += 2
            else:
                raise CommandError(f"ERR Unknown argument {echoed(argv[i])}")
        return store.list(pattern, with_code)
    if sub == b"dump":
        crc64 = _codec(client).crc64
        body = store.rdb_records() + DUMP_RDB_VERSION.to_bytes(2, "little")
        return body + crc64(0, body).to_bytes(8, "little")
    # RESTORE payload [FLUSH|APPEND|REPLACE]
    policy = b"append"
    if len(argv) == 4:
        policy = argv[3].lower()
        if policy not in (b"flush", b"append", b"replace"):
            raise CommandError(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
            )
    elif len(argv) > 4:
        raise _syntax_error(argv[1])
    _restore(client, argv[2], policy)
    server.keyspace.dirty += 1
    return OK


def _syntax_error(sub: bytes) -> CommandError:
    """Redis's addReplySubcommandSyntaxError (too many arguments for a subcommand of variable arity): it names
    the subcommand as the client spelled it."""
    name = sub.decode("utf-8", "replace")[:128]
    return CommandError(
        f"ERR unknown subcommand or wrong number of arguments for '{name}'. Try FUNCTION HELP."
    )


def _codec(client: Client) -> SnapshotCodec:
    codec = client.server.rdb_codec
    if codec is None:
        raise CommandError("ERR FUNCTION DUMP and RESTORE are not available on this node (no RDB codec)")
    return codec


def _restore(client: Client, payload: bytes, policy: bytes) -> None:
    codec = _codec(client)
    crc64, read_string = codec.crc64, codec.read_string

    if (
        len(payload) < 10
        or int.from_bytes(payload[-10:-8], "little") > DUMP_RDB_VERSION
        or crc64(0, payload[:-8]) != int.from_bytes(payload[-8:], "little")
    ):
        raise CommandError("ERR payload version or checksum are wrong")
    body = payload[:-10]
    codes: list[bytes] = []
    pos = 0
    try:
        while pos < len(body):
            if body[pos] != OPCODE_FUNCTION2:
                raise CommandError("ERR given type is not a function")
            code, pos = read_string(body, pos + 1)
            codes.append(code)
    except (codec.RdbError, IndexError, ValueError) as exc:
        raise CommandError(f"ERR {exc}") from None
    store = client.server.scripting.functions
    names = [parse_library_header(code) for code in codes]
    if policy == b"append":
        for name in names:
            if name in store.libraries:
                raise CommandError(f"ERR Library {name} already exists")
    if policy == b"flush":
        store.replace_all(codes)
        return
    for code in codes:
        store.load(code, replace=True)


def _stats(client: Client) -> Any:
    engine = client.server.scripting
    run = engine.run
    running: Any = None
    if run is not None and not run.is_function:
        from actors.scripting.engine import BUSY_SCRIPT  # (the engine runs, so its module is loaded)

        raise CommandError(BUSY_SCRIPT)  # an EVAL script is busy: Redis answers slowevalerr
    if run is not None:
        running = {
            b"name": run.name.encode(),
            b"command": list(engine.fcall_argv),
            b"duration_ms": int((time.monotonic() - run.started_s) * 1000),
        }
    store = engine.functions
    return {
        b"running_script": running,
        b"engines": {
            b"LUA": {b"libraries_count": len(store.libraries), b"functions_count": len(store.functions)}
        },
    }


def _fcall(client: Client, argv: list[bytes], read_only: bool) -> Any:
    numkeys = parse_numkeys(argv, "ERR Bad number of keys provided")
    engine = client.server.scripting
    functions = engine.functions.functions
    name = argv[1].decode("utf-8", "replace")
    function = functions.get(name)
    if function is None:
        # Function names are case-insensitive, as Redis's dict of functions compares them.
        folded = name.lower()
        function = next((f for n, f in functions.items() if n.lower() == folded), None)
        if function is None:
            raise CommandError("ERR Function not found")
    ro = prepare_run(client, function.flags, read_only)
    engine.fcall_argv = argv  # FUNCTION STATS shows the running command in full
    return engine.execute(
        client,
        function.callback,
        function.name,
        argv,
        numkeys,
        ro,
        is_function=True,
    )


@command("fcall", -3, "noscript stale", (0, 0, 0), "scripting", "Invoke a function")
def cmd_fcall(client: Client, argv: list[bytes]) -> Any:
    return _fcall(client, argv, read_only=False)


@command("fcall_ro", -3, "noscript stale readonly", (0, 0, 0), "scripting", "Invoke a read-only function")
def cmd_fcall_ro(client: Client, argv: list[bytes]) -> Any:
    return _fcall(client, argv, read_only=True)
