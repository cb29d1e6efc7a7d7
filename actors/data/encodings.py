"""Which sets Redis would hold as a hashtable although their members now fit an intset.

Redis converts a set from intset to hashtable once (a member that is not an integer, or more than
set-max-intset-entries members) and never back, so OBJECT ENCODING of a set that shrank back under the limits
still says ``hashtable``. This node keeps sets as Python sets and derives the encoding from the members; the
one history that matters is kept here. Members only leave through SREM, SPOP and SMOVE, so those call
``before_set_shrinks`` with what they take: if the set is a hashtable at that moment, it is remembered as one.
A set built afresh (DEBUG RELOAD, RESTORE, SINTERSTORE ...) is judged by its members again, as Redis does.

Sets are unhashable, so the registry is keyed by identity, with a weak reference whose callback forgets the
entry when the set is freed (a deleted key leaves no trace, and an identity cannot be reused while listed).
Runs on the master actor's event-loop thread only.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

# id(set) -> a weak reference to it: the sets that stay hashtable-encoded whatever their members.
_HASHTABLE_SETS: dict[int, weakref.ref[set[bytes]]] = {}


def is_int_member(value: bytes) -> bool:
    """Whether Redis would store ``value`` in an intset (string2ll: a canonical 64-bit signed integer)."""
    if not value or len(value) > 20:
        return False
    body = value[1:] if value[:1] == b"-" else value
    if not body.isdigit() or (body[:1] == b"0" and value != b"0"):
        return False
    return -(2**63) <= int(value) < 2**63


def stays_hashtable(members: set[bytes]) -> bool:
    """Whether ``members`` was converted to a hashtable earlier in its life (see the module docstring)."""
    ref = _HASHTABLE_SETS.get(id(members))
    return ref is not None and ref() is members


def before_set_shrinks(
    members: set[bytes], size_before: int, taking: Iterable[bytes], max_intset_entries: int
) -> None:
    """Members ``taking`` (all in the set) leave ``members``, which held ``size_before`` and stays a key:
    remember it as a hashtable if it was one, i.e. it held more than ``max_intset_entries`` members or one of
    those leaving is not an integer (a non-integer that stays still tells by itself). Called before or right
    after the removal; ``taking`` is read lazily, only when the size does not decide."""
    key = id(members)
    if key in _HASHTABLE_SETS:
        return
    if size_before > max_intset_entries or any(not is_int_member(member) for member in taking):

        def forget(_ref: weakref.ref[set[bytes]], key: int = key) -> None:
            _HASHTABLE_SETS.pop(key, None)

        _HASHTABLE_SETS[key] = weakref.ref(members, forget)
