"""Every actor's base: ``SupervisedActor`` reports its failures to whoever supervises it and obeys ``Crash``.

A low floor on purpose: the bus, persistence and replication actors derive from it, so it imports nothing of
the supervisor (which sits above them, in the node's wiring) and nothing of the server. What an actor knows of
its supervisor is a ``SupervisionLink``, handed over through ``building`` while the supervisor runs the
child's factory (see ``Supervisor._start_child``).

Threads: ``SupervisedActor``'s hooks run in the actor's own thread; a link only touches lock-protected state
and wakes the supervisor's thread.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Protocol

import pykka
import structlog

log = structlog.get_logger("redactor.supervisor")


class Crash:
    """Tell this to a ``SupervisedActor`` and it raises ``CrashRequested`` in its own thread (fault injection)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str = "DEBUG CRASH-ACTOR") -> None:
        self.reason = reason


class CrashRequested(RuntimeError):
    pass


def describe_exception(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class SupervisionLink(Protocol):
    """What an actor holds of its supervisor: a way to report its death (called from the actor's thread)."""

    def record_failure(self, actor_urn: str, reason: str) -> None: ...

    def wake(self) -> None: ...


# Set on the supervisor's thread while a child's factory runs (attributes ``link`` and ``name``), so the actor
# it builds (whose __init__ runs in that thread) learns whom to report to without every factory passing it.
building = threading.local()


class SupervisedActor(pykka.ThreadingActor):
    """Base for the node's actors: reports failures to the supervisor and obeys ``Crash``.

    Hooks pykka's two choke points rather than the public ``on_receive``/``on_failure``, because subclasses
    override those and could forget to call ``super()`` (pykka 4's internals: hence the ``pykka<5`` pin):

    - ``_handle_receive`` sees every message first, so ``Crash`` works whatever the subclass's ``on_receive``
      does with unknown messages (told, it raises in the actor's thread; pykka then calls ``on_failure``).
    - ``_handle_failure`` runs for every unhandled exception: in ``on_start`` (where pykka does not call
      ``on_failure``), in a ``tell`` handler (just before ``on_failure``) and in ``on_stop``.
    Both run in the actor's thread.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # None when built outside a supervisor (unit tests): failures are then only logged.
        self._supervision: SupervisionLink | None = getattr(building, "link", None)
        self.supervised_name: str = getattr(building, "name", type(self).__name__)

    def _handle_receive(self, message: Any) -> Any:
        if isinstance(message, Crash):
            raise CrashRequested(message.reason)
        return super()._handle_receive(message)

    def _handle_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        reason = describe_exception(exception_value)
        log.error(
            "actor_failed",
            actor=self.supervised_name,
            reason=reason,
            exc_info=(exception_type, exception_value, traceback) if exception_type else None,
        )
        link = self._supervision
        # The reason is recorded before pykka marks the actor stopped, so a sweep that finds it dead has it.
        if link is not None:
            link.record_failure(self.actor_urn, reason)
        super()._handle_failure(exception_type, exception_value, traceback)
        if link is not None:
            link.wake()
