"""Keyspace event classes (``notify-keyspace-events``): the flag bits, and their letters both ways, as Redis's
notify.c (``keyspaceEventsStringToFlags`` / ``keyspaceEventsFlagsToString``).

The bits are Redis's own, so a class a command passes reads the same as in Redis's source (``NOTIFY_LIST``).
Publishing lives in actors/server/notify.py; this module is plain data so the config table can use it.
"""

from __future__ import annotations

KEYSPACE = 1 << 0  # K: __keyspace@<db>__:<key> channels, the event as message
KEYEVENT = 1 << 1  # E: __keyevent@<db>__:<event> channels, the key as message
GENERIC = 1 << 2  # g: DEL, EXPIRE, RENAME, ... (type-independent commands)
STRING = 1 << 3  # $
LIST = 1 << 4  # l
SET = 1 << 5  # s
HASH = 1 << 6  # h
ZSET = 1 << 7  # z
EXPIRED = 1 << 8  # x: a key deleted because its time passed
EVICTED = 1 << 9  # e: a key deleted by maxmemory
STREAM = 1 << 10  # t
KEY_MISS = 1 << 11  # m: a read found no key (not part of A, as in Redis)
MODULE = 1 << 13  # d: modules' events (none here, but the letter is accepted and kept)
NEW = 1 << 14  # n: a key was created (not part of A, as in Redis)
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE  # A

_LETTERS = {
    "A": ALL,
    "g": GENERIC,
    "$": STRING,
    "l": LIST,
    "s": SET,
    "h": HASH,
    "z": ZSET,
    "x": EXPIRED,
    "e": EVICTED,
    "K": KEYSPACE,
    "E": KEYEVENT,
    "t": STREAM,
    "m": KEY_MISS,
    "d": MODULE,
    "n": NEW,
}
# The order keyspaceEventsFlagsToString writes the class letters in (when not all of A is set).
_CLASS_ORDER = (
    ("g", GENERIC),
    ("$", STRING),
    ("l", LIST),
    ("s", SET),
    ("h", HASH),
    ("z", ZSET),
    ("x", EXPIRED),
    ("e", EVICTED),
    ("t", STREAM),
    ("d", MODULE),
    ("n", NEW),
)


def flags_from_string(classes: str) -> int | None:
    """The flag bits of a class string such as ``KEA``; None if a character is not a class letter."""
    flags = 0
    for char in classes:
        bit = _LETTERS.get(char)
        if bit is None:
            return None
        flags |= bit
    return flags


def flags_to_string(flags: int) -> str:
    """Redis's normalized class string (what CONFIG GET shows): ``A`` for all of A (hiding ``n``), then K E m."""
    if flags & ALL == ALL:
        out = "A"
    else:
        out = "".join(letter for letter, bit in _CLASS_ORDER if flags & bit)
    if flags & KEYSPACE:
        out += "K"
    if flags & KEYEVENT:
        out += "E"
    if flags & KEY_MISS:
        out += "m"
    return out


def effective(flags: int) -> int:
    """The classes that publish anything: none unless K or E says where to (Redis checks both per event)."""
    return flags if flags & (KEYSPACE | KEYEVENT) else 0


class EventClasses(str):
    """The directive's value: reads as Redis's normalized string (CONFIG GET), keeps every bit in ``flags``
    (``KEAn`` reads back ``AKE`` but still sends ``new`` events, as in Redis)."""

    flags: int

    def __new__(cls, flags: int) -> EventClasses:
        value = super().__new__(cls, flags_to_string(flags))
        value.flags = flags
        return value
