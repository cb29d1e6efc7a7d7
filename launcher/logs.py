"""Logging: structlog, human-readable on a terminal, JSON lines otherwise (and always in a logfile).

Events are snake_case past tense with key-values: ``log.info("node_started", port=7001, pid=123)``.
"""

from __future__ import annotations

import logging
import os
import sys
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


def configure_logging(loglevel: str = "notice", logfile: str = "", role: str = "node") -> None:
    global _stream
    level = LEVELS.get(loglevel, logging.INFO)
    if logfile:
        _stream = open(logfile, "a", buffering=1, encoding="utf-8")
        stream: TextIO = _stream
    else:
        stream = sys.stderr
    renderer: Any
    if not logfile and stream.isatty():
        renderer = structlog.dev.ConsoleRenderer(colors=True)
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(role=role, pid=os.getpid())
