"""Redis 7's limits before authentication, for msgpack frames on the bus: a bounded header walker.

The RESP port refuses, from a client that has not authenticated, more than 10 arguments or a bulk over
16 KiB (protocol/resp_preauth.py). A bus frame is msgpack, whose decoder builds every element of a frame
before anyone can look at it: 256 KiB of tiny arguments is ~250,000 Python objects made on the loop thread.
``preauth_refusal`` walks a frame's msgpack headers without building anything (payloads skipped by their
length) and says whether it is over the limits: at most ``max_items`` elements in all (containers, their
elements, nested or not) and no string, binary or extension over ``max_bulk_bytes``. It stops at the first
element over a limit, so a frame costs at most ``max_items`` header reads whatever its size.

A frame that is not valid msgpack (a reserved byte, a frame cut short) is left to the decoder: within the
walked limits it refuses it after as little work as the walk did.
"""

from __future__ import annotations

__all__ = [
    "PREAUTH_MAX_ARGS",
    "PREAUTH_MAX_BULK_BYTES",
    "PREAUTH_NODE_MAX_ITEMS",
    "PREAUTH_REQUEST_MAX_ITEMS",
    "REFUSED_BULK",
    "REFUSED_ITEMS",
    "preauth_refusal",
]

# Redis 7's limits for an unauthenticated client (networking.c, processMultibulkBuffer).
PREAUTH_MAX_ARGS = 10
PREAUTH_MAX_BULK_BYTES = 16384
# A request is [version, request_id, argv]: the envelope's four elements, then the arguments.
PREAUTH_REQUEST_MAX_ITEMS = 4 + PREAUTH_MAX_ARGS
# A node message's header before its sender proved the password: replication's Psync, the largest a replica
# sends before that, has 7 fields with its verb; twice that leaves room for a newer version's fields.
PREAUTH_NODE_MAX_ITEMS = 16
# The reasons, worded as Redis's errors for the same limits.
REFUSED_ITEMS = "unauthenticated multibulk length"
REFUSED_BULK = "unauthenticated bulk length"

# Fixed-size element kinds: first byte -> bytes the element takes in all.
_FIXED = {
    0xC0: 1,  # nil
    0xC2: 1,  # false
    0xC3: 1,  # true
    0xCA: 5,  # float 32
    0xCB: 9,  # float 64
    0xCC: 2,  # uint 8
    0xCD: 3,
    0xCE: 5,
    0xCF: 9,
    0xD0: 2,  # int 8
    0xD1: 3,
    0xD2: 5,
    0xD3: 9,
    0xD4: 3,  # fixext 1 (type byte + data)
    0xD5: 4,
    0xD6: 6,
    0xD7: 10,
    0xD8: 18,
}
# Length-prefixed kinds: first byte -> (width of the length in bytes, extra bytes before the data).
_SIZED = {
    0xC4: (1, 0),  # bin 8
    0xC5: (2, 0),
    0xC6: (4, 0),
    0xC7: (1, 1),  # ext 8 (a type byte follows the length)
    0xC8: (2, 1),
    0xC9: (4, 1),
    0xD9: (1, 0),  # str 8
    0xDA: (2, 0),
    0xDB: (4, 0),
}
# Containers with a length field: first byte -> (width of the count in bytes, elements per count).
_CONTAINERS = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}


def preauth_refusal(buf: bytes | memoryview, max_items: int, max_bulk_bytes: int) -> str | None:
    """Why the msgpack message in ``buf`` is over the limits (``REFUSED_*``), or None if it is not."""
    n = len(buf)
    i = 0
    items = 0
    pending = 1  # elements announced and not walked yet
    while pending:
        if i >= n:
            return None  # cut short: the decoder refuses it
        b = buf[i]
        pending -= 1
        items += 1
        if b <= 0x7F or b >= 0xE0:  # positive / negative fixint
            i += 1
        elif b <= 0x8F:  # fixmap
            pending += 2 * (b & 0x0F)
            i += 1
        elif b <= 0x9F:  # fixarray
            pending += b & 0x0F
            i += 1
        elif b <= 0xBF:  # fixstr (at most 31 bytes)
            i += 1 + (b & 0x1F)
        elif b in _FIXED:
            i += _FIXED[b]
        elif b in _SIZED:
            width, extra = _SIZED[b]
            size = int.from_bytes(buf[i + 1 : i + 1 + width], "big")
            if size > max_bulk_bytes:
                return REFUSED_BULK
            i += 1 + width + extra + size
        elif b in _CONTAINERS:
            width, per = _CONTAINERS[b]
            pending += per * int.from_bytes(buf[i + 1 : i + 1 + width], "big")
            i += 1 + width
        else:
            return None  # 0xC1, never used: the decoder refuses it at once
        if items + pending > max_items:
            return REFUSED_ITEMS
    return None
