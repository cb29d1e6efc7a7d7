"""The native protocol: a versioned msgpack envelope, one ZeroMQ frame per message.

A client (a DEALER) sends to a node's bus port (a ROUTER)::

    request  [VERSION, request_id: int, argv: [bytes, ...]]

and the node answers on the same connection::

    reply    [VERSION, request_id, KIND_OK,    value]
    error    [VERSION, request_id, KIND_ERROR, "ERR message"]
    push     [VERSION, 0,          KIND_PUSH,  value]       (pub/sub deliveries, unasked)

``value`` is a reply tree: bytes for bulk strings, str for status replies (so a shell can print ``OK`` and
``"OK"`` apart, as redis-cli does), int, float, None (nil), lists, dicts, and ``ExtType(EXT_ERROR, b"...")`` for
an error inside an array (EXEC). Every request gets exactly one reply: a command that answers RESP clients with
several replies (``SUBSCRIBE a b``: one confirmation per channel) answers here with the list of them. A frame
that does not decode, or of another version, gets an error reply with request id 0 (or the frame's id when it
could be read) and nothing else happens.

Node-to-node messages (replication; later sentinel and cluster) travel on the same ROUTER as two or three
frames, ``[b"N", msgpack [verb, fields...], payload?]``, so a node tells them from client requests by the frame
count; the verbs and their fields are documented in actors/replication.py.
"""

from __future__ import annotations

from typing import Any

import msgpack

from protocol.errors import CommandError, ProtocolVersionError
from protocol.resp import NULL_ARRAY, MultiReply, Push, ReplySet, Verbatim

VERSION = 1
KIND_OK = 0
KIND_ERROR = 1
KIND_PUSH = 2
EXT_ERROR = 1
# A frame larger than this is refused without decoding (a node-to-node snapshot travels in chunks below it).
MAX_FRAME_BYTES = 512 * 1024 * 1024


def encode_request(request_id: int, argv: list[bytes]) -> bytes:
    return msgpack.packb([VERSION, request_id, argv], use_bin_type=True)


def decode_request(frame: bytes) -> tuple[int, list[bytes]]:
    """Decode a client request. Raises ``CommandError`` (bad frame) or ``ProtocolVersionError``."""
    if len(frame) > MAX_FRAME_BYTES:
        raise CommandError("ERR Protocol error: frame too large")
    try:
        message = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise CommandError(f"ERR Protocol error: frame is not valid msgpack ({type(exc).__name__})") from None
    if not isinstance(message, list) or len(message) != 3:
        raise CommandError("ERR Protocol error: expected [version, request_id, argv]")
    version, request_id, argv = message
    if version != VERSION:
        raise ProtocolVersionError(
            f"ERR Protocol error: unsupported envelope version {version!r} (this node speaks {VERSION})"
        )
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise CommandError("ERR Protocol error: request id must be an integer")
    if not isinstance(argv, list) or not argv:
        raise CommandError("ERR Protocol error: argv must be a non-empty array")
    args: list[bytes] = []
    for arg in argv:
        if isinstance(arg, bytes):
            args.append(arg)
        elif isinstance(arg, str):
            args.append(arg.encode())
        elif isinstance(arg, int | float) and not isinstance(arg, bool):
            args.append(str(arg).encode())
        else:
            raise CommandError("ERR Protocol error: arguments must be strings or numbers")
    return request_id, args


def peek_request_id(frame: bytes) -> int:
    """Best effort: the request id of a frame that failed to decode, so the error reaches the right caller."""
    try:
        message = msgpack.unpackb(frame, raw=False, strict_map_key=False)
        if isinstance(message, list) and len(message) >= 2 and isinstance(message[1], int):
            return int(message[1])
    except Exception:
        pass
    return 0


def to_wire(value: Any) -> Any:
    """Turn a command's reply into a msgpack-able tree (see module docstring)."""
    kind = type(value)
    if kind is bytes or kind is str or kind is int or kind is float or value is None:
        return value
    if kind is list or kind is tuple or kind is Push or kind is MultiReply:
        return [to_wire(v) for v in value]
    if kind is dict:
        return {to_wire(k): to_wire(v) for k, v in value.items()}
    if kind is set or kind is frozenset or kind is ReplySet:
        return [to_wire(v) for v in value]
    if isinstance(value, CommandError):
        return msgpack.ExtType(EXT_ERROR, value.wire_bytes())
    if value is NULL_ARRAY:
        return None
    if kind is Verbatim:
        return bytes(value)
    if kind is bool:
        return int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, int):
        return int(value)
    raise TypeError(f"cannot send reply of type {kind.__name__}")


def encode_reply(request_id: int, value: Any) -> bytes:
    if isinstance(value, CommandError):
        return _pack([VERSION, request_id, KIND_ERROR, str(value)])
    return _pack([VERSION, request_id, KIND_OK, to_wire(value)])


def _pack(message: list[Any]) -> bytes:
    """msgpack of ``message``. A status or error text may hold bytes that are not UTF-8 (a script's
    ``{ok='\xff'}``, an unknown command's name echoed back), kept as surrogate escapes, which msgpack's str
    cannot carry: such texts go as UTF-8 with U+FFFD in their place (the shell prints them; RESP clients get
    the bytes themselves)."""
    try:
        return msgpack.packb(message, use_bin_type=True)
    except UnicodeEncodeError:
        return msgpack.packb(_printable(message), use_bin_type=True)


def _printable(value: Any) -> Any:
    if type(value) is str:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if type(value) is list:
        return [_printable(v) for v in value]
    if type(value) is dict:
        return {_printable(k): _printable(v) for k, v in value.items()}
    return value


def encode_error(request_id: int, message: str) -> bytes:
    return msgpack.packb([VERSION, request_id, KIND_ERROR, message], use_bin_type=True)


def encode_push(value: Any) -> bytes:
    return _pack([VERSION, 0, KIND_PUSH, to_wire(value)])


class ReplyError(Exception):
    """An error reply received by a native-protocol client, nested or not."""


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_ERROR:
        return ReplyError(data.decode("utf-8", "replace"))
    return msgpack.ExtType(code, data)


def decode_reply(frame: bytes) -> tuple[int, int, Any]:
    """Client side: ``(request_id, kind, value)``; nested errors come back as ``ReplyError`` instances."""
    message = msgpack.unpackb(frame, raw=False, strict_map_key=False, ext_hook=_ext_hook)
    if not isinstance(message, list) or len(message) != 4:
        raise ValueError("malformed reply envelope")
    version, request_id, kind, value = message
    if version != VERSION:
        raise ValueError(f"reply of unsupported envelope version {version!r}")
    return int(request_id), int(kind), value
