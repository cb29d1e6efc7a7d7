"""The node's structured event log: ``log = get_logger("redactor.node"); log.info("node_started", port=7001)``.

Events are snake_case past tense with key-values. One line per event: JSON (``{"port": 7001, "event":
"node_started", "role": "node", "pid": 123, "level": "info", "timestamp": "2026-12-03T18:00:00.123456Z"}``) off
a terminal and always in a logfile, ``timestamp [level] event key=value ...`` on a terminal. Exceptions
(``log.exception``, ``exc_info=``) add their formatted traceback under ``exception``.

This replaces structlog, whose import (its dev, stdlib, testing, twisted, greenlet and traceback renderers) was
a sizeable part of every node's start-up; the lines keep structlog's JSONRenderer format, key names and order.
``configure`` (launcher/logs.py) sets the level, the stream and the fields every line carries; until it runs,
everything is printed to stdout, as structlog's default did.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

# Level numbers as the stdlib logging module's (redis.conf loglevel maps onto them in launcher/logs.py).
DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
CRITICAL = 50


class _Settings:
    """What every logger writes through: set by ``configure``; one shared instance, read on every event."""

    __slots__ = ("level", "stream", "json", "context", "lock")

    def __init__(self) -> None:
        self.level = DEBUG
        self.stream: TextIO | None = None  # None: sys.stdout at the time of the event
        self.json = False
        self.context: dict[str, Any] = {}
        # One line per write() call under the lock: the loop thread and the actor threads log concurrently.
        self.lock = threading.Lock()


_settings = _Settings()


def configure(level: int, stream: TextIO, as_json: bool, **context: Any) -> None:
    """Log events at ``level`` and above to ``stream`` (JSON lines or console text), each with ``context``."""
    _settings.level = level
    _settings.stream = stream
    _settings.json = as_json
    _settings.context = dict(context)


def _timestamp() -> str:
    now = time.time()
    seconds = int(now)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((now - seconds) * 1e6):06d}Z"


def _json_fallback(value: Any) -> str:
    return repr(value)


def _render_json(fields: dict[str, Any]) -> str:
    import json  # first event only: json is not needed before a line is written

    return json.dumps(fields, default=_json_fallback)


def _render_console(fields: dict[str, Any]) -> str:
    head = f"{fields.pop('timestamp')} [{fields.pop('level'):<9}] {fields.pop('event')}"
    exception = fields.pop("exception", None)
    line = " ".join([head, *(f"{key}={value!r}" for key, value in fields.items())])
    return f"{line}\n{exception}" if exception else line


def _format_exception(exc_info: Any) -> str:
    import traceback

    if not isinstance(exc_info, tuple):
        exc_info = sys.exc_info() if exc_info is True or not isinstance(exc_info, BaseException) else exc_info
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    return "".join(traceback.format_exception(*exc_info)).rstrip("\n")


class Logger:
    """A named event logger. Methods take the event name and key-values; nothing is returned."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _emit(self, level: int, level_name: str, event: str, fields: dict[str, Any]) -> None:
        settings = _settings
        if level < settings.level:
            return
        exc_info = fields.pop("exc_info", None)
        fields["event"] = event
        for key, value in settings.context.items():
            fields.setdefault(key, value)
        fields["level"] = level_name
        fields["timestamp"] = _timestamp()
        if exc_info:
            fields["exception"] = _format_exception(exc_info)
        line = _render_json(fields) if settings.json else _render_console(fields)
        stream = settings.stream or sys.stdout
        with settings.lock:
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):  # a closed or full log stream must not fail the caller
                pass

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(DEBUG, "debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(INFO, "info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(WARNING, "warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(ERROR, "error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        fields.setdefault("exc_info", True)
        self._emit(ERROR, "error", event, fields)


def get_logger(name: str) -> Logger:
    return Logger(name)
