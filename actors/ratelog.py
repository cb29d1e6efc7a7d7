"""Rate-limited log lines for errors a remote party can cause at will (protocol errors, bad peer frames).

A hostile client that sends 200,000 malformed frames must not write 200,000 log lines (the log would grow by
tens of megabytes in seconds and the disk and the loop thread pay for each). Each event name gets a budget of
``LINES_PER_INTERVAL`` lines per ``INTERVAL_S``; past it the events are only counted, and one summary line
(``<event>_suppressed`` with the count) is written once the interval is over: by the next event of that name,
or by ``flush_due`` (the bus actor calls it from its tick, so a burst's count is reported even if the burst
stops).

Thread-safe (the loop thread and the bus thread both report), and cheap when under budget: a dict lookup, a
clock read, a lock.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog

# Lines per event name per interval before the rest are only counted.
LINES_PER_INTERVAL = 10
INTERVAL_S = 10.0


class _Window:
    __slots__ = ("started_s", "logged", "suppressed", "level")

    def __init__(self, started_s: float, level: str) -> None:
        self.started_s = started_s
        self.logged = 0
        self.suppressed = 0
        self.level = level


class RateLimitedLog:
    """Logs at most ``lines`` lines per event name per ``interval_s``, then a count of the rest."""

    def __init__(self, logger: Any, lines: int = LINES_PER_INTERVAL, interval_s: float = INTERVAL_S) -> None:
        self._log = logger
        self._lines = lines
        self._interval_s = interval_s
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        now = time.monotonic()
        summary = 0
        with self._lock:
            window = self._windows.get(event)
            if window is None or now - window.started_s >= self._interval_s:
                summary = window.suppressed if window is not None else 0
                window = self._windows[event] = _Window(now, level)
            if window.logged >= self._lines:
                window.suppressed += 1
                write = False
            else:
                window.logged += 1
                write = True
        if summary:
            self._summarise(level, event, summary)
        if write:
            getattr(self._log, level)(event, **fields)

    def flush_due(self, now: float | None = None) -> None:
        """Write the summary of every interval that is over (and forget idle event names)."""
        if not self._windows:
            return
        now = time.monotonic() if now is None else now
        due: list[tuple[str, str, int]] = []
        with self._lock:
            for event, window in list(self._windows.items()):
                if now - window.started_s >= self._interval_s:
                    del self._windows[event]
                    if window.suppressed:
                        due.append((window.level, event, window.suppressed))
        for level, event, count in due:
            self._summarise(level, event, count)

    def _summarise(self, level: str, event: str, count: int) -> None:
        getattr(self._log, level)(event + "_suppressed", count=count, interval_s=self._interval_s)


# The node's shared limiter for remote-caused errors (client and peer protocol errors).
remote_errors = RateLimitedLog(structlog.get_logger("redactor.remote"))
