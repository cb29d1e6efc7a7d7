"""A writable replica (replica-read-only no) and expiry, as Redis 7.0's integration/replication-3 checks it: the
keys its own clients give a TTL expire on the replica (the master never sends their DELs), and a write that meets
a key whose time passed (the master's DEL not yet there) works on a fresh key, while a read only hides it. The
same steps run on a redis-server pair and on a node pair, and every answer is compared.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


def _scenario(master: redis.Redis, replica: redis.Redis) -> list[Any]:
    seen: list[Any] = []
    wait_for(lambda: replica.info("replication")["master_link_status"] == "up", 20.0, what="the link")
    master.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # the master's DELs stay away
    master.set("key1", "5", px=10)
    master.set("key2", "5", px=10)
    wait_for(
        lambda: replica.dbsize() == 2 and replica.exists("key1", "key2") == 0,
        10.0,
        what="replicated, expired",
    )
    replica.config_set("replica-read-only", "no")
    seen.append(replica.dbsize())  # 2: nothing deleted them
    seen.append(replica.incr("key1"))  # 1: the expired key is gone for a write
    seen.append(replica.ttl("key1"))  # -1: created without the old TTL
    seen.append(replica.get("key2"))  # None: a read only hides it...
    seen.append(replica.dbsize())  # ...and keeps it: 2
    replica.delete("key1", "key2")
    master.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    # The replica's own keys with a TTL expire there (db 9: nothing of the master's in it).
    own = redis.Redis(port=replica.connection_pool.connection_kwargs["port"], db=9, socket_timeout=10)
    own.set("own1", "1", px=200)
    own.set("own2", "2", px=200)
    own.set("own3", "3")
    own.expire("own3", 1)
    own.set("kept", "4")
    seen.append(own.dbsize())  # 4: DBSIZE counts what is stored
    wait_for(lambda: own.dbsize() == 1, 10.0, what="the replica to expire its own keys")
    seen.append(own.keys("*"))
    own.close()
    return seen


def test_a_writable_replica_expires_as_redis_server_does(
    node_factory: Callable[..., NodeProcess], redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    for sub in ("rm", "rr"):
        (tmp_path / sub).mkdir()
    rm = redis_servers(tmp_path / "rm")
    rr = redis_servers(tmp_path / "rr", "--replicaof", f"127.0.0.1 {rm.port}")
    expected = _scenario(rm.client, rr.client)
    nm = node_factory("m")
    nr = node_factory("r", replicaof=f"127.0.0.1 {nm.port}")
    assert _scenario(nm.client(), nr.client()) == expected == [2, 1, -1, None, 2, 4, [b"kept"]]
