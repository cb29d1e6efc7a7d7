"""CLIENT subcommands that change how the node treats a connection: PAUSE / UNPAUSE, REPLY, NO-EVICT, and
client-side caching's TRACKING / CACHING / TRACKINGINFO / GETREDIR (actors/server/tracking.py).

``run`` is called by CLIENT (actors/commands/clients.py) and answers ``NOT_MINE`` for the other subcommands.
Replies and error texts are Redis 7.0's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.server.pause import PauseMode
from actors.server.reply_mode import ReplyMode, reply_modes
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import OK, MultiReply

if TYPE_CHECKING:
    from actors.server.client import Client

NOT_MINE = object()
# CLIENT REPLY OFF / SKIP get no reply; an empty MultiReply encodes to nothing.
SILENT = MultiReply()
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
    return NOT_MINE


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
