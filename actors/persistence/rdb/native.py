"""The two byte-crunching primitives of the RDB format: Redis's CRC64 and LZF, at native speed when possible.

CRC64 is Redis's variant ("CRC-64/Jones", as crc64.c: polynomial 0xad93d23594c935a9, reflected input and
output, initial value 0, no final xor; check value crc64(0, "123456789") == 0xe9c6d914c4b8d9ca). LZF is
liblzf's format, as lzf_c.c / lzf_d.c. Native code comes from the ``anycrc`` and ``python-neo-lzf`` wheels
(install_requires); if either cannot be imported (an odd platform with no wheel), pure-Python versions take
over so an RDB can still be read and written, just slower (and without compression when writing).

Functions here are pure and thread-free: the RDB writer runs them in a forked child.
"""

from __future__ import annotations

from collections.abc import Callable

# CRC64 (Jones), reflected: the table form of crc64.c's bit-by-bit definition.
CRC64_POLY_REFLECTED = 0x95AC9329AC4BC9B5  # bit-reversed 0xad93d23594c935a9


def _make_crc64_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ CRC64_POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64_TABLE = _make_crc64_table()


def crc64_pure(crc: int, data: bytes | bytearray | memoryview) -> int:
    """Continue ``crc`` over ``data`` (start with 0). Slow (a few MB/s): only a fallback."""
    table = _CRC64_TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def lzf_decompress_pure(data: bytes, expected_len: int) -> bytes | None:
    """liblzf's lzf_decompress: None when ``data`` is malformed or does not expand to ``expected_len``."""
    out = bytearray()
    pos, size = 0, len(data)
    try:
        while pos < size:
            ctrl = data[pos]
            pos += 1
            if ctrl < 32:  # a literal run of ctrl + 1 bytes
                run = ctrl + 1
                if pos + run > size:
                    return None
                out += data[pos : pos + run]
                pos += run
            else:  # a back reference: length in the top 3 bits (7 = one more length byte), 13-bit offset
                length = ctrl >> 5
                if length == 7:
                    length += data[pos]
                    pos += 1
                ref = len(out) - ((ctrl & 0x1F) << 8) - data[pos] - 1
                pos += 1
                if ref < 0:
                    return None
                for i in range(length + 2):  # byte by byte: the reference may overlap what it produces
                    out.append(out[ref + i])
    except IndexError:
        return None
    if len(out) != expected_len:
        return None
    return bytes(out)


crc64: Callable[[int, bytes | bytearray | memoryview], int]
lzf_compress: Callable[[bytes, int], bytes | None] | None
lzf_decompress: Callable[[bytes, int], bytes | None]

try:
    import anycrc

    _REDIS_CRC = anycrc.Model("CRC64-REDIS")

    def _crc64_native(crc: int, data: bytes | bytearray | memoryview) -> int:
        if not data:
            return crc
        return int(_REDIS_CRC.calc(data, crc))

    crc64 = _crc64_native
except ImportError:  # pragma: no cover - depends on the platform's wheels
    crc64 = crc64_pure

try:
    import lzf as _lzf

    def _lzf_compress_native(data: bytes, max_len: int) -> bytes | None:
        """The compressed form of ``data`` if it fits in ``max_len`` bytes, else None."""
        result: bytes | None = _lzf.compress(data, max_len)
        return result

    def _lzf_decompress_native(data: bytes, expected_len: int) -> bytes | None:
        try:
            result: bytes | None = _lzf.decompress(data, expected_len)
        except ValueError:
            return None
        if result is None or len(result) != expected_len:
            return None
        return result

    lzf_compress = _lzf_compress_native
    lzf_decompress = _lzf_decompress_native
except ImportError:  # pragma: no cover - depends on the platform's wheels
    lzf_compress = None
    lzf_decompress = lzf_decompress_pure
