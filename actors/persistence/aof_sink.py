"""The AOF stream sink: each tick's propagated writes to the open incr file, fsync per ``appendfsync``, MISCONF.

Runs on the master actor's loop thread: ``feed_aof`` is a stream sink of the master actor, called at the end of
every tick before any reply leaves, so a reply is never sent for a write the AOF has not been given. The
persistence actor (actor.py) does the fsyncs the loop must not wait for.

``appendfsync`` (FsyncPolicy) and what a crash can lose (the loss window of each setting):

    always     one fdatasync per loop tick, here, before the tick's replies leave (group commit): nothing a
               client was told succeeded is ever lost, even to a power failure.
    everysec   the loop write()s every tick (so a killed *process* loses nothing: the bytes are in the
               kernel), the actor fdatasyncs once a second: an OS crash or power failure loses up to ~1-2 s.
    no         never fsync: an OS crash loses whatever the kernel had not flushed yet (typically up to ~30 s).

MISCONF (``Misconf``, Redis's writeCommandsDeniedByDiskError): writes are refused while the last BGSAVE failed
(with save points and stop-writes-on-bgsave-error) or while AOF writes or fsyncs fail.
"""

from __future__ import annotations

import os
import time
from enum import Enum
from typing import TYPE_CHECKING, Any

import pykka
import structlog

from actors import fork
from actors.persistence.actor import Fsync, FsyncAndClose
from actors.persistence.aof.file import AofState, AppendOnlyFile
from actors.persistence.aof.manifest import write_manifest
from actors.server.server import without_spans
from protocol import errors

if TYPE_CHECKING:
    from actors.config import Config
    from actors.server.server import Server

log = structlog.get_logger("redactor.persistence")

# How often everysec fsyncs, and how long an fsync may stay in flight before a new one counts as delayed
# (Redis counts aof_delayed_fsync when a write waits on an fsync older than 2 s).
EVERYSEC_INTERVAL_S = 1.0
FSYNC_DELAYED_AFTER_S = 2.0
# A failed AOF write is retried from the cron; at most this often a warning is logged.
AOF_WRITE_ERROR_LOG_INTERVAL_S = 30


class FsyncPolicy(Enum):
    ALWAYS = "always"  # fdatasync every tick before its replies leave
    EVERYSEC = "everysec"  # the actor fdatasyncs once a second
    NO = "no"  # the kernel flushes when it likes


class Misconf:
    """What MISCONF depends on; every change of a flag updates ``server.disk_error`` (loop thread)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.config = server.config
        self._lastbgsave_ok = True
        self._aof_last_write_ok = True
        self._aof_fsync_ok = True
        self.aof_last_write_error = ""  # strerror of the failed AOF write or fsync

    def watch_config(self) -> None:
        """Re-check on changes of the settings MISCONF depends on (after appendonly's own listener)."""
        for name in ("save", "stop-writes-on-bgsave-error", "appendonly"):
            self.config.on_change(name, lambda _value: self.update())

    @property
    def lastbgsave_ok(self) -> bool:
        return self._lastbgsave_ok

    @lastbgsave_ok.setter
    def lastbgsave_ok(self, ok: bool) -> None:
        self._lastbgsave_ok = ok
        self.update()

    @property
    def aof_last_write_ok(self) -> bool:
        return self._aof_last_write_ok

    @aof_last_write_ok.setter
    def aof_last_write_ok(self, ok: bool) -> None:
        self._aof_last_write_ok = ok
        self.update()

    @property
    def aof_fsync_ok(self) -> bool:
        return self._aof_fsync_ok

    @aof_fsync_ok.setter
    def aof_fsync_ok(self, ok: bool) -> None:
        self._aof_fsync_ok = ok
        self.update()

    def update(self) -> None:
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


class AofSink:
    """The open AOF and everything that writes and fsyncs it (loop thread)."""

    def __init__(self, server: Server, config: Config, misconf: Misconf) -> None:
        self.server = server
        self.config = config
        self.misconf = misconf
        self.aof = AppendOnlyFile(config["appenddirname"], config["appendfilename"])
        # The actor currently doing fsyncs (set by the actor itself on start, so restarts update it).
        self.actor_ref: Any = None
        # Read once per tick: kept as an Enum, updated when CONFIG SET changes it.
        self.fsync_policy = FsyncPolicy(config["appendfsync"])
        config.on_change("appendfsync", self._on_appendfsync_changed)
        # Bytes the stream sink has not managed to write yet (a failed write is retried from the cron).
        self.aof_buf = b""
        self._last_write_error_log_s = 0.0
        # Leading bytes of the next stream-sink call already handled (written to the previous incr file
        # before a switch, or part of a snapshot): the sink drops them.
        self._skip_bytes = 0
        # everysec bookkeeping: when the last fsync was asked for, and whether one is in flight.
        self._last_fsync_request_s = time.monotonic()
        self.fsync_inflight_since: float | None = None
        self.aof_delayed_fsync = 0
        # DEBUG AOF-FLUSH-SLEEP (a test knob, as Redis's): microseconds slept before each write of the AOF
        # buffer, on the loop thread, so tests can make the write land late within a tick.
        self.flush_sleep_us = 0
        # aof-timestamp-enabled: a "#TS:<unix seconds>" line goes before the first write of each new second
        # (Redis's genAofTimestampAnnotationIfNeeded, at a tick's granularity); the second last annotated.
        self.timestamps = bool(config["aof-timestamp-enabled"])
        config.on_change("aof-timestamp-enabled", lambda value: setattr(self, "timestamps", bool(value)))
        self._annotated_s = 0

    def _on_appendfsync_changed(self, value: Any) -> None:
        self.fsync_policy = FsyncPolicy(value)

    def tell(self, message: Any) -> bool:
        """Hand work to the actor; False if it is not running (the caller does the work itself)."""
        ref = self.actor_ref
        if ref is None:
            return False
        try:
            ref.tell(message)
            return True
        except pykka.ActorDeadError:
            return False

    def retire_fd(self, fd: int) -> None:
        """An incr file no longer written to: fsync and close it off the loop (inline if the actor is down)."""
        if fd < 0:
            return
        if not self.tell(FsyncAndClose(fd)):
            try:
                os.fdatasync(fd)
            except OSError:
                pass
            os.close(fd)

    def pending_stream(self) -> bytes:
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

    # -- the stream sink (loop thread, end of tick, before replies leave) -----------------------------------

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
        if self.timestamps:
            now_s = int(time.time())
            if now_s > self._annotated_s:
                self._annotated_s = now_s
                data = b"#TS:%d\r\n" % now_s + data
        self.write(data)

    def write(self, data: bytes) -> None:
        """Append ``data`` (after whatever a failed write left pending); fdatasync now under ``always``."""
        aof = self.aof
        if self.aof_buf:
            data = self.aof_buf + data
            self.aof_buf = b""
        always = self.fsync_policy is FsyncPolicy.ALWAYS
        if self.flush_sleep_us and data:
            time.sleep(self.flush_sleep_us / 1e6)
        try:
            aof.write(data)
        except OSError as exc:
            self._write_failed(data, exc, always)
            return
        if not self.misconf.aof_last_write_ok:
            log.warning("aof_write_recovered")
            self.misconf.aof_last_write_ok = True
        if always and not (self.config["no-appendfsync-on-rewrite"] and fork.active() is not None):
            try:
                os.fdatasync(aof.fd)
            except OSError as exc:
                # As Redis: the replies are about to leave and cannot be taken back, so the only safe move
                # left with appendfsync always is to stop.
                log.error("aof_fsync_failed_exiting", reason=exc.strerror, appendfsync="always")
                os._exit(1)
            aof.fsynced_size = aof.incr_size

    def _write_failed(self, data: bytes, exc: OSError, always: bool) -> None:
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
        self.misconf.aof_last_write_error = exc.strerror or str(exc)
        self.misconf.aof_last_write_ok = False
        self.aof_buf = data

    def write_pending(self) -> None:
        """Write this tick's not yet handled bytes and anything a failed write left (before a close)."""
        pending = self.pending_stream()
        if pending or self.aof_buf:
            self.write(pending)

    # -- results from the actor (loop thread) ----------------------------------------------------------------

    def on_fsync_done(self, fd: int, size: int, ok: bool, duration_s: float, error: str = "") -> None:
        """Loop thread: the actor finished an everysec fsync."""
        self.fsync_inflight_since = None
        if fd != self.aof.fd:
            return  # a file since switched away from: its fate says nothing about the current one
        if ok:
            self.aof.fsynced_size = max(self.aof.fsynced_size, size)
            if not self.misconf.aof_fsync_ok:
                self.misconf.aof_fsync_ok = True
        else:
            self.misconf.aof_last_write_error = error or "fsync failed"
            self.misconf.aof_fsync_ok = False

    def persist_manifest(self) -> None:
        """Loop thread: write the manifest as it is in memory (its history lines just dropped, say), if the AOF
        directory exists; a failure is logged, the next change writes it again."""
        aof = self.aof
        if not os.path.isdir(aof.dirname):
            return
        try:
            write_manifest(aof.dirname, aof.filename, aof.manifest)
        except OSError as exc:
            log.warning("aof_manifest_not_rewritten", reason=exc.strerror)

    # -- cron (loop thread) ----------------------------------------------------------------------------------

    def cron(self) -> None:
        """Retry a failed write, then the everysec fsync."""
        if self.aof_buf and self.aof.fd >= 0:
            self.write(b"")
        self._everysec()

    def _everysec(self) -> None:
        aof = self.aof
        if aof.fd < 0 or self.fsync_policy is not FsyncPolicy.EVERYSEC:
            return
        now = time.monotonic()
        if self.fsync_inflight_since is not None:
            ref = self.actor_ref
            if ref is None or not ref.is_alive():
                self.fsync_inflight_since = None  # the actor died with it: ask again
            elif now - self.fsync_inflight_since > FSYNC_DELAYED_AFTER_S:
                self.aof_delayed_fsync += 1
                self.fsync_inflight_since = now  # count each further 2 s once
                return
            else:
                return
        if aof.incr_size <= aof.fsynced_size or now - self._last_fsync_request_s < EVERYSEC_INTERVAL_S:
            return
        if self.config["no-appendfsync-on-rewrite"] and fork.active() is not None:
            return
        self._last_fsync_request_s = now
        if self.tell(Fsync(aof.fd, aof.incr_size)):
            self.fsync_inflight_since = now
        else:
            try:
                os.fdatasync(aof.fd)
                aof.fsynced_size = aof.incr_size
            except OSError as exc:
                log.warning("aof_fsync_failed", reason=exc.strerror)

    # -- closing (loop thread, synchronously) ----------------------------------------------------------------

    def fsync_open(self) -> None:
        """SHUTDOWN: write what is pending and fdatasync the open incr file (it stays open)."""
        aof = self.aof
        if aof.fd < 0:
            return
        self.write_pending()
        try:
            os.fdatasync(aof.fd)
        except OSError as exc:
            log.warning("aof_fsync_failed", reason=exc.strerror)

    def close(self) -> None:
        """Write this tick's pending writes, fsync and close the incr file; the AOF is off afterwards."""
        aof = self.aof
        if aof.fd >= 0:
            self.write_pending()
            fd = aof.close()
            try:
                os.fdatasync(fd)
            except OSError as exc:
                log.warning("aof_fsync_failed", reason=exc.strerror)
            os.close(fd)
        aof.state = AofState.OFF
        self.server.aof_feeding = False
