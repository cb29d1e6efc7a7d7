"""HyperLogLog: PFADD, PFCOUNT, PFMERGE and PFDEBUG, byte for byte as Redis 7.0's hyperloglog.c.

An HLL is a string value: a 16-byte header ("HYLL", encoding, 3 unused bytes, the cached cardinality as 8
bytes little-endian whose top bit marks it stale) and 16384 6-bit registers, either dense (12288 bytes,
registers packed LSB first) or sparse (ZERO, XZERO and VAL opcodes). The same elements give the same bytes
as in Redis (MurmurHash64A, the sparse updates and merges of hllSparseSet, promotion to dense past 32 or past
hll-sparse-max-bytes), so GET, DUMP, DEBUG DIGEST and RDB files agree with redis-server, and so does
PFCOUNT (Ertl's estimator, as Redis 7 computes it). PFDEBUG GETREG / DECODE / ENCODING / TODENSE are
Redis's debugging views; PFSELFTEST (hll_selftest.py) checks this code as Redis's checks its own.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.data import events
from protocol.errors import CommandError, WrongTypeError
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client

HLL_P = 14
HLL_Q = 64 - HLL_P
HLL_REGISTERS = 1 << HLL_P
HLL_P_MASK = HLL_REGISTERS - 1
HLL_BITS = 6
HLL_REGISTER_MAX = (1 << HLL_BITS) - 1
HLL_HDR_SIZE = 16
HLL_DENSE_SIZE = HLL_HDR_SIZE + (HLL_REGISTERS * HLL_BITS + 7) // 8
HLL_DENSE, HLL_SPARSE = 0, 1
HLL_ALPHA_INF = 0.721347520444481703680
SPARSE_VAL_MAX_VALUE = 32
SPARSE_VAL_MAX_LEN = 4
SPARSE_ZERO_MAX_LEN = 64
SPARSE_XZERO_MAX_LEN = 16384
_MASK64 = (1 << 64) - 1
_MURMUR_M = 0xC6A4A7935BD1E995
_MURMUR_SEED = 0xADC83B19

INVALID_HLL = "INVALIDOBJ Corrupted HLL object detected"
NOT_AN_HLL = "WRONGTYPE Key is not a valid HyperLogLog string value."


class _Corrupt(Exception):
    pass


def murmurhash64a(key: bytes, seed: int = _MURMUR_SEED) -> int:
    """Redis's MurmurHash64A (little-endian blocks), 64-bit arithmetic."""
    m = _MURMUR_M
    length = len(key)
    h = (seed ^ (length * m)) & _MASK64
    blocks = length - (length & 7)
    for i in range(0, blocks, 8):
        k = int.from_bytes(key[i : i + 8], "little")
        k = (k * m) & _MASK64
        k ^= k >> 47
        k = (k * m) & _MASK64
        h ^= k
        h = (h * m) & _MASK64
    tail = length & 7
    if tail:
        h ^= int.from_bytes(key[blocks:], "little")
        h = (h * m) & _MASK64
    h ^= h >> 47
    h = (h * m) & _MASK64
    h ^= h >> 47
    return h


def pattern_of(element: bytes) -> tuple[int, int]:
    """hllPatLen: (register index, run length of zeros + 1)."""
    h = murmurhash64a(element)
    index = h & HLL_P_MASK
    h = (h >> HLL_P) | (1 << HLL_Q)
    return index, (h & -h).bit_length()  # position of the lowest set bit, counting from 1


# -- dense registers: 6 bits each, packed LSB first (the HLL_DENSE_GET/SET_REGISTER macros) ------------------


def _dense_get(regs: bytearray | bytes, index: int) -> int:
    byte, shift = divmod(index * HLL_BITS, 8)
    if shift <= 8 - HLL_BITS:  # all in one byte (the last register's is: C reads the string's NUL after it)
        return (regs[byte] >> shift) & HLL_REGISTER_MAX
    return ((regs[byte] >> shift) | (regs[byte + 1] << (8 - shift))) & HLL_REGISTER_MAX


def _dense_set(regs: bytearray, index: int, value: int) -> None:
    byte, shift = divmod(index * HLL_BITS, 8)
    regs[byte] = (regs[byte] & ~(HLL_REGISTER_MAX << shift) & 0xFF) | ((value << shift) & 0xFF)
    if shift > 8 - HLL_BITS:
        regs[byte + 1] = (regs[byte + 1] & ~(HLL_REGISTER_MAX >> (8 - shift)) & 0xFF) | (value >> (8 - shift))


# Per-byte tables for _dense_values: each register's bits within the 3-byte group that holds 4 registers.
_R0 = bytes(b & 63 for b in range(256))
_R1_LOW, _R1_HIGH = bytes(b >> 6 for b in range(256)), bytes((b & 15) << 2 for b in range(256))
_R2_LOW, _R2_HIGH = bytes(b >> 4 for b in range(256)), bytes((b & 3) << 4 for b in range(256))
_R3 = bytes(b >> 2 for b in range(256))


def _or_bytes(a: bytes, b: bytes) -> bytes:
    """Bytewise OR of two equal-length strings (their bits never overlap here), in C."""
    return (int.from_bytes(a, "big") | int.from_bytes(b, "big")).to_bytes(len(a), "big")


# SWAR constants for _registers_max: a 0x80 in every byte lane, and all lanes' bits, for HLL_REGISTERS lanes.
_LANE_HIGH = int.from_bytes(b"\x80" * HLL_REGISTERS, "big")
_LANES_ALL = (1 << (8 * HLL_REGISTERS)) - 1


def _registers_max(a: bytes, b: bytes) -> bytes:
    """The bytewise max of two register strings (values < 64), computed on them as one big integer each: a
    lane of (b | 0x80) - a keeps its high bit exactly where b >= a, and that selects b's byte or a's."""
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    take_b = (((y | _LANE_HIGH) - x) & _LANE_HIGH) >> 7
    mask = take_b * 0xFF
    return ((y & mask) | (x & (_LANES_ALL ^ mask))).to_bytes(HLL_REGISTERS, "big")


def _dense_values(regs: bytes | bytearray) -> bytes:
    """All registers, one byte each: every 3 bytes hold 4 of them (LSB first). Built with translate tables
    and slice assignment rather than a loop over 4096 groups (a multi-key PFCOUNT reads 16384 per key)."""
    regs = bytes(regs)
    b0, b1, b2 = regs[0::3], regs[1::3], regs[2::3]
    out = bytearray(4 * len(b0))
    out[0::4] = b0.translate(_R0)
    out[1::4] = _or_bytes(b0.translate(_R1_LOW), b1.translate(_R1_HIGH))
    out[2::4] = _or_bytes(b1.translate(_R2_LOW), b2.translate(_R2_HIGH))
    out[3::4] = b2.translate(_R3)
    return bytes(out)


# -- sparse opcodes ---------------------------------------------------------------------------------------


def _zero_run(length: int) -> bytes:
    if length > SPARSE_ZERO_MAX_LEN:
        length -= 1
        return bytes((0x40 | (length >> 8), length & 0xFF))
    return bytes((length - 1,))


def _opcode(ops: bytearray, p: int) -> tuple[str, int, int, int]:
    """(kind, registers covered, value, opcode bytes) of the opcode at ``p``."""
    b = ops[p]
    if b & 0x80:
        return "val", (b & 0x3) + 1, ((b >> 2) & 0x1F) + 1, 1
    if b & 0x40:
        if p + 1 >= len(ops):
            raise _Corrupt
        return "xzero", (((b & 0x3F) << 8) | ops[p + 1]) + 1, 0, 2
    return "zero", (b & 0x3F) + 1, 0, 1


def _sparse_values(ops: bytes | bytearray) -> bytes:
    """Every register's value (one byte each) from sparse opcodes; _Corrupt unless they cover exactly
    HLL_REGISTERS."""
    values = bytearray()
    buf = ops if isinstance(ops, bytearray) else bytearray(ops)
    p = 0
    while p < len(buf):
        kind, span, value, size = _opcode(buf, p)
        if len(values) + span > HLL_REGISTERS:
            # Runs past the last register: corrupt. Checked as they come, so a crafted value of millions of
            # XZERO runs (billions of registers) is refused at once instead of being expanded.
            raise _Corrupt
        values += bytes((value,)) * span
        p += size
    if len(values) != HLL_REGISTERS:
        raise _Corrupt
    return bytes(values)


# Opcode kinds of _SparseOps's entries, and each one's size in bytes.
_ZERO, _XZERO, _VAL = 0, 1, 2
_OPCODE_BYTES = (1, 2, 1)


def _zero_entry(length: int) -> tuple[int, int, int]:
    return (_XZERO if length > SPARSE_ZERO_MAX_LEN else _ZERO, length, 0)


class _SparseOps:
    """A sparse HLL's opcodes while a command updates them: ``(kind, registers, value)`` entries with the first
    register of each beside them, so hllSparseSet finds an element's opcode by bisection instead of walking
    the opcodes from the start (which made one PFADD of a few thousand elements block the node for seconds).
    The updates, and so the bytes, are Redis's: the same splits, the same merges of adjacent VALs.
    """

    __slots__ = ("entries", "firsts", "covered", "size_bytes", "tail")

    def __init__(self, ops: bytes | bytearray) -> None:
        entries: list[tuple[int, int, int]] = []
        firsts: list[int] = []
        first = p = 0
        end = len(ops)
        while p < end:
            b = ops[p]
            if b & 0x80:
                entry = (_VAL, (b & 0x3) + 1, ((b >> 2) & 0x1F) + 1)
                p += 1
            elif b & 0x40:
                if p + 1 >= end:
                    break  # an XZERO cut in half: nothing from here on can be updated (corrupt)
                entry = (_XZERO, (((b & 0x3F) << 8) | ops[p + 1]) + 1, 0)
                p += 2
            else:
                entry = (_ZERO, (b & 0x3F) + 1, 0)
                p += 1
            entries.append(entry)
            firsts.append(first)
            first += entry[1]
        self.entries = entries
        self.firsts = firsts
        self.covered = first  # registers the parsed opcodes cover
        self.size_bytes = end
        self.tail = bytes(ops[p:])  # bytes past a cut opcode, kept as they are

    def encode(self) -> bytes:
        out = bytearray()
        for kind, span, value in self.entries:
            if kind == _VAL:
                out.append(0x80 | ((value - 1) << 2) | (span - 1))
            elif kind == _XZERO:
                out += bytes((0x40 | ((span - 1) >> 8), (span - 1) & 0xFF))
            else:
                out.append(span - 1)
        return bytes(out) + self.tail

    def set(self, index: int, count: int, max_bytes: int) -> bool | None:
        """hllSparseSet: True if changed, False if not, None if the HLL must become dense."""
        if count > SPARSE_VAL_MAX_VALUE:
            return None
        if index >= self.covered:
            raise _Corrupt
        entries, firsts = self.entries, self.firsts
        i = bisect_right(firsts, index) - 1
        kind, span, value = entries[i]
        first = firsts[i]
        if kind == _VAL:
            if value >= count:
                return False
            if span == 1:
                entries[i] = (_VAL, 1, count)
                self._merge_vals(i - 1)
                return True
        if kind == _ZERO and span == 1:
            entries[i] = (_VAL, 1, count)
            self._merge_vals(i - 1)
            return True
        last = first + span - 1
        seq: list[tuple[int, int, int]] = []
        seq_firsts: list[int] = []
        if index != first:
            seq.append(_zero_entry(index - first) if kind != _VAL else (_VAL, index - first, value))
            seq_firsts.append(first)
        seq.append((_VAL, 1, count))
        seq_firsts.append(index)
        if index != last:
            seq.append(_zero_entry(last - index) if kind != _VAL else (_VAL, last - index, value))
            seq_firsts.append(index + 1)
        delta = sum(_OPCODE_BYTES[entry[0]] for entry in seq) - _OPCODE_BYTES[kind]
        if delta > 0 and HLL_HDR_SIZE + self.size_bytes + delta > max_bytes:
            return None
        entries[i : i + 1] = seq
        firsts[i : i + 1] = seq_firsts
        self.size_bytes += delta
        self._merge_vals(i - 1)
        return True

    def _merge_vals(self, prev: int) -> None:
        """Step 4 of hllSparseSet: merge adjacent VALs of one value, scanning 5 opcodes from ``prev``."""
        entries, firsts = self.entries, self.firsts
        i = prev if prev >= 0 else 0
        scan = 5
        while i < len(entries) and scan:
            scan -= 1
            kind, span, value = entries[i]
            if kind == _VAL and i + 1 < len(entries):
                next_kind, next_span, next_value = entries[i + 1]
                if next_kind == _VAL and next_value == value and span + next_span <= SPARSE_VAL_MAX_LEN:
                    entries[i + 1] = (_VAL, span + next_span, value)
                    firsts[i + 1] = firsts[i]
                    del entries[i]
                    del firsts[i]
                    self.size_bytes -= 1
                    continue
            i += 1


# -- objects ----------------------------------------------------------------------------------------------


def _new_hll() -> bytes:
    """createHLLObject: sparse, all registers zero (one XZERO), cached cardinality 0 and valid."""
    return b"HYLL" + bytes((HLL_SPARSE, 0, 0, 0)) + bytes(8) + _zero_run(SPARSE_XZERO_MAX_LEN)


def _check(value: Any) -> bytes:
    """isHLLObjectOrReply."""
    if type(value) is not bytes:
        raise WrongTypeError()
    if (
        len(value) < HLL_HDR_SIZE
        or value[:4] != b"HYLL"
        or value[4] > HLL_SPARSE
        or (value[4] == HLL_DENSE and len(value) != HLL_DENSE_SIZE)
    ):
        raise CommandError(NOT_AN_HLL)
    return value


def _invalidated(header: bytes) -> bytes:
    return header[:15] + bytes((header[15] | 0x80,))


def _registers_of(value: bytes) -> bytes:
    if value[4] == HLL_DENSE:
        return _dense_values(value[HLL_HDR_SIZE:])
    return _sparse_values(value[HLL_HDR_SIZE:])


def _sparse_to_dense(ops: bytes | bytearray) -> bytearray:
    """hllSparseToDense's registers."""
    regs = bytearray(HLL_DENSE_SIZE - HLL_HDR_SIZE)
    for index, v in enumerate(_sparse_values(ops)):
        if v:
            _dense_set(regs, index, v)
    return regs


class _Hll:
    """A mutable view of one HLL value while a command updates it."""

    def __init__(self, value: bytes, max_sparse_bytes: int) -> None:
        self.header = value[:HLL_HDR_SIZE]
        self.dense = value[4] == HLL_DENSE
        self.max_sparse_bytes = max_sparse_bytes
        # Dense: the registers (``body``); sparse: the opcodes (``sparse``).
        self.body = bytearray(value[HLL_HDR_SIZE:]) if self.dense else bytearray()
        self.sparse = None if self.dense else _SparseOps(value[HLL_HDR_SIZE:])

    def promote(self) -> None:
        """hllSparseToDense: the header (cached cardinality included) is kept, the encoding changes."""
        if self.sparse is not None:
            self.body = _sparse_to_dense(self.sparse.encode())
            self.sparse = None
            self.header = self.header[:4] + bytes((HLL_DENSE,)) + self.header[5:]
            self.dense = True

    def set(self, index: int, count: int) -> bool:
        if self.sparse is not None:
            changed = self.sparse.set(index, count, self.max_sparse_bytes)
            if changed is not None:
                return changed
            self.promote()
        if _dense_get(self.body, index) >= count:
            return False
        _dense_set(self.body, index, count)
        return True

    def value(self, invalidate: bool) -> bytes:
        header = _invalidated(self.header) if invalidate else self.header
        return header + (self.sparse.encode() if self.sparse is not None else bytes(self.body))


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_prime = z
        z += x * y
        y += y
        if z_prime == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        z_prime = z
        y *= 0.5
        z -= pow(1 - x, 2) * y
        if z_prime == z:
            return z / 3


def _count(registers: bytes) -> int:
    """hllCount: Ertl's improved estimator over the registers' histogram (one byte per register)."""
    counted = Counter(registers)
    histogram = [counted.get(v, 0) for v in range(64)]
    m = float(HLL_REGISTERS)
    z = m * _tau((m - histogram[HLL_Q + 1]) / m)
    for j in range(HLL_Q, 0, -1):
        z += histogram[j]
        z *= 0.5
    z += m * _sigma(histogram[0] / m)
    estimate = HLL_ALPHA_INF * m * m / z
    return int(math.floor(estimate + 0.5))  # llroundl: the estimate is never negative


def _max_sparse_bytes(client: Client) -> int:
    return int(client.server.config["hll-sparse-max-bytes"])


@command(
    "pfadd", -2, "write denyoom fast", (1, 1, 1), "hyperloglog", "Adds the specified elements to the HLL"
)
def cmd_pfadd(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    key = argv[1]
    current = keyspace.lookup(client.db, key)
    updated = 0
    if current is None:
        current = _new_hll()
        updated = 1
    else:
        _check(current)
    hll = _Hll(current, _max_sparse_bytes(client))
    try:
        for element in argv[2:]:
            if hll.set(*pattern_of(element)):
                updated += 1
    except _Corrupt:
        raise CommandError(INVALID_HLL) from None
    if updated:
        keyspace.set(client.db, key, hll.value(invalidate=True), keep_ttl=True)
        keyspace.dirty += updated
        keyspace.notify(client.db, events.STRING, b"pfadd", key)
    return 1 if updated else 0


@command(
    "pfcount", -2, "readonly", (1, -1, 1), "hyperloglog", "Return the approximated cardinality of the HLL"
)
def cmd_pfcount(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    db = client.db
    try:
        if len(argv) > 2:  # the cardinality of the union
            union = bytes(HLL_REGISTERS)
            for key in argv[1:]:
                value = keyspace.lookup(db, key)
                if value is None:
                    continue
                union = _registers_max(union, _registers_of(_check(value)))
            return _count(union)
        value = keyspace.lookup(db, argv[1])
        if value is None:
            return 0
        value = _check(value)
        if not value[15] & 0x80:
            return int.from_bytes(value[8:16], "little")  # the cached cardinality is valid
        card = _count(_registers_of(value))
    except _Corrupt:
        raise CommandError(INVALID_HLL) from None
    # Cached in the value (and propagated, as Redis does: the string changed).
    keyspace.set(db, argv[1], value[:8] + card.to_bytes(8, "little") + value[16:], keep_ttl=True)
    keyspace.dirty += 1
    return card


@command(
    "pfmerge", -2, "write denyoom", (1, -1, 1), "hyperloglog", "Merge N different HLLs into a single one"
)
def cmd_pfmerge(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    db = client.db
    merged = bytes(HLL_REGISTERS)
    use_dense = False
    try:
        for key in argv[1:]:
            value = keyspace.lookup_read(db, key)  # Redis reads the sources (dest too) with lookupKeyRead
            if value is None:
                continue
            value = _check(value)
            use_dense = use_dense or value[4] == HLL_DENSE
            merged = _registers_max(merged, _registers_of(value))
        dest = keyspace.lookup(db, argv[1])
        hll = _Hll(dest if dest is not None else _new_hll(), _max_sparse_bytes(client))
        if use_dense and not hll.dense:
            hll.promote()
        for index, count in enumerate(merged):
            if count:
                hll.set(index, count)
    except _Corrupt:
        raise CommandError(INVALID_HLL) from None
    keyspace.set(db, argv[1], hll.value(invalidate=True), keep_ttl=True)
    keyspace.dirty += 1
    keyspace.notify(db, events.STRING, b"pfadd", argv[1])
    return OK


@command(
    "pfdebug",
    3,
    "write denyoom admin",
    (2, 2, 1),
    "hyperloglog",
    "Internal commands for debugging HyperLogLog values",
)
def cmd_pfdebug(client: Client, argv: list[bytes]) -> Any:
    """PFDEBUG GETREG|DECODE|ENCODING|TODENSE key (pfdebugCommand). GETREG and TODENSE leave the value dense,
    and propagate when they converted it, as Redis does."""
    keyspace = client.server.keyspace
    db = client.db
    sub = argv[1].lower()
    name = argv[1].decode("utf-8", "replace")
    value = keyspace.lookup(db, argv[2])
    if value is None:
        raise CommandError("ERR The specified key does not exist")
    value = _check(value)
    if sub not in (b"getreg", b"decode", b"encoding", b"todense"):
        raise CommandError(f"ERR Unknown PFDEBUG subcommand '{name}'")
    if sub == b"encoding":
        return "dense" if value[4] == HLL_DENSE else "sparse"
    if sub == b"decode":
        if value[4] != HLL_SPARSE:
            raise CommandError("ERR HLL encoding is not sparse")
        return _decode_sparse(bytearray(value[HLL_HDR_SIZE:]))
    hll = _Hll(value, _max_sparse_bytes(client))
    converted = not hll.dense
    if converted:
        try:
            hll.promote()
        except _Corrupt:
            raise CommandError(INVALID_HLL) from None
        keyspace.set(db, argv[2], hll.value(invalidate=False), keep_ttl=True)
        keyspace.dirty += 1  # the encoding changed: propagate
    if sub == b"getreg":
        return list(_dense_values(hll.body))
    return 1 if converted else 0


def _decode_sparse(ops: bytearray) -> bytes:
    """PFDEBUG DECODE: the opcodes as ``z:<len>``, ``Z:<len>`` and ``v:<value>,<len>`` words."""
    words = []
    p = 0
    while p < len(ops):
        try:
            kind, span, value, size = _opcode(ops, p)
        except _Corrupt:
            break  # an XZERO cut at the end (Redis would read past the value)
        if kind == "zero":
            words.append(b"z:%d" % span)
        elif kind == "xzero":
            words.append(b"Z:%d" % span)
        else:
            words.append(b"v:%d,%d" % (value, span))
        p += size
    return b" ".join(words)
