"""The cluster's side of the node bus (bus thread): gossip frames in, gossip frames out.

A bus extension (actors/bus/bus.py registers it like replication): frames of family ``CLUSTER_FAMILY``
arriving on the bus ROUTER are handed, undecoded, to the loop thread (``on_frames`` via call_threadsafe),
where the cluster state lives; ``ClusterSend`` messages the loop queues with ``MasterActor.tell_bus`` leave on
one DEALER per peer bus address, made lazily on this thread. The DEALERs are ``IMMEDIATE``: while a peer is
unreachable a frame to it is dropped, not queued, so a node that comes back does not get a burst of stale
pings (gossip is periodic; whatever matters is sent again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
import zmq

from protocol.clusterbus import CLUSTER_FAMILY

if TYPE_CHECKING:
    from actors.bus.bus import BusActor

log = structlog.get_logger("redactor.cluster")

# Frames queued per peer while its connection is up but slow (ZeroMQ's send high-water mark).
PEER_SNDHWM = 1000


@dataclass(frozen=True, slots=True)
class ClusterSend:
    ip: str
    cport: int
    frames: list[bytes]


class ClusterLink:
    """Registered on the bus by the node (launcher/node.py) with the loop-side receiver."""

    def __init__(self, bus: BusActor, on_frames: Callable[[list[bytes]], None]) -> None:
        self.bus = bus
        self.on_frames = on_frames
        self.dealers: dict[tuple[str, int], zmq.Socket[bytes]] = {}
        bus.register_family(CLUSTER_FAMILY, self._received)
        bus.register_loop_message(ClusterSend, self._send)
        bus.register_lifecycle(stopping=self._close)

    def _received(self, identity: bytes, frames: list[bytes]) -> None:
        # Redis's cluster bus takes no password (requirepass guards clients, not cluster peers): a peer that
        # speaks gossip is admitted past the bus's pre-AUTH limits. With CURVE keys configured, only trusted
        # nodes get this far at all (actors/bus/curve.py).
        self.bus.peer_authenticated(identity)
        self.bus.master.call_threadsafe(self.on_frames, frames)

    def _send(self, message: ClusterSend) -> None:
        address = (message.ip, message.cport)
        sock = self.dealers.get(address)
        if sock is None:
            ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IMMEDIATE, 1)
            sock.setsockopt(zmq.SNDHWM, PEER_SNDHWM)
            host = f"[{message.ip}]" if ":" in message.ip else message.ip
            if ":" in message.ip:
                sock.setsockopt(zmq.IPV6, 1)
            self.bus.curve.apply_client(sock, message.ip, message.cport)  # CURVE, when keys are configured
            try:
                sock.connect(f"tcp://{host}:{message.cport}")
            except zmq.ZMQError as exc:
                log.warning(
                    "cluster_peer_connect_failed", ip=message.ip, cport=message.cport, reason=str(exc)
                )
                sock.close(0)
                return
            self.dealers[address] = sock
        try:
            sock.send_multipart(message.frames, zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # unreachable for now: dropped (see the module docstring)

    def _close(self) -> None:
        for sock in self.dealers.values():
            sock.close(0)
        self.dealers.clear()
