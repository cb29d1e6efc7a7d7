"""MEMORY: USAGE (an estimate of what a key costs this process), DOCTOR, PURGE, MALLOC-STATS, HELP.

MEMORY USAGE is an honest estimate of Python's own accounting, not Redis's allocator figures: ``sys.getsizeof``
of the key, of the value's container(s), and of its elements. As Redis does, a collection's elements are
sampled (SAMPLES, default 5; 0 means all) and the average is multiplied by the element count, so the command
stays cheap on big values. The dict slot that holds the key in the database is included, spread per key.
"""

from __future__ import annotations

import gc
import itertools
import sys
from collections import deque
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from actors.data.stream import Stream
from actors.data.types import ZSet
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import OK, Verbatim

if TYPE_CHECKING:
    from actors.server.client import Client

# Redis's default MEMORY USAGE sample size (OBJ_COMPUTE_SIZE_DEF_SAMPLES).
DEFAULT_SAMPLES = 5
# A CPython dict entry (hash, key pointer, value pointer) plus its index slot, per key of a database.
DICT_ENTRY_BYTES = 8 * 3 + 8
_FLOAT_BYTES = sys.getsizeof(0.0)
_PAIR_BYTES = sys.getsizeof((0.0, b""))

HELP = [
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
]


def _sampled(items: Any, count: int, samples: int, size_of: Any) -> int:
    """Total size of ``count`` elements estimated from the first ``samples`` of them (all when 0)."""
    if count == 0:
        return 0
    taken = itertools.islice(items, samples) if samples else items
    total = 0
    seen = 0
    for item in taken:
        total += size_of(item)
        seen += 1
    return total if seen >= count else total * count // max(seen, 1)


def _sorted_list_bytes(ordered: Any) -> int:
    """The SortedList's own structure: its sublists, their maxima and its positional index."""
    total = sys.getsizeof(ordered)
    lists = getattr(ordered, "_lists", [])
    total += sys.getsizeof(lists) + sum(sys.getsizeof(sub) for sub in lists)
    total += sys.getsizeof(getattr(ordered, "_maxes", []))
    total += sys.getsizeof(getattr(ordered, "_index", []))
    return total


def estimate_value_bytes(value: Any, samples: int = DEFAULT_SAMPLES) -> int:
    """Bytes this process spends on ``value`` (containers plus sampled elements)."""
    kind = type(value)
    if kind is bytes:
        return sys.getsizeof(value)
    if kind is deque or kind is set:
        return sys.getsizeof(value) + _sampled(iter(value), len(value), samples, sys.getsizeof)
    if kind is dict:
        return sys.getsizeof(value) + _sampled(
            iter(value.items()), len(value), samples, lambda kv: sys.getsizeof(kv[0]) + sys.getsizeof(kv[1])
        )
    if kind is ZSet:
        # Each member is held by the scores dict and by one (score, member) tuple in the sorted list; the
        # float is shared between them.
        return (
            sys.getsizeof(value)
            + sys.getsizeof(value.scores)
            + _sorted_list_bytes(value.ordered)
            + _sampled(
                iter(value.scores),
                len(value),
                samples,
                lambda m: sys.getsizeof(m) + _FLOAT_BYTES + _PAIR_BYTES,
            )
        )
    if kind is Stream:
        # Entries: the SortedDict's key tuple and field/value list, sampled; groups' PELs are not sampled.
        return sys.getsizeof(value) + _sampled(
            iter(value.entries.items()),
            value.length,
            samples,
            lambda kv: sys.getsizeof(kv[0]) + sys.getsizeof(kv[1]) + sum(map(sys.getsizeof, kv[1])),
        )
    return sys.getsizeof(value)


@command(
    "memory",
    -2,
    "",
    (0, 0, 0),
    "server",
    "A container for memory diagnostics commands",
    subcommands=("usage", "doctor", "purge", "malloc-stats", "help"),
)
def cmd_memory(client: Client, argv: list[bytes]) -> Any:
    sub = argv[1].lower()
    if sub == b"help" and len(argv) == 2:
        return HELP
    if sub == b"usage":
        if len(argv) < 3:
            raise errors.wrong_arity("memory|usage")
        samples = DEFAULT_SAMPLES
        i = 3
        while i < len(argv):
            if argv[i].lower() == b"samples" and i + 1 < len(argv):
                samples = parse_int(argv[i + 1])
                if samples < 0:
                    raise CommandError(errors.SYNTAX)
                i += 2
            else:
                raise CommandError(errors.SYNTAX)
        key = argv[2]
        value = client.server.keyspace.lookup(client.db, key)
        if value is None:
            return None
        size_bytes = sys.getsizeof(key) + DICT_ENTRY_BYTES + estimate_value_bytes(value, samples)
        if key in client.db.expires:
            size_bytes += DICT_ENTRY_BYTES + sys.getsizeof(0)
        return size_bytes
    if sub == b"doctor" and len(argv) == 2:
        return Verbatim(
            b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on "
            b"this base.\n"
        )
    if sub == b"purge" and len(argv) == 2:
        gc.collect()
        return OK
    if sub == b"malloc-stats" and len(argv) == 2:
        return Verbatim(b"Stats not supported for the current allocator")
    if sub in (b"doctor", b"purge", b"malloc-stats", b"help"):
        raise errors.wrong_arity(f"memory|{sub.decode()}")
    raise errors.unknown_subcommand(argv[1].decode("utf-8", "replace"), "memory")
