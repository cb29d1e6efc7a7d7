"""notification-script and client-reconfig-script: the script queue Redis Sentinel keeps (sentinel.c
sentinelScheduleScriptExecution, sentinelRunPendingScripts, sentinelCollectTerminatedScripts,
sentinelKillTimedoutScripts, SENTINEL PENDING-SCRIPTS).

A WARNING-level event on a master with a notification-script queues ``script <event> <description>``; a
failover queues the client-reconfig-script with ``<master-name> <role> <state> <from-ip> <from-port> <to-ip>
<to-port>``. Redis 7.0 calls it in two places only, both with state ``start``: role ``leader`` when the
promoted replica reports role:master (just after ``+failover-state-reconf-slaves``), role ``observer`` when a
hello makes a follower switch to the new address. (sentinel.c's comment names "end" too; no call sends it.)

The queue holds at most 256 jobs (the oldest not running is dropped when full); at most 16 run at once; a
running script gets SCRIPT-MAX-RUNTIME (60 s) before it is killed (``-script-timeout``); an exit status of 1
or a death by signal is retried up to 10 runs, SCRIPT-RETRY-DELAY doubled per retry apart; any other failure
is reported as ``-script-error <path> <by-signal> <exit-code>``. The monitor's timer drives ``tick``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from actors.sentinel.state import now_ms

MAX_RUNNING_SCRIPTS = 16
MAX_QUEUED_SCRIPTS = 256
MAX_RETRIES = 10


class JobState(Enum):
    SCHEDULED = "scheduled"  # waiting for its start time (now, or after a retry delay) and a free slot
    RUNNING = "running"  # its process is alive


@dataclass
class ScriptJob:
    argv: list[str]
    state: JobState = JobState.SCHEDULED
    pid: int = 0
    # While scheduled: when it may start (0: at once). While running: when it started (both ms, wall clock).
    start_ms: int = 0
    retry_num: int = 0  # runs started so far
    proc: Any = field(default=None, repr=False)

    def describe(self, now: int) -> list[Any]:
        """SENTINEL PENDING-SCRIPTS's entry: argv, flags, pid, run-time or run-delay, retry-num."""
        if self.state is JobState.RUNNING:
            timing: list[Any] = [b"run-time", str(now - self.start_ms).encode()]
        else:
            delay = max(self.start_ms - now, 0) if self.start_ms else 0
            timing = [b"run-delay", str(delay).encode()]
        return [
            b"argv", [a.encode("utf-8", "surrogateescape") for a in self.argv],
            b"flags", self.state.value.encode(), b"pid", str(self.pid).encode(),
            *timing, b"retry-num", str(self.retry_num).encode(),
        ]  # fmt: skip


class ScriptRunner:
    """The script queue, on the monitor's loop; ``report(kind, text)`` publishes -script-error/-timeout."""

    def __init__(self, timing: dict[str, int], report: Callable[[str, str], None]) -> None:
        self.timing = timing
        self.report = report
        self.jobs: list[ScriptJob] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> int:
        return sum(1 for job in self.jobs if job.state is JobState.RUNNING)

    def run(self, path: str, *args: str) -> None:
        """Queue a script (Redis's sentinelScheduleScriptExecution) and start it if a slot is free."""
        if len(self.jobs) >= MAX_QUEUED_SCRIPTS:
            for job in self.jobs:
                if job.state is JobState.SCHEDULED:
                    self.jobs.remove(job)
                    break
        self.jobs.append(ScriptJob([path, *args]))
        self.tick()

    def tick(self) -> None:
        """Start due jobs while slots are free, and kill the ones past SCRIPT-MAX-RUNTIME (the timer)."""
        now = now_ms()
        running = self.running
        for job in self.jobs:
            if job.state is JobState.RUNNING:
                if job.proc is not None and now - job.start_ms > self.timing["script-max-runtime"]:
                    self.report("-script-timeout", f"{job.argv[0]} {job.pid}")
                    with contextlib.suppress(ProcessLookupError):
                        job.proc.kill()
                    job.proc = None  # killed once; the waiter collects it
                continue
            if running >= MAX_RUNNING_SCRIPTS:
                break
            if job.start_ms and job.start_ms > now:
                continue
            job.state = JobState.RUNNING
            job.start_ms = now
            job.retry_num += 1
            running += 1
            task = asyncio.get_running_loop().create_task(self._run(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def retry_delay_ms(self, retry_num: int) -> int:
        """Redis's sentinelScriptRetryDelay: SCRIPT-RETRY-DELAY, doubled for each retry after the first."""
        delay = self.timing["script-retry-delay"]
        for _ in range(retry_num - 1):
            delay *= 2
        return delay

    async def _run(self, job: ScriptJob) -> None:
        by_signal, exit_code = 0, 0
        try:
            proc = await asyncio.create_subprocess_exec(
                *job.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL
            )
        except OSError:
            # Redis's forked child exits 2 when execve fails; that is reported, not retried.
            exit_code = 2
        else:
            job.pid, job.proc = proc.pid, proc
            status = await proc.wait()
            by_signal, exit_code = (1, 0) if status < 0 else (0, status)
        if job not in self.jobs:
            return
        if (by_signal or exit_code == 1) and job.retry_num < MAX_RETRIES:
            job.state, job.pid, job.proc = JobState.SCHEDULED, 0, None
            job.start_ms = now_ms() + self.retry_delay_ms(job.retry_num)
        else:
            if by_signal or exit_code:
                self.report("-script-error", f"{job.argv[0]} {by_signal} {exit_code}")
            self.jobs.remove(job)
        self.tick()

    def pending(self) -> list[list[Any]]:
        now = now_ms()
        return [job.describe(now) for job in self.jobs]

    def cancel(self) -> None:
        for job in self.jobs:
            if job.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    job.proc.kill()
        for task in list(self._tasks):
            task.cancel()
