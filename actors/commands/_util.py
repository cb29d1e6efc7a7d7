"""Argument parsing and lookups shared by the command families, with Redis's strictness and error strings."""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from actors.data.integers import SHARED_INTEGER_BYTES, SHARED_INTEGERS
from actors.data.stream import Stream
from actors.data.types import ZSet
from protocol import errors
from protocol.errors import CommandError, WrongTypeError

if TYPE_CHECKING:
    from actors.server.client import Client

LLONG_MIN = -(2**63)
LLONG_MAX = 2**63 - 1


# The canonical spellings of small integers and their values: LRANGE's indexes, EXPIRE's seconds, INCR's
# counters are mostly these, and a dict lookup costs a fraction of the checks and int() below (Redis keeps
# shared objects for 0..9999 for the same reason). Only canonical forms are here, so a hit is always valid.
# 0..9999 are keyed by the shared integer strings (actors/data/integers.py): no second copy of them. Negative
# ones down to SMALL_INT_LOWEST (indexes from the end): 10,128 entries fit a 2^14-slot table (up to 10,922 do),
# where -1000..9999 took 2^15 (0.3 MiB more per process).
SMALL_INT_LOWEST = -128
_SMALL_INT_VALUES = {b"%d" % i: i for i in range(SMALL_INT_LOWEST, 0)}
_SMALL_INT_VALUES.update(zip(SHARED_INTEGER_BYTES, range(len(SHARED_INTEGER_BYTES)), strict=True))


def parse_int(raw: bytes, message: str = errors.NOT_INTEGER) -> int:
    """A signed 64-bit integer exactly as Redis's string2ll accepts it: no '+', spaces or leading zeros."""
    value = _SMALL_INT_VALUES.get(raw)
    if value is not None:
        return value
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
    db = client.db
    if read or db.expires or db.meta is not None:
        keyspace = client.server.keyspace
        value = keyspace.lookup_read(db, key) if read else keyspace.lookup(db, key)
    else:
        value = db.data.get(key)  # Keyspace.lookup's whole work when no key has a TTL and nothing is tracked
    if value is not None and type(value) is not expected:
        raise WrongTypeError()
    return value


def get_string(client: Client, key: bytes, read: bool = True) -> bytes | None:
    """The string at ``key`` or None; WRONGTYPE for another type. ``read=False``: a write's lookup (Redis's
    lookupKeyWrite: no keyspace hit/miss, no keymiss event)."""
    db = client.db
    if read or db.expires or db.meta is not None:
        keyspace = client.server.keyspace
        value = keyspace.lookup_read(db, key) if read else keyspace.lookup(db, key)
    else:
        value = db.data.get(key)  # as in get_typed
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
    if kind is ZSet or kind is Stream:
        return value.copy()
    raise TypeError(kind)


# A glob token that matches any run of bytes; every other token matches exactly one byte (a set of them).
_STAR = None


def _glob_tokens(pattern: bytes) -> list[frozenset[int] | None]:
    """``pattern`` as tokens, parsed exactly as Redis 7.0's stringmatchlen reads it (util.c): ``*``, ``?``,
    ``\\x``, and ``[...]`` classes with ``^``, escapes and ``a-z`` ranges (reversed ranges swapped, an
    unterminated class ends at the pattern's end). Consecutive stars collapse into one."""
    any_byte = frozenset(range(256))
    tokens: list[frozenset[int] | None] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 0x2A:  # *
            if not tokens or tokens[-1] is not _STAR:
                tokens.append(_STAR)
        elif c == 0x3F:  # ?
            tokens.append(any_byte)
        elif c == 0x5B:  # [
            i += 1
            negate = i < n and pattern[i] == 0x5E
            if negate:
                i += 1
            members: set[int] = set()
            while True:
                if i < n and pattern[i] == 0x5C and n - i >= 2:
                    i += 1
                    members.add(pattern[i])
                elif i < n and pattern[i] == 0x5D:
                    break
                elif i >= n:
                    i -= 1  # as Redis: the class ends with the pattern
                    break
                elif n - i >= 3 and pattern[i + 1] == 0x2D:
                    low, high = sorted((pattern[i], pattern[i + 2]))
                    members.update(range(low, high + 1))
                    i += 2
                else:
                    members.add(pattern[i])
                i += 1
            tokens.append(any_byte - members if negate else frozenset(members))
        else:
            if c == 0x5C and n - i >= 2:  # an escaped byte; a trailing backslash matches itself
                i += 1
                c = pattern[i]
            tokens.append(frozenset((c,)))
        i += 1
    return tokens


def _class_regex(members: frozenset[int]) -> bytes:
    """A regex matching exactly one byte of ``members``."""
    if len(members) == 1:
        return re.escape(bytes(members))
    if not members:
        return rb"[^\x00-\xff]"
    parts = []
    values = sorted(members)
    start = prev = values[0]
    for value in values[1:] + [-2]:
        if value != prev + 1:
            parts.append(b"\\x%02x" % start if start == prev else b"\\x%02x-\\x%02x" % (start, prev))
            start = value
        prev = value
    return b"[" + b"".join(parts) + b"]"


GlobMatcher = Callable[[bytes], bool]


@lru_cache(maxsize=256)
def compile_glob(pattern: bytes) -> GlobMatcher:
    """A matcher for a Redis glob that runs in O(len(pattern) * len(subject)) at worst.

    A glob translated to one regex (``a*a*a*b`` -> ``a.*a.*a.*b``) backtracks exponentially in the number of
    stars: 20 stars against a 40-byte key froze a node for minutes. Here the pattern is cut at its stars into
    segments of one-byte tokens, so each segment has a fixed length: the first must match at the start, the
    last at the end, and each one between is found by the leftmost search after the previous one (greedy
    leftmost placement is always right when only stars separate fixed-length segments).
    """
    tokens = _glob_tokens(pattern)
    segments: list[list[frozenset[int]]] = [[]]
    for token in tokens:
        if token is _STAR:
            segments.append([])
        else:
            segments[-1].append(token)
    regexes = [
        (re.compile(b"".join(_class_regex(t) for t in seg), re.DOTALL), len(seg)) if seg else None
        for seg in segments
    ]
    if len(segments) == 1:
        whole = re.compile(regexes[0][0].pattern + rb"\Z", re.DOTALL) if regexes[0] else re.compile(rb"\Z")
        return lambda subject: whole.match(subject) is not None
    head, tail = regexes[0], regexes[-1]
    middles = [rx for rx in regexes[1:-1] if rx is not None]
    min_len = sum(len(seg) for seg in segments)
    head_len = head[1] if head else 0
    tail_len = tail[1] if tail else 0

    def match(subject: bytes) -> bool:
        size = len(subject)
        if size < min_len or not size:  # as stringmatchlen: an empty subject matches only an empty pattern
            return False
        if head is not None and head[0].match(subject) is None:
            return False
        end = size - tail_len
        if tail is not None and tail[0].match(subject, end) is None:
            return False
        pos = head_len
        for rx, _ in middles:
            found = rx.search(subject, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True

    return match


def glob_match(pattern: bytes, subject: bytes) -> bool:
    """KEYS and the SCANs: Redis skips matching for a lone ``*`` (so it also lists an empty key)."""
    if pattern == b"*":
        return True
    return compile_glob(pattern)(subject)


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
    if 0 <= value < SHARED_INTEGERS:
        return SHARED_INTEGER_BYTES[value]
    return b"%d" % value
