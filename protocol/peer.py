"""Node <-> node frames of the replication protocol: one frozen dataclass per verb, one encoder, one decoder.

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
from dataclasses import dataclass, fields
from typing import ClassVar

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


@dataclass(frozen=True, slots=True)
class Hello:
    VERB: ClassVar[str] = "hello"
    auth: str
    version: int


@dataclass(frozen=True, slots=True)
class HelloOk:
    VERB: ClassVar[str] = "hello_ok"
    run_id: str


@dataclass(frozen=True, slots=True)
class Error:
    VERB: ClassVar[str] = "error"
    message: str


@dataclass(frozen=True, slots=True)
class Psync:
    VERB: ClassVar[str] = "psync"
    replid: str  # "?": no history (a forced full sync)
    offset: int  # the first stream byte missing (Redis's offset + 1), -1 with "?"
    node_id: str
    port: int  # the replica's announced RESP port
    ip: str  # the replica's announced address
    auth: str


@dataclass(frozen=True, slots=True)
class Continue:
    VERB: ClassVar[str] = "continue"
    replid: str
    stream_db: int  # the database the stream has selected where it resumes (-1: none yet)


@dataclass(frozen=True, slots=True)
class FullResync:
    VERB: ClassVar[str] = "fullresync"
    replid: str
    offset: int  # stream position of the snapshot that follows


@dataclass(frozen=True, slots=True)
class SnapBegin:
    VERB: ClassVar[str] = "snap_begin"
    size: int  # -1: not known until SnapEnd (the child is still writing the file)


@dataclass(frozen=True, slots=True)
class SnapChunk:
    VERB: ClassVar[str] = "snap"
    at: int  # byte position of the chunk in the snapshot
    data: bytes  # payload frame


@dataclass(frozen=True, slots=True)
class SnapEnd:
    VERB: ClassVar[str] = "snap_end"
    size: int
    stream_db: int  # the database the stream has selected at the snapshot's offset


@dataclass(frozen=True, slots=True)
class SnapAck:
    VERB: ClassVar[str] = "snap_ack"
    received: int  # snapshot bytes received so far


@dataclass(frozen=True, slots=True)
class Stream:
    VERB: ClassVar[str] = "stream"
    start: int  # stream position of the first byte of data
    data: bytes  # payload frame


@dataclass(frozen=True, slots=True)
class Ack:
    VERB: ClassVar[str] = "ack"
    offset: int  # applied offset, -1 while not streaming


@dataclass(frozen=True, slots=True)
class Ping:
    VERB: ClassVar[str] = "ping"
    sent: int  # stream position sent so far, -1 while syncing


@dataclass(frozen=True, slots=True)
class GetAck:
    VERB: ClassVar[str] = "getack"


@dataclass(frozen=True, slots=True)
class Bye:
    VERB: ClassVar[str] = "bye"


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


@dataclass(frozen=True, slots=True)
class _Spec:
    cls: Callable[..., PeerFrame]
    names: tuple[str, ...]  # header fields, in wire order
    types: tuple[type, ...]  # their exact types (bool is not an int here)
    payload: bool  # a last ``data: bytes`` field travels as its own frame


def _spec(cls: type[PeerFrame]) -> _Spec:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    payload = bool(names) and names[-1] == "data" and hints["data"] is bytes
    if payload:
        names = names[:-1]
    return _Spec(cls, tuple(names), tuple(hints[name] for name in names), payload)


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
