"""RESP2 and RESP3: the reply types commands return, and their encoder (requests: protocol/resp_parse.py).

Commands return plain Python values and the connection encodes them for the protocol it speaks, so one
command table serves RESP2, RESP3 and the msgpack envelope alike:

    bytes            bulk string                    RESP2 ``$3\\r\\nfoo``      RESP3 same
    str              simple string (status)         ``+OK``
    int              integer                        ``:1``
    float            double                         RESP2 bulk ``"1.5"``      RESP3 ``,1.5``
    None             null                           RESP2 ``$-1``             RESP3 ``_``
    NULL_ARRAY       null array (EXEC aborted, ...) RESP2 ``*-1``             RESP3 ``_``
    list / tuple     array
    dict             map                            RESP2 flat array          RESP3 ``%``
    set / frozenset  set                            RESP2 array               RESP3 ``~``
    ReplySet         set, in the order given (COMMAND INFO's flags, as Redis orders them)
    HumanDouble      a preformatted double (GEOPOS) RESP2 bulk                RESP3 ``,``
    Verbatim         verbatim text (INFO)           RESP2 bulk                RESP3 ``=``
    Push             out-of-band message (pub/sub)  RESP2 array               RESP3 ``>``
    MultiReply       several replies to one command, one after the other (SUBSCRIBE a b: one per channel)
    CommandError     error (inside EXEC replies)    ``-ERR ...``
"""

from __future__ import annotations

import math
from typing import Any

from protocol.errors import CommandError

CRLF = b"\r\n"


class _NullArray:
    """The RESP2 ``*-1`` reply: EXEC aborted by WATCH, a blocking pop that timed out."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()


class Verbatim(bytes):
    """Text meant for humans (INFO, CLIENT LIST): RESP3 sends it as a verbatim string with format ``txt``."""


class BigNumber(bytes):
    """A number too big for an integer (a script's {big_number=...}): RESP3 ``(``, RESP2 a bulk string."""


class HumanDouble(bytes):
    """A double already formatted as Redis's addReplyHumanLongDouble writes it (GEOPOS's coordinates):
    RESP3 ``,13.36138933897018433``, RESP2 a bulk string of the same text."""


class Push(list):
    """An out-of-band message: pub/sub deliveries. RESP3 ``>``, RESP2 a plain array."""


class ReplySet(list):
    """A RESP3 set whose order matters (Redis sends COMMAND INFO's flag sets in a fixed order); RESP2 array."""


class Attribute(dict):
    """RESP3 attributes (``|<n>`` then a map's pairs) that come before a reply, as DEBUG PROTOCOL ATTRIB sends
    them: put it first in a MultiReply. Nothing at all in RESP2 (Redis sends attributes to RESP3 clients only)."""


class MultiReply(list):
    """Several consecutive replies to one command: (P)SUBSCRIBE and (P)UNSUBSCRIBE confirm each channel apart.

    Encoded as its items one after the other, with no header. Inside an EXEC array it still counts as one
    element, so the array's header is one short, exactly as Redis sends it. The native protocol sends the
    items as one list (one reply per request).
    """


OK = "OK"
# The encoded form of OK, appended directly by the hot paths.
OK_REPLY = b"+OK\r\n"
# Encoded integer replies -1..1024, at index value + 1 (the master loop encodes int replies inline with it).
SMALL_INTS = [b":%d\r\n" % i for i in range(-1, 1025)]
_SMALL_INTS = SMALL_INTS
BULK_HEADERS = [b"$%d\r\n" % i for i in range(0, 1025)]
_ARRAY_HEADERS = [b"*%d\r\n" % i for i in range(0, 1025)]
_STATUS_CACHE: dict[str, bytes] = {}
# encode_into lays out arrays of at least this many bulk strings in C (below it the plain loop is as cheap).
_BULK_RUN_MIN = 8
_ONLY_BYTES = {bytes}


def format_double(value: float) -> bytes:
    """A double as Redis 7.0 prints it in replies (``%.17g``; ``inf``/``-inf``)."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    return b"%.17g" % value


def _encode_bulk_run(out: list[bytes], value: list[Any] | tuple[Any, ...], n: int) -> bool:
    """A longer array's items, if they are all bulk strings of up to 1024 bytes (LRANGE, MGET, HVALS ...): True
    when encoded, False to leave them to encode_into's per-item loop (an item of another type, or longer).

    Every step runs in C. Items of one length (IDs, hashes, timestamps, fixed-width records; benchmark lists)
    are one join whose separator holds an item's CRLF and the next one's header, ~40% of the general layout's
    instructions per item; otherwise headers, items and CRLFs are laid out by slice assignment (a third of the
    per-item loop's cost at 100 items).
    """
    first, last = value[0], value[-1]
    if type(first) is bytes and type(last) is bytes and len(first) == len(last) <= 1024:
        # (first and last of one length: worth joining them all as if the rest had it too, then checking)
        size = len(first)
        header = BULK_HEADERS[size]
        try:
            joined = (CRLF + header).join(value)
        except TypeError:  # an item that is not bytes-like (a nested array, a str, an integer, None)
            return False
        # Every item held ``size`` bytes (bytes-like items encode as their bytes: encode_into's bytes(value))
        # if the total length is right and each separator's '$' sits where it would then be: when the items
        # hold no '$' (the count says so), the n - 1 '$' in ``joined`` are the separators' own, so their
        # positions are the real item boundaries. Both tests run in C over the joined bytes, ~a tenth of a
        # length pass over the items (map(len): ~220 instructions per item), which stays the fallback.
        step = size + 2 + len(header)
        if len(joined) == n * size + (n - 1) * (2 + len(header)) and (
            (joined.count(b"$") == n - 1 and joined[size + 2 :: step] == b"$" * (n - 1))
            or list(map(len, value)).count(size) == n
        ):
            out += (header, joined, CRLF)
            return True
    if set(map(type, value)) != _ONLY_BYTES:
        return False
    try:
        headers = list(map(BULK_HEADERS.__getitem__, map(len, value)))
    except IndexError:  # an item over 1024 bytes
        return False
    parts = [CRLF] * (3 * n)
    parts[0::3] = headers
    parts[1::3] = value
    out += parts
    return True


def encode_into(out: list[bytes], value: Any, resp3: bool) -> None:
    """Append the RESP encoding of ``value`` to ``out``. Fast cases first: bulk, status, integer, null."""
    kind = type(value)
    if kind is bytes:
        n = len(value)
        out.append(BULK_HEADERS[n] if n <= 1024 else b"$%d\r\n" % n)
        out.append(value)
        out.append(CRLF)
    elif kind is str:
        cached = _STATUS_CACHE.get(value)
        if cached is None:
            # (surrogateescape: a status from a script, {ok='...'}, keeps its bytes, UTF-8 or not, as in Redis)
            cached = ("+" + value + "\r\n").encode("utf-8", "surrogateescape")
            if len(_STATUS_CACHE) < 256:
                _STATUS_CACHE[value] = cached
        out.append(cached)
    elif kind is int:
        out.append(_SMALL_INTS[value + 1] if -1 <= value <= 1023 else b":%d\r\n" % value)
    elif value is None:
        out.append(b"_\r\n" if resp3 else b"$-1\r\n")
    elif kind is list or kind is tuple:
        n = len(value)
        out.append(_ARRAY_HEADERS[n] if n <= 1024 else b"*%d\r\n" % n)
        if n >= _BULK_RUN_MIN and _encode_bulk_run(out, value, n):
            return
        for item in value:
            if type(item) is bytes:
                # Arrays of bulk strings (LRANGE, SMEMBERS, MGET, ...) are encoded here: a call per element
                # is most of what such a reply costs.
                n = len(item)
                out += (BULK_HEADERS[n] if n <= 1024 else b"$%d\r\n" % n, item, CRLF)
            else:
                encode_into(out, item, resp3)
    elif isinstance(value, CommandError):
        out.append(b"-" + value.wire_bytes().replace(b"\r", b" ").replace(b"\n", b" ") + CRLF)
    elif kind is float:
        if resp3:
            out.append(b"," + format_double(value) + CRLF)
        else:
            text = format_double(value)
            out += (BULK_HEADERS[len(text)], text, CRLF)  # (a score: ~800 instructions less than a second %)
    elif kind is dict:
        out.append((b"%%%d\r\n" if resp3 else b"*%d\r\n") % (len(value) if resp3 else 2 * len(value)))
        for key, item in value.items():
            encode_into(out, key, resp3)
            encode_into(out, item, resp3)
    elif kind is set or kind is frozenset or kind is ReplySet:
        out.append((b"~%d\r\n" if resp3 else b"*%d\r\n") % len(value))
        for item in value:
            encode_into(out, item, resp3)
    elif value is NULL_ARRAY:
        out.append(b"_\r\n" if resp3 else b"*-1\r\n")
    elif kind is Verbatim:
        if resp3:
            out.append(b"=%d\r\ntxt:" % (len(value) + 4))
            out.append(bytes(value))
            out.append(CRLF)
        else:
            out.append(b"$%d\r\n" % len(value))
            out.append(bytes(value))
            out.append(CRLF)
    elif kind is Push:
        out.append((b">%d\r\n" if resp3 else b"*%d\r\n") % len(value))
        for item in value:
            encode_into(out, item, resp3)
    elif kind is MultiReply:
        for item in value:
            encode_into(out, item, resp3)
    elif kind is bool:
        if resp3:
            out.append(b"#t\r\n" if value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if value else b":0\r\n")
    elif kind is HumanDouble and resp3:
        out.append(b"," + value + CRLF)
    elif kind is BigNumber and resp3:
        out.append(b"(" + value + CRLF)
    elif kind is Attribute:
        if resp3:
            out.append(b"|%d\r\n" % len(value))
            for key, item in value.items():
                encode_into(out, key, resp3)
                encode_into(out, item, resp3)
    elif isinstance(value, bytes | bytearray | memoryview):
        encode_into(out, bytes(value), resp3)
    elif isinstance(value, int):
        encode_into(out, int(value), resp3)
    else:
        raise TypeError(f"cannot encode reply of type {kind.__name__}")


def encode(value: Any, resp3: bool = False) -> bytes:
    out: list[bytes] = []
    encode_into(out, value, resp3)
    return b"".join(out)


# encode_command's templates for the commonest argument counts: one %-format instead of a join of 3n+1 parts.
_COMMAND_2 = b"*2\r\n" + b"$%d\r\n%b\r\n" * 2
_COMMAND_3 = b"*3\r\n" + b"$%d\r\n%b\r\n" * 3
_COMMAND_4 = b"*4\r\n" + b"$%d\r\n%b\r\n" * 4


def arg_bytes(arg: Any) -> bytes:
    """A client's command argument as the bytes sent: str as UTF-8, numbers as their repr; booleans refused."""
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bool):
        raise TypeError("booleans are not command arguments")
    if isinstance(arg, int | float):
        return repr(arg).encode()
    if isinstance(arg, bytearray | memoryview):
        return bytes(arg)
    raise TypeError(f"cannot send argument of type {type(arg).__name__}")


def encode_command(argv: list[bytes] | tuple[bytes, ...]) -> bytes:
    """A command as a RESP array of bulk strings: the form of the AOF and of the replication stream."""
    n = len(argv)
    if n == 3:  # SET, LPUSH, SADD, SREM-style writes: the bulk of a write-heavy stream
        a, b, c = argv
        return _COMMAND_3 % (len(a), a, len(b), b, len(c), c)
    if n == 2:
        a, b = argv
        return _COMMAND_2 % (len(a), a, len(b), b)
    if n == 4:  # HSET, ZADD, SETEX, PEXPIREAT
        a, b, c, d = argv
        return _COMMAND_4 % (len(a), a, len(b), b, len(c), c, len(d), d)
    try:
        # Cached headers, one concatenation per argument: a quarter fewer instructions than appending three
        # parts per argument to a list (measured with valgrind on MSET's 21 arguments).
        return _ARRAY_HEADERS[n] + b"".join([BULK_HEADERS[len(arg)] + arg + CRLF for arg in argv])
    except IndexError:  # over 1024 arguments, or an argument over 1024 bytes
        parts = [b"*%d\r\n" % n]
        for arg in argv:
            parts.append(b"$%d\r\n" % len(arg))
            parts.append(arg)
            parts.append(CRLF)
        return b"".join(parts)
