"""Replication's snapshot children: a fork child that writes the dataset as an RDB for replicas.

The child is one of the node's fork children (actors/fork.py, kind REPLICA_SNAPSHOT), under the same
one-child-at-a-time rule as BGSAVE and BGREWRITEAOF: while another child runs, the snapshot waits (the loop side
retries it from its cron), as Redis's replicas wait in WAIT_BGSAVE_START. The child writes the RDB with
``rdb_writer.dump`` to ``temp-repl-<pid>-<job>.rdb`` and one byte on a pipe once the file is complete. The actor
streams the file while it grows and learns it is complete from the pipe; whoever reaps the child (the
persistence cron, or ``kill`` at shutdown) runs its exit callback, which tells the actor. Results go to the
actor as messages (``Forked``, ``ForkFailed``, ``SnapshotDone``).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from actors import fork
from actors.fork import ChildExit, ChildKind, ForkedChild
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
    """Forks the node's replica-snapshot children and reports them to the replication actor (loop thread)."""

    def __init__(self, tell: Callable[[LoopToActor], None]) -> None:
        self._tell = tell  # to the replication actor

    def __bool__(self) -> bool:
        """A replica snapshot is being written."""
        child = fork.active()
        return child is not None and child.kind is ChildKind.REPLICA_SNAPSHOT

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
    ) -> bool:
        """Fork a child that writes ``dbs`` as an RDB and tell the actor its offset (or that the fork failed).

        Returns False, having done nothing, while another fork child runs: the caller retries later."""
        if fork.active() is not None:
            return False
        path = SNAPSHOT_TEMP_FILE.format(pid=os.getpid(), job=job)
        # The file exists before the fork (the actor streams it to replicas while the child writes it), and
        # the child reports a complete file on a pipe the actor polls: no wait for the cron to reap it.
        try:
            out_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            log.error("snapshot_fork_failed", job=job, reason=exc.strerror)
            self._tell(ForkFailed(job, str(exc.strerror)))
            return True
        done_r, done_w = os.pipe()

        def work() -> None:  # in the child: no logging, sockets or locks
            with open(out_fd, "wb") as out:
                rdb_writer.dump(dbs, out, aux, compress=compress, checksum=checksum)
            os.write(done_w, SNAPSHOT_DONE_BYTE)

        def on_exit(child: ForkedChild, result: ChildExit) -> None:
            if not result.ok:
                if not result.killed_by_parent:  # (kill_job's: said when it was decided)
                    log.warning(
                        "snapshot_child_failed", job=job, child_pid=child.pid, reason=result.describe()
                    )
                unlink_quietly(path)
            self._tell(SnapshotDone(job, result.ok, path))

        try:
            child = fork.fork_child(
                ChildKind.REPLICA_SNAPSHOT,
                work,
                on_exit,
                keep_fds=(out_fd, done_w),
                delay_s=delay_s,
                keys_total=sum(len(db.data) for db in dbs),
            )
        except OSError as exc:
            for fd in (out_fd, done_r, done_w):
                os.close(fd)
            unlink_quietly(path)
            log.error("snapshot_fork_failed", job=job, reason=exc.strerror)
            self._tell(ForkFailed(job, str(exc.strerror)))
            return True
        os.close(out_fd)
        os.close(done_w)
        log.info(
            "snapshot_forked",
            job=job,
            child_pid=child.pid,
            offset=offset,
            fork_usec=fork.NODE_CHILDREN.latest_fork_usec,
        )
        self._tell(Forked(job, child.pid, offset, stream_db, replid, path, done_r))
        return True

    def kill(self) -> None:
        """Node shutdown: stop a snapshot child (its file is temporary; the exit callback removes it)."""
        if self:
            fork.kill(signal.SIGKILL)

    def kill_job(self, job: int, pid: int) -> None:
        """The actor gave ``job`` up: stop its child (pid ``pid``) if it is the one running (SIGUSR1, Redis's
        signal for a child it stops itself); reaped at once, its exit callback tells the actor."""
        child = fork.active()
        if child is not None and child.kind is ChildKind.REPLICA_SNAPSHOT and child.pid == pid:
            log.info("snapshot_child_killed", job=job, child_pid=pid)
            fork.kill(signal.SIGUSR1)


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
