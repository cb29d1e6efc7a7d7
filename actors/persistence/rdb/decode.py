"""RDB value decoding: lengths, strings (integer-encoded, LZF), and every value type Redis 7.0 writes.

The primitives under reader.py (and the load helper, rdb/helper.py): each takes the whole file as ``bytes``
and a position and returns (what it read, the next position), raising ``Corrupt`` with a reason; the caller
adds the offset. Pure code.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from actors.data.integers import SHARED_INTEGER_BYTES, SHARED_INTEGERS
from actors.data.types import ZSet
from actors.persistence.rdb.compact import (
    intset_members,
    listpack_entries,
    ziplist_entries,
    zipmap_entries,
)
from actors.persistence.rdb.format import (
    LZF_MAX_EXPANSION,
    MODULE_OPCODE_DOUBLE,
    MODULE_OPCODE_EOF,
    MODULE_OPCODE_FLOAT,
    MODULE_OPCODE_SINT,
    MODULE_OPCODE_STRING,
    MODULE_OPCODE_UINT,
    QUICKLIST_NODE_PACKED,
    QUICKLIST_NODE_PLAIN,
    TYPE_HASH,
    TYPE_HASH_LISTPACK,
    TYPE_HASH_ZIPLIST,
    TYPE_HASH_ZIPMAP,
    TYPE_LIST,
    TYPE_LIST_QUICKLIST,
    TYPE_LIST_QUICKLIST_2,
    TYPE_LIST_ZIPLIST,
    TYPE_MODULE_2,
    TYPE_MODULE_PRE_GA,
    TYPE_SET,
    TYPE_SET_INTSET,
    TYPE_SET_LISTPACK,
    TYPE_STREAM_LISTPACKS,
    TYPE_STREAM_LISTPACKS_2,
    TYPE_STREAM_LISTPACKS_3,
    TYPE_STRING,
    TYPE_ZSET,
    TYPE_ZSET_2,
    TYPE_ZSET_LISTPACK,
    TYPE_ZSET_ZIPLIST,
)
from actors.persistence.rdb.native import lzf_decompress
from actors.persistence.rdb.stream_codec import decode_stream

# INT8-encoded strings, index value + 128; 0..127 are the shared integer strings (actors/data/integers.py).
_SMALL_INT_TEXT = [b"%d" % i for i in range(-128, 0)] + list(SHARED_INTEGER_BYTES[:128])
_UNPACK_DOUBLE = struct.Struct("<d").unpack_from
_UNPACK_FLOAT = struct.Struct("<f").unpack_from
_UNPACK_I64 = struct.Struct("<q").unpack_from
_UNPACK_I32 = struct.Struct("<i").unpack_from


class Corrupt(Exception):
    """Raised inside the reader with a reason; turned into RdbError with the offset of the item."""


class AtOffset(Exception):
    """A reader error with the offset of the item (opcode or key) being read when it happened."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason, offset)
        self.reason = reason
        self.offset = offset


def read_len(data: bytes, pos: int) -> tuple[int, int]:
    """rdbLoadLen for a plain length: (length, next position)."""
    b = data[pos]
    kind = b >> 6
    if kind == 0:
        return b & 0x3F, pos + 1
    if kind == 1:
        return (b & 0x3F) << 8 | data[pos + 1], pos + 2
    if b == 0x80:
        if pos + 5 > len(data):
            raise IndexError
        return int.from_bytes(data[pos + 1 : pos + 5], "big"), pos + 5
    if b == 0x81:
        if pos + 9 > len(data):
            raise IndexError
        return int.from_bytes(data[pos + 1 : pos + 9], "big"), pos + 9
    raise Corrupt(f"unknown length encoding 0x{b:02x}")


def read_string(data: bytes, pos: int) -> tuple[bytes, int]:
    """rdbGenericLoadStringObject: (string, next position), decoding integer and LZF encodings."""
    b = data[pos]
    kind = b >> 6
    if kind == 0:
        n = b & 0x3F
        pos += 1
    elif kind == 1:
        n = (b & 0x3F) << 8 | data[pos + 1]
        pos += 2
    elif b == 0x80:
        n = int.from_bytes(data[pos + 1 : pos + 5], "big")
        pos += 5
    elif b == 0x81:
        n = int.from_bytes(data[pos + 1 : pos + 9], "big")
        pos += 9
    elif kind == 3:
        encoding = b & 0x3F
        if encoding == 0:
            return _SMALL_INT_TEXT[data[pos + 1] ^ 0x80], pos + 2  # (signed byte) + 128 == byte ^ 0x80
        if encoding == 1:
            if pos + 3 > len(data):
                raise IndexError
            n = int.from_bytes(data[pos + 1 : pos + 3], "little", signed=True)
            return (SHARED_INTEGER_BYTES[n] if 0 <= n < SHARED_INTEGERS else b"%d" % n), pos + 3
        if encoding == 2:
            if pos + 5 > len(data):
                raise IndexError
            return b"%d" % _UNPACK_I32(data, pos + 1)[0], pos + 5
        if encoding == 3:
            compressed_len, pos = read_len(data, pos + 1)
            plain_len, pos = read_len(data, pos)
            end = pos + compressed_len
            if end > len(data):
                raise IndexError
            if plain_len > compressed_len * LZF_MAX_EXPANSION:  # corrupt: don't allocate a huge buffer
                raise Corrupt("invalid LZF compressed string")
            plain = lzf_decompress(data[pos:end], plain_len)
            if plain is None:
                raise Corrupt("invalid LZF compressed string")
            return plain, end
        raise Corrupt(f"unknown string encoding {encoding}")
    else:
        raise Corrupt(f"unknown length encoding 0x{b:02x}")
    end = pos + n
    if end > len(data):
        raise IndexError
    return data[pos:end], end


def _read_double_text(data: bytes, pos: int) -> tuple[float, int]:
    """rdbLoadDoubleValue (RDB_TYPE_ZSET): a length byte with 253/254/255 for nan/+inf/-inf, else ASCII."""
    b = data[pos]
    if b == 253:
        return float("nan"), pos + 1
    if b == 254:
        return float("inf"), pos + 1
    if b == 255:
        return float("-inf"), pos + 1
    end = pos + 1 + b
    if end > len(data):
        raise IndexError
    return _parse_float(data[pos + 1 : end]), end


def _parse_float(text: bytes) -> float:
    try:
        return float(text)
    except ValueError:
        raise Corrupt(f"invalid score {text!r}") from None


def _pairs_to_dict(flat: list[bytes], what: str) -> dict[bytes, bytes]:
    if len(flat) % 2:
        raise Corrupt(f"{what} with an odd number of elements")
    it = iter(flat)
    return dict(zip(it, it, strict=False))  # one iterator twice: pairs


def _make_zset(scores: dict[bytes, float]) -> ZSet:
    for score in scores.values():
        if score != score:
            raise Corrupt("zset with NAN score detected")
    return ZSet.adopt(scores)


def _flat_to_zset(flat: list[bytes]) -> ZSet:
    if len(flat) % 2:
        raise Corrupt("zset with an odd number of elements")
    it = iter(flat)
    return _make_zset({member: _parse_float(score) for member, score in zip(it, it, strict=False)})


def read_value(data: bytes, pos: int, rtype: int) -> tuple[Any, int]:
    """rdbLoadObject for every type but the inlined short string. Returns (value, next position)."""
    _read_str = read_string  # a local: this is the loader's inner loop
    if rtype == TYPE_STRING:
        return _read_str(data, pos)
    if rtype == TYPE_LIST_QUICKLIST_2 or rtype == TYPE_LIST_QUICKLIST:
        nodes, pos = read_len(data, pos)
        items: deque[bytes] = deque()
        for _ in range(nodes):
            container = QUICKLIST_NODE_PACKED
            if rtype == TYPE_LIST_QUICKLIST_2:
                container, pos = read_len(data, pos)
            blob, pos = _read_str(data, pos)
            if container == QUICKLIST_NODE_PLAIN:
                items.append(blob)
            elif container == QUICKLIST_NODE_PACKED:
                items.extend(
                    listpack_entries(blob) if rtype == TYPE_LIST_QUICKLIST_2 else ziplist_entries(blob)
                )
            else:
                raise Corrupt(f"quicklist node with unknown container {container}")
        return items, pos
    if rtype == TYPE_SET or rtype == TYPE_HASH or rtype == TYPE_LIST:
        count, pos = read_len(data, pos)
        if rtype == TYPE_HASH:
            count *= 2
        flat: list[bytes] = []
        append = flat.append
        for _ in range(count):
            b = data[pos]
            if b < 64:  # inlined short raw string
                end = pos + 1 + b
                append(data[pos + 1 : end])
                pos = end
            else:
                item, pos = _read_str(data, pos)
                append(item)
        if pos > len(data):
            raise IndexError
        if rtype == TYPE_SET:
            return set(flat), pos
        if rtype == TYPE_LIST:
            return deque(flat), pos
        it = iter(flat)
        return dict(zip(it, it, strict=False)), pos
    if rtype == TYPE_ZSET_2 or rtype == TYPE_ZSET:
        count, pos = read_len(data, pos)
        scores: dict[bytes, float] = {}
        unpack_double = _UNPACK_DOUBLE
        for _ in range(count):
            b = data[pos]
            if b < 64:  # inlined short raw string
                end = pos + 1 + b
                member = data[pos + 1 : end]
                pos = end
            else:
                member, pos = _read_str(data, pos)
            if rtype == TYPE_ZSET_2:
                if pos + 8 > len(data):
                    raise IndexError
                scores[member] = unpack_double(data, pos)[0]
                pos += 8
            else:
                scores[member], pos = _read_double_text(data, pos)
        return _make_zset(scores), pos
    if rtype in _BLOB_DECODERS:
        blob, pos = _read_str(data, pos)
        return _BLOB_DECODERS[rtype](blob), pos
    if rtype in (TYPE_STREAM_LISTPACKS, TYPE_STREAM_LISTPACKS_2, TYPE_STREAM_LISTPACKS_3):
        try:
            return decode_stream(data, pos, rtype, read_len, read_string)
        except ValueError as exc:
            raise Corrupt(str(exc)) from None
    if rtype in (TYPE_MODULE_PRE_GA, TYPE_MODULE_2):
        raise Corrupt(f"module type not supported (RDB type {rtype})")
    raise Corrupt(f"unknown RDB object type {rtype}")


# Types whose value is one string blob in a compact encoding.
_BLOB_DECODERS: dict[int, Callable[[bytes], Any]] = {
    TYPE_LIST_ZIPLIST: lambda blob: deque(ziplist_entries(blob)),
    TYPE_SET_INTSET: lambda blob: set(intset_members(blob)),
    TYPE_SET_LISTPACK: lambda blob: set(listpack_entries(blob)),
    TYPE_HASH_ZIPMAP: lambda blob: _pairs_to_dict(zipmap_entries(blob), "zipmap"),
    TYPE_HASH_ZIPLIST: lambda blob: _pairs_to_dict(ziplist_entries(blob), "hash ziplist"),
    TYPE_HASH_LISTPACK: lambda blob: _pairs_to_dict(listpack_entries(blob), "hash listpack"),
    TYPE_ZSET_ZIPLIST: lambda blob: _flat_to_zset(ziplist_entries(blob)),
    TYPE_ZSET_LISTPACK: lambda blob: _flat_to_zset(listpack_entries(blob)),
}


# Every value type a file may name (rdbIsObjectType); streams and modules among them, refused when read.
OBJECT_TYPES = frozenset(range(0, 8)) | frozenset(range(9, 22))


def skip_module_value(data: bytes, pos: int) -> int:
    """Walk past module-serialized data (rdbLoadCheckModuleValue): typed fields until the EOF opcode."""
    while True:
        opcode, pos = read_len(data, pos)
        if opcode == MODULE_OPCODE_EOF:
            return pos
        if opcode in (MODULE_OPCODE_SINT, MODULE_OPCODE_UINT):
            _, pos = read_len(data, pos)
        elif opcode == MODULE_OPCODE_STRING:
            _, pos = read_string(data, pos)
        elif opcode == MODULE_OPCODE_FLOAT:
            pos += 4
        elif opcode == MODULE_OPCODE_DOUBLE:
            pos += 8
        else:
            raise Corrupt(f"unknown module opcode {opcode}")
