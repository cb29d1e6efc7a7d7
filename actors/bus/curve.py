"""CURVE on the node bus: encrypted links, and only peers whose public key the node trusts.

With ``bus-curve-secret-key-file`` and ``bus-curve-trusted-keys-file`` set (protocol/curve.py: the files,
``redactor keygen``), the bus router is a CURVE server with this node's secret key, and a ZAP handler on the
bus thread (ZeroMQ's authentication protocol: libzmq asks ``inproc://zeromq.zap.01`` about every handshake)
accepts a client only if its public key is in the trusted list. Outgoing bus links (a replica's link to its
master) are CURVE clients that expect the master's listed key (protocol/curve.py, ``server_key_for``), so a
process that binds a dead master's bus port without that secret key fails the handshake: the replica never
sends it ``masterauth`` and never applies a frame from it.

With neither directive, the bus is plain TCP as before (README, "Locked doors", says what that exposes);
with one and not the other the node refuses to start (``check``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import zmq
import zmq.utils.z85

from actors.ratelog import remote_errors
from protocol.curve import CurveError, CurveKeys, TrustedKeys, apply_client, load_keypair, load_trusted

if TYPE_CHECKING:
    from actors.bus.bus import BusActor

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"redactor-bus"


def check(config: Any) -> tuple[CurveKeys, TrustedKeys] | None:
    """The node's CURVE keys from its configuration, None without any. Raises CurveError (start refused)."""
    secret_file = config["bus-curve-secret-key-file"]
    trusted_file = config["bus-curve-trusted-keys-file"]
    if not secret_file and not trusted_file:
        return None
    if not secret_file or not trusted_file:
        raise CurveError(
            "bus CURVE needs both bus-curve-secret-key-file and bus-curve-trusted-keys-file "
            "(make keys with `redactor keygen PATH`)"
        )
    return load_keypair(secret_file), load_trusted(trusted_file)


class BusCurve:
    """The bus's CURVE side: the router's server options, the ZAP handler, outgoing links' client options."""

    def __init__(self, bus: BusActor) -> None:
        self.bus = bus
        loaded = check(bus.master.server.config)
        self.keys: CurveKeys | None = loaded[0] if loaded else None
        self.trusted: TrustedKeys = loaded[1] if loaded else TrustedKeys()
        self.zap: zmq.Socket[bytes] | None = None
        self.refused_total = 0

    @property
    def enabled(self) -> bool:
        return self.keys is not None

    def configure_router(self, router: zmq.Socket[bytes]) -> None:
        """Before bind (bus thread): CURVE server options, and the ZAP handler that checks client keys."""
        if self.keys is None:
            return
        zap: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
        zap.setsockopt(zmq.LINGER, 0)
        zap.bind(ZAP_ENDPOINT)
        self.zap = zap
        self.bus.add_socket(zap, self._drain_zap)
        router.setsockopt(zmq.CURVE_SERVER, 1)
        router.setsockopt(zmq.CURVE_SECRETKEY, self.keys.secret)
        router.setsockopt(zmq.CURVE_PUBLICKEY, self.keys.public)
        router.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
        try:
            # Without a handler libzmq would let every key through: refuse instead (libzmq >= 4.3).
            router.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
        except (zmq.ZMQError, AttributeError):
            pass

    def apply_client(self, sock: zmq.Socket[bytes], host: str, bus_port: int) -> None:
        """Before connect: make an outgoing bus link a CURVE client expecting the peer's trusted key."""
        if self.keys is not None:
            apply_client(sock, self.keys, self.trusted.server_key_for(host, bus_port, self.keys))

    def _drain_zap(self) -> None:
        zap = self.zap
        if zap is None:
            return
        for _ in range(1000):
            try:
                frames = zap.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            # [envelope..., b"", version, request_id, domain, address, routing_id, mechanism, credentials...]
            try:
                split = frames.index(b"")
            except ValueError:
                continue
            envelope, request = frames[: split + 1], frames[split + 1 :]
            if len(request) < 6:
                continue
            version, request_id, _domain, address, _routing_id, mechanism = request[:6]
            credentials = request[6:]
            allowed = False
            if mechanism == b"CURVE" and credentials and len(credentials[0]) == 32:
                allowed = zmq.utils.z85.encode(credentials[0]) in self.trusted.keys
            if allowed:
                reply = [version, request_id, b"200", b"OK", b"", b""]
            else:
                self.refused_total += 1
                remote_errors.info(
                    "bus_peer_refused", addr=address.decode(errors="replace"), reason="key not trusted"
                )
                reply = [version, request_id, b"400", b"key not trusted", b"", b""]
            zap.send_multipart(envelope + reply)
