"""Blocking list pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP.

Served at once when a key has data (propagated as LPOP/RPOP, LMOVE, RPOPLPUSH, as Redis 7.0 does); otherwise
the client blocks in actors/server/blocking.py's registry, which calls the ``_serve_*`` functions below when a
key it waits on gets data.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from actors.commands import BLOCKED, command
from actors.commands._util import int_bytes
from actors.commands.lists import (
    _changed,
    _list,
    _move,
    _mpop_now,
    _pop_many,
    _side,
    _side_name,
    parse_mpop,
    pop_event,
)
from actors.server.blocking import can_block, parse_timeout_ms, registry
from protocol.errors import WrongTypeError
from protocol.resp import NULL_ARRAY

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.server.client import Client

# -- blocking pops -----------------------------------------------------------------------------------------


def _serve_pop(left: bool) -> Any:
    def serve(client: Client, db: Database, key: bytes, items: deque[bytes]) -> Any:
        server = client.server
        value = items.popleft() if left else items.pop()
        _changed(client, db, key, items, pop_event(left))
        server.keyspace.dirty += 1
        server.propagate(db.id, [b"LPOP" if left else b"RPOP", key])
        return [key, value]

    return serve


def _serve_mpop(left: bool, count: int) -> Any:
    def serve(client: Client, db: Database, key: bytes, items: deque[bytes]) -> Any:
        server = client.server
        popped = _pop_many(items, count, left)
        _changed(client, db, key, items, pop_event(left))
        server.keyspace.dirty += 1
        server.propagate(db.id, [b"LPOP" if left else b"RPOP", key, int_bytes(len(popped))])
        return [key, popped]

    return serve


def _serve_move(dst: bytes, from_left: bool, to_left: bool, as_rpoplpush: bool) -> Any:
    def serve(client: Client, db: Database, key: bytes, items: deque[bytes]) -> Any:
        server = client.server
        target = server.keyspace.lookup(db, dst)
        if target is not None and type(target) is not deque:
            raise WrongTypeError()
        value = _move(client, db, key, dst, items, from_left, to_left)
        if as_rpoplpush:
            server.propagate(db.id, [b"RPOPLPUSH", key, dst])
        else:
            server.propagate(db.id, [b"LMOVE", key, dst, _side_name(from_left), _side_name(to_left)])
        return value

    return serve


def _blocking_pop(client: Client, argv: list[bytes], left: bool) -> Any:
    keys = argv[1:-1]
    timeout_ms = parse_timeout_ms(argv[-1])
    for key in keys:
        items = _list(client, key)
        if items is None:
            continue
        value = items.popleft() if left else items.pop()
        _changed(client, client.db, key, items, pop_event(left))
        client.server.keyspace.dirty += 1
        client.propagate_as = [[b"LPOP" if left else b"RPOP", key]]
        return [key, value]
    if not can_block(client):
        return NULL_ARRAY
    registry(client.server).block(client, keys, deque, timeout_ms, NULL_ARRAY, _serve_pop(left))
    return BLOCKED


@command(
    "blpop",
    -3,
    "write noscript blocking",
    (1, -2, 1),
    "list",
    "Remove and get the first element in a list, or block until one is available",
)
def cmd_blpop(client: Client, argv: list[bytes]) -> Any:
    return _blocking_pop(client, argv, left=True)


@command(
    "brpop",
    -3,
    "write noscript blocking",
    (1, -2, 1),
    "list",
    "Remove and get the last element in a list, or block until one is available",
)
def cmd_brpop(client: Client, argv: list[bytes]) -> Any:
    return _blocking_pop(client, argv, left=False)


def _blocking_move(
    client: Client,
    src: bytes,
    dst: bytes,
    from_left: bool,
    to_left: bool,
    raw_timeout: bytes,
    as_rpoplpush: bool,
    sides: tuple[bytes, bytes],
) -> Any:
    """BLMOVE / BRPOPLPUSH. ``sides``: BLMOVE's two words as sent, which a move made at once propagates as LMOVE
    (a move made later, when a push wakes the client, propagates LEFT / RIGHT: Redis's wording in both cases)."""
    timeout_ms = parse_timeout_ms(raw_timeout)
    items = _list(client, src)
    if items is not None:
        _list(client, dst)
        value = _move(client, client.db, src, dst, items, from_left, to_left)
        if as_rpoplpush:
            client.propagate_as = [[b"RPOPLPUSH", src, dst]]
        else:
            client.propagate_as = [[b"LMOVE", src, dst, *sides]]
        return value
    if not can_block(client):
        return None
    serve = _serve_move(dst, from_left, to_left, as_rpoplpush)
    # Redis 7.0 answers every timed-out list wait with a null array (RESP2 *-1), BLMOVE included.
    registry(client.server).block(client, [src], deque, timeout_ms, NULL_ARRAY, serve)
    return BLOCKED


@command(
    "blmove",
    6,
    "write noscript denyoom blocking",
    (1, 2, 1),
    "list",
    "Pop an element from a list, push it to another list and return it; or block until one is available",
)
def cmd_blmove(client: Client, argv: list[bytes]) -> Any:
    from_left = _side(argv[3])
    to_left = _side(argv[4])
    return _blocking_move(
        client, argv[1], argv[2], from_left, to_left, argv[5], as_rpoplpush=False, sides=(argv[3], argv[4])
    )


@command(
    "brpoplpush",
    4,
    "write noscript denyoom blocking",
    (1, 2, 1),
    "list",
    "Pop an element from a list, push it to another list and return it; or block until one is available",
)
def cmd_brpoplpush(client: Client, argv: list[bytes]) -> Any:
    return _blocking_move(
        client, argv[1], argv[2], False, True, argv[3], as_rpoplpush=True, sides=(b"RIGHT", b"LEFT")
    )


@command(
    "blmpop",
    -5,
    "write blocking movablekeys",
    (0, 0, 0),
    "list",
    "Pop elements from a list, or block until one is available",
)
def cmd_blmpop(client: Client, argv: list[bytes]) -> Any:
    keys, left, count = parse_mpop(argv, 2, (b"left", b"right"))
    timeout_ms = parse_timeout_ms(argv[1])
    reply = _mpop_now(client, keys, left, count)
    if reply is not None:
        return reply
    if not can_block(client):
        return NULL_ARRAY
    registry(client.server).block(client, keys, deque, timeout_ms, NULL_ARRAY, _serve_mpop(left, count))
    return BLOCKED
