"""Logging setup: actors/eventlog.py's event log, human-readable on a terminal, JSON lines otherwise (and always
in a logfile).

Events are snake_case past tense with key-values: ``log.info("node_started", port=7001, pid=123)``.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from actors import eventlog

# redis.conf loglevel -> event log level
LEVELS = {
    "debug": eventlog.DEBUG,
    "verbose": eventlog.DEBUG,
    "notice": eventlog.INFO,
    "warning": eventlog.WARNING,
    "nothing": eventlog.CRITICAL + 10,
}

_stream: TextIO | None = None


def configure_logging(loglevel: str = "notice", logfile: str = "", role: str = "node") -> None:
    global _stream
    level = LEVELS.get(loglevel, eventlog.INFO)
    if logfile:
        _stream = open(logfile, "a", buffering=1, encoding="utf-8")
        stream: TextIO = _stream
    else:
        stream = sys.stderr
    as_json = bool(logfile) or not stream.isatty()
    eventlog.configure(level, stream, as_json, role=role, pid=os.getpid())
