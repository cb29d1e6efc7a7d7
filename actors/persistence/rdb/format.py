"""The RDB file format, version 10 (Redis 7.0): type and opcode numbers, limits, errors, the load result.

Shared by reader.py, decode.py and writer.py (and the load helper). File layout (rdb.c): ``REDIS0010``, AUX fields (0xFA
name value), then per non-empty database SELECTDB (0xFE index) + RESIZEDB (0xFB keys, keys-with-TTL) + its
keys, each ``[EXPIRETIME_MS 0xFC <i64 LE ms>] <type> <key> <value>``, then EOF (0xFF) and the CRC64 of
everything before it as 8 bytes little-endian (zeros when the checksum is off). Lengths use Redis's
6/14/32/64-bit length encoding; strings may be integer-encoded or LZF-compressed.
"""

from __future__ import annotations

from actors.data.keyspace import Database

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

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class RdbError(Exception):
    """A file that is not a loadable RDB: the message says what and at which byte offset."""


class DumpPayloadError(RdbError):
    """A DUMP payload whose RDB version or CRC64 is wrong (RESTORE's verifyDumpPayload)."""


class RdbData:
    """What a load produced. ``dbs`` has exactly ``num_dbs`` databases, empty ones included."""

    def __init__(
        self,
        dbs: list[Database],
        aux: dict[str, bytes],
        functions: list[bytes] | None = None,
        end_offset: int = 0,
        expired_skipped: int = 0,
        empty_skipped: int = 0,
    ) -> None:
        self.dbs: list[Database] = dbs
        # AUX fields (redis-ver, ctime, repl-id, repl-offset, ...), values as the strings Redis stores.
        self.aux: dict[str, bytes] = aux
        # Function libraries' source code (RDB_OPCODE_FUNCTION2). Read past, not loaded: redactor has no FUNCTION.
        self.functions: list[bytes] = [] if functions is None else functions
        # Bytes consumed, magic to checksum: where a trailing AOF tail (RDB-preamble AOF) would begin.
        self.end_offset: int = end_offset
        # Keys left out: already expired when a master loads them, or empty collections (Redis skips both).
        self.expired_skipped: int = expired_skipped
        self.empty_skipped: int = empty_skipped
