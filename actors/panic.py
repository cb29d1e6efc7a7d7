"""Redis's ``serverPanic`` for the cases where Redis 7.0 panics on purpose: ``propagation-error-behavior`` set to
``panic`` (or ``panic-on-replicas``) and a command from the master, or read from the AOF, that fails. The node
logs Redis's lines and aborts (SIGABRT, as Redis's abort()), rather than go on serving a dataset that has come
apart from its master's or its file's: the operator asked for that trade.
"""

from __future__ import annotations

import os
from typing import NoReturn

import structlog

log = structlog.get_logger("redactor.node")


def panic(reason: str) -> NoReturn:
    """Log ``reason`` as Redis's panic report does ("Guru Meditation: ...") and abort the process."""
    log.error("panic", message="------------------------------------------------")
    log.error("panic", message="!!! Software Failure. Press left mouse button to continue")
    log.error("panic", reason=reason, message=f"Guru Meditation: {reason}")
    os.abort()
