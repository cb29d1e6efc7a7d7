"""A script's declared flags, read before it runs: EVAL's shebang (``#!lua flags=...``), the cached script of
EVALSHA, FCALL's function. Redis lets them stand for the command's own flags (getCommandFlags, through
evalGetCommandFlags / fcallGetCommandFlags): cluster routing asks whether the run writes, CLIENT PAUSE WRITE
whether it may replicate, and EVAL's checks before the run (actors/commands/scripting.py) what it may do.

Kept apart from the scripting commands so that the dispatcher's every-command paths can ask without importing
them (those are imported on their first call).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.client import Client

# Redis's script flags (scripts_flags_def), as a shebang's flags= names them.
SCRIPT_FLAGS = frozenset({"no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"})


def shebang_flags(body: bytes) -> frozenset[str] | None:
    """The flags of a ``#!lua flags=...`` first line; None for a script without a shebang (EVAL compat mode)."""
    if not body.startswith(b"#!"):
        return None
    end = body.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid script shebang")
    parts = body[:end].decode("utf-8", "replace").split()
    if not parts:
        raise CommandError("ERR Invalid engine in script shebang")
    if parts[0] != "#!lua":
        raise CommandError(f"ERR Unexpected engine in script shebang: {parts[0]}")
    flags: set[str] = set()
    for part in parts[1:]:
        if not part.startswith("flags="):
            raise CommandError(f"ERR Unknown lua shebang option: {part}")
        for flag in part[6:].split(",") if part[6:] else ():  # "flags=" alone: no flags (Redis's sdssplitlen)
            if flag not in SCRIPT_FLAGS:
                raise CommandError(f"ERR Unexpected flag in script shebang: {flag}")
            flags.add(flag)
    return frozenset(flags)


# EVAL's family and FCALL's: their scripts' declared flags stand for the command's own (getCommandFlags).
SCRIPT_RUNNERS = frozenset(("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"))


def declared_flags(client: Client, cmd: Any, argv: list[bytes]) -> frozenset[str] | None:
    """The flags this EVAL* / FCALL* run's script or function declares, before it runs (Redis's
    evalGetCommandFlags / fcallGetCommandFlags); None when they are unknown or absent (no shebang, a bad one, an
    EVALSHA of no cached script, an FCALL of no function): the command's own flags hold then."""
    if cmd.name not in SCRIPT_RUNNERS or len(argv) < 2:
        return None
    engine = client.server.scripting
    if cmd.name.startswith("fcall"):
        function = engine.functions.functions.get(argv[1].decode("utf-8", "replace"))
        return None if function is None else function.flags
    if cmd.name.startswith("evalsha"):
        cached = engine.scripts.get(argv[1].lower().decode("latin-1")) if len(argv[1]) == 40 else None
        if cached is None:
            return None
        body = cached[1]
    else:
        body = argv[1]
    try:
        return shebang_flags(body)
    except CommandError:
        return None  # the run itself says what is wrong with the shebang


def declares_writes(client: Client, cmd: Any, argv: list[bytes]) -> bool | None:
    """Whether this run's declared flags say it may write (it does unless it declares no-writes: Redis's
    scriptFlagsToCmdFlags sets CMD_WRITE and clears CMD_MAY_REPLICATE); None when it declares none."""
    flags = declared_flags(client, cmd, argv)
    return None if flags is None else "no-writes" not in flags


def writes(client: Client, cmd: Any, argv: list[bytes]) -> bool:
    """Whether the command counts as a write where Redis asks getCommandFlags(c) & CMD_WRITE (cluster routing):
    a script or function that declares flags writes unless it declares no-writes, whatever its command."""
    if cmd.name not in SCRIPT_RUNNERS:  # (every keyed command in cluster mode asks: the common case first)
        return bool(cmd.is_write)
    declared = declares_writes(client, cmd, argv)
    return bool(cmd.is_write) if declared is None else declared
