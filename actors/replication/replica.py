"""The replica side of replication (bus thread): the link to this node's master, a state machine
(``LinkState``), and the loader thread that parses a full sync's snapshot while it arrives.

The link connects a DEALER to the master's bus port (the probe's answer; its RESP port + 10000 by default),
says Hello, then Psync with what the loop has applied (the loop answers PrepareLink with LinkReady first, so
nothing the old link handed over is still in flight). Continue: the stream follows. FullResync: the snapshot's chunks go to
a ``SnapshotLoader``; once parsed, the loop swaps the databases in (InstallSnapshot) and the stream buffered
meanwhile is applied. Every stream message carries its start, so a gap is noticed and the link resyncs. Any
loss goes back to CONNECT with a doubling backoff.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING

import structlog
import zmq

from actors.replication import messages as m
from actors.replication.backlog import Backlog
from actors.replication.redis_master import RedactorMaster, RespMasterConn, RespMasterEvent
from actors.replication.snapshot_loader import Loaded, SnapshotLoader
from actors.replication.states import LinkState
from protocol import peer
from protocol.monitor import close_monitor, event_number, open_monitor
from protocol.peer import PEER_PROTOCOL_VERSION
from protocol.ports import bus_port_for

if TYPE_CHECKING:
    from actors.replication.actor import ReplicationActor

log = structlog.get_logger("redactor.replication")

# What Redis logs when repl-timeout passes with nothing from the master, by the link's stage.
_CONNECTING_TIMEOUT = "Timeout connecting to the MASTER..."
_BULK_TIMEOUT = (
    "Timeout receiving bulk data from MASTER... If the problem persists try to set the 'repl-timeout' parameter "
    "in redis.conf to a larger value."
)
TIMEOUT_SAID = {
    LinkState.CONNECTING: _CONNECTING_TIMEOUT,
    LinkState.HANDSHAKE: _CONNECTING_TIMEOUT,
    LinkState.TRANSFER: _BULK_TIMEOUT,
    LinkState.LOADING: _BULK_TIMEOUT,
    LinkState.CONNECTED: "MASTER timeout: no data nor PING received...",
}

# A replica acks its offset this often (Redis: once a second from replicationCron).
ACK_INTERVAL_S = 1.0
# After the RESP probe found no listener, how long the bus is tried before the probe runs again (a master
# that is down may come back as a redis-server, which only the probe recognises).
PROBE_RETRY_S = 10.0
# Reconnection backoff of a replica that lost its master: doubles from the minimum up to the maximum.
RECONNECT_BACKOFF_MIN_S = 0.1
RECONNECT_BACKOFF_MAX_S = 2.0


def _local_ip_towards(host: str, port: int) -> str:
    """The address this host uses to reach ``host`` (what the master shows as the replica's ip)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, port))  # UDP: picks a route, sends nothing
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"


class MasterLink:
    """This node's link to its master (actor thread)."""

    def __init__(
        self,
        gen: int,
        host: str,
        port: int,
        state: LinkState = LinkState.CONNECT,
        connect_at_s: float = 0.0,
        backoff_s: float = RECONNECT_BACKOFF_MIN_S,
        awaiting_loop: bool = False,
        attempt: int = 0,
        sock: zmq.Socket[bytes] | None = None,
        resp: RespMasterConn | None = None,
        probe_unreachable: bool = False,
        monitor: zmq.Socket[bytes] | None = None,
        replid: str = "?",
        offset: int = 0,
        read_pos: int = 0,
        last_io_s: float = 0.0,
        last_ack_s: float = 0.0,
        getack_pending: bool = False,
        down_since_s: float = 0.0,
        was_connected: bool = False,
        loader: SnapshotLoader | None = None,
        snap_replid: str = "",
        snap_offset: int = 0,
        snap_size: int = -1,
        snap_received: int = 0,
        snap_last_io_s: float = 0.0,
        snap_stream_db: int = -1,
        buffered: list[tuple[int, bytes]] | None = None,
    ) -> None:
        self.gen: int = gen
        self.host: str = host
        self.port: int = port
        self.state: LinkState = state
        self.connect_at_s: float = connect_at_s
        self.backoff_s: float = backoff_s
        # prepare_link asked, link_ready not back yet
        self.awaiting_loop: bool = awaiting_loop
        # bumped on every loss, so a late loader result of an older attempt is dropped
        self.attempt: int = attempt
        self.sock: zmq.Socket[bytes] | None = sock
        # The RESP connection: the probe that tells a redactor master from a Redis one, then, for a Redis
        # master, the replication link itself (redis_master.py).
        self.resp: RespMasterConn | None = resp
        # the bus is tried because the probe reached no RESP port
        self.probe_unreachable: bool = probe_unreachable
        # the bus port the master's probe reply gave (0: its port + 10000)
        self.bus_port = 0
        self.monitor: zmq.Socket[bytes] | None = monitor
        self.replid: str = replid
        # applied offset when this attempt started
        self.offset: int = offset
        # stream bytes received (and handed to the loop)
        self.read_pos: int = read_pos
        self.last_io_s: float = last_io_s
        self.last_ack_s: float = last_ack_s
        self.getack_pending: bool = getack_pending
        # time.time() of the last loss of a connected link (0: none yet)
        self.down_since_s: float = down_since_s
        self.was_connected: bool = was_connected
        # TRANSFER: the thread parsing the snapshot as it arrives, and what FULLRESYNC announced.
        self.loader: SnapshotLoader | None = loader
        self.snap_replid: str = snap_replid
        self.snap_offset: int = snap_offset
        self.snap_size: int = snap_size
        self.snap_received: int = snap_received
        self.snap_last_io_s: float = snap_last_io_s
        # the database the stream has selected at the snapshot's offset (snap_end)
        self.snap_stream_db: int = snap_stream_db
        # LOADING: stream messages that arrived while the snapshot is parsed.
        self.buffered: list[tuple[int, bytes]] = [] if buffered is None else buffered


class ReplicaSide:
    """This node's link to its master, if it has one (bus thread)."""

    def __init__(self, actor: ReplicationActor) -> None:
        self.actor = actor
        self.bus = actor.bus
        self.server = actor.server
        self.config = actor.config
        self.link: MasterLink | None = None

    def say_bye(self) -> bool:
        """Node or actor stopping: tell the master (True if there was one to tell)."""
        link = self.link
        if link is None or (link.sock is None and link.resp is None):
            return False
        self.send_master(link, peer.Bye())
        return True

    def close(self) -> None:
        if self.link is not None:
            self._close_link(self.link)

    def on_feed(self, end_pos: int) -> None:
        """Our backlog grew to ``end_pos`` (the loop applied the stream up to it): a GetAck may be answered."""
        link = self.link
        if link is not None and link.getack_pending and end_pos >= link.read_pos:
            link.getack_pending = False
            self.send_ack(link, time.monotonic())

    def on_replicaof(self, message: m.ReplicaOf) -> None:
        gen, host, port = message.gen, message.host, message.port
        link = self.link
        if link is not None:
            if link.sock is not None:
                self.send_master(link, peer.Bye())
            self._close_link(link)
            self.link = None
        if host is not None:
            self.link = MasterLink(gen, host, port, connect_at_s=time.monotonic())
        self.actor.publish(force=True, link_changed=True, gen=gen)

    def _close_link(self, link: MasterLink) -> None:
        self._close_link_socket(link)
        if link.loader is not None:
            link.loader.abandon()
            link.loader = None
        link.buffered.clear()

    def _close_link_socket(self, link: MasterLink) -> None:
        if link.resp is not None:
            link.resp.close()
            link.resp = None
        if link.monitor is not None:
            # The monitor stops before its reader closes: the other order can hang the process (protocol/monitor.py).
            self.bus.remove_socket(link.monitor, close=False)
            close_monitor(link.sock, link.monitor)
            link.monitor = None
        if link.sock is not None:
            self.bus.remove_socket(link.sock, close=True)
            link.sock = None

    def _set_link_state(self, link: MasterLink, state: LinkState) -> None:
        link.state = state
        self.actor.publish(force=True, link_changed=True, gen=link.gen)

    def on_link_ready(self, message: m.LinkReady) -> None:
        gen, replid, offset = message.gen, message.replid, message.offset
        link = self.link
        if link is None or link.gen != gen or link.state is not LinkState.CONNECT or not link.awaiting_loop:
            return
        link.awaiting_loop = False
        link.replid, link.offset, link.read_pos = replid, offset, offset
        bus = self.bus
        actor_ref = bus.actor_ref

        def report(event: RespMasterEvent) -> None:  # from the connection's thread
            actor_ref.tell(event)
            bus.wake()

        log.info(
            "master_connecting",
            master=f"{link.host}:{link.port}",
            message=f"Connecting to MASTER {link.host}:{link.port}",
        )
        link.resp = RespMasterConn(
            link.host,
            link.port,
            self.config["masterauth"] or "",
            self.config["masteruser"] or "",
            self.config["replica-announce-port"] or self.server.port,
            self.config["replica-announce-ip"] or "",
            report,
        )
        link.last_io_s = time.monotonic()
        self._set_link_state(link, LinkState.CONNECTING)

    def on_resp_master_event(self, event: RespMasterEvent) -> None:
        """The RESP connection's thread reported: a redactor master (go on over the bus), a Redis master's
        frame, or the loss of the connection."""
        link = self.link
        if link is None or link.resp is not event.conn:
            return  # a connection of an older attempt
        if event.lost:
            self._link_lost(link, event.lost)
            return
        frame = event.frame
        if isinstance(frame, RedactorMaster):
            link.resp.close()
            link.resp = None
            link.probe_unreachable = frame.unreachable
            link.bus_port = frame.bus_port
            self._connect_bus(link)
            return
        if frame is not None:
            link.last_io_s = time.monotonic()
            self._on_master_message(link, frame)

    def on_getack_in_stream(self, message: m.GetAckInStream) -> None:
        """The loop applied a ``REPLCONF GETACK *`` of the stream: ack as a GetAck frame would."""
        link = self.link
        if link is not None and link.gen == message.gen:
            self._on_master_message(link, peer.GetAck())

    def _connect_bus(self, link: MasterLink) -> None:
        """A redactor master: the link goes over its node bus (a DEALER to its bus port)."""
        sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.ROUTING_ID, b"R" + os.urandom(8))
        host = link.host
        bus_port = link.bus_port or bus_port_for(link.port)
        if ":" in host:
            sock.setsockopt(zmq.IPV6, 1)
            endpoint = f"tcp://[{host}]:{bus_port}"
        else:
            endpoint = f"tcp://{host}:{bus_port}"
        # With bus CURVE keys, the link talks only to the holder of the master's trusted key (bus/curve.py).
        self.bus.curve.apply_client(sock, host, bus_port)
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as exc:
            sock.close(0)
            log.warning(
                "master_connect_failed",
                master=f"{host}:{link.port}",
                reason=str(exc),
                message=f"Error condition on socket for SYNC: {exc}",
            )
            self._link_lost(link, f"connect failed: {exc}")
            return
        link.sock = sock
        link.monitor = open_monitor(sock, zmq.EVENT_DISCONNECTED)
        self.bus.add_socket(sock, lambda: self._drain_link(link))
        self.bus.add_socket(link.monitor, lambda: self._drain_monitor(link))
        link.last_io_s = time.monotonic()
        self.send_master(link, peer.Hello(self._master_auth(), PEER_PROTOCOL_VERSION))

    def _master_auth(self) -> str:
        """masteruser / masterauth, as the master's bus reads them (protocol/peer.py's pack_auth)."""
        return peer.pack_auth(self.config["masteruser"], self.config["masterauth"])

    def send_master(self, link: MasterLink, frame: peer.PeerFrame) -> None:
        if link.resp is not None:
            link.resp.send_frame(frame)
            return
        if link.sock is None:
            return
        try:
            link.sock.send_multipart(peer.encode(frame), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # queue full or socket closing: the periodic messages and the timeouts cover it

    def _drain_monitor(self, link: MasterLink) -> None:
        monitor = link.monitor
        if monitor is None:
            return
        lost = False
        while True:
            try:
                frames = monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            except zmq.ZMQError:
                break
            if event_number(frames) == zmq.EVENT_DISCONNECTED:
                lost = True
        if lost and self.link is link and link.state is not LinkState.CONNECT:
            self._link_lost(link, "connection closed")

    def _drain_link(self, link: MasterLink) -> None:
        for _ in range(10_000):
            sock = link.sock
            if sock is None or self.link is not link:
                return
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                frame = peer.decode(frames)
            except peer.PeerFrameError as exc:
                log.info("node_message_ignored", reason=f"bad frame: {exc}")
                continue
            link.last_io_s = time.monotonic()
            self._on_master_message(link, frame)

    def _on_master_message(self, link: MasterLink, frame: peer.PeerFrame) -> None:
        state = link.state
        if isinstance(frame, peer.Stream):
            self._on_stream(link, frame.start, frame.data)
        elif isinstance(frame, peer.Ping):
            if state is LinkState.CONNECTED and frame.sent > link.read_pos:
                self._link_lost(link, f"stream gap: master sent up to {frame.sent}, received {link.read_pos}")
        elif isinstance(frame, peer.SnapChunk):
            self._on_snap_chunk(link, frame.at, frame.data)
        elif isinstance(frame, peer.SnapBegin) and state is LinkState.TRANSFER:
            link.snap_size = frame.size
            self.actor.publish(force=True)
        elif isinstance(frame, peer.SnapEnd) and state is LinkState.TRANSFER:
            self._on_snap_end(link, frame.size, frame.stream_db)
        elif isinstance(frame, peer.GetAck):
            if state is LinkState.CONNECTED:
                if self.server.repl_offset >= link.read_pos:
                    self.send_ack(link, time.monotonic())
                else:
                    link.getack_pending = True
        elif isinstance(frame, peer.HelloOk) and state is LinkState.CONNECTING:
            psync_offset = link.offset + 1 if link.replid != "?" else -1
            port = self.config["replica-announce-port"] or self.server.port
            ip = self.config["replica-announce-ip"] or _local_ip_towards(link.host, link.port)
            self.send_master(
                link,
                peer.Psync(link.replid, psync_offset, self.server.run_id, port, ip, self._master_auth()),
            )
            log.info(
                "replica_sync_requested",
                role="replica",
                master=f"{link.host}:{link.port}",
                replid=link.replid,
                offset=psync_offset,
                message="MASTER <-> REPLICA sync started",
            )
            self._set_link_state(link, LinkState.HANDSHAKE)
        elif isinstance(frame, peer.Continue) and state is LinkState.HANDSHAKE:
            replid, stream_db = frame.replid, frame.stream_db
            backlog = self.actor.backlog
            if backlog is None or backlog.end_pos != link.offset:
                self.actor.backlog = Backlog(self.config["repl-backlog-size"], link.offset, stream_db)
            self.actor.tell_loop(m.PartialAccepted(link.gen, replid, stream_db))
            log.info(
                "partial_resync_succeeded",
                master=f"{link.host}:{link.port}",
                offset=link.offset + 1,
                replid=replid,
                message="MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.",
            )
            self._link_up(link, partial=True)
        elif isinstance(frame, peer.FullResync) and state is LinkState.HANDSHAKE:
            self._on_fullresync(link, frame.replid, frame.offset)
        elif isinstance(frame, peer.Error):
            log.warning("master_refused", master=f"{link.host}:{link.port}", reason=frame.message)
            self._link_lost(link, f"master error: {frame.message}")
        elif isinstance(frame, peer.Bye):
            if state is not LinkState.CONNECT:
                self._link_lost(link, "master closed the link")

    def _link_up(self, link: MasterLink, partial: bool) -> None:
        if link.was_connected or link.down_since_s:
            down_ms = round((time.time() - link.down_since_s) * 1000, 1) if link.down_since_s else 0
            log.info("link_restored", master=f"{link.host}:{link.port}", partial=partial, down_ms=down_ms)
        link.was_connected = True
        link.backoff_s = RECONNECT_BACKOFF_MIN_S
        self._set_link_state(link, LinkState.CONNECTED)
        self.send_ack(link, time.monotonic())
        if link.resp is None:  # a redactor master: its loop may write the stream to ours (direct.py)
            self.actor.tell_loop(m.OpenDirect(link.gen))

    def _on_fullresync(self, link: MasterLink, replid: str, offset: int) -> None:
        link.snap_replid, link.snap_offset = replid, offset
        link.snap_size, link.snap_received = -1, 0
        link.snap_last_io_s = time.monotonic()
        bus = self.bus
        actor_ref = bus.actor_ref

        def deliver(message: Loaded) -> None:
            actor_ref.tell(message)
            bus.wake()

        config = self.config
        link.loader = SnapshotLoader(
            link.attempt, len(self.server.keyspace.dbs), deliver, lambda: int(config["key-load-delay"])
        )
        log.info(
            "full_sync_started",
            role="replica",
            master=f"{link.host}:{link.port}",
            replid=replid,
            offset=offset,
            message=f"Full resync from master: {replid}:{offset}",
        )
        self._set_link_state(link, LinkState.TRANSFER)

    def _on_snap_chunk(self, link: MasterLink, at: int, chunk: bytes) -> None:
        if link.state is not LinkState.TRANSFER or link.loader is None:
            return
        if at != link.snap_received:
            self._link_lost(link, f"snapshot chunk at {at}, expected {link.snap_received}")
            return
        link.loader.feed(chunk)
        link.snap_received += len(chunk)
        link.snap_last_io_s = time.monotonic()
        self.send_master(link, peer.SnapAck(link.snap_received))

    def _on_snap_end(self, link: MasterLink, size: int, stream_db: int) -> None:
        if link.loader is None:
            return
        if size != link.snap_received:
            self._link_lost(link, f"snapshot truncated: {link.snap_received} of {size} bytes")
            return
        link.loader.finish()
        link.snap_size = size
        link.snap_stream_db = stream_db
        link.read_pos = link.snap_offset
        self._set_link_state(link, LinkState.LOADING)

    def on_snapshot_loaded(self, message: Loaded) -> None:
        """A loader thread's result (told to the bus actor from that thread)."""
        link = self.link
        if (
            link is None
            or link.attempt != message.attempt
            or link.state not in (LinkState.TRANSFER, LinkState.LOADING)
        ):
            return
        result = message.result
        link.loader = None
        if isinstance(result, Exception):
            log.error("snapshot_load_failed", master=f"{link.host}:{link.port}", reason=str(result))
            self._link_lost(link, "snapshot could not be loaded")
            return
        if link.state is not LinkState.LOADING:  # cannot happen: load_stream waits for finish() (snap_end)
            self._link_lost(link, "snapshot loaded before its end was announced")
            return
        stream_db = link.snap_stream_db
        if stream_db < 0:  # a Redis master says it in the RDB (repl-stream-db), not in a frame
            try:
                stream_db = int(result.aux.get("repl-stream-db", b"0"))
            except ValueError:
                stream_db = 0
        self.actor.tell_loop(
            m.InstallSnapshot(link.gen, result.dbs, link.snap_replid, link.snap_offset, stream_db)
        )
        log.info(
            "snapshot_loaded",
            master=f"{link.host}:{link.port}",
            bytes=link.snap_size,
            keys=sum(len(db.data) for db in result.dbs),
            duration_ms=message.duration_ms,
            offset=link.snap_offset,
            message="MASTER <-> REPLICA sync: Finished with success",
        )
        buffered = link.buffered
        link.buffered = []
        self._link_up(link, partial=False)
        for start, data in buffered:
            self._on_stream(link, start, data)

    def _on_stream(self, link: MasterLink, start: int, data: bytes) -> None:
        if link.state is LinkState.LOADING:
            link.buffered.append((start, data))
            return
        if link.state is not LinkState.CONNECTED:
            return
        if start != link.read_pos:
            self._link_lost(link, f"stream gap: got {start}, expected {link.read_pos}")
            return
        link.read_pos += len(data)
        self.actor.tell_loop(m.ApplyStream(link.gen, start, data))

    def send_ack(self, link: MasterLink, now: float) -> None:
        link.last_ack_s = now
        offset = self.server.repl_offset if link.state is LinkState.CONNECTED else -1
        self.send_master(link, peer.Ack(offset))

    def on_relink(self, message: m.Relink) -> None:
        link = self.link
        if link is not None and link.gen == message.gen and link.state is not LinkState.CONNECT:
            self._link_lost(link, message.reason)

    def _link_lost(self, link: MasterLink, reason: str) -> None:
        old = link.state
        self._close_link(link)
        link.attempt += 1
        link.awaiting_loop = False
        link.getack_pending = False
        if old is LinkState.CONNECTED:
            link.down_since_s = time.time()
        link.connect_at_s = time.monotonic() + link.backoff_s
        link.backoff_s = min(link.backoff_s * 2, RECONNECT_BACKOFF_MAX_S)
        log.warning(
            "link_lost",
            role="replica",
            master=f"{link.host}:{link.port}",
            reason=reason,
            state=old.value,
            retry_in_ms=round((link.connect_at_s - time.monotonic()) * 1000),
            **({"message": "Connection with master lost."} if old is LinkState.CONNECTED else {}),
        )
        self._set_link_state(link, LinkState.CONNECT)

    def tick(self, now: float) -> None:
        link = self.link
        if link is None:
            return
        if link.state is LinkState.CONNECT:
            if not link.awaiting_loop and now >= link.connect_at_s:
                link.awaiting_loop = True
                self.actor.tell_loop(m.PrepareLink(link.gen))
            return
        if (
            link.state is LinkState.CONNECTING
            and link.probe_unreachable
            and link.sock is not None
            and now - link.last_io_s > PROBE_RETRY_S
        ):
            self._link_lost(link, "master not answering")
            return
        if now - link.last_io_s > self.config["repl-timeout"]:
            # Redis's sentence for the stage the link timed out in (replicationCron), which operators grep for.
            log.warning("master_timeout", master=f"{link.host}:{link.port}", message=TIMEOUT_SAID[link.state])
            self._link_lost(
                link, f"no data from the master for {self.config['repl-timeout']} s (repl-timeout)"
            )
            return
        if link.state is not LinkState.CONNECTING and now - link.last_ack_s >= ACK_INTERVAL_S:
            self.send_ack(link, now)
