"""Bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD[_RO] (Redis 7.0's
bitops.c).

Bits are numbered from the most significant bit of the first byte, as in Redis. Ranges (BYTE by default, or
BIT) are normalised exactly as bitcountCommand/bitposCommand do, then read as one Python integer of the bits
in range, so counting and searching run in C (``int.bit_count``, ``int.bit_length``) whatever the length.
Strings are immutable ``bytes`` here: SETBIT copies the value (O(length)), which is fine for the usual
bitmaps of a few kilobytes and slower than Redis for very large ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import get_string, parse_either, parse_int
from actors.data import events
from protocol import errors
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.client import Client

BIT_OFFSET_ERROR = "ERR bit offset is not an integer or out of range"
BIT_VALUE_ERROR = "ERR bit is not an integer or out of range"
BITPOS_BIT_ERROR = "ERR The bit argument must be 1 or 0."
BITOP_NOT_ERROR = "ERR BITOP NOT must be called with a single source key."


def _bit_offset(client: Client, raw: bytes, field_bits: int = 0) -> int:
    """getBitOffsetFromArgument: a non-negative integer whose byte fits in proto-max-bulk-len; with
    ``field_bits`` (BITFIELD), ``#N`` is N fields of that width."""
    if field_bits and raw[:1] == b"#":
        offset = parse_int(raw[1:], BIT_OFFSET_ERROR) * field_bits
    else:
        offset = parse_int(raw, BIT_OFFSET_ERROR)
    if offset < 0 or (offset >> 3) >= int(client.server.config["proto-max-bulk-len"]):
        raise CommandError(BIT_OFFSET_ERROR)
    return offset


def _bits(value: bytes, lo: int, hi: int) -> tuple[int, int]:
    """Bits ``lo`` .. ``hi`` (inclusive, MSB-first numbering) of ``value`` as (integer, width)."""
    first, last = lo >> 3, hi >> 3
    chunk = int.from_bytes(value[first : last + 1], "big") >> (7 - (hi & 7))
    width = hi - lo + 1
    return chunk & ((1 << width) - 1), width


def _range_unit(raw: bytes) -> bool:
    """True for BIT, False for BYTE (case-insensitive); anything else is a syntax error."""
    return parse_either(raw, b"bit", b"byte")


def _normalise(start: int, end: int, total: int) -> tuple[int, int]:
    """Negative indexes from the end, then clamped into [0, total - 1] (start > end: an empty range)."""
    if start < 0:
        start += total
    if end < 0:
        end += total
    start = max(start, 0)
    end = max(end, 0)
    if end >= total:
        end = total - 1
    return start, end


@command(
    "setbit", 4, "write denyoom", (1, 1, 1), "bitmap", "Sets or clears the bit at offset in the string value"
)
def cmd_setbit(client: Client, argv: list[bytes]) -> Any:
    offset = _bit_offset(client, argv[2])
    on = parse_int(argv[3], BIT_VALUE_ERROR)
    if on not in (0, 1):
        raise CommandError(BIT_VALUE_ERROR)
    keyspace = client.server.keyspace
    old = get_string(client, argv[1], read=False)
    byte, shift = offset >> 3, 7 - (offset & 7)
    current = old or b""
    was = (current[byte] >> shift) & 1 if byte < len(current) else 0
    grows = byte >= len(current)
    if was == on and not grows and old is not None:
        return was  # nothing changes: not dirty, not propagated (as Redis 7.0)
    value = bytearray(current)
    if grows:
        value.extend(bytes(byte + 1 - len(current)))
    if on:
        value[byte] |= 1 << shift
    else:
        value[byte] &= ~(1 << shift) & 0xFF
    keyspace.set(client.db, argv[1], bytes(value), keep_ttl=True)
    keyspace.dirty += 1
    keyspace.notify(client.db, events.STRING, b"setbit", argv[1])
    return was


@command(
    "getbit", 3, "readonly fast", (1, 1, 1), "bitmap", "Returns the bit value at offset in the string value"
)
def cmd_getbit(client: Client, argv: list[bytes]) -> Any:
    offset = _bit_offset(client, argv[2])
    value = get_string(client, argv[1])
    byte = offset >> 3
    if value is None or byte >= len(value):
        return 0
    return (value[byte] >> (7 - (offset & 7))) & 1


@command("bitcount", -2, "readonly", (1, 1, 1), "bitmap", "Count set bits in a string")
def cmd_bitcount(client: Client, argv: list[bytes]) -> Any:
    value = get_string(client, argv[1])
    if value is None:
        return 0  # before the arguments are read, as Redis
    if len(argv) == 2:
        return int.from_bytes(value, "big").bit_count()
    if len(argv) not in (4, 5):
        raise CommandError(errors.SYNTAX)
    start, end = parse_int(argv[2]), parse_int(argv[3])
    if start < 0 and end < 0 and start > end:
        return 0  # before the unit is read, as Redis 7.0 does
    in_bits = len(argv) == 5 and _range_unit(argv[4])
    total = len(value) * 8 if in_bits else len(value)
    start, end = _normalise(start, end, total)
    if start > end:
        return 0
    lo, hi = (start, end) if in_bits else (start * 8, end * 8 + 7)
    return _bits(value, lo, hi)[0].bit_count()


@command("bitpos", -3, "readonly", (1, 1, 1), "bitmap", "Find first bit set or clear in a string")
def cmd_bitpos(client: Client, argv: list[bytes]) -> Any:
    bit = parse_int(argv[2])
    if bit not in (0, 1):
        raise CommandError(BITPOS_BIT_ERROR)
    value = get_string(client, argv[1])
    if value is None:
        return -1 if bit else 0  # a missing key is an endless run of zeros
    end_given = False
    in_bits = False
    if len(argv) == 3:
        start, end = 0, len(value) - 1
    elif len(argv) <= 6:
        start = parse_int(argv[3])
        if len(argv) == 6:
            in_bits = _range_unit(argv[5])
        if len(argv) >= 5:
            end = parse_int(argv[4])
            end_given = True
        else:
            end = len(value) - 1
        total = len(value) * 8 if in_bits else len(value)
        start, end = _normalise(start, end, total)
    else:
        raise CommandError(errors.SYNTAX)
    if start > end:
        return -1  # an empty range holds neither a 0 nor a 1
    lo, hi = (start, end) if in_bits else (start * 8, end * 8 + 7)
    chunk, width = _bits(value, lo, hi)
    if not bit:
        chunk ^= (1 << width) - 1
    if chunk:
        return lo + width - chunk.bit_length()
    if bit or end_given:
        return -1
    return hi + 1  # looking for a 0 with no end given: the string continues with zeros


@command("bitop", -4, "write denyoom", (2, -1, 1), "bitmap", "Perform bitwise operations between strings")
def cmd_bitop(client: Client, argv: list[bytes]) -> Any:
    op = argv[1].lower()
    if op not in (b"and", b"or", b"xor", b"not"):
        raise CommandError(errors.SYNTAX)
    sources = argv[3:]
    if op == b"not" and len(sources) != 1:
        raise CommandError(BITOP_NOT_ERROR)
    values = [get_string(client, key) or b"" for key in sources]
    keyspace = client.server.keyspace
    dest = argv[2]
    length = max(len(v) for v in values)
    if not length:
        if keyspace.delete(client.db, dest):
            keyspace.dirty += 1
            keyspace.notify(client.db, events.GENERIC, b"del", dest)
        return 0
    numbers = [int.from_bytes(v.ljust(length, b"\x00"), "big") for v in values]
    result = numbers[0]
    if op == b"not":
        result ^= (1 << (8 * length)) - 1
    elif op == b"and":
        for n in numbers[1:]:
            result &= n
    elif op == b"or":
        for n in numbers[1:]:
            result |= n
    else:
        for n in numbers[1:]:
            result ^= n
    keyspace.set(client.db, dest, result.to_bytes(length, "big"))
    keyspace.dirty += 1
    keyspace.notify(client.db, events.STRING, b"set", dest)
    return length


# -- BITFIELD ---------------------------------------------------------------------------------------------

BITFIELD_TYPE_ERROR = (
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
)
WRAP, SAT, FAIL = "wrap", "sat", "fail"


def _bitfield_type(raw: bytes) -> tuple[bool, int]:
    """getBitfieldTypeFromArgument: (signed, bits) from i1..i64 or u1..u63 (lowercase i/u only)."""
    sign = raw[:1]
    if sign not in (b"i", b"u"):
        raise CommandError(BITFIELD_TYPE_ERROR)
    try:
        bits = parse_int(raw[1:])
    except CommandError:
        raise CommandError(BITFIELD_TYPE_ERROR) from None
    if bits < 1 or bits > (64 if sign == b"i" else 63):
        raise CommandError(BITFIELD_TYPE_ERROR)
    return sign == b"i", bits


def _get_field(value: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    first, last = offset >> 3, (offset + bits - 1) >> 3
    chunk = value[first : last + 1].ljust(last - first + 1, b"\x00")
    field = (int.from_bytes(chunk, "big") >> (7 - ((offset + bits - 1) & 7))) & ((1 << bits) - 1)
    if signed and field >> (bits - 1):
        field -= 1 << bits
    return field


def _set_field(value: bytearray, offset: int, bits: int, field: int) -> None:
    first, last = offset >> 3, (offset + bits - 1) >> 3
    shift = 7 - ((offset + bits - 1) & 7)
    mask = ((1 << bits) - 1) << shift
    chunk = int.from_bytes(value[first : last + 1], "big")
    chunk = (chunk & ~mask) | ((field & ((1 << bits) - 1)) << shift)
    value[first : last + 1] = chunk.to_bytes(last - first + 1, "big")


def _int64(x: int) -> int:
    """``x`` as C's int64_t holds it after unsigned arithmetic (two's complement wrap-around)."""
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >> 63 else x


def _overflow(value: int, incr: int, signed: bool, bits: int, mode: str) -> int | None:
    """What BITFIELD stores for ``value + incr`` (SET: ``incr`` 0), exactly as Redis's
    checkSigned/UnsignedBitfieldOverflow decide, int64 wrap-arounds of their bounds included (a SET of
    -2**63 into an i63 saturates to the maximum there): the sum, wrapped, saturated, or None for FAIL."""
    if signed:
        high = (1 << (bits - 1)) - 1
        low = -high - 1
        max_incr, min_incr = _int64(high - value), _int64(low - value)
        too_high = value > high or (bits != 64 and incr > max_incr) or (value >= 0 < incr and incr > max_incr)
        too_low = (
            value < low or (bits != 64 and incr < min_incr) or (value < 0 and incr < 0 and incr < min_incr)
        )
    else:
        high, low = (1 << bits) - 1, 0
        max_incr, min_incr = _int64(high - value), _int64(-value)
        too_high = value > high or (incr > 0 and incr > max_incr)
        too_low = not too_high and incr < 0 and incr < min_incr
    if not (too_high or too_low):
        return value + incr
    if mode == FAIL:
        return None
    if mode == SAT:
        return high if too_high else low
    wrapped = (value + incr) & ((1 << bits) - 1)
    if signed and wrapped >> (bits - 1):
        wrapped -= 1 << bits
    return wrapped


def _bitfield(client: Client, argv: list[bytes], read_only: bool) -> Any:
    ops: list[tuple[str, bool, int, int, int, str]] = []
    mode = WRAP
    highest_write = -1
    i = 2
    while i < len(argv):
        sub = argv[i].lower()
        remaining = len(argv) - i - 1
        if sub == b"overflow" and remaining >= 1:
            kind = argv[i + 1].lower()
            if kind not in (b"wrap", b"sat", b"fail"):
                raise CommandError("ERR Invalid OVERFLOW type specified")
            mode = kind.decode()
            i += 2
            continue
        if not ((sub == b"get" and remaining >= 2) or (sub in (b"set", b"incrby") and remaining >= 3)):
            raise CommandError(errors.SYNTAX)
        signed, bits = _bitfield_type(argv[i + 1])
        offset = _bit_offset(client, argv[i + 2], bits)
        number = 0
        if sub != b"get":
            highest_write = max(highest_write, offset + bits - 1)
            number = parse_int(argv[i + 3])
        ops.append((sub.decode(), signed, bits, offset, number, mode))
        i += 3 if sub == b"get" else 4
    if highest_write >= 0 and read_only:
        raise CommandError("ERR BITFIELD_RO only supports the GET subcommand")
    keyspace = client.server.keyspace
    current = get_string(client, argv[1], read=highest_write < 0)
    value = bytearray(current or b"")
    grown = False
    if highest_write >= 0:
        needed = (highest_write >> 3) + 1
        if current is None or len(value) < needed:
            value.extend(bytes(max(0, needed - len(value))))
            grown = True
    replies: list[int | None] = []
    changes = 0
    for op, signed, bits, offset, number, op_mode in ops:
        old = _get_field(value, offset, bits, signed)
        if op == "get":
            replies.append(old)
            continue
        if op == "incrby":
            stored = _overflow(old, number, signed, bits, op_mode)
            reply = stored
        else:
            # SET: an unsigned field reads the 64-bit value as unsigned (so -1 is 2**64-1, as in C).
            stored = _overflow(number if signed else number & ((1 << 64) - 1), 0, signed, bits, op_mode)
            reply = old
        if stored is None:
            replies.append(None)  # OVERFLOW FAIL: not written
            continue
        replies.append(reply)
        _set_field(value, offset, bits, stored)
        if grown or stored != old:
            changes += 1
    if grown or changes:
        keyspace.set(client.db, argv[1], bytes(value), keep_ttl=True)
    keyspace.dirty += changes  # as Redis: growth alone (every write failed) is not counted
    if changes:
        keyspace.notify(client.db, events.STRING, b"setbit", argv[1])
    return replies


@command(
    "bitfield", -2, "write denyoom", (1, 1, 1), "bitmap", "Perform arbitrary bitfield integer operations"
)
def cmd_bitfield(client: Client, argv: list[bytes]) -> Any:
    return _bitfield(client, argv, read_only=False)


@command("bitfield_ro", -2, "readonly fast", (1, 1, 1), "bitmap", "Perform bitfield GETs (read-only)")
def cmd_bitfield_ro(client: Client, argv: list[bytes]) -> Any:
    return _bitfield(client, argv, read_only=True)
