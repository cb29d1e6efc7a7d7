"""``supervised``: telling the service manager that started the node when it is ready, as Redis does.

- ``systemd`` (a unit with ``Type=notify``): ``READY=1`` and a ``STATUS=`` line go to the datagram socket named by
  ``$NOTIFY_SOCKET`` once the dataset is loaded, and ``STOPPING=1`` when the node begins to shut down.
- ``upstart`` (a job with ``expect stop``): the node stops itself with SIGSTOP once ready; upstart continues it.
- ``auto``: upstart if ``$UPSTART_JOB`` is set, else systemd if ``$NOTIFY_SOCKET`` is, else neither.
- ``no``: nothing.

A mode asked for without its variable logs Redis's warning and does nothing. What this sends is one datagram
per state change: never anything the node waits on.
"""

from __future__ import annotations

import os
import signal
import socket

import structlog

log = structlog.get_logger("redactor.node")


def resolve(mode: str) -> str:
    """The mode in effect for the ``supervised`` directive's value: "systemd", "upstart" or "no"."""
    if mode == "auto":
        if "UPSTART_JOB" in os.environ:
            return "upstart"
        if "NOTIFY_SOCKET" in os.environ:
            return "systemd"
        return "no"
    if mode == "systemd" and "NOTIFY_SOCKET" not in os.environ:
        log.warning(
            "supervised_unavailable", reason="systemd supervision requested, but NOTIFY_SOCKET not found"
        )
        return "no"
    if mode == "upstart" and "UPSTART_JOB" not in os.environ:
        log.warning(
            "supervised_unavailable", reason="upstart supervision requested, but UPSTART_JOB not found"
        )
        return "no"
    return mode


def notify_systemd(message: str) -> bool:
    """Send ``message`` (``KEY=value`` lines) to ``$NOTIFY_SOCKET``; False (logged) if it cannot be sent."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), address)
    except OSError as exc:
        log.warning("systemd_notify_failed", reason=exc.strerror or str(exc))
        return False
    return True


def ready(mode: str, replica: bool) -> None:
    """The dataset is loaded and clients are served: tell the manager."""
    if mode == "systemd":
        status = (
            "Ready to accept connections in read-only mode. Waiting for MASTER <-> REPLICA sync"
            if replica
            else "Ready to accept connections"
        )
        if notify_systemd(f"STATUS={status}\nREADY=1\n"):
            log.info("systemd_notified", state="ready")
    elif mode == "upstart":
        log.info("upstart_notified", state="ready")
        os.environ.pop("UPSTART_JOB", None)  # (as Redis: a child it starts must not stop itself too)
        os.kill(os.getpid(), signal.SIGSTOP)


def stopping(mode: str) -> None:
    """The node begins to shut down."""
    if mode == "systemd":
        notify_systemd("STOPPING=1\n")
