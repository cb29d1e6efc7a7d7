"""Fork children: the node's one machinery for BGSAVE, BGREWRITEAOF and replica snapshots.

Redis forks a child to write a snapshot while the parent keeps serving, and allows one child at a time
(``hasActiveChildProcess``): two children would double the copy-on-write memory and fight for the disk. This
module is that rule and the mechanics around it, for every kind of child:

    fork_child(kind, work, on_exit=...)   fork after ``gc.freeze()`` (and a trim of the malloc heap's free
                                          pages, actors/data/allocator.py); the child runs ``work()`` and leaves;
                                          raises ChildBusy while another child runs, OSError if fork fails
    reap(block=False)                     collect the child if it exited; tells success, an error exit, a
                                          signal and a lost child apart (ChildExit) and calls its ``on_exit``
    kill(sig=SIGUSR1)                     stop the child and reap it (SIGUSR1: "killed by the parent", which
                                          is not an error, as in Redis)
    active                                the running child or None (INFO, BGSAVE's replies, the cron)

The child's life (``_child_main``): no logging, locks or sockets, since other threads of the parent may have
held them at fork time; close every inherited descriptor except the ones its work needs (a node killed while
the child writes must not stay bound to its ports through it); give signals back their default action; run
``work``; report its copy-on-write size (Private_Dirty) on a pipe; ``os._exit``. An exception in ``work`` is
exit status 1.

The info pipe (Redis's child info): lines ``<copy-on-write bytes> <keys written>``. The work reports as it goes
(``report_child_progress``, at most once a second; the RDB writer calls it), the child's last line is its final
size; the parent reads them into the ``ForkedChild`` (``poll_info``, from INFO and the cron), which INFO's
``current_cow_size``, ``current_fork_perc`` and ``current_save_keys_*`` show.

The registry is process-wide (``NODE_CHILDREN``, used through the module functions) because children are: any
``waitpid`` in the process can collect any of them. Everything here runs on the master actor's loop thread.
"""

from __future__ import annotations

import gc
import os
import signal
import time
from collections.abc import Callable, Iterable
from enum import Enum
from typing import NamedTuple

from actors.data.allocator import trim_before_fork

# A fork child reports its progress on the info pipe at most this often (Redis's CHILD_INFO period).
CHILD_INFO_PERIOD_S = 1.0
# A fork child closes every inherited descriptor below this that it was not told to keep (os.closerange uses
# close_range(2), so a large bound costs nothing).
CHILD_MAX_FD = 1 << 20
# Signals the parent handles itself (the loop's handlers, the wakeup fd); the child gets their default back.
CHILD_RESET_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP)


class ChildKind(Enum):
    RDB = "rdb"  # BGSAVE: writes dbfilename
    AOF = "aof"  # BGREWRITEAOF: writes a new AOF base file
    REPLICA_SNAPSHOT = "replica_snapshot"  # full sync: an RDB for replicas, streamed while it grows


class ExitKind(Enum):
    OK = "ok"  # exit status 0: the work is complete
    ERROR = "error"  # a non-zero exit status: the work failed (its exception, or os._exit(n))
    SIGNALED = "signaled"  # killed by a signal (SIGUSR1 when the parent stopped it on purpose)
    LOST = "lost"  # waitpid knew no such child: someone else reaped it; treated as a failure


class ChildBusy(RuntimeError):
    """Another child is running: one at a time (Redis's hasActiveChildProcess)."""

    def __init__(self, active: ForkedChild) -> None:
        super().__init__("a child process is already active")
        self.active = active


class ChildExit(NamedTuple):
    """How a child ended, as the parent saw it."""

    kind: ExitKind
    exit_code: int  # the exit status for OK and ERROR (1 for LOST), else 0
    signal: int  # the signal number for SIGNALED, else 0
    cow_bytes: int  # copy-on-write the child reported (0 if it died before reporting)
    duration_s: float  # from fork to reap

    @property
    def ok(self) -> bool:
        return self.kind is ExitKind.OK

    @property
    def killed_by_parent(self) -> bool:
        """Stopped on purpose with SIGUSR1 (SHUTDOWN, appendonly no): not an error, as in Redis."""
        return self.kind is ExitKind.SIGNALED and self.signal == signal.SIGUSR1

    def describe(self) -> str:
        """For log lines: "exit status 2", "signal 9", "lost"."""
        if self.kind is ExitKind.SIGNALED:
            return f"signal {self.signal}"
        if self.kind is ExitKind.LOST:
            return "lost"
        return f"exit status {self.exit_code}"


class ForkedChild:
    """A running child and what the parent needs to finish its work when it exits."""

    def __init__(
        self,
        kind: ChildKind,
        pid: int,
        info_fd: int,
        started_s: float,
        started_monotonic: float,
        on_exit: Callable[[ForkedChild, ChildExit], None],
    ) -> None:
        self.kind: ChildKind = kind
        self.pid: int = pid
        # read end of the pipe the child reports its copy-on-write size on (non-blocking)
        self.info_fd: int = info_fd
        # time.time() at fork, for *_current_*_time_sec
        self.started_s: float = started_s
        self.started_monotonic: float = started_monotonic
        # the owner's completion, called by reap (loop thread)
        self.on_exit: Callable[[ForkedChild, ChildExit], None] = on_exit
        # What the child reported so far (poll_info): copy-on-write bytes, their peak, keys written, and when.
        self.cow_bytes = 0
        self.cow_peak_bytes = 0
        self.keys_processed = 0
        self.info_updated_monotonic = 0.0
        # The keys its snapshot holds (dbTotalServerKeyCount at fork, as Redis): INFO's current_save_keys_total.
        self.keys_total = 0
        self._info_tail = b""

    def poll_info(self) -> None:
        """Read what the child has reported (non-blocking; loop thread)."""
        if self.info_fd < 0:
            return
        try:
            while chunk := os.read(self.info_fd, 4096):
                self._take_info(chunk)
        except OSError:  # BlockingIOError: nothing more for now
            pass

    def _take_info(self, chunk: bytes) -> None:
        *lines, self._info_tail = (self._info_tail + chunk).split(b"\n")
        for line in lines:
            fields = line.split()
            if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
                self.cow_bytes, self.keys_processed = int(fields[0]), int(fields[1])
                self.cow_peak_bytes = max(self.cow_peak_bytes, self.cow_bytes)
                self.info_updated_monotonic = time.monotonic()

    def close_info(self) -> int:
        """Read the rest of the pipe (the child has exited) and close it; returns its final copy-on-write size
        (0 if it reported none: a child killed first)."""
        self.poll_info()
        if self.info_fd >= 0:
            os.close(self.info_fd)
            self.info_fd = -1
        return self.cow_bytes


# In a fork child: the info pipe's write end (-1 elsewhere), the keys reported so far and when, last.
_child_info_fd = -1
_child_keys = 0
_child_reported_monotonic = 0.0


def _write_child_info(keys: int) -> None:
    try:
        os.write(_child_info_fd, b"%d %d\n" % (private_dirty_bytes(), keys))
    except OSError:
        pass  # the parent stopped reading (it is going away): the work goes on regardless


def report_child_progress(keys: int) -> None:
    """``keys`` more keys written. In a fork child, tells the parent how far it got and how much memory
    copy-on-write duplicated so far, at most once per CHILD_INFO_PERIOD_S; anywhere else, nothing."""
    global _child_keys, _child_reported_monotonic
    if _child_info_fd < 0:
        return
    _child_keys += keys
    now = time.monotonic()
    if now - _child_reported_monotonic >= CHILD_INFO_PERIOD_S:
        _child_reported_monotonic = now
        _write_child_info(_child_keys)


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


def _close_inherited(keep: Iterable[int]) -> None:
    """Close every descriptor from 3 up except ``keep``."""
    low = 3
    for fd in sorted(set(keep)):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, CHILD_MAX_FD)


# Run first thing in every fork child, by name (the latest node's: a node process has one; in-process tests
# make many), e.g. "oom-score-adj": actors/server/oom_score.py's background-child OOM score.
CHILD_START_HOOKS: dict[str, Callable[[], None]] = {}


def _child_main(work: Callable[[], None], info_fd: int, keep_fds: tuple[int, ...], delay_s: float) -> int:
    """The whole life of a fork child up to its exit status. No logging, locks or sockets here."""
    global _child_info_fd, _child_reported_monotonic
    gc.disable()  # frozen objects are skipped anyway; no collection should touch (and copy) any page
    _close_inherited((info_fd, *keep_fds))
    try:
        signal.set_wakeup_fd(-1)  # the parent's loop owns that socket: our signals are not its signals
        for sig in CHILD_RESET_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
    except (ValueError, OSError):
        pass
    for hook in CHILD_START_HOOKS.values():
        hook()
    if delay_s > 0:
        time.sleep(delay_s)  # DEBUG SET-SAVE-DELAY: lets tests see a child at work
    _child_info_fd = info_fd
    _child_reported_monotonic = time.monotonic()  # the first report after a period of work, as Redis
    work()
    _write_child_info(_child_keys)  # the last line: the final copy-on-write size
    return 0


def classify_status(status: int) -> tuple[ExitKind, int, int]:
    """A waitpid status (-1: no such child) as (kind, exit code, signal)."""
    if status == -1:
        return ExitKind.LOST, 1, 0
    if os.WIFSIGNALED(status):
        return ExitKind.SIGNALED, 0, os.WTERMSIG(status)
    code = os.WEXITSTATUS(status)
    return (ExitKind.OK if code == 0 else ExitKind.ERROR), code, 0


class ChildRegistry:
    """The children of one process, one at a time. The node uses ``NODE_CHILDREN``; tests make their own."""

    def __init__(self) -> None:
        self.active: ForkedChild | None = None
        # INFO stats: latest_fork_usec, total_forks (every kind counts, as in Redis).
        self.latest_fork_usec = 0
        self.total_forks = 0

    def fork_child(
        self,
        kind: ChildKind,
        work: Callable[[], None],
        on_exit: Callable[[ForkedChild, ChildExit], None],
        keep_fds: tuple[int, ...] = (),
        delay_s: float = 0.0,
        keys_total: int = 0,
    ) -> ForkedChild:
        """Fork a child that runs ``work()`` (keeping ``keep_fds`` open) and exits; ``on_exit`` runs when it
        is reaped. ``keys_total``: the keys its work writes (its progress is against it). Raises ChildBusy
        while another child runs, OSError if the fork fails (nothing changed)."""
        if self.active is not None:
            raise ChildBusy(self.active)
        trim_before_fork()  # free heap pages would count twice, in the parent's RSS and the child's
        read_fd, write_fd = os.pipe()
        gc.freeze()  # the child then copies no page just to mark objects during a collection
        started = time.perf_counter()
        try:
            pid = os.fork()
        except OSError:
            gc.unfreeze()
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:  # the child: never returns
            status = 1
            try:
                os.close(read_fd)
                status = _child_main(work, write_fd, keep_fds, delay_s)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        self.latest_fork_usec = int((time.perf_counter() - started) * 1e6)
        self.total_forks += 1
        gc.unfreeze()
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        child = ForkedChild(kind, pid, read_fd, time.time(), time.monotonic(), on_exit)
        child.keys_total = keys_total
        self.active = child
        return child

    def reap(self, block: bool = False) -> ChildExit | None:
        """Collect the active child if it has exited (wait for it if ``block``) and call its ``on_exit``.

        Returns how it ended, or None if there is no child or it still runs. The child is no longer active
        when ``on_exit`` runs, so it may fork the next one (a scheduled BGSAVE).
        """
        child = self.active
        if child is None:
            return None
        try:
            pid, status = os.waitpid(child.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status = child.pid, -1
        if pid == 0:
            return None
        self.active = None
        kind, exit_code, by_signal = classify_status(status)
        result = ChildExit(
            kind,
            exit_code,
            by_signal,
            child.close_info(),
            time.monotonic() - child.started_monotonic,
        )
        child.on_exit(child, result)
        return result

    def kill(self, sig: int = signal.SIGUSR1) -> ChildExit | None:
        """Stop the active child with ``sig`` and reap it (blocking). None if there was none."""
        child = self.active
        if child is None:
            return None
        try:
            os.kill(child.pid, sig)
        except ProcessLookupError:
            pass
        return self.reap(block=True)


NODE_CHILDREN = ChildRegistry()


def fork_child(
    kind: ChildKind,
    work: Callable[[], None],
    on_exit: Callable[[ForkedChild, ChildExit], None],
    keep_fds: tuple[int, ...] = (),
    delay_s: float = 0.0,
    keys_total: int = 0,
) -> ForkedChild:
    """``NODE_CHILDREN.fork_child``: see ChildRegistry.fork_child."""
    return NODE_CHILDREN.fork_child(kind, work, on_exit, keep_fds, delay_s, keys_total)


def active() -> ForkedChild | None:
    """The node's running child, or None."""
    return NODE_CHILDREN.active


def reap(block: bool = False) -> ChildExit | None:
    """``NODE_CHILDREN.reap``: see ChildRegistry.reap."""
    return NODE_CHILDREN.reap(block)


def kill(sig: int = signal.SIGUSR1) -> ChildExit | None:
    """``NODE_CHILDREN.kill``: see ChildRegistry.kill."""
    return NODE_CHILDREN.kill(sig)
