"""Logging: structlog, human-readable on a terminal, JSON lines otherwise (and always in a logfile).

Events are snake_case past tense with key-values: ``log.info("node_started", port=7001, pid=123)``.
An event Redis 7.0 also logs carries Redis's own sentence in ``message`` (``log.info("bgsave_started",
child_pid=n, message=f"Background saving started by pid {n}")``): operators and tools grep logs for those words
("Ready to accept connections"), and they stay greppable in a JSON line.
With ``syslog-enabled yes`` each event also goes to the system log (libc's syslog, as Redis: ``syslog-ident``,
``syslog-facility``, the pid in each line), as one ``event key=value ...`` line at Redis's priority for the
level (debug, notice, warning).
"""

from __future__ import annotations

import logging
import os
import sys
import syslog
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

# redis.conf loglevel -> stdlib level
LEVELS = {
    "debug": logging.DEBUG,
    "verbose": logging.DEBUG,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "nothing": logging.CRITICAL + 10,
}

_stream: TextIO | None = None

# syslog-facility's values (Redis's syslog_facility_enum).
SYSLOG_FACILITIES = {
    "user": syslog.LOG_USER,
    **{f"local{n}": getattr(syslog, f"LOG_LOCAL{n}") for n in range(8)},
}
# A level's syslog priority (Redis: debug LOG_DEBUG, verbose LOG_INFO, notice LOG_NOTICE, warning LOG_WARNING).
_PRIORITIES = {
    "debug": syslog.LOG_DEBUG,
    "info": syslog.LOG_NOTICE,
    "warning": syslog.LOG_WARNING,
    "error": syslog.LOG_WARNING,
    "critical": syslog.LOG_WARNING,
}


def open_syslog(ident: str, facility: str) -> None:
    """The system log for this process, as Redis opens it: ``ident``, the pid in each line, ``facility``."""
    syslog.openlog(ident, syslog.LOG_PID | syslog.LOG_NDELAY | syslog.LOG_NOWAIT, SYSLOG_FACILITIES[facility])


def _to_syslog(_logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A processor: the event, as one plain line, to the system log; the event goes on unchanged."""
    fields = " ".join(f"{key}={value}" for key, value in event_dict.items() if key not in ("event", "pid"))
    syslog.syslog(
        _PRIORITIES.get(method, syslog.LOG_NOTICE), f"{event_dict.get('event', '')} {fields}".strip()
    )
    return event_dict


class _Lossy:
    """The log stream, minus its errors: a line that cannot be written (standard output piped into a reader
    that went away, a full disk) is dropped, as Redis drops it, instead of raising inside whatever the node
    was doing when it logged."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        try:
            self.stream.write(text)
        except (OSError, ValueError):  # (ValueError: the stream was closed)
            pass

    def flush(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass


def configure_logging(
    loglevel: str = "notice",
    logfile: str = "",
    role: str = "node",
    syslog_to: tuple[str, str] | None = None,
    to_stdout: bool = False,
) -> None:
    """``syslog_to``: (ident, facility) to copy every event to the system log as well. Without ``logfile`` the
    events go to standard error, or with ``to_stdout`` to standard output (a node: Redis's ``logfile ""``)."""
    global _stream
    level = LEVELS.get(loglevel, logging.INFO)
    if logfile:
        _stream = open(logfile, "a", buffering=1, encoding="utf-8")
        stream: TextIO = _stream
    else:
        stream = sys.stdout if to_stdout else sys.stderr
    renderer: Any
    if not logfile and stream.isatty():
        renderer = structlog.dev.ConsoleRenderer(colors=True)
    else:
        renderer = structlog.processors.JSONRenderer()
    to_syslog: list[Any] = []
    if syslog_to is not None:
        open_syslog(*syslog_to)
        to_syslog.append(_to_syslog)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *to_syslog,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=_Lossy(stream)),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(role=role, pid=os.getpid())
