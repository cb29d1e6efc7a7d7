"""The node's supervisor: starts the node's pykka actors in order, restarts the ones that die, gives up past an
intensity limit, and stops them in reverse.

Erlang/OTP's model, cut to what a node needs:

    child spec      (name, factory, restart policy): the factory returns a started pykka ActorRef
    restart policy  permanent: always restarted; transient: restarted only after a failure (an exception);
                    temporary: never restarted
    strategy        one_for_one: only the dead child restarts; rest_for_one: the children started after it
                    are stopped (in reverse) and restarted with it, for children that depend on earlier ones
    intensity       more than ``supervisor-max-restarts`` restarts within ``supervisor-restart-window-seconds``
                    and the supervisor gives up: it stops every child and tells the node, which exits non-zero
                    so that the launcher restarts the whole process (which recovers from disk)

Why a plain object on the master actor's loop thread rather than a pykka actor of its own:

- It must outlive what it supervises. A supervisor actor could itself die in its thread; the loop thread *is*
  the node (if it dies the process is useless anyway), so nothing is left unwatched.
- Giving up must stop the node (``MasterActor.stop``, loop thread only), and ``INFO actors`` and ``DEBUG
  CRASH-ACTOR`` run on the loop thread: with the supervisor there, they read and act without locks or asks.
- The loop's cron already runs ``hz`` times a second, so the ``is_alive()`` sweep costs nothing extra.

How deaths are noticed (pykka's rules): an exception in a ``tell`` handler stops the actor and calls
``on_failure``; one in ``on_start`` stops it *without* ``on_failure``. Actors deriving from ``SupervisedActor``
(supervised.py, the low floor every actor builds on) report every failure with its cause from pykka's failure
hook (which runs for both) and wake the supervisor through ``schedule`` (``MasterActor.call_threadsafe``), so
a restart follows at once. The sweep of ``is_alive()`` on every cron tick is the safety net: it catches actors
that report nothing (a plain pykka actor, an actor that stopped itself). A death with no reported exception
counts as a normal exit.

Threads: everything here runs on the loop thread except ``SupervisedActor``'s hooks (actor threads) and
``_Link`` (called from actor threads; it only touches a lock-protected dict and ``schedule``).
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

import pykka
import structlog
from pykka.messages import ProxyGetAttr

from actors.server.ports import SupervisorError as SupervisorError  # raised by crash(); commands catch it
from actors.supervision.supervised import Crash as Crash
from actors.supervision.supervised import CrashRequested as CrashRequested
from actors.supervision.supervised import SupervisedActor as SupervisedActor  # re-exported for the actors
from actors.supervision.supervised import building, describe_exception

if TYPE_CHECKING:
    from actors.loop.master import MasterActor
    from actors.server.server import Server

log = structlog.get_logger("redactor.supervisor")

# How long start() waits for a child's on_start to finish before moving on: long enough for sockets to bind,
# short enough that a slow on_start cannot hold the node's start-up (the sweep still watches it afterwards).
START_CONFIRM_TIMEOUT_S = 5.0
# How long stopping one child may take before the supervisor moves on to the next.
STOP_TIMEOUT_S = 5.0
# Longest failure reason kept for INFO; the full one is in the log.
REASON_MAX_CHARS = 120
# Reasons reported by actors that are not (or no longer) children are dropped past this many.
STALE_REASONS_MAX = 64
_UNSAFE_INFO_CHARS = re.compile(r"[^A-Za-z0-9_.:/\-]+")


class RestartPolicy(Enum):
    PERMANENT = "permanent"  # restarted whenever it ends
    TRANSIENT = "transient"  # restarted only when it ends with an exception
    TEMPORARY = "temporary"  # never restarted


class Strategy(Enum):
    ONE_FOR_ONE = "one_for_one"  # only the child that died is restarted
    REST_FOR_ONE = "rest_for_one"  # the children started after it are stopped and restarted with it


class ChildState(Enum):
    STOPPED = "stopped"  # not started yet, or stopped by the supervisor (node stopping, rest_for_one)
    RUNNING = "running"  # should be up: started, and restarted whenever it is found dead
    RESTARTING = "restarting"  # its factory raised: the next sweep counts that as a failure and tries again
    EXITED = "exited"  # ended, and its restart policy says to leave it down


class SupervisorState(Enum):
    IDLE = "idle"  # built; no child started yet
    RUNNING = "running"  # children started; deaths are noticed and restarted
    STOPPED = "stopped"  # stop() ran: every child was stopped in reverse order
    GAVE_UP = "gave_up"  # the restart intensity was exceeded: children stopped, the node is exiting


class ChildStartError(Exception):
    """A child failed while the supervisor started the node's children: the node cannot start."""


class ChildSpec(NamedTuple):
    name: str
    # Returns a started pykka ActorRef; called again (with no arguments) for every restart.
    factory: Callable[[], Any]
    restart: RestartPolicy = RestartPolicy.PERMANENT


ChildSpecLike = ChildSpec | tuple[str, Callable[[], Any]] | tuple[str, Callable[[], Any], RestartPolicy | str]


def as_child_spec(spec: ChildSpecLike) -> ChildSpec:
    """Accept ``ChildSpec`` or the ``(name, factory[, policy])`` tuples ``Node.child_specs()`` returns."""
    if isinstance(spec, ChildSpec):
        return spec
    if len(spec) == 2:
        return ChildSpec(spec[0], spec[1])
    name, factory, policy = spec
    return ChildSpec(name, factory, policy if isinstance(policy, RestartPolicy) else RestartPolicy(policy))


def info_safe(text: str) -> str:
    """A value that fits an INFO line's ``k=v,k=v`` list: no spaces, commas or equals signs."""
    cleaned = _UNSAFE_INFO_CHARS.sub("_", text.replace(": ", ":")).strip("_")[:REASON_MAX_CHARS]
    return cleaned or "-"


# -- what an actor holds of its supervisor (a SupervisionLink) -----------------------------------------------


class _Link:
    """What an actor holds of its supervisor: a way to report its death (called from the actor's thread)."""

    __slots__ = ("supervisor",)

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def record_failure(self, actor_urn: str, reason: str) -> None:
        self.supervisor._record_reason(actor_urn, reason)

    def wake(self) -> None:
        self.supervisor.notify()


# -- the supervisor ----------------------------------------------------------------------------------------


class Child:
    """One supervised actor and its history (loop thread)."""

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.ref: Any = None  # pykka.ActorRef of the current incarnation; None while none exists
        self.state = ChildState.STOPPED
        self.restarts = 0  # incarnations after the first (INFO actors)
        self.last_failure = ""  # reason of the latest failure, as logged
        self.started_at_s = 0.0  # monotonic time of the latest start

    @property
    def name(self) -> str:
        return self.spec.name

    def alive(self) -> bool:
        return self.ref is not None and bool(self.ref.is_alive())


class Supervisor:
    """Starts, watches, restarts and stops the node's actors. Loop thread, except ``notify``.

    Args:
        specs: the children in start order.
        strategy: what else restarts when a child dies.
        max_restarts, restart_window_s: the intensity limit (OTP's MaxR and MaxT).
        schedule: runs a callable on the supervisor's thread (``MasterActor.call_threadsafe``); None runs it
            at once (single-threaded tests).
        on_give_up: called (supervisor's thread) with the reason once the limit was exceeded and every child
            stopped.
        clock: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        specs: Iterable[ChildSpecLike],
        *,
        strategy: Strategy | str = Strategy.ONE_FOR_ONE,
        max_restarts: int = 5,
        restart_window_s: float = 60.0,
        schedule: Callable[[Callable[[], None]], None] | None = None,
        on_give_up: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.children = [Child(as_child_spec(spec)) for spec in specs]
        names = [c.name for c in self.children]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate child names: {names}")
        self.strategy = strategy if isinstance(strategy, Strategy) else Strategy(strategy)
        self.max_restarts = max_restarts
        self.restart_window_s = restart_window_s
        self.state = SupervisorState.IDLE
        self._schedule = schedule
        self._on_give_up = on_give_up
        self._clock = clock
        # Monotonic times of the restarts (one per failure) still inside the window: the intensity.
        self._restart_times: deque[float] = deque()
        # Failure reasons by actor URN, written by actor threads, read by the sweep.
        self._reasons: dict[str, str] = {}
        self._lock = threading.Lock()
        self._sweep_scheduled = False

    # -- wiring into a node ----------------------------------------------------------------------------

    def install(self, server: Server, master: MasterActor) -> None:
        """Make the supervisor reachable: ``server.supervisor`` (DEBUG CRASH-ACTOR, actors/commands/debug.py),
        ``INFO actors``, the cron sweep, and live ``CONFIG SET supervisor-*`` (loop thread)."""
        config = server.config
        self.max_restarts = int(config["supervisor-max-restarts"])
        self.restart_window_s = float(config["supervisor-restart-window-seconds"])
        config.on_change("supervisor-max-restarts", lambda value: setattr(self, "max_restarts", int(value)))
        config.on_change(
            "supervisor-restart-window-seconds", lambda value: setattr(self, "restart_window_s", float(value))
        )
        server.supervisor = self
        server.info_sections["actors"] = self.info_lines
        master.cron_jobs.append(self.sweep)

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every child in order and wait (bounded) for each one's on_start.

        Raises ``ChildStartError`` if a child fails to start, after stopping those already started.
        """
        self.state = SupervisorState.RUNNING
        for child in self.children:
            error = self._start_child(child)
            if error is None:
                error = self._confirm_started(child)
            if error is not None:
                log.error("actor_start_failed", name=child.name, reason=error)
                self.stop()
                raise ChildStartError(f"actor {child.name} failed to start: {error}")
            log.info("actor_started", name=child.name, restart=child.spec.restart.value)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop every child in reverse start order. Idempotent."""
        if self.state is SupervisorState.RUNNING:
            self.state = SupervisorState.STOPPED
        for child in reversed(self.children):
            self._stop_child(child, timeout_s)

    def notify(self) -> None:
        """Any thread: something died; sweep soon on the supervisor's thread."""
        if self._schedule is None:
            self.sweep()
            return
        with self._lock:
            if self._sweep_scheduled:
                return
            self._sweep_scheduled = True
        self._schedule(self._scheduled_sweep)

    def _scheduled_sweep(self) -> None:
        with self._lock:
            self._sweep_scheduled = False
        self.sweep()

    def sweep(self) -> None:
        """Find dead children and restart them as their policy and the strategy say (cron, and on reports)."""
        if self.state is not SupervisorState.RUNNING:
            return
        for index, child in enumerate(self.children):
            if self.state is not SupervisorState.RUNNING:
                return  # gave up while handling an earlier child
            if child.state is ChildState.RESTARTING:
                self._child_ended(index, child.last_failure or "restart failed", failed=True)
            elif child.state is ChildState.RUNNING and not child.alive():
                urn = child.ref.actor_urn if child.ref is not None else ""
                with self._lock:
                    reason = self._reasons.pop(urn, None)
                self._child_ended(index, reason or "exited", failed=reason is not None)

    # -- fault injection -------------------------------------------------------------------------------

    def crash(self, name: str) -> None:
        """Make the named actor raise in its own thread (it is then restarted like any failure)."""
        child = self.child(name)
        if child is None:
            raise SupervisorError(f"no such actor '{name}'; actors: {', '.join(self.names())}")
        if not child.alive():
            raise SupervisorError(f"actor '{name}' is not running")
        if not issubclass(child.ref.actor_class, SupervisedActor):
            raise SupervisorError(
                f"actor '{name}' cannot be crashed: it does not derive from SupervisedActor"
            )
        child.ref.tell(Crash())

    # -- queries ---------------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return [c.name for c in self.children]

    def child(self, name: str) -> Child | None:
        for child in self.children:
            if child.name == name:
                return child
        return None

    def ref(self, name: str) -> Any:
        """The named child's current ActorRef (None while it has none): refs change on every restart."""
        child = self.child(name)
        return child.ref if child is not None else None

    def info_lines(self) -> list[tuple[str, Any]]:
        """INFO actors: the supervisor's settings, then one line per actor."""
        self._prune_restart_times(self._clock())
        lines: list[tuple[str, Any]] = [
            ("supervisor_state", self.state.value),
            ("supervisor_strategy", self.strategy.value),
            ("supervisor_max_restarts", self.max_restarts),
            ("supervisor_restart_window_seconds", f"{self.restart_window_s:g}"),
            ("supervisor_restarts_in_window", len(self._restart_times)),
        ]
        for child in self.children:
            state = child.state.value
            if child.state is ChildState.RUNNING and not child.alive():
                state = "dead"  # died; the sweep has not restarted it yet
            lines.append(
                (
                    info_safe(child.name),
                    f"state={state},restarts={child.restarts},last_failure={info_safe(child.last_failure)}",
                )
            )
        return lines

    # -- internals -------------------------------------------------------------------------------------

    def _record_reason(self, actor_urn: str, reason: str) -> None:
        with self._lock:
            if len(self._reasons) >= STALE_REASONS_MAX:
                self._reasons.clear()  # reasons of actors no sweep will ask about
            self._reasons.setdefault(actor_urn, reason)

    def _start_child(self, child: Child) -> str | None:
        """Build a new incarnation (its on_start runs in its own thread). Returns an error, or None."""
        building.link, building.name = _Link(self), child.name
        try:
            ref = child.spec.factory()
        except Exception as exc:
            child.ref = None
            child.state = ChildState.RESTARTING
            child.last_failure = describe_exception(exc)
            log.error("actor_factory_failed", name=child.name, reason=child.last_failure, exc_info=True)
            return child.last_failure
        finally:
            del building.link, building.name
        child.ref = ref
        child.state = ChildState.RUNNING
        child.started_at_s = self._clock()
        return None

    def _confirm_started(self, child: Child) -> str | None:
        """Wait until the child handled a first message (its on_start is over). Returns an error, or None."""
        ref = child.ref
        deadline = time.monotonic() + START_CONFIRM_TIMEOUT_S
        try:
            future = ref.ask(ProxyGetAttr(attr_path=("actor_urn",)), block=False)
            while True:
                try:
                    future.get(timeout=0.05)
                    return None
                except pykka.Timeout:
                    if not ref.is_alive():
                        break
                    if time.monotonic() > deadline:
                        log.warning("actor_start_slow", name=child.name, waited_s=START_CONFIRM_TIMEOUT_S)
                        return None
        except pykka.ActorDeadError:
            pass
        with self._lock:
            reason = self._reasons.pop(ref.actor_urn, None)
        child.last_failure = reason or "stopped during on_start"
        child.state = ChildState.STOPPED
        return child.last_failure

    def _stop_child(self, child: Child, timeout_s: float = STOP_TIMEOUT_S) -> None:
        ref = child.ref
        if child.state in (ChildState.RUNNING, ChildState.RESTARTING):
            child.state = ChildState.STOPPED
        if ref is None:
            return
        child.ref = None
        with self._lock:
            self._reasons.pop(ref.actor_urn, None)
        if not ref.is_alive():
            return
        try:
            ref.stop(block=True, timeout=timeout_s)
        except pykka.Timeout:
            log.warning("actor_stop_timed_out", name=child.name, timeout_s=timeout_s)
        except pykka.ActorDeadError:
            pass  # it died on its own meanwhile

    def _prune_restart_times(self, now_s: float) -> None:
        while self._restart_times and now_s - self._restart_times[0] > self.restart_window_s:
            self._restart_times.popleft()

    def _child_ended(self, index: int, reason: str, failed: bool) -> None:
        child = self.children[index]
        if failed:
            child.last_failure = reason
        policy = child.spec.restart
        if policy is RestartPolicy.TEMPORARY or (policy is RestartPolicy.TRANSIENT and not failed):
            child.state = ChildState.EXITED
            child.ref = None
            log.warning("actor_exited", name=child.name, reason=reason, restart=policy.value)
            return
        now_s = self._clock()
        self._prune_restart_times(now_s)
        if len(self._restart_times) >= self.max_restarts:
            self._give_up(
                f"actor {child.name} ended ({reason}) after {len(self._restart_times)} restarts in "
                f"{self.restart_window_s:g}s (supervisor-max-restarts {self.max_restarts})"
            )
            return
        self._restart_times.append(now_s)
        affected = [index]
        if self.strategy is Strategy.REST_FOR_ONE:
            for later in range(index + 1, len(self.children)):
                if self.children[later].state in (ChildState.RUNNING, ChildState.RESTARTING):
                    affected.append(later)
            for later in reversed(affected[1:]):
                self._stop_child(self.children[later])
        for position in affected:
            sibling = self.children[position]
            if position != index and sibling.spec.restart is RestartPolicy.TEMPORARY:
                sibling.state = ChildState.EXITED
                continue
            cause = reason if position == index else f"rest_for_one after {child.name}"
            sibling.restarts += 1
            error = self._start_child(sibling)
            if error is None:
                log.warning(
                    "actor_restarted",
                    name=sibling.name,
                    reason=cause,
                    restarts=sibling.restarts,
                    restarts_in_window=len(self._restart_times),
                    strategy=self.strategy.value,
                )
            else:
                log.error("actor_restart_failed", name=sibling.name, reason=error, restarts=sibling.restarts)

    def _give_up(self, reason: str) -> None:
        self.state = SupervisorState.GAVE_UP
        log.error(
            "supervisor_gave_up",
            reason=reason,
            max_restarts=self.max_restarts,
            restart_window_s=self.restart_window_s,
        )
        for child in reversed(self.children):
            self._stop_child(child)
        if self._on_give_up is not None:
            self._on_give_up(reason)
