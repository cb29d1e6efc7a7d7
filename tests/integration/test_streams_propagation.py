"""What stream commands propagate, compared with redis-server 7.0's AOF: XADD with the ID it generated and an
approximate trim made exact, XREADGROUP as XCLAIM ... FORCE JUSTID LASTID (or XGROUP CREATECONSUMER + SETID
for NOACK), XCLAIM / XAUTOCLAIM as XCLAIMs, blocked XREADGROUP served by an XADD likewise; and a replica that
applies our stream ends with the master's groups and pending entries.

Redis wraps several commands propagated by one call in MULTI/EXEC, and so do we: the comparison keeps those
wrappers (it drops SELECTs and blanks XCLAIM's TIME, each server's own clock).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for
from tests.integration.test_streams import call

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

SCRIPT = """
xadd s 1-1 a 1
xadd s 2-1 b 2
xadd s 2-* c 3
xadd s maxlen ~ 1 3-1 d 4
xadd s minid = 1-2 4-1 d 4
xgroup create s g 0
xreadgroup group g alice count 1 streams s >
xreadgroup group g bob noack count 1 streams s >
xreadgroup group g carol streams s >
xreadgroup group g carol streams s >
xreadgroup group g dora noack streams s >
xreadgroup group g alice streams s 0
xdel s 2-2
xadd s 5-1 e 5
xreadgroup group g erin streams s >
xautoclaim s g frank 0 0 count 2
xautoclaim s g frank 0 0
xclaim s g gina 0 1-1 4-1 lastid 9-9
xclaim s g gina 0 3-1 justid
xack s g 1-1
xgroup createconsumer s g hal
xgroup delconsumer s g hal
xgroup setid s g 0 entriesread 1
xtrim s maxlen ~ 0
xtrim s maxlen = 2
xsetid s 9-9
xgroup destroy s g
"""


def _aof_commands(directory: Path) -> list[list[bytes]]:
    from actors.persistence.aof.replay import iter_commands

    out = []
    for path in sorted(directory.glob("appendonlydir/*.incr.aof")):
        data = path.read_bytes()
        for argv, _ in iter_commands(data, 0, len(data)):
            argv = [a.upper() if i == 0 or (argv[0].upper() == b"XGROUP" and i == 1) else a for i, a in
                    enumerate(argv)]  # fmt: skip
            if argv[0] == b"SELECT":
                continue
            if argv[0] == b"XCLAIM" and len(argv) > 7 and argv[6] == b"TIME":
                argv[7] = b"<time>"
            out.append(argv)
    return out


def aof_pair(
    node_factory: Callable[..., NodeProcess], redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> tuple[RedisServer, NodeProcess, list[redis.Redis]]:
    """A redis-server and a node, both with appendonly yes, and a RESP2 client of each (that order)."""
    (tmp_path / "redis").mkdir()
    server = redis_servers(tmp_path / "redis", "--appendonly", "yes")
    node = node_factory("aof", appendonly="yes")
    return (
        server,
        node,
        [redis.Redis(port=server.port, protocol=2, socket_timeout=10), node.client(protocol=2)],
    )


def _blocked(client: redis.Redis, *args: Any) -> threading.Thread:
    thread = threading.Thread(target=lambda: call(client, *args), daemon=True)
    thread.start()
    return thread


def test_stream_writes_propagate_as_redis_server_propagates_them(
    node_factory: Callable[..., NodeProcess], redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server, node, clients = aof_pair(node_factory, redis_servers, tmp_path)
    for line in SCRIPT.strip().splitlines():
        replies = [call(client, *line.split()) for client in clients]
        if not line.startswith(("xautoclaim", "xreadgroup")):
            assert replies[0] == replies[1], line
    # A blocked XREADGROUP served by an XADD propagates its XCLAIM after the XADD, in both.
    for client, port in zip(clients, (server.port, node.port), strict=True):
        client.execute_command("XGROUP", "CREATE", "b", "g", "$", "MKSTREAM")
        thread = _blocked(redis.Redis(port=port, protocol=2), "XREADGROUP", "GROUP", "g", "w", "BLOCK", "0",
                          "STREAMS", "b", ">")  # fmt: skip
        wait_for(lambda c=client: c.info("clients")["blocked_clients"] == 1, 10, what="a blocked reader")
        client.execute_command("XADD", "b", "1-1", "f", "v")
        thread.join(10)
    for client in clients:
        wait_for(
            lambda c=client: c.info("persistence")["aof_rewrite_in_progress"] == 0, 10, what="no rewrite"
        )
    wait_for(
        lambda: _aof_commands(node.dir) == _aof_commands(tmp_path / "redis"),
        10,
        what="the same propagated commands",
    )


def test_a_replica_gets_the_groups_and_pending_entries(node_factory: Callable[..., NodeProcess]) -> None:
    master = node_factory("master")
    replica = node_factory("replica")
    m, rep = master.client(protocol=2), replica.client(protocol=2)
    rep.replicaof("127.0.0.1", master.port)
    wait_for(lambda: rep.info("replication")["master_link_status"] == "up", 20, what="the replica link")
    for line in SCRIPT.strip().splitlines()[:-1]:  # keep the group
        call(m, *line.split())
    wait_for(
        lambda: call(rep, "DEBUG", "DIGEST") == call(m, "DEBUG", "DIGEST"), 10, what="the replica's data"
    )
    want = call(m, "XINFO", "STREAM", "s", "FULL")

    def same_groups() -> bool:
        got = call(rep, "XINFO", "STREAM", "s", "FULL")
        groups_m = [[g[:13]] for g in want[17]]
        groups_r = [[g[:13]] for g in got[17]]
        return got[:16] == want[:16] and groups_r == groups_m

    wait_for(same_groups, 10, what="the replica's groups and pending entries")
