"""The RDB file format, version 10 (Redis 7.0): dump a keyspace to bytes and load it back. Pure code.

Used by the persistence actor (SAVE, BGSAVE in a forked child, loading at start-up, the AOF base file) and by
replication (full sync payload, parsed with ``load_stream`` piece by piece as it arrives). The writer takes no
locks, starts no threads and logs nothing, since it runs in a forked child; the reader builds fresh
``Database`` objects and returns them only when the whole file was read and its checksum verified, so a bad
file never half-replaces a dataset.

File layout (rdb.c): ``REDIS0010``, AUX fields (0xFA name value), then per non-empty database SELECTDB (0xFE
index) + RESIZEDB (0xFB keys, keys-with-TTL) + its keys, each ``[EXPIRETIME_MS 0xFC <i64 LE ms>] <type> <key>
<value>``, then EOF (0xFF) and the CRC64 of everything before it as 8 bytes little-endian (zeros when the
checksum is off). Lengths use Redis's 6/14/32/64-bit length encoding; strings may be integer-encoded or
LZF-compressed.

The writer emits what redis-server 7.0 itself writes for the same data: strings (0), lists as QUICKLIST_2
(18) nodes of listpacks, small hashes and sorted sets as one listpack (16, 17) and small integer sets as an
intset (11) within Redis's default size limits, and the plain types (set 2, hash 4, ZSET_2 5) beyond them.
The reader accepts every type Redis 7.0 and its predecessors write except streams and module values, which it
refuses with a clear error: redactor has no stream or module type to load them into.

Speed: a dump of a million small keys is one pass of a tight loop with inlined encodings for short strings,
joined and written in 1 MiB blocks; a load parses the whole file from one ``bytes`` object with the common
case (short string key and value) inlined. CRC64 and LZF run natively (see rdbcodec_native). A large file
can also be loaded with a helper process that parses its runs of string keys on another core and hands them
over as pickles (``load_file(..., helper=)``, see rdbhelper): the same result, in about half the time.
"""

from __future__ import annotations

import gc
import os
import resource
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from actors.data.keyspace import Database
from actors.data.stream import Stream
from actors.data.types import ZSet
from actors.persistence.rdb.compact import (
    intset_members,
    listpack_encode,
    listpack_entries,
    listpack_entry_size,
    ziplist_entries,
    zipmap_entries,
)
from actors.persistence.rdb.native import crc64, lzf_compress, lzf_decompress
from actors.persistence.rdb.stream_codec import decode_stream, encode_stream

RDB_VERSION = 10
MAGIC = b"REDIS%04d" % RDB_VERSION

# Value types (rdb.h).
TYPE_STRING = 0
TYPE_LIST = 1
TYPE_SET = 2
TYPE_ZSET = 3
TYPE_HASH = 4
TYPE_ZSET_2 = 5
TYPE_MODULE_PRE_GA = 6
TYPE_MODULE_2 = 7
TYPE_HASH_ZIPMAP = 9
TYPE_LIST_ZIPLIST = 10
TYPE_SET_INTSET = 11
TYPE_ZSET_ZIPLIST = 12
TYPE_HASH_ZIPLIST = 13
TYPE_LIST_QUICKLIST = 14
TYPE_STREAM_LISTPACKS = 15
TYPE_HASH_LISTPACK = 16
TYPE_ZSET_LISTPACK = 17
TYPE_LIST_QUICKLIST_2 = 18
TYPE_STREAM_LISTPACKS_2 = 19
TYPE_SET_LISTPACK = 20  # RDB 11 (Redis 7.2); harmless to accept
TYPE_STREAM_LISTPACKS_3 = 21

# Opcodes (rdb.h).
OPCODE_FUNCTION2 = 245
OPCODE_FUNCTION_PRE_GA = 246
OPCODE_MODULE_AUX = 247
OPCODE_IDLE = 248
OPCODE_FREQ = 249
OPCODE_AUX = 250
OPCODE_RESIZEDB = 251
OPCODE_EXPIRETIME_MS = 252
OPCODE_EXPIRETIME = 253
OPCODE_SELECTDB = 254
OPCODE_EOF = 255

# Module value opcodes (the self-describing module serialization, used to skip module AUX data).
MODULE_OPCODE_EOF = 0
MODULE_OPCODE_SINT = 1
MODULE_OPCODE_UINT = 2
MODULE_OPCODE_FLOAT = 3
MODULE_OPCODE_DOUBLE = 4
MODULE_OPCODE_STRING = 5

# Quicklist node containers (quicklist.h).
QUICKLIST_NODE_PLAIN = 1
QUICKLIST_NODE_PACKED = 2

# Redis compresses strings longer than this (rdbSaveRawString), and only if LZF saves at least 4 bytes.
LZF_MIN_STRING_BYTES = 21
LZF_MIN_SAVING_BYTES = 4
# The most LZF can expand: a 3-byte back reference produces at most 264 bytes.
LZF_MAX_EXPANSION = 88
# Only strings this short may be integer-encoded (rdbTryIntegerEncoding: "-2147483648" is 11 chars).
INT_ENCODING_MAX_BYTES = 11
# Writer: output is handed to the file in blocks of at least this size; keys are batched this many at a time.
WRITE_BLOCK_BYTES = 1 << 20
WRITE_BATCH_KEYS = 4096
# Lists: each quicklist node is a listpack of at most this many bytes (list-max-listpack-size -2 = 8 KiB),
# and elements this large get a PLAIN node of their own (quicklist.c's packed_threshold, 1 GiB).
LIST_NODE_MAX_BYTES = 8192
LIST_PLAIN_ELEMENT_BYTES = 1 << 30
LISTPACK_OVERHEAD_BYTES = 7  # header (total bytes u32, count u16) + end marker
# Redis 7.0's default encoding limits (hash-/zset-max-listpack-entries and -value, set-max-intset-entries):
# collections within them are written in the compact form Redis would hold them in.
SMALL_COLLECTION_ENTRIES = 128
SMALL_COLLECTION_ELEMENT_BYTES = 64
SMALL_INTSET_MEMBERS = 512
# Reader: progress is reported every this many keys (a power of two: the test is a mask).
PROGRESS_EVERY_KEYS = 1 << 16

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class RdbError(Exception):
    """A file that is not a loadable RDB: the message says what and at which byte offset."""


class DumpPayloadError(RdbError):
    """A DUMP payload whose RDB version or CRC64 is wrong (RESTORE's verifyDumpPayload)."""


@dataclass
class RdbData:
    """What a load produced. ``dbs`` has exactly ``num_dbs`` databases, empty ones included."""

    dbs: list[Database]
    # AUX fields (redis-ver, ctime, repl-id, repl-offset, ...), values as the strings Redis stores.
    aux: dict[str, bytes]
    # Function libraries' source code (RDB_OPCODE_FUNCTION2). Read past, not loaded: redactor has no FUNCTION.
    functions: list[bytes] = field(default_factory=list)
    # Bytes consumed, magic to checksum: where a trailing AOF tail (RDB-preamble AOF) would begin.
    end_offset: int = 0
    # Keys left out: already expired when a master loads them, or empty collections (Redis skips both).
    expired_skipped: int = 0
    empty_skipped: int = 0


# --------------------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------------------

_LEN6 = [bytes((n,)) for n in range(64)]
_PACK_I64 = struct.Struct("<q").pack
_PACK_DOUBLE = struct.Struct("<d").pack
_EXPIRE_MS_OPCODE = bytes((OPCODE_EXPIRETIME_MS,))
# The first byte of a string that could be a canonical integer: '-' or a digit.
_INT_FIRST_BYTES = frozenset(b"-0123456789")


def _encode_len(n: int) -> bytes:
    """rdbSaveLen: 6-bit, 14-bit, 32-bit or 64-bit big-endian length."""
    if n < 64:
        return _LEN6[n]
    if n < 16384:
        return bytes((0x40 | n >> 8, n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _encode_int(s: bytes) -> bytes | None:
    """rdbTryIntegerEncoding: the INT8/16/32 form of ``s`` if it is a canonical 32-bit integer, else None."""
    try:
        value = int(s)
    except ValueError:
        return None
    if b"%d" % value != s:  # not canonical ("007", "+1", " 1", "1_0"): must stay a string
        return None
    if -128 <= value <= 127:
        return b"\xc0" + value.to_bytes(1, "little", signed=True)
    if -32768 <= value <= 32767:
        return b"\xc1" + value.to_bytes(2, "little", signed=True)
    if -2147483648 <= value <= 2147483647:
        return b"\xc2" + value.to_bytes(4, "little", signed=True)
    return None


def _encode_string(s: bytes, compress: bool) -> bytes:
    """rdbSaveRawString: integer encoding, else LZF when it pays, else length + bytes."""
    n = len(s)
    if n <= INT_ENCODING_MAX_BYTES and n and s[0] in _INT_FIRST_BYTES:
        encoded = _encode_int(s)
        if encoded is not None:
            return encoded
    if compress and n >= LZF_MIN_STRING_BYTES and lzf_compress is not None:
        packed = lzf_compress(bytes(s), n - LZF_MIN_SAVING_BYTES)
        if packed is not None:
            return b"\xc3" + _encode_len(len(packed)) + _encode_len(n) + packed
    if n < 64:
        return _LEN6[n] + s
    return _encode_len(n) + s


def _encode_list_nodes(items: deque[bytes], compress: bool) -> list[bytes]:
    """A list as RDB_TYPE_LIST_QUICKLIST_2: node count, then per node container + blob."""
    parts: list[bytes] = []
    nodes = 0
    batch: list[bytes] = []
    batch_bytes = LISTPACK_OVERHEAD_BYTES

    def flush_packed() -> None:
        nonlocal nodes, batch, batch_bytes
        if batch:
            parts.append(_LEN6[QUICKLIST_NODE_PACKED])
            parts.append(_encode_string(listpack_encode(batch), compress))
            nodes += 1
            batch = []
            batch_bytes = LISTPACK_OVERHEAD_BYTES

    for item in items:
        if len(item) >= LIST_PLAIN_ELEMENT_BYTES:
            flush_packed()
            parts.append(_LEN6[QUICKLIST_NODE_PLAIN])
            parts.append(_encode_string(item, compress))
            nodes += 1
            continue
        size = listpack_entry_size(item)
        if batch and batch_bytes + size > LIST_NODE_MAX_BYTES:
            flush_packed()
        batch.append(item)
        batch_bytes += size
    flush_packed()
    return [_encode_len(nodes), *parts]


def _encode_strings(items: Iterable[bytes], compress: bool, parts: list[bytes]) -> None:
    """Append each string's encoding to ``parts``; short ones inline (no integer encoding: not needed)."""
    len6 = _LEN6
    for item in items:
        n = len(item)
        if n < LZF_MIN_STRING_BYTES:
            parts.append(len6[n] + item)
        else:
            parts.append(_encode_string(item, compress))


def _intset_blob(members: set[bytes]) -> bytes | None:
    """The intset of ``members`` if all are canonical 64-bit integers, else None (intset.c layout)."""
    values = []
    for member in members:
        if len(member) > 20 or not member or member[0] not in _INT_FIRST_BYTES:
            return None
        try:
            value = int(member)
        except ValueError:
            return None
        if b"%d" % value != member or not _INT64_MIN <= value <= _INT64_MAX:
            return None
        values.append(value)
    values.sort()
    low, high = values[0], values[-1]
    if -(1 << 15) <= low and high < 1 << 15:
        width, fmt = 2, "h"
    elif -(1 << 31) <= low and high < 1 << 31:
        width, fmt = 4, "i"
    else:
        width, fmt = 8, "q"
    header = width.to_bytes(4, "little") + len(values).to_bytes(4, "little")
    return header + struct.pack(f"<{len(values)}{fmt}", *values)


def _score_text(score: float) -> bytes:
    """A score as text strtod reads back to the very same double (repr is the shortest such text)."""
    return repr(score).encode()


def _encode_value(value: Any, compress: bool) -> tuple[int, list[bytes]]:
    """The RDB type and serialized parts of any value (the slow path: everything but short strings).

    Small hashes, sorted sets and integer sets are written in the compact encodings Redis itself would give
    them under its default limits (listpack: 128 entries of 64 bytes; intset: 512 members): both redis-server
    and our reader load one blob much faster than element-by-element. Everything else uses the plain types.
    """
    kind = type(value)
    parts: list[bytes] = []
    if kind is bytes:
        return TYPE_STRING, [_encode_string(value, compress)]
    if kind is dict:
        if (
            len(value) <= SMALL_COLLECTION_ENTRIES
            and value
            and max(map(len, value)) <= SMALL_COLLECTION_ELEMENT_BYTES
            and max(map(len, value.values())) <= SMALL_COLLECTION_ELEMENT_BYTES
        ):
            flat = [item for pair in value.items() for item in pair]
            return TYPE_HASH_LISTPACK, [_encode_string(listpack_encode(flat), compress)]
        parts.append(_encode_len(len(value)))
        flat_items = [item for pair in value.items() for item in pair]
        _encode_strings(flat_items, compress, parts)
        return TYPE_HASH, parts
    if kind is set:
        if value and len(value) <= SMALL_INTSET_MEMBERS:
            blob = _intset_blob(value)
            if blob is not None:
                return TYPE_SET_INTSET, [_encode_string(blob, compress)]
        parts.append(_encode_len(len(value)))
        _encode_strings(value, compress, parts)
        return TYPE_SET, parts
    if kind is ZSet:
        scores = value.scores
        if (
            len(scores) <= SMALL_COLLECTION_ENTRIES
            and scores
            and max(map(len, scores)) <= SMALL_COLLECTION_ELEMENT_BYTES
        ):
            # A listpack zset must be in (score, member) order: Redis walks it as the sorted sequence.
            flat = []
            for score, member in value.ordered:
                flat += (member, _score_text(score))
            return TYPE_ZSET_LISTPACK, [_encode_string(listpack_encode(flat), compress)]
        parts.append(_encode_len(len(scores)))
        len6, pack_double = _LEN6, _PACK_DOUBLE
        for member, score in scores.items():
            n = len(member)
            if n < LZF_MIN_STRING_BYTES:
                parts += (len6[n] + member, pack_double(score))
            else:
                parts += (_encode_string(member, compress), pack_double(score))
        return TYPE_ZSET_2, parts
    if kind is deque:
        return TYPE_LIST_QUICKLIST_2, _encode_list_nodes(value, compress)
    if kind is Stream:
        return encode_stream(value)
    raise TypeError(f"cannot serialize a value of type {kind.__name__}")


class _BlockWriter:
    """Hands output to ``out`` in blocks of WRITE_BLOCK_BYTES or more, keeping the running CRC64."""

    __slots__ = ("out", "checksum", "crc", "pending", "pending_bytes", "written")

    def __init__(self, out: BinaryIO, checksum: bool) -> None:
        self.out = out
        self.checksum = checksum
        self.crc = 0
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.written = 0

    def add(self, chunk: bytes) -> None:
        self.pending.append(chunk)
        self.pending_bytes += len(chunk)
        if self.pending_bytes >= WRITE_BLOCK_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        block = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
        self.pending = []
        self.pending_bytes = 0
        if self.checksum:
            self.crc = crc64(self.crc, block)
        view = memoryview(block)
        while view:  # a raw (unbuffered) stream may take less than all of it
            count = self.out.write(view)
            if count is None:
                raise BlockingIOError("RDB output stream would block")
            view = view[count:]
        self.written += len(block)


def _dump_database(db: Database, writer: _BlockWriter, compress: bool) -> None:
    data, expires = db.data, db.expires
    header = [
        bytes((OPCODE_SELECTDB,)),
        _encode_len(db.id),
        bytes((OPCODE_RESIZEDB,)),
        _encode_len(len(data)),
        _encode_len(len(expires)),
    ]
    writer.add(b"".join(header))
    parts: list[bytes] = []
    expires_get = expires.get if expires else None
    len6, int_first = _LEN6, _INT_FIRST_BYTES
    expire_opcode, pack_i64 = _EXPIRE_MS_OPCODE, _PACK_I64
    batched = 0
    for key, value in data.items():
        if expires_get is not None:
            when = expires_get(key)
            if when is not None:
                parts += (expire_opcode, pack_i64(when))
        n = len(key)
        # Fast path: a short string key with a short string value that is neither integer-like nor long
        # enough to compress is written as is (most keys of a cache look like this).
        if type(value) is bytes:
            m = len(value)
            if n < 64 and m < LZF_MIN_STRING_BYTES and (m == 0 or value[0] not in int_first):
                parts.append(b"\x00%c%b%c%b" % (n, key, m, value))
            else:
                key_part = len6[n] + key if n < 64 else _encode_string(key, False)
                parts += (b"\x00", key_part, _encode_string(value, compress))
        else:
            kind, value_parts = _encode_value(value, compress)
            parts += (len6[kind], len6[n] + key if n < 64 else _encode_string(key, False))
            parts += value_parts
        batched += 1
        if batched == WRITE_BATCH_KEYS:
            writer.add(b"".join(parts))
            parts = []
            batched = 0
    if parts:
        writer.add(b"".join(parts))


def _aux_bytes(value: bytes | int | str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, int):
        return b"%d" % value
    return value.encode()


def dump(
    dbs: list[Database],
    out: BinaryIO,
    aux: dict[str, bytes | int | str] | None = None,
    compress: bool = True,
    checksum: bool = True,
) -> int:
    """Write a whole RDB (magic .. EOF + checksum) of ``dbs`` to ``out``. Returns the bytes written.

    Keys go out as they are: the caller decides whether expired keys belong in a snapshot (Redis writes them;
    the loading master drops them). ``aux`` is usually ``default_aux(...)``.
    """
    # A forked child must not let the cyclic GC walk (and so copy-on-write) the parent's whole heap.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _dump(dbs, out, aux, compress, checksum)
    finally:
        if gc_was_enabled:
            gc.enable()


def _dump(
    dbs: list[Database],
    out: BinaryIO,
    aux: dict[str, bytes | int | str] | None,
    compress: bool,
    checksum: bool,
) -> int:
    writer = _BlockWriter(out, checksum)
    head = [MAGIC]
    for name, value in (aux or {}).items():
        head += (bytes((OPCODE_AUX,)), _encode_string(name.encode(), False))
        head.append(_encode_string(_aux_bytes(value), False))
    writer.add(b"".join(head))
    for db in dbs:
        if db.data:
            _dump_database(db, writer, compress)
    writer.add(bytes((OPCODE_EOF,)))
    writer.flush()
    trailer = writer.crc.to_bytes(8, "little") if checksum else bytes(8)
    writer.checksum = False
    writer.add(trailer)
    writer.flush()
    return writer.written


def dumps(dbs: list[Database], aux: dict[str, bytes | int | str] | None = None, **options: bool) -> bytes:
    """``dump`` into a bytes object (small datasets, tests, DEBUG RELOAD)."""
    import io

    buffer = io.BytesIO()
    dump(dbs, buffer, aux, **options)
    return buffer.getvalue()


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_file(
    path: str,
    dbs: list[Database],
    aux: dict[str, bytes | int | str] | None = None,
    compress: bool = True,
    checksum: bool = True,
) -> int:
    """Atomically replace ``path`` with an RDB of ``dbs``: temp-<pid>.rdb beside it, fsync, rename, fsync dir.

    Returns the bytes written. On any error the temp file is removed and ``path`` is left untouched.
    """
    directory = os.path.dirname(os.path.abspath(path))
    temp_path = os.path.join(directory, f"temp-{os.getpid()}.rdb")
    try:
        with open(temp_path, "wb", buffering=0) as raw:
            written = dump(dbs, raw, aux, compress=compress, checksum=checksum)
            os.fsync(raw.fileno())
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except OSError:
            pass
        raise
    _fsync_directory(directory)
    return written


def default_aux(
    repl_id: str | None, repl_offset: int | None, repl_stream_db: int | None
) -> dict[str, bytes | int | str]:
    """The AUX fields redis-server 7.0 writes (rdbSaveInfoAuxFields), in its order.

    The replication fields are written only with a replication id (Redis: only when it has rdbSaveInfo).
    """
    from actors.server.server import REDIS_VERSION  # lazily: rdb stays importable without the server

    aux: dict[str, bytes | int | str] = {
        "redis-ver": REDIS_VERSION,
        "redis-bits": 64 if sys.maxsize > 2**32 else 32,
        "ctime": int(time.time()),
        # Redis reports zmalloc's used memory; the closest cheap figure here is the peak resident size.
        "used-mem": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    if repl_id is not None:
        aux["repl-stream-db"] = repl_stream_db if repl_stream_db is not None else 0
        aux["repl-id"] = repl_id
        aux["repl-offset"] = repl_offset if repl_offset is not None else 0
    aux["aof-base"] = 0
    return aux


# --------------------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------------------

_SMALL_INT_TEXT = [b"%d" % i for i in range(-128, 128)]  # INT8-encoded strings, index value + 128
_UNPACK_DOUBLE = struct.Struct("<d").unpack_from
_UNPACK_FLOAT = struct.Struct("<f").unpack_from
_UNPACK_I64 = struct.Struct("<q").unpack_from
_UNPACK_I32 = struct.Struct("<i").unpack_from


class _Corrupt(Exception):
    """Raised inside the reader with a reason; turned into RdbError with the offset of the item."""


class _AtOffset(Exception):
    """A reader error with the offset of the item (opcode or key) being read when it happened."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason, offset)
        self.reason = reason
        self.offset = offset


def _read_len(data: bytes, pos: int) -> tuple[int, int]:
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
    raise _Corrupt(f"unknown length encoding 0x{b:02x}")


def _read_string(data: bytes, pos: int) -> tuple[bytes, int]:
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
            return b"%d" % int.from_bytes(data[pos + 1 : pos + 3], "little", signed=True), pos + 3
        if encoding == 2:
            if pos + 5 > len(data):
                raise IndexError
            return b"%d" % _UNPACK_I32(data, pos + 1)[0], pos + 5
        if encoding == 3:
            compressed_len, pos = _read_len(data, pos + 1)
            plain_len, pos = _read_len(data, pos)
            end = pos + compressed_len
            if end > len(data):
                raise IndexError
            if plain_len > compressed_len * LZF_MAX_EXPANSION:  # corrupt: don't allocate a huge buffer
                raise _Corrupt("invalid LZF compressed string")
            plain = lzf_decompress(data[pos:end], plain_len)
            if plain is None:
                raise _Corrupt("invalid LZF compressed string")
            return plain, end
        raise _Corrupt(f"unknown string encoding {encoding}")
    else:
        raise _Corrupt(f"unknown length encoding 0x{b:02x}")
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
        raise _Corrupt(f"invalid score {text!r}") from None


def _pairs_to_dict(flat: list[bytes], what: str) -> dict[bytes, bytes]:
    if len(flat) % 2:
        raise _Corrupt(f"{what} with an odd number of elements")
    it = iter(flat)
    return dict(zip(it, it, strict=False))  # one iterator twice: pairs


def _make_zset(scores: dict[bytes, float]) -> ZSet:
    for score in scores.values():
        if score != score:
            raise _Corrupt("zset with NAN score detected")
    zset = ZSet()
    zset.scores = scores
    zset.ordered.update((score, member) for member, score in scores.items())
    return zset


def _flat_to_zset(flat: list[bytes]) -> ZSet:
    if len(flat) % 2:
        raise _Corrupt("zset with an odd number of elements")
    it = iter(flat)
    return _make_zset({member: _parse_float(score) for member, score in zip(it, it, strict=False)})


def _read_value(data: bytes, pos: int, rtype: int) -> tuple[Any, int]:
    """rdbLoadObject for every type but the inlined short string. Returns (value, next position)."""
    read_string = _read_string
    if rtype == TYPE_STRING:
        return read_string(data, pos)
    if rtype == TYPE_LIST_QUICKLIST_2 or rtype == TYPE_LIST_QUICKLIST:
        nodes, pos = _read_len(data, pos)
        items: deque[bytes] = deque()
        for _ in range(nodes):
            container = QUICKLIST_NODE_PACKED
            if rtype == TYPE_LIST_QUICKLIST_2:
                container, pos = _read_len(data, pos)
            blob, pos = read_string(data, pos)
            if container == QUICKLIST_NODE_PLAIN:
                items.append(blob)
            elif container == QUICKLIST_NODE_PACKED:
                items.extend(
                    listpack_entries(blob) if rtype == TYPE_LIST_QUICKLIST_2 else ziplist_entries(blob)
                )
            else:
                raise _Corrupt(f"quicklist node with unknown container {container}")
        return items, pos
    if rtype == TYPE_SET or rtype == TYPE_HASH or rtype == TYPE_LIST:
        count, pos = _read_len(data, pos)
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
                item, pos = read_string(data, pos)
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
        count, pos = _read_len(data, pos)
        scores: dict[bytes, float] = {}
        unpack_double = _UNPACK_DOUBLE
        for _ in range(count):
            b = data[pos]
            if b < 64:  # inlined short raw string
                end = pos + 1 + b
                member = data[pos + 1 : end]
                pos = end
            else:
                member, pos = read_string(data, pos)
            if rtype == TYPE_ZSET_2:
                if pos + 8 > len(data):
                    raise IndexError
                scores[member] = unpack_double(data, pos)[0]
                pos += 8
            else:
                scores[member], pos = _read_double_text(data, pos)
        return _make_zset(scores), pos
    if rtype in _BLOB_DECODERS:
        blob, pos = read_string(data, pos)
        return _BLOB_DECODERS[rtype](blob), pos
    if rtype in (TYPE_STREAM_LISTPACKS, TYPE_STREAM_LISTPACKS_2, TYPE_STREAM_LISTPACKS_3):
        try:
            return decode_stream(data, pos, rtype, _read_len, read_string)
        except ValueError as exc:
            raise _Corrupt(str(exc)) from None
    if rtype in (TYPE_MODULE_PRE_GA, TYPE_MODULE_2):
        raise _Corrupt(f"module type not supported (RDB type {rtype})")
    raise _Corrupt(f"unknown RDB object type {rtype}")


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
_OBJECT_TYPES = frozenset(range(0, 8)) | frozenset(range(9, 22))


def _skip_module_value(data: bytes, pos: int) -> int:
    """Walk past module-serialized data (rdbLoadCheckModuleValue): typed fields until the EOF opcode."""
    while True:
        opcode, pos = _read_len(data, pos)
        if opcode == MODULE_OPCODE_EOF:
            return pos
        if opcode in (MODULE_OPCODE_SINT, MODULE_OPCODE_UINT):
            _, pos = _read_len(data, pos)
        elif opcode == MODULE_OPCODE_STRING:
            _, pos = _read_string(data, pos)
        elif opcode == MODULE_OPCODE_FLOAT:
            pos += 4
        elif opcode == MODULE_OPCODE_DOUBLE:
            pos += 8
        else:
            raise _Corrupt(f"unknown module opcode {opcode}")


def _parse_header(data: bytes) -> int:
    if len(data) < 9 or data[:5] != b"REDIS" or not data[5:9].isdigit():
        raise RdbError("Wrong signature trying to load DB from file at offset 0")
    version = int(data[5:9])
    if version < 1 or version > RDB_VERSION:
        raise RdbError(f"Can't handle RDB format version {version} at offset 5")
    return version


def load(
    source: BinaryIO | bytes | bytearray | memoryview,
    num_dbs: int,
    progress: Callable[[int], None] | None = None,
    drop_expired_before_ms: int | None = None,
) -> RdbData:
    """Parse a whole RDB (from a stream, read to its end, or from bytes) into ``num_dbs`` fresh databases.

    Keys with a TTL are kept even if already expired (the keyspace expires them lazily), unless their
    deadline is before ``drop_expired_before_ms`` (a master passes "now", as Redis drops expired keys when
    a master loads). ``progress(bytes_read)`` is called every PROGRESS_EVERY_KEYS keys. Raises RdbError,
    never returning a partial dataset.
    """
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, (bytearray, memoryview)):
        data = bytes(source)
    else:
        data = source.read()
    return _load(data, None, num_dbs, progress, drop_expired_before_ms)


def load_stream(
    more: Callable[[], bytes],
    num_dbs: int,
    progress: Callable[[int], None] | None = None,
    drop_expired_before_ms: int | None = None,
) -> RdbData:
    """``load`` an RDB that arrives in pieces, parsing each piece as it comes (a replica's full sync).

    ``more()`` returns the next piece, ``b""`` once the stream has ended; it may block (a loader thread
    parses while the transfer is received) and may raise to abandon the load (the exception passes through).
    Only the part not parsed yet is held in memory. The stream must be exactly one RDB: ending early is
    "Unexpected EOF", bytes after the checksum are an error too. Same result and errors as ``load`` otherwise.
    """
    stream = _ChunkSource(more)
    data = b""
    try:
        while len(data) < 9:
            data = stream.refill(data, 0)
    except IndexError:
        pass  # shorter than a header: _parse_header says so
    result = _load(data, stream, num_dbs, progress, drop_expired_before_ms)
    trailing = stream.leftover
    while not stream.ended:
        chunk = more()
        if not chunk:
            break
        trailing += len(chunk)
    if trailing:
        raise RdbError(f"{trailing} unexpected bytes after the RDB checksum at offset {result.end_offset}")
    return result


class _ChunkSource:
    """The input of ``load_stream``: the pieces still to come, and what the parser already let go of.

    The parser works on one ``bytes`` buffer. When an item runs past its end, the parser hands the buffer
    back with the position of that item: the bytes before it are folded into the running CRC64 and dropped,
    and at least as many new bytes as are kept are appended (so an item larger than a piece costs a few
    re-parses and copies, not one per piece), then the item is parsed again from its start.
    """

    __slots__ = ("more", "base", "crc", "received", "ended", "leftover")

    def __init__(self, more: Callable[[], bytes]) -> None:
        self.more = more
        self.base = 0  # stream offset of the buffer's first byte
        self.crc = 0  # CRC64 of the bytes before the buffer
        self.received = 0
        self.ended = False
        self.leftover = 0  # bytes in the buffer after the checksum when parsing ended

    def refill(self, data: bytes, keep_from: int) -> bytes:
        """``data[keep_from:]`` followed by more of the stream; IndexError if the stream has no more."""
        if keep_from:
            self.crc = crc64(self.crc, memoryview(data)[:keep_from])
            self.base += keep_from
        kept = len(data) - keep_from
        parts = [data[keep_from:]] if kept else []
        wanted = max(kept, 1)
        got = 0
        while got < wanted:
            chunk = b"" if self.ended else self.more()
            if not chunk:
                self.ended = True
                if not got:
                    raise IndexError
                break  # the stream ended: parsing what did arrive tells whether it was enough
            parts.append(chunk)
            got += len(chunk)
            self.received += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)


def _load(
    data: bytes,
    stream: _ChunkSource | None,
    num_dbs: int,
    progress: Callable[[int], None] | None,
    drop_expired_before_ms: int | None,
    helper: Any = None,
) -> RdbData:
    version = _parse_header(data)
    if num_dbs < 1:
        raise ValueError("num_dbs must be at least 1")
    dbs = [Database(i) for i in range(num_dbs)]
    result = RdbData(dbs=dbs, aux={})
    item_pos = pos = 9
    # Loading allocates millions of objects and frees none: the cyclic GC would only rescan them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        pos = _load_body(data, pos, version, result, progress, drop_expired_before_ms, stream, helper)
    except _AtOffset as exc:
        raise RdbError(f"{exc.reason} at offset {exc.offset}") from None
    except IndexError:
        size = stream.received if stream is not None else len(data)
        raise RdbError(f"Unexpected EOF reading RDB file at offset {size}") from None
    except (_Corrupt, ValueError, OverflowError, struct.error, MemoryError) as exc:
        raise RdbError(f"corrupt RDB data ({exc}) at offset {item_pos}") from None
    finally:
        if gc_was_enabled:
            gc.enable()
    result.end_offset = pos
    return result


def _load_body(
    data: bytes,
    pos: int,
    version: int,
    result: RdbData,
    progress: Callable[[int], None] | None,
    drop_before_ms: int | None,
    stream: _ChunkSource | None = None,
    helper: Any = None,
) -> int:
    """The opcode loop. Returns the position after the checksum. Errors inside it become _AtOffset.

    With a ``stream``, ``data`` is only what has arrived so far: an item cut off at its end (IndexError) is
    parsed again once more bytes are in, so every read of an item must fail with IndexError, never with a
    wrong value, when the buffer ends inside it; positions in errors and progress are then stream offsets.

    With a ``helper`` (whole files only), runs of string keys parsed by the helper process are merged when
    the loop reaches their start: ``run_at`` is the next one's offset (sys.maxsize: none coming).
    """
    dbs = result.dbs
    num_dbs = len(dbs)
    db = dbs[0]
    db_data, db_expires = db.data, db.expires
    # Keys stored per database, to detect duplicated keys at the end instead of a lookup per key.
    stored = [0] * num_dbs
    keys_at_select = 0
    size = len(data)
    read_string, read_value = _read_string, _read_value
    keys_read = 0
    expire_ms: int | None = None  # set by an EXPIRETIME opcode, consumed by the key that follows
    item_pos = pos
    base = 0  # stream offset of data[0]
    run_at = helper.prime() if helper is not None else sys.maxsize
    try:
        while True:
            try:
                while True:
                    item_pos = pos
                    if pos >= run_at:
                        # A run from the helper starts here (it never starts after an expire opcode: if one
                        # is pending, the helper and this loop disagree and the run is dropped, not merged).
                        pos, added, dropped = helper.take(pos, db_data, db_expires, expire_ms is None)
                        keys_read += added
                        result.expired_skipped += dropped
                        run_at = helper.start
                        if (
                            progress is not None
                            and (keys_read - added) // PROGRESS_EVERY_KEYS != keys_read // PROGRESS_EVERY_KEYS
                        ):
                            progress(base + pos)  # as often as without a helper: once per PROGRESS_EVERY_KEYS
                        continue
                    rtype = data[pos]
                    pos += 1
                    if rtype == TYPE_STRING:
                        # Inlined fast path: short raw key and value strings.
                        b = data[pos]
                        if b < 64:
                            end = pos + 1 + b
                            key = data[pos + 1 : end]
                            pos = end
                        else:
                            key, pos = read_string(data, pos)
                        b = data[pos]
                        if b < 64:
                            end = pos + 1 + b
                            value: Any = data[pos + 1 : end]
                            pos = end
                        else:
                            value, pos = read_string(data, pos)
                    elif rtype < OPCODE_FUNCTION2:
                        if rtype not in _OBJECT_TYPES:  # checked before the key, as rdbIsObjectType is
                            raise _Corrupt(f"unknown RDB object type {rtype}")
                        key, pos = read_string(data, pos)
                        value, pos = read_value(data, pos, rtype)
                        if not value and type(value) is not bytes:
                            result.empty_skipped += 1  # Redis skips empty collections (empty keys) on load
                            expire_ms = None
                            continue
                    else:
                        if rtype == OPCODE_EXPIRETIME_MS:
                            if pos + 8 > size:
                                raise IndexError
                            expire_ms = _UNPACK_I64(data, pos)[0]
                            pos += 8
                        elif rtype == OPCODE_EXPIRETIME:
                            if pos + 4 > size:
                                raise IndexError
                            expire_ms = _UNPACK_I32(data, pos)[0] * 1000
                            pos += 4
                        elif rtype == OPCODE_SELECTDB:
                            index, pos = _read_len(data, pos)
                            if index >= num_dbs:
                                raise _Corrupt(
                                    f"FATAL: Data file was created with a Redis server configured to handle more "
                                    f"than {num_dbs} databases (SELECTDB {index})"
                                )
                            stored[db.id] += keys_read - keys_at_select
                            keys_at_select = keys_read
                            db = dbs[index]
                            db_data, db_expires = db.data, db.expires
                        elif rtype == OPCODE_RESIZEDB:
                            _, pos = _read_len(data, pos)
                            _, pos = _read_len(data, pos)
                        elif rtype == OPCODE_AUX:
                            name, pos = read_string(data, pos)
                            result.aux[name.decode("latin-1")], pos = read_string(data, pos)
                        elif rtype == OPCODE_EOF:
                            break
                        elif rtype == OPCODE_IDLE:
                            _, pos = _read_len(data, pos)
                        elif rtype == OPCODE_FREQ:
                            if pos >= size:
                                raise IndexError
                            pos += 1
                        elif rtype == OPCODE_MODULE_AUX:
                            _, pos = _read_len(data, pos)  # module id
                            when_opcode, pos = _read_len(data, pos)
                            _, pos = _read_len(data, pos)  # when
                            if when_opcode != MODULE_OPCODE_UINT:
                                raise _Corrupt("bad when_opcode in module AUX data")
                            pos = _skip_module_value(data, pos)
                        elif rtype == OPCODE_FUNCTION2:
                            code, pos = read_string(data, pos)
                            result.functions.append(code)
                        elif rtype == OPCODE_FUNCTION_PRE_GA:
                            raise _Corrupt("Pre-release function format not supported")
                        else:
                            raise _Corrupt(f"unknown RDB opcode {rtype}")
                        continue
                    # A key and its value: store it (unless the buffer ended inside it: slices don't raise).
                    if pos > size:
                        raise IndexError
                    if expire_ms is not None:
                        if drop_before_ms is not None and expire_ms < drop_before_ms:
                            result.expired_skipped += 1
                            expire_ms = None
                            continue
                        db_expires[key] = expire_ms
                        expire_ms = None
                    db_data[key] = value
                    keys_read += 1
                    if not keys_read & (PROGRESS_EVERY_KEYS - 1) and progress is not None:
                        progress(base + pos)
                break  # the EOF opcode
            except IndexError:
                if stream is None:
                    raise
                # The item at item_pos runs past the bytes received so far: parse it again with more.
                data = stream.refill(data, item_pos)
                base = stream.base
                size = len(data)
                pos = 0
    except _Corrupt as exc:
        raise _AtOffset(str(exc), base + item_pos) from None
    except (ValueError, OverflowError, struct.error) as exc:
        raise _AtOffset(f"corrupt RDB data ({exc})", base + item_pos) from None
    stored[db.id] += keys_read - keys_at_select
    for db, count in zip(dbs, stored, strict=True):
        if len(db.data) != count:
            raise RdbError(f"RDB has duplicated keys in DB {db.id} at offset {base + pos - 1}")
    if pos > size:
        raise IndexError
    eof_pos = pos
    if version >= 5:
        while stream is not None and pos + 8 > size:
            data = stream.refill(data, pos)  # folds everything through the EOF opcode into stream.crc
            base, size, pos, eof_pos = stream.base, len(data), 0, 0
        if pos + 8 > size:
            raise IndexError
        expected = int.from_bytes(data[pos : pos + 8], "little")
        pos += 8
        if expected != 0:  # zero: written with rdbchecksum no
            actual = crc64(stream.crc if stream is not None else 0, memoryview(data)[:eof_pos])
            if actual != expected:
                raise RdbError(
                    f"Wrong RDB checksum expected: ({expected:x}) got ({actual:x}) at offset {base + eof_pos}"
                )
    if stream is not None:
        stream.leftover = size - pos
    if progress is not None:
        progress(base + pos)
    return base + pos


def load_file(
    path: str,
    num_dbs: int,
    progress: Callable[[int], None] | None = None,
    drop_expired_before_ms: int | None = None,
    helper: Any = None,
) -> RdbData:
    """``load`` a file. OSError (e.g. FileNotFoundError) passes through: no file is not a corrupt file.

    ``helper`` (an ``actors.persistence.rdb.helper.LoadHelper`` started on the same file) hands over runs of string keys
    parsed on another core; the result is the same with or without it.
    """
    with open(path, "rb") as f:
        data = f.read()
    return _load(data, None, num_dbs, progress, drop_expired_before_ms, helper)


def dump_value(value: Any, compress: bool = True) -> bytes:
    """A DUMP payload (createDumpPayload): type, serialized value, RDB version (u16 LE), CRC64 (u64 LE)."""
    kind, parts = _encode_value(value, compress)
    body = b"".join([_LEN6[kind], *parts, RDB_VERSION.to_bytes(2, "little")])
    return body + crc64(0, body).to_bytes(8, "little")


def load_value(payload: bytes) -> Any:
    """The value in a DUMP payload (RESTORE). RdbError if its version, checksum or contents are wrong."""
    if len(payload) < 10:
        raise DumpPayloadError("DUMP payload version or checksum are wrong at offset 0")
    version = int.from_bytes(payload[-10:-8], "little")
    if version > RDB_VERSION or crc64(0, payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        raise DumpPayloadError(f"DUMP payload version or checksum are wrong at offset {len(payload) - 10}")
    body = payload[:-10]
    try:
        value, pos = _read_value(body, 1, body[0])
    except _Corrupt as exc:
        raise RdbError(f"{exc} at offset 0") from None
    except (IndexError, ValueError, OverflowError, struct.error) as exc:
        raise RdbError(f"Bad data format ({exc or 'truncated'}) at offset 0") from None
    if pos != len(body):
        raise RdbError(f"Bad data format (trailing bytes) at offset {pos}")
    return value
