"""Persistence, the loop-side facade (``server.persistence``): wires the AOF sink, the jobs and loading.

Runs on the master actor's loop thread and owns everything that must survive a restart of the persistence
actor (actor.py): the open AOF, the counters INFO persistence reports, the jobs' state. The pieces:

    aof_sink.AofSink    each tick's propagated bytes to the AOF (a stream sink of the master actor, before any
                        reply leaves), appendfsync, the everysec fsync through the actor; Misconf (MISCONF)
    jobs.Jobs           SAVE, BGSAVE, BGREWRITEAOF (fork children, via actors/fork.py), save points, the
                        automatic rewrite and its backoff, turning the AOF on and off
    loading.Loading     the start-up load (AOF or RDB), DEBUG RELOAD / LOADAOF, loading progress

This class builds them, registers the sink, the cron job, INFO persistence and the config listeners, and keeps
the names commands and replication use (``server.persistence.bgsave()``, ``.child``, ...). The RDB aux fields
written by SAVE/BGSAVE come from ``repl_info`` (a callable returning ``(repl_id, repl_offset,
repl_stream_db)``, all None by default), which replication may replace.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from actors import fork
from actors.fork import ChildKind, ForkedChild
from actors.persistence.aof.file import AofState
from actors.persistence.aof.manifest import temp_incr_name
from actors.persistence.aof_sink import AofSink, Misconf
from actors.persistence.jobs import Jobs, remove_quietly
from actors.persistence.loading import Loading
from actors.persistence.rdb import writer as rdb_writer
from actors.persistence.rdb.helper import LoadHelper

if TYPE_CHECKING:
    from actors.loop.master import MasterActor
    from actors.server.server import Server

log = structlog.get_logger("redactor.persistence")

SHUTDOWN_SAVE_ERROR = "ERR Errors trying to SHUTDOWN. Check logs."


class Persistence:
    """Everything persistence does on the loop thread; ``server.persistence`` points here."""

    def __init__(self, server: Server, master: MasterActor) -> None:
        self.server = server
        self.master = master
        self.config = server.config
        # (repl_id, repl_offset, repl_stream_db) for the RDB aux fields; replication may replace this.
        self.repl_info: Callable[[], tuple[str | None, int | None, int | None]] = lambda: (None, None, None)
        self.misconf = Misconf(server)
        self.sink = AofSink(server, self.config, self.misconf)
        self.jobs = Jobs(server, self.sink, self.misconf, self._aux)
        self.loading = Loading(server, self.sink, self.jobs)
        self.aof = self.sink.aof
        # The names commands, replication and the launcher call.
        self.save = self.jobs.save
        self.bgsave = self.jobs.bgsave
        self.rewrite_background = self.jobs.rewrite_background
        self.snapshot_for_sync = self.jobs.snapshot_for_sync
        self.start_append_only = self.jobs.start_append_only
        self.stop_append_only = self.jobs.stop_append_only
        self.dataset_replaced = self.jobs.dataset_replaced
        self.kill_child = self.jobs.kill_child
        self.data_flushed = self.jobs.data_flushed
        self.load_on_start = self.loading.load_on_start
        self.reload = self.loading.reload
        self.load_aof = self.loading.load_aof
        # REPLCONF rdb-filter-only: an RDB without the dataset, the function libraries in it or not (made at
        # once: Redis forks a save for it, of no keys).
        self.filtered_rdb = lambda functions: rdb_writer.dumps([], self._aux(False), functions=functions)
        self.misconf.update()
        server.persistence = self
        master.stream_sinks.append(self.sink.feed_aof)
        master.cron_jobs.append(self.cron)
        server.info_sections["persistence"] = self.info
        self.config.on_change("appendonly", self.jobs.on_appendonly_changed)
        self.misconf.watch_config()

    def _aux(self, aof_base: bool = False) -> dict[str, bytes | int | str]:
        repl_id, repl_offset, stream_db = self.repl_info()
        aux = rdb_writer.default_aux(repl_id, repl_offset, stream_db)
        aux["aof-base"] = 1 if aof_base else 0
        return aux

    # -- the state commands and replication read and set -----------------------------------------------------

    @property
    def child(self) -> ForkedChild | None:
        """The node's running fork child (any kind: one at a time), or None."""
        return fork.active()

    @property
    def rdb_path(self) -> str:
        return self.jobs.rdb_path

    @property
    def lastsave_s(self) -> int:
        return self.jobs.lastsave_s

    @property
    def bgsave_scheduled(self) -> bool:
        return self.jobs.bgsave_scheduled

    @bgsave_scheduled.setter
    def bgsave_scheduled(self, value: bool) -> None:
        self.jobs.bgsave_scheduled = value

    @property
    def aof_rewrite_scheduled(self) -> bool:
        return self.jobs.aof_rewrite_scheduled

    @aof_rewrite_scheduled.setter
    def aof_rewrite_scheduled(self, value: bool) -> None:
        self.jobs.aof_rewrite_scheduled = value

    @property
    def aof_rewrites_consecutive_failures(self) -> int:
        return self.jobs.aof_rewrites_consecutive_failures

    @aof_rewrites_consecutive_failures.setter
    def aof_rewrites_consecutive_failures(self, value: int) -> None:
        self.jobs.aof_rewrites_consecutive_failures = value

    @property
    def child_delay_s(self) -> float:
        """DEBUG SET-SAVE-DELAY: fork children sleep this long before writing."""
        return self.jobs.child_delay_s

    @child_delay_s.setter
    def child_delay_s(self, value: float) -> None:
        self.jobs.child_delay_s = value

    def replica_loading(self, total_bytes: int) -> None:
        self.loading.replica_loading(total_bytes)

    @property
    def load_delay_s(self) -> float:
        """DEBUG SET-LOAD-DELAY: loads wait this long before reading."""
        return self.loading.load_delay_s

    @load_delay_s.setter
    def load_delay_s(self, value: float) -> None:
        self.loading.load_delay_s = value

    @property
    def aof_flush_sleep_us(self) -> int:
        """DEBUG AOF-FLUSH-SLEEP: each write of the AOF buffer waits this long first (loop thread)."""
        return self.sink.flush_sleep_us

    @aof_flush_sleep_us.setter
    def aof_flush_sleep_us(self, value: int) -> None:
        self.sink.flush_sleep_us = value

    @property
    def prefetched_load_helper(self) -> LoadHelper | None:
        return self.loading.prefetched_load_helper

    @prefetched_load_helper.setter
    def prefetched_load_helper(self, helper: LoadHelper | None) -> None:
        self.loading.prefetched_load_helper = helper

    @property
    def latest_fork_usec(self) -> int:
        return fork.NODE_CHILDREN.latest_fork_usec

    @property
    def total_forks(self) -> int:
        return fork.NODE_CHILDREN.total_forks

    # -- cron (loop thread, hz times a second) ---------------------------------------------------------------

    def cron(self) -> None:
        child = fork.active()
        if child is not None:
            child.poll_info()  # (its reports, read as they come: the pipe must not fill up)
            fork.reap()
        self.sink.cron()
        self.jobs.cron()

    # -- shutdown --------------------------------------------------------------------------------------------

    def prepare_shutdown(self, save: bool | None, force: bool = False) -> str | None:
        """SHUTDOWN / SIGTERM: kill a child, fsync the AOF, save if asked (``None``: iff save points exist).

        Returns an error message (the node keeps running, AOF still open) or None (ready to exit). With
        ``force`` (SHUTDOWN FORCE) a save that fails is logged and the node exits anyway, and so does a node
        still writing the AOF that appendonly yes just started, which otherwise refuses, as Redis does: the
        dataset is in no file yet.
        """
        jobs = self.jobs
        aof = self.aof
        if aof.state is AofState.WAIT_REWRITE:
            if not force:
                log.warning("shutdown_refused_initial_aof", message="Writing initial AOF, can't exit.")
                return SHUTDOWN_SAVE_ERROR
            log.warning(
                "aof_shutdown_before_first_rewrite",
                detail="the AOF being enabled is discarded",
                message="Writing initial AOF. Exit anyway.",
            )
        jobs.kill_child()
        self.sink.fsync_open()
        if save is None:
            save = bool(self.config["save"])
        if self.server.loading:
            save = False  # as Redis: a half-loaded dataset must never replace the file it came from
        if save:
            log.info("shutdown_saving", message="Saving the final RDB snapshot before exiting.")
        if save and not jobs.save():
            if not force:
                log.error("shutdown_save_failed", message="Error trying to save the DB, can't exit.")
                return SHUTDOWN_SAVE_ERROR
            log.error("shutdown_save_failed", message="Error trying to save the DB. Exit anyway.")
        jobs.shutting_down = True
        waiting = aof.state is AofState.WAIT_REWRITE
        self.sink.close()
        if waiting:
            remove_quietly(aof.path(temp_incr_name(aof.filename)))
        log.info("persistence_shut_down", saved=bool(save))
        return None

    # -- INFO ------------------------------------------------------------------------------------------------
    def info(self) -> list[tuple[str, Any]]:
        server = self.server
        aof = self.aof
        jobs, sink, loading = self.jobs, self.sink, self.loading
        child = fork.active()
        now = time.time()
        # (a full sync's snapshot child is an RDB child too, as Redis's replication BGSAVE)
        rdb_running = child is not None and child.kind in (ChildKind.RDB, ChildKind.REPLICA_SNAPSHOT)
        aof_running = child is not None and child.kind is ChildKind.AOF
        # The running child's reports (actors/fork.py's info pipe), as Redis's child info; zeros without one.
        cow = peak = age_s = processed = total = 0
        if child is not None:
            child.poll_info()
            cow, peak, processed, total = (
                child.cow_bytes,
                child.cow_peak_bytes,
                child.keys_processed,
                child.keys_total,
            )
            if child.info_updated_monotonic:
                age_s = int(time.monotonic() - child.info_updated_monotonic)
        lines: list[tuple[str, Any]] = [
            ("loading", int(server.loading)),
            ("async_loading", int(server.async_loading)),
            ("current_cow_peak", peak),
            ("current_cow_size", cow),
            ("current_cow_size_age", age_s),
            ("current_fork_perc", f"{processed * 100 / total:.2f}" if total else "0.00"),
            ("current_save_keys_processed", processed),
            ("current_save_keys_total", total),
            ("rdb_changes_since_last_save", server.keyspace.dirty),
            ("rdb_bgsave_in_progress", int(rdb_running)),
            ("rdb_last_save_time", jobs.lastsave_s),
            ("rdb_last_bgsave_status", "ok" if self.misconf.lastbgsave_ok else "err"),
            ("rdb_last_bgsave_time_sec", jobs.rdb_last_bgsave_time_s),
            ("rdb_current_bgsave_time_sec", int(now - child.started_s) if rdb_running and child else -1),
            ("rdb_saves", jobs.rdb_saves),
            ("rdb_last_cow_size", jobs.rdb_last_cow_bytes),
            ("rdb_last_load_keys_expired", loading.rdb_last_load_keys_expired),
            ("rdb_last_load_keys_loaded", loading.rdb_last_load_keys_loaded),
            ("aof_enabled", int(aof.state is not AofState.OFF)),
            ("aof_rewrite_in_progress", int(aof_running)),
            ("aof_rewrite_scheduled", int(jobs.aof_rewrite_scheduled)),
            ("aof_last_rewrite_time_sec", jobs.aof_last_rewrite_time_s),
            ("aof_current_rewrite_time_sec", int(now - child.started_s) if aof_running and child else -1),
            ("aof_last_bgrewrite_status", "ok" if jobs.aof_lastbgrewrite_ok else "err"),
            ("aof_rewrites", jobs.aof_rewrites),
            ("aof_rewrites_consecutive_failures", jobs.aof_rewrites_consecutive_failures),
            ("aof_last_write_status", "ok" if self.misconf.aof_last_write_ok else "err"),
            ("aof_last_cow_size", jobs.aof_last_cow_bytes),
            ("module_fork_in_progress", 0),
            ("module_fork_last_cow_size", 0),
        ]
        if aof.state is not AofState.OFF:
            lines += [
                ("aof_current_size", aof.current_size),
                ("aof_base_size", aof.base_size),
                ("aof_pending_rewrite", int(jobs.aof_rewrite_scheduled)),
                ("aof_buffer_length", len(sink.aof_buf)),
                ("aof_pending_bio_fsync", int(sink.fsync_inflight_since is not None)),
                ("aof_delayed_fsync", sink.aof_delayed_fsync),
            ]
        if server.loading or server.async_loading:
            elapsed = max(now - loading.loading_start_s, 0)
            percent = loading.loading_percent()
            eta = int(elapsed * (100 - percent) / percent) if percent > 0 else 1
            lines += [
                ("loading_start_time", loading.loading_start_s),
                ("loading_total_bytes", loading.loading_total_bytes),
                ("loading_rdb_used_mem", 0),
                ("loading_loaded_bytes", loading.loading_loaded_bytes),
                ("loading_loaded_perc", f"{percent:.2f}"),
                ("loading_eta_seconds", eta),
            ]
        return lines
