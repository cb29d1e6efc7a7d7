"""Memory accounting: what a key costs this process, and the node-wide running total maxmemory acts on.

Redis counts every allocation (zmalloc); CPython has no cheap counter of the bytes it holds, and the process's
RSS neither shrinks when keys go (pymalloc keeps arenas that still hold one live object) nor excludes the
interpreter's ~30 MB of code. So ``used_memory`` is an estimate, built from what ``sys.getsizeof`` says of
each object, rounded up as the allocators round (pymalloc: 16-byte size classes up to 512 bytes; glibc malloc
above that: an 8-byte header, 16-byte alignment), plus the slots a key takes in the database's dicts:

    key charge = alloc(key) + alloc(value) (+ sampled elements for collections) + KEY_SLOT_BYTES
                 (+ EXPIRE_SLOT_BYTES while the key has a TTL)

Collections are sized as MEMORY USAGE sizes them (``estimate_value_bytes``): the container plus its elements,
sampled (5 by default) and scaled to the element count, so recharging a big list after an LPUSH stays cheap.

While the access metadata is on (actors/data/evict.py: maxmemory set or an eviction policy chosen), every
store keeps the charge of each key beside its access stamp and a running total (``KvStore.used_bytes``, and
node-wide ``MemoryAccount.dataset_bytes``), updated at the kvstore's write points and by ``Keyspace.touch``
after an in-place change, so the maxmemory check before a command reads one integer. While it is off nothing
is kept (plain SET/GET pay nothing) and ``estimate_dataset_bytes`` samples each database instead.
"""

from __future__ import annotations

import itertools
import sys
from collections import deque
from typing import TYPE_CHECKING, Any

from actors.data.stream import Stream
from actors.data.types import SCORE_KEY_BYTES, ZSet

if TYPE_CHECKING:
    from actors.data.kvstore import KvStore

# Redis's default MEMORY USAGE sample size (OBJ_COMPUTE_SIZE_DEF_SAMPLES).
DEFAULT_SAMPLES = 5
# pymalloc serves requests up to this size from its pools, in 16-byte size classes; larger ones go to malloc.
PYMALLOC_MAX_BYTES = 512
# glibc malloc's chunk header in front of each block it hands out.
MALLOC_HEADER_BYTES = 8
# What a key costs in the database dict beyond its key and value objects: the entry (hash, key and value
# pointers: 24 bytes) and its index slot, over a table kept between 1/3 and 2/3 full. Calibrated against
# tracemalloc by tests/unit/test_memory_accounting.py, with the access-metadata dict's entry and int included.
KEY_SLOT_BYTES = 112
# A TTL: its entry in the expires dict and the int of the expiry time.
EXPIRE_SLOT_BYTES = 56
_FLOAT_BYTES = sys.getsizeof(0.0)
_BYTES_HEADER = sys.getsizeof(b"")


class MemoryAccount:
    """The node-wide running total of the key charges, shared by every store of a keyspace."""

    __slots__ = ("dataset_bytes",)

    def __init__(self) -> None:
        # Sum of the charges of every tracked key (0 while tracking is off).
        self.dataset_bytes = 0


def alloc_bytes(size: int) -> int:
    """What asking the allocators for ``size`` bytes really takes."""
    if size <= PYMALLOC_MAX_BYTES:
        return (size + 15) & ~15
    return (size + MALLOC_HEADER_BYTES + 15) & ~15


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
        return alloc_bytes(_BYTES_HEADER + len(value))
    if kind is deque or kind is set:
        return sys.getsizeof(value) + _sampled(iter(value), len(value), samples, sys.getsizeof)
    if kind is dict:
        return sys.getsizeof(value) + _sampled(
            iter(value.items()), len(value), samples, lambda kv: sys.getsizeof(kv[0]) + sys.getsizeof(kv[1])
        )
    if kind is ZSet:
        # Each member is held by the scores dict (with its float) and again inside its ordering key in the
        # sorted list (8 score bytes + the member's bytes, one more bytes object).
        return (
            sys.getsizeof(value)
            + sys.getsizeof(value.scores)
            + _sorted_list_bytes(value.ordered)
            + _sampled(
                iter(value.scores),
                len(value),
                samples,
                lambda m: 2 * sys.getsizeof(m) + SCORE_KEY_BYTES + _FLOAT_BYTES,
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


def key_charge_bytes(key: bytes, value: Any) -> int:
    """What ``key`` holding ``value`` costs (without its TTL): see the module docstring."""
    if type(value) is bytes:  # the common case, inline
        size = _BYTES_HEADER + len(value)
        value_bytes = (size + 15) & ~15 if size <= PYMALLOC_MAX_BYTES else (size + 23) & ~15
    else:
        value_bytes = estimate_value_bytes(value)
    size = _BYTES_HEADER + len(key)
    key_bytes = (size + 15) & ~15 if size <= PYMALLOC_MAX_BYTES else (size + 23) & ~15
    return key_bytes + value_bytes + KEY_SLOT_BYTES


# Keys sampled per database when no running total is kept (INFO with maxmemory 0).
ESTIMATE_SAMPLE_KEYS = 64


def estimate_dataset_bytes(stores: list[KvStore]) -> int:
    """The dataset's size: the running totals where kept, else a sample of keys scaled to the key count."""
    total = 0
    for store in stores:
        count = len(store.data)
        if not count:
            continue
        if store.meta is not None:
            total += store.used_bytes
            continue
        keys = store.sample(ESTIMATE_SAMPLE_KEYS)
        if not keys:
            continue
        data = store.data
        sampled = sum(key_charge_bytes(key, data[key]) for key in keys)
        total += sampled * count // len(keys) + len(store.expires) * EXPIRE_SLOT_BYTES
    return total
