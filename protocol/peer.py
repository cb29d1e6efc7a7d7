"""Node <-> node frames of the replication protocol: one small value class per verb, one encoder, one decoder.

A peer message is two or three ZeroMQ frames::

    [PEER_FAMILY, header, payload?]     header = msgpack [verb, fields...]; payload = raw bytes (stream, chunk)

``PEER_FAMILY`` (``b"N"``) is the family the node bus dispatches on (actors/bus/bus.py); cluster gossip will
get its own family. The bytes are the ones nodes spoke before these classes existed, so a node of the previous
layout and one of this layout understand each other. Verbs and who sends them::

    replica -> master   Hello [auth, protocol version]        liveness, auth and version check: HelloOk / Error
                        Psync [replid, offset+1, node_id, listening_port, ip, auth]   ("?", -1: no history)
                        Ack [applied offset | -1]             every second, and at once after a GetAck
                        SnapAck [bytes received]              per snapshot chunk (flow control)
                        Bye []                                the replica leaves (REPLICAOF elsewhere, shutdown)
    master -> replica   HelloOk [run id] / Error [message]
                        Continue [replid, stream db]          partial resync accepted; the stream follows
                        FullResync [replid, offset]           a snapshot at that offset will follow
                        SnapBegin [-1] / SnapChunk [at] + chunk / SnapEnd [size, stream db]
                                                              (the size is known only at the end)
                        Stream [start] + bytes                the replication stream from position start
                        Ping [position sent | -1]             every repl-ping-replica-period (1 s while syncing)
                        GetAck [] / Bye []

``decode`` checks everything (family, msgpack, verb, arity, field types, payload frame) and turns any
malformed message into ``PeerFrameError``, so a handler never sees a half-valid frame and never raises on one.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import msgpack

# Version of the node-to-node replication protocol; a master refuses a replica speaking another one (Hello).
PEER_PROTOCOL_VERSION = 1
# First frame of every replication message: the bus hands frames with this family to replication.
PEER_FAMILY = b"N"


# Hello's and Psync's ``auth``: a bare password (masterauth; the default user), or with masteruser set,
# NUL + user + NUL + password (a user name cannot contain NUL, so the two forms never collide).
_AUTH_USER_MARK = "\0"


def pack_auth(user: str, password: str) -> str:
    """The ``auth`` field for masteruser / masterauth (see above)."""
    return f"{_AUTH_USER_MARK}{user}{_AUTH_USER_MARK}{password}" if user else password


def unpack_auth(auth: str) -> tuple[str, str]:
    """(user, password) of an ``auth`` field; user "" for the bare-password form."""
    if auth.startswith(_AUTH_USER_MARK) and _AUTH_USER_MARK in auth[1:]:
        user, _, password = auth[1:].partition(_AUTH_USER_MARK)
        return user, password
    return "", auth


class PeerFrameError(ValueError):
    """A peer message that is not one of the frames below (bad msgpack, unknown verb, wrong arity or types)."""

    def __init__(self, reason: str, verb: str | None = None) -> None:
        super().__init__(reason)
        self.verb = verb  # the header's verb when it could be read (a bad Hello is answered, not dropped)


class _Frame:
    """What every frame shares: value semantics over its ``__slots__`` (equal when the type and the fields are,
    hashable, a readable repr). Plain classes rather than frozen dataclasses: the sixteen dataclasses cost a
    node ~5 ms of start-up to create (code generated and exec'd per method, each class built twice for slots);
    nothing assigns to a frame after it is made."""

    __slots__: tuple[str, ...] = ()
    VERB: ClassVar[str] = ""

    def values(self) -> tuple[Any, ...]:
        """The fields in wire order (the header's, then the payload)."""
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Frame) and type(other) is type(self) and self.values() == other.values()

    def __hash__(self) -> int:
        return hash((type(self), self.values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class _PayloadFrame(_Frame):
    """A frame whose last field, ``data``, travels as its own payload frame (Stream, SnapChunk). It is kept in a
    slot named ``payload``: ``data`` is not an attribute name here, because the kvstore scan reserves it."""

    __slots__ = ()
    payload: bytes

    @property
    def data(self) -> bytes:
        return self.payload


class Hello(_Frame):
    __slots__ = ("auth", "version")
    VERB = "hello"

    def __init__(self, auth: str, version: int) -> None:
        self.auth = auth
        self.version = version


class HelloOk(_Frame):
    __slots__ = ("run_id",)
    VERB = "hello_ok"

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id


class Error(_Frame):
    __slots__ = ("message",)
    VERB = "error"

    def __init__(self, message: str) -> None:
        self.message = message


class Psync(_Frame):
    __slots__ = ("replid", "offset", "node_id", "port", "ip", "auth")
    VERB = "psync"

    def __init__(self, replid: str, offset: int, node_id: str, port: int, ip: str, auth: str) -> None:
        self.replid = replid  # "?": no history (a forced full sync)
        self.offset = offset  # the first stream byte missing (Redis's offset + 1), -1 with "?"
        self.node_id = node_id
        self.port = port  # the replica's announced RESP port
        self.ip = ip  # the replica's announced address
        self.auth = auth


class Continue(_Frame):
    __slots__ = ("replid", "stream_db")
    VERB = "continue"

    def __init__(self, replid: str, stream_db: int) -> None:
        self.replid = replid
        self.stream_db = stream_db  # the database the stream has selected where it resumes (-1: none yet)


class FullResync(_Frame):
    __slots__ = ("replid", "offset")
    VERB = "fullresync"

    def __init__(self, replid: str, offset: int) -> None:
        self.replid = replid
        self.offset = offset  # stream position of the snapshot that follows


class SnapBegin(_Frame):
    __slots__ = ("size",)
    VERB = "snap_begin"

    def __init__(self, size: int) -> None:
        self.size = size  # -1: not known until SnapEnd (the child is still writing the file)


class SnapChunk(_PayloadFrame):
    __slots__ = ("at", "payload")
    VERB = "snap"

    def __init__(self, at: int, data: bytes) -> None:
        self.at = at  # byte position of the chunk in the snapshot
        self.payload = data


class SnapEnd(_Frame):
    __slots__ = ("size", "stream_db")
    VERB = "snap_end"

    def __init__(self, size: int, stream_db: int) -> None:
        self.size = size
        self.stream_db = stream_db  # the database the stream has selected at the snapshot's offset


class SnapAck(_Frame):
    __slots__ = ("received",)
    VERB = "snap_ack"

    def __init__(self, received: int) -> None:
        self.received = received  # snapshot bytes received so far


class Stream(_PayloadFrame):
    __slots__ = ("start", "payload")
    VERB = "stream"

    def __init__(self, start: int, data: bytes) -> None:
        self.start = start  # stream position of the first byte of data
        self.payload = data


class Ack(_Frame):
    __slots__ = ("offset",)
    VERB = "ack"

    def __init__(self, offset: int) -> None:
        self.offset = offset  # applied offset, -1 while not streaming


class Ping(_Frame):
    __slots__ = ("sent",)
    VERB = "ping"

    def __init__(self, sent: int) -> None:
        self.sent = sent  # stream position sent so far, -1 while syncing


class GetAck(_Frame):
    __slots__ = ()
    VERB = "getack"


class Bye(_Frame):
    __slots__ = ()
    VERB = "bye"


PeerFrame = (
    Hello
    | HelloOk
    | Error
    | Psync
    | Continue
    | FullResync
    | SnapBegin
    | SnapChunk
    | SnapEnd
    | SnapAck
    | Stream
    | Ack
    | Ping
    | GetAck
    | Bye
)
FRAME_TYPES: tuple[type[PeerFrame], ...] = typing.get_args(PeerFrame)


class _Spec(NamedTuple):
    cls: Callable[..., PeerFrame]
    names: tuple[str, ...]  # header fields, in wire order
    types: tuple[type, ...]  # their exact types (bool is not an int here)
    payload: bool  # a last ``data: bytes`` field travels as its own frame


# The field annotations are strings (postponed evaluation): the three types frames carry, by name.
_FIELD_TYPES: dict[str, type] = {"str": str, "int": int, "bytes": bytes}


def _spec(cls: type[PeerFrame]) -> _Spec:
    hints = cls.__init__.__annotations__ if cls.__slots__ else {}
    names = [name for name in hints if name != "return"]  # the constructor's parameters, in wire order
    payload = bool(names) and names[-1] == "data" and _FIELD_TYPES[hints["data"]] is bytes
    if payload:
        names = names[:-1]
    return _Spec(cls, tuple(names), tuple(_FIELD_TYPES[hints[name]] for name in names), payload)


_SPECS: dict[str, _Spec] = {cls.VERB: _spec(cls) for cls in FRAME_TYPES}
_BY_CLASS: dict[type, _Spec] = {cls: _SPECS[cls.VERB] for cls in FRAME_TYPES}


def encode(frame: PeerFrame) -> list[bytes]:
    """The ZeroMQ frames of one message: ``[PEER_FAMILY, header]`` plus the payload for Stream and SnapChunk."""
    spec = _BY_CLASS[type(frame)]
    header = bytes(
        msgpack.packb([frame.VERB, *[getattr(frame, name) for name in spec.names]], use_bin_type=True)
    )
    if spec.payload:
        return [PEER_FAMILY, header, frame.data]  # type: ignore[union-attr]
    return [PEER_FAMILY, header]


def decode(frames: Sequence[bytes]) -> PeerFrame:
    """The frame ``frames`` (as received, family first) carries; PeerFrameError if it is not a valid one."""
    if len(frames) < 2 or frames[0] != PEER_FAMILY:
        raise PeerFrameError("not a peer message")
    try:
        header = msgpack.unpackb(frames[1], raw=False, strict_map_key=False)
    except Exception as exc:
        raise PeerFrameError(f"header is not valid msgpack ({type(exc).__name__})") from None
    if not isinstance(header, list) or not header or not isinstance(header[0], str):
        raise PeerFrameError("header is not [verb, fields...]")
    verb = header[0]
    spec = _SPECS.get(verb)
    if spec is None:
        raise PeerFrameError(f"unknown verb {verb[:32]!r}")
    values = header[1:]
    if len(values) != len(spec.types):
        raise PeerFrameError(f"{verb}: {len(values)} fields, expected {len(spec.types)}", verb)
    for name, value, want in zip(spec.names, values, spec.types, strict=True):
        if type(value) is not want:
            raise PeerFrameError(f"{verb}: {name} is {type(value).__name__}, expected {want.__name__}", verb)
    if spec.payload:
        if len(frames) != 3:
            raise PeerFrameError(f"{verb}: expected one payload frame", verb)
        return spec.cls(*values, frames[2])
    if len(frames) != 2:
        raise PeerFrameError(f"{verb}: unexpected payload frame", verb)
    return spec.cls(*values)
