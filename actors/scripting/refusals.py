"""Commands a script may name but not run with these arguments: Redis 7.0's per-subcommand and per-option refusals.

Most refusals are decided by the command's name alone (its ``noscript`` flag), once per spelling, in
bridge.py's ``_lookup_command``. Two kinds need the arguments too, so such a command is remembered apart
(``guard_of``) and checked on every call through redis.call's slow path, never on the inline fast path:

- a container whose subcommand is flagged ``noscript`` in Redis's command table (CLUSTER RESET,
  CONFIG SET, CLIENT KILL, SCRIPT LOAD, FUNCTION ...): Redis looks the subcommand up before scriptCall
  checks the flag, so ``cluster reset`` is refused while ``cluster info`` runs;
- XREAD / XREADGROUP with BLOCK, which Redis's option parser refuses for a script's client
  (``xread command is not allowed with BLOCK option from scripts``, named as the script spelled it).
"""

from __future__ import annotations

from collections.abc import Callable

from actors.commands.keyspecs import INFO
from protocol.errors import echoed

NOT_FROM_SCRIPT = "ERR This Redis command is not allowed from script"

# A guard: the refusal for one call's arguments (argv[0] as the script spelled it), or None to run it.
Guard = Callable[[list[bytes]], "str | None"]


def _noscript_subcommands() -> dict[str, frozenset[bytes]]:
    """container name -> its subcommands flagged noscript, for containers not flagged noscript themselves."""
    found: dict[str, frozenset[bytes]] = {}
    for name, entry in INFO.items():
        flags, subcommands = entry[2], entry[9]
        if "noscript" in flags:
            continue
        refused = frozenset(sub[0].split(b"|", 1)[1] for sub in subcommands if "noscript" in sub[2])
        if refused:
            found[name] = refused
    return found


_NOSCRIPT_SUBCOMMANDS = _noscript_subcommands()


def _subcommand_guard(refused: frozenset[bytes]) -> Guard:
    def guard(argv: list[bytes]) -> str | None:
        if len(argv) > 1 and argv[1].lower() in refused:
            return NOT_FROM_SCRIPT
        return None

    return guard


def _xread_guard(group: bool) -> Guard:
    """XREAD[GROUP]'s options as its parser walks them: BLOCK with a value after it, before STREAMS, is refused.

    An option the parser would reject first (a syntax error) ends the walk: the command then runs and gives
    its own error, as Redis's would, before any BLOCK later in the line is seen."""

    def guard(argv: list[bytes]) -> str | None:
        i, argc = 1, len(argv)
        while i < argc:
            option = argv[i].lower()
            more = argc - i - 1
            if option == b"block" and more:
                return f"ERR {echoed(argv[0])} command is not allowed with BLOCK option from scripts"
            if option == b"count" and more:
                if not _is_integer(argv[i + 1]):
                    return None  # the command's own error comes first (its parser reads COUNT's value)
                i += 2
            elif option == b"streams" and more:
                return None
            elif group and option == b"group" and more >= 2:
                i += 3
            elif group and option == b"noack":
                i += 1
            else:
                return None
        return None

    return guard


def _is_integer(value: bytes) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return -(2**63) <= int(value) < 2**63


def guard_of(name: str) -> Guard | None:
    """The per-call check a script's call of command ``name`` needs (None: its name decides alone)."""
    if name == "xread":
        return _xread_guard(group=False)
    if name == "xreadgroup":
        return _xread_guard(group=True)
    refused = _NOSCRIPT_SUBCOMMANDS.get(name)
    if refused is not None:
        return _subcommand_guard(refused)
    return None
