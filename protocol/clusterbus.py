"""Node <-> node frames of the cluster bus: one frozen dataclass per verb, one encoder, one decoder.

A cluster message is two ZeroMQ frames on the node bus (actors/bus/bus.py)::

    [CLUSTER_FAMILY, msgpack [verb, fields...]]

They are kept apart from protocol/peer.py (replication's frames) because gossip has its own family, so the bus
hands it to the cluster without going through replication, and a gossip frame never queues behind a snapshot
chunk on the same handler. What Redis carries in its binary ``clusterMsg`` header is here as plain fields;
only the observable outcomes must match Redis (sentinel-cluster contract §2.8), not the bytes.

Verbs::

    Gossip [kind, header..., entries]   kind: ping | pong | meet. The header is the sender's view of itself
                                        (id, address, flags, epochs, replication offset, master, slot bitmap)
                                        plus ``to_ip`` (the address the sender reached us at, so a node learns
                                        its own ip as Redis learns it from the socket); entries are gossip
                                        about other nodes: [id, ip, port, cport, flags, ping_sent, pong_recv];
                                        last, the sender's announced hostname ("" for none: Redis's hostname
                                        ping extension)
    Fail [sender, node id]              the sender marked a node FAIL: everyone marks it too
    Update [sender, node id, config epoch, slot bitmap]
                                        corrects a node whose slot view is stale
    AuthRequest [sender, current epoch, master id, slot bitmap, force]
                                        a replica asks the masters to vote for it (failover election)
    AuthAck [sender, current epoch]     a master's vote
    MfStart [sender]                    manual failover: the replica asks its master for its offset
    MfOffset [sender, offset]           the master's offset once its clients are paused
    Publish [channel, message]          PUBLISH is broadcast to the whole cluster

``decode`` turns anything malformed into ``ClusterFrameError``. A field with a default is optional at the end of
a frame, and fields past the known ones are ignored: a node talks to peers one version older or newer (a
rolling upgrade) without either refusing the other's gossip.
"""

from __future__ import annotations

from dataclasses import MISSING, astuple, dataclass, fields
from typing import Any, ClassVar

import msgpack

# Re-exported: defined in protocol/ports.py, which the bus imports without loading this module.
from protocol.ports import CLUSTER_FAMILY as CLUSTER_FAMILY

SLOT_BITMAP_BYTES = 16384 // 8


class ClusterFrameError(ValueError):
    """A cluster message that is not one of the frames below."""


@dataclass(frozen=True, slots=True)
class Gossip:
    VERB: ClassVar[str] = "gossip"
    kind: str  # ping | pong | meet
    sender: str
    ip: str
    port: int
    cport: int
    flags: list[str]  # the sender's own flags (master / slave / nofailover)
    current_epoch: int
    config_epoch: int  # a replica sends its master's
    offset: int  # replication offset
    master_id: str  # "" for a master
    slots: bytes  # SLOT_BITMAP_BYTES; a replica sends its master's
    to_ip: str
    state_ok: bool
    entries: list[list[Any]]  # [id, ip, port, cport, flags, ping_sent_ms, pong_recv_ms]
    hostname: str = ""  # cluster-announce-hostname (added after the first release: optional on the wire)


@dataclass(frozen=True, slots=True)
class Fail:
    VERB: ClassVar[str] = "fail"
    sender: str
    node_id: str


@dataclass(frozen=True, slots=True)
class Update:
    VERB: ClassVar[str] = "update"
    sender: str
    node_id: str
    config_epoch: int
    slots: bytes


@dataclass(frozen=True, slots=True)
class AuthRequest:
    VERB: ClassVar[str] = "authreq"
    sender: str
    current_epoch: int
    master_id: str
    slots: bytes
    force: bool


@dataclass(frozen=True, slots=True)
class AuthAck:
    VERB: ClassVar[str] = "authack"
    sender: str
    current_epoch: int


@dataclass(frozen=True, slots=True)
class MfStart:
    VERB: ClassVar[str] = "mfstart"
    sender: str


@dataclass(frozen=True, slots=True)
class MfOffset:
    VERB: ClassVar[str] = "mfoffset"
    sender: str
    offset: int


@dataclass(frozen=True, slots=True)
class Publish:
    VERB: ClassVar[str] = "publish"
    channel: bytes
    message: bytes


ClusterFrame = Gossip | Fail | Update | AuthRequest | AuthAck | MfStart | MfOffset | Publish
_CLASSES: dict[str, Any] = {
    cls.VERB: cls for cls in (Gossip, Fail, Update, AuthRequest, AuthAck, MfStart, MfOffset, Publish)
}
_PY_TYPES = {"str": str, "int": int, "bool": bool, "bytes": bytes}
_FIELD_TYPES: dict[str, list[type]] = {
    verb: [_PY_TYPES.get(str(f.type).split("[")[0], list) for f in fields(cls)]
    for verb, cls in _CLASSES.items()
}
# Fields without a default: a frame carries at least these.
_REQUIRED: dict[str, int] = {
    verb: sum(1 for f in fields(cls) if f.default is MISSING) for verb, cls in _CLASSES.items()
}


def encode(frame: ClusterFrame) -> list[bytes]:
    return [CLUSTER_FAMILY, msgpack.packb([frame.VERB, *astuple(frame)], use_bin_type=True)]


def decode(frames: list[bytes]) -> ClusterFrame:
    if len(frames) != 2 or frames[0] != CLUSTER_FAMILY:
        raise ClusterFrameError("not a cluster message")
    try:
        body = msgpack.unpackb(frames[1], raw=False)
    except Exception as exc:
        raise ClusterFrameError(f"bad msgpack: {exc}") from exc
    if not isinstance(body, list) or not body or body[0] not in _CLASSES:
        raise ClusterFrameError("unknown verb")
    verb, values = body[0], body[1:]
    types = _FIELD_TYPES[verb]
    if len(values) < _REQUIRED[verb]:
        raise ClusterFrameError(f"{verb}: {len(values)} fields, expected {len(types)}")
    values = values[: len(types)]  # a newer peer's extra fields
    for value, kind in zip(values, types, strict=True):
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ClusterFrameError(f"{verb}: field of type {type(value).__name__}, expected {kind.__name__}")
    if verb == "gossip" and len(values[10]) != SLOT_BITMAP_BYTES:
        raise ClusterFrameError("gossip: bad slot bitmap")
    frame: ClusterFrame = _CLASSES[verb](*values)
    return frame
