"""RESP request parsing: the bytes a client sends -> commands (lists of bytes), on top of hiredis.

Multibulk requests (``*<n>`` then ``$<len>`` arguments, what every client library sends) go through hiredis;
inline requests (telnet, ``PING\\r\\n``, redis-cli's fallback) through ``split_inline``, which follows Redis's
``sdssplitargs``. The sizes a request may have are a ``Limits`` value, Redis's by default; a node's parser
follows its live configuration for the two CONFIG SET can change (proto-max-bulk-len,
client-query-buffer-limit). Every malformed input raises ``ProtocolError`` with Redis's wording.

Replies (the encoder) live in protocol/resp.py; this module imports nothing of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import hiredis

from protocol.errors import ProtocolError

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_INLINE_BYTES",
    "MAX_MULTIBULK_COUNT",
    "MIN_BULK_LIMIT",
    "Limits",
    "RequestParser",
    "split_inline",
]

# The most arguments a request may have. Redis 7.0 allows up to INT_MAX because it grows argv as arguments
# arrive; hiredis allocates the whole array when it reads the header, so one "*2000000000" would cost 16 GB of
# address space and seconds of freeing. Redis 6's limit (1024*1024) keeps that to 8 MB.
MAX_MULTIBULK_COUNT = 1024 * 1024
# Inline requests (telnet, redis-cli's fallback) longer than this are refused, as Redis does (PROTO_INLINE_MAX_SIZE).
MAX_INLINE_BYTES = 64 * 1024
# Redis's defaults of proto-max-bulk-len (512 MB) and client-query-buffer-limit (1 GB).
DEFAULT_MAX_BULK_LEN = 512 * 1024 * 1024
DEFAULT_MAX_QUERY_BUFFER = 1024 * 1024 * 1024
# A '*' followed by 7+ digits (>= 1,000,000): a count that may exceed MAX_MULTIBULK_COUNT. Data containing it is
# checked by the header walker before hiredis sees it (payload bytes can match too; the walk tells them apart).
# Searched as "*0000000" in a copy with every digit turned into '0': a C translate and memmem cost a fifth of a
# regex search, which matters as every read is searched.
_BIG_COUNT_MARK = b"*0000000"
# Substrings are searched with ``find`` rather than ``in`` on these per-read paths: CPython 3.11's
# ``bytes.__contains__`` first tries its argument as an integer and formats (then clears) a TypeError for a
# bytes argument, ~1,800 instructions per test, several times a request's parse.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
# The lowest proto-max-bulk-len (and client-query-buffer-limit) CONFIG accepts, as in Redis: 1 MB.
MIN_BULK_LIMIT = 1024 * 1024
# After a request this big (bytes since the last boundary) the hiredis reader is replaced (see _reset_walk).
RELEASE_READER_BYTES = 4 * 1024 * 1024
# "No item fetched yet" for RequestParser._drain_multibulk (hiredis items can be None or False).
_NO_ITEM: Any = object()
_join = b"".join


# A negative multibulk count at the start of a request ("*-10\r\n"): Redis reads it as an empty request and
# skips it (processMultibulkBuffer: ll <= 0); hiredis refuses any count below -1.
_NEGATIVE_COUNT_RE = re.compile(rb"\*-\d+\r\n")


def _skip_negative_counts(data: bytes) -> bytes:
    """``data`` without the negative-count requests it starts with (complete header lines only)."""
    while True:
        match = _NEGATIVE_COUNT_RE.match(data)
        if match is None:
            return data
        data = data[match.end() :]


def _has_big_count(data: bytes) -> bool:
    """True if ``data`` holds a '*' followed by 7+ digits (see _BIG_COUNT_MARK)."""
    return data.translate(_DIGITS_AS_ZERO).find(_BIG_COUNT_MARK) >= 0


@dataclass(frozen=True, slots=True)
class Limits:
    """How big a request may be. Each limit refuses the request with Redis's protocol error when exceeded.

    ``max_bulk_len`` and ``max_query_buffer`` are where a parser starts; one built with a node's live
    configuration follows CONFIG SET of proto-max-bulk-len and client-query-buffer-limit from then on.
    """

    max_bulk_len: int = DEFAULT_MAX_BULK_LEN  # one argument's bytes (proto-max-bulk-len)
    max_multibulk_len: int = MAX_MULTIBULK_COUNT  # arguments in one request (Redis 6's 1024*1024)
    max_inline_bytes: int = MAX_INLINE_BYTES  # an inline request, or a header line still without its CRLF
    max_query_buffer: int = DEFAULT_MAX_QUERY_BUFFER  # the incomplete request (client-query-buffer-limit)

    def __post_init__(self) -> None:
        # Reads are screened for counts of 7+ digits (_BIG_COUNT_MARK) before hiredis sees them; a lower
        # multibulk limit would let a smaller count through unchecked.
        if self.max_multibulk_len < 999_999:
            raise ValueError("max_multibulk_len below 999999 is not supported (see _BIG_COUNT_MARK)")


# Redis's PROTO_MBULK_BIG_ARG: an argument this big is read into a buffer of its own.
BIG_ARG_BYTES = 32 * 1024

# Redis's limits.
DEFAULT_LIMITS = Limits()


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
        "_max_multibulk_len",
        "_max_inline_bytes",
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
        "_arg_start",
        "_arg_len",
    )

    def __init__(self, limits: Limits = DEFAULT_LIMITS, config: Mapping[str, Any] | None = None) -> None:
        self._reader = hiredis.Reader()
        self._inline = b""
        # Plain attributes, not read through ``limits``: the per-read checks look them up directly.
        self.max_bulk_len = limits.max_bulk_len
        self.max_query_buffer = limits.max_query_buffer
        self._max_multibulk_len = limits.max_multibulk_len
        self._max_inline_bytes = limits.max_inline_bytes
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
        # The payload of the last bulk header walked: absolute offset of its first byte, and its length.
        self._arg_start = 0
        self._arg_len = 0

    def feed(self, data: bytes) -> None:
        if self._boundary and not self._inline and data[1:2] == b"-":
            data = _skip_negative_counts(data)
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
        straddles = not self._boundary and tail.find(b"*") >= 0 and _has_big_count(tail + data[:16])
        self._boundary = False
        if not self._fed and self._walk_pos >= self._fed_end + len(data):
            # Inside a payload whose header was walked already: the walker never reads these bytes again, so
            # they are not kept (a 400 MB SET would otherwise be held twice, here and in hiredis's buffer).
            self._fed_end += len(data)
            self._fed_start = self._fed_end
        else:
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
        if self._fed_end >= RELEASE_READER_BYTES:
            # hiredis keeps its grown buffer until the next feed: after a big request, start from a fresh
            # reader so the memory goes back now, not when (if ever) this client sends again.
            self._reader = hiredis.Reader()
        self._boundary = True
        self._fed = []
        self._fed_start = self._fed_end = self._walk_pos = self._cmd_start = self._ahead = 0
        self._walk_left = -1

    def pending_bytes(self) -> int:
        """Bytes of the incomplete request (what Redis's client-query-buffer-limit bounds)."""
        return (0 if self._boundary else self._fed_end - self._cmd_start) + len(self._inline)

    def query_buffer_bytes(self) -> tuple[int, int]:
        """CLIENT LIST's qbuf and what the query buffer holds room for: the incomplete request's bytes, or,
        while a big argument (Redis's PROTO_MBULK_BIG_ARG, 32 KiB) is arriving, only that argument's, with
        room for all of it: Redis drops the parsed headers then and reads the argument into a buffer sized
        for it (so a client's memory counts the whole argument as soon as its header has arrived)."""
        pending = self.pending_bytes()
        if self._boundary or pending < BIG_ARG_BYTES:
            return pending, pending
        try:
            self._walk()  # the headers of what has arrived (a refused one is raised by the next parse)
        except ProtocolError:
            return pending, pending
        if self._walk_pos > self._fed_end and self._arg_len >= BIG_ARG_BYTES:
            received = self._fed_end - self._arg_start
            return received, max(received, self._arg_len + 2)
        return pending, pending

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
        # the limits were last read. (Bytes are tested by index, not by slice: a slice costs ~500 instructions.
        # Under 4 bytes no request is complete: the careful way, which the index reads below need anyway.)
        size = len(data)
        if (
            not self._boundary
            or self._inline
            or size < 4
            or data[0] != 0x2A  # '*'
            or data[1] == 0x2D  # '-': "*-10", skipped by feed(), as Redis skips a count below one
            or self._error is not None
            or size >= MIN_BULK_LIMIT
            or size > self.max_bulk_len
            or (
                # A read with no '*' after its first byte and a count of one or two digits (a lone command
                # of up to 99 arguments, what an unpipelined client sends) holds no count of 7+ digits:
                # _has_big_count could only say False. ``in`` with an int is a memchr; the byte screen
                # costs ~6,000 instructions on a 10-key MSET, several times this test.
                (0x2A in data[1:] or not (data[2] == 0x0D or data[3] == 0x0D))
                and data.translate(_DIGITS_AS_ZERO).find(_BIG_COUNT_MARK) >= 0  # _has_big_count, inline
            )
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
        big_read = self._fed_end >= RELEASE_READER_BYTES
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
                # int, list, an error), in C, for a fraction of the cost of a type() test per argument. After a
                # big read the test is made per argument instead: join() would copy a 400 MB value once more.
                if big_read:
                    for arg in cmd:
                        if type(arg) is not bytes:
                            raise TypeError
                else:
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
                if n - i > self._max_inline_bytes:
                    self._refuse(
                        base + cmd_start,
                        "too big mbulk count string" if left < 0 else "too big bulk count string",
                    )
                break
            if left < 0:
                count = _header_int(buf, i + 1, eol)
                if count is None or count > self._max_multibulk_len:
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
                self._arg_start = base + eol + 2
                self._arg_len = length
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
        if (
            buf[-1:] == b"\n"
            and buf.find(b'"') < 0
            and buf.find(b"'") < 0
            and buf[:1] != b"*"
            and buf.find(b"\n*") < 0
        ):
            # Whole lines only, no quotes, no multibulk request after them (PING_INLINE's pipeline): each line
            # is what split_inline's unquoted case makes of it, split in C. A line of any length is accepted
            # once its newline has arrived, as in Redis (only a line still without one is limited).
            for line in buf.split(b"\n"):
                argv = line.split()
                if argv:
                    out.append(argv)
            self._inline = b""
            return
        # Walked by position: slicing the rest off after each line would copy it once per line.
        pos = 0
        end = len(buf)
        while pos < end and buf[pos] != 0x2A:  # a '*' starts a multibulk request
            newline = buf.find(b"\n", pos)
            if newline < 0:
                if end - pos > self._max_inline_bytes:
                    raise ProtocolError("too big inline request")
                break
            line = buf[pos:newline]
            pos = newline + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            argv = split_inline(line)
            if argv:
                out.append(argv)
        rest = buf[pos:] if pos else buf
        if rest[:1] == b"*":
            self._inline = b""
            self._feed_reader(rest)
        else:
            self._inline = rest


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
    if line.find(b'"') < 0 and line.find(b"'") < 0:
        # No quotes: sdssplitargs only splits on its whitespace, which is exactly bytes.split()'s (space, \t,
        # \n, \r, \v, \f); a backslash outside quotes is an ordinary byte. PING_INLINE's case, in C.
        return line.split()
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
