"""Argument parsing and lookups shared by the command families, with Redis's strictness and error strings."""

from __future__ import annotations

import math
import re
from collections import deque
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from actors.data.types import ZSet
from protocol import errors
from protocol.errors import CommandError, WrongTypeError

if TYPE_CHECKING:
    from actors.server.client import Client

LLONG_MIN = -(2**63)
LLONG_MAX = 2**63 - 1


def parse_int(raw: bytes, message: str = errors.NOT_INTEGER) -> int:
    """A signed 64-bit integer exactly as Redis's string2ll accepts it: no '+', spaces or leading zeros."""
    if len(raw) > 20 or not raw:
        raise CommandError(message)
    body = raw[1:] if raw[0] == 45 else raw  # '-'
    if not body.isdigit() or (body[0] == 48 and (len(body) > 1 or raw is not body)):
        raise CommandError(message)
    value = int(raw)
    if not LLONG_MIN <= value <= LLONG_MAX:
        raise CommandError(message)
    return value


def parse_nonneg_int(raw: bytes, message: str = errors.NOT_INTEGER) -> int:
    value = parse_int(raw, message)
    if value < 0:
        raise CommandError(message)
    return value


_FLOAT_RE = re.compile(rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)\Z", re.IGNORECASE)


def parse_float(raw: bytes, message: str = errors.NOT_FLOAT) -> float:
    """A double as Redis's strtod-based parsing accepts it: no spaces, no NaN; ``inf`` allowed."""
    if not raw or _FLOAT_RE.match(raw) is None:
        raise CommandError(message)
    value = float(raw)
    if math.isnan(value):
        raise CommandError(message)
    return value


def parse_either(raw: bytes, yes: bytes, no: bytes) -> bool:
    """True for the keyword ``yes``, False for ``no`` (both lowercase; matched case-insensitively); anything
    else is a syntax error. LEFT|RIGHT, BIT|BYTE, ..."""
    word = raw.lower()
    if word == yes:
        return True
    if word == no:
        return False
    raise CommandError(errors.SYNTAX)


def upper(raw: bytes) -> bytes:
    return raw.upper()


def check_type(value: Any, expected: type) -> None:
    if value is not None and type(value) is not expected:
        raise WrongTypeError()


def get_typed(client: Client, key: bytes, expected: type, read: bool = True) -> Any:
    """The value at ``key`` if it has type ``expected``, None if missing, WRONGTYPE otherwise."""
    keyspace = client.server.keyspace
    value = keyspace.lookup_read(client.db, key) if read else keyspace.lookup(client.db, key)
    if value is not None and type(value) is not expected:
        raise WrongTypeError()
    return value


def get_string(client: Client, key: bytes) -> bytes | None:
    value = client.server.keyspace.lookup_read(client.db, key)
    if value is not None and type(value) is not bytes:
        raise WrongTypeError()
    return value


def copy_value(value: Any) -> Any:
    """A deep-enough copy for COPY: containers are copied, their bytes elements are immutable."""
    kind = type(value)
    if kind is bytes:
        return value
    if kind is deque:
        return deque(value)
    if kind is dict:
        return dict(value)
    if kind is set:
        return set(value)
    if kind is ZSet:
        return value.copy()
    raise TypeError(kind)


@lru_cache(maxsize=256)
def glob_to_regex(pattern: bytes) -> re.Pattern[bytes]:
    """Compile a Redis glob (``*``, ``?``, ``[abc]``, ``[^a-z]``, ``\\x``) like stringmatchlen."""
    out = bytearray()
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i : i + 1]
        if c == b"*":
            out += b".*"
        elif c == b"?":
            out += b"."
        elif c == b"\\" and i + 1 < n:
            i += 1
            out += re.escape(pattern[i : i + 1])
        elif c == b"[":
            j = i + 1
            negate = j < n and pattern[j : j + 1] == b"^"
            if negate:
                j += 1
            members = bytearray()
            while j < n and pattern[j : j + 1] != b"]":
                ch = pattern[j : j + 1]
                if ch == b"\\" and j + 1 < n:
                    j += 1
                    members += re.escape(pattern[j : j + 1])
                elif ch == b"-" and members and j + 1 < n and pattern[j + 1 : j + 2] != b"]":
                    members += b"-"
                else:
                    members += re.escape(ch)
                j += 1
            if not members:  # "[]" matches nothing, "[^]" anything
                out += b"[^\\x00-\\xff]" if not negate else b"[\\x00-\\xff]"
            else:
                out += b"[" + (b"^" if negate else b"") + bytes(members) + b"]"
            i = j
        else:
            out += re.escape(c)
        i += 1
    return re.compile(bytes(out) + rb"\Z", re.DOTALL)


def glob_match(pattern: bytes, subject: bytes) -> bool:
    if pattern == b"*":
        return True
    return glob_to_regex(pattern).match(subject) is not None


def parse_scan_args(argv: list[bytes], start: int) -> tuple[bytes | None, int, bytes | None]:
    """``[MATCH pattern] [COUNT n] [TYPE t]`` from argv[start:]; TYPE only meaningful for SCAN."""
    match: bytes | None = None
    count = 10
    type_name: bytes | None = None
    i = start
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"match" and i + 1 < len(argv):
            match = argv[i + 1]
        elif opt == b"count" and i + 1 < len(argv):
            count = parse_int(argv[i + 1])
            if count < 1:
                raise CommandError(errors.SYNTAX)
        elif opt == b"type" and i + 1 < len(argv):
            type_name = argv[i + 1].lower()
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    return match, count, type_name


_CURSOR_RE = re.compile(rb"([+-]?)(\d*)\Z")


def parse_intercard_limit(argv: list[bytes], start: int) -> int:
    """SINTERCARD/ZINTERCARD's ``[LIMIT n]`` after the keys (0: no limit), with Redis's errors."""
    limit = 0
    i = start
    while i < len(argv):
        if argv[i].lower() == b"limit" and i + 1 < len(argv):
            try:
                limit = parse_int(argv[i + 1])
            except CommandError:
                raise CommandError("ERR LIMIT can't be negative") from None
            if limit < 0:
                raise CommandError("ERR LIMIT can't be negative")
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    return limit


def parse_cursor(raw: bytes) -> int:
    """A SCAN cursor as Redis reads it (strtoul): no leading space, an optional sign, "" is 0, "-1" wraps."""
    match = _CURSOR_RE.match(raw)
    if match is None or raw[:1].isspace():
        raise CommandError("ERR invalid cursor")
    value = int(match.group(2) or b"0")
    if value >= 2**64:
        raise CommandError("ERR invalid cursor")
    return (-value) % 2**64 if match.group(1) == b"-" else value


def scan_collection(items: list[Any], cursor: int, count: int) -> tuple[int, list[Any]]:
    """Cursor walk over a small collection snapshot: the cursor is a position in ``items``."""
    if cursor >= len(items):
        return 0, []
    end = cursor + count
    chunk = items[cursor:end]
    return (0 if end >= len(items) else end), chunk


def int_bytes(value: int) -> bytes:
    return b"%d" % value
