"""Redis 7's limits on what a client may send before it has authenticated, as a header walker.

Redis refuses, from a client that still has to authenticate, a multibulk count above 10 ("unauthenticated
multibulk length") and a bulk length above 16384 ("unauthenticated bulk length"), and closes the connection:
an attacker without the password cannot make the server buffer hundreds of megabytes. ``PreAuthGuard`` walks
the multibulk headers of an unauthenticated client's reads (payloads skipped by their length, inline requests
skipped to their newline) and says where the first refused request starts, so the connection can run the
requests before it (an ``AUTH`` among them) and refuse the rest only if the client is still unauthenticated.

Only connections that have not authenticated pay for this walk; the main parser (protocol/resp_parse.py) is
untouched.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PREAUTH_MAX_BULK_BYTES", "PREAUTH_MAX_MULTIBULK", "PreAuthGuard", "PreAuthRefusal"]

# Redis 7's limits for an unauthenticated client (networking.c, processMultibulkBuffer).
PREAUTH_MAX_MULTIBULK = 10
PREAUTH_MAX_BULK_BYTES = 16384
# A header line longer than this without its CRLF is left to the main parser (which refuses it at 64 KiB).
_MAX_HEADER_BYTES = 64 * 1024


class PreAuthRefusal(NamedTuple):
    """A request refused before authentication: where it starts in the read, and Redis's wording."""

    offset: int  # bytes of the read before the refused request (those requests may still run)
    reply: str  # the error reply, as Redis sends it
    reason: str  # the short reason of Redis's log line ("unauth mbulk count", "unauth bulk length")


_MBULK = PreAuthRefusal(0, "ERR Protocol error: unauthenticated multibulk length", "unauth mbulk count")
_BULK = PreAuthRefusal(0, "ERR Protocol error: unauthenticated bulk length", "unauth bulk length")


class PreAuthGuard:
    """Walks the headers of one connection's reads while it is unauthenticated (state kept across reads)."""

    __slots__ = ("_pending", "_skip", "_left", "_cmd_offset")

    def __init__(self) -> None:
        # Bytes of an incomplete header line (or inline request) carried over from the previous read.
        self._pending = b""
        # Payload bytes (and their CRLF) still to skip, of a bulk whose header was checked.
        self._skip = 0
        # Bulk headers still due in the current request; -1 between requests.
        self._left = -1
        # Offset in the current read where the current request began (negative: in an earlier read).
        self._cmd_offset = 0

    def check(self, data: bytes) -> PreAuthRefusal | None:
        """Walk ``data``; the first refused request's offset and reply, or None if every header is allowed."""
        refusal = self._check(data)
        if refusal is None:
            self._cmd_offset -= len(data)  # relative to the next read from now on (negative: began before it)
        return refusal

    def _check(self, data: bytes) -> PreAuthRefusal | None:
        carried = len(self._pending)
        buf = self._pending + data if carried else data
        self._pending = b""
        i = 0
        n = len(buf)
        while i < n:
            if self._skip:
                step = min(self._skip, n - i)
                self._skip -= step
                i += step
                continue
            if self._left < 0:
                self._cmd_offset = i - carried
                if buf[i] != 0x2A:  # '*': anything else is an inline request, bounded by the main parser
                    eol = buf.find(b"\n", i)
                    if eol < 0:
                        self._keep(buf, i)
                        return None
                    i = eol + 1
                    continue
            eol = buf.find(b"\r\n", i)
            if eol < 0:
                self._keep(buf, i)
                return None
            try:
                value = int(buf[i + 1 : eol])
            except ValueError:
                value = 0  # malformed: the main parser refuses it with its own error
            if self._left < 0:
                if value > PREAUTH_MAX_MULTIBULK:
                    return self._refuse(_MBULK)
                self._left = value if value > 0 else -1
            else:
                if buf[i] == 0x24 and value > PREAUTH_MAX_BULK_BYTES:  # '$'
                    return self._refuse(_BULK)
                self._skip = max(value, 0) + 2
                self._left -= 1
                if self._left == 0:
                    self._left = -1
            i = eol + 2
        return None

    def _keep(self, buf: bytes, start: int) -> None:
        """Carry an incomplete header over to the next read (bounded: a longer one is the parser's error)."""
        rest = buf[start:]
        self._pending = rest if len(rest) <= _MAX_HEADER_BYTES else b""

    def _refuse(self, kind: PreAuthRefusal) -> PreAuthRefusal:
        return PreAuthRefusal(max(self._cmd_offset, 0), kind.reply, kind.reason)
