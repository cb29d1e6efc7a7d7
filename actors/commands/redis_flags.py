"""Redis 7.0's command flags that our command table does not carry, read from Redis's own table.

Owns ``redis_flagged`` and ``subcommand_flagged``: whether Redis flags a command (or, for a container such as
XGROUP or CLUSTER, the subcommand it runs) with a given flag, e.g. ``denyoom`` for a container's subcommands
(maxmemory's refusals) or ``no_async_loading`` (the commands refused while a replica async-loads). The table (keyspecs.py) is big, so it is read on the
first question about a flag, never at start-up.
"""

from __future__ import annotations

from typing import Any

# flag -> (the top-level commands Redis flags with it, container -> its subcommands flagged with it)
_FLAGGED: dict[str, tuple[frozenset[str], dict[str, frozenset[bytes]]]] = {}


def _flagged(flag: str) -> tuple[frozenset[str], dict[str, frozenset[bytes]]]:
    found = _FLAGGED.get(flag)
    if found is None:
        from actors.commands.keyspecs import INFO  # (a big table: loaded by the first question only)

        names = frozenset(name for name, entry in INFO.items() if flag in entry[2])
        subs: dict[str, frozenset[bytes]] = {}
        for name, entry in INFO.items():
            flagged_subs = frozenset(sub[0].split(b"|", 1)[1] for sub in entry[9] if flag in sub[2])
            if flagged_subs:
                subs[name] = flagged_subs
        found = _FLAGGED[flag] = (names, subs)
    return found


def redis_flagged(flag: str, cmd: Any, argv: list[bytes]) -> bool:
    """Whether Redis flags this command with ``flag``: the command itself, or the subcommand it runs."""
    return cmd.name in _flagged(flag)[0] or subcommand_flagged(flag, cmd, argv)


def subcommand_flagged(flag: str, cmd: Any, argv: list[bytes]) -> bool:
    """Whether ``cmd`` is a container whose subcommand in ``argv`` Redis flags with ``flag`` (XGROUP CREATE is
    denyoom, XGROUP HELP is not): what a container's own flags cannot say."""
    flagged_subs = _flagged(flag)[1].get(cmd.name)
    return flagged_subs is not None and len(argv) > 1 and argv[1].lower() in flagged_subs
