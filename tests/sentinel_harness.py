"""Sentinel processes for the tests: ours (``redactor sentinel``) or Redis's (``redis-server --sentinel``), a
topology of a master, replicas and sentinels, and an event recorder (PSUBSCRIBE * on every sentinel).

Every process started here is registered with tests.harness and stopped when the test ends.
"""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.harness import (
    PROBE_RETRY,
    PROBE_TIMEOUT_S,
    REPO,
    START_TIMEOUT_S,
    NodeProcess,
    WaitAbort,
    _live,
    free_port,
    wait_for,
)

MASTER_NAME = "mymaster"


class SentinelProcess:
    """A sentinel on a free port, its sentinel.conf in its own directory. ``real``: Redis's redis-sentinel."""

    def __init__(
        self, base_dir: Path, name: str, master_port: int, quorum: int = 2, real: bool = False,
        down_after_ms: int = 1000, failover_timeout_ms: int = 10000, extra: str = "", host: str = "127.0.0.1",
        prelude: str = "",
    ) -> None:  # fmt: skip
        """``host``: the master's address in the monitor line; ``prelude``: lines before it (redis-sentinel
        reads ``sentinel resolve-hostnames yes`` only for the lines after it)."""
        self.name = name
        self.real = real
        self.port = free_port()
        self.dir = base_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "sentinel.conf"
        self.log_path = self.dir / "sentinel.log"
        self.conf.write_text(
            f"port {self.port}\n{prelude}"
            f"sentinel monitor {MASTER_NAME} {host} {master_port} {quorum}\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} {failover_timeout_ms}\n" + extra
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self._clients: list[redis.Redis] = []

    def argv(self) -> list[str]:
        if self.real:
            return ["redis-server", str(self.conf), "--sentinel", "--logfile", str(self.log_path)]
        return [sys.executable, "-m", "launcher.main", "sentinel", str(self.conf)]

    def start(self, wait: bool = True) -> SentinelProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv(), stdout=log, stderr=subprocess.STDOUT, cwd=str(self.dir if self.real else REPO)
        )
        log.close()
        _live.add(self)  # type: ignore[arg-type]  # anything with stop() may be registered
        if wait:
            wait_for(self._ready, START_TIMEOUT_S, what=f"sentinel {self.name} on {self.port}")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise WaitAbort(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
        with redis.Redis(
            port=self.port,
            socket_timeout=PROBE_TIMEOUT_S,
            socket_connect_timeout=PROBE_TIMEOUT_S,
            retry=PROBE_RETRY,
        ) as r:
            return bool(r.ping())

    def client(self, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("socket_timeout", 10)
        r = redis.Redis(port=self.port, **kwargs)
        self._clients.append(r)
        return r

    def master(self) -> dict[str, Any]:
        raw = self.client(decode_responses=True).execute_command("SENTINEL", "MASTER", MASTER_NAME)
        return dict(zip(raw[::2], raw[1::2], strict=True)) if isinstance(raw, list) else dict(raw)

    def master_addr(self) -> tuple[str, int] | None:
        reply = self.client(decode_responses=True).execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME
        )
        return (reply[0], int(reply[1])) if reply else None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.alive():
            self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None and self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        self.terminate()
        self.finish_stop()

    def terminate(self) -> None:
        """The first half of ``stop``: close our clients and send SIGTERM, without waiting (stop_sentinels)."""
        for r in self._clients:
            r.close()
        self._clients.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process cannot exit
            self.proc.terminate()

    def finish_stop(self) -> None:
        """The second half of ``stop``: wait for the exit, SIGKILL if it does not come."""
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        _live.discard(self)


def stop_sentinels(sentinels: list[SentinelProcess]) -> None:
    """Stop several sentinels at once: SIGTERM to all, then wait for each (their shutdowns overlap)."""
    for s in sentinels:
        s.terminate()
    for s in sentinels:
        s.finish_stop()


@dataclass
class Event:
    at: float  # time.monotonic() when received
    sentinel: str
    channel: str
    data: str


@dataclass
class EventRecorder:
    """PSUBSCRIBE * on sentinels, each in a thread; ``events`` in arrival order."""

    events: list[Event] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, sentinel: SentinelProcess) -> None:
        pubsub = redis.Redis(port=sentinel.port, socket_timeout=10, decode_responses=True).pubsub()
        pubsub.psubscribe("*")
        wait_for(lambda: pubsub.get_message(timeout=0.1), 5, what="psubscribe confirmation")

        def run() -> None:
            while not self._stop.is_set():
                try:
                    message = pubsub.get_message(timeout=0.1)
                except (redis.ConnectionError, OSError):
                    return
                if message and message["type"] == "pmessage":
                    with self._lock:
                        self.events.append(
                            Event(time.monotonic(), sentinel.name, message["channel"], message["data"])
                        )
            pubsub.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def find(self, channel: str, predicate: Callable[[Event], bool] = lambda e: True) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.channel == channel and predicate(e)]

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


@dataclass
class Topology:
    master: NodeProcess | Any
    replicas: list[NodeProcess | Any]
    sentinels: list[SentinelProcess]

    def data_nodes(self) -> list[Any]:
        return [self.master, *self.replicas]


def start_sentinels(
    base: Path, master_port: int, count: int = 3, real: bool = False, **options: Any
) -> list[SentinelProcess]:
    sentinels = [SentinelProcess(base, f"s{i}", master_port, real=real, **options) for i in range(count)]
    for s in sentinels:
        s.start(wait=False)
    for s in sentinels:
        wait_for(s._ready, START_TIMEOUT_S, what=f"sentinel {s.name}")
    return sentinels


def wait_discovered(sentinels: list[SentinelProcess], replicas: int, timeout_s: float = 20) -> None:
    def done() -> bool:
        for s in sentinels:
            m = s.master()
            if int(m["num-slaves"]) != replicas or int(m["num-other-sentinels"]) != len(sentinels) - 1:
                return False
            found = s.client(decode_responses=True).sentinel_slaves(MASTER_NAME)
            if not all(r["flags"] == "slave" and r["master-link-status"] == "ok" for r in found):
                s.client().execute_command("SENTINEL", "DEBUG", "info-period", 500)  # do not wait 10 s for it
                return False
        for s in sentinels:
            s.client().execute_command("SENTINEL", "DEBUG", "info-period", 10000)
        return True

    wait_for(done, timeout_s, interval_s=0.1, what="every sentinel to see every replica and sentinel")


def write_script(path: Path, body: str) -> Path:
    """An executable /bin/sh script (notification-script, client-reconfig-script)."""
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def reconf_script(directory: Path) -> Path:
    """A client-reconfig-script that appends its argv to ``reconf.<pid of the sentinel that ran it>``."""
    return write_script(directory / "reconf.sh", 'echo "$@" >> "$(dirname "$0")/reconf.$PPID"\n')


def reconf_lines(directory: Path, sentinel: SentinelProcess) -> list[str]:
    """The client-reconfig-script calls ``sentinel`` made (see ``reconf_script``)."""
    assert sentinel.proc is not None
    path = directory / f"reconf.{sentinel.proc.pid}"
    return path.read_text().splitlines() if path.exists() else []


def actors_info(sentinel: SentinelProcess) -> dict[str, Any]:
    """INFO actors (needs enable-debug-command), as redis-py parses it: a dict per actor."""
    return dict(sentinel.client(decode_responses=True).info("actors"))


def restarted(sentinel: SentinelProcess, actor: str, times: int) -> Callable[[], bool]:
    """A wait_for predicate: ``actor`` runs again after ``times`` restarts."""

    def check() -> bool:
        try:
            line = actors_info(sentinel).get(actor)
        except redis.ConnectionError:
            return False  # the listener is being restarted
        return isinstance(line, dict) and line.get("state") == "running" and line.get("restarts") == times

    return check
