"""Replication on the loop thread: ``Replication`` (``server.replication``), what commands see.

Owns the role, the replication ids (PSYNC2: the current history and the one it continues), the master
replication offset (``server.repl_offset``), the replica's master client, WAIT and min-replicas, INFO
replication and ROLE. It feeds each tick's propagated bytes to the actor (one ``Feed`` per tick), asks
snapshot_child.py to fork for the actor's jobs, applies the master's stream on a replica (apply.py's mixin) and swaps a loaded
snapshot in. It talks to the actor only through messages.py: ``_tell`` (loop -> actor, FIFO with the stream)
and ``receive`` (actor -> loop, dispatched by type); it reads the views the actor publishes (states.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import hiredis
import structlog

from actors import fork
from actors.persistence.rdb import writer as rdb_writer
from actors.replication import messages as m
from actors.replication import report
from actors.replication.apply import StreamApplier
from actors.replication.direct import DirectStreams
from actors.replication.failover import Failover, FailoverState
from actors.replication.resp_feed import RespFeed
from actors.replication.snapshot_child import SnapshotChildren, remove_stale_temp_files
from actors.replication.states import (
    BacklogView,
    LinkState,
    LinkView,
    ReplicaState,
    ReplicaView,
    SyncLoading,
)
from actors.replication.waits import Waits
from actors.server.blocking import unblock_on_role_change
from actors.server.client import Client
from protocol import errors
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.loop.master import MasterActor
    from actors.server.server import Server

log = structlog.get_logger("redactor.replication")

REPLID_ZERO = "0" * 40

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


class Replication(StreamApplier):
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
        # DELs of the keys a restart's load dropped as expired (server.expired_on_load), for _announce to send.
        self._expired_dels: list[tuple[int, bytes]] = []
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
        # How the node loads a full sync's snapshot now (see _follow_link).
        self._sync_loading = SyncLoading.NONE
        self.replicas_view: tuple[ReplicaView, ...] = ()
        self.backlog_view: BacklogView | None = None
        self.children = SnapshotChildren(self._tell)
        # Snapshot jobs asked for while another fork child ran: forked from the cron once none runs.
        self.snapshots_waiting: list[int] = []
        # What the actor tells this thread, by message type (``receive``).
        self._handlers: dict[type, Callable[[Any], None]] = {
            m.ActorStarted: lambda msg: self.actor_started(),
            m.RequestSnapshot: lambda msg: self.request_snapshot(msg.job),
            m.KillSnapshot: lambda msg: self.children.kill_job(msg.job, msg.pid),
            m.PrepareLink: lambda msg: self.prepare_link(msg.gen),
            m.ApplyStream: lambda msg: self.apply_stream(msg.gen, msg.start, msg.data),
            m.InstallSnapshot: lambda msg: self.install_snapshot(
                msg.gen, msg.dbs, msg.replid, msg.offset, msg.stream_db
            ),
            m.PartialAccepted: lambda msg: self.partial_accepted(msg.gen, msg.replid, msg.stream_db),
            m.LinkChanged: lambda msg: self.link_changed(msg.gen),
            m.ReplicasChanged: lambda msg: self.replicas_changed(),
            m.BacklogFreed: lambda msg: self.backlog_freed(),
            m.CountStat: lambda msg: self.count_stat(msg.name),
        }
        self._last_apply_error_log_s = 0.0
        self._apply_errors_logged = 0
        self.resp = RespFeed(self)  # Redis replicas on RESP connections (resp_feed.py)
        server.replication = self
        if server.persistence is not None:
            server.persistence.repl_info = self.rdb_repl_info
        master.stream_sinks.append(self.feed)
        self.waits = Waits(self)  # WAIT and min-replicas (waits.py)
        self.coordinated = Failover(self)  # FAILOVER (failover.py)
        self.direct = DirectStreams(self)  # the stream written / read on the loop thread (direct.py)
        # Applying a batch of the master's stream: a GETACK in it is answered once the whole batch is applied.
        self._applying = False
        self._getack_after_batch = False
        # Batches of the master's stream that arrived while a script was busy (see apply_stream).
        self._held: list[tuple[int, int, bytes]] = []
        master.after_flush.append(self.waits._after_flush)
        master.after_flush.append(self._release_held)
        master.cron_jobs.append(self.cron)
        server.info_sections["replication"] = self.info
        server.client_removed_hooks.append(self.waits._client_removed)
        self.config.on_change("replica-serve-stale-data", lambda value: self._follow_link())
        self.config.on_change("min-replicas-to-write", lambda value: self._update_write_refusal())
        self.config.on_change("min-replicas-max-lag", lambda value: self._update_write_refusal())

    # -- talking to the actor ------------------------------------------------------------------------------

    def _tell(self, message: m.LoopToActor) -> None:
        self.master.tell_bus(message)

    def receive(self, message: m.ActorToLoop) -> None:
        """A message from the actor (``call_threadsafe``, so in the order the actor sent them)."""
        self._handlers[type(message)](message)

    def _send_ids(self) -> None:
        self._tell(m.Ids(self.replid, self.replid2, self.second_offset))

    # -- start-up --------------------------------------------------------------------------------------------

    def on_dataset_loaded(self) -> None:
        """Node start, after loading: take the replication info of the RDB, then follow ``replicaof``."""
        server = self.server
        remove_stale_temp_files()
        loaded_id, loaded_offset = server.loaded_repl_id, server.loaded_repl_offset
        has_info = bool(loaded_id) and loaded_offset is not None and loaded_offset >= 0
        target = self.config["replicaof"]
        if target:
            if has_info:
                # A replica restarted from its RDB continues the history it had (PSYNC with it).
                assert loaded_id is not None and loaded_offset is not None
                self.replid = loaded_id
                server.stream.reset_offset(loaded_offset)
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
            server.stream.reset_offset(loaded_offset)
            self.fed_pos = loaded_offset
            server.stream.start_replication_feed()
            log.info(
                "replication_history_restored", replid=self.replid, replid2=loaded_id, offset=loaded_offset
            )
            # The keys the load dropped as expired: their DELs continue the history, as Redis feeds them
            # (sent once the actor's backlog starts at the restored offset: _announce).
            self._expired_dels = server.expired_on_load
        server.expired_on_load = []
        self.ready = True
        if self._actor_waiting:
            self._actor_waiting = False
            self._announce()

    def actor_started(self) -> None:
        """The actor (re)started with empty state: it learns the role, the ids and where the stream stands."""
        self.direct.close_outs("replication actor restarted")
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
            self._tell(m.ReplicaOf(self.gen, self.master_host, self.master_port))
        elif self.server.repl_feeding:
            self.enable_feeding()
            dels, self._expired_dels = self._expired_dels, []
            for db_index, key in dels:
                self.server.propagate(db_index, [b"DEL", key])
        # From here on the actor knows the ids and the backlog: it may answer replicas' PSYNCs.
        self._tell(m.Ready())

    # -- the stream (master side) ----------------------------------------------------------------------------

    def enable_feeding(self) -> None:
        """Start (or restart) the backlog at the current offset; the next write SELECTs its database."""
        server = self.server
        server.stream.start_replication_feed()
        self.fed_pos = server.repl_offset
        self._tell(m.ResetBacklog(server.repl_offset, -1, False))

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
        selects = tuple(point for point in server.repl_select_points if point[0] >= start)
        server.repl_select_points.clear()
        self._tell(m.Feed(start, selects, data))
        if self.direct.outs:
            self.direct.write(start, data)

    # -- snapshots (fork children) -----------------------------------------------------------------------------

    def request_snapshot(self, job: int) -> None:
        """Fork a child that writes the dataset as an RDB (snapshot_child.py); it tells the actor its offset.

        While another fork child runs (a BGSAVE, an AOF rewrite) the job waits: the cron asks again once the
        node has no child, and the offset is the one at that moment."""
        if fork.active() is not None:
            if job not in self.snapshots_waiting:
                self.snapshots_waiting.append(job)
            return
        server = self.server
        if not server.repl_feeding and self.master_host is None:
            self.enable_feeding()
        offset = server.repl_offset
        if self.master_host is None:
            stream_db = server.prop_db
        else:
            stream_db = self.master_client.db.id if self.master_client is not None else -1
        aux = rdb_writer.default_aux(self.replid, offset, max(stream_db, 0))
        self.children.fork(
            job,
            offset,
            stream_db,
            self.replid,
            server.keyspace.dbs,
            aux,
            bool(self.config["rdbcompression"]),
            bool(self.config["rdbchecksum"]),
            float(getattr(server.persistence, "child_delay_s", 0.0) or 0.0),
        )
        if self.master_host is None:
            # As replicationSetupSlaveForFullResync's ``slaveseldb = -1``: the stream after this snapshot
            # SELECTs again, so a replica that only reads the stream (SYNC) knows the database.
            server.stream.forget_db()

    def kill_children(self) -> None:
        """Node shutdown: stop snapshot children (their files are temporary)."""
        self.children.kill()

    def install_snapshot(
        self, gen: int, dbs: list[Database], replid: str, offset: int, stream_db: int
    ) -> None:
        """Full sync done: swap the loaded databases in at once and take the master's history."""
        server = self.server
        if gen != self.gen or self.master_host is None:
            return
        # Our replicas resync with us: the data they have is gone (Redis's replicationAttachToNewMaster).
        self._disconnect_replicas("full sync with the master: new data")
        server.keyspace.replace_all(dbs)
        server.stream.reset_offset(offset)
        self.fed_pos = offset
        self._reset_reader()
        self.replid = replid
        self.replid2 = REPLID_ZERO
        self.second_offset = -1
        self.psync_known = True
        client = self._ensure_master_client()
        client.select(stream_db if 0 <= stream_db < len(server.keyspace.dbs) else 0)
        self._send_ids()
        self._tell(m.ResetBacklog(offset, stream_db, True))
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
            self._disconnect_replicas("master replication id changed")
        self.psync_known = True
        client = self._ensure_master_client()
        if 0 <= stream_db < len(server.keyspace.dbs):
            client.select(stream_db)

    def link_changed(self, gen: int) -> None:
        """The actor published a new link state."""
        if gen == self.gen:
            self._follow_link()

    def _follow_link(self) -> None:
        """What the link's state decides on the loop: whether a full sync's load shows (loading, async
        loading), and MASTERDOWN's refusal of stale data."""
        server = self.server
        # Redis's replica loads the received RDB with the server loading (disk-based load: commands but a few
        # get -LOADING, INFO says loading:1); here the snapshot is parsed while it arrives, and the load is
        # what remains once it has all arrived (the link's LOADING state: the parse's end, key-load-delay).
        # A diskless load (repl-diskless-load swapdb, or on-empty-db with no keys) loads from the socket, so
        # from the transfer's start: with swapdb and the same replication id as the data it has (the same
        # history, later), Redis serves the old data meanwhile (async loading, INFO async_loading:1); else
        # the node is loading throughout (rdb.c / replication.c's readSyncBulkPayload).
        link = self.link_view
        state = link.state
        sync_loading = SyncLoading.NONE
        if self.master_host is not None and state in (LinkState.TRANSFER, LinkState.LOADING):
            load = self.config["repl-diskless-load"]
            if load == "swapdb" and link.transfer_replid == self.replid:
                sync_loading = SyncLoading.ASYNC
            elif load == "swapdb" or state is LinkState.LOADING:
                sync_loading = SyncLoading.BLOCKING
            elif load == "on-empty-db" and server.keyspace.total_keys() == 0:
                sync_loading = SyncLoading.BLOCKING
        if sync_loading is not self._sync_loading:
            self._sync_loading = sync_loading
            server.loading = sync_loading is SyncLoading.BLOCKING
            server.async_loading = sync_loading is SyncLoading.ASYNC
            if sync_loading is not SyncLoading.NONE and server.persistence is not None:
                server.persistence.replica_loading(link.transfer_size)  # INFO's loading_* fields
            # Async loading keeps commands off the fast paths: REPLICAOF, SAVE ... get -LOADING (Server.execute).
            server.restrict("async-loading", sync_loading is SyncLoading.ASYNC)
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
        # Our own replicas stay (Redis's replicationSetMaster): they may hopefully continue partially. They are
        # disconnected when our history changes: a partial resync with another replication id
        # (partial_accepted), or a full sync's data installed (install_snapshot). A full sync that fails before
        # that leaves them, and what we PSYNC with, as they were.
        self._tell(m.ReplicaOf(self.gen, host, port))
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
        self.waits._unblock_waiters(CommandError(UNBLOCKED_ROLE_CHANGE))
        unblock_on_role_change(server)  # and the clients blocked on keys (BLPOP...), as Redis
        self.gen += 1
        self.link_view = LinkView(state=LinkState.CONNECT)
        self._follow_link()

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
        server.keyspace.replica_written.clear()  # (its own active expiry takes those keys from here)
        server.refuse_stale = False
        self.gen += 1
        self.link_view = LinkView()
        self._follow_link()  # (a full sync's load, if one was under way, is over: loading no more)
        # shiftReplicationId: the history so far is the secondary id, up to the current offset.
        self.replid2 = self.replid
        self.second_offset = server.repl_offset + 1
        self.replid = new_replid()
        self.psync_known = True
        self._tell(m.ReplicaOf(self.gen, None, 0))
        self._send_ids()
        server.stream.start_replication_feed()
        self.fed_pos = server.repl_offset
        self._tell(m.ResetBacklog(server.repl_offset, -1, False))
        self._disconnect_replicas("replication id changed")
        self._update_write_refusal()
        log.info(
            "replica_promoted",
            old_master=old,
            replid=self.replid,
            replid2=self.replid2,
            second_repl_offset=self.second_offset,
            message="MASTER MODE enabled",
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

    # -- replicas, WAIT and min-replicas (waits.py) --------------------------------------------------------

    def replicas_changed(self) -> None:
        self.waits.replicas_changed()

    def good_replicas(self) -> int:
        return self.waits.good_replicas()

    def _min_replicas_enabled(self) -> bool:
        return self.waits._min_replicas_enabled()

    def _update_write_refusal(self) -> None:
        self.waits._update_write_refusal()

    def wait(self, client: Client, numreplicas: int, timeout_ms: int) -> Any:
        return self.waits.wait(client, numreplicas, timeout_ms)

    # -- cron, RDB aux fields ------------------------------------------------------------------------------

    def cron(self) -> None:
        # Fork children are reaped by the persistence cron (fork.reap calls each child's exit callback).
        if self.snapshots_waiting and fork.active() is None:
            waiting, self.snapshots_waiting = self.snapshots_waiting, []
            for job in waiting:
                self.request_snapshot(job)
        self._update_write_refusal()
        self.resp.cron()
        self.coordinated.cron()

    def getack_in_stream(self) -> None:
        """The master's stream asked for an ack (REPLCONF GETACK *, a Redis master's WAIT)."""
        if self.master_host is not None:
            if self._applying:
                self._getack_after_batch = True
            else:
                self._tell(m.GetAckInStream(self.gen))

    def failover(self, host: str | None, port: int, timeout_ms: int, force: bool) -> None:
        self.coordinated.start(host, port, timeout_ms, force)

    def failover_abort(self) -> bool:
        if self.coordinated.state is FailoverState.NONE:
            return False
        self.coordinated.abort("Failover manually aborted")
        return True

    def replicas_caught_up(self) -> bool:
        """Has every replica acknowledged this node's whole stream? (Redis's isReadyToShutdown.)"""
        offset = self.server.repl_offset
        return all(_acked(r) >= offset for r in self.replicas_view)

    def request_acks(self) -> None:
        """Ask every replica for its offset after this tick's writes (as WAIT does)."""
        self.waits.request_acks()

    def replica_count(self) -> int:
        return len(self.replicas_view)

    def lagging_replicas(self) -> list[str]:
        """Redis's line for each replica behind the stream, logged as a shutdown finishes."""
        offset = self.server.repl_offset
        now = time.monotonic()
        return [
            f"Lagging replica {r.ip}:{r.port} reported offset {offset - _acked(r)} behind master, "
            f"lag={int(now - r.ack_time_s) if r.state is ReplicaState.ONLINE else 0}, state={r.state.name.lower()}."
            for r in self.replicas_view
            if _acked(r) < offset
        ]

    def backlog_bytes(self) -> int:
        """The backlog's history in bytes, as the actor last published it (INFO's mem_replication_backlog)."""
        backlog = self.backlog_view
        return backlog.histlen if backlog is not None else 0

    def buffer_bytes(self) -> int:
        """INFO's mem_total_replication_buffers. Redis 7.0 keeps one buffer that the backlog and the replicas
        share: its size is the backlog's history, or more while an online replica has not yet acknowledged
        older bytes (the stream its link still holds for it: a stalled replica makes it grow)."""
        held = self.backlog_bytes()
        offset = self.server.repl_offset
        for r in self.replicas_view:
            if r.state is ReplicaState.ONLINE:
                held = max(held, offset - r.ack_offset)
        return held

    def full_sync_in_progress(self) -> bool:
        """The link to the master takes a full sync: the snapshot is coming in, or being loaded."""
        return self.link_view.state in (LinkState.TRANSFER, LinkState.LOADING)

    def kill_replicas(self) -> int:
        """CLIENT KILL TYPE replica: every replica's link is dropped (they reconnect and resync, partially if
        they can); how many there were."""
        count = len(self.replicas_view)
        if count:
            self._disconnect_replicas("killed by CLIENT KILL TYPE replica")
        return count

    def _disconnect_replicas(self, reason: str) -> None:
        """Redis's disconnectSlaves, at once: the direct streams close on this thread, so not one more byte of
        the stream reaches them (after a history change, those bytes would be another history's under the
        old id); the actor drops the links next, in order after everything it was told before."""
        self.direct.close_outs(reason)
        self._tell(m.DropReplicas(reason))
        # Gone now for INFO (connected_slaves:0 right after, as Redis's freeClient): the actor's next view,
        # once it has dropped them, says the same, and then shows the replicas that come back.
        self.replicas_view = ()

    def attach_resp_replica(self, client: Client, replid: str, offset: int, sync: bool) -> Any:
        """PSYNC / SYNC from a Redis replica on a RESP connection (resp_feed.py)."""
        return self.resp.attach(client, replid, offset, sync)

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

    # -- INFO and ROLE (report.py) -------------------------------------------------------------------------

    def info(self) -> list[tuple[str, Any]]:
        return report.info_section(self)

    def role(self) -> list[Any]:
        return report.role_reply(self)


def _acked(replica: ReplicaView) -> int:
    """What a replica has acknowledged, as Redis's repl_ack_off: nothing (0) until it is online, so one still
    syncing is in step only while the stream is empty (a master whose offset is still 0 stops at once)."""
    return replica.ack_offset if replica.state is ReplicaState.ONLINE else 0
