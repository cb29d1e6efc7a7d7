"""The RDB writer: dump a keyspace to an RDB (SAVE, BGSAVE, the AOF base, full sync, DUMP). Pure code.

The writer takes no locks, starts no threads and logs nothing, since it runs in a forked child. It emits what
redis-server 7.0 itself writes for the same data: strings (0), lists as QUICKLIST_2 (18) nodes of listpacks,
small hashes and sorted sets as one listpack (16, 17) and small integer sets as an intset (11) within Redis's
default size limits, and the plain types (set 2, hash 4, ZSET_2 5) beyond them. The format is in format.py.

Speed: a dump of a million small keys is one pass of a tight loop with inlined encodings for short strings,
joined and written in 1 MiB blocks. CRC64 and LZF run natively (native.py). ``save_file`` replaces the file
atomically (actors/files.py).
"""

from __future__ import annotations

import gc
import io
import os
import random
import resource
import struct
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from actors import fork
from actors.data import rdb_hooks
from actors.data.keyspace import Database
from actors.data.stream import Stream
from actors.data.types import ZSet
from actors.files import write_atomically
from actors.persistence.rdb.compact import (
    listpack_encode,
    listpack_entry_size,
)
from actors.persistence.rdb.format import (
    INT64_MAX,
    INT64_MIN,
    INT_ENCODING_MAX_BYTES,
    LIST_NODE_MAX_BYTES,
    LIST_PLAIN_ELEMENT_BYTES,
    LISTPACK_OVERHEAD_BYTES,
    LZF_MIN_SAVING_BYTES,
    LZF_MIN_STRING_BYTES,
    MAGIC,
    OPCODE_AUX,
    OPCODE_EOF,
    OPCODE_EXPIRETIME_MS,
    OPCODE_RESIZEDB,
    OPCODE_SELECTDB,
    QUICKLIST_NODE_PACKED,
    QUICKLIST_NODE_PLAIN,
    RDB_VERSION,
    SMALL_COLLECTION_ELEMENT_BYTES,
    SMALL_COLLECTION_ENTRIES,
    SMALL_INTSET_MEMBERS,
    TYPE_HASH,
    TYPE_HASH_LISTPACK,
    TYPE_LIST_QUICKLIST_2,
    TYPE_SET,
    TYPE_SET_INTSET,
    TYPE_STRING,
    TYPE_ZSET_2,
    TYPE_ZSET_LISTPACK,
    WRITE_BATCH_KEYS,
    WRITE_BLOCK_BYTES,
)
from actors.persistence.rdb.native import crc64, lzf_compress
from actors.persistence.rdb.stream_codec import encode_stream

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
        if b"%d" % value != member or not INT64_MIN <= value <= INT64_MAX:
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
            for member, score in value.items():
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


# rdb-key-save-delay (a hidden test knob, as Redis's): microseconds slept after each key written, or with a
# negative value -N, 1 us with probability 1/N (Redis's debugDelay). Set from the node's configuration
# (actors/persistence/jobs.py); a fork child keeps the value it had when it was forked, as Redis's children.
_key_save_delay_us = 0


def set_key_save_delay(delay_us: int) -> None:
    global _key_save_delay_us
    _key_save_delay_us = delay_us


def debug_delay(delay_us: int) -> None:
    """Redis's debugDelay: sleep ``delay_us`` microseconds; a negative -N sleeps 1 us one time in N."""
    if delay_us < 0:
        delay_us = 1 if random.randrange(-delay_us) == 0 else 0
    if delay_us:
        time.sleep(delay_us / 1_000_000)


def _delayed(items: Iterable[tuple[bytes, Any]], delay_us: int) -> Iterator[tuple[bytes, Any]]:
    for item in items:
        yield item
        debug_delay(delay_us)
        fork.report_child_progress(1)  # (slow keys: a fork child's progress per key, not per batch)


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
    delayed = bool(_key_save_delay_us)
    items = data.items() if not delayed else _delayed(data.items(), _key_save_delay_us)
    for key, value in items:
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
            if not delayed:
                fork.report_child_progress(batched)  # (in a fork child: INFO's current_save_keys_processed)
            batched = 0
    if parts:
        writer.add(b"".join(parts))
        if not delayed:
            fork.report_child_progress(batched)


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
    functions: bool = True,
) -> int:
    """Write a whole RDB (magic .. EOF + checksum) of ``dbs`` to ``out``. Returns the bytes written.
    ``functions``: with the function libraries (not for REPLCONF rdb-filter-only without them).

    Keys go out as they are: the caller decides whether expired keys belong in a snapshot (Redis writes them;
    the loading master drops them). ``aux`` is usually ``default_aux(...)``.
    """
    # A forked child must not let the cyclic GC walk (and so copy-on-write) the parent's whole heap.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _dump(dbs, out, aux, compress, checksum, functions)
    finally:
        if gc_was_enabled:
            gc.enable()


def _dump(
    dbs: list[Database],
    out: BinaryIO,
    aux: dict[str, bytes | int | str] | None,
    compress: bool,
    checksum: bool,
    functions: bool = True,
) -> int:
    writer = _BlockWriter(out, checksum)
    head = [MAGIC]
    for name, value in (aux or {}).items():
        head += (bytes((OPCODE_AUX,)), _encode_string(name.encode(), False))
        head.append(_encode_string(_aux_bytes(value), False))
    if functions:
        head.append(rdb_hooks.function_records())
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

    buffer = io.BytesIO()
    dump(dbs, buffer, aux, **options)
    return buffer.getvalue()


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
    temp_path = os.path.join(os.path.dirname(os.path.abspath(path)), f"temp-{os.getpid()}.rdb")
    return write_atomically(
        path, lambda raw: dump(dbs, raw, aux, compress=compress, checksum=checksum), temp_path
    )


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


def dump_value(value: Any, compress: bool = True) -> bytes:
    """A DUMP payload (createDumpPayload): type, serialized value, RDB version (u16 LE), CRC64 (u64 LE)."""
    kind, parts = _encode_value(value, compress)
    body = b"".join([_LEN6[kind], *parts, RDB_VERSION.to_bytes(2, "little")])
    return body + crc64(0, body).to_bytes(8, "little")
