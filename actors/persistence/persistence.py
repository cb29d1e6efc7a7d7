"""Persistence: snapshots (SAVE, BGSAVE, save points), the append-only file, and loading at start-up.

Two halves, split by thread:

    Persistence        loop-side facade (``server.persistence``), runs on the master actor's loop thread. It
                       owns everything that must survive a restart of the actor: the open AOF (descriptor,
                       manifest, sizes), the forked child, and every counter INFO persistence reports. It
                       writes each tick's propagated bytes to the AOF (a stream sink of the master actor,
                       before any reply leaves), forks BGSAVE / BGREWRITEAOF children and reaps them in its
                       cron job, checks save points and the automatic rewrite, and loads the dataset.
    PersistenceActor   a pykka actor (its own thread) that does the disk waits the loop must not: the
                       once-a-second fsync of ``appendfsync everysec``, fsync-and-close of a retired incr
                       file, deleting history files. It holds no state: if it dies the supervisor restarts
                       it and, since the loop wrote every byte itself, no acknowledged write is lost.

``appendfsync`` and what a crash can lose (the loss window of each setting):

    always     one fdatasync per loop tick, in the stream sink, before the tick's replies leave (group
               commit): nothing a client was told succeeded is ever lost, even to a power failure.
    everysec   the loop write()s every tick (so a killed *process* loses nothing: the bytes are in the
               kernel), the actor fdatasyncs once a second: an OS crash or power failure loses up to ~1-2 s.
    no         never fsync: an OS crash loses whatever the kernel had not flushed yet (typically up to ~30 s).

Forked children (BGSAVE, BGREWRITEAOF) are made from the loop thread after ``gc.freeze()``; the child only
writes its file and leaves with ``os._exit`` (no logging, no ZeroMQ, no locks), sending its copy-on-write
size (Private_Dirty) back through a pipe. The parent tells apart success, an error exit and death by a signal
(SIGUSR1 is how the parent itself kills a child, which is not an error, as in Redis).

Replication info of a loaded RDB: ``server.loaded_repl_id`` / ``server.loaded_repl_offset`` (None when the
file had none). The RDB aux fields written by SAVE/BGSAVE come from ``Persistence.repl_info`` (a callable
returning ``(repl_id, repl_offset, repl_stream_db)``, all None by default), which replication may replace.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import pykka
import structlog

from actors.config import ConfigError
from actors.persistence.aof import aof as aofmod
from actors.persistence.aof.aof import (
    AofLoadError,
    AofReplay,
    AofState,
    AppendOnlyFile,
    ManifestError,
    ReplayState,
)
from actors.persistence.rdb import reader as rdb_reader
from actors.persistence.rdb import writer as rdb_writer
from actors.persistence.rdb.format import PROGRESS_EVERY_KEYS, RdbData, RdbError
from actors.persistence.rdb.helper import LoadHelper
from actors.server.server import without_spans
from actors.supervision.supervisor import SupervisedActor
from protocol import errors

if TYPE_CHECKING:
    from actors.loop.master import MasterActor
    from actors.server.server import Server

log = structlog.get_logger("redactor.persistence")

# Redis's CONFIG_BGSAVE_RETRY_DELAY: after a failed BGSAVE, save points wait this long before trying again.
BGSAVE_RETRY_DELAY_S = 5
# How often everysec fsyncs, and how long an fsync may stay in flight before a new one counts as delayed
# (Redis counts aof_delayed_fsync when a write waits on an fsync older than 2 s).
EVERYSEC_INTERVAL_S = 1.0
FSYNC_DELAYED_AFTER_S = 2.0
# AOF replay runs on the loop in slices this long, so clients keep getting -LOADING while it runs.
REPLAY_SLICE_S = 0.02
# Loading logs its progress at most this often.
LOADING_LOG_INTERVAL_S = 1.0
# A failed AOF write is retried from the cron; at most this often a warning is logged.
AOF_WRITE_ERROR_LOG_INTERVAL_S = 30
SHUTDOWN_SAVE_ERROR = "ERR Errors trying to SHUTDOWN. Check logs."
# A fork child closes every inherited descriptor below this (os.closerange uses close_range(2)).
FORK_CHILD_MAX_FD = 1 << 20
# Redis's aofRewriteLimited: after this many consecutive failed rewrites, automatic and scheduled ones
# wait AOF_REWRITE_BACKOFF_FIRST_S, doubling up to AOF_REWRITE_BACKOFF_MAX_S (BGREWRITEAOF is never held).
AOF_REWRITE_FAILURES_BEFORE_BACKOFF = 3
AOF_REWRITE_BACKOFF_FIRST_S = 60
AOF_REWRITE_BACKOFF_MAX_S = 3600


class LoadError(Exception):
    """The dataset on disk cannot be loaded: the node must not start (exit status 1). Files are untouched."""


class ChildKind(Enum):
    RDB = "rdb"  # BGSAVE: writes dbfilename
    AOF = "aof"  # BGREWRITEAOF: writes a new AOF base file


@dataclass
class ForkedChild:
    """A running fork child and what the parent needs to finish its work when it exits."""

    kind: ChildKind
    pid: int
    info_fd: int  # read end of the pipe the child reports its copy-on-write size on
    started_s: float  # time.time() at fork, for *_current_*_time_sec
    started_monotonic: float
    dirty_at_fork: int  # keyspace.dirty when forked: what a successful BGSAVE has saved
    temp_path: str  # where the child writes; removed if it fails


# -- the actor (its own thread) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fsync:
    """fdatasync ``fd`` (the open incr file); ``size`` bytes of it were written when asked."""

    fd: int
    size: int


@dataclass(frozen=True)
class FsyncAndClose:
    """A retired incr file: make it durable, then close it."""

    fd: int


@dataclass(frozen=True)
class Unlink:
    """Delete files that no longer belong to the dataset (AOF history files)."""

    paths: tuple[str, ...]


class PersistenceActor(SupervisedActor):
    """Disk waits off the loop thread. Stateless: every message carries what it needs; results go back to the
    facade with ``MasterActor.call_threadsafe``."""

    def __init__(self, facade: Persistence) -> None:
        super().__init__()
        self.facade = facade

    def on_start(self) -> None:
        # Runs in the actor's thread: from now on the facade sends its work here.
        self.facade.actor_ref = self.actor_ref

    def on_receive(self, message: Any) -> Any:
        facade = self.facade
        if isinstance(message, Fsync):
            started = time.perf_counter()
            error = ""
            try:
                os.fdatasync(message.fd)
            except OSError as exc:
                log.warning("aof_fsync_failed", reason=exc.strerror)
                error = exc.strerror or str(exc)
            facade.master.call_threadsafe(
                facade.on_fsync_done,
                message.fd,
                message.size,
                not error,
                time.perf_counter() - started,
                error,
            )
        elif isinstance(message, FsyncAndClose):
            try:
                os.fdatasync(message.fd)
            except OSError as exc:
                log.warning("aof_fsync_failed", reason=exc.strerror)
            try:
                os.close(message.fd)
            except OSError:
                pass
        elif isinstance(message, Unlink):
            for path in message.paths:
                try:
                    os.unlink(path)
                    log.info("aof_history_file_removed", file=os.path.basename(path))
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("aof_history_file_not_removed", file=path, reason=exc.strerror)
            facade.master.call_threadsafe(facade.on_history_removed)
        return None


# -- fork children ---------------------------------------------------------------------------------------------


def private_dirty_bytes() -> int:
    """This process's private dirty memory: in a fork child, the pages copy-on-write duplicated so far."""
    try:
        with open("/proc/self/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Private_Dirty:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _child_main(work: Callable[[], None], info_fd: int, delay_s: float) -> int:
    """The whole life of a fork child: write the file, report copy-on-write, return the exit status.

    No logging, locks or sockets here: other threads of the parent may have held them at fork time.
    """
    gc.disable()  # frozen objects are skipped anyway; no collection should touch (and copy) any page
    # Inherited descriptors (the RESP and bus listening sockets, client sockets, the AOF) must not outlive
    # the parent in us: a node killed while we write would otherwise stay bound to its ports.
    os.closerange(3, info_fd)
    os.closerange(info_fd + 1, FORK_CHILD_MAX_FD)
    try:
        signal.set_wakeup_fd(-1)  # the parent's loop owns that socket: our signals are not its signals
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
    except (ValueError, OSError):
        pass
    if delay_s > 0:
        time.sleep(delay_s)
    work()
    os.write(info_fd, b"%d" % private_dirty_bytes())
    return 0


# -- the facade (loop thread) ----------------------------------------------------------------------------------


class Persistence:
    """Everything persistence does on the loop thread; ``server.persistence`` points here."""

    def __init__(self, server: Server, master: MasterActor) -> None:
        self.server = server
        self.master = master
        self.config = server.config
        # What MISCONF depends on (see _update_disk_error): set before the properties below are first assigned.
        self._lastbgsave_ok = True
        self._aof_last_write_ok = True
        self._aof_fsync_ok = True
        self.aof_last_write_error = ""  # strerror of the failed AOF write or fsync
        # The actor currently doing fsyncs (set by the actor itself on start, so restarts update it).
        self.actor_ref: Any = None
        # (repl_id, repl_offset, repl_stream_db) for the RDB aux fields; replication may replace this.
        self.repl_info: Callable[[], tuple[str | None, int | None, int | None]] = lambda: (None, None, None)
        self.aof = AppendOnlyFile(self.config["appenddirname"], self.config["appendfilename"])
        self.child: ForkedChild | None = None
        self.shutting_down = False
        # Test knobs (DEBUG SET-SAVE-DELAY / SET-LOAD-DELAY): a fork child sleeps this long before writing;
        # a load waits this long before reading (so tests can observe BGSAVE in progress and -LOADING).
        self.child_delay_s = 0.0
        self.load_delay_s = 0.0
        # A helper process started by the launcher on the RDB file before the node's imports (rdbhelper.py):
        # the start-up load takes it; if that load does not happen, load_on_start closes it.
        self.prefetched_load_helper: LoadHelper | None = None
        # RDB state, as Redis's server.lastsave, lastbgsave_status, ...
        self.lastsave_s = int(time.time())
        self.lastbgsave_ok = True
        self.lastbgsave_try_s = 0.0
        self.rdb_last_bgsave_time_s = -1
        self.rdb_saves = 0
        self.rdb_last_cow_bytes = 0
        self.bgsave_scheduled = False
        # SYNC over RESP (redis-cli --rdb): called with True/False when the BGSAVE serving them ends.
        self.snapshot_waiters: list[Callable[[bool], None]] = []
        self.rdb_last_load_keys_loaded = 0
        self.rdb_last_load_keys_expired = 0
        # AOF state
        self.aof_rewrite_scheduled = False
        self.aof_last_rewrite_time_s = -1
        self.aof_lastbgrewrite_ok = True
        self.aof_rewrites = 0
        self.aof_rewrites_consecutive_failures = 0
        # Backoff of automatic/scheduled rewrites after repeated failures (0: none pending).
        self._rewrite_backoff_s = 0
        self._next_rewrite_allowed_s = 0.0
        self.aof_last_write_ok = True
        self.aof_last_cow_bytes = 0
        self.aof_delayed_fsync = 0
        # Bytes the stream sink has not managed to write yet (a failed write is retried from the cron).
        self.aof_buf = b""
        self._last_write_error_log_s = 0.0
        # Leading bytes of the next stream-sink call already handled (written to the previous incr file
        # before a switch, or part of a snapshot): the sink drops them.
        self._skip_bytes = 0
        # everysec bookkeeping: when the last fsync was asked for, and whether one is in flight.
        self._last_fsync_request_s = time.monotonic()
        self._fsync_inflight_since: float | None = None
        # Fork statistics (INFO stats reads these).
        self.latest_fork_usec = 0
        self.total_forks = 0
        # Loading (INFO persistence loading_* fields).
        self.loading_start_s = 0
        self.loading_total_bytes = 0
        self.loading_loaded_bytes = 0
        self._loading_started_monotonic = 0.0
        self._loading_logged_monotonic = 0.0
        server.persistence = self
        master.stream_sinks.append(self.feed_aof)
        master.cron_jobs.append(self.cron)
        server.info_sections["persistence"] = self.info
        self.config.on_change("appendonly", self._on_appendonly_changed)
        for name in ("save", "stop-writes-on-bgsave-error", "appendonly"):
            self.config.on_change(name, lambda _value: self._update_disk_error())

    # -- MISCONF: writes refused while persistence fails (Redis's writeCommandsDeniedByDiskError) ----------

    @property
    def lastbgsave_ok(self) -> bool:
        return self._lastbgsave_ok

    @lastbgsave_ok.setter
    def lastbgsave_ok(self, ok: bool) -> None:
        self._lastbgsave_ok = ok
        self._update_disk_error()

    @property
    def aof_last_write_ok(self) -> bool:
        return self._aof_last_write_ok

    @aof_last_write_ok.setter
    def aof_last_write_ok(self, ok: bool) -> None:
        self._aof_last_write_ok = ok
        self._update_disk_error()

    @property
    def aof_fsync_ok(self) -> bool:
        return self._aof_fsync_ok

    @aof_fsync_ok.setter
    def aof_fsync_ok(self, ok: bool) -> None:
        self._aof_fsync_ok = ok
        self._update_disk_error()

    def _update_disk_error(self) -> None:
        """Refuse writes (MISCONF) while the last BGSAVE failed, if save points are set and
        stop-writes-on-bgsave-error is yes, or while AOF writes or fsyncs fail; accept them again once a
        save, write or fsync succeeds (or the settings change)."""
        config = self.config
        error: str | None = None
        if config["stop-writes-on-bgsave-error"] and config["save"] and not self._lastbgsave_ok:
            error = errors.MISCONF_RDB
        elif config["appendonly"] and not (self._aof_last_write_ok and self._aof_fsync_ok):
            error = errors.MISCONF_AOF.format(self.aof_last_write_error)
        if self.server.disk_error != error:
            if error is not None:
                log.warning("writes_refused", reason=error.split(". ")[0])
            elif self.server.disk_error is not None:
                log.info("writes_accepted_again")
            self.server.disk_error = error

    # -- helpers -----------------------------------------------------------------------------------------

    @property
    def rdb_path(self) -> str:
        return str(self.config["dbfilename"])

    def _aux(self, aof_base: bool = False) -> dict[str, bytes | int | str]:
        repl_id, repl_offset, stream_db = self.repl_info()
        aux = rdb_writer.default_aux(repl_id, repl_offset, stream_db)
        aux["aof-base"] = 1 if aof_base else 0
        return aux

    def _tell(self, message: Any) -> bool:
        """Hand work to the actor; False if it is not running (the caller does the work itself)."""
        ref = self.actor_ref
        if ref is None:
            return False
        try:
            ref.tell(message)
            return True
        except pykka.ActorDeadError:
            return False

    def _retire_fd(self, fd: int) -> None:
        """An incr file no longer written to: fsync and close it off the loop (inline if the actor is down)."""
        if fd < 0:
            return
        if not self._tell(FsyncAndClose(fd)):
            try:
                os.fdatasync(fd)
            except OSError:
                pass
            os.close(fd)

    def _pending_stream(self) -> bytes:
        """This tick's propagated bytes that the AOF has not handled yet; from now on they count as handled.

        The bytes stay queued in ``server.prop_chunks`` for the other sinks (replication); the AOF sink drops
        the handled prefix when the tick ends. Used where the AOF must act at an exact point of the stream:
        before switching incr files, before a snapshot, before closing.
        """
        server = self.server
        chunks = server.prop_chunks
        if not chunks:
            return b""
        data = b"".join(chunks)
        skip = self._skip_bytes
        self._skip_bytes = len(data)
        if server.repl_only_spans:
            return without_spans(data[skip:], skip, server.repl_only_spans)
        return data[skip:]

    # -- the AOF stream sink (loop thread, end of tick, before replies leave) --------------------------------

    def feed_aof(self, data: bytes) -> None:
        skip = 0
        if self._skip_bytes:
            skip = min(self._skip_bytes, len(data))
            self._skip_bytes -= skip
            data = data[skip:]
        spans = self.server.taken_repl_only_spans
        if spans:
            data = without_spans(data, skip, spans)  # PUBLISH & co: for the replicas only
        aof = self.aof
        if aof.fd < 0 or not data:
            return
        self._write_aof(data)

    def _write_aof(self, data: bytes) -> None:
        aof = self.aof
        if self.aof_buf:
            data = self.aof_buf + data
            self.aof_buf = b""
        always = self.config["appendfsync"] == "always"
        try:
            aof.write(data)
        except OSError as exc:
            self._aof_write_failed(data, exc, always)
            return
        if not self.aof_last_write_ok:
            log.warning("aof_write_recovered")
            self.aof_last_write_ok = True
        if always and not (self.config["no-appendfsync-on-rewrite"] and self.child is not None):
            try:
                os.fdatasync(aof.fd)
            except OSError as exc:
                # As Redis: the replies are about to leave and cannot be taken back, so the only safe move
                # left with appendfsync always is to stop.
                log.error("aof_fsync_failed_exiting", reason=exc.strerror, appendfsync="always")
                os._exit(1)
            aof.fsynced_size = aof.incr_size

    def _aof_write_failed(self, data: bytes, exc: OSError, always: bool) -> None:
        aof = self.aof
        try:
            os.ftruncate(aof.fd, aof.incr_size)  # drop a partial write so the file stays loadable
        except OSError:
            pass
        if always:
            log.error("aof_write_failed_exiting", reason=exc.strerror, appendfsync="always")
            os._exit(1)
        now = time.monotonic()
        if now - self._last_write_error_log_s > AOF_WRITE_ERROR_LOG_INTERVAL_S:
            log.warning("aof_write_failed", reason=exc.strerror, pending_bytes=len(data))
            self._last_write_error_log_s = now
        self.aof_last_write_error = exc.strerror or str(exc)
        self.aof_last_write_ok = False
        self.aof_buf = data

    def on_fsync_done(self, fd: int, size: int, ok: bool, duration_s: float, error: str = "") -> None:
        """Loop thread: the actor finished an everysec fsync."""
        self._fsync_inflight_since = None
        if fd != self.aof.fd:
            return  # a file since switched away from: its fate says nothing about the current one
        if ok:
            self.aof.fsynced_size = max(self.aof.fsynced_size, size)
            if not self.aof_fsync_ok:
                self.aof_fsync_ok = True
        else:
            self.aof_last_write_error = error or "fsync failed"
            self.aof_fsync_ok = False

    def on_history_removed(self) -> None:
        """Loop thread: history files are gone; rewrite the manifest without their lines (aofDelHistoryFiles)."""
        aof = self.aof
        if aof.manifest.history or not os.path.isdir(aof.dirname):
            return
        try:
            aofmod.write_manifest(aof.dirname, aof.filename, aof.manifest)
        except OSError as exc:
            log.warning("aof_manifest_not_rewritten", reason=exc.strerror)

    def _everysec(self) -> None:
        aof = self.aof
        if aof.fd < 0 or self.config["appendfsync"] != "everysec":
            return
        now = time.monotonic()
        if self._fsync_inflight_since is not None:
            ref = self.actor_ref
            if ref is None or not ref.is_alive():
                self._fsync_inflight_since = None  # the actor died with it: ask again
            elif now - self._fsync_inflight_since > FSYNC_DELAYED_AFTER_S:
                self.aof_delayed_fsync += 1
                self._fsync_inflight_since = now  # count each further 2 s once
                return
            else:
                return
        if aof.incr_size <= aof.fsynced_size or now - self._last_fsync_request_s < EVERYSEC_INTERVAL_S:
            return
        if self.config["no-appendfsync-on-rewrite"] and self.child is not None:
            return
        self._last_fsync_request_s = now
        if self._tell(Fsync(aof.fd, aof.incr_size)):
            self._fsync_inflight_since = now
        else:
            try:
                os.fdatasync(aof.fd)
                aof.fsynced_size = aof.incr_size
            except OSError as exc:
                log.warning("aof_fsync_failed", reason=exc.strerror)

    # -- cron (loop thread, hz times a second) ---------------------------------------------------------------

    def cron(self) -> None:
        if self.child is not None:
            self._reap_child()
        if self.aof_buf and self.aof.fd >= 0:
            self._write_aof(b"")
        self._everysec()
        if self.server.loading or self.shutting_down or self.child is not None:
            return
        if self.aof_rewrite_scheduled and not self._rewrite_limited():
            self._try(self.rewrite_background)
        elif self.bgsave_scheduled:
            self.bgsave_scheduled = False
            self._try(self.bgsave)
        elif self._save_point_due():
            self._try(self.bgsave)
        elif self._auto_rewrite_due() and not self._rewrite_limited():
            log.info(
                "aof_auto_rewrite_started", current_size=self.aof.current_size, base_size=self.aof.base_size
            )
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
        )
        return True

    def _save_point_due(self) -> bool:
        points = self.config["save"]
        if not points:
            return False
        now = time.time()
        dirty = self.server.keyspace.dirty
        retry_ok = self.lastbgsave_ok or now - self.lastbgsave_try_s > BGSAVE_RETRY_DELAY_S
        for seconds, changes in points:
            if dirty >= changes and now - self.lastsave_s > seconds and retry_ok:
                log.info("save_point_reached", seconds=seconds, changes=changes, dirty=dirty)
                return True
        return False

    def _auto_rewrite_due(self) -> bool:
        aof = self.aof
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

    # -- fork ------------------------------------------------------------------------------------------------

    def _fork(
        self, kind: ChildKind, temp_path: Callable[[int], str], work: Callable[[str], None]
    ) -> ForkedChild:
        """Fork a child that runs ``work(temp_path(own pid))``. Raises OSError if fork fails."""
        read_fd, write_fd = os.pipe()
        gc.freeze()
        started = time.perf_counter()
        try:
            pid = os.fork()
        except OSError:
            gc.unfreeze()
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:  # the child
            status = 1
            try:
                os.close(read_fd)
                path = temp_path(os.getpid())
                status = _child_main(lambda: work(path), write_fd, self.child_delay_s)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        self.latest_fork_usec = int((time.perf_counter() - started) * 1e6)
        self.total_forks += 1
        gc.unfreeze()
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        child = ForkedChild(
            kind, pid, read_fd, time.time(), time.monotonic(), self.server.keyspace.dirty, temp_path(pid)
        )
        self.child = child
        return child

    def _read_child_info(self, child: ForkedChild) -> int:
        chunks = []
        try:
            while True:
                chunk = os.read(child.info_fd, 64)
                if not chunk:
                    break
                chunks.append(chunk)
        except BlockingIOError:
            pass
        except OSError:
            pass
        os.close(child.info_fd)
        try:
            return int(b"".join(chunks) or b"0")
        except ValueError:
            return 0

    def _reap_child(self, block: bool = False) -> None:
        child = self.child
        if child is None:
            return
        try:
            pid, status = os.waitpid(child.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status = child.pid, -1
        if pid == 0:
            return
        self.child = None
        cow_bytes = self._read_child_info(child)
        if status == -1:
            exit_code, by_signal = 1, 0
        elif os.WIFSIGNALED(status):
            exit_code, by_signal = 0, os.WTERMSIG(status)
        else:
            exit_code, by_signal = os.WEXITSTATUS(status), 0
        duration_s = time.monotonic() - child.started_monotonic
        if child.kind is ChildKind.RDB:
            self._bgsave_done(child, exit_code, by_signal, cow_bytes, duration_s)
        else:
            self._rewrite_done(child, exit_code, by_signal, cow_bytes, duration_s)

    def _remove_temp(self, path: str) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass

    def kill_child(self) -> None:
        """Stop a running child (SHUTDOWN, appendonly no) and wait for it: SIGUSR1, as Redis does."""
        child = self.child
        if child is None:
            return
        log.info("child_killed", kind=child.kind.value, child_pid=child.pid)
        try:
            os.kill(child.pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
        self._reap_child(block=True)

    # -- RDB -------------------------------------------------------------------------------------------------

    def save(self) -> bool:
        """SAVE: write the live keyspace in the foreground (the node blocks, like Redis). True on success."""
        started = time.perf_counter()
        try:
            size = rdb_writer.save_file(
                self.rdb_path,
                self.server.keyspace.dbs,
                self._aux(),
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
        self.lastbgsave_ok = True
        self.rdb_saves += 1
        log.info(
            "save_finished",
            file=self.rdb_path,
            size_bytes=size,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return True

    def bgsave(self) -> int:
        """Fork a BGSAVE child; returns its pid. Raises RuntimeError if a child runs, OSError if fork fails."""
        if self.child is not None:
            raise RuntimeError("a child process is already active")
        self.lastbgsave_try_s = time.time()
        final = self.rdb_path
        dbs = self.server.keyspace.dbs
        aux = self._aux()
        compress, checksum = self.config["rdbcompression"], self.config["rdbchecksum"]

        def work(_path: str) -> None:
            rdb_writer.save_file(final, dbs, aux, compress=compress, checksum=checksum)

        try:
            child = self._fork(ChildKind.RDB, lambda pid: f"temp-{pid}.rdb", work)
        except OSError as exc:
            self.lastbgsave_ok = False
            log.error("bgsave_fork_failed", reason=exc.strerror)
            raise
        log.info("bgsave_started", child_pid=child.pid, fork_usec=self.latest_fork_usec)
        return child.pid

    def snapshot_for_sync(self, done: Callable[[bool], None]) -> None:
        """SYNC over RESP, as Redis's disk-based sync: ``done(ok)`` once a BGSAVE has written dump.rdb.

        A BGSAVE in progress serves the request; an AOF rewrite in progress makes it wait for the BGSAVE that
        follows it (scheduled); otherwise one starts now. A BGSAVE that fails, or cannot fork, gives False.
        """
        child = self.child
        if child is None:
            try:
                self.bgsave()
            except (OSError, RuntimeError):
                done(False)
                return
        elif child.kind is not ChildKind.RDB:
            self.bgsave_scheduled = True
        self.snapshot_waiters.append(done)

    def _bgsave_done(
        self, child: ForkedChild, exit_code: int, by_signal: int, cow_bytes: int, duration_s: float
    ) -> None:
        waiters, self.snapshot_waiters = self.snapshot_waiters, []
        try:
            self._bgsave_finished(child, exit_code, by_signal, cow_bytes, duration_s)
        finally:
            ok = not by_signal and exit_code == 0
            for done in waiters:
                done(ok)

    def _bgsave_finished(
        self, child: ForkedChild, exit_code: int, by_signal: int, cow_bytes: int, duration_s: float
    ) -> None:
        self.rdb_last_bgsave_time_s = int(duration_s)
        if not by_signal and exit_code == 0:
            keyspace = self.server.keyspace
            keyspace.dirty = max(0, keyspace.dirty - child.dirty_at_fork)
            self.lastsave_s = int(time.time())
            self.lastbgsave_ok = True
            self.rdb_saves += 1
            self.rdb_last_cow_bytes = cow_bytes
            log.info(
                "bgsave_finished",
                child_pid=child.pid,
                duration_ms=round(duration_s * 1000, 1),
                cow_bytes=cow_bytes,
            )
            return
        self._remove_temp(child.temp_path)
        if by_signal:
            log.warning("bgsave_terminated_by_signal", child_pid=child.pid, signal=by_signal)
            if by_signal != signal.SIGUSR1:
                self.lastbgsave_ok = False
        else:
            log.warning("bgsave_failed", child_pid=child.pid, exit_code=exit_code)
            self.lastbgsave_ok = False

    # -- AOF -------------------------------------------------------------------------------------------------

    def rewrite_background(self) -> int:
        """BGREWRITEAOF: switch appends to a new incr file, fork a child writing the new base. Returns its pid.

        Raises RuntimeError if a child runs, OSError if the new incr file or the fork fails (counted).
        """
        if self.child is not None:
            raise RuntimeError("a child process is already active")
        aof = self.aof
        try:
            aof.ensure_dir()
            if aof.state is AofState.ON:
                # This tick's writes are in the snapshot the child takes: they close the current incr file.
                pending = self._pending_stream()
                if pending:
                    self._write_aof(pending)
                self._retire_fd(aof.open_new_incr(temporary=False))
            elif aof.state is AofState.WAIT_REWRITE:
                self._pending_stream()  # in the snapshot; the temp incr starts after them
                if aof.fd >= 0:
                    os.close(aof.close_temp())
                aof.open_new_incr(temporary=True)
        except OSError as exc:
            self.aof_lastbgrewrite_ok = False
            self.aof_rewrites_consecutive_failures += 1
            log.error("aof_rewrite_not_started", reason=exc.strerror or str(exc))
            raise
        # The next write must SELECT again: each AOF file is replayed from database 0.
        self.server.prop_db = -1
        dbs = self.server.keyspace.dbs
        preamble = bool(self.config["aof-use-rdb-preamble"])
        aux = self._aux(aof_base=True)

        def work(path: str) -> None:
            aofmod.write_base(path, dbs, preamble, aux)

        try:
            child = self._fork(ChildKind.AOF, lambda pid: f"temp-rewriteaof-bg-{pid}.aof", work)
        except OSError as exc:
            self.aof_lastbgrewrite_ok = False
            self.aof_rewrites_consecutive_failures += 1
            log.error("aof_rewrite_fork_failed", reason=exc.strerror)
            raise
        self.aof_rewrite_scheduled = False
        self.aof_rewrites += 1
        log.info("aof_rewrite_started", child_pid=child.pid, fork_usec=self.latest_fork_usec)
        return child.pid

    def _rewrite_done(
        self, child: ForkedChild, exit_code: int, by_signal: int, cow_bytes: int, duration_s: float
    ) -> None:
        aof = self.aof
        self.aof_last_rewrite_time_s = int(duration_s)
        if not by_signal and exit_code == 0:
            try:
                history = aof.install_base(
                    child.temp_path,
                    keep_incr_open=aof.fd >= 0,
                    rdb_preamble=bool(self.config["aof-use-rdb-preamble"]),
                )
            except OSError as exc:
                log.error("aof_rewrite_install_failed", reason=exc.strerror or str(exc))
                self.aof_lastbgrewrite_ok = False
                self.aof_rewrites_consecutive_failures += 1
            else:
                self.aof_lastbgrewrite_ok = True
                self.aof_rewrites_consecutive_failures = 0
                self.aof_last_cow_bytes = cow_bytes
                self.server.prop_db = -1
                if aof.fd >= 0:
                    self.server.aof_feeding = True
                paths = tuple(aof.path(name) for name in history)
                if paths and not self._tell(Unlink(paths)):
                    for path in paths:
                        self._remove_temp(path)
                    self.on_history_removed()
                log.info(
                    "aof_rewrite_finished",
                    child_pid=child.pid,
                    base=aof.manifest.base.name if aof.manifest.base else None,
                    duration_ms=round(duration_s * 1000, 1),
                    cow_bytes=cow_bytes,
                    history_removed=len(paths),
                )
                return
        elif by_signal:
            log.warning("aof_rewrite_terminated_by_signal", child_pid=child.pid, signal=by_signal)
            if by_signal != signal.SIGUSR1:
                self.aof_lastbgrewrite_ok = False
                self.aof_rewrites_consecutive_failures += 1
        else:
            log.warning("aof_rewrite_failed", child_pid=child.pid, exit_code=exit_code)
            self.aof_lastbgrewrite_ok = False
            self.aof_rewrites_consecutive_failures += 1
        self._remove_temp(child.temp_path)
        if aof.state is AofState.WAIT_REWRITE:
            # Still waiting for a first base: drop the temp incr (the next snapshot covers it) and try again.
            if aof.fd >= 0:
                os.close(aof.close_temp())
                self._remove_temp(aof.path(aofmod.temp_incr_name(aof.filename)))
            if not self.shutting_down:
                self.aof_rewrite_scheduled = True

    def start_append_only(self) -> None:
        """CONFIG SET appendonly yes: write a first base (rewrite), then append (startAppendOnly)."""
        aof = self.aof
        if aof.state is not AofState.OFF:
            return
        # Until the rewrite forks there is no file to write to (fd -1): writes before the fork are dropped
        # by the sink, as they will be in the snapshot.
        aof.state = AofState.WAIT_REWRITE
        self.server.aof_feeding = True
        if self.child is not None:
            self.aof_rewrite_scheduled = True  # runs when the BGSAVE child is done
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
        aof = self.aof
        if aof.state is AofState.OFF:
            return
        self._close_aof()
        if self.child is not None and self.child.kind is ChildKind.AOF:
            self.kill_child()
        self.aof_rewrite_scheduled = False
        self._remove_temp(aof.path(aofmod.temp_incr_name(aof.filename)))
        log.info("aof_disabled")

    def _close_aof(self) -> None:
        """Write this tick's pending writes, fsync and close the incr file (loop thread, synchronously)."""
        aof = self.aof
        if aof.fd >= 0:
            pending = self._pending_stream()
            if pending or self.aof_buf:
                self._write_aof(pending)
            fd = aof.close()
            try:
                os.fdatasync(fd)
            except OSError as exc:
                log.warning("aof_fsync_failed", reason=exc.strerror)
            os.close(fd)
        aof.state = AofState.OFF
        self.server.aof_feeding = False

    def dataset_replaced(self) -> None:
        """The whole dataset was swapped (a replica's full sync): the AOF must start over from a new base,
        as Redis's restartAOFAfterSYNC does. Call on the loop thread right after ``keyspace.replace_all``."""
        if self.aof.state is AofState.OFF:
            return
        self.stop_append_only()
        try:
            self.start_append_only()
        except ConfigError as exc:
            log.error("aof_restart_after_sync_failed", reason=str(exc))
            self.aof_rewrite_scheduled = True
            self.aof.state = AofState.WAIT_REWRITE
            self.server.aof_feeding = True

    def _on_appendonly_changed(self, value: Any) -> None:
        if self.server.loading:
            raise ConfigError("Unable to change appendonly while loading the dataset")
        if value:
            self.start_append_only()
        else:
            self.stop_append_only()

    # -- shutdown --------------------------------------------------------------------------------------------

    def prepare_shutdown(self, save: bool | None) -> str | None:
        """SHUTDOWN / SIGTERM: kill a child, fsync the AOF, save if asked (``None``: iff save points exist).

        Returns an error message (the node keeps running, AOF still open) or None (ready to exit).
        """
        if self.child is not None:
            self.kill_child()
        aof = self.aof
        if aof.fd >= 0:
            pending = self._pending_stream()
            if pending or self.aof_buf:
                self._write_aof(pending)
            try:
                os.fdatasync(aof.fd)
            except OSError as exc:
                log.warning("aof_fsync_failed", reason=exc.strerror)
        if aof.state is AofState.WAIT_REWRITE:
            log.warning("aof_shutdown_before_first_rewrite", detail="the AOF being enabled is discarded")
        if save is None:
            save = bool(self.config["save"])
        if self.server.loading:
            save = False  # as Redis: a half-loaded dataset must never replace the file it came from
        if save and not self.save():
            log.error("shutdown_save_failed")
            return SHUTDOWN_SAVE_ERROR
        self.shutting_down = True
        waiting = aof.state is AofState.WAIT_REWRITE
        self._close_aof()
        if waiting:
            self._remove_temp(aof.path(aofmod.temp_incr_name(aof.filename)))
        log.info("persistence_shut_down", saved=bool(save))
        return None

    # -- loading ---------------------------------------------------------------------------------------------

    def _begin_loading(self, source: str, total_bytes: int, files: list[str]) -> None:
        self.server.loading = True
        self.loading_start_s = int(time.time())
        self.loading_total_bytes = total_bytes
        self.loading_loaded_bytes = 0
        self._loading_started_monotonic = self._loading_logged_monotonic = time.monotonic()
        log.info("loading_started", source=source, files=files, bytes=total_bytes)

    def _loading_progress(self, loaded_bytes: int, keys: int) -> None:
        """Any thread: record (and now and then log) how far loading got."""
        self.loading_loaded_bytes = loaded_bytes
        now = time.monotonic()
        if now - self._loading_logged_monotonic >= LOADING_LOG_INTERVAL_S:
            self._loading_logged_monotonic = now
            log.info(
                "loading_progress",
                bytes=loaded_bytes,
                total_bytes=self.loading_total_bytes,
                keys=keys,
                percent=round(self._loading_percent(), 1),
            )

    def _loading_percent(self) -> float:
        return (
            100.0 * self.loading_loaded_bytes / self.loading_total_bytes if self.loading_total_bytes else 0.0
        )

    def _end_loading(self, source: str) -> None:
        self.server.loading = False
        log.info(
            "loading_finished",
            source=source,
            keys=self.server.keyspace.total_keys(),
            bytes=self.loading_loaded_bytes,
            duration_ms=round((time.monotonic() - self._loading_started_monotonic) * 1000, 1),
        )

    async def _read_rdb(self, path: str, base_bytes: int, for_aof: bool) -> RdbData:
        """Parse an RDB file in a worker thread (the loop keeps answering -LOADING meanwhile)."""
        server = self.server
        drop_before: int | None = None
        if not for_aof and not server.is_replica and not self.config["replicaof"]:
            drop_before = server.keyspace.clock()  # a master drops keys that expired while it was down

        calls = [0]

        def progress(position: int) -> None:
            # Worker thread. rdb_reader.load reports every PROGRESS_EVERY_KEYS keys (and once at the end).
            calls[0] += 1
            self._loading_progress(base_bytes + position, calls[0] * PROGRESS_EVERY_KEYS)

        helper = self._load_helper(path, drop_before)

        def load() -> RdbData:
            # The worker thread reads the helper's pipe, so it closes it too: a cancelled await (a shutdown
            # during the load) must not close the pipe under a read still going on.
            try:
                return rdb_reader.load_file(path, len(server.keyspace.dbs), progress, drop_before, helper)
            finally:
                if helper is not None:
                    helper.close()
                    log.info("load_helper_finished", runs=helper.runs_applied, keys=helper.keys_applied)

        return await asyncio.to_thread(load)

    def _load_helper(self, path: str, drop_before_ms: int | None) -> LoadHelper | None:
        """The helper process for loading ``path`` on a second core: the one the launcher started before the
        node's imports (if it is for this file and the same expiry rule), else a new one (None: not worth it)."""
        helper, self.prefetched_load_helper = self.prefetched_load_helper, None
        if helper is not None:
            helper.taken = True  # this load owns it now, whatever becomes of it: the launcher leaves it be
            same_rule = (helper.drop_before_ms is None) == (drop_before_ms is None)
            if helper.path == os.path.abspath(path) and same_rule:
                return helper
            helper.close()
        return LoadHelper.spawn(path, drop_before_ms)

    async def _load_rdb_file(self, path: str) -> None:
        size = os.path.getsize(path)
        self._begin_loading("rdb", size, [path])
        try:
            if self.load_delay_s:
                await asyncio.sleep(self.load_delay_s)
            try:
                data = await self._read_rdb(path, 0, for_aof=False)
            except RdbError as exc:
                raise LoadError(
                    f"Can't load the RDB file {path}: {exc}. The file was left unchanged."
                ) from None
            except OSError as exc:
                raise LoadError(
                    f"Fatal error: can't open the RDB file {path} for reading: {exc.strerror}"
                ) from None
            self.server.keyspace.replace_all(data.dbs)
            self.rdb_last_load_keys_loaded = self.server.keyspace.total_keys()
            self.rdb_last_load_keys_expired = data.expired_skipped
            repl_id = data.aux.get("repl-id")
            repl_offset = data.aux.get("repl-offset")
            self.server.loaded_repl_id = repl_id.decode() if repl_id else None
            offset_ok = repl_offset is not None and repl_offset.lstrip(b"-").isdigit()
            self.server.loaded_repl_offset = (
                int(repl_offset) if repl_offset is not None and offset_ok else None
            )
            self.loading_loaded_bytes = size
        finally:
            self._end_loading("rdb")

    async def _load_aof_files(self) -> None:
        aof = self.aof
        files = aof.manifest.loadable()
        sizes = []
        for info in files:
            path = aof.path(info.name)
            if not os.path.exists(path):
                raise LoadError(
                    f"The AOF file {info.name} listed in the manifest does not exist in {aof.dirname}"
                )
            sizes.append(os.path.getsize(path))
        total = sum(sizes)
        if not total:
            return
        self._begin_loading("aof", total, [info.name for info in files])
        server = self.server
        done_bytes = 0
        try:
            if self.load_delay_s:
                await asyncio.sleep(self.load_delay_s)
            for index, info in enumerate(files):
                path = aof.path(info.name)
                last_file = index == len(files) - 1
                start = 0
                with open(path, "rb") as fh:
                    is_rdb = fh.read(5) == b"REDIS"
                if is_rdb:
                    if index != 0:
                        raise LoadError(f"The AOF file {info.name} is an RDB but is not the base file")
                    try:
                        data = await self._read_rdb(path, done_bytes, for_aof=True)
                    except RdbError as exc:
                        raise LoadError(
                            f"Error reading the RDB base file {info.name}, AOF loading aborted: {exc}"
                        ) from None
                    server.keyspace.replace_all(data.dbs)
                    start = data.end_offset
                replay = AofReplay(
                    server, path, info.name, start, last_file, bool(self.config["aof-load-truncated"])
                )
                try:
                    while True:
                        state = replay.run(REPLAY_SLICE_S)
                        self._loading_progress(done_bytes + replay.position, server.keyspace.total_keys())
                        if state is not ReplayState.RUNNING:
                            break
                        await asyncio.sleep(0)
                finally:
                    replay.close()
                if state is ReplayState.TRUNCATED:
                    sizes[index] = replay.size_bytes
                log.info(
                    "aof_file_loaded",
                    file=info.name,
                    kind=info.type.name.lower(),
                    commands=replay.commands_applied,
                    truncated=state is ReplayState.TRUNCATED,
                )
                done_bytes += sizes[index]
            self.loading_loaded_bytes = done_bytes
        except AofLoadError as exc:
            raise LoadError(str(exc)) from None
        finally:
            self._end_loading("aof")

    async def load_on_start(self) -> None:
        """Load the AOF (appendonly yes) or the RDB into the keyspace, then open the AOF for appending.

        Runs on the loop thread; clients get -LOADING meanwhile. Raises LoadError when the node must not start.
        """
        try:
            await self._load_on_start()
        finally:
            if self.prefetched_load_helper is not None:  # not taken: the dataset came from the AOF, or none
                self.prefetched_load_helper.taken = True
                self.prefetched_load_helper.close()
                self.prefetched_load_helper = None

    async def _load_on_start(self) -> None:
        config = self.config
        aof = self.aof
        try:
            manifest = aofmod.read_manifest(aof.dirname, aof.filename)
        except ManifestError as exc:
            if config["appendonly"]:
                raise LoadError(str(exc)) from None
            log.warning("aof_manifest_ignored", reason=str(exc))
            manifest = None
        if manifest is not None:
            aof.manifest = manifest
        if not config["appendonly"]:
            if os.path.exists(self.rdb_path):
                await self._load_rdb_file(self.rdb_path)
            return
        self._upgrade_old_aof()
        if aof.manifest.loadable():
            await self._load_aof_files()
            aof.loaded_sizes()
        elif os.path.exists(self.rdb_path):
            # No AOF yet but a snapshot: load it, so that switching appendonly on keeps the data (the base
            # written below is made from it). Note: redis-server 7.0 ignores dump.rdb in this case.
            await self._load_rdb_file(self.rdb_path)
        if self.shutting_down:
            return
        try:
            aof.ensure_dir()
            if aof.manifest.base is None and not aof.manifest.incrs:
                self._write_first_base()
            aof.open_last_incr()
        except OSError as exc:
            raise LoadError(
                f"Can't open or create the append-only file in {aof.dirname}: {exc.strerror or exc}"
            ) from None
        self.server.aof_feeding = True
        self.server.prop_db = -1

    def _upgrade_old_aof(self) -> None:
        """A Redis < 7 single appendonly.aof in ``dir``: move it into the AOF directory as the base
        (aofUpgradePrepare), so it loads and is rewritten like any other base."""
        aof = self.aof
        name = aof.filename
        manifest = aof.manifest
        if not os.path.isfile(name):
            return
        if manifest.base is not None or manifest.incrs:
            if not (
                manifest.base is not None
                and not manifest.incrs
                and manifest.base.name == name
                and not os.path.exists(aof.path(name))
            ):
                return
        aof.ensure_dir()
        upgraded = aofmod.Manifest(base=aofmod.AofInfo(name, 1, aofmod.AofFileType.BASE), curr_base_seq=1)
        aofmod.write_manifest(aof.dirname, aof.filename, upgraded)
        os.rename(name, aof.path(name))
        aof.manifest = upgraded
        log.info("aof_upgraded", file=name, dir=aof.dirname)

    def _write_first_base(self) -> None:
        """No AOF at all: write a base of the current dataset before the first incr file (as Redis does)."""
        aof = self.aof
        manifest = aof.manifest.copy()
        preamble = bool(self.config["aof-use-rdb-preamble"])
        name = manifest.new_base(aof.filename, preamble)
        temp = f"temp-rewriteaof-{os.getpid()}.aof"
        try:
            aofmod.write_base(temp, self.server.keyspace.dbs, preamble, self._aux(aof_base=True))
            os.rename(temp, aof.path(name))
        except BaseException:
            self._remove_temp(temp)
            raise
        manifest.history = []
        aofmod.write_manifest(aof.dirname, aof.filename, manifest)
        aof.manifest = manifest
        aof.current_size = aof.base_size = aof.file_size(name)
        log.info("aof_base_created", file=name, reason="server start")

    # -- DEBUG RELOAD ----------------------------------------------------------------------------------------

    async def reload(self, save: bool) -> str | None:
        """DEBUG RELOAD: SAVE, then load dbfilename back (clients get -LOADING meanwhile). Returns an error."""
        if save and not self.save():
            return "ERR"
        try:
            await self._load_rdb_file(self.rdb_path)
        except LoadError as exc:
            log.error("reload_failed", reason=str(exc))
            return "ERR Error trying to load the RDB dump, check server logs."
        return None

    # -- INFO ------------------------------------------------------------------------------------------------

    def info(self) -> list[tuple[str, Any]]:
        server = self.server
        aof = self.aof
        child = self.child
        now = time.time()
        rdb_running = child is not None and child.kind is ChildKind.RDB
        aof_running = child is not None and child.kind is ChildKind.AOF
        lines: list[tuple[str, Any]] = [
            ("loading", int(server.loading)),
            ("async_loading", 0),
            ("current_cow_peak", 0),
            ("current_cow_size", 0),
            ("current_cow_size_age", 0),
            ("current_fork_perc", "0.00"),
            ("current_save_keys_processed", 0),
            ("current_save_keys_total", 0),
            ("rdb_changes_since_last_save", server.keyspace.dirty),
            ("rdb_bgsave_in_progress", int(rdb_running)),
            ("rdb_last_save_time", self.lastsave_s),
            ("rdb_last_bgsave_status", "ok" if self.lastbgsave_ok else "err"),
            ("rdb_last_bgsave_time_sec", self.rdb_last_bgsave_time_s),
            ("rdb_current_bgsave_time_sec", int(now - child.started_s) if rdb_running and child else -1),
            ("rdb_saves", self.rdb_saves),
            ("rdb_last_cow_size", self.rdb_last_cow_bytes),
            ("rdb_last_load_keys_expired", self.rdb_last_load_keys_expired),
            ("rdb_last_load_keys_loaded", self.rdb_last_load_keys_loaded),
            ("aof_enabled", int(aof.state is not AofState.OFF)),
            ("aof_rewrite_in_progress", int(aof_running)),
            ("aof_rewrite_scheduled", int(self.aof_rewrite_scheduled)),
            ("aof_last_rewrite_time_sec", self.aof_last_rewrite_time_s),
            ("aof_current_rewrite_time_sec", int(now - child.started_s) if aof_running and child else -1),
            ("aof_last_bgrewrite_status", "ok" if self.aof_lastbgrewrite_ok else "err"),
            ("aof_rewrites", self.aof_rewrites),
            ("aof_rewrites_consecutive_failures", self.aof_rewrites_consecutive_failures),
            ("aof_last_write_status", "ok" if self.aof_last_write_ok else "err"),
            ("aof_last_cow_size", self.aof_last_cow_bytes),
            ("module_fork_in_progress", 0),
            ("module_fork_last_cow_size", 0),
        ]
        if aof.state is not AofState.OFF:
            lines += [
                ("aof_current_size", aof.current_size),
                ("aof_base_size", aof.base_size),
                ("aof_pending_rewrite", int(self.aof_rewrite_scheduled)),
                ("aof_buffer_length", len(self.aof_buf)),
                ("aof_pending_bio_fsync", int(self._fsync_inflight_since is not None)),
                ("aof_delayed_fsync", self.aof_delayed_fsync),
            ]
        if server.loading:
            elapsed = max(now - self.loading_start_s, 0)
            percent = self._loading_percent()
            eta = int(elapsed * (100 - percent) / percent) if percent > 0 else 1
            lines += [
                ("loading_start_time", self.loading_start_s),
                ("loading_total_bytes", self.loading_total_bytes),
                ("loading_rdb_used_mem", 0),
                ("loading_loaded_bytes", self.loading_loaded_bytes),
                ("loading_loaded_perc", f"{percent:.2f}"),
                ("loading_eta_seconds", eta),
            ]
        return lines
