"""Replication: master-replica sets over ZeroMQ + msgpack, with full sync, partial resync (PSYNC2), WAIT and
min-replicas. Semantics follow Redis 7.0's replication.c; the transport is the node bus (actors/bus.py).

Two halves, split by thread, as persistence is:

    Replication        loop-side facade (``server.replication``), on the master actor's loop thread. Owns what
                       commands see: the role, the replication ids, the master replication offset
                       (``server.repl_offset``), the replica's master client, WAIT and min-replicas. It feeds
                       each tick's propagated bytes to the actor, forks snapshot children, applies the master's
                       stream on a replica and swaps a loaded snapshot in.
    ReplicationActor   the bus actor (it *is* the node's ``BusActor``, extended): owns the sockets, the backlog,
                       the replicas attached to this node and, on a replica, the link to its master. It never
                       touches the keyspace: everything that changes data goes to the loop with
                       ``call_threadsafe`` (FIFO), everything the loop tells it comes over the inproc PUSH/PULL
                       pair, in order with the stream (``send_to_bus``).

The wire (node-to-node frames ``[b"N", header, payload?]``; the header is msgpack ``[verb, fields...]``)::

    replica -> master   hello [auth, protocol version]        liveness, auth and version check: hello_ok / error
                        psync [replid, offset+1, node_id, listening_port, ip, auth]   ("?", -1: no history)
                        ack [applied offset | -1]             every second, and at once after a getack
                        snap_ack [bytes received]             per snapshot chunk (flow control)
                        bye []                                the replica leaves (REPLICAOF elsewhere, shutdown)
    master -> replica   continue [replid, stream db]          partial resync accepted; the stream follows
                        fullresync [replid, offset]           a snapshot at that offset will follow
                        snap_begin [-1] / snap [at] + chunk / snap_end [size, stream db]
                                                              (the size is known only at the end)
                        stream [start] + bytes                the replication stream from position start
                        ping [position sent | -1]             every repl-ping-replica-period (1 s while syncing)
                        getack [] / error [message] / bye []

A replica connects a DEALER to the master's bus port (its RESP port + 10000, the bus-port default). Offsets are
Redis's: ``master_repl_offset`` counts stream bytes; PSYNC asks for ``offset + 1``, the first byte missing.
Every stream message carries its start position, so a replica notices any lost message (a gap) and resyncs,
which is partial when the backlog still has the bytes (the zguide Clone pattern's rule).

The stream's SELECTs are tracked as positions (``Backlog.db_at``), so CONTINUE tells the replica which database
the stream has selected where it resumes and FULLRESYNC's snapshot carries it too: a replica never depends on
remembering it (after a restart, say).

Full sync: the loop forks (``gc.freeze``; the child only writes the RDB with ``rdb.dump`` to
``temp-repl-<pid>-<job>.rdb``, writes one byte on a pipe once the file is complete, and leaves with
``os._exit``); the offset at fork time is the snapshot's offset, and from it on the stream is buffered per
replica. Save, transfer and load overlap, as Redis's diskless sync does (`repl-diskless-sync`): the actor sends
the file while the child still writes it (what is below its size is final), in chunks of up to 1 MiB within a
window of acks, and learns it is complete from the pipe (the cron reaps the child later). The replica feeds the
chunks to a loader thread that parses them as they arrive (``rdb_reader.load_stream``; the old data is served
meanwhile); once the end is announced and parsed, the loop swaps the new databases in at once. A transfer that
breaks off, is short or fails its checksum leaves the old data in place and the replica starts over.

Chained replication: a replica keeps a backlog of the stream it applied, byte for byte the master's, and serves
sub-replicas from it with the same ids and offsets.
"""

from __future__ import annotations

import gc
import os
import queue
import resource
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, BinaryIO

import hiredis
import msgpack
import structlog
import zmq

from actors.bus.bus import NODE_FRAME, BusActor
from actors.persistence.rdb import reader as rdb_reader
from actors.persistence.rdb import writer as rdb_writer
from actors.persistence.rdb.format import RdbData
from actors.replication.backlog import Backlog
from actors.server.client import Client, ClientKind
from actors.server.server import BLOCKED
from protocol import errors
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.loop.master import MasterActor
    from actors.server.server import Server

log = structlog.get_logger("redactor.replication")

REPLID_ZERO = "0" * 40
# Version of the node-to-node replication protocol below; a master refuses a replica speaking another one.
REPL_PROTOCOL_VERSION = 1
# A replica finds its master's bus here (the bus-port default: RESP port + 10000).
BUS_PORT_OFFSET = 10000
# Snapshot transfer: chunk size, and how many unacknowledged bytes may be in flight to one replica (enough to
# keep a loopback or LAN link busy, small enough that a stalled replica costs little memory).
SNAPSHOT_CHUNK_BYTES = 1024 * 1024
SNAPSHOT_WINDOW_BYTES = 8 * SNAPSHOT_CHUNK_BYTES
# While the child still writes the file, a chunk shorter than this waits for more (unless it is the last).
SNAPSHOT_MIN_PARTIAL_CHUNK_BYTES = 256 * 1024
# Stream messages are cut at this size so one message never holds a huge batch (a replica parses them on its
# loop thread between other clients' commands).
STREAM_MESSAGE_MAX_BYTES = 1024 * 1024
# Redis's default client-output-buffer-limit for replicas (hard limit): a replica whose buffered stream (while
# it syncs) grows past this is dropped rather than letting the master's memory grow without bound.
REPLICA_BUFFER_LIMIT_BYTES = 256 * 1024 * 1024
# A replica acks its offset this often (Redis: once a second from replicationCron).
ACK_INTERVAL_S = 1.0
# While a replica waits for its snapshot the master keeps it alive this often (Redis sends a newline a second).
SYNC_KEEPALIVE_INTERVAL_S = 1.0
# Reconnection backoff of a replica that lost its master: doubles from the minimum up to the maximum.
RECONNECT_BACKOFF_MIN_S = 0.1
RECONNECT_BACKOFF_MAX_S = 2.0
# Published state (INFO) is refreshed at least this often even when nothing changes.
PUBLISH_INTERVAL_S = 0.5
# Failed commands of the master's stream are logged at most this often (they mean the datasets diverged).
APPLY_ERROR_LOG_INTERVAL_S = 10.0
# A forked snapshot is written to the job's own name (a replica parses what it receives without a file).
SNAPSHOT_TEMP_FILE = "temp-repl-{pid}-{job}.rdb"
# What a snapshot child writes on its pipe once its file is complete (it exits without it on failure).
SNAPSHOT_DONE_BYTE = b"1"

WAIT_ON_REPLICA = (
    "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is "
    "configured to be writable (which is not the default) writes to replicas are just local and are not "
    "propagated."
)
UNBLOCKED_ROLE_CHANGE = (
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"
)


def new_replid() -> str:
    """A fresh replication id: 40 random hex characters, as Redis's changeReplicationId."""
    return os.urandom(20).hex()


def _pack(verb: str, *fields: Any) -> bytes:
    return bytes(msgpack.packb([verb, *fields], use_bin_type=True))


def _unpack(frame: bytes) -> list[Any]:
    message = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise ValueError("a node message header is [verb, fields...]")
    return message


def _command_size(argv: list[bytes]) -> int:
    """Bytes of ``argv`` as ``encode_command`` writes it: how far one command of the stream reaches."""
    size = 3 + len(str(len(argv)))
    for arg in argv:
        n = len(arg)
        size += n + 5 + len(str(n))
    return size


def _local_ip_towards(host: str, port: int) -> str:
    """The address this host uses to reach ``host`` (what the master shows as the replica's ip)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, port))  # UDP: picks a route, sends nothing
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"


# -- states ------------------------------------------------------------------------------------------------


class LinkState(Enum):
    """A replica's link to its master (Redis's repl_state)."""

    NONE = "none"  # not a replica: there is no master to follow
    CONNECT = "connect"  # must (re)connect: waits out its backoff, then asks the loop where its stream stands
    CONNECTING = "connecting"  # DEALER connected, hello sent: waits for the master to answer at all
    HANDSHAKE = "handshake"  # hello answered, PSYNC sent: waits for CONTINUE or FULLRESYNC
    TRANSFER = "transfer"  # FULLRESYNC: waits for the chunks of the snapshot; a loader thread parses each
    LOADING = "loading"  # snapshot received: the loader thread finishes it; the stream is buffered meanwhile
    CONNECTED = "connected"  # streaming: applies the master's stream in order, acks every second


# What ROLE calls each link state (Redis's slavestate strings).
ROLE_STATE_NAMES = {
    LinkState.NONE: "none",
    LinkState.CONNECT: "connect",
    LinkState.CONNECTING: "connecting",
    LinkState.HANDSHAKE: "handshake",
    LinkState.TRANSFER: "sync",
    LinkState.LOADING: "sync",
    LinkState.CONNECTED: "connected",
}


class ReplicaState(Enum):
    """A replica attached to this node, as its master sees it (Redis's replstate)."""

    WAIT_BGSAVE_START = "wait_bgsave_start"  # needs a snapshot: waits for a fork (or the running one)
    WAIT_BGSAVE_END = "wait_bgsave_end"  # forked at the snapshot's offset: the stream from there is buffered,
    # and the file goes out as the child writes it
    SEND_BULK = "send_bulk"  # the file is complete: the rest of it goes out, within a window of acks
    ONLINE = "online"  # streaming: gets each batch of the stream as it is fed


# What INFO calls each replica state (replstateToString).
INFO_STATE_NAMES = {
    ReplicaState.WAIT_BGSAVE_START: "wait_bgsave",
    ReplicaState.WAIT_BGSAVE_END: "wait_bgsave",
    ReplicaState.SEND_BULK: "send_bulk",
    ReplicaState.ONLINE: "online",
}


class JobState(Enum):
    """A snapshot made for replicas."""

    REQUESTED = "requested"  # the loop was asked to fork; replicas needing a snapshot may still join
    FORKED = "forked"  # the child writes the file (replicas are sent it as it grows); its offset is known
    DONE = "done"  # the file is complete: its size is final; replicas are sent the rest of it


# -- views the actor publishes for the loop (immutable; replaced whole, so reading needs no lock) -------------


@dataclass(frozen=True)
class ReplicaView:
    ip: str
    port: int
    state: ReplicaState
    ack_offset: int
    ack_time_s: float  # time.monotonic() of the latest ack (or of going online)


@dataclass(frozen=True)
class LinkView:
    state: LinkState = LinkState.NONE
    read_offset: int = 0  # stream bytes received and handed to the loop
    last_io_s: float = 0.0  # time.monotonic() of the latest message from the master
    down_since_s: float = 0.0  # time.time() the link went down (0: never up)
    transfer_size: int = -1  # snapshot bytes announced (-1: not yet known)
    transfer_read: int = 0
    transfer_last_io_s: float = 0.0


@dataclass(frozen=True)
class BacklogView:
    first_byte_offset: int
    histlen: int


# -- the loop-side facade ----------------------------------------------------------------------------------


@dataclass
class _Waiter:
    """A client blocked in WAIT."""

    client: Client
    target_offset: int
    numreplicas: int
    timer: Any = None  # asyncio.TimerHandle of the timeout, None for WAIT ... 0


class Replication:
    """Everything replication does on the loop thread; ``server.replication`` points here."""

    def __init__(self, server: Server, master: MasterActor) -> None:
        self.server = server
        self.master = master
        self.config = server.config
        # Replication ids (PSYNC2): the current history, and the one it continues (after a promotion or a
        # restart from an RDB) with the first offset that is no longer part of it.
        self.replid = new_replid()
        self.replid2 = REPLID_ZERO
        self.second_offset = -1
        # The master this node follows (None: it is a master).
        self.master_host: str | None = None
        self.master_port = 0
        # Bumped whenever the master changes (and when the actor restarts): work of an older link is dropped.
        self.gen = 0
        # False until this node has a history to continue: then it asks PSYNC ? -1 (a forced full sync).
        self.psync_known = True
        # On a replica: the client the master's stream runs as (its db is the stream's selected db).
        self.master_client: Client | None = None
        # The stream parser of the current link and the bytes it holds that are not applied yet.
        self._reader: Any = hiredis.Reader()
        self._tail = bytearray()
        # Stream bytes handed to the loop so far (applied plus the tail).
        self._read_pos = 0
        # Stream position up to which the feed has handed bytes to the actor.
        self.fed_pos = 0
        # False until the dataset is loaded (node start): the role and ids are settled only then.
        self.ready = False
        self._actor_waiting = False
        # Published by the actor thread (read-only here).
        self.link_view = LinkView()
        self.replicas_view: tuple[ReplicaView, ...] = ()
        self.backlog_view: BacklogView | None = None
        self.waiters: list[_Waiter] = []
        self._getack_requested = False
        # Snapshot children: pid -> (job, temp path).
        self._children: dict[int, tuple[int, str]] = {}
        self._last_apply_error_log_s = 0.0
        server.replication = self
        if server.persistence is not None:
            server.persistence.repl_info = self.rdb_repl_info
        master.stream_sinks.append(self.feed)
        master.after_flush.append(self._after_flush)
        master.cron_jobs.append(self.cron)
        server.info_sections["replication"] = self.info
        server.client_removed_hooks.append(self._client_removed)
        self.config.on_change("replica-serve-stale-data", lambda value: self._update_stale())
        self.config.on_change("min-replicas-to-write", lambda value: self._update_write_refusal())
        self.config.on_change("min-replicas-max-lag", lambda value: self._update_write_refusal())

    # -- talking to the actor ------------------------------------------------------------------------------

    def _tell(self, verb: bytes, fields: list[Any], payload: bytes | None = None) -> None:
        parts = [verb, msgpack.packb(fields, use_bin_type=True)]
        if payload is not None:
            parts.append(payload)
        self.master.send_to_bus(parts)

    def _send_ids(self) -> None:
        self._tell(b"ids", [self.replid, self.replid2, self.second_offset])

    # -- start-up --------------------------------------------------------------------------------------------

    def on_dataset_loaded(self) -> None:
        """Node start, after loading: take the replication info of the RDB, then follow ``replicaof``."""
        server = self.server
        self._remove_stale_temp_files()
        loaded_id, loaded_offset = server.loaded_repl_id, server.loaded_repl_offset
        has_info = bool(loaded_id) and loaded_offset is not None and loaded_offset >= 0
        target = self.config["replicaof"]
        if target:
            if has_info:
                # A replica restarted from its RDB continues the history it had (PSYNC with it).
                assert loaded_id is not None and loaded_offset is not None
                self.replid = loaded_id
                server.repl_offset = loaded_offset
                self.fed_pos = loaded_offset
            else:
                self.psync_known = False
            self._set_replica_state(str(target[0]), int(target[1]))
            log.info(
                "replicaof_configured",
                master=f"{target[0]}:{target[1]}",
                replid=self.replid,
                offset=server.repl_offset,
                history=self.psync_known,
            )
        elif has_info:
            # A master restarted from its RDB: the old history is the secondary id up to where it ends, and the
            # backlog starts there, so its replicas continue with a partial resync (Redis 7.0 does the same).
            assert loaded_id is not None and loaded_offset is not None
            self.replid2 = loaded_id
            self.second_offset = loaded_offset + 1
            server.repl_offset = loaded_offset
            self.fed_pos = loaded_offset
            server.repl_feeding = True
            server.prop_db = -1
            log.info(
                "replication_history_restored", replid=self.replid, replid2=loaded_id, offset=loaded_offset
            )
        self.ready = True
        if self._actor_waiting:
            self._actor_waiting = False
            self._announce()

    def actor_started(self) -> None:
        """The actor (re)started with empty state: it learns the role, the ids and where the stream stands."""
        if not self.ready:
            self._actor_waiting = True
            return
        self._announce()

    def _announce(self) -> None:
        self._send_ids()
        if self.master_host is not None:
            # A new generation: batches the previous actor handed over but the loop has not run yet are dropped,
            # and the new link continues from what was applied.
            self.gen += 1
            self._tell(b"replicaof", [self.gen, self.master_host, self.master_port])
        elif self.server.repl_feeding:
            self.enable_feeding()
        # From here on the actor knows the ids and the backlog: it may answer replicas' PSYNCs.
        self._tell(b"ready", [])

    def _remove_stale_temp_files(self) -> None:
        """Temp snapshots left by a killed node (its own pid is new, so none of them is in use by it)."""
        try:
            names = os.listdir(".")
        except OSError:
            return
        for name in names:
            if name.startswith("temp-repl-") and name.endswith(".rdb"):
                try:
                    os.unlink(name)
                except OSError:
                    pass

    # -- the stream (master side) ----------------------------------------------------------------------------

    def enable_feeding(self) -> None:
        """Start (or restart) the backlog at the current offset; the next write SELECTs its database."""
        server = self.server
        server.repl_feeding = True
        server.prop_db = -1
        server.repl_select_points.clear()
        self.fed_pos = server.repl_offset
        self._tell(b"backlog", [server.repl_offset, -1, False])

    def feed(self, data: bytes) -> None:
        """Stream sink (end of tick): hand the tick's counted stream bytes to the actor, with their position."""
        server = self.server
        counted = server.repl_offset - self.fed_pos
        if counted <= 0:
            server.repl_select_points.clear()
            return
        if counted > len(data):
            # Stream bytes were counted that this tick does not carry: the backlog cannot be trusted any more.
            log.error("replication_feed_mismatch", counted=counted, bytes=len(data))
            self.enable_feeding()
            return
        if counted < len(data):
            data = data[len(data) - counted :]  # the head was propagated before the backlog existed
        start = self.fed_pos
        self.fed_pos = server.repl_offset
        selects = [point for point in server.repl_select_points if point[0] >= start]
        server.repl_select_points.clear()
        self._tell(b"feed", [start, selects], data)

    # -- snapshots (fork children) -----------------------------------------------------------------------------

    def request_snapshot(self, job: int) -> None:
        """Fork a child that writes the dataset as an RDB; tell the actor its offset (loop thread)."""
        server = self.server
        if not server.repl_feeding and self.master_host is None:
            self.enable_feeding()
        offset = server.repl_offset
        if self.master_host is None:
            stream_db = server.prop_db
        else:
            stream_db = self.master_client.db.id if self.master_client is not None else -1
        path = SNAPSHOT_TEMP_FILE.format(pid=os.getpid(), job=job)
        dbs = server.keyspace.dbs
        aux = rdb_writer.default_aux(self.replid, offset, max(stream_db, 0))
        compress, checksum = bool(self.config["rdbcompression"]), bool(self.config["rdbchecksum"])
        delay_s = float(getattr(server.persistence, "child_delay_s", 0.0) or 0.0)
        # The file exists before the fork (the actor streams it to replicas while the child writes it), and
        # the child reports a complete file on a pipe the actor polls: no wait for the cron to reap it.
        try:
            out_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            log.error("snapshot_fork_failed", job=job, reason=exc.strerror)
            self._tell(b"fork_failed", [job, str(exc.strerror)])
            return
        done_r, done_w = os.pipe()
        gc.freeze()
        started = time.perf_counter()
        try:
            pid = os.fork()
        except OSError as exc:
            gc.unfreeze()
            for fd in (out_fd, done_r, done_w):
                os.close(fd)
            _unlink_quietly(path)
            log.error("snapshot_fork_failed", job=job, reason=exc.strerror)
            self._tell(b"fork_failed", [job, str(exc.strerror)])
            return
        if pid == 0:  # the child: write the file and leave; no logging, sockets or locks here
            _snapshot_child(out_fd, done_w, dbs, aux, compress, checksum, delay_s)
        gc.unfreeze()
        os.close(out_fd)
        os.close(done_w)
        self._children[pid] = (job, path)
        log.info(
            "snapshot_forked",
            job=job,
            child_pid=pid,
            offset=offset,
            fork_usec=int((time.perf_counter() - started) * 1e6),
        )
        self._tell(b"forked", [job, pid, offset, stream_db, self.replid, path, done_r])

    def _reap_children(self) -> None:
        for pid, (job, path) in list(self._children.items()):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, -1
            if done == 0:
                continue
            del self._children[pid]
            ok = status == 0
            if not ok:
                if status < 0:
                    reason = "lost"
                elif os.WIFSIGNALED(status):
                    reason = f"signal {os.WTERMSIG(status)}"
                else:
                    reason = f"exit status {os.WEXITSTATUS(status)}"
                log.warning("snapshot_child_failed", job=job, child_pid=pid, reason=reason)
                _unlink_quietly(path)
            self._tell(b"snapshot_done", [job, ok, path])

    def kill_children(self) -> None:
        """Node shutdown: stop snapshot children (their files are temporary)."""
        for pid, (_job, path) in list(self._children.items()):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            _unlink_quietly(path)
        self._children.clear()

    # -- the replica side -------------------------------------------------------------------------------------

    def _ensure_master_client(self) -> Client:
        client = self.master_client
        if client is None:
            host = self.master_host or "?"
            client = Client(
                self.server, ClientKind.MASTER, f"{host}:{self.master_port}", f"bus:{self.server.port}"
            )
            client.authenticated = True
            self.master_client = client
            self.server.add_client(client)
        return client

    def _drop_master_client(self) -> None:
        client = self.master_client
        if client is not None:
            self.master_client = None
            client.multi = None
            self.server.remove_client(client)

    def _reset_reader(self) -> None:
        self._reader = hiredis.Reader()
        self._tail = bytearray()
        self._read_pos = self.server.repl_offset
        master_client = self.master_client
        if master_client is not None:
            # A transaction the old link left open can never be completed by the new one.
            master_client.multi = None
            master_client.multi_error = False

    def prepare_link(self, gen: int) -> None:
        """The actor is about to (re)connect: every batch it handed over so far has been applied (FIFO), so
        the applied offset is where the new link continues. A partial command left in the parser is dropped
        (the master sends it again from the offset)."""
        if gen != self.gen or self.master_host is None:
            return
        self._reset_reader()
        replid = self.replid if self.psync_known else "?"
        self._tell(b"link_ready", [gen, replid, self.server.repl_offset])

    def apply_stream(self, gen: int, start: int, data: bytes) -> None:
        """Run a batch of the master's stream as the master client, in order; then feed it to our backlog."""
        server = self.server
        if gen != self.gen or self.master_host is None:
            return
        if start != self._read_pos:
            log.warning("replication_stream_out_of_order", expected=self._read_pos, got=start)
            self._tell(b"relink", [gen, "stream out of order"])
            return
        self._read_pos += len(data)
        tail_was_empty = not self._tail
        reader = self._reader
        reader.feed(data)
        self._tail += data
        client = self._ensure_master_client()
        keyspace = server.keyspace
        base = server.repl_offset
        consumed = 0
        selects: list[tuple[int, int]] = []
        execute = server.execute
        keyspace.ignore_ttl = True
        try:
            while True:
                try:
                    argv = reader.gets()
                except hiredis.ProtocolError as exc:
                    log.error("replication_stream_unreadable", offset=base + consumed, reason=str(exc))
                    self._tell(b"relink", [gen, "stream unreadable"])
                    break
                if argv is False:
                    break
                if not isinstance(argv, list) or not argv or not all(isinstance(a, bytes) for a in argv):
                    log.error("replication_stream_unreadable", offset=base + consumed, reason="not a command")
                    self._tell(b"relink", [gen, "stream unreadable"])
                    break
                if len(argv) == 2 and argv[0].lower() == b"select" and argv[1].isdigit():
                    selects.append((base + consumed, int(argv[1])))
                reply = execute(client, argv)
                consumed += _command_size(argv)
                if isinstance(reply, CommandError):
                    self._log_apply_error(argv, reply)
        finally:
            keyspace.ignore_ttl = False
        if not consumed:
            return
        if tail_was_empty and consumed == len(data):
            applied = data
            self._tail = bytearray()
        else:
            applied = bytes(self._tail[:consumed])
            del self._tail[:consumed]
        server.repl_offset = base + consumed
        self.fed_pos = server.repl_offset
        self._tell(b"feed", [base, selects], applied)
        self.master.schedule_flush()  # the AOF sink writes what the stream changed

    def _log_apply_error(self, argv: list[bytes], reply: CommandError) -> None:
        now = time.monotonic()
        if now - self._last_apply_error_log_s >= APPLY_ERROR_LOG_INTERVAL_S:
            self._last_apply_error_log_s = now
            log.warning(
                "replicated_command_failed", command=argv[0].decode("utf-8", "replace"), reason=str(reply)
            )

    def install_snapshot(
        self, gen: int, dbs: list[Database], replid: str, offset: int, stream_db: int
    ) -> None:
        """Full sync done: swap the loaded databases in at once and take the master's history."""
        server = self.server
        if gen != self.gen or self.master_host is None:
            return
        server.keyspace.replace_all(dbs)
        server.repl_offset = offset
        self.fed_pos = offset
        self._reset_reader()
        self.replid = replid
        self.replid2 = REPLID_ZERO
        self.second_offset = -1
        self.psync_known = True
        client = self._ensure_master_client()
        client.select(stream_db if 0 <= stream_db < len(server.keyspace.dbs) else 0)
        self._send_ids()
        self._tell(b"backlog", [offset, stream_db, True])
        log.info("snapshot_installed", keys=server.keyspace.total_keys(), offset=offset, replid=replid)
        persistence = server.persistence
        if persistence is not None and self.config["appendonly"]:
            # The AOF describes the old dataset: start it over from the new one (restartAOFAfterSYNC).
            try:
                persistence.stop_append_only()
                persistence.start_append_only()
            except Exception as exc:
                log.error("aof_restart_after_sync_failed", reason=str(exc))

    def partial_accepted(self, gen: int, replid: str, stream_db: int) -> None:
        """CONTINUE: the master may have a new id (it was promoted, or restarted from its RDB)."""
        server = self.server
        if gen != self.gen or self.master_host is None:
            return
        if replid != self.replid:
            self.replid2 = self.replid
            self.second_offset = server.repl_offset + 1
            self.replid = replid
            self._send_ids()
            self._tell(b"drop_replicas", ["master replication id changed"])
        self.psync_known = True
        client = self._ensure_master_client()
        if 0 <= stream_db < len(server.keyspace.dbs):
            client.select(stream_db)

    def link_changed(self, gen: int) -> None:
        """The actor published a new link state."""
        if gen == self.gen:
            self._update_stale()

    def _update_stale(self) -> None:
        server = self.server
        server.refuse_stale = (
            self.master_host is not None
            and not self.config["replica-serve-stale-data"]
            and self.link_view.state is not LinkState.CONNECTED
        )

    # -- role changes ---------------------------------------------------------------------------------------

    def set_master(self, host: str, port: int) -> str:
        """REPLICAOF host port. Returns the status reply."""
        if (
            self.master_host is not None
            and self.master_host.lower() == host.lower()
            and self.master_port == port
        ):
            log.info("replicaof_unchanged", master=f"{host}:{port}")
            return "OK Already connected to specified master"
        self._become_replica(host, port, log_event="replicaof_set")
        return "OK"

    def _become_replica(self, host: str, port: int, log_event: str) -> None:
        self._set_replica_state(host, port)
        # Our own replicas resync with us (they may continue partially); see replicationSetMaster.
        self._tell(b"drop_replicas", ["this node became a replica"])
        self._tell(b"replicaof", [self.gen, host, port])
        log.info(log_event, master=f"{host}:{port}", replid=self.replid, offset=self.server.repl_offset)

    def _set_replica_state(self, host: str, port: int) -> None:
        server = self.server
        if self.master_host is not None:
            self._drop_master_client()
        self.master_host, self.master_port = host, port
        self.config.values["replicaof"] = (host, port)
        server.is_replica = True
        server.keyspace.is_replica = True
        server.repl_feeding = False
        if server.write_refusal == errors.NOREPLICAS:
            server.write_refusal = None
        self._unblock_waiters(CommandError(UNBLOCKED_ROLE_CHANGE))
        self.gen += 1
        self.link_view = LinkView(state=LinkState.CONNECT)
        self._update_stale()

    def unset_master(self) -> None:
        """REPLICAOF NO ONE: become a master that continues the history (PSYNC2: the old id stays as replid2)."""
        server = self.server
        if self.master_host is None:
            return
        old = f"{self.master_host}:{self.master_port}"
        self.master_host = None
        self.master_port = 0
        self.config.values["replicaof"] = None
        self._drop_master_client()
        self._reset_reader()
        server.is_replica = False
        server.keyspace.is_replica = False
        server.refuse_stale = False
        self.gen += 1
        self.link_view = LinkView()
        # shiftReplicationId: the history so far is the secondary id, up to the current offset.
        self.replid2 = self.replid
        self.second_offset = server.repl_offset + 1
        self.replid = new_replid()
        self.psync_known = True
        self._tell(b"replicaof", [self.gen, None, 0])
        self._send_ids()
        server.repl_feeding = True
        server.prop_db = -1
        server.repl_select_points.clear()
        self.fed_pos = server.repl_offset
        self._tell(b"backlog", [server.repl_offset, -1, False])
        self._tell(b"drop_replicas", ["replication id changed"])
        self._update_write_refusal()
        log.info(
            "replica_promoted",
            old_master=old,
            replid=self.replid,
            replid2=self.replid2,
            second_repl_offset=self.second_offset,
        )

    def backlog_freed(self) -> None:
        """The actor dropped the backlog (repl-backlog-ttl): the history can no longer be continued."""
        if self.master_host is not None:
            return
        self.server.repl_feeding = False
        self.replid = new_replid()
        self.replid2 = REPLID_ZERO
        self.second_offset = -1
        self._send_ids()

    def count_stat(self, name: str) -> None:
        stats = self.server.stats
        setattr(stats, name, getattr(stats, name) + 1)

    # -- replicas, WAIT and min-replicas ----------------------------------------------------------------------

    def replicas_changed(self) -> None:
        """The actor published new replica states or acks: wake WAIT clients, re-check min-replicas."""
        if self.waiters:
            for waiter in list(self.waiters):
                count = self.count_acked(waiter.target_offset)
                if count >= waiter.numreplicas:
                    self._finish_wait(waiter, count)
        self._update_write_refusal()

    def count_acked(self, offset: int) -> int:
        return sum(1 for r in self.replicas_view if r.state is ReplicaState.ONLINE and r.ack_offset >= offset)

    def good_replicas(self) -> int:
        max_lag_s = self.config["min-replicas-max-lag"]
        now = time.monotonic()
        return sum(
            1
            for r in self.replicas_view
            if r.state is ReplicaState.ONLINE and int(now - r.ack_time_s) <= max_lag_s
        )

    def _min_replicas_enabled(self) -> bool:
        return bool(self.config["min-replicas-to-write"]) and bool(self.config["min-replicas-max-lag"])

    def _update_write_refusal(self) -> None:
        server = self.server
        refuse = (
            self.master_host is None
            and self._min_replicas_enabled()
            and self.good_replicas() < self.config["min-replicas-to-write"]
        )
        if refuse:
            if server.write_refusal is None:
                server.write_refusal = errors.NOREPLICAS
        elif server.write_refusal == errors.NOREPLICAS:
            server.write_refusal = None

    def wait(self, client: Client, numreplicas: int, timeout_ms: int) -> Any:
        """WAIT: the number of replicas that acked the current offset, blocking the client (not the node) until
        enough did or the timeout passed."""
        server = self.server
        target = server.repl_offset
        count = self.count_acked(target)
        if count >= numreplicas or server.exec_propagation is not None or client.kind is ClientKind.INTERNAL:
            return count
        waiter = _Waiter(client, target, numreplicas)
        if timeout_ms > 0:
            loop = self.master.loop
            assert loop is not None
            waiter.timer = loop.call_later(timeout_ms / 1000.0, self._wait_timed_out, waiter)
        client.blocked = waiter
        self.waiters.append(waiter)
        # Ask the replicas for their offsets now rather than at their next periodic ack: after this tick's
        # flush (an after_flush hook), so the request follows the writes it is about on the stream.
        self._getack_requested = True
        self.master.schedule_flush()
        return BLOCKED

    def _after_flush(self) -> None:
        if self._getack_requested:
            self._getack_requested = False
            self._tell(b"getack", [])

    def _wait_timed_out(self, waiter: _Waiter) -> None:
        if waiter in self.waiters:
            self._finish_wait(waiter, self.count_acked(waiter.target_offset))

    def _finish_wait(self, waiter: _Waiter, reply: Any) -> None:
        self.waiters.remove(waiter)
        if waiter.timer is not None:
            waiter.timer.cancel()
        client = waiter.client
        if client.blocked is waiter:
            client.blocked = None
        client.deliver(reply)

    def _unblock_waiters(self, reply: Any) -> None:
        for waiter in list(self.waiters):
            self._finish_wait(waiter, reply)

    def _client_removed(self, client: Client) -> None:
        for waiter in list(self.waiters):
            if waiter.client is client:
                self.waiters.remove(waiter)
                if waiter.timer is not None:
                    waiter.timer.cancel()

    # -- cron, RDB aux fields ------------------------------------------------------------------------------

    def cron(self) -> None:
        if self._children:
            self._reap_children()
        self._update_write_refusal()

    def rdb_repl_info(self) -> tuple[str | None, int | None, int | None]:
        """(repl-id, repl-offset, repl-stream-db) for an RDB being saved (rdbPopulateSaveInfo), or Nones."""
        server = self.server
        if self.master_host is None:
            if not server.repl_feeding:
                return None, None, None
            return self.replid, server.repl_offset, max(server.prop_db, 0)
        if not self.psync_known:
            return None, None, None
        client = self.master_client
        return self.replid, server.repl_offset, client.db.id if client is not None else 0

    # -- INFO and ROLE ----------------------------------------------------------------------------------------

    def info(self) -> list[tuple[str, Any]]:
        server = self.server
        config = self.config
        now = time.monotonic()
        lines: list[tuple[str, Any]] = [("role", "slave" if self.master_host is not None else "master")]
        if self.master_host is not None:
            link = self.link_view
            connected = link.state is LinkState.CONNECTED
            applied = server.repl_offset
            lines += [
                ("master_host", self.master_host),
                ("master_port", self.master_port),
                ("master_link_status", "up" if connected else "down"),
                ("master_last_io_seconds_ago", int(now - link.last_io_s) if connected else -1),
                ("master_sync_in_progress", int(link.state in (LinkState.TRANSFER, LinkState.LOADING))),
                ("slave_read_repl_offset", link.read_offset if connected else applied),
                ("slave_repl_offset", applied),
            ]
            if link.state in (LinkState.TRANSFER, LinkState.LOADING):
                total = link.transfer_size
                perc = 100.0 * link.transfer_read / total if total > 0 else 0.0
                lines += [
                    ("master_sync_total_bytes", total),
                    ("master_sync_read_bytes", link.transfer_read),
                    ("master_sync_left_bytes", total - link.transfer_read if total >= 0 else -1),
                    ("master_sync_perc", f"{perc:.2f}"),
                    ("master_sync_last_io_seconds_ago", int(now - (link.transfer_last_io_s or now))),
                ]
            if not connected:
                down = link.down_since_s
                lines.append(("master_link_down_since_seconds", int(time.time() - down) if down else -1))
            lines += [
                ("slave_priority", config["replica-priority"]),
                ("slave_read_only", int(bool(config["replica-read-only"]))),
                ("replica_announced", 1),
            ]
        replicas = self.replicas_view
        lines.append(("connected_slaves", len(replicas)))
        if self._min_replicas_enabled():
            lines.append(("min_slaves_good_slaves", self.good_replicas()))
        for index, replica in enumerate(replicas):
            lag = int(now - replica.ack_time_s) if replica.state is ReplicaState.ONLINE else 0
            lines.append(
                (
                    f"slave{index}",
                    f"ip={replica.ip},port={replica.port},state={INFO_STATE_NAMES[replica.state]},"
                    f"offset={replica.ack_offset},lag={lag}",
                )
            )
        backlog = self.backlog_view
        lines += [
            ("master_failover_state", "no-failover"),
            ("master_replid", self.replid),
            ("master_replid2", self.replid2),
            ("master_repl_offset", server.repl_offset),
            ("second_repl_offset", self.second_offset),
            ("repl_backlog_active", int(backlog is not None)),
            ("repl_backlog_size", config["repl-backlog-size"]),
            ("repl_backlog_first_byte_offset", backlog.first_byte_offset if backlog is not None else 0),
            ("repl_backlog_histlen", backlog.histlen if backlog is not None else 0),
        ]
        return lines

    def role(self) -> list[Any]:
        server = self.server
        if self.master_host is None:
            online = [
                [r.ip.encode(), b"%d" % r.port, b"%d" % r.ack_offset]
                for r in self.replicas_view
                if r.state is ReplicaState.ONLINE
            ]
            return [b"master", server.repl_offset, online]
        link = self.link_view
        offset = server.repl_offset if link.state is LinkState.CONNECTED else -1
        return [
            b"slave",
            self.master_host.encode(),
            self.master_port,
            ROLE_STATE_NAMES[link.state].encode(),
            offset,
        ]


def _snapshot_child(
    out_fd: int,
    done_fd: int,
    dbs: list[Database],
    aux: dict[str, Any],
    compress: bool,
    checksum: bool,
    delay_s: float,
) -> None:
    """The whole life of a snapshot child: write the RDB to ``out_fd``, say so on ``done_fd``, leave.

    Never returns. The byte on ``done_fd`` is written only once the file is complete and closed: the actor,
    which streams the file while it grows, takes its size as final then.
    """
    status = 1
    try:
        gc.disable()
        # Inherited descriptors (listening sockets, ZeroMQ, the AOF) must not outlive the parent in an orphaned
        # child: a restarted node could not bind its ports while the child sleeps or writes.
        keep = sorted((out_fd, done_fd))
        os.closerange(3, keep[0])
        os.closerange(keep[0] + 1, keep[1])
        os.closerange(keep[1] + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        try:
            signal.set_wakeup_fd(-1)  # the parent's loop owns that socket
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
        except (ValueError, OSError):
            pass
        if delay_s > 0:
            time.sleep(delay_s)
        with open(out_fd, "wb") as out:
            rdb_writer.dump(dbs, out, aux, compress=compress, checksum=checksum)
        os.write(done_fd, SNAPSHOT_DONE_BYTE)
        status = 0
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# -- the actor -----------------------------------------------------------------------------------------------


@dataclass
class SnapshotJob:
    """One forked snapshot and the replicas it is for (actor thread)."""

    id: int
    state: JobState = JobState.REQUESTED
    pid: int = 0
    offset: int = 0  # stream position of the snapshot
    stream_db: int = -1  # the database the stream has selected at that position
    replid: str = ""
    path: str = ""
    size: int = 0
    done_fd: int = -1  # read end of the child's pipe, polled while FORKED (-1: closed)
    replicas: set[bytes] = field(default_factory=set)
    started_s: float = field(default_factory=time.monotonic)


@dataclass
class ReplicaLink:
    """A replica attached to this node (actor thread)."""

    identity: bytes
    node_id: str
    ip: str
    port: int
    state: ReplicaState
    last_io_s: float
    ack_offset: int = 0
    ack_time_s: float = 0.0
    # Stream position just after the last byte queued for it (None until its snapshot offset is known).
    stream_pos: int | None = None
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0
    job: int | None = None
    snap_file: BinaryIO | None = None
    snap_sent: int = 0
    snap_acked: int = 0
    snap_started_s: float = 0.0
    last_ping_s: float = 0.0


@dataclass
class MasterLink:
    """This node's link to its master (actor thread)."""

    gen: int
    host: str
    port: int
    state: LinkState = LinkState.CONNECT
    connect_at_s: float = 0.0
    backoff_s: float = RECONNECT_BACKOFF_MIN_S
    awaiting_loop: bool = False  # prepare_link asked, link_ready not back yet
    attempt: int = 0  # bumped on every loss, so a late loader result of an older attempt is dropped
    sock: zmq.Socket[bytes] | None = None
    monitor: zmq.Socket[bytes] | None = None
    replid: str = "?"
    offset: int = 0  # applied offset when this attempt started
    read_pos: int = 0  # stream bytes received (and handed to the loop)
    last_io_s: float = 0.0
    last_ack_s: float = 0.0
    getack_pending: bool = False
    down_since_s: float = 0.0  # time.time() of the last loss of a connected link (0: none yet)
    was_connected: bool = False
    # TRANSFER: the thread parsing the snapshot as it arrives, and what FULLRESYNC announced.
    loader: SnapshotLoader | None = None
    snap_replid: str = ""
    snap_offset: int = 0
    snap_size: int = -1
    snap_received: int = 0
    snap_last_io_s: float = 0.0
    snap_stream_db: int = -1  # the database the stream has selected at the snapshot's offset (snap_end)
    # LOADING: stream messages that arrived while the snapshot is parsed.
    buffered: list[tuple[int, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class _Loaded:
    """A loader thread finished parsing a received snapshot, or gave up on it (told to the actor)."""

    attempt: int
    result: RdbData | Exception
    duration_ms: float


class _LoadAbandoned(Exception):
    """The transfer a loader thread parses was abandoned (the link was lost): the thread just ends."""


class SnapshotLoader:
    """Parses a full sync's snapshot in a worker thread while it is being received (replica side).

    The actor feeds each chunk as it arrives (``feed``), then ``finish`` at the snapshot's end or ``abandon``
    if the link is lost; the thread parses with ``rdb.load_stream``, so loading overlaps the transfer (and
    the master's child writing it) instead of following it, and only the part not parsed yet is held in
    memory. The result (databases, or the error) is told to the actor as ``_Loaded``; the live keyspace is
    not touched: the loop swaps the new databases in at once, so a failed sync leaves the old data in place.
    """

    def __init__(self, attempt: int, num_dbs: int, deliver: Any) -> None:
        self.attempt = attempt
        self._num_dbs = num_dbs
        self._deliver = deliver  # called with the _Loaded, from the loader thread
        self._pieces: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._started_s = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="replication-snapshot-load", daemon=True)
        self._thread.start()

    def feed(self, chunk: bytes) -> None:
        if chunk:
            self._pieces.put(chunk)

    def finish(self) -> None:
        self._pieces.put(b"")

    def abandon(self) -> None:
        self._pieces.put(None)

    def _next_piece(self) -> bytes:
        piece = self._pieces.get()
        if piece is None:
            raise _LoadAbandoned
        return piece

    def _run(self) -> None:
        result: RdbData | Exception
        try:
            result = rdb_reader.load_stream(self._next_piece, self._num_dbs)
        except _LoadAbandoned:
            return
        except Exception as exc:  # reported to the actor, which drops the link
            result = exc
        try:
            self._deliver(
                _Loaded(self.attempt, result, round((time.monotonic() - self._started_s) * 1000, 1))
            )
        except Exception:
            pass  # the actor stopped meanwhile


class ReplicationActor(BusActor):
    """The node bus plus replication: backlog, attached replicas and the link to a master (own thread)."""

    def __init__(self, master: MasterActor, binds: list[str], bus_port: int) -> None:
        super().__init__(master, binds, bus_port)
        self.server = master.server
        self.config = master.server.config
        facade = master.server.replication
        assert isinstance(facade, Replication), "create Replication(server, master) before the actor"
        self.facade: Replication = facade
        # Mirror of the loop's ids, updated in order with the stream (ids messages).
        self.replid = facade.replid
        self.replid2 = facade.replid2
        self.second_offset = facade.second_offset
        self.backlog: Backlog | None = None
        self.replicas: dict[bytes, ReplicaLink] = {}
        self.no_replicas_since_s = time.monotonic()
        self.jobs: dict[int, SnapshotJob] = {}
        self._next_job = 1
        self.link: MasterLink | None = None
        # False until the loop has told this actor the node's ids and backlog (after loading the dataset):
        # until then a replica's PSYNC is answered LOADING, as Redis does.
        self.ready = False
        self._last_publish_s = 0.0
        self._replicas_dirty = False

    # -- lifecycle ------------------------------------------------------------------------------------

    def on_bus_started(self) -> None:
        self.master.call_threadsafe(self.facade.actor_started)

    def on_bus_stopping(self) -> None:
        said_bye = False
        link = self.link
        if link is not None and link.sock is not None:
            self._send_master(link, "bye")
            said_bye = True
        for replica in list(self.replicas.values()):
            self._send_replica(replica, "bye")
            said_bye = True
        if said_bye:
            time.sleep(0.05)  # let ZeroMQ's I/O thread put the byes on the wire before the sockets close
        if link is not None:
            self._close_link(link)
        for replica in list(self.replicas.values()):
            self._drop_replica(replica, "node stopping", quiet=True)
        # Snapshot children belong to the loop, which reaps them (and kills them when the node stops); a file a
        # child is still writing is deleted when the next incarnation hears it is done (an unknown job).
        for job in list(self.jobs.values()):
            self._close_done_fd(job)
            if job.state is JobState.DONE:
                _unlink_quietly(job.path)
        self.jobs.clear()

    def on_control(self, message: Any) -> Any:
        if isinstance(message, _Loaded):
            self._snapshot_loaded(message)
            return None
        return super().on_control(message)

    # -- messages from the loop ---------------------------------------------------------------------------

    def on_loop_message(self, parts: list[bytes]) -> None:
        verb = parts[0]
        fields = msgpack.unpackb(parts[1], raw=False) if len(parts) > 1 else []
        if verb == b"feed":
            self._on_feed(int(fields[0]), parts[2], fields[1])
        elif verb == b"ids":
            self.replid, self.replid2, self.second_offset = str(fields[0]), str(fields[1]), int(fields[2])
        elif verb == b"backlog":
            self._on_backlog(int(fields[0]), int(fields[1]), bool(fields[2]))
        elif verb == b"forked":
            self._on_forked(*fields)
        elif verb == b"fork_failed":
            self._on_job_failed(int(fields[0]), f"fork failed: {fields[1]}")
        elif verb == b"snapshot_done":
            self._on_snapshot_done(int(fields[0]), bool(fields[1]), str(fields[2]))
        elif verb == b"ready":
            self.ready = True
        elif verb == b"getack":
            for replica in list(self.replicas.values()):
                if replica.state is ReplicaState.ONLINE:
                    self._flush_replica(replica)  # the writes WAIT is about go before the request
                    self._send_replica(replica, "getack")
        elif verb == b"drop_replicas":
            for replica in list(self.replicas.values()):
                self._drop_replica(replica, str(fields[0]))
        elif verb == b"replicaof":
            self._on_replicaof(int(fields[0]), fields[1], int(fields[2]))
        elif verb == b"link_ready":
            self._on_link_ready(int(fields[0]), str(fields[1]), int(fields[2]))
        elif verb == b"relink":
            link = self.link
            if link is not None and link.gen == int(fields[0]) and link.state is not LinkState.CONNECT:
                self._link_lost(link, str(fields[1]))
        else:
            log.warning("loop_message_ignored", verb=verb[:32].decode("utf-8", "replace"))

    def _on_feed(self, start: int, data: bytes, selects: list[list[int]]) -> None:
        backlog = self.backlog
        if backlog is None:
            return
        if start != backlog.end_pos:
            if start + len(data) <= backlog.end_pos:
                return
            log.error("replication_backlog_gap", backlog_end=backlog.end_pos, feed_start=start)
            self.backlog = backlog = Backlog(self.config["repl-backlog-size"], start, -1)
            for replica in list(self.replicas.values()):
                self._drop_replica(replica, "stream gap")
        backlog.append(data, [(int(p[0]), int(p[1])) for p in selects])
        for replica in list(self.replicas.values()):
            if replica.stream_pos is not None:
                self._enqueue(replica, start, data)
        link = self.link
        if link is not None and link.getack_pending and backlog.end_pos >= link.read_pos:
            link.getack_pending = False
            self._send_ack(link, time.monotonic())

    def _on_backlog(self, start: int, db: int, force: bool) -> None:
        backlog = self.backlog
        if not force and backlog is not None and backlog.end_pos == start:
            return
        self.backlog = Backlog(self.config["repl-backlog-size"], start, db)
        for replica in list(self.replicas.values()):
            if force or (replica.stream_pos is not None and replica.stream_pos != start):
                self._drop_replica(replica, "replication history changed")
        self._publish(force=True)

    # -- master side: replicas ----------------------------------------------------------------------------

    def on_node_message(self, identity: bytes, frames: list[bytes]) -> None:
        try:
            header = _unpack(frames[0])
        except Exception as exc:
            log.info("node_message_ignored", reason=f"bad header: {type(exc).__name__}")
            return
        verb, fields = header[0], header[1:]
        now = time.monotonic()
        if not self.ready and verb in ("hello", "psync"):
            self._send_peer(identity, "error", errors.LOADING)
            return
        if verb == "hello":
            error = self._check_auth(fields[0] if fields else "")
            version = fields[1] if len(fields) > 1 else None
            if error is None and version != REPL_PROTOCOL_VERSION:
                error = (
                    f"ERR replication protocol version {version!r} is not supported (this node speaks "
                    f"{REPL_PROTOCOL_VERSION})"
                )
            self._send_peer(identity, "error" if error else "hello_ok", error or self.server.run_id)
            return
        if verb == "psync":
            self._on_psync(identity, fields, now)
            return
        replica = self.replicas.get(identity)
        if replica is None:
            if verb != "bye":
                # A replica we dropped (timeout) still talks: tell it to start over.
                self._send_peer(identity, "error", "unknown replica: resync")
            return
        replica.last_io_s = now
        if verb == "ack":
            offset = int(fields[0])
            if offset >= 0:
                replica.ack_offset = max(replica.ack_offset, offset)
                replica.ack_time_s = now
                self._replicas_dirty = True
        elif verb == "snap_ack":
            replica.snap_acked = max(replica.snap_acked, int(fields[0]))
        elif verb == "bye":
            self._drop_replica(replica, "replica closed the link")
        else:
            log.info("node_message_ignored", verb=verb)

    def _check_auth(self, auth: Any) -> str | None:
        password = self.config["requirepass"]
        if password and auth != password:
            return "NOAUTH Authentication required." if not auth else errors.WRONGPASS
        return None

    def _on_psync(self, identity: bytes, fields: list[Any], now: float) -> None:
        replid, psync_offset, node_id, port, ip, auth = fields[:6]
        replid, psync_offset, node_id = str(replid), int(psync_offset), str(node_id)
        error = self._check_auth(auth)
        if error:
            self._send_peer(identity, "error", error)
            return
        link = self.link
        if link is not None and link.state is not LinkState.CONNECTED:
            self._send_peer(identity, "error", "NOMASTERLINK Can't SYNC while not connected with my master")
            return
        for other in list(self.replicas.values()):
            # The same replica again: by link, by run, or by address (a restarted replica has a new node id,
            # and without disconnect notifications its old link would linger until repl-timeout).
            if (
                other.identity == identity
                or other.node_id == node_id
                or (other.ip, other.port) == (str(ip), int(port))
            ):
                self._drop_replica(other, "replaced by a new link", quiet=True)
        replica = ReplicaLink(
            identity, node_id, str(ip), int(port), ReplicaState.WAIT_BGSAVE_START, now, ack_time_s=now
        )
        self.replicas[identity] = replica
        addr = f"{replica.ip}:{replica.port}"
        log.info("replica_sync_requested", role="master", replica=addr, replid=replid, offset=psync_offset)
        refusal = self._partial_refusal(replid, psync_offset)
        if refusal is None:
            assert self.backlog is not None
            pos = psync_offset - 1
            stream_db = self.backlog.db_at(pos)
            self._send_replica(replica, "continue", self.replid, stream_db)
            replica.state = ReplicaState.ONLINE
            replica.stream_pos = pos
            self._enqueue(replica, pos, self.backlog.read(pos))
            self._flush_replica(replica)
            self.master.call_threadsafe(self.facade.count_stat, "sync_partial_ok")
            log.info(
                "partial_resync_accepted",
                replica=addr,
                offset=psync_offset,
                backlog_bytes=self.backlog.end_pos - pos,
                replid=self.replid,
            )
        else:
            if replid != "?":
                self.master.call_threadsafe(self.facade.count_stat, "sync_partial_err")
                log.info(
                    "partial_resync_refused", replica=addr, reason=refusal, replid=replid, offset=psync_offset
                )
            self.master.call_threadsafe(self.facade.count_stat, "sync_full")
            self._start_full_sync(replica)
        self._replicas_dirty = True

    def _partial_refusal(self, replid: str, psync_offset: int) -> str | None:
        """Why a PSYNC cannot continue (masterTryPartialResynchronization), or None if it can."""
        if replid == "?":
            return "no history"
        if replid != self.replid and not (replid == self.replid2 and psync_offset <= self.second_offset):
            if replid == self.replid2:
                return f"offset {psync_offset} is past the end of the previous history ({self.second_offset})"
            return "replication id mismatch"
        backlog = self.backlog
        if backlog is None:
            return "no backlog"
        if not backlog.covers(psync_offset - 1):
            return (
                f"offset {psync_offset} outside the backlog [{backlog.first_byte_offset}, "
                f"{backlog.end_pos + 1}]"
            )
        return None

    def _start_full_sync(self, replica: ReplicaLink) -> None:
        """Attach to a snapshot in the making if one can serve it, else ask the loop for a new fork."""
        replica.state = ReplicaState.WAIT_BGSAVE_START
        backlog = self.backlog
        for job in self.jobs.values():
            if job.state is JobState.REQUESTED:
                job.replicas.add(replica.identity)
                replica.job = job.id
                return
            if (
                job.state is JobState.FORKED
                and job.replid == self.replid
                and backlog is not None
                and backlog.covers(job.offset)
            ):
                # The child is writing a snapshot at job.offset and the backlog still has everything after it.
                job.replicas.add(replica.identity)
                self._attach_to_forked(replica, job)
                self._enqueue(replica, job.offset, backlog.read(job.offset))
                return
        if any(job.state is not JobState.DONE for job in self.jobs.values()):
            return  # one fork at a time: it waits for the running one to finish (see _start_waiting_syncs)
        self._new_job([replica])

    def _new_job(self, replicas: list[ReplicaLink]) -> None:
        job = SnapshotJob(self._next_job)
        self._next_job += 1
        self.jobs[job.id] = job
        for replica in replicas:
            job.replicas.add(replica.identity)
            replica.job = job.id
        self.master.call_threadsafe(self.facade.request_snapshot, job.id)

    def _start_waiting_syncs(self) -> None:
        if any(job.state is not JobState.DONE for job in self.jobs.values()):
            return
        waiting = [
            r for r in self.replicas.values() if r.state is ReplicaState.WAIT_BGSAVE_START and r.job is None
        ]
        if waiting:
            self._new_job(waiting)

    def _attach_to_forked(self, replica: ReplicaLink, job: SnapshotJob) -> None:
        """FULLRESYNC at the job's offset, and the snapshot starts flowing: it is sent as the child writes it."""
        replica.job = job.id
        replica.state = ReplicaState.WAIT_BGSAVE_END
        replica.stream_pos = job.offset
        replica.pending.clear()
        replica.pending_bytes = 0
        try:
            replica.snap_file = open(job.path, "rb", buffering=0)  # closed when the transfer ends
        except OSError as exc:
            self._drop_replica(replica, f"cannot open snapshot: {exc.strerror}")
            return
        replica.snap_sent = replica.snap_acked = 0
        replica.snap_started_s = time.monotonic()
        self._send_replica(replica, "fullresync", job.replid, job.offset)
        self._send_replica(replica, "snap_begin", -1)  # the size is known at snap_end
        log.info(
            "full_sync_started",
            replica=f"{replica.ip}:{replica.port}",
            offset=job.offset,
            job=job.id,
            replid=job.replid,
        )

    def _on_forked(
        self, job_id: int, pid: int, offset: int, stream_db: int, replid: str, path: str, done_fd: int
    ) -> None:
        job = self.jobs.get(int(job_id))
        if job is None:
            os.close(done_fd)
            return  # asked by a previous incarnation of this actor: its file is removed when it is done
        job.state, job.pid, job.offset = JobState.FORKED, int(pid), int(offset)
        job.stream_db, job.replid, job.path = int(stream_db), str(replid), str(path)
        job.done_fd = int(done_fd)
        self.add_socket(job.done_fd, lambda: self._on_child_signal(job))
        for identity in list(job.replicas):
            replica = self.replicas.get(identity)
            if replica is None:
                job.replicas.discard(identity)
                continue
            self._attach_to_forked(replica, job)

    def _on_job_failed(self, job_id: int, reason: str) -> None:
        job = self.jobs.pop(job_id, None)
        if job is None:
            return
        self._close_done_fd(job)
        log.warning("full_sync_failed", job=job_id, reason=reason)
        for identity in job.replicas:
            replica = self.replicas.get(identity)
            if replica is not None:
                self._send_replica(replica, "error", f"full sync failed: {reason}")
                self._drop_replica(replica, reason, quiet=True)
        if job.path:
            _unlink_quietly(job.path)
        self._start_waiting_syncs()

    def _close_done_fd(self, job: SnapshotJob) -> None:
        if job.done_fd >= 0:
            self.remove_socket(job.done_fd, close=True)
            job.done_fd = -1

    def _on_child_signal(self, job: SnapshotJob) -> None:
        """The child's pipe is readable: its done byte (the file is complete) or EOF (it died without it)."""
        if job.done_fd < 0:
            return
        try:
            said = os.read(job.done_fd, 16)
        except BlockingIOError:
            return
        except OSError:
            said = b""
        self._close_done_fd(job)
        if self.jobs.get(job.id) is not job or job.state is not JobState.FORKED:
            return
        if SNAPSHOT_DONE_BYTE in said:
            self._on_snapshot_written(job)
        else:
            self._on_job_failed(job.id, "snapshot child failed")

    def _on_snapshot_done(self, job_id: int, ok: bool, path: str) -> None:
        """The loop reaped the child (its pipe has usually told this actor already)."""
        job = self.jobs.get(job_id)
        if job is None:
            _unlink_quietly(path)  # a job of a previous incarnation of this actor, or one already released
            return
        if job.state is not JobState.FORKED:
            return
        if not ok:
            self._on_job_failed(job_id, "snapshot child failed")
            return
        self._on_snapshot_written(job)

    def _on_snapshot_written(self, job: SnapshotJob) -> None:
        self._close_done_fd(job)
        try:
            job.size = os.path.getsize(job.path)
        except OSError as exc:
            self._on_job_failed(job.id, f"snapshot file missing: {exc.strerror}")
            return
        job.state = JobState.DONE
        log.info(
            "snapshot_written",
            job=job.id,
            child_pid=job.pid,
            bytes=job.size,
            duration_ms=round((time.monotonic() - job.started_s) * 1000, 1),
        )
        now = time.monotonic()
        for identity in list(job.replicas):
            replica = self.replicas.get(identity)
            if replica is None:
                job.replicas.discard(identity)
                continue
            replica.state = ReplicaState.SEND_BULK
            self._replicas_dirty = True
            self._send_bulk(replica, now)
        self._release_job(job)
        self._start_waiting_syncs()

    def _release_job(self, job: SnapshotJob) -> None:
        """Delete a finished snapshot once no replica is still being sent it."""
        if job.state is JobState.DONE and not job.replicas:
            self.jobs.pop(job.id, None)
            _unlink_quietly(job.path)

    def _send_bulk(self, replica: ReplicaLink, now: float) -> None:
        """Send what the window allows of the snapshot file, growing (FORKED) or complete (DONE)."""
        job = self.jobs.get(replica.job) if replica.job is not None else None
        if job is None or replica.snap_file is None:
            self._drop_replica(replica, "snapshot vanished")
            return
        done = job.state is JobState.DONE
        fd = replica.snap_file.fileno()
        while replica.snap_sent - replica.snap_acked < SNAPSHOT_WINDOW_BYTES:
            try:
                # While the child writes, only bytes below the file's size are final (written and visible).
                available = (job.size if done else os.fstat(fd).st_size) - replica.snap_sent
                if available <= 0 or (not done and available < SNAPSHOT_MIN_PARTIAL_CHUNK_BYTES):
                    break  # all sent, or wait for a worthwhile piece rather than send crumbs
                chunk = os.pread(fd, min(SNAPSHOT_CHUNK_BYTES, available), replica.snap_sent)
            except OSError as exc:
                self._drop_replica(replica, f"cannot read snapshot: {exc.strerror}")
                return
            if not chunk:
                self._drop_replica(replica, f"snapshot file shorter than its {job.size} bytes")
                return
            self._send_replica(replica, "snap", replica.snap_sent, payload=chunk)
            replica.snap_sent += len(chunk)
        if not done or replica.snap_sent < job.size:
            return
        replica.snap_file.close()
        replica.snap_file = None
        self._send_replica(replica, "snap_end", job.size, job.stream_db)
        log.info(
            "snapshot_sent",
            replica=f"{replica.ip}:{replica.port}",
            bytes=job.size,
            duration_ms=round((now - replica.snap_started_s) * 1000, 1),
            offset=job.offset,
        )
        job.replicas.discard(replica.identity)
        replica.job = None
        replica.state = ReplicaState.ONLINE
        replica.ack_time_s = now
        self._flush_replica(replica)
        self._replicas_dirty = True
        self._release_job(job)

    def _enqueue(self, replica: ReplicaLink, start: int, data: bytes) -> None:
        """Queue the stream bytes [start, start+len) for a replica, from where it stands."""
        pos = replica.stream_pos
        if pos is None or not data:
            return
        end = start + len(data)
        if end <= pos:
            return
        if start > pos:
            self._drop_replica(replica, f"stream gap at {pos}")
            return
        if start < pos:
            data = data[pos - start :]
        replica.pending.append(data)
        replica.pending_bytes += len(data)
        replica.stream_pos = end
        if replica.state is not ReplicaState.ONLINE and replica.pending_bytes > REPLICA_BUFFER_LIMIT_BYTES:
            self._drop_replica(replica, "replica output buffer limit reached during sync")

    def _flush_replica(self, replica: ReplicaLink) -> None:
        if not replica.pending or replica.stream_pos is None:
            return
        data = replica.pending[0] if len(replica.pending) == 1 else b"".join(replica.pending)
        replica.pending = []
        replica.pending_bytes = 0
        start = replica.stream_pos - len(data)
        for offset in range(0, len(data), STREAM_MESSAGE_MAX_BYTES):
            self._send_replica(
                replica, "stream", start + offset, payload=data[offset : offset + STREAM_MESSAGE_MAX_BYTES]
            )

    def _drop_replica(self, replica: ReplicaLink, reason: str, quiet: bool = False) -> None:
        if self.replicas.get(replica.identity) is not replica:
            return
        del self.replicas[replica.identity]
        if replica.snap_file is not None:
            replica.snap_file.close()
            replica.snap_file = None
        if replica.job is not None:
            job = self.jobs.get(replica.job)
            if job is not None:
                job.replicas.discard(replica.identity)
                self._release_job(job)
        if not quiet:
            self._send_replica(replica, "bye")
            log.warning(
                "link_lost",
                role="master",
                replica=f"{replica.ip}:{replica.port}",
                reason=reason,
                state=INFO_STATE_NAMES[replica.state],
            )
        if not self.replicas:
            self.no_replicas_since_s = time.monotonic()
        self._replicas_dirty = True

    def _send_peer(self, identity: bytes, verb: str, *fields: Any, payload: bytes | None = None) -> None:
        frames = [NODE_FRAME, _pack(verb, *fields)]
        if payload is not None:
            frames.append(payload)
        self.send_to_peer(identity, frames)

    def _send_replica(
        self, replica: ReplicaLink, verb: str, *fields: Any, payload: bytes | None = None
    ) -> None:
        self._send_peer(replica.identity, verb, *fields, payload=payload)

    def _tick_master(self, now: float) -> None:
        config = self.config
        timeout_s = config["repl-timeout"]
        ping_period_s = config["repl-ping-replica-period"]
        for replica in list(self.replicas.values()):
            if now - replica.last_io_s > timeout_s:
                self._drop_replica(replica, "timeout")
                continue
            state = replica.state
            if state is ReplicaState.ONLINE:
                self._flush_replica(replica)
                if now - replica.last_ping_s >= ping_period_s:
                    replica.last_ping_s = now
                    self._send_replica(replica, "ping", replica.stream_pos)
            else:
                if replica.snap_file is not None:  # WAIT_BGSAVE_END (the file grows) or SEND_BULK
                    self._send_bulk(replica, now)
                if (
                    replica.state is not ReplicaState.ONLINE
                    and now - replica.last_ping_s >= SYNC_KEEPALIVE_INTERVAL_S
                ):
                    replica.last_ping_s = now
                    self._send_replica(replica, "ping", -1)
        backlog = self.backlog
        if backlog is not None:
            size = config["repl-backlog-size"]
            if size != backlog.size_bytes:
                backlog.resize(size)
            ttl_s = config["repl-backlog-ttl"]
            if (
                self.link is None
                and not self.replicas
                and not self.jobs
                and ttl_s
                and now - self.no_replicas_since_s > ttl_s
            ):
                log.info("replication_backlog_freed", idle_s=int(now - self.no_replicas_since_s))
                self.backlog = None
                self.master.call_threadsafe(self.facade.backlog_freed)
                self._publish(force=True)

    # -- replica side: the link to the master -------------------------------------------------------------

    def _on_replicaof(self, gen: int, host: str | None, port: int) -> None:
        link = self.link
        if link is not None:
            if link.sock is not None:
                self._send_master(link, "bye")
            self._close_link(link)
            self.link = None
        if host is not None:
            self.link = MasterLink(gen, host, port, connect_at_s=time.monotonic())
        self._publish(force=True, link_changed=True, gen=gen)

    def _close_link(self, link: MasterLink) -> None:
        self._close_link_socket(link)
        if link.loader is not None:
            link.loader.abandon()
            link.loader = None
        link.buffered.clear()

    def _close_link_socket(self, link: MasterLink) -> None:
        if link.monitor is not None:
            self.remove_socket(link.monitor, close=True)
            link.monitor = None
        if link.sock is not None:
            try:
                link.sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self.remove_socket(link.sock, close=True)
            link.sock = None

    def _set_link_state(self, link: MasterLink, state: LinkState) -> None:
        link.state = state
        self._publish(force=True, link_changed=True, gen=link.gen)

    def _on_link_ready(self, gen: int, replid: str, offset: int) -> None:
        link = self.link
        if link is None or link.gen != gen or link.state is not LinkState.CONNECT or not link.awaiting_loop:
            return
        link.awaiting_loop = False
        link.replid, link.offset, link.read_pos = replid, offset, offset
        sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.ROUTING_ID, b"R" + os.urandom(8))
        host = link.host
        if ":" in host:
            sock.setsockopt(zmq.IPV6, 1)
            endpoint = f"tcp://[{host}]:{link.port + BUS_PORT_OFFSET}"
        else:
            endpoint = f"tcp://{host}:{link.port + BUS_PORT_OFFSET}"
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as exc:
            sock.close(0)
            log.warning("master_connect_failed", master=f"{host}:{link.port}", reason=str(exc))
            self._link_lost(link, f"connect failed: {exc}")
            return
        link.sock = sock
        link.monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.add_socket(sock, lambda: self._drain_link(link))
        self.add_socket(link.monitor, lambda: self._drain_monitor(link))
        link.last_io_s = time.monotonic()
        self._send_master(link, "hello", self.config["masterauth"], REPL_PROTOCOL_VERSION)
        self._set_link_state(link, LinkState.CONNECTING)

    def _send_master(self, link: MasterLink, verb: str, *fields: Any) -> None:
        if link.sock is None:
            return
        try:
            link.sock.send_multipart([NODE_FRAME, _pack(verb, *fields)], zmq.NOBLOCK)
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
            if (
                frames
                and len(frames[0]) >= 2
                and int.from_bytes(frames[0][:2], "little") == zmq.EVENT_DISCONNECTED
            ):
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
            if len(frames) < 2 or frames[0] != NODE_FRAME:
                continue
            try:
                header = _unpack(frames[1])
            except Exception:
                continue
            link.last_io_s = time.monotonic()
            self._on_master_message(link, header[0], header[1:], frames[2] if len(frames) > 2 else b"")

    def _on_master_message(self, link: MasterLink, verb: str, fields: list[Any], payload: bytes) -> None:
        state = link.state
        if verb == "stream":
            self._on_stream(link, int(fields[0]), payload)
        elif verb == "ping":
            sent = int(fields[0])
            if state is LinkState.CONNECTED and sent > link.read_pos:
                self._link_lost(link, f"stream gap: master sent up to {sent}, received {link.read_pos}")
        elif verb == "snap":
            self._on_snap_chunk(link, int(fields[0]), payload)
        elif verb == "snap_begin" and state is LinkState.TRANSFER:
            link.snap_size = int(fields[0])
            self._publish(force=True)
        elif verb == "snap_end" and state is LinkState.TRANSFER:
            self._on_snap_end(link, int(fields[0]), int(fields[1]))
        elif verb == "getack":
            if state is LinkState.CONNECTED:
                if self.server.repl_offset >= link.read_pos:
                    self._send_ack(link, time.monotonic())
                else:
                    link.getack_pending = True
        elif verb == "hello_ok" and state is LinkState.CONNECTING:
            psync_offset = link.offset + 1 if link.replid != "?" else -1
            port = self.config["replica-announce-port"] or self.server.port
            ip = self.config["replica-announce-ip"] or _local_ip_towards(link.host, link.port)
            self._send_master(
                link,
                "psync",
                link.replid,
                psync_offset,
                self.server.run_id,
                port,
                ip,
                self.config["masterauth"],
            )
            log.info(
                "replica_sync_requested",
                role="replica",
                master=f"{link.host}:{link.port}",
                replid=link.replid,
                offset=psync_offset,
            )
            self._set_link_state(link, LinkState.HANDSHAKE)
        elif verb == "continue" and state is LinkState.HANDSHAKE:
            replid, stream_db = str(fields[0]), int(fields[1])
            if self.backlog is None or self.backlog.end_pos != link.offset:
                self.backlog = Backlog(self.config["repl-backlog-size"], link.offset, stream_db)
            self.master.call_threadsafe(self.facade.partial_accepted, link.gen, replid, stream_db)
            log.info(
                "partial_resync_succeeded",
                master=f"{link.host}:{link.port}",
                offset=link.offset + 1,
                replid=replid,
            )
            self._link_up(link, partial=True)
        elif verb == "fullresync" and state is LinkState.HANDSHAKE:
            self._on_fullresync(link, str(fields[0]), int(fields[1]))
        elif verb == "error":
            log.warning("master_refused", master=f"{link.host}:{link.port}", reason=str(fields[0]))
            self._link_lost(link, f"master error: {fields[0]}")
        elif verb == "bye":
            if state is not LinkState.CONNECT:
                self._link_lost(link, "master closed the link")

    def _link_up(self, link: MasterLink, partial: bool) -> None:
        if link.was_connected or link.down_since_s:
            down_ms = round((time.time() - link.down_since_s) * 1000, 1) if link.down_since_s else 0
            log.info("link_restored", master=f"{link.host}:{link.port}", partial=partial, down_ms=down_ms)
        link.was_connected = True
        link.backoff_s = RECONNECT_BACKOFF_MIN_S
        self._set_link_state(link, LinkState.CONNECTED)
        self._send_ack(link, time.monotonic())

    def _on_fullresync(self, link: MasterLink, replid: str, offset: int) -> None:
        link.snap_replid, link.snap_offset = replid, offset
        link.snap_size, link.snap_received = -1, 0
        link.snap_last_io_s = time.monotonic()
        actor_ref = self.actor_ref

        def deliver(message: _Loaded) -> None:
            actor_ref.tell(message)
            self.wake()

        link.loader = SnapshotLoader(link.attempt, len(self.server.keyspace.dbs), deliver)
        log.info(
            "full_sync_started",
            role="replica",
            master=f"{link.host}:{link.port}",
            replid=replid,
            offset=offset,
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
        self._send_master(link, "snap_ack", link.snap_received)

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

    def _snapshot_loaded(self, message: _Loaded) -> None:
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
        self.master.call_threadsafe(
            self.facade.install_snapshot,
            link.gen,
            result.dbs,
            link.snap_replid,
            link.snap_offset,
            link.snap_stream_db,
        )
        log.info(
            "snapshot_loaded",
            master=f"{link.host}:{link.port}",
            bytes=link.snap_size,
            keys=sum(len(db.data) for db in result.dbs),
            duration_ms=message.duration_ms,
            offset=link.snap_offset,
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
        self.master.call_threadsafe(self.facade.apply_stream, link.gen, start, data)

    def _send_ack(self, link: MasterLink, now: float) -> None:
        link.last_ack_s = now
        offset = self.server.repl_offset if link.state is LinkState.CONNECTED else -1
        self._send_master(link, "ack", offset)

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
        )
        self._set_link_state(link, LinkState.CONNECT)

    def _tick_link(self, now: float) -> None:
        link = self.link
        if link is None:
            return
        if link.state is LinkState.CONNECT:
            if not link.awaiting_loop and now >= link.connect_at_s:
                link.awaiting_loop = True
                self.master.call_threadsafe(self.facade.prepare_link, link.gen)
            return
        if now - link.last_io_s > self.config["repl-timeout"]:
            self._link_lost(
                link, f"no data from the master for {self.config['repl-timeout']} s (repl-timeout)"
            )
            return
        if link.state is not LinkState.CONNECTING and now - link.last_ack_s >= ACK_INTERVAL_S:
            self._send_ack(link, now)

    # -- timers and publishing -------------------------------------------------------------------------------

    def on_tick(self) -> None:
        now = time.monotonic()
        self._tick_master(now)
        self._tick_link(now)
        self._publish()

    def _publish(self, force: bool = False, link_changed: bool = False, gen: int = -1) -> None:
        """Hand the loop fresh read-only views (INFO, ROLE, WAIT, min-replicas) of what changed.

        Views are immutable objects replaced whole, so the loop reads them without a lock; only changes that
        the loop must act on (acks for WAIT, link states for MASTERDOWN) also schedule a call there.
        """
        facade = self.facade
        link = self.link
        view = (
            LinkView()
            if link is None
            else LinkView(
                state=link.state,
                read_offset=link.read_pos,
                last_io_s=link.last_io_s,
                down_since_s=link.down_since_s,
                transfer_size=link.snap_size,
                transfer_read=link.snap_received,
                transfer_last_io_s=link.snap_last_io_s,
            )
        )
        now = time.monotonic()
        if (
            force
            or view.state is not facade.link_view.state
            or view.read_offset != facade.link_view.read_offset
            or now - self._last_publish_s >= PUBLISH_INTERVAL_S
        ):
            self._last_publish_s = now
            facade.link_view = view
        backlog = self.backlog
        backlog_view = (
            BacklogView(backlog.first_byte_offset, backlog.histlen) if backlog is not None else None
        )
        if backlog_view != facade.backlog_view:
            facade.backlog_view = backlog_view
        if self._replicas_dirty or force:
            self._replicas_dirty = False
            facade.replicas_view = tuple(
                ReplicaView(r.ip, r.port, r.state, r.ack_offset, r.ack_time_s) for r in self.replicas.values()
            )
            self.master.call_threadsafe(facade.replicas_changed)
        if link_changed:
            self.master.call_threadsafe(facade.link_changed, gen)
