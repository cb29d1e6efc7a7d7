"""Redis's compact in-memory encodings as they appear inside an RDB file: listpack, ziplist, intset, zipmap.

Redis 7.0 dumps small hashes and sorted sets as one listpack blob, lists as a quicklist of listpacks, and
integer sets as an intset; older versions used ziplists and zipmaps. The reader needs all of them (formats as
listpack.c, ziplist.c, intset.c and zipmap.c define them); the writer only produces listpacks of strings (a
valid listpack needs no integer entries: LINDEX & co. read them back the same).

Decoders take the blob as ``bytes`` and return a flat list of ``bytes`` elements (integers rendered in decimal,
as Redis replies with them); for a hash or sorted set the list alternates field/member and value/score. Any
malformation raises ValueError with a short reason; the RDB reader adds the file offset.
"""

from __future__ import annotations

import struct

# Small integers as their decimal bytes: 7-bit listpack ints and 4-bit ziplist immediates are this common.
_SMALL_INT_TEXT = [b"%d" % i for i in range(128)]

LISTPACK_HEADER_BYTES = 6  # total bytes (u32) + number of elements (u16)
LISTPACK_EOF = 0xFF
LISTPACK_UNKNOWN_COUNT = 65535  # the u16 count saturates: the real count is found by walking the entries
ZIPLIST_HEADER_BYTES = 10  # zlbytes (u32) + zltail (u32) + zllen (u16)
ZIPLIST_EOF = 0xFF


def _listpack_backlen_size(entry_len: int) -> int:
    """How many bytes lpEncodeBacklen uses for an entry of ``entry_len`` bytes (encoding + data)."""
    if entry_len <= 127:
        return 1
    if entry_len < 16383:
        return 2
    if entry_len < 2097151:
        return 3
    if entry_len < 268435455:
        return 4
    return 5


def listpack_entries(lp: bytes) -> list[bytes]:
    """All elements of a listpack, in order."""
    size = len(lp)
    if size < LISTPACK_HEADER_BYTES + 1:
        raise ValueError("listpack too short")
    if int.from_bytes(lp[0:4], "little") != size:
        raise ValueError("listpack total bytes mismatch")
    count = lp[4] | lp[5] << 8
    out: list[bytes] = []
    append = out.append
    small = _SMALL_INT_TEXT
    pos = LISTPACK_HEADER_BYTES
    try:
        while True:
            b = lp[pos]
            if b < 0x80:  # 0xxxxxxx: 7-bit unsigned integer, then a 1-byte backlen
                append(small[b])
                pos += 2
            elif b < 0xC0:  # 10xxxxxx: string of up to 63 bytes
                n = b & 0x3F
                end = pos + 1 + n
                append(lp[pos + 1 : end])
                pos = end + 1  # an entry of at most 64 bytes has a 1-byte backlen
            elif b < 0xE0:  # 110xxxxx yyyyyyyy: 13-bit signed integer
                v = (b & 0x1F) << 8 | lp[pos + 1]
                append(b"%d" % (v - 8192 if v >= 4096 else v))
                pos += 3
            elif b < 0xF0:  # 1110xxxx yyyyyyyy: string of up to 4095 bytes
                n = (b & 0x0F) << 8 | lp[pos + 1]
                end = pos + 2 + n
                append(lp[pos + 2 : end])
                pos = end + _listpack_backlen_size(2 + n)
            elif b == 0xF0:  # 32-bit length string
                n = int.from_bytes(lp[pos + 1 : pos + 5], "little")
                end = pos + 5 + n
                append(lp[pos + 5 : end])
                pos = end + _listpack_backlen_size(5 + n)
            elif b == 0xF1:
                append(b"%d" % int.from_bytes(lp[pos + 1 : pos + 3], "little", signed=True))
                pos += 4
            elif b == 0xF2:
                append(b"%d" % int.from_bytes(lp[pos + 1 : pos + 4], "little", signed=True))
                pos += 5
            elif b == 0xF3:
                append(b"%d" % int.from_bytes(lp[pos + 1 : pos + 5], "little", signed=True))
                pos += 6
            elif b == 0xF4:
                append(b"%d" % int.from_bytes(lp[pos + 1 : pos + 9], "little", signed=True))
                pos += 10
            elif b == LISTPACK_EOF:
                break
            else:
                raise ValueError(f"invalid listpack entry encoding 0x{b:02x}")
    except IndexError:
        raise ValueError("listpack entry runs past its end") from None
    if pos != size - 1:
        raise ValueError("listpack end marker misplaced")
    if count != LISTPACK_UNKNOWN_COUNT and count != len(out):
        raise ValueError("listpack element count mismatch")
    return out


def ziplist_entries(zl: bytes) -> list[bytes]:
    """All elements of a ziplist (RDB versions up to 9), in order."""
    size = len(zl)
    if size < ZIPLIST_HEADER_BYTES + 1:
        raise ValueError("ziplist too short")
    if int.from_bytes(zl[0:4], "little") != size:
        raise ValueError("ziplist total bytes mismatch")
    count = zl[8] | zl[9] << 8
    out: list[bytes] = []
    append = out.append
    pos = ZIPLIST_HEADER_BYTES
    try:
        while True:
            b = zl[pos]
            if b == ZIPLIST_EOF:
                break
            pos += 1 if b < 254 else 5  # prevlen: 1 byte, or 0xFE + u32
            b = zl[pos]
            kind = b >> 6
            if kind == 0:  # 00pppppp: string up to 63 bytes
                end = pos + 1 + (b & 0x3F)
                append(zl[pos + 1 : end])
            elif kind == 1:  # 01pppppp qqqqqqqq: 14-bit length, big endian
                end = pos + 2 + ((b & 0x3F) << 8 | zl[pos + 1])
                append(zl[pos + 2 : end])
            elif kind == 2:  # 10000000 + u32 big-endian length
                end = pos + 5 + int.from_bytes(zl[pos + 1 : pos + 5], "big")
                append(zl[pos + 5 : end])
            elif b == 0xC0:  # int16
                end = pos + 3
                append(b"%d" % int.from_bytes(zl[pos + 1 : end], "little", signed=True))
            elif b == 0xD0:  # int32
                end = pos + 5
                append(b"%d" % int.from_bytes(zl[pos + 1 : end], "little", signed=True))
            elif b == 0xE0:  # int64
                end = pos + 9
                append(b"%d" % int.from_bytes(zl[pos + 1 : end], "little", signed=True))
            elif b == 0xF0:  # int24
                end = pos + 4
                append(b"%d" % int.from_bytes(zl[pos + 1 : end], "little", signed=True))
            elif b == 0xFE:  # int8
                end = pos + 2
                append(b"%d" % int.from_bytes(zl[pos + 1 : end], "little", signed=True))
            elif 0xF1 <= b <= 0xFD:  # 1111xxxx: immediate 0..12 stored as xxxx - 1
                end = pos + 1
                append(_SMALL_INT_TEXT[(b & 0x0F) - 1])
            else:
                raise ValueError(f"invalid ziplist entry encoding 0x{b:02x}")
            if end > size - 1:
                raise IndexError
            pos = end
    except IndexError:
        raise ValueError("ziplist entry runs past its end") from None
    if pos != size - 1:
        raise ValueError("ziplist end marker misplaced")
    if count != 65535 and count != len(out):
        raise ValueError("ziplist element count mismatch")
    return out


_INTSET_FORMATS = {2: "h", 4: "i", 8: "q"}


def intset_members(blob: bytes) -> list[bytes]:
    """The members of an intset (sorted integers of 2, 4 or 8 bytes each), as decimal bytes."""
    if len(blob) < 8:
        raise ValueError("intset too short")
    width = int.from_bytes(blob[0:4], "little")
    count = int.from_bytes(blob[4:8], "little")
    fmt = _INTSET_FORMATS.get(width)
    if fmt is None:
        raise ValueError(f"invalid intset encoding {width}")
    if len(blob) != 8 + width * count:
        raise ValueError("intset size mismatch")
    return [b"%d" % v for v in struct.unpack_from(f"<{count}{fmt}", blob, 8)]


def zipmap_entries(zm: bytes) -> list[bytes]:
    """A zipmap (RDB versions before 4's ziplists) as alternating field, value."""
    out: list[bytes] = []
    pos = 1  # the first byte is a saturating element count
    size = len(zm)
    try:
        while True:
            b = zm[pos]
            if b == 0xFF:
                break
            for is_value in (False, True):
                b = zm[pos]
                if b < 254:
                    n = b
                    pos += 1
                elif b == 254:
                    n = int.from_bytes(zm[pos + 1 : pos + 5], "little")
                    pos += 5
                else:
                    raise ValueError("invalid zipmap length")
                free = 0
                if is_value:
                    free = zm[pos]
                    pos += 1
                if pos + n > size:
                    raise IndexError
                out.append(zm[pos : pos + n])
                pos += n + free
    except IndexError:
        raise ValueError("zipmap entry runs past its end") from None
    if pos != size - 1:
        raise ValueError("zipmap end marker misplaced")
    return out


def _listpack_backlen(entry_len: int) -> bytes:
    """lpEncodeBacklen: the entry length, 7 bits a byte, most significant first, continuation bit on the rest."""
    if entry_len <= 127:
        return bytes((entry_len,))
    if entry_len < 16383:
        return bytes((entry_len >> 7, (entry_len & 127) | 128))
    if entry_len < 2097151:
        return bytes((entry_len >> 14, ((entry_len >> 7) & 127) | 128, (entry_len & 127) | 128))
    if entry_len < 268435455:
        return bytes(
            (
                entry_len >> 21,
                ((entry_len >> 14) & 127) | 128,
                ((entry_len >> 7) & 127) | 128,
                (entry_len & 127) | 128,
            )
        )
    return bytes(
        (
            entry_len >> 28,
            ((entry_len >> 21) & 127) | 128,
            ((entry_len >> 14) & 127) | 128,
            ((entry_len >> 7) & 127) | 128,
            (entry_len & 127) | 128,
        )
    )


# Header and backlen of every short string entry (the common case), precomputed.
_SHORT_STRING_HEAD = [bytes((0x80 | n,)) for n in range(64)]
_SHORT_STRING_BACKLEN = [_listpack_backlen(1 + n) for n in range(64)]


def listpack_entry_size(item: bytes) -> int:
    """Bytes one string entry takes in a listpack: encoding header + data + backlen."""
    n = len(item)
    head = 1 if n < 64 else 2 if n < 4096 else 5
    return head + n + _listpack_backlen_size(head + n)


def listpack_encode(items: list[bytes]) -> bytes:
    """A listpack holding ``items`` as string entries."""
    parts: list[bytes] = []
    heads, backlens = _SHORT_STRING_HEAD, _SHORT_STRING_BACKLEN
    for item in items:
        n = len(item)
        if n < 64:
            parts += (heads[n], item, backlens[n])
        elif n < 4096:
            parts += (bytes((0xE0 | n >> 8, n & 0xFF)), item, _listpack_backlen(2 + n))
        else:
            parts += (b"\xf0" + n.to_bytes(4, "little"), item, _listpack_backlen(5 + n))
    body = b"".join(parts)
    total = LISTPACK_HEADER_BYTES + len(body) + 1
    count = min(len(items), LISTPACK_UNKNOWN_COUNT)
    return total.to_bytes(4, "little") + count.to_bytes(2, "little") + body + b"\xff"
