"""Client memory and maxmemory-clients, side by side with redis-server: clients holding big query buffers or
unsent replies are disconnected as Redis disconnects them (biggest first, never a NO-EVICT one), a reply past the
normal class's hard limit is never sent, maxmemory weighs the clients' buffers, and the settings read back as
Redis writes them. Byte counts differ (no C allocator here): only who is disconnected, and when, is compared."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for

pytestmark = pytest.mark.compat


@pytest.fixture
def servers(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> Iterator[list[tuple[str, int]]]:
    """(name, port) of the node and of a redis-server 7.0."""
    ref = tmp_path / "ref"
    ref.mkdir()
    yield [("redactor", node.port), ("redis", redis_servers(ref).port)]


OPEN: list[socket.socket] = []


@pytest.fixture(autouse=True)
def close_sockets() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def raw_client(port: int, name: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    OPEN.append(sock)
    sock.sendall(b"CLIENT SETNAME %s\r\n" % name)
    assert sock.recv(64) == b"+OK\r\n"
    return sock


def partial_request(sock: socket.socket, size: int) -> None:
    """A request whose one big argument never completes: it stays in the query buffer."""
    sock.sendall(b"*2\r\n$%d\r\n" % size + b"v" * size)


def names(client: redis.Redis) -> set[str]:
    return {entry["name"] for entry in client.client_list()}


def lacks(client: redis.Redis, name: str) -> bool:
    return name not in names(client)


def evicted_keys(client: redis.Redis) -> int:
    return int(client.info("stats")["evicted_keys"])


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return True


def test_maxmemory_clients_reads_back_as_redis_writes_it(servers: list[tuple[str, int]]) -> None:
    seen = {}
    for name, port in servers:
        client = redis.Redis(port=port, decode_responses=True)
        got = []
        for value in ("3mb", "7%", "0", "1000000"):
            client.config_set("maxmemory-clients", value)
            got.append(client.config_get("maxmemory-clients")["maxmemory-clients"])
        seen[name] = got
    assert seen["redactor"] == seen["redis"] == ["3145728", "7%", "0", "1000000"]


def test_bad_maxmemory_clients_is_refused_and_rolled_back_as_redis_does(
    servers: list[tuple[str, int]],
) -> None:
    seen = {}
    for name, port in servers:
        client = redis.Redis(port=port, decode_responses=True)
        client.config_set("maxmemory", "10000002")
        got = []
        for args in (
            ["maxmemory-clients", "200%"],
            ["maxmemory-clients", "-5%"],
            ["maxmemory-clients", "1x%"],
            ["maxmemory", "10000001", "maxmemory-clients", "200%", "client-query-buffer-limit", "x"],
        ):
            try:
                got.append(client.execute_command("CONFIG", "SET", *args))
            except redis.ResponseError as exc:
                got.append(str(exc))
        got.append(client.config_get("maxmemory")["maxmemory"])
        client.config_set("maxmemory", "0")
        seen[name] = got
    assert seen["redactor"] == seen["redis"]
    assert seen["redis"][0].endswith("percentage argument must be less or equal to 100")
    assert seen["redis"][-1] == "10000002"


def test_lowering_the_limit_evicts_the_biggest_clients_first(servers: list[tuple[str, int]]) -> None:
    outcome = {}
    for name, port in servers:
        control = redis.Redis(port=port, decode_responses=True)
        control.client_setname("control")
        control.client_no_evict("on")
        socks = {}
        for label, size in (("small", 100_000), ("medium", 400_000), ("big", 900_000)):
            socks[label] = raw_client(port, label.encode())
            partial_request(socks[label], size)

            def arrived(label: str = label, size: int = size, control: redis.Redis = control) -> bool:
                entry = next(c for c in control.client_list() if c["name"] == label)
                return int(entry["tot-mem"]) >= size

            wait_for(arrived, what=f"{name}: {label}'s request to arrive")
        before = control.info("stats")["evicted_clients"]
        # Room for control, small and medium, not for big: big goes (at once), the smaller two stay.
        control.config_set("maxmemory-clients", 700_000)
        left = sorted(n for n in names(control) if n in socks)
        outcome[name] = (left, control.info("stats")["evicted_clients"] - before, closed(socks["big"]))
        control.config_set("maxmemory-clients", 0)
        for sock in socks.values():
            sock.close()
    assert outcome["redactor"] == outcome["redis"] == (["medium", "small"], 1, True)


def test_a_no_evict_client_stays_past_the_limit(servers: list[tuple[str, int]]) -> None:
    outcome = {}
    for name, port in servers:
        control = redis.Redis(port=port, decode_responses=True)
        control.client_no_evict("on")
        control.config_set("maxmemory-clients", 1_000_000)
        kept = raw_client(port, b"kept")
        kept.sendall(b"CLIENT NO-EVICT on\r\n")
        assert kept.recv(64) == b"+OK\r\n"
        gone = raw_client(port, b"gone")
        partial_request(kept, 1_200_000)
        try:
            partial_request(gone, 100_000)
        except OSError:
            pass  # already evicted to make room for kept's request (as soon as it arrived)
        wait_for(partial(closed, gone), what=f"{name}: the evictable client to be closed")
        entry = next(c for c in control.client_list() if c["name"] == "kept")
        outcome[name] = (int(entry["tot-mem"]) > 1_000_000, "gone" in names(control))
        control.config_set("maxmemory-clients", 0)
        kept.close()
    assert outcome["redactor"] == outcome["redis"] == (True, False)


def test_a_reply_past_the_hard_limit_is_never_sent(servers: list[tuple[str, int]]) -> None:
    for name, port in servers:
        control = redis.Redis(port=port)
        control.config_set("client-output-buffer-limit", "normal 100000 0 0")
        control.rpush("big", *([b"x" * 1000] * 150))
        sock = raw_client(port, b"reader")
        sock.sendall(b"LRANGE big 0 -1\r\n")
        wait_for(partial(lacks, control, "reader"), what=f"{name}: the reader to be closed")
        assert sock.recv(65536) == b"", name  # closed without a byte of the reply
        sock.close()


def test_maxmemory_weighs_query_buffers(servers: list[tuple[str, int]]) -> None:
    evicted = {}
    for name, port in servers:
        control = redis.Redis(port=port)
        for j in range(20):
            control.setrange(f"k{j}", 100_000, b"x")
        used = int(control.info("memory")["used_memory"])
        control.config_set("maxmemory-policy", "allkeys-lru")
        control.config_set("maxmemory", used + 1_000_000)
        socks = [raw_client(port, b"c%d" % i) for i in range(6)]
        for sock in socks:
            partial_request(sock, 400_000)
        wait_for(partial(evicted_keys, control), what=f"{name}: keys evicted")
        evicted[name] = control.dbsize() < 20
        control.config_set("maxmemory", 0)
        for sock in socks:
            sock.close()
    assert evicted == {"redactor": True, "redis": True}


def test_debug_pause_cron_replybuffer_and_refcount(servers: list[tuple[str, int]]) -> None:
    replies = {}
    for name, port in servers:
        client = redis.Redis(port=port, decode_responses=True)
        got = [
            client.execute_command("DEBUG", "PAUSE-CRON", "1"),
            client.execute_command("DEBUG", "PAUSE-CRON", "0"),
            client.execute_command("DEBUG", "REPLYBUFFER", "RESIZING", "0"),
            client.execute_command("DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME", "never"),
        ]
        with pytest.raises(redis.ResponseError) as bad:
            client.execute_command("DEBUG", "REPLYBUFFER", "bogus", "1")
        got.append(str(bad.value))
        client.config_set("maxmemory", 1 << 30)
        client.config_set("maxmemory-policy", "allkeys-random")
        client.set("a", 1)
        got.append(client.object("refcount", "a") > 1)
        client.config_set("maxmemory-policy", "allkeys-lru")
        client.set("b", 1)
        got.append(client.object("refcount", "b"))
        client.config_set("maxmemory", 0)
        replies[name] = got
    assert replies["redactor"] == replies["redis"]
