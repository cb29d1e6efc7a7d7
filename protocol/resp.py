"""RESP2 and RESP3: the reply types commands return, their encoder, and request parsing (hiredis).

Commands return plain Python values and the connection encodes them for the protocol it speaks, so one
command table serves RESP2, RESP3 and the msgpack envelope alike:

    bytes            bulk string                    RESP2 ``$3\\r\\nfoo``      RESP3 same
    str              simple string (status)         ``+OK``
    int              integer                        ``:1``
    float            double                         RESP2 bulk ``"1.5"``      RESP3 ``,1.5``
    None             null                           RESP2 ``$-1``             RESP3 ``_``
    NULL_ARRAY       null array (EXEC aborted, ...) RESP2 ``*-1``             RESP3 ``_``
    list / tuple     array
    dict             map                            RESP2 flat array          RESP3 ``%``
    set / frozenset  set                            RESP2 array               RESP3 ``~``
    Verbatim         verbatim text (INFO)           RESP2 bulk                RESP3 ``=``
    Push             out-of-band message (pub/sub)  RESP2 array               RESP3 ``>``
    CommandError     error (inside EXEC replies)    ``-ERR ...``
"""

from __future__ import annotations

import math
import re
from typing import Any

import hiredis

from protocol.errors import CommandError, ProtocolError

CRLF = b"\r\n"
# Redis refuses a multibulk count above this (networking.c: processMultibulkBuffer).
MAX_MULTIBULK_COUNT = 1024 * 1024
# Inline requests (telnet, redis-cli's fallback) longer than this are refused, as Redis does (PROTO_INLINE_MAX_SIZE).
MAX_INLINE_BYTES = 64 * 1024


class _NullArray:
    """The RESP2 ``*-1`` reply: EXEC aborted by WATCH, a blocking pop that timed out."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()


class Verbatim(bytes):
    """Text meant for humans (INFO, CLIENT LIST): RESP3 sends it as a verbatim string with format ``txt``."""


class Push(list):  # type: ignore[type-arg]
    """An out-of-band message: pub/sub deliveries. RESP3 ``>``, RESP2 a plain array."""


OK = "OK"
_SMALL_INTS = [b":%d\r\n" % i for i in range(-1, 1025)]
_BULK_HEADERS = [b"$%d\r\n" % i for i in range(0, 1025)]
_ARRAY_HEADERS = [b"*%d\r\n" % i for i in range(0, 1025)]
_STATUS_CACHE: dict[str, bytes] = {}


def format_double(value: float) -> bytes:
    """A double as Redis 7.0 prints it in replies (``%.17g``; ``inf``/``-inf``)."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    return b"%.17g" % value


def format_float_human(value: float) -> bytes:
    """A float the way INCRBYFLOAT and HINCRBYFLOAT store it: shortest round-trip, no exponent, no ``.0``."""
    text = repr(value)
    if "e" in text or "E" in text:
        from decimal import Decimal

        text = format(Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.encode()


def encode_into(out: list[bytes], value: Any, resp3: bool) -> None:
    """Append the RESP encoding of ``value`` to ``out``. Fast cases first: bulk, status, integer, null."""
    kind = type(value)
    if kind is bytes:
        n = len(value)
        out.append(_BULK_HEADERS[n] if n <= 1024 else b"$%d\r\n" % n)
        out.append(value)
        out.append(CRLF)
    elif kind is str:
        cached = _STATUS_CACHE.get(value)
        if cached is None:
            cached = ("+" + value + "\r\n").encode()
            if len(_STATUS_CACHE) < 256:
                _STATUS_CACHE[value] = cached
        out.append(cached)
    elif kind is int:
        out.append(_SMALL_INTS[value + 1] if -1 <= value <= 1023 else b":%d\r\n" % value)
    elif value is None:
        out.append(b"_\r\n" if resp3 else b"$-1\r\n")
    elif kind is list or kind is tuple:
        n = len(value)
        out.append(_ARRAY_HEADERS[n] if n <= 1024 else b"*%d\r\n" % n)
        for item in value:
            encode_into(out, item, resp3)
    elif isinstance(value, CommandError):
        out.append(b"-" + str(value).replace("\r", " ").replace("\n", " ").encode() + CRLF)
    elif kind is float:
        if resp3:
            out.append(b"," + format_double(value) + CRLF)
        else:
            text = format_double(value)
            out.append(b"$%d\r\n%s\r\n" % (len(text), text))
    elif kind is dict:
        out.append((b"%%%d\r\n" if resp3 else b"*%d\r\n") % (len(value) if resp3 else 2 * len(value)))
        for key, item in value.items():
            encode_into(out, key, resp3)
            encode_into(out, item, resp3)
    elif kind is set or kind is frozenset:
        out.append((b"~%d\r\n" if resp3 else b"*%d\r\n") % len(value))
        for item in value:
            encode_into(out, item, resp3)
    elif value is NULL_ARRAY:
        out.append(b"_\r\n" if resp3 else b"*-1\r\n")
    elif kind is Verbatim:
        if resp3:
            out.append(b"=%d\r\ntxt:" % (len(value) + 4))
            out.append(bytes(value))
            out.append(CRLF)
        else:
            out.append(b"$%d\r\n" % len(value))
            out.append(bytes(value))
            out.append(CRLF)
    elif kind is Push:
        out.append((b">%d\r\n" if resp3 else b"*%d\r\n") % len(value))
        for item in value:
            encode_into(out, item, resp3)
    elif kind is bool:
        if resp3:
            out.append(b"#t\r\n" if value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if value else b":0\r\n")
    elif isinstance(value, bytes | bytearray | memoryview):
        encode_into(out, bytes(value), resp3)
    elif isinstance(value, int):
        encode_into(out, int(value), resp3)
    else:
        raise TypeError(f"cannot encode reply of type {kind.__name__}")


def encode(value: Any, resp3: bool = False) -> bytes:
    out: list[bytes] = []
    encode_into(out, value, resp3)
    return b"".join(out)


def encode_command(argv: list[bytes] | tuple[bytes, ...]) -> bytes:
    """A command as a RESP array of bulk strings: the form of the AOF and of the replication stream."""
    parts = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        parts.append(b"$%d\r\n" % len(arg))
        parts.append(arg)
        parts.append(CRLF)
    return b"".join(parts)


_HEAD = re.compile(rb"\*(-?\d+)\r\n(?:\$(-?\d+)\r\n)?")


class RequestParser:
    """Turns the bytes a client sends into commands (lists of bytes).

    Multibulk requests (what every client library sends) are parsed by hiredis; inline requests (telnet,
    ``PING\\r\\n``) by a small splitter that honours quotes as Redis's ``sdssplitargs`` does. Any malformed input
    raises ``ProtocolError``; the caller replies with it and closes the connection.
    """

    __slots__ = ("_reader", "_inline", "max_bulk_len", "max_query_buffer")

    def __init__(self, max_bulk_len: int = 512 * 1024 * 1024, max_query_buffer: int = 1024 * 1024 * 1024) -> None:
        self._reader = hiredis.Reader()
        self._inline = b""
        self.max_bulk_len = max_bulk_len
        self.max_query_buffer = max_query_buffer

    def feed(self, data: bytes) -> None:
        if self._inline or (data[:1] != b"*" and not self._reader.has_data()):
            self._inline += data
            return
        if not self._reader.has_data():
            # A fresh multibulk request: refuse absurd headers now rather than buffer gigabytes first.
            head = _HEAD.match(data, 0, 48)
            if head is not None:
                count = int(head.group(1))
                if count > MAX_MULTIBULK_COUNT:
                    raise ProtocolError("invalid multibulk length")
                if head.group(2) is not None and int(head.group(2)) > self.max_bulk_len:
                    raise ProtocolError("invalid bulk length")
        self._reader.feed(data)

    def pending_bytes(self) -> int:
        return int(self._reader.len()) + len(self._inline)

    def parse(self, out: list[list[bytes]]) -> None:
        """Append every complete command buffered so far to ``out``."""
        if self._inline:
            self._parse_inline(out)
            if self._inline:
                return
        reader = self._reader
        max_bulk = self.max_bulk_len
        while True:
            try:
                cmd = reader.gets()
            except hiredis.ProtocolError as exc:
                raise ProtocolError(_translate_hiredis_error(str(exc))) from None
            if cmd is False:
                break
            if type(cmd) is not list:
                raise ProtocolError(f"expected '*', got '{_kind_char(cmd)}'")
            for arg in cmd:
                if type(arg) is not bytes:
                    raise ProtocolError(f"expected '$', got '{_kind_char(arg)}'")
                if len(arg) > max_bulk:
                    raise ProtocolError("invalid bulk length")
            if cmd:
                out.append(cmd)
        if self.pending_bytes() > self.max_query_buffer:
            raise ProtocolError("query buffer limit exceeded")

    def _parse_inline(self, out: list[list[bytes]]) -> None:
        buf = self._inline
        while buf and buf[:1] != b"*":
            newline = buf.find(b"\n")
            if newline < 0:
                if len(buf) > MAX_INLINE_BYTES:
                    raise ProtocolError("too big inline request")
                break
            line = buf[:newline]
            buf = buf[newline + 1 :]
            if line.endswith(b"\r"):
                line = line[:-1]
            argv = split_inline(line)
            if argv:
                out.append(argv)
        if buf[:1] == b"*":
            self._inline = b""
            self.feed(buf)
        else:
            self._inline = buf


def _kind_char(value: Any) -> str:
    if type(value) is int:
        return ":"
    if type(value) is list:
        return "*"
    if isinstance(value, Exception):
        return "-"
    return "+"


def _translate_hiredis_error(message: str) -> str:
    if "multi-bulk length" in message.lower():
        return "invalid multibulk length"
    if "bulk string length" in message.lower() or "bad bulk" in message.lower():
        return "invalid bulk length"
    match = re.search(r'got "(.)" as reply type byte', message)
    if match:
        return f"expected '$', got '{match.group(1)}'"
    return message


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}


def split_inline(line: bytes) -> list[bytes]:
    """Split an inline request into arguments like Redis's ``sdssplitargs``: quotes, escapes, ``\\xHH``."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\r\n\v\f":
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            if in_double:
                if i >= n:
                    raise ProtocolError("unbalanced quotes in request")
                c = line[i]
                if c == 0x5C and i + 3 < n and line[i + 1] == ord("x") and _is_hex(line[i + 2 : i + 4]):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    current += _ESCAPES.get(line[i], bytes([line[i]]))
                elif c == ord('"'):
                    if i + 1 < n and line[i + 1] not in b" \t\r\n\v\f":
                        raise ProtocolError("unbalanced quotes in request")
                    in_double = False
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if i >= n:
                    raise ProtocolError("unbalanced quotes in request")
                c = line[i]
                if c == 0x5C and i + 1 < n and line[i + 1] == ord("'"):
                    i += 1
                    current.append(ord("'"))
                elif c == ord("'"):
                    if i + 1 < n and line[i + 1] not in b" \t\r\n\v\f":
                        raise ProtocolError("unbalanced quotes in request")
                    in_single = False
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \t\r\n\v\f":
                    break
                if c == ord('"'):
                    in_double = True
                elif c == ord("'"):
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))


def _is_hex(two: bytes) -> bool:
    return len(two) == 2 and all(ch in b"0123456789abcdefABCDEF" for ch in two)
