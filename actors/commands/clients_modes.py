"""CLIENT subcommands that change how the node treats a connection: PAUSE / UNPAUSE, REPLY, NO-EVICT, and
client-side caching's TRACKING / CACHING / TRACKINGINFO / GETREDIR (actors/server/tracking.py).

``run`` is called by CLIENT (actors/commands/clients.py) and answers ``NOT_MINE`` for the other subcommands.
Replies and error texts are Redis 7.0's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands._util import parse_int
from actors.server.pause import PauseMode
from actors.server.reply_mode import ReplyMode, reply_modes
from actors.server.tracking import ClientTracking, tracking
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import OK, MultiReply, ReplySet

if TYPE_CHECKING:
    from actors.server.client import Client

NOT_MINE = object()
# CLIENT REPLY OFF / SKIP get no reply; an empty MultiReply encodes to nothing.
SILENT = MultiReply()
# CLIENT TRACKING's +OK, not as the shared OK constant: the connection then takes the general reply path, where
# it picks up the execute wrapper tracking just installed for the commands pipelined behind (master.py).
OK_REBIND = MultiReply([OK])
_LLONG_MAX = 2**63 - 1


def run(client: Client, sub: bytes, argv: list[bytes]) -> Any:
    """Run CLIENT ``sub`` if it is one of this module's, else return ``NOT_MINE``."""
    if sub == b"pause" and len(argv) in (3, 4):
        return _pause(client, argv)
    if sub == b"unpause" and len(argv) == 2:
        client.server.client_pause.unpause()
        return OK
    if sub == b"reply" and len(argv) == 3:
        mode = argv[2].lower()
        modes = reply_modes(client.server)
        if mode == b"on":
            modes.set_mode(client, ReplyMode.ON)
            return OK
        if mode == b"off":
            modes.set_mode(client, ReplyMode.OFF)
            return SILENT
        if mode == b"skip":
            if client.reply_mode is not ReplyMode.OFF:
                modes.set_mode(client, ReplyMode.SKIP_NEXT)
            return SILENT
        raise CommandError(errors.SYNTAX)
    if sub == b"no-evict" and len(argv) == 3:
        value = argv[2].lower()
        if value not in (b"on", b"off"):
            raise CommandError(errors.SYNTAX)
        client.no_evict = value == b"on"
        return OK
    if sub == b"tracking":
        return _tracking(client, argv)
    if sub == b"caching" and len(argv) == 3:
        return _caching(client, argv[2])
    if sub == b"getredir" and len(argv) == 2:
        state = client.tracking
        return state.redirect if state is not None else -1
    if sub == b"trackinginfo" and len(argv) == 2:
        return _trackinginfo(client)
    return NOT_MINE


def _tracking(client: Client, argv: list[bytes]) -> Any:
    """CLIENT TRACKING on|off [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP], as Redis 7.0
    checks it (the option errors first, then the mode rules)."""
    options = ClientTracking()
    prefixes: list[bytes] = []
    server = client.server
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        more = j + 1 < len(argv)
        if opt == b"redirect" and more:
            j += 1
            if options.redirect:
                raise CommandError("ERR A client can only redirect to a single other client")
            options.redirect = parse_int(argv[j])
            if options.redirect not in server.clients:
                raise CommandError("ERR The client ID you want redirect to does not exist")
        elif opt == b"bcast":
            options.bcast = True
        elif opt == b"optin":
            options.optin = True
        elif opt == b"optout":
            options.optout = True
        elif opt == b"noloop":
            options.noloop = True
        elif opt == b"prefix" and more:
            j += 1
            prefixes.append(argv[j])
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    mode = argv[2].lower()
    table = tracking(server)
    if mode == b"off":
        table.disable(client)
        return OK_REBIND
    if mode != b"on":
        raise CommandError(errors.SYNTAX)
    state = client.tracking
    if not options.bcast and prefixes:
        raise CommandError("ERR PREFIX option requires BCAST mode to be enabled")
    if state is not None and state.bcast != options.bcast:
        raise CommandError(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then "
            "re-enabling it with a different mode."
        )
    if options.bcast and (options.optin or options.optout):
        raise CommandError("ERR OPTIN and OPTOUT are not compatible with BCAST")
    if options.optin and options.optout:
        raise CommandError("ERR You can't use both OPTIN and OPTOUT")
    if state is not None and ((options.optin and state.optout) or (options.optout and state.optin)):
        raise CommandError(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then "
            "re-enabling it with a different mode."
        )
    if options.bcast:
        _check_prefix_collisions(state.prefixes if state is not None else [], prefixes)
    table.enable(client, options, prefixes)
    return OK_REBIND


def _check_prefix_collisions(existing: list[bytes], new: list[bytes]) -> None:
    """Redis's checkPrefixCollisionsOrReply: no prefix of a client may be a prefix of another."""
    for i, prefix in enumerate(new):
        for old in existing:
            if old.startswith(prefix) or prefix.startswith(old):
                raise CommandError(
                    f"ERR Prefix '{_text(prefix)}' overlaps with an existing prefix '{_text(old)}'. "
                    "Prefixes for a single client must not overlap."
                )
        for other in new[i + 1 :]:
            if other.startswith(prefix) or prefix.startswith(other):
                raise CommandError(
                    f"ERR Prefix '{_text(prefix)}' overlaps with another provided prefix '{_text(other)}'. "
                    "Prefixes for a single client must not overlap."
                )


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _caching(client: Client, raw: bytes) -> Any:
    state = client.tracking
    if state is None:
        raise CommandError(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT "
            "mode enabled"
        )
    value = raw.lower()
    if value == b"yes":
        if not state.optin:
            raise CommandError("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
    elif value == b"no":
        if not state.optout:
            raise CommandError("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
    else:
        raise CommandError(errors.SYNTAX)
    state.caching = True
    return OK


def _trackinginfo(client: Client) -> Any:
    state = client.tracking
    if state is None:
        return {b"flags": ReplySet([b"off"]), b"redirect": -1, b"prefixes": []}
    return {
        b"flags": ReplySet(state.info_flags()),
        b"redirect": state.redirect,
        b"prefixes": sorted(state.prefixes),
    }


def _pause(client: Client, argv: list[bytes]) -> Any:
    """CLIENT PAUSE timeout [WRITE|ALL]: the timeout as Redis's getTimeoutFromObjectOrReply reads it."""
    try:
        timeout_ms = int(argv[2])
    except ValueError:
        raise CommandError("ERR timeout is not an integer or out of range") from None
    if not -_LLONG_MAX - 1 <= timeout_ms <= _LLONG_MAX or argv[2].strip() != argv[2]:
        raise CommandError("ERR timeout is not an integer or out of range")
    if timeout_ms < 0:
        raise CommandError("ERR timeout is negative")
    mode = PauseMode.ALL
    if len(argv) == 4:
        word = argv[3].lower()
        if word == b"write":
            mode = PauseMode.WRITE
        elif word != b"all":
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
    client.server.client_pause.pause(mode, timeout_ms)
    return OK
