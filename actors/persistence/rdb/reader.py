"""The RDB reader: load an RDB file, a stream of one (full sync) or a DUMP payload. Pure code.

Used by start-up loading, DEBUG RELOAD, RESTORE and replication (a full sync payload, parsed with
``load_stream`` piece by piece as it arrives). The reader builds fresh ``Database`` objects and returns them
only when the whole file was read and its checksum verified, so a bad file never half-replaces a dataset. It
accepts every type Redis 7.0 and its predecessors write except streams and module values, which it refuses
with a clear error: redactor has no stream or module type to load them into. The format is in format.py.

Speed: a load parses the whole file from one ``bytes`` object with the common case (short string key and
value) inlined; CRC64 and LZF run natively (native.py). A large file can also be loaded with a helper process
that parses its runs of string keys on another core and hands them over as pickles (``load_file(...,
helper=)``, see helper.py): the same result, in about half the time.
"""

from __future__ import annotations

import gc
import struct
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

from actors.data import rdb_hooks
from actors.data.keyspace import Database
from actors.persistence.rdb.decode import (
    OBJECT_TYPES,
    AtOffset,
    Corrupt,
    read_len,
    read_string,
    read_value,
    skip_module_value,
)
from actors.persistence.rdb.format import (
    MODULE_OPCODE_UINT,
    OPCODE_AUX,
    OPCODE_EOF,
    OPCODE_EXPIRETIME,
    OPCODE_EXPIRETIME_MS,
    OPCODE_FREQ,
    OPCODE_FUNCTION2,
    OPCODE_FUNCTION_PRE_GA,
    OPCODE_IDLE,
    OPCODE_MODULE_AUX,
    OPCODE_RESIZEDB,
    OPCODE_SELECTDB,
    PROGRESS_EVERY_KEYS,
    QUICKLIST_NODE_PACKED,
    RDB_VERSION,
    TYPE_HASH_LISTPACK,
    TYPE_HASH_ZIPLIST,
    TYPE_HASH_ZIPMAP,
    TYPE_LIST_QUICKLIST_2,
    TYPE_LIST_ZIPLIST,
    TYPE_SET_INTSET,
    TYPE_SET_LISTPACK,
    TYPE_STREAM_LISTPACKS,
    TYPE_STREAM_LISTPACKS_2,
    TYPE_STREAM_LISTPACKS_3,
    TYPE_STRING,
    TYPE_ZSET_LISTPACK,
    TYPE_ZSET_ZIPLIST,
    DumpPayloadError,
    RdbData,
    RdbError,
)
from actors.persistence.rdb.native import crc64

_UNPACK_I64 = struct.Struct("<q").unpack_from
_UNPACK_I32 = struct.Struct("<i").unpack_from


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
    except AtOffset as exc:
        raise RdbError(f"{exc.reason} at offset {exc.offset}") from None
    except IndexError:
        size = stream.received if stream is not None else len(data)
        raise RdbError(f"Unexpected EOF reading RDB file at offset {size}") from None
    except (Corrupt, ValueError, OverflowError, struct.error, MemoryError) as exc:
        raise RdbError(f"corrupt RDB data ({exc}) at offset {item_pos}") from None
    finally:
        if gc_was_enabled:
            gc.enable()
    result.end_offset = pos
    rdb_hooks.functions_loaded(result.functions)
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
    """The opcode loop. Returns the position after the checksum. Errors inside it become AtOffset.

    With a ``stream``, ``data`` is only what has arrived so far: an item cut off at its end (IndexError) is
    parsed again once more bytes are in, so every read of an item must fail with IndexError, never with a
    wrong value, when the buffer ends inside it; positions in errors and progress are then stream offsets.

    With a ``helper`` (whole files only), runs of string keys parsed by the helper process are merged when
    the loop reaches their start: ``run_at`` is the next one's offset (sys.maxsize: none coming).
    """
    dbs = result.dbs
    num_dbs = len(dbs)
    db = dbs[0]
    # Keys and TTLs per database as parsed; each Database's kvstore takes them over (merge_loaded) at the end.
    loaded: list[tuple[dict[bytes, Any], dict[bytes, int]]] = [({}, {}) for _ in dbs]
    db_data, db_expires = loaded[0]
    # Keys stored per database, to detect duplicated keys at the end instead of a lookup per key.
    stored = [0] * num_dbs
    keys_at_select = 0
    size = len(data)
    _read_str, _read_val = read_string, read_value  # locals: the inner loop
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
                            key, pos = _read_str(data, pos)
                        b = data[pos]
                        if b < 64:
                            end = pos + 1 + b
                            value: Any = data[pos + 1 : end]
                            pos = end
                        else:
                            value, pos = _read_str(data, pos)
                    elif rtype < OPCODE_FUNCTION2:
                        if rtype not in OBJECT_TYPES:  # checked before the key, as rdbIsObjectType is
                            raise Corrupt(f"unknown RDB object type {rtype}")
                        key, pos = _read_str(data, pos)
                        value, pos = _read_val(data, pos, rtype)
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
                            index, pos = read_len(data, pos)
                            if index >= num_dbs:
                                raise Corrupt(
                                    f"FATAL: Data file was created with a Redis server configured to handle more "
                                    f"than {num_dbs} databases (SELECTDB {index})"
                                )
                            stored[db.id] += keys_read - keys_at_select
                            keys_at_select = keys_read
                            db = dbs[index]
                            db_data, db_expires = loaded[index]
                        elif rtype == OPCODE_RESIZEDB:
                            _, pos = read_len(data, pos)
                            _, pos = read_len(data, pos)
                        elif rtype == OPCODE_AUX:
                            name, pos = _read_str(data, pos)
                            result.aux[name.decode("latin-1")], pos = _read_str(data, pos)
                        elif rtype == OPCODE_EOF:
                            break
                        elif rtype == OPCODE_IDLE:
                            _, pos = read_len(data, pos)
                        elif rtype == OPCODE_FREQ:
                            if pos >= size:
                                raise IndexError
                            pos += 1
                        elif rtype == OPCODE_MODULE_AUX:
                            _, pos = read_len(data, pos)  # module id
                            when_opcode, pos = read_len(data, pos)
                            _, pos = read_len(data, pos)  # when
                            if when_opcode != MODULE_OPCODE_UINT:
                                raise Corrupt("bad when_opcode in module AUX data")
                            pos = skip_module_value(data, pos)
                        elif rtype == OPCODE_FUNCTION2:
                            code, pos = _read_str(data, pos)
                            result.functions.append(code)
                        elif rtype == OPCODE_FUNCTION_PRE_GA:
                            raise Corrupt("Pre-release function format not supported")
                        else:
                            raise Corrupt(f"unknown RDB opcode {rtype}")
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
    except Corrupt as exc:
        raise AtOffset(str(exc), base + item_pos) from None
    except (ValueError, OverflowError, struct.error) as exc:
        raise AtOffset(f"corrupt RDB data ({exc})", base + item_pos) from None
    stored[db.id] += keys_read - keys_at_select
    for db, count in zip(dbs, stored, strict=True):
        if len(loaded[db.id][0]) != count:
            raise RdbError(f"RDB has duplicated keys in DB {db.id} at offset {base + pos - 1}")
        db.merge_loaded(*loaded[db.id])
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
                # Redis's words: "expected" is the checksum of what was read, "got" the one the file holds.
                raise RdbError(
                    f"Wrong RDB checksum expected: ({actual:x}) but got ({expected:x}): RDB CRC error at offset "
                    f"{base + eof_pos}"
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


def load_value(payload: bytes) -> Any:
    """The value in a DUMP payload (RESTORE). RdbError if its version, checksum or contents are wrong."""
    if len(payload) < 10:
        raise DumpPayloadError("DUMP payload version or checksum are wrong at offset 0")
    version = int.from_bytes(payload[-10:-8], "little")
    if version > RDB_VERSION or crc64(0, payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        raise DumpPayloadError(f"DUMP payload version or checksum are wrong at offset {len(payload) - 10}")
    body = payload[:-10]
    try:
        value, pos = read_value(body, 1, body[0])
    except Corrupt as exc:
        raise RdbError(f"{exc} at offset 0") from None
    except (IndexError, ValueError, OverflowError, struct.error) as exc:
        raise RdbError(f"Bad data format ({exc or 'truncated'}) at offset 0") from None
    if pos != len(body):
        raise RdbError(f"Bad data format (trailing bytes) at offset {pos}")
    return value


# The types whose whole value Redis's sanitize-dump-payload checks as one blob (ziplist, intset, zipmap or
# listpack: one count each); quicklists count their packed nodes and streams their listpacks.
_ONE_BLOB_TYPES = frozenset(
    (TYPE_HASH_ZIPMAP, TYPE_LIST_ZIPLIST, TYPE_SET_INTSET, TYPE_ZSET_ZIPLIST, TYPE_HASH_ZIPLIST)
    + (TYPE_HASH_LISTPACK, TYPE_ZSET_LISTPACK, TYPE_SET_LISTPACK)
)


def sanitized_blobs(payload: bytes) -> int:
    """How many blobs Redis's deep sanitization (sanitize-dump-payload) would check in a RESTORE payload that
    loaded: its INFO ``dump_payload_sanitizations`` counts one per ziplist / listpack / intset it validates
    (rdbLoadObject). This node checks every payload that deeply whatever the directive says (each entry is
    decoded as it is loaded); the directive decides what the counter counts, as in Redis."""
    rtype = payload[0]
    if rtype in _ONE_BLOB_TYPES:
        return 1
    if rtype == TYPE_LIST_QUICKLIST_2:
        nodes, pos = read_len(payload, 1)
        packed = 0
        for _ in range(nodes):
            container, pos = read_len(payload, pos)
            _, pos = read_string(payload, pos)
            packed += container == QUICKLIST_NODE_PACKED
        return packed
    if rtype in (TYPE_STREAM_LISTPACKS, TYPE_STREAM_LISTPACKS_2, TYPE_STREAM_LISTPACKS_3):
        return read_len(payload, 1)[0]
    return 0
