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
    MultiReply       several replies to one command, one after the other (SUBSCRIBE a b: one per channel)
    CommandError     error (inside EXEC replies)    ``-ERR ...``
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn

import hiredis

from protocol.errors import CommandError, ProtocolError

CRLF = b"\r\n"
# The most arguments a request may have. Redis 7.0 allows up to INT_MAX because it grows argv as arguments
# arrive; hiredis allocates the whole array when it reads the header, so one "*2000000000" would cost 16 GB of
# address space and seconds of freeing. Redis 6's limit (1024*1024) keeps that to 8 MB.
MAX_MULTIBULK_COUNT = 1024 * 1024
# A '*' followed by 7+ digits (>= 1,000,000): a count that may exceed MAX_MULTIBULK_COUNT. Data containing it is
# checked by the header walker before hiredis sees it (payload bytes can match too; the walk tells them apart).
# Searched as "*0000000" in a copy with every digit turned into '0': a C translate and memmem cost a fifth of a
# regex search, which matters as every read is searched.
_BIG_COUNT_MARK = b"*0000000"
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
# The lowest proto-max-bulk-len (and client-query-buffer-limit) CONFIG accepts, as in Redis: 1 MB.
MIN_BULK_LIMIT = 1024 * 1024
# "No item fetched yet" for RequestParser._drain_multibulk (hiredis items can be None or False).
_NO_ITEM: Any = object()
_join = b"".join


def _has_big_count(data: bytes) -> bool:
    """True if ``data`` holds a '*' followed by 7+ digits (see _BIG_COUNT_MARK)."""
    return _BIG_COUNT_MARK in data.translate(_DIGITS_AS_ZERO)


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


class BigNumber(bytes):
    """A number too big for an integer (a script's {big_number=...}): RESP3 ``(``, RESP2 a bulk string."""


class Push(list):
    """An out-of-band message: pub/sub deliveries. RESP3 ``>``, RESP2 a plain array."""


class MultiReply(list):
    """Several consecutive replies to one command: (P)SUBSCRIBE and (P)UNSUBSCRIBE confirm each channel apart.

    Encoded as its items one after the other, with no header. Inside an EXEC array it still counts as one
    element, so the array's header is one short, exactly as Redis sends it. The native protocol sends the
    items as one list (one reply per request).
    """


OK = "OK"
# The encoded form of OK, appended directly by the hot paths.
OK_REPLY = b"+OK\r\n"
_SMALL_INTS = [b":%d\r\n" % i for i in range(-1, 1025)]
BULK_HEADERS = [b"$%d\r\n" % i for i in range(0, 1025)]
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
        out.append(BULK_HEADERS[n] if n <= 1024 else b"$%d\r\n" % n)
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
            if type(item) is bytes:
                # Arrays of bulk strings (LRANGE, SMEMBERS, MGET, ...) are encoded here: a call per element
                # is most of what such a reply costs.
                n = len(item)
                out += (BULK_HEADERS[n] if n <= 1024 else b"$%d\r\n" % n, item, CRLF)
            else:
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
    elif kind is MultiReply:
        for item in value:
            encode_into(out, item, resp3)
    elif kind is bool:
        if resp3:
            out.append(b"#t\r\n" if value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if value else b":0\r\n")
    elif kind is BigNumber and resp3:
        out.append(b"(" + value + CRLF)
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


# encode_command's templates for the commonest argument counts: one %-format instead of a join of 3n+1 parts.
_COMMAND_2 = b"*2\r\n" + b"$%d\r\n%b\r\n" * 2
_COMMAND_3 = b"*3\r\n" + b"$%d\r\n%b\r\n" * 3


def encode_command(argv: list[bytes] | tuple[bytes, ...]) -> bytes:
    """A command as a RESP array of bulk strings: the form of the AOF and of the replication stream."""
    n = len(argv)
    if n == 3:  # SET, HGET-style writes: the bulk of a write-heavy stream
        a, b, c = argv
        return _COMMAND_3 % (len(a), a, len(b), b, len(c), c)
    if n == 2:
        a, b = argv
        return _COMMAND_2 % (len(a), a, len(b), b)
    parts = [b"*%d\r\n" % n]
    for arg in argv:
        parts.append(b"$%d\r\n" % len(arg))
        parts.append(arg)
        parts.append(CRLF)
    return b"".join(parts)


class RequestParser:
    """Turns the bytes a client sends into commands (lists of bytes).

    Multibulk requests (what every client library sends) are parsed by hiredis; inline requests (telnet,
    ``PING\\r\\n``) by a small splitter that honours quotes as Redis's ``sdssplitargs`` does. Any malformed input
    raises ``ProtocolError``; the caller replies with it and closes the connection.

    hiredis does not say where it stands in its buffer, so the parser tracks command boundaries itself: a read
    that ends exactly after a command (the usual case) leaves the parser "at a boundary", where the next byte
    decides between multibulk (``*``) and inline. When a read ends inside a command, a header walker checks the
    headers of what has arrived so far (skipping payloads by their length, so it costs per header, not per
    byte): that is how an oversized ``$<len>`` is refused as soon as its header arrives, as Redis does, and
    how inline commands pipelined behind multibulk ones are found again after hiredis refuses them.
    """

    __slots__ = (
        "_reader",
        "_inline",
        "max_bulk_len",
        "max_query_buffer",
        "_boundary",
        "_fed",
        "_fed_start",
        "_fed_end",
        "_walk_pos",
        "_walk_left",
        "_cmd_start",
        "_config",
        "_tail",
        "_error",
        "_ahead",
    )

    def __init__(
        self,
        max_bulk_len: int = 512 * 1024 * 1024,
        max_query_buffer: int = 1024 * 1024 * 1024,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self._reader = hiredis.Reader()
        self._inline = b""
        self.max_bulk_len = max_bulk_len
        self.max_query_buffer = max_query_buffer
        # With a node's live configuration, the limits follow CONFIG SET (proto-max-bulk-len and
        # client-query-buffer-limit apply to connections already open, as in Redis).
        self._config = config
        # The last bytes given to hiredis, so a huge count split across two reads is still seen.
        self._tail = b""
        # A refused header found before hiredis saw it: raised once the commands ahead of it are parsed.
        self._error: ProtocolError | None = None
        # True when every byte given to hiredis belongs to a command it has returned: the next byte starts a
        # new request, so a byte other than '*' there starts an inline one.
        self._boundary = True
        # Bytes given to hiredis since the last boundary, from absolute offset _fed_start to _fed_end (chunks
        # the header walker has passed are dropped), and where the walker resumes: _walk_pos (absolute; may
        # lie beyond _fed_end inside a payload) with _walk_left bulk headers still due (-1: a command starts).
        self._fed: list[bytes] = []
        self._fed_start = 0
        self._fed_end = 0
        self._walk_pos = 0
        self._walk_left = -1
        # Absolute offset where the command the walker is inside began: what is pending for the query buffer.
        self._cmd_start = 0
        # Items hiredis has returned minus requests the walker has finished: 0 when both stand at one place.
        self._ahead = 0

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self._inline or (self._boundary and data[:1] != b"*"):
            self._inline += data
            return
        self._feed_reader(data)

    def _feed_reader(self, data: bytes) -> None:
        # At a boundary the last bytes fed were a command's final CRLF, so no count can straddle the two
        # reads: the (common) case of whole commands per read searches only the new bytes. Otherwise a split
        # count has its '*' in the previous read's tail.
        tail = self._tail
        straddles = not self._boundary and b"*" in tail and _has_big_count(tail + data[:16])
        self._boundary = False
        self._fed.append(data)
        self._fed_end += len(data)
        if straddles or _has_big_count(data) or len(data) > self.max_bulk_len:
            # Check the headers before hiredis allocates an array for a count it should never see (an inline
            # request found on the way is left for _recover_inline, once hiredis gets there).
            try:
                self._walk()
            except ProtocolError as exc:
                # The commands before the refused one still run, as in Redis: hiredis gets only those bytes,
                # and parse() raises the error once it has returned them.
                keep = getattr(exc, "command_at", self._fed_end) - (self._fed_end - len(data))
                data = data[: max(keep, 0)]
                self._error = exc
        self._tail = data[-8:]
        self._reader.feed(data)

    def _reset_walk(self) -> None:
        self._boundary = True
        self._fed = []
        self._fed_start = self._fed_end = self._walk_pos = self._cmd_start = self._ahead = 0
        self._walk_left = -1

    def pending_bytes(self) -> int:
        """Bytes of the incomplete request (what Redis's client-query-buffer-limit bounds)."""
        return (0 if self._boundary else self._fed_end - self._cmd_start) + len(self._inline)

    def _read_limits(self) -> None:
        """Take the limits from the live configuration, if the parser follows one."""
        config = self._config
        if config is not None:
            self.max_bulk_len = config["proto-max-bulk-len"]
            self.max_query_buffer = config["client-query-buffer-limit"]

    def parse(self, out: list[list[bytes]]) -> None:
        """Append every complete command buffered so far to ``out``."""
        self._read_limits()
        while True:
            if self._inline:
                self._parse_inline(out)
                if self._inline:
                    break
            if self._boundary or not self._drain_multibulk(out):
                break
        self._raise_pending_errors()

    def _raise_pending_errors(self) -> None:
        """After a parse: the refused header found on the way, or a query buffer over its limit."""
        if self._error is not None:
            raise self._error
        # At a boundary with no inline request pending nothing is buffered (the common end of a read).
        if (not self._boundary or self._inline) and self.pending_bytes() > self.max_query_buffer:
            raise ProtocolError("query buffer limit exceeded", silent=True)

    def feed_parse(self, data: bytes, out: list[list[bytes]]) -> None:
        """``feed(data)`` then ``parse(out)``: a connection's per-read call, fast for whole commands.

        The common read holds one or more complete multibulk commands and nothing else. That case goes
        straight through hiredis, skipping the boundary bookkeeping the general path keeps for reads that end
        inside a command or mix in inline requests; at the first sign of anything else (an incomplete command,
        an odd reply type, a hiredis error) the read is handed to the general path exactly where it stands.
        """
        # A read with a big count takes the careful way (the header walker checks it before hiredis sees it).
        # A read under MIN_BULK_LIMIT cannot exceed proto-max-bulk-len, whatever CONFIG SET made of it since
        # the limits were last read.
        if (
            not self._boundary
            or self._inline
            or data[:1] != b"*"
            or self._error is not None
            or _has_big_count(data)
            or len(data) >= MIN_BULK_LIMIT
            or len(data) > self.max_bulk_len
        ):
            self._read_limits()  # feed() checks with them (the header walker runs before hiredis sees a count)
            self.feed(data)
            self.parse(out)
            return
        reader = self._reader
        reader.feed(data)
        returned = 0
        while True:
            first: Any
            try:
                first = reader.gets()
            except hiredis.ProtocolError as exc:
                first = exc
            if type(first) is not list or not first:
                break
            try:
                _join(first)  # every argument a bulk string (see _drain_multibulk)
            except TypeError:
                break
            out.append(first)
            returned += 1
            if not reader.has_data():
                return  # at a boundary again, as before the call (where _tail plays no part)
        # Hand over: the state _feed_reader would have set for this read, with the commands taken so far.
        self._boundary = False
        self._fed.append(data)
        self._fed_end += len(data)
        self._tail = data[-8:]
        self._ahead += returned
        self._read_limits()
        if self._drain_multibulk(out, first):
            self.parse(out)  # inline input follows: the general loop takes it from here
            return
        self._raise_pending_errors()

    def _drain_multibulk(self, out: list[list[bytes]], first: Any = _NO_ITEM) -> bool:
        """Take every complete multibulk command from hiredis. True if inline input follows (parse it next).

        ``first``: what hiredis already returned (or raised) for the next item, when ``feed_parse`` hands over.
        """
        reader = self._reader
        gets = reader.gets
        has_data = reader.has_data
        append = out.append
        # Commands returned by this call, added to ``_ahead`` before anything else reads it (kept in a local
        # because this loop runs once per command of every pipeline).
        ahead = 0
        while True:
            try:
                if first is _NO_ITEM:
                    cmd = gets()
                else:
                    cmd, first = first, _NO_ITEM
                    if isinstance(cmd, hiredis.ProtocolError):
                        raise cmd
            except hiredis.ProtocolError as exc:
                # hiredis refused a type byte: an inline request pipelined behind multibulk ones, or an error
                # the walker names as Redis does (an oversized length, a '$' missing).
                self._ahead += ahead
                if self._recover_inline(catch_up=True):
                    return True
                self._walk(catch_up=False)
                raise ProtocolError(_translate_hiredis_error(str(exc))) from None
            if cmd is False:
                # The read ended inside a command (or inside an inline one hiredis waits on): walk the headers.
                self._ahead += ahead
                return self._recover_inline(catch_up=False)
            if type(cmd) is not list:
                # "*-1" (Redis skips it), or a top-level type hiredis accepted ("+x", ":1", "$-1") that Redis
                # reads as an inline request.
                self._ahead += ahead
                ahead = 0
                if self._recover_inline(catch_up=True):
                    return True
                if cmd is not None:
                    raise ProtocolError(f"expected '*', got '{_kind_char(cmd)}'")
                self._ahead += 1
                if not has_data():
                    self._reset_walk()
                    return False
                continue
            ahead += 1
            try:
                # Every argument must be a bulk string: join() refuses anything else hiredis may return (None,
                # int, list, an error), in C, for a fraction of the cost of a type() test per argument.
                _join(cmd)
            except TypeError:
                self._ahead += ahead
                for arg in cmd:
                    if type(arg) is not bytes:
                        if arg is None:
                            raise ProtocolError("invalid bulk length") from None
                        raise ProtocolError(f"expected '$', got '{_kind_char(arg)}'") from None
                raise
            # No length check needed here: a command that spanned reads had every header walked (see _walk), and
            # one inside a single read is shorter than the read, which is far below proto-max-bulk-len's 1 MB
            # minimum. The rare huge read is checked in _feed_reader.
            if cmd:
                append(cmd)
            # Asked here, between whole commands: after an incomplete gets() hiredis has already consumed the
            # partial header, and has_data() would say nothing is pending.
            if not has_data():
                self._reset_walk()
                return False

    def _recover_inline(self, catch_up: bool) -> bool:
        """If the input continues with an inline request where hiredis stands, switch to inline parsing there."""
        rest = self._walk(catch_up)
        if rest is None:
            return False
        self._reader = hiredis.Reader()
        self._reset_walk()
        self._inline = rest
        return True

    def _refuse(self, command_at: int, detail: str) -> NoReturn:
        """A header Redis would refuse, in the command starting at absolute offset ``command_at``."""
        error = ProtocolError(detail)
        error.command_at = command_at  # type: ignore[attr-defined]
        raise error

    def _walk(self, catch_up: bool = False) -> bytes | None:
        """Check multibulk headers from where the walk stopped, skipping payloads by their length.

        Raises ``ProtocolError`` for a header Redis would refuse. Returns the rest of the input when, at the
        point hiredis has reached, a request does not start with ``*`` (an inline request), else None. With
        ``catch_up`` the walk stops at hiredis's position; without, it checks everything that has arrived.
        ``_ahead`` (items hiredis returned minus commands the walker finished) says where hiredis is.
        """
        if self._walk_pos >= self._fed_end:
            return None  # still inside a payload whose header was checked
        buf = b"".join(self._fed) if len(self._fed) != 1 else self._fed[0]
        base = self._fed_start
        i = self._walk_pos - base
        cmd_start = self._cmd_start - base
        n = len(buf)
        left = self._walk_left
        rest: bytes | None = None
        while i < n:
            if left < 0:  # a request starts here
                cmd_start = i
                if buf[i] != 0x2A:  # '*'
                    if self._ahead == 0:  # hiredis stands here too (< 0: the walker ran ahead of it)
                        rest = buf[i:]
                    break
                if catch_up and self._ahead <= 0:
                    break
            eol = buf.find(b"\r\n", i)
            if eol < 0:
                if n - i > MAX_INLINE_BYTES:
                    self._refuse(
                        base + cmd_start,
                        "too big mbulk count string" if left < 0 else "too big bulk count string",
                    )
                break
            if left < 0:
                count = _header_int(buf, i + 1, eol)
                if count is None or count > MAX_MULTIBULK_COUNT:
                    self._refuse(base + cmd_start, "invalid multibulk length")
                i = eol + 2
                if count > 0:
                    left = count
                else:
                    self._ahead -= 1  # *0 and *-1 are whole requests (that Redis skips)
            else:
                if buf[i] != 0x24:  # '$'
                    self._refuse(base + cmd_start, f"expected '$', got '{chr(buf[i])}'")
                length = _header_int(buf, i + 1, eol)
                if length is None or length < 0 or length > self.max_bulk_len:
                    self._refuse(base + cmd_start, "invalid bulk length")
                i = eol + 2 + length + 2
                left -= 1
                if left == 0:
                    left = -1
                    self._ahead -= 1
        if left < 0 and i == n:
            cmd_start = i  # the last request is complete: nothing of a next one has arrived
        self._walk_left = left
        self._walk_pos = base + i
        self._cmd_start = base + cmd_start
        if i >= n:
            self._fed = []
            self._fed_start = self._fed_end
        else:
            self._fed = [buf[i:]]
            self._fed_start = self._walk_pos
        return rest

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
            self._feed_reader(buf)
        else:
            self._inline = buf


def _header_int(buf: bytes, start: int, end: int) -> int | None:
    """The number in a ``*<n>`` or ``$<n>`` header line, as Redis's string2ll reads it; None if malformed."""
    text = buf[start:end]
    body = text[1:] if text[:1] == b"-" else text
    if not body.isdigit() or len(text) > 20:
        return None
    return int(text)


def _kind_char(value: Any) -> str:
    if type(value) is int:
        return ":"
    if type(value) is list:
        return "*"
    if type(value) is float:
        return ","
    if isinstance(value, Exception):
        return "-"
    return "+"


def _translate_hiredis_error(message: str) -> str:
    """hiredis's wording of a protocol error -> Redis's (``invalid bulk length``, ``expected '$', got 'x'``)."""
    lowered = message.lower()
    if "multi-bulk length" in lowered or "multibulk length" in lowered:
        return "invalid multibulk length"
    if "bulk string length" in lowered or "bad bulk" in lowered:
        return "invalid bulk length"
    if "integer" in lowered:
        return "expected '$', got ':'"
    if "nested" in lowered:
        return "expected '$', got '*'"
    match = re.search(r'got "((?:[^"\\]|\\.)+)" as reply type byte', message)
    if match:
        try:
            char = match.group(1).encode("latin-1").decode("unicode_escape")
        except (UnicodeDecodeError, UnicodeEncodeError):
            char = match.group(1)
        return f"expected '$', got '{char}'"
    return message.removeprefix("Protocol error, ")


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
