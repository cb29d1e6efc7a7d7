"""Chaos helpers: topologies run by the real launcher, a write load that remembers what was acknowledged, and
the checks every chaos test ends with (no acknowledged write lost, replicas converged).

    Launched          `python -m launcher.main up FILE --port-offset N` in its own session (process group);
                      node pids, restarts and states come from the launcher's state.json; ``close()`` kills
                      the whole group (SIGCONT first, so a paused node cannot outlive it)
    WriteLoad         background threads doing SET of unique keys; only writes whose reply came back are
                      recorded, so "every acknowledged write is present" is an exact check
    assert_no_lost_writes / wait_converged / actor_restarts / replication_stats

Fixtures: ``launch`` (a factory of Launched topologies, all closed after the test, also on failure) and
``write_load`` (a factory of WriteLoads, all stopped after the test). Tests import the classes from here for
type annotations only.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.harness import REPO, free_offset, wait_for

# How long `up` may take to report every node ready (the launcher itself allows 30 s).
UP_TIMEOUT_S = 40.0
# A node the launcher restarts waits RESTART_BACKOFF_INITIAL_S (0.5 s), then loads its dataset.
RESTART_TIMEOUT_S = 20.0
# Socket timeout of the load's clients: long enough for an fsync under a loaded disk, short enough that a
# SIGSTOPped or dead node is noticed quickly.
LOAD_SOCKET_TIMEOUT_S = 3.0
# After an error the load waits this long before reconnecting, so a dead node is not hammered.
LOAD_RETRY_PAUSE_S = 0.05
# redis-py 6+ retries a failed command by itself (10 times in 8.x): chaos clients must see every failure, and
# a retried write must never be counted as one acknowledged write.
NO_RETRY = Retry(NoBackoff(), 0)
# Keys per MGET when checking acknowledged writes.
CHECK_BATCH_KEYS = 1000


# -- topologies ---------------------------------------------------------------------------------------------


@dataclass
class NodeDef:
    name: str
    port: int
    replicaof: str | None = None
    # Any redis.conf directive; every chaos node also gets save "", enable-debug-command yes and
    # repl-diskless-sync-delay 0 by default.
    config: Mapping[str, str | int] = field(default_factory=dict)


def _toml_value(value: str | int) -> str:
    return str(value) if isinstance(value, int) else json.dumps(str(value))  # JSON strings are TOML strings


def topology_toml(name: str, nodes: list[NodeDef]) -> str:
    lines = ["[topology]", f"name = {_toml_value(name)}", 'run_dir = "run"', ""]
    for node in nodes:
        config = {
            "save": "",
            "enable-debug-command": "yes",
            "loglevel": "notice",
            "repl-diskless-sync-delay": 0,  # (as the harness's nodes: full syncs start at once)
            **node.config,
        }
        lines += ["[[node]]", f"name = {_toml_value(node.name)}", f"port = {node.port}"]
        if node.replicaof:
            lines.append(f"replicaof = {_toml_value(node.replicaof)}")
        pairs = ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in config.items())
        lines += [f"config = {{ {pairs} }}", ""]
    return "\n".join(lines)


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def answers_ping(port: int, timeout_s: float = 1.0) -> bool:
    """PING answers PONG and the node has loaded its dataset (INFO persistence loading:0): it serves."""
    try:
        with redis.Redis(
            port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=NO_RETRY
        ) as r:
            # Redis answers PING with -LOADING while it loads; redactor answers PONG, so ask INFO as well.
            return bool(r.ping()) and r.info("persistence").get("loading") == 0
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
        return False


class Launched:
    """One topology run by `redactor up` in its own process group."""

    def __init__(self, base_dir: Path, name: str, nodes: list[NodeDef]) -> None:
        self.dir = base_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"{name}.toml"
        self.path.write_text(topology_toml(name, nodes))
        self.names = [n.name for n in nodes]
        self.offset = free_offset([n.port for n in nodes])
        self.ports = {n.name: n.port + self.offset for n in nodes}
        self.run_dir = self.dir / "run"
        self.output = self.dir / "launcher.out"
        self.proc: subprocess.Popen[bytes] | None = None
        self._clients: list[redis.Redis] = []

    # -- lifecycle ---------------------------------------------------------------------------------------

    def up(self) -> Launched:
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "launcher.main",
                    "up",
                    str(self.path),
                    "--port-offset",
                    str(self.offset),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,  # its own process group: close() kills launcher and nodes at once
            )

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the launcher exited ({self.proc.returncode}):\n{self.text()}")
            return " is up: " in self.text()

        wait_for(ready, UP_TIMEOUT_S, interval_s=0.1, what=f"topology {self.path.name} to come up")
        return self

    def close(self) -> None:
        """Kill the launcher's whole process group (nodes included), also when a node is paused."""
        for client in self._clients:
            try:
                client.close()
            except Exception:
                pass
        self._clients.clear()
        if self.proc is None:
            return
        for name in self.names:
            pid = self.pid(name)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def log(self, name: str) -> str:
        try:
            return (self.run_dir / name / "node.log").read_text(errors="replace")
        except OSError:
            return ""

    # -- what the launcher knows -------------------------------------------------------------------------

    def state(self) -> dict[str, dict[str, Any]]:
        """state.json's nodes by name ({} while it is being replaced)."""
        try:
            data = json.loads((self.run_dir / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        return {n["name"]: n for n in data.get("nodes", [])}

    def pid(self, name: str) -> int | None:
        entry = self.state().get(name)
        return entry.get("pid") if entry else None

    def status_json(self) -> dict[str, dict[str, Any]]:
        """`redactor status FILE --json`, the user's view, by node name."""
        result = subprocess.run(
            [sys.executable, "-m", "launcher.main", "status", str(self.path), "--json"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr
        return {n["name"]: n for n in json.loads(result.stdout)["nodes"]}

    # -- acting on nodes ---------------------------------------------------------------------------------

    def client(self, name: str, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("socket_timeout", 10)
        kwargs.setdefault("retry", NO_RETRY)
        r = redis.Redis(port=self.ports[name], **kwargs)
        self._clients.append(r)
        return r

    def signal(self, name: str, sig: int) -> int:
        """Send ``sig`` to the node's current process; returns its pid."""
        pid = self.pid(name)
        assert pid is not None, f"{name} has no process (state: {self.state().get(name)})"
        os.kill(pid, sig)
        return pid

    def wait_restarted(self, name: str, old_pid: int, timeout_s: float = RESTART_TIMEOUT_S) -> int:
        """Until the launcher runs a new process for ``name`` and it answers PING; returns the new pid."""

        def restarted() -> int | None:
            entry = self.state().get(name) or {}
            pid = entry.get("pid")
            if pid in (None, old_pid) or entry.get("state") != "up":
                return None
            return pid if answers_ping(self.ports[name]) else None

        try:
            new_pid = wait_for(restarted, timeout_s, interval_s=0.05, what=f"{name} to be restarted")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nlauncher:\n{self.text()[-3000:]}\n{name}:\n{self.log(name)[-3000:]}"
            ) from None
        assert new_pid is not None  # wait_for returns only a truthy value
        return new_pid


# -- write load ---------------------------------------------------------------------------------------------


class WriteLoad:
    """Threads writing unique keys to one port; a write is recorded only once its +OK came back.

    Errors (the node dead, paused, loading) are counted with the time they happened; the writer then
    reconnects and carries on with a new key, so an unacknowledged write is simply never checked.
    """

    def __init__(self, port: int, seed: int, threads: int = 1, prefix: str = "chaos") -> None:
        self.port = port
        self.prefix = prefix
        self.stop_event = threading.Event()
        rng = random.Random(seed)
        self._tokens = [rng.getrandbits(32) for _ in range(threads)]
        # Per thread: acknowledged (key, value) pairs, in order.
        self.acked: list[list[tuple[bytes, bytes]]] = [[] for _ in range(threads)]
        # (monotonic time, error text) of every failed write.
        self.errors: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(threads)]

    def start(self) -> WriteLoad:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(LOAD_SOCKET_TIMEOUT_S + 5)

    def _run(self, index: int) -> None:
        acked = self.acked[index]
        token = self._tokens[index]
        client: redis.Redis | None = None
        seq = 0
        while not self.stop_event.is_set():
            key = f"{self.prefix}:{index}:{seq}".encode()
            value = f"{seq}:{token:08x}".encode()
            seq += 1
            try:
                if client is None:
                    client = redis.Redis(
                        port=self.port,
                        socket_timeout=LOAD_SOCKET_TIMEOUT_S,
                        socket_connect_timeout=LOAD_SOCKET_TIMEOUT_S,
                        retry=NO_RETRY,
                    )
                if client.set(key, value) is True:
                    acked.append((key, value))
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
                with self._lock:
                    self.errors.append((time.monotonic(), f"{type(exc).__name__}: {exc}"))
                if client is not None:
                    client.close()
                client = None
                self.stop_event.wait(LOAD_RETRY_PAUSE_S)
        if client is not None:
            client.close()

    def count(self) -> int:
        return sum(len(a) for a in self.acked)

    def errors_since(self, since_s: float) -> list[str]:
        with self._lock:
            return [text for at, text in self.errors if at >= since_s]

    def wait_acks(self, more: int, timeout_s: float = 15.0) -> None:
        """Until ``more`` writes beyond the current count are acknowledged (the node serves writes)."""
        target = self.count() + more
        wait_for(
            lambda: self.count() >= target, timeout_s, what=f"{target} acknowledged writes on {self.port}"
        )

    def missing(self, client: redis.Redis) -> list[tuple[bytes, bytes, bytes | None]]:
        """Acknowledged writes that are not there: (key, acknowledged value, value found)."""
        pairs = [pair for acked in self.acked for pair in list(acked)]
        lost = []
        for start in range(0, len(pairs), CHECK_BATCH_KEYS):
            batch = pairs[start : start + CHECK_BATCH_KEYS]
            for (key, value), found in zip(batch, client.mget([k for k, _ in batch]), strict=True):
                if found != value:
                    lost.append((key, value, found))
        return lost


def assert_no_lost_writes(client: redis.Redis, load: WriteLoad, where: str = "") -> None:
    lost = load.missing(client)
    assert not lost, (
        f"{len(lost)} of {load.count()} acknowledged writes lost{' ' + where if where else ''}; "
        f"first: {lost[:5]}"
    )


# -- INFO and convergence -----------------------------------------------------------------------------------


def digest(client: redis.Redis) -> bytes:
    value: bytes = client.execute_command("DEBUG", "DIGEST")
    return value


def wait_converged(master: redis.Redis, replicas: list[redis.Redis], timeout_s: float = 30.0) -> bytes:
    """Until every replica's link is up and its DEBUG DIGEST equals the master's; returns the digest."""

    def converged() -> bytes | None:
        # Cheap checks first: DEBUG DIGEST hashes every key (over a second for 200,000 keys).
        size = master.dbsize()
        for replica in replicas:
            if replica.info("replication").get("master_link_status") != "up" or replica.dbsize() != size:
                return None
        want = digest(master)
        return want if all(digest(replica) == want for replica in replicas) else None

    def seen() -> str:
        parts = [f"master digest {digest(master)!r} dbsize {master.dbsize()}"]
        for replica in replicas:
            info = replica.info("replication")
            parts.append(
                f"replica link {info.get('master_link_status')} digest {digest(replica)!r} dbsize {replica.dbsize()}"
            )
        return "; ".join(parts)

    try:
        agreed = wait_for(converged, timeout_s, interval_s=0.1, what="replicas to converge")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nseen: {seen()}") from None
    assert agreed is not None  # wait_for returns only a truthy value
    return agreed


def actor_restarts(client: redis.Redis) -> dict[str, int]:
    """INFO actors: restarts by actor name."""
    return {k: int(v["restarts"]) for k, v in client.info("actors").items() if isinstance(v, dict)}


def actor_states(client: redis.Redis) -> dict[str, str]:
    return {k: str(v["state"]) for k, v in client.info("actors").items() if isinstance(v, dict)}


def replication_stats(client: redis.Redis) -> tuple[int, int]:
    """INFO stats: (sync_full, sync_partial_ok)."""
    stats = client.info("stats")
    return int(stats["sync_full"]), int(stats["sync_partial_ok"])


# -- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[[str, list[NodeDef]], Launched]]:
    """``launch("name", [NodeDef(...), ...])`` brings a topology up; every one is killed after the test."""
    made: list[Launched] = []

    def make(name: str, nodes: list[NodeDef]) -> Launched:
        topology = Launched(tmp_path, name, nodes)
        made.append(topology)
        try:
            return topology.up()
        except BaseException:
            topology.close()
            raise

    yield make
    for topology in made:
        topology.close()


@pytest.fixture
def write_load() -> Iterator[Callable[..., WriteLoad]]:
    """``write_load(port, seed, threads=1, prefix="chaos")`` starts a WriteLoad; all are stopped afterwards."""
    made: list[WriteLoad] = []

    def make(port: int, seed: int, threads: int = 1, prefix: str = "chaos") -> WriteLoad:
        load = WriteLoad(port, seed, threads, prefix)
        made.append(load)
        return load.start()

    yield make
    for load in made:
        load.stop()
