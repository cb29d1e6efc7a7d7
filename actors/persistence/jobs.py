"""Persistence jobs: SAVE, BGSAVE, BGREWRITEAOF, save points, the automatic rewrite and its backoff.

Runs on the master actor's loop thread. Background jobs are fork children made with actors/fork.py, which
allows one child at a time for the whole node (a BGSAVE, an AOF rewrite and a replica snapshot never run at
once); a job that cannot start because another child runs is scheduled (``bgsave_scheduled``,
``aof_rewrite_scheduled``) and started by the cron once the child is gone, as Redis does. The table below
(``TEMP_FILE_BY_KIND``) names what each kind of job writes; the child's completion comes back through
``fork.reap`` to ``_bgsave_done`` or ``_rewrite_done``, which tell apart success, an error exit and death by a
signal (SIGUSR1 is how the parent itself kills a child, which is not an error, as in Redis).

AOF switching (``start_append_only`` / ``stop_append_only``) lives here too: turning the AOF on is a rewrite.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from actors import fork
from actors.config import ConfigError
from actors.fork import ChildExit, ChildKind, ForkedChild
from actors.persistence.actor import Unlink
from actors.persistence.aof.file import AofState, write_base
from actors.persistence.aof.manifest import temp_incr_name
from actors.persistence.rdb import writer as rdb_writer

if TYPE_CHECKING:
    from actors.persistence.aof_sink import AofSink, Misconf
    from actors.server.server import Server

log = structlog.get_logger("redactor.persistence")

# Redis's CONFIG_BGSAVE_RETRY_DELAY: after a failed BGSAVE, save points wait this long before trying again.
BGSAVE_RETRY_DELAY_S = 5
# Redis's aofRewriteLimited: after this many consecutive failed rewrites, automatic and scheduled ones
# wait AOF_REWRITE_BACKOFF_FIRST_S, doubling up to AOF_REWRITE_BACKOFF_MAX_S (BGREWRITEAOF is never held).
AOF_REWRITE_FAILURES_BEFORE_BACKOFF = 3
AOF_REWRITE_BACKOFF_FIRST_S = 60
AOF_REWRITE_BACKOFF_MAX_S = 3600
# The job table: the temp file each kind of background job writes, by the child's pid (removed on failure).
TEMP_FILE_BY_KIND = {
    ChildKind.RDB: "temp-{pid}.rdb",  # rdb_writer.save_file's temp name; renamed over dbfilename
    ChildKind.AOF: "temp-rewriteaof-bg-{pid}.aof",  # the new base; installed by the parent
}


def _temp_file(kind: ChildKind, pid: int) -> str:
    return TEMP_FILE_BY_KIND[kind].format(pid=pid)


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class Jobs:
    """SAVE, BGSAVE and BGREWRITEAOF and when to run them (loop thread)."""

    def __init__(
        self,
        server: Server,
        sink: AofSink,
        misconf: Misconf,
        aux: Callable[[bool], dict[str, bytes | int | str]],
    ) -> None:
        self.server = server
        self.config = server.config
        self.sink = sink
        self.misconf = misconf
        self.aux = aux  # RDB aux fields: aux(aof_base)
        self.shutting_down = False
        # aof-disable-auto-gc no again: the history files kept meanwhile go now (Redis's updateAofAutoGCEnabled).
        self.config.on_change(
            "aof-disable-auto-gc", lambda disabled: None if disabled else self.delete_history()
        )
        # Test knob (DEBUG SET-SAVE-DELAY): a fork child sleeps this long before writing.
        self.child_delay_s = 0.0
        # Test knob (rdb-key-save-delay): the RDB writer sleeps after each key (SAVE, BGSAVE, AOF base, full sync).
        rdb_writer.set_key_save_delay(self.config["rdb-key-save-delay"])
        self.config.on_change("rdb-key-save-delay", rdb_writer.set_key_save_delay)
        # oom-score-adj's background-child value, set in each fork child (actors/server/oom_score.py).
        fork.CHILD_START_HOOKS["oom-score-adj"] = server.oom_score.in_child
        # RDB state, as Redis's server.lastsave, lastbgsave_status, ...
        self.lastsave_s = int(time.time())
        self.lastbgsave_try_s = 0.0
        self.rdb_last_bgsave_time_s = -1
        self.rdb_saves = 0
        self.rdb_last_cow_bytes = 0
        self.bgsave_scheduled = False
        # SYNC over RESP (redis-cli --rdb): called with True/False when the BGSAVE serving them ends.
        self.snapshot_waiters: list[Callable[[bool], None]] = []
        # AOF rewrite state
        self.aof_rewrite_scheduled = False
        self.aof_last_rewrite_time_s = -1
        self.aof_lastbgrewrite_ok = True
        self.aof_rewrites = 0
        self.aof_rewrites_consecutive_failures = 0
        self.aof_last_cow_bytes = 0
        # Backoff of automatic/scheduled rewrites after repeated failures (0: none pending).
        self._rewrite_backoff_s = 0
        self._next_rewrite_allowed_s = 0.0

    @property
    def rdb_path(self) -> str:
        return str(self.config["dbfilename"])

    # -- cron (loop thread, hz times a second) ---------------------------------------------------------------

    def cron(self) -> None:
        """Start what is due: a scheduled rewrite, a scheduled BGSAVE, a save point, the automatic rewrite."""
        if self.server.loading or self.shutting_down or fork.active() is not None:
            return
        if self.aof_rewrite_scheduled and not self._rewrite_limited():
            self._try(self.rewrite_background)
        elif self.bgsave_scheduled:
            self.bgsave_scheduled = False
            self._try(self.bgsave)
        elif self._save_point_due():
            self._try(self.bgsave)
        elif self._auto_rewrite_due() and not self._rewrite_limited():
            aof = self.sink.aof
            log.info("aof_auto_rewrite_started", current_size=aof.current_size, base_size=aof.base_size)
            self._try(self.rewrite_background)

    def _try(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:  # already logged and counted by fn; the cron goes on
            log.debug("background_job_not_started", reason=str(exc))

    def _rewrite_limited(self) -> bool:
        """True while repeated rewrite failures hold back automatic and scheduled rewrites."""
        if self.aof_rewrites_consecutive_failures < AOF_REWRITE_FAILURES_BEFORE_BACKOFF:
            self._rewrite_backoff_s = 0
            self._next_rewrite_allowed_s = 0.0
            return False
        now = time.monotonic()
        if self._next_rewrite_allowed_s:
            if now < self._next_rewrite_allowed_s:
                return True
            self._next_rewrite_allowed_s = 0.0
            return False
        self._rewrite_backoff_s = min(
            self._rewrite_backoff_s * 2 or AOF_REWRITE_BACKOFF_FIRST_S, AOF_REWRITE_BACKOFF_MAX_S
        )
        self._next_rewrite_allowed_s = now + self._rewrite_backoff_s
        log.warning(
            "aof_rewrite_limited",
            failures=self.aof_rewrites_consecutive_failures,
            retry_in_s=self._rewrite_backoff_s,
            message="Background AOF rewrite has repeatedly failed and triggered the limit, will retry in "
            f"{self._rewrite_backoff_s // 60} minutes",
        )
        return True

    def _save_point_due(self) -> bool:
        points = self.config["save"]
        if not points:
            return False
        now = time.time()
        dirty = self.server.keyspace.dirty
        retry_ok = self.misconf.lastbgsave_ok or now - self.lastbgsave_try_s > BGSAVE_RETRY_DELAY_S
        for seconds, changes in points:
            if dirty >= changes and now - self.lastsave_s > seconds and retry_ok:
                log.info(
                    "save_point_reached",
                    seconds=seconds,
                    changes=changes,
                    dirty=dirty,
                    message=f"{changes} changes in {seconds} seconds. Saving...",
                )
                return True
        return False

    def _auto_rewrite_due(self) -> bool:
        aof = self.sink.aof
        percentage = self.config["auto-aof-rewrite-percentage"]
        if (
            aof.state is not AofState.ON
            or not percentage
            or aof.current_size <= self.config["auto-aof-rewrite-min-size"]
        ):
            return False
        base = aof.base_size or 1
        growth = aof.current_size * 100 // base - 100
        return growth >= percentage

    # -- children --------------------------------------------------------------------------------------------

    def _fork(
        self, kind: ChildKind, work: Callable[[str], None], on_exit: Callable[[ForkedChild, ChildExit], None]
    ) -> ForkedChild:
        """Fork a child that runs ``work(its temp file)``. Raises ChildBusy if a child runs, OSError if fork
        fails."""
        return fork.fork_child(
            kind,
            lambda: work(_temp_file(kind, os.getpid())),
            on_exit,
            delay_s=self.child_delay_s,
            keys_total=self.server.keyspace.total_keys(),
        )

    def data_flushed(self) -> None:
        """FLUSHALL: a BGSAVE child's snapshot is of data now gone, so it is stopped, as Redis's
        flushAllDataAndResetRDB kills its RDB child (a replica's full-sync child keeps going here)."""
        child = fork.active()
        if child is not None and child.kind is ChildKind.RDB:
            self.kill_child()

    def kill_child(self) -> None:
        """Stop a running child (SHUTDOWN, appendonly no) and wait for it: SIGUSR1, as Redis does."""
        child = fork.active()
        if child is None:
            return
        log.info("child_killed", kind=child.kind.value, child_pid=child.pid)
        fork.kill()

    # -- RDB -------------------------------------------------------------------------------------------------

    def save(self) -> bool:
        """SAVE: write the live keyspace in the foreground (the node blocks, like Redis). True on success."""
        started = time.perf_counter()
        try:
            size = rdb_writer.save_file(
                self.rdb_path,
                self.server.keyspace.dbs,
                self.aux(False),
                compress=self.config["rdbcompression"],
                checksum=self.config["rdbchecksum"],
            )
        except OSError as exc:
            log.error("save_failed", file=self.rdb_path, reason=exc.strerror or str(exc))
            return False
        except Exception as exc:
            log.error("save_failed", file=self.rdb_path, reason=str(exc))
            return False
        self.server.keyspace.dirty = 0
        self.lastsave_s = int(time.time())
        self.misconf.lastbgsave_ok = True
        self.rdb_saves += 1
        log.info(
            "save_finished",
            file=self.rdb_path,
            size_bytes=size,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            message="DB saved on disk",
        )
        return True

    def bgsave(self) -> int:
        """Fork a BGSAVE child; returns its pid. Raises ChildBusy (a RuntimeError) if a child runs, OSError if
        fork fails."""
        active = fork.active()
        if active is not None:
            raise fork.ChildBusy(active)
        self.lastbgsave_try_s = time.time()
        final = self.rdb_path
        dbs = self.server.keyspace.dbs
        aux = self.aux(False)
        compress, checksum = self.config["rdbcompression"], self.config["rdbchecksum"]
        dirty_at_fork = self.server.keyspace.dirty  # what a successful BGSAVE has saved

        def work(_path: str) -> None:
            rdb_writer.save_file(final, dbs, aux, compress=compress, checksum=checksum)

        def on_exit(child: ForkedChild, result: ChildExit) -> None:
            self._bgsave_done(child, result, dirty_at_fork)

        try:
            child = self._fork(ChildKind.RDB, work, on_exit)
        except OSError as exc:
            self.misconf.lastbgsave_ok = False
            log.error("bgsave_fork_failed", reason=exc.strerror)
            raise
        log.info(
            "bgsave_started",
            child_pid=child.pid,
            fork_usec=fork.NODE_CHILDREN.latest_fork_usec,
            message=f"Background saving started by pid {child.pid}",
        )
        return child.pid

    def snapshot_for_sync(self, done: Callable[[bool], None]) -> None:
        """SYNC over RESP, as Redis's disk-based sync: ``done(ok)`` once a BGSAVE has written dump.rdb.

        A BGSAVE in progress serves the request; another child in progress (an AOF rewrite) makes it wait for
        the BGSAVE that follows it (scheduled); otherwise one starts now. A BGSAVE that fails, or cannot fork,
        gives False.
        """
        child = fork.active()
        if child is None:
            try:
                self.bgsave()
            except (OSError, RuntimeError):
                done(False)
                return
        elif child.kind is not ChildKind.RDB:
            self.bgsave_scheduled = True
        self.snapshot_waiters.append(done)

    def _bgsave_done(self, child: ForkedChild, result: ChildExit, dirty_at_fork: int) -> None:
        waiters, self.snapshot_waiters = self.snapshot_waiters, []
        try:
            self._bgsave_finished(child, result, dirty_at_fork)
        finally:
            for done in waiters:
                done(result.ok)

    def _bgsave_finished(self, child: ForkedChild, result: ChildExit, dirty_at_fork: int) -> None:
        self.rdb_last_bgsave_time_s = int(result.duration_s)
        if result.ok:
            keyspace = self.server.keyspace
            keyspace.dirty = max(0, keyspace.dirty - dirty_at_fork)
            self.lastsave_s = int(time.time())
            self.misconf.lastbgsave_ok = True
            self.rdb_saves += 1
            self.rdb_last_cow_bytes = result.cow_bytes
            log.info(
                "bgsave_finished",
                child_pid=child.pid,
                duration_ms=round(result.duration_s * 1000, 1),
                cow_bytes=result.cow_bytes,
                message="Background saving terminated with success",
            )
            return
        remove_quietly(_temp_file(child.kind, child.pid))
        if result.signal:
            log.warning(
                "bgsave_terminated_by_signal",
                child_pid=child.pid,
                signal=result.signal,
                message=f"Background saving terminated by signal {result.signal}",
            )
            if not result.killed_by_parent:
                self.misconf.lastbgsave_ok = False
        else:
            log.warning(
                "bgsave_failed",
                child_pid=child.pid,
                exit_code=result.exit_code,
                message="Background saving error",
            )
            self.misconf.lastbgsave_ok = False

    # -- AOF rewrite -----------------------------------------------------------------------------------------

    def rewrite_background(self) -> int:
        """BGREWRITEAOF: switch appends to a new incr file, fork a child writing the new base. Returns its pid.

        Raises ChildBusy (a RuntimeError) if a child runs, OSError if the new incr file or the fork fails
        (counted).
        """
        active = fork.active()
        if active is not None:
            raise fork.ChildBusy(active)
        sink = self.sink
        aof = sink.aof
        try:
            aof.ensure_dir()
            if aof.state is AofState.ON:
                # This tick's writes are in the snapshot the child takes: they close the current incr file.
                pending = sink.pending_stream()
                if pending:
                    sink.write(pending)
                sink.retire_fd(aof.open_new_incr(temporary=False))
            elif aof.state is AofState.WAIT_REWRITE:
                sink.pending_stream()  # in the snapshot; the temp incr starts after them
                if aof.fd >= 0:
                    os.close(aof.close_temp())
                aof.open_new_incr(temporary=True)
        except OSError as exc:
            self.aof_lastbgrewrite_ok = False
            self.aof_rewrites_consecutive_failures += 1
            log.error("aof_rewrite_not_started", reason=exc.strerror or str(exc))
            raise
        # The next write must SELECT again: each AOF file is replayed from database 0.
        self.server.stream.forget_db()
        dbs = self.server.keyspace.dbs
        preamble = bool(self.config["aof-use-rdb-preamble"])
        aux = self.aux(True)

        timestamp = bool(self.config["aof-timestamp-enabled"])

        def work(path: str) -> None:
            write_base(path, dbs, preamble, aux, timestamp)

        try:
            child = self._fork(ChildKind.AOF, work, self._rewrite_done)
        except OSError as exc:
            self.aof_lastbgrewrite_ok = False
            self.aof_rewrites_consecutive_failures += 1
            log.error("aof_rewrite_fork_failed", reason=exc.strerror)
            raise
        self.aof_rewrite_scheduled = False
        self.aof_rewrites += 1
        log.info(
            "aof_rewrite_started",
            child_pid=child.pid,
            fork_usec=fork.NODE_CHILDREN.latest_fork_usec,
            message=f"Background append only file rewriting started by pid {child.pid}",
        )
        return child.pid

    def delete_history(self) -> None:
        """Redis's aofDelHistoryFiles: the manifest's history files (``type h``) are removed, in the persistence
        actor, and leave the manifest; nothing while aof-disable-auto-gc is yes."""
        sink = self.sink
        aof = sink.aof
        if self.config["aof-disable-auto-gc"] or not aof.manifest.history:
            return
        names = [info.name for info in aof.manifest.history]
        aof.manifest.history = []
        sink.persist_manifest()  # the manifest leaves them out at once, as Redis persists it before unlinking
        self._remove_history_files(names)

    def _remove_history_files(self, names: list[str]) -> None:
        """Remove files the manifest no longer lists: in the persistence actor (here if it cannot be told)."""
        sink = self.sink
        for name in names:
            log.info(
                "aof_history_file_removing",
                file=name,
                message=f"Removing the history file {name} in the background",
            )
        paths = tuple(sink.aof.path(name) for name in names)
        if paths and not sink.tell(Unlink(paths)):
            for path in paths:
                remove_quietly(path)

    def _rewrite_done(self, child: ForkedChild, result: ChildExit) -> None:
        sink = self.sink
        aof = sink.aof
        temp_path = _temp_file(child.kind, child.pid)
        self.aof_last_rewrite_time_s = int(result.duration_s)
        if result.ok:
            try:
                history = aof.install_base(
                    temp_path,
                    keep_incr_open=aof.fd >= 0,
                    rdb_preamble=bool(self.config["aof-use-rdb-preamble"]),
                    keep_history=bool(self.config["aof-disable-auto-gc"]),
                )
            except OSError as exc:
                log.error("aof_rewrite_install_failed", reason=exc.strerror or str(exc))
                self.aof_lastbgrewrite_ok = False
                self.aof_rewrites_consecutive_failures += 1
            else:
                self.aof_lastbgrewrite_ok = True
                self.aof_rewrites_consecutive_failures = 0
                self.aof_last_cow_bytes = result.cow_bytes
                self.server.stream.forget_db()
                if aof.fd >= 0:
                    self.server.aof_feeding = True
                self._remove_history_files(history)
                log.info(
                    "aof_rewrite_finished",
                    child_pid=child.pid,
                    base=aof.manifest.base.name if aof.manifest.base else None,
                    duration_ms=round(result.duration_s * 1000, 1),
                    cow_bytes=result.cow_bytes,
                    history_removed=len(history),
                    message="Background AOF rewrite finished successfully",
                )
                return
        elif result.signal:
            log.warning(
                "aof_rewrite_terminated_by_signal",
                child_pid=child.pid,
                signal=result.signal,
                message=f"Background AOF rewrite terminated by signal {result.signal}",
            )
            if not result.killed_by_parent:
                self.aof_lastbgrewrite_ok = False
                self.aof_rewrites_consecutive_failures += 1
        else:
            log.warning(
                "aof_rewrite_failed",
                child_pid=child.pid,
                exit_code=result.exit_code,
                message="Background AOF rewrite terminated with error",
            )
            self.aof_lastbgrewrite_ok = False
            self.aof_rewrites_consecutive_failures += 1
        remove_quietly(temp_path)
        if aof.state is AofState.WAIT_REWRITE:
            # Still waiting for a first base: drop the temp incr (the next snapshot covers it) and try again.
            if aof.fd >= 0:
                os.close(aof.close_temp())
                name = temp_incr_name(aof.filename)
                log.info(
                    "aof_temp_incr_removed",
                    file=name,
                    message=f"Removing the temp incr aof file {name} in the background",
                )
                remove_quietly(aof.path(name))
            if not self.shutting_down:
                self.aof_rewrite_scheduled = True

    # -- turning the AOF on and off --------------------------------------------------------------------------

    def start_append_only(self) -> None:
        """CONFIG SET appendonly yes: write a first base (rewrite), then append (startAppendOnly)."""
        aof = self.sink.aof
        if aof.state is not AofState.OFF:
            return
        # Until the rewrite forks there is no file to write to (fd -1): writes before the fork are dropped
        # by the sink, as they will be in the snapshot.
        aof.state = AofState.WAIT_REWRITE
        self.server.aof_feeding = True
        if fork.active() is not None:
            self.aof_rewrite_scheduled = True  # runs when the other child is done
            log.info("aof_enable_scheduled", reason="a child process is active")
            return
        try:
            self.rewrite_background()
        except (OSError, RuntimeError) as exc:
            aof.state = AofState.OFF
            self.server.aof_feeding = False
            log.error("aof_enable_failed", reason=str(exc))
            raise ConfigError("Unable to turn on AOF. Check server logs.") from None

    def stop_append_only(self) -> None:
        """CONFIG SET appendonly no: flush, fsync and close the incr file; kill a rewrite child."""
        aof = self.sink.aof
        if aof.state is AofState.OFF:
            return
        self.sink.close()
        child = fork.active()
        if child is not None and child.kind is ChildKind.AOF:
            self.kill_child()
        self.aof_rewrite_scheduled = False
        remove_quietly(aof.path(temp_incr_name(aof.filename)))
        log.info("aof_disabled")

    def dataset_replaced(self) -> None:
        """The whole dataset was swapped (a replica's full sync): the AOF must start over from a new base,
        as Redis's restartAOFAfterSYNC does. Call on the loop thread right after ``keyspace.replace_all``."""
        if self.sink.aof.state is AofState.OFF:
            return
        self.stop_append_only()
        try:
            self.start_append_only()
        except ConfigError as exc:
            log.error("aof_restart_after_sync_failed", reason=str(exc))
            self.aof_rewrite_scheduled = True
            self.sink.aof.state = AofState.WAIT_REWRITE
            self.server.aof_feeding = True

    def on_appendonly_changed(self, value: Any) -> None:
        if self.server.loading:
            raise ConfigError("Unable to change appendonly while loading the dataset")
        if value:
            self.start_append_only()
        else:
            self.stop_append_only()
