"""The sentinel process as an actor system: three pykka actors under the node's ``Supervisor``
(actors/supervision), which restarts one that dies.

    config-writer  ConfigWriterActor: owns sentinel.conf's rewrites (the atomic temp/fsync/rename/dir-fsync)
    monitor        MonitorActor: owns the ``Monitor`` (every master, its replicas and sentinels, the links, the
                   timer, failovers, the script queue) on an asyncio loop thread of its own
    listener       ListenerActor: owns the RESP listener (``SentinelServer``) on an asyncio loop thread of its own

Why a loop thread per actor: a pykka actor handles one message at a time, while the monitor keeps dozens of
links and timers in flight and the listener serves many clients; each actor therefore owns an asyncio loop
(its engine), started in ``on_start`` and stopped in ``on_stop``/``on_failure``, so that the actor's death
takes its part down with it and the supervisor's restart builds a fresh one. The hot behaviour is the loop
code of before, unchanged: only the listener's calls into the monitor (SENTINEL, INFO, ROLE, hello PUBLISH)
and the monitor's events to subscribers now cross a thread (``call_soon_threadsafe``, no pykka ask).

What a restart keeps: the monitor's state is rebuilt from sentinel.conf (myid, epochs, votes, masters and
their settings, known replicas and sentinels), exactly what Redis Sentinel itself resumes from after a
restart; runtime state (links, SDOWN/ODOWN, a failover in progress) is re-learnt by monitoring. A listener
restart drops its clients (they reconnect, as after a sentinel restart). The config writer has no state.

Threads: the supervisor runs on the process's main thread (``run``), fed by a queue, as the node's runs on
its loop thread; the actors' hooks run in their pykka threads; ``write_config`` runs on the monitor's loop
thread and waits for the writer (a vote must be durable before it is answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import pykka

from actors.files import write_bytes_atomically
from actors.sentinel.config import SentinelConfig, load, render
from actors.sentinel.monitor import Monitor
from actors.supervision.supervisor import (
    ChildSpec,
    ChildStartError,
    Strategy,
    SupervisedActor,
    Supervisor,
    SupervisorError,
)

if TYPE_CHECKING:
    from actors.sentinel.server import SentinelServer

# How long an engine may take to start or stop its part (bind, connect nothing: it is quick).
ENGINE_TIMEOUT_S = 5.0
# How long a config rewrite waits for the writer before writing itself (durability first).
WRITE_TIMEOUT_S = 5.0
# The supervisor's safety-net sweep period (deaths are normally reported at once).
SWEEP_PERIOD_S = 0.1

LogSink = Callable[[str, str], None]


class LoopThread:
    """An asyncio loop on a thread of its own: the engine one actor owns."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, Any], timeout_s: float = ENGINE_TIMEOUT_S) -> Any:
        """Run ``coro`` on the loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        # Tasks still pending (a link's reader) end first: destroyed with the loop closed, their cleanup would
        # fail ("Event loop is closed") and print a traceback into the sentinel's log at every shutdown.
        with contextlib.suppress(Exception):
            self.run(_cancel_tasks())
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(ENGINE_TIMEOUT_S)
        if not self.thread.is_alive():
            self.loop.close()


async def _cancel_tasks() -> None:
    """Cancel every other task of the running loop and wait for them to end."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class WriteConfig:
    """Ask the config writer to replace ``path`` with ``content`` atomically."""

    __slots__ = ("content", "path")

    def __init__(self, path: str, content: bytes) -> None:
        self.path = path
        self.content = content


class ConfigWriterActor(SupervisedActor):
    """Owns sentinel.conf's rewrites. An OSError goes back to the asker (pykka: an ask does not kill)."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, WriteConfig):
            write_bytes_atomically(message.path, message.content)
            return True
        return None


class EngineActor(SupervisedActor):
    """An actor owning a ``LoopThread``: its part is torn down *before* the supervisor learns of its death.

    pykka marks an actor dead (and ``SupervisedActor`` wakes the supervisor) before ``on_failure`` runs, so a
    restart could overlap the old incarnation's teardown: a new listener binding the port the old one still
    holds. ``_handle_failure`` (pykka's choke point, as in supervised.py) runs ``_end`` first.
    """

    def _end(self) -> None:
        raise NotImplementedError

    def _handle_failure(self, *exc_info: Any) -> None:
        with contextlib.suppress(Exception):
            self._end()
        super()._handle_failure(*exc_info)

    def on_stop(self) -> None:
        self._end()

    def on_failure(self, *exc_info: Any) -> None:
        self._end()  # already done by _handle_failure: a no-op


class MonitorActor(EngineActor):
    """Owns the Monitor and its loop; a new incarnation resumes from sentinel.conf."""

    def __init__(self, system: SentinelSystem) -> None:
        super().__init__()
        self.system = system
        self.engine: LoopThread | None = None
        self.monitor: Monitor | None = None

    def on_start(self) -> None:
        try:
            first, config = self.system.next_config()
            self.engine = LoopThread("sentinel-monitor")
            system = self.system
            self.monitor = Monitor(config, system.publish, system.log, system.write_config)
            self.engine.run(self._begin(self.monitor, first))
            system.monitor_up(self.monitor, self.engine.loop)
        except BaseException:
            self._end()  # pykka calls no on_failure for on_start: the engine must not outlive the actor
            raise

    async def _begin(self, monitor: Monitor, first: bool) -> None:
        if first:
            for master in monitor.state.masters.values():
                monitor.event("#", "+monitor", master, f"quorum {master.quorum}")
        else:
            monitor.log(
                "#", f"Sentinel monitor restarted from {monitor.config.path} (ID {monitor.state.myid})"
            )
        monitor.start()

    def _end(self) -> None:
        monitor, engine = self.monitor, self.engine
        self.monitor = self.engine = None
        if monitor is not None:
            self.system.monitor_down(monitor)
        if engine is not None:
            if monitor is not None:
                with contextlib.suppress(Exception):
                    engine.run(monitor.stop())
            engine.close()


class ListenerActor(EngineActor):
    """Owns the RESP listener and its loop."""

    def __init__(self, system: SentinelSystem) -> None:
        super().__init__()
        self.system = system
        self.engine: LoopThread | None = None
        self.server: SentinelServer | None = None

    def on_start(self) -> None:
        from actors.sentinel.server import SentinelServer  # server.py imports this module for its types

        try:
            config = self.system.settings
            self.engine = LoopThread("sentinel-listener")
            self.server = SentinelServer(self.system, config)
            self.engine.run(self.server.start())
            self.system.listener_up(self.server, self.engine.loop)
        except BaseException:
            self._end()
            raise

    def _end(self) -> None:
        server, engine = self.server, self.engine
        self.server = self.engine = None
        if server is not None:
            self.system.listener_down(server)
        if engine is not None:
            if server is not None:
                with contextlib.suppress(Exception):
                    engine.run(server.stop())
            engine.close()


class SentinelSystem:
    """Wires the actors under a supervisor, and is what they reach each other through (any thread)."""

    def __init__(
        self,
        config: SentinelConfig,
        overrides: list[list[str]],
        log: LogSink,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.settings = config  # the first load: the listener's bind, port and password, the debug switch
        self.overrides = overrides
        self.log = log
        self.on_ready = (
            on_ready  # once every actor runs (the listener accepts): `supervised` tells the manager
        )
        self._first_config: SentinelConfig | None = config
        self._monitor: tuple[Monitor, asyncio.AbstractEventLoop] | None = None
        self._listener: tuple[SentinelServer, asyncio.AbstractEventLoop] | None = None
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self.gave_up = ""
        self.supervisor = Supervisor(
            [
                ChildSpec("config-writer", ConfigWriterActor.start),
                ChildSpec("monitor", lambda: MonitorActor.start(self)),
                ChildSpec("listener", lambda: ListenerActor.start(self)),
            ],
            strategy=Strategy.ONE_FOR_ONE,
            max_restarts=config.supervisor_max_restarts,
            restart_window_s=float(config.supervisor_restart_window_s),
            schedule=self._calls.put,
            on_give_up=self._on_give_up,
        )

    # -- the supervisor's thread ---------------------------------------------------------------------------

    def run(self) -> int:
        """Start the actors, supervise them until SHUTDOWN, SIGTERM or SIGINT, stop them. The exit status."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.request_shutdown())
        try:
            self.supervisor.start()
        except ChildStartError as exc:
            self.log("#", f"Could not start the sentinel: {exc}")
            return 1
        if self.on_ready is not None:
            self.on_ready()
        while not self._stop.is_set():
            try:
                self._calls.get(timeout=SWEEP_PERIOD_S)()
            except queue.Empty:
                self.supervisor.sweep()
        if self.gave_up:
            self.log("#", f"Sentinel supervisor gave up: {self.gave_up}")
            return 1
        self.log("#", "User requested shutdown...")
        self.call_monitor_blocking(lambda monitor: monitor.flush_config())
        self.supervisor.stop()
        self.log("#", "Sentinel is now ready to exit, bye bye...")
        return 0

    def request_shutdown(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self._calls.put(lambda: None)  # wake the supervisor's thread

    def _on_give_up(self, reason: str) -> None:
        self.gave_up = reason
        self._stop.set()

    def crash(self, name: str) -> None:
        """DEBUG CRASH-ACTOR: make the named actor raise in its own thread (fault injection)."""
        try:
            self.supervisor.crash(name)
        except SupervisorError as exc:
            raise ValueError(str(exc)) from None

    # -- what the actors reach each other through -----------------------------------------------------------

    def next_config(self) -> tuple[bool, SentinelConfig]:
        """The monitor's configuration: the one loaded at start, then on every restart sentinel.conf again."""
        first, self._first_config = self._first_config, None
        if first is not None:
            return True, first
        return False, load(self.settings.path, self.overrides)

    def monitor_up(self, monitor: Monitor, loop: asyncio.AbstractEventLoop) -> None:
        self._monitor = (monitor, loop)

    def monitor_down(self, monitor: Monitor) -> None:
        current = self._monitor
        if current is not None and current[0] is monitor:
            self._monitor = None

    def current_monitor(self) -> tuple[Monitor, asyncio.AbstractEventLoop] | None:
        return self._monitor

    def listener_up(self, server: SentinelServer, loop: asyncio.AbstractEventLoop) -> None:
        self._listener = (server, loop)

    def listener_down(self, server: SentinelServer) -> None:
        current = self._listener
        if current is not None and current[0] is server:
            self._listener = None

    def publish(self, channel: str, message: str) -> None:
        """The monitor's events to the listener's subscribers (monitor's thread; dropped while it restarts)."""
        target = self._listener
        if target is not None:
            server, loop = target
            with contextlib.suppress(RuntimeError):  # its loop closed under us: it is restarting
                loop.call_soon_threadsafe(server.publish, channel, message)

    def write_config(self, config: SentinelConfig) -> None:
        """Rewrite sentinel.conf through the writer; render here, where the state is consistent. Raises
        OSError. If the writer is dead or stuck, write directly: a vote cannot wait for a restart."""
        try:
            with open(config.path, encoding="utf-8", errors="surrogateescape") as fh:
                old = fh.read()
        except FileNotFoundError:
            old = ""
        # The users are the listener's (``settings.acl``, changed by ACL SETUSER), not the reloaded file's.
        acl = self.settings.acl
        data = render(config, old, acl.lines if acl is not None else None).encode("utf-8", "surrogateescape")
        ref = self.supervisor.ref("config-writer")
        if ref is not None:
            try:
                ref.ask(WriteConfig(config.path, data), timeout=WRITE_TIMEOUT_S)
                return
            except (pykka.ActorDeadError, pykka.Timeout) as exc:
                self.log(
                    "#", f"config writer unavailable ({type(exc).__name__}): writing sentinel.conf directly"
                )
        write_bytes_atomically(config.path, data)

    def call_monitor_blocking(self, fn: Callable[[Monitor], Any]) -> Any:
        """Run ``fn(monitor)`` on the monitor's loop and wait (None if no monitor runs)."""
        target = self._monitor
        if target is None:
            return None
        monitor, loop = target

        async def call() -> Any:
            return fn(monitor)

        with contextlib.suppress(Exception):
            return asyncio.run_coroutine_threadsafe(call(), loop).result(ENGINE_TIMEOUT_S)
        return None
