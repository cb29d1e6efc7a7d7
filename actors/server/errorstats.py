"""Error replies counted as Redis 7.0 counts them: ``total_error_replies`` and INFO errorstats.

Redis's ``afterErrorReply``: every error reply sent counts once in ``total_error_replies`` and once under its
prefix, the first word of the message (looked for within its first 32 characters; ``ERR`` when there is
none), which ``INFO errorstats`` prints as ``errorstat_<PREFIX>:count=<n>``. Past 128 distinct prefixes new
ones are no longer tracked (Redis's ERROR_STATS_NUMBER), so a client inventing error codes cannot grow the
table without bound. Called on the loop thread only, where replies are encoded; errors are rare, so the
common path pays nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.server import Server

# Redis's ERROR_STATS_NUMBER: distinct prefixes tracked before new ones are ignored.
MAX_ERROR_PREFIXES = 128
# How far into the message Redis looks for the space that ends the prefix.
PREFIX_SEARCH_CHARS = 32


def error_prefix(message: str) -> str:
    """The prefix an error message counts under: its first word, or ERR when there is none in reach."""
    space = message.find(" ", 0, PREFIX_SEARCH_CHARS)
    return message[:space] if space > 0 else "ERR"


class CountedError(CommandError):
    """An error reply already counted where it arose: a script's command's error that the script raised or
    returned (Redis's ``ignore_error_stats_update``), so the EVAL's reply does not count it twice."""


def count_error_reply(server: Server, error: Any) -> None:
    """Count one error reply (``error``: a CommandError, or its message) in the node's stats."""
    if type(error) is CountedError:
        return
    stats = server.stats
    stats.total_error_replies += 1
    prefix = error_prefix(str(error).lstrip("-"))
    counts = stats.error_counts
    if prefix in counts:
        counts[prefix] += 1
    elif len(counts) < MAX_ERROR_PREFIXES:
        counts[prefix] = 1


def info_errorstats(server: Server) -> list[tuple[str, Any]]:
    """INFO errorstats: one line per prefix, in Redis's (rax: byte-sorted) order."""
    return [(f"errorstat_{prefix}", f"count={n}") for prefix, n in sorted(server.stats.error_counts.items())]
