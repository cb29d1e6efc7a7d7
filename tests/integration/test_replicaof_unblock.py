"""REPLICAOF outside cluster mode releases the clients blocked on keys, as Redis 7.0's replicationSetMaster
does (disconnectAllBlockedClients): the reply is ``-UNBLOCKED force unblock from blocking operation, instance
state changed (master -> replica?)`` and the connection closes after it (a command pipelined behind the
blocked one never runs). The bytes a blocked client reads are compared with a redis-server's."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, free_port, wait_for

pytestmark = [pytest.mark.compat]


def _blocked_client_sees(port: int) -> bytes:
    """BLPOP (with a PING pipelined behind it) on one connection, REPLICAOF on another: what the first reads
    until the server closes it."""
    nowhere = free_port()  # nothing listens there: the replica keeps trying to connect, harmlessly
    admin = redis.Redis(port=port, socket_timeout=10)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"*3\r\n$5\r\nBLPOP\r\n$4\r\nlist\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n")
            wait_for(lambda: admin.info("clients")["blocked_clients"] == 1, 10, what="the client to block")
            assert admin.execute_command("REPLICAOF", "127.0.0.1", str(nowhere)) == b"OK"
            received = b""
            while chunk := sock.recv(4096):
                received += chunk
        assert admin.info("clients")["blocked_clients"] == 0
        return received
    finally:
        admin.execute_command("REPLICAOF", "NO", "ONE")
        admin.close()


def test_replicaof_releases_blocked_clients_as_redis(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    reference_dir = tmp_path / "redis"
    reference_dir.mkdir()
    reference = redis_servers(reference_dir)
    expected = _blocked_client_sees(reference.port)
    assert expected == (
        b"-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n"
    )
    assert _blocked_client_sees(node.port) == expected
