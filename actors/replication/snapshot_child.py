"""Replication's snapshot children: fork one that writes the dataset as an RDB, reap it, kill it at shutdown.

Moved here as it was in replication.py so it can be ported to the node's one fork module (actors/fork.py):
the loop thread forks (``gc.freeze``; the child only writes the RDB with ``rdb_writer.dump`` to
``temp-repl-<pid>-<job>.rdb``, writes one byte on a pipe once the file is complete, and leaves with
``os._exit``). The actor streams the file while it grows and learns it is complete from the pipe; the cron
reaps the child later. Results go to the actor as messages (``Forked``, ``ForkFailed``, ``SnapshotDone``).
"""

from __future__ import annotations

import gc
import os
import resource
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from actors.persistence.rdb import writer as rdb_writer
from actors.replication.messages import Forked, ForkFailed, LoopToActor, SnapshotDone

if TYPE_CHECKING:
    from actors.data.keyspace import Database

log = structlog.get_logger("redactor.replication")

# A forked snapshot is written to the job's own name (a replica parses what it receives without a file).
SNAPSHOT_TEMP_FILE = "temp-repl-{pid}-{job}.rdb"
# What a snapshot child writes on its pipe once its file is complete (it exits without it on failure).
SNAPSHOT_DONE_BYTE = b"1"


class SnapshotChildren:
    """The snapshot children of this node (loop thread): pid -> (job, temp path)."""

    def __init__(self, tell: Callable[[LoopToActor], None]) -> None:
        self._tell = tell  # to the replication actor
        self._children: dict[int, tuple[int, str]] = {}

    def __bool__(self) -> bool:
        return bool(self._children)

    def fork(
        self,
        job: int,
        offset: int,
        stream_db: int,
        replid: str,
        dbs: list[Database],
        aux: dict[str, Any],
        compress: bool,
        checksum: bool,
        delay_s: float,
    ) -> None:
        """Fork a child that writes ``dbs`` as an RDB; tell the actor its offset (or that the fork failed)."""
        path = SNAPSHOT_TEMP_FILE.format(pid=os.getpid(), job=job)
        # The file exists before the fork (the actor streams it to replicas while the child writes it), and
        # the child reports a complete file on a pipe the actor polls: no wait for the cron to reap it.
        try:
            out_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            log.error("snapshot_fork_failed", job=job, reason=exc.strerror)
            self._tell(ForkFailed(job, str(exc.strerror)))
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
            unlink_quietly(path)
            log.error("snapshot_fork_failed", job=job, reason=exc.strerror)
            self._tell(ForkFailed(job, str(exc.strerror)))
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
        self._tell(Forked(job, pid, offset, stream_db, replid, path, done_r))

    def reap(self) -> None:
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
                unlink_quietly(path)
            self._tell(SnapshotDone(job, ok, path))

    def kill(self) -> None:
        """Node shutdown: stop snapshot children (their files are temporary)."""
        for pid, (_job, path) in list(self._children.items()):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            unlink_quietly(path)
        self._children.clear()


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


def remove_stale_temp_files() -> None:
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


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
