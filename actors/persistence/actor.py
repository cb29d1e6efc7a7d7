"""PersistenceActor: the disk waits the loop thread must not do, and the messages it takes.

A pykka actor (its own thread): the once-a-second fsync of ``appendfsync everysec``, fsync-and-close of a
retired incr file, deleting history files. It holds no state: every message carries what it needs and results
go back to the loop with ``MasterActor.call_threadsafe``. If it dies the supervisor restarts it and, since the
loop wrote every byte itself, no acknowledged write is lost.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import structlog

from actors.supervision.supervisor import SupervisedActor

if TYPE_CHECKING:
    from actors.persistence.persistence import Persistence

log = structlog.get_logger("redactor.persistence")


class Fsync(NamedTuple):
    """fdatasync ``fd`` (the open incr file); ``size`` bytes of it were written when asked."""

    fd: int
    size: int


class FsyncAndClose(NamedTuple):
    """A retired incr file: make it durable, then close it."""

    fd: int


class Unlink(NamedTuple):
    """Delete files that no longer belong to the dataset (AOF history files)."""

    paths: tuple[str, ...]


class PersistenceActor(SupervisedActor):
    """Disk waits off the loop thread. Stateless: every message carries what it needs; results go back to the
    AOF sink with ``MasterActor.call_threadsafe``."""

    def __init__(self, facade: Persistence) -> None:
        super().__init__()
        self.facade = facade

    def on_start(self) -> None:
        # Runs in the actor's thread: from now on the AOF sink sends its work here.
        self.facade.sink.actor_ref = self.actor_ref

    def on_receive(self, message: Any) -> Any:
        sink = self.facade.sink
        master = self.facade.master
        if isinstance(message, Fsync):
            started = time.perf_counter()
            error = ""
            try:
                os.fdatasync(message.fd)
            except OSError as exc:
                log.warning("aof_fsync_failed", reason=exc.strerror)
                error = exc.strerror or str(exc)
            master.call_threadsafe(
                sink.on_fsync_done,
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
        return None
