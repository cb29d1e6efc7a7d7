"""Shared integer strings (Redis's ``shared.integers``): one bytes object per canonical integer 0..9999.

Redis keeps OBJ_SHARED_INTEGERS (10000) integer objects and stores a pointer to one of them, not a new object,
as the value of any string key that holds such an integer (OBJECT REFCOUNT answers 2147483647 for them). A
string value here is a ``bytes`` object of its own: 48 bytes under pymalloc for a short one, a third of what a
key with a small value costs (key 48 + value 48 + dict slot ~42). Counters, flags and small numbers are common
values, so the writers that make integer strings themselves take the shared object instead of formatting a new
one: INCR / DECR / INCRBY / DECRBY (actors/commands/strings.py), HINCRBY's field values (hashes.py), and the
RDB decoder for integer-encoded strings (actors/persistence/rdb/decode.py; the load helper's runs send them by
number, helper.py). The result is still plain ``bytes``, so no reader changes: values
are immutable, and nothing in the node keys on the identity of a string value.

``parse_int``'s table of canonical small integers (actors/commands/_util.py) is keyed by these same objects,
so the two share their 10,000 strings (~470 KiB) instead of each holding a copy.
"""

from __future__ import annotations

# How many integers are shared, from 0 (Redis's OBJ_SHARED_INTEGERS).
SHARED_INTEGERS = 10000
# SHARED_INTEGER_BYTES[n] is the canonical spelling of n (b"0" ... b"9999"), one object each.
# (map over the bound format: about half the start-up cost of a generator expression)
SHARED_INTEGER_BYTES: tuple[bytes, ...] = tuple(map(b"%d".__mod__, range(SHARED_INTEGERS)))


def integer_string(value: int) -> bytes:
    """``b"%d" % value``, as the shared object when 0 <= value < SHARED_INTEGERS."""
    if 0 <= value < SHARED_INTEGERS:
        return SHARED_INTEGER_BYTES[value]
    return b"%d" % value
