"""XINFO STREAM [FULL [COUNT n]] / GROUPS / CONSUMERS: field names and order as Redis 7.0 replies them (maps in
RESP3), radix-tree-keys/-nodes from the stream's modelled listpack nodes, lag from the group counters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from actors.commands.streams import entry_reply, get_stream
from actors.commands.streams_groups import _check_subcommand, _subcommand_error, nogroup_for_key
from actors.data.stream import INVALID_ENTRIES_READ, Stream, format_id
from protocol import errors
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.client import Client

XINFO_ARITY = {b"stream": -3, b"groups": 3, b"consumers": 4, b"help": 2}


# -- XINFO -------------------------------------------------------------------------------------------------


def rax_nodes(keys: list[bytes]) -> int:
    """How many nodes Redis's rax holds for these (sorted, equal-length) keys: compressed chains, branches
    and key leaves, as radix-tree-nodes reports."""
    if not keys:
        return 1

    def count(lo: int, hi: int, depth: int) -> int:
        first, last = keys[lo], keys[hi - 1]
        size = len(first)
        if depth == size:
            return 1
        common = depth
        while common < size and first[common] == last[common]:
            common += 1
        if common > depth:
            return 1 + count(lo, hi, common)
        total = 1
        i = lo
        while i < hi:
            j = i
            byte = keys[i][depth]
            while j < hi and keys[j][depth] == byte:
                j += 1
            total += count(i, j, depth + 1)
            i = j
        return total

    return count(0, len(keys), 0)


def _node_keys(stream: Stream) -> list[bytes]:
    return [ms.to_bytes(8, "big") + seq.to_bytes(8, "big") for ms, seq in stream.nodes]


def _stream_head(stream: Stream) -> list[Any]:
    return [
        b"length", stream.length,
        b"radix-tree-keys", len(stream.nodes),
        b"radix-tree-nodes", rax_nodes(_node_keys(stream)),
        b"last-generated-id", format_id(stream.last_id),
        b"max-deleted-entry-id", format_id(stream.max_deleted_entry_id),
        b"entries-added", stream.entries_added,
        b"recorded-first-entry-id", format_id(stream.first_id),
    ]  # fmt: skip


def _as_map(client: Client, flat: list[Any]) -> Any:
    if client.resp3:
        return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
    return flat


def _xinfo_stream(client: Client, stream: Stream, full: bool, count: int) -> Any:
    out = _stream_head(stream)
    if not full:
        first = stream.entries.peekitem(0) if stream.entries else None
        last = stream.entries.peekitem(-1) if stream.entries else None
        out += [
            b"groups", len(stream.groups),
            b"first-entry", entry_reply(*first) if first else None,
            b"last-entry", entry_reply(*last) if last else None,
        ]  # fmt: skip
        return _as_map(client, out)
    entries = stream.range((0, 0), (2**64 - 1, 2**64 - 1), count)
    out += [b"entries", [entry_reply(sid, pairs) for sid, pairs in entries]]
    groups = []
    for name, group in sorted(stream.groups.items()):
        pel = []
        for i, (sid, nack) in enumerate(group.pel.items()):
            if count and i >= count:
                break
            pel.append([format_id(sid), nack.consumer.name, nack.delivery_time, nack.delivery_count])
        consumers = []
        for cname, consumer in sorted(group.consumers.items()):
            cpel = []
            for i, (sid, nack) in enumerate(consumer.pel.items()):
                if count and i >= count:
                    break
                cpel.append([format_id(sid), nack.delivery_time, nack.delivery_count])
            consumers.append(_as_map(client, [
                b"name", cname, b"seen-time", consumer.seen_time, b"pel-count", len(consumer.pel), b"pending", cpel,
            ]))  # fmt: skip
        groups.append(_as_map(client, [
            b"name", name,
            b"last-delivered-id", format_id(group.last_id),
            b"entries-read", group.entries_read if group.entries_read != INVALID_ENTRIES_READ else None,
            b"lag", stream.group_lag(group),
            b"pel-count", len(group.pel),
            b"pending", pel,
            b"consumers", consumers,
        ]))  # fmt: skip
    out += [b"groups", groups]
    return _as_map(client, out)


XINFO_HELP = [
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
]


@command(
    "xinfo",
    -2,
    "readonly",
    (2, 2, 1),
    "stream",
    "A container for stream introspection commands",
    subcommands=("stream", "groups", "consumers", "help"),
)
def cmd_xinfo(client: Client, argv: list[bytes]) -> Any:
    sub = _check_subcommand("XINFO", argv, XINFO_ARITY)
    n = len(argv)
    if sub == b"help":
        return XINFO_HELP
    if sub == b"stream":
        full = False
        count = 10
        if n > 3:
            if n not in (4, 6) or argv[3].lower() != b"full":
                raise _subcommand_error("XINFO", argv[1])
            full = True
            if n == 6:
                if argv[4].lower() != b"count":
                    raise _subcommand_error("XINFO", argv[1])
                count = max(parse_int(argv[5]), 0)
    key = argv[2]
    stream = get_stream(client, key)
    if stream is None:
        raise CommandError(errors.NO_SUCH_KEY)
    now = client.server.keyspace.clock()
    if sub == b"consumers" and n == 4:
        group = stream.groups.get(argv[3])
        if group is None:
            raise nogroup_for_key(key, argv[3])
        return [
            _as_map(client, [b"name", name, b"pending", len(c.pel), b"idle", max(now - c.seen_time, 0)])
            for name, c in sorted(group.consumers.items())
        ]
    if sub == b"groups" and n == 3:
        return [
            _as_map(
                client,
                [
                    b"name",
                    name,
                    b"consumers",
                    len(group.consumers),
                    b"pending",
                    len(group.pel),
                    b"last-delivered-id",
                    format_id(group.last_id),
                    b"entries-read",
                    group.entries_read if group.entries_read != INVALID_ENTRIES_READ else None,
                    b"lag",
                    stream.group_lag(group),
                ],
            )  # fmt: skip
            for name, group in sorted(stream.groups.items())
        ]
    if sub == b"stream":
        return _xinfo_stream(client, stream, full, count)
    raise _subcommand_error("XINFO", argv[1])
