"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD | EXISTS | FLUSH | KILL | HELP, as Redis 7.0.

The work happens in actors/scripting (the runtime, the cache, the run and its effects); this module parses
arguments, reads a script's shebang flags and checks them against the node's state before the run, as
Redis's ``evalGenericCommand`` and ``scriptPrepareForRun`` do.

Keys: Redis declares EVAL's keys as movable (numkeys at argv[2]); the legacy first/last/step triple is
(0, 0, 0), which is what ``keys=`` says here. The key finder for COMMAND GETKEYS and cluster routing is
``script_keys`` below, to be registered with the key-finder hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands.script_flags import shebang_flags
from actors.server.client import ClientKind
from actors.server.maxmemory import OOM
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client

_SCRIPT_SUBCOMMANDS = {b"load": 3, b"exists": -3, b"flush": -2, b"kill": 2, b"help": 2}
# Redis 7.0's SCRIPT HELP without DEBUG (the Lua debugger, LDB, is not implemented here).
_SCRIPT_HELP = [
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
]


def parse_numkeys(argv: list[bytes], not_integer: str = errors.NOT_INTEGER) -> int:
    """EVAL / FCALL's numkeys (argv[2]), checked as Redis checks it (FCALL's text for a non-number differs)."""
    try:
        numkeys = int(argv[2])
    except ValueError:
        raise CommandError(not_integer) from None
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    if numkeys > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    return numkeys


def script_keys(argv: list[bytes]) -> list[int]:
    """Positions of EVAL / EVALSHA / FCALL's keys (argv[3 : 3 + numkeys]); [] when numkeys is unusable."""
    try:
        numkeys = int(argv[2])
    except (ValueError, IndexError):
        return []
    if numkeys < 0 or numkeys > len(argv) - 3:
        return []
    return list(range(3, 3 + numkeys))


def prepare_run(client: Client, flags: frozenset[str] | None, read_only_command: bool) -> bool:
    """Check a script's declared flags against the node (scriptPrepareForRun); True: the run is read-only.

    Without a shebang (``flags`` None) nothing is checked up front: each write the script tries is judged
    when it runs. With one, a no-cluster script is refused in cluster mode, and a script that may write is
    refused here on a read-only replica, under a disk error, through *_RO commands and without enough good
    replicas.
    """
    server = client.server
    # redis.call's OOM check (scriptVerifyOOM) skips scripts declaring allow-oom.
    server.scripting.allow_oom = flags is not None and "allow-oom" in flags
    if flags is None:
        return read_only_command
    if "no-cluster" in flags and server.cluster is not None:  # (checked first, as scriptPrepareForRun)
        raise CommandError("ERR Can not run script on cluster, 'no-cluster' flag is set.")
    if "no-writes" in flags:
        return True
    if client.kind is not ClientKind.MASTER:
        if server.is_replica and server.replica_read_only:
            raise CommandError("READONLY Can not run script with write flag on readonly replica")
        if server.disk_error is not None:
            raise CommandError(server.disk_error)
    if read_only_command:
        raise CommandError("ERR Can not execute a script with write flag using *_ro command.")
    if server.write_refusal is not None and client.kind is not ClientKind.MASTER:
        raise CommandError(errors.NOREPLICAS)
    if server.refuse_stale and "allow-stale" not in flags and client.kind is not ClientKind.MASTER:
        raise CommandError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")
    if "allow-oom" not in flags and server.memory.refuses_denyoom(client):
        raise CommandError(OOM)  # a script that may write is refused up front under OOM, as Redis does
    return False


def _evalsha(client: Client, argv: list[bytes], read_only: bool) -> Any:
    """EVALSHA / EVALSHA_RO: the hot path of applications' scripts (SCRIPT LOAD once, EVALSHA after)."""
    numkeys = parse_numkeys(argv)
    server = client.server
    engine = server._scripting
    if engine is None:
        engine = server.scripting
    # By the sha as sent (clients send the lower-case hex SCRIPT LOAD answered), else case-folded.
    cached = engine.by_sha.get(argv[1])
    if cached is None:
        cached = engine.by_sha.get(argv[1].lower())
        if cached is None:
            raise CommandError("NOSCRIPT No matching script. Please use EVAL.")
    fn, shebang_body, sha = cached
    if shebang_body is not None:  # flags to check; a script without a shebang has none (EVAL compat mode)
        read_only = prepare_run(client, shebang_flags(shebang_body), read_only)
    return engine.execute(client, fn, sha, argv, numkeys, read_only)


def _eval(client: Client, argv: list[bytes], read_only: bool) -> Any:
    numkeys = parse_numkeys(argv)
    engine = client.server.scripting
    body = argv[1]
    flags = shebang_flags(body)  # before compiling: a script with a bad shebang is not cached
    sha, fn = engine.compile(body)
    read_only = prepare_run(client, flags, read_only)
    return engine.execute(client, fn, sha, argv, numkeys, read_only)


@command("eval", -3, "noscript stale", (0, 0, 0), "scripting", "Execute a Lua script server side")
def cmd_eval(client: Client, argv: list[bytes]) -> Any:
    return _eval(client, argv, False)


@command("evalsha", -3, "noscript stale", (0, 0, 0), "scripting", "Execute a Lua script server side")
def cmd_evalsha(client: Client, argv: list[bytes]) -> Any:
    """``_evalsha`` inlined for its common case (a usable numkeys, the sha as SCRIPT LOAD answered it, no
    shebang flags): two Python frames less on every EVALSHA. Anything else takes ``_evalsha``."""
    engine = client.server._scripting
    if engine is not None:
        cached = engine.by_sha.get(argv[1])
        if cached is not None and cached[1] is None:
            try:
                numkeys = int(argv[2])
            except ValueError:
                numkeys = -1
            if 0 <= numkeys <= len(argv) - 3:
                return engine.execute(client, cached[0], cached[2], argv, numkeys, False)
    return _evalsha(client, argv, False)


@command(
    "eval_ro",
    -3,
    "noscript stale readonly",
    (0, 0, 0),
    "scripting",
    "Execute a read-only Lua script server side",
)
def cmd_eval_ro(client: Client, argv: list[bytes]) -> Any:
    return _eval(client, argv, True)


@command(
    "evalsha_ro",
    -3,
    "noscript stale readonly",
    (0, 0, 0),
    "scripting",
    "Execute a read-only Lua script server side",
)
def cmd_evalsha_ro(client: Client, argv: list[bytes]) -> Any:
    return _evalsha(client, argv, True)


@command(
    "script",
    -2,
    "noscript stale",
    (0, 0, 0),
    "scripting",
    "A container for Lua scripts management commands",
    subcommands=("load", "exists", "flush", "kill", "help"),
)
def cmd_script(client: Client, argv: list[bytes]) -> Any:
    sub = argv[1].lower()
    arity = _SCRIPT_SUBCOMMANDS.get(sub)
    if arity is None:
        raise errors.unknown_subcommand(errors.echoed(argv[1]), "script")
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        raise errors.wrong_arity(f"script|{sub.decode()}")
    server = client.server
    if sub == b"help":
        return _SCRIPT_HELP
    if sub == b"kill":
        if server.scripting is None:
            raise CommandError("NOTBUSY No scripts in execution right now.")
        return server.scripting.kill(functions=False)
    engine = server.scripting
    if sub == b"load":
        shebang_flags(argv[2])  # a bad shebang is refused at load time too, as Redis does
        sha, _ = engine.compile(argv[2])
        return sha.encode()
    if sub == b"exists":
        return [1 if arg.lower().decode("latin-1") in engine.scripts else 0 for arg in argv[2:]]
    # FLUSH [ASYNC|SYNC]: both empty the cache at once (it holds compiled functions, not data).
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"async", b"sync")):
        raise CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    engine.flush()
    # Not propagated: Redis 7.0 replicates scripts by effects, so no replica or AOF needs the cache emptied.
    return OK
