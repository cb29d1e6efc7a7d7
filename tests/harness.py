"""Test harness: real node processes on free loopback ports, in temp dirs, and bounded waiting.

Every process a test starts is registered and stopped (SIGKILL as a last resort) when the test ends.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from protocol.ports import BUS_PORT_OFFSET, bus_port_for

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


class WaitTimeout(AssertionError):
    pass


class WaitAbort(AssertionError):
    """Raised by a ``wait_for`` predicate when waiting longer is pointless (the process polled has exited):
    ``wait_for`` lets it through at once instead of polling until its deadline."""


# How long a node (or redis-server, or sentinel) that is still running may take to answer its first PING. Long,
# because a loaded CI machine (load 20+) can take many seconds to import and start a Python process; a process
# that exits fails the wait at once (WaitAbort), so a node that cannot start still fails fast.
START_TIMEOUT_S = 60.0
# Readiness probes try once per poll: redis-py 8 retries a refused connect 10 times with a backoff growing to
# 1 s, so a probe started before the port is bound would notice the node only up to a second after it serves.
PROBE_RETRY = Retry(NoBackoff(), 0)
PROBE_TIMEOUT_S = 1.0


def wait_for(
    predicate: Callable[[], T], timeout_s: float = 10.0, interval_s: float = 0.02, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout_s`` saying what was seen.

    Exceptions from ``predicate`` count as "not yet", except WaitAbort, which ends the wait at once."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = predicate()
            last_exc = None
            if last:
                return last
        except WaitAbort:
            raise
        except Exception as exc:  # the thing polled may not be up yet
            last_exc = exc
        if time.monotonic() > deadline:
            seen = f"last exception: {last_exc!r}" if last_exc is not None else f"last value: {last!r}"
            raise WaitTimeout(f"timed out after {timeout_s}s waiting for {what or predicate!r}; {seen}")
        time.sleep(interval_s)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Test ports are picked so that a port AND its bus port (+10000) lie below the kernel's ephemeral range: an
# outgoing connection (any client, any test session on the machine) takes its local port from that range, so a
# bus port inside it can be taken between the check below and the node's bind. Ports handed out in this session
# (RESP and bus) are never handed out again.
PORT_LOW = 10000
_used_ports: set[int] = set()
_rng = random.Random(os.getpid() ^ time.monotonic_ns())


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default range starts here


def _worker_slice(low: int, high: int) -> tuple[int, int]:
    """Under pytest-xdist, worker i of n picks its first port in the i-th of n slices of [low, high), so two
    workers never pick the same port between a check and a bind."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if not worker.startswith("gw") or count <= 1:
        return low, high
    index = int(worker[2:]) % count
    width = (high - low) // count
    return low + index * width, low + (index + 1) * width


def _reserve(ports: list[int]) -> bool:
    """Take ``ports`` for this session if none was handed out before and all are free now."""
    if len(set(ports)) != len(ports) or any(p in _used_ports or not 0 < p < 65536 for p in ports):
        return False
    if not all(_port_free(p) for p in ports):
        return False
    _used_ports.update(ports)
    return True


def free_offset(base_ports: list[int]) -> int:
    """An offset that puts every port of ``base_ports``, and its bus port (+10000), on a free loopback port
    (below the ephemeral range when the topology's span allows it), none handed out before in this session."""
    span = max(base_ports) - min(base_ports)
    high = _ephemeral_low() - BUS_PORT_OFFSET - span
    if high <= PORT_LOW + 1000:  # a wide topology (sentinel ports 26379...): its top ports may be ephemeral
        high = PORT_LOW + 20000
    low, high = _worker_slice(PORT_LOW, high)
    for _ in range(1000):
        offset = _rng.randrange(low, high) - min(base_ports)
        ports = [p + offset for p in base_ports]
        if _reserve(ports + [bus_port_for(p) for p in ports]):
            return offset
    raise RuntimeError("no free ports for the topology")


def free_port() -> int:
    """A loopback port that is free, and whose bus port (+10000) is free too (both reserved for the session)."""
    return free_offset([0])


class NodeProcess:
    """A `redactor server` process. ``directives`` are redis.conf-style ("appendonly", "yes") pairs."""

    def __init__(
        self, base_dir: Path, name: str = "node", port: int | None = None, **directives: Any
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.dir = base_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "node.log"
        # repl-diskless-sync-delay 0: a full sync starts at once (Redis's own tests set it too, default.conf);
        # a test of the delay sets it.
        self.directives: dict[str, Any] = {
            "save": "",
            "enable-debug-command": "yes",
            "loglevel": "notice",
            "repl-diskless-sync-delay": 0,
        }
        self.directives.update({k.replace("_", "-"): v for k, v in directives.items()})
        self.proc: subprocess.Popen[bytes] | None = None
        self._clients: list[redis.Redis] = []

    @property
    def bus_port(self) -> int:
        return bus_port_for(self.port, int(self.directives.get("bus-port") or 0))

    def argv(self) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "launcher.main",
            "server",
            "--port",
            str(self.port),
            "--dir",
            str(self.dir),
        ]
        for key, value in self.directives.items():
            args += [f"--{key}", str(value)]
        return args

    def start(self, wait: bool = True, timeout_s: float = START_TIMEOUT_S) -> NodeProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))
        log.close()
        _live.add(self)
        if wait:
            self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise WaitAbort(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            password = self.directives.get("requirepass") or None  # a node with requirepass answers NOAUTH
            with redis.Redis(
                port=self.port,
                socket_timeout=PROBE_TIMEOUT_S,
                socket_connect_timeout=PROBE_TIMEOUT_S,
                password=password,
                retry=PROBE_RETRY,
            ) as r:
                return bool(r.ping())

        wait_for(ready, timeout_s, what=f"{self.name} on port {self.port} to answer PING")

    def client(self, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("socket_timeout", 10)
        r = redis.Redis(port=self.port, **kwargs)
        self._clients.append(r)
        return r

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL and reap."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def wait_exit(self, timeout_s: float = 15.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not go."""
        self.terminate()
        self.finish_stop(timeout_s)

    def terminate(self) -> None:
        """The first half of ``stop``: close our clients and send SIGTERM, without waiting (see stop_nodes)."""
        for r in self._clients:
            try:
                r.close()
            except Exception:
                pass
        self._clients.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()

    def finish_stop(self, timeout_s: float = 10.0) -> None:
        """The second half of ``stop``: wait for the exit, SIGKILL if it does not come."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        _live.discard(self)


_live: set[NodeProcess] = set()


def start_nodes(nodes: list[NodeProcess], timeout_s: float = START_TIMEOUT_S) -> None:
    """Start several nodes at once: launch every process, then wait for each (their start-ups overlap)."""
    for node in nodes:
        node.start(wait=False)
    for node in nodes:
        node.wait_ready(timeout_s)


def stop_nodes(nodes: list[NodeProcess]) -> None:
    """Stop several nodes at once: SIGTERM to all, then wait for each (their shutdowns overlap)."""
    for node in nodes:
        node.terminate()
    for node in nodes:
        node.finish_stop()


def stop_all() -> None:
    nodes = [node for node in list(_live) if isinstance(node, NodeProcess)]
    stop_nodes(nodes)
    for other in list(_live):  # anything else with stop() (sentinels register here too)
        other.stop()


class RedisServer:
    """A redis-server (Debian's) on a free port in ``directory``, for the compatibility tests: the reference."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.port = free_port()
        self.dir = directory
        self.log_path = directory.parent / f"redis-{self.port}.log"
        argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--dir",
            str(directory),
            "--save",
            "",
            "--enable-debug-command",
            "yes",
            "--repl-diskless-sync-delay",  # (as the nodes: a full sync starts at once)
            "0",
            "--logfile",
            str(self.log_path),
            *args,
        ]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.client = redis.Redis(port=self.port, socket_timeout=10)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise WaitAbort(f"redis-server exited: {self.log_path.read_text(errors='replace')}")
            with redis.Redis(
                port=self.port,
                socket_timeout=PROBE_TIMEOUT_S,
                socket_connect_timeout=PROBE_TIMEOUT_S,
                retry=PROBE_RETRY,
            ) as probe:
                return bool(probe.ping())

        wait_for(ready, START_TIMEOUT_S, what="redis-server to answer PING")

    def digest(self) -> bytes:
        return bytes(self.client.execute_command("DEBUG", "DIGEST"))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not go within 10 s (a final save slowed by rdb-key-save-delay)."""
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def reference_servers(
    start: Callable[..., RedisServer], tmp_path: Path, names: tuple[str, ...], **directives: Any
) -> list[RedisServer]:
    """redis-servers (started by the ``redis_servers`` fixture's ``start``) in ``tmp_path / "redis-<name>"``, each
    given ``directives`` as NodeProcess takes them (``cluster_node_timeout=2000``: ``--cluster-node-timeout 2000``),
    for a test that runs the same steps on nodes and on the reference."""
    args: list[str] = []
    for key, value in directives.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    servers = []
    for name in names:
        directory = tmp_path / f"redis-{name}"
        directory.mkdir()
        servers.append(start(directory, *args))
    return servers


def _config_set_outcome(client: redis.Redis, name: str, value: str) -> str:
    try:
        client.execute_command("CONFIG", "SET", name, value)
    except redis.ResponseError as exc:
        return f"error: {exc}"
    return "OK, reads back " + client.config_get(name)[name]


def config_set_differences(
    node: redis.Redis, reference: redis.Redis, names: Any, values: tuple[str, ...]
) -> list[str]:
    """CONFIG SET each of ``names`` to each of ``values`` on the node and on redis-server: the pairs whose
    answers differ (the error, or OK and the value CONFIG GET reads back). Each setting is undone after it."""
    before = (node.config_get("*"), reference.config_get("*"))
    differences = []
    for name in names:
        for value in values:
            got, want = _config_set_outcome(node, name, value), _config_set_outcome(reference, name, value)
            if got != want:
                differences.append(f"{name} {value!r}: node {got!r}, redis-server {want!r}")
            for client, old in zip((node, reference), before, strict=True):
                if name in old:
                    try:
                        client.execute_command("CONFIG", "SET", name, old[name])
                    except redis.ResponseError:
                        pass  # immutable: nothing was changed either
    return differences
