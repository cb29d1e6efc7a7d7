"""``redactor cli -c``: follow a cluster's ``-MOVED`` and ``-ASK`` redirections, as ``redis-cli -c`` does.

On ``MOVED <slot> <host>:<port>`` or ``ASK <slot> <host>:<port>`` the shell connects to that node (and stays
there: the prompt shows it, as redis-cli's does), sends ``ASKING`` first when the redirection was an ASK,
and sends the command again. Interactively it prints redis-cli's line (cliReadReply in redis-cli.c)::

    -> Redirected to slot [12182] located at 127.0.0.1:7002

and, like redis-cli, prints nothing of the redirection when it runs a command given on its command line or
read from a pipe. redis-cli follows redirections without limit; the shell stops after
``MAX_REDIRECTIONS`` (redis-py's cluster client's TTL) so two nodes that disagree cannot loop it forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocol.envelope import ReplyError

# How many redirections one command may follow (redis-py RedisCluster's RedisClusterRequestTTL).
MAX_REDIRECTIONS = 16


@dataclass(frozen=True)
class Redirection:
    ask: bool  # ASK: one command on the target, preceded by ASKING; MOVED: the slot lives there now
    slot: int
    host: str
    port: int


def parse_redirection(reply: Any) -> Redirection | None:
    """The redirection an error reply names, or None (any other reply, or a malformed one)."""
    if not isinstance(reply, ReplyError):
        return None
    words = str(reply).split(" ")
    if len(words) != 3 or words[0] not in ("MOVED", "ASK"):
        return None
    host, _, port = words[2].rpartition(":")
    if not words[1].isdigit() or not port.isdigit() or not host:
        return None
    return Redirection(words[0] == "ASK", int(words[1]), host.strip("[]"), int(port))


def redirected_line(redirection: Redirection) -> bytes:
    return b"-> Redirected to slot [%d] located at %s:%d\n" % (
        redirection.slot,
        redirection.host.encode(),
        redirection.port,
    )
