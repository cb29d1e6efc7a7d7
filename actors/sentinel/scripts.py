"""notification-script and client-reconfig-script: run as Redis Sentinel runs them (sentinelRunPendingScripts).

A WARNING-level event on a master with a notification-script runs ``script <event> <description>``; a
failover runs the client-reconfig-script with ``<master-name> <role> <state> <from-ip> <from-port> <to-ip>
<to-port>`` (role ``leader`` or ``observer``, state ``start``). At most 16 scripts run at once; a script gets
SCRIPT-MAX-RUNTIME (60 s) before it is killed (``-script-timeout``); an exit status of 1 is retried up to 10
times SCRIPT-RETRY-DELAY apart, any other failure is reported as ``-script-error``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

MAX_RUNNING_SCRIPTS = 16
MAX_RETRIES = 10


class ScriptRunner:
    """Runs scripts on the sentinel's loop; ``report(kind, text)`` publishes -script-error/-script-timeout."""

    def __init__(self, timing: dict[str, int], report: Callable[[str, str], None]) -> None:
        self.timing = timing
        self.report = report
        self.running = 0
        self.queued = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def run(self, path: str, *args: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run(path, list(args)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, path: str, args: list[str]) -> None:
        self.queued += 1
        try:
            for attempt in range(MAX_RETRIES):
                while self.running >= MAX_RUNNING_SCRIPTS:
                    await asyncio.sleep(0.1)
                self.running += 1
                try:
                    status = await self._once(path, args)
                finally:
                    self.running -= 1
                if status != 1 or attempt == MAX_RETRIES - 1:
                    if status not in (0, None):
                        self.report("-script-error", f"{path} {attempt} {status}")
                    return
                await asyncio.sleep(self.timing["script-retry-delay"] / 1000)
        finally:
            self.queued -= 1

    async def _once(self, path: str, args: list[str]) -> int | None:
        try:
            proc = await asyncio.create_subprocess_exec(
                path, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL
            )
        except OSError as exc:
            self.report("-script-error", f"{path} 0 {exc.errno or 2}")
            return None
        try:
            return await asyncio.wait_for(proc.wait(), self.timing["script-max-runtime"] / 1000)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            self.report("-script-timeout", f"{path} 0")
            return None

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
