"""Mixed replica sets (issue 19, item 4): redis-server and redactor nodes in one set, failed over by real Redis
Sentinels. The redactor node replicates from the redis-server master over Redis's PSYNC; once promoted, the
redis-server replica follows it the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.sentinel import Sentinel

from tests.harness import NodeProcess, RedisServer, wait_for
from tests.integration.test_sentinel_failover import MASTER_NAME, SentinelProcess

pytestmark = pytest.mark.slow


def test_real_sentinels_fail_a_redis_master_over_to_a_redactor_replica(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
) -> None:
    (tmp_path / "master").mkdir()
    (tmp_path / "theirs").mkdir()
    master = redis_servers(tmp_path / "master", "--repl-diskless-sync-delay", "0")
    master.client.set("before", "1")
    ours = node_factory("ours", replicaof=f"127.0.0.1 {master.port}")
    # Priority 0: the sentinels must pick the redactor replica.
    theirs = redis_servers(
        tmp_path / "theirs", "--replicaof", "127.0.0.1", str(master.port), "--replica-priority", "0"
    )
    for client in (ours.client(), theirs.client):
        wait_for(
            lambda c=client: c.info("replication").get("master_link_status") == "up",
            30,
            what="replicas to sync",
        )
    sentinels: list[SentinelProcess] = []
    try:
        for _ in range(3):
            sentinels.append(SentinelProcess(tmp_path / "sentinels", master.port))

        def sentinels_see_everyone() -> bool:
            for sentinel in sentinels:
                fields = sentinel.client.sentinel_master(MASTER_NAME)
                if int(fields["num-slaves"]) != 2 or int(fields["num-other-sentinels"]) != 2:
                    return False
            return True

        wait_for(sentinels_see_everyone, 30, what="the sentinels to discover both replicas and each other")
        master.proc.kill()
        started = time.monotonic()

        def promoted() -> bool:
            addr = sentinels[0].client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            return int(addr[1]) == ours.port

        wait_for(promoted, 60, what="the sentinels to promote the redactor replica")
        wait_for(lambda: ours.client().role()[0] == b"master", 30, what="the redactor node to be master")
        client = Sentinel([("127.0.0.1", s.port) for s in sentinels], socket_timeout=5)
        writer = client.master_for(MASTER_NAME, socket_timeout=5)
        wait_for(lambda: bool(writer.set("after", "2")), 30, what="a write through the sentinel client")
        # The redis-server replica now follows the redactor master, over PSYNC.
        wait_for(
            lambda: (
                theirs.client.info("replication").get("master_port") == ours.port
                and theirs.client.info("replication")["master_link_status"] == "up"
            ),
            60,
            what="the redis-server replica to follow the redactor master",
        )
        wait_for(lambda: theirs.client.get("after") == b"2", 15, what="the write to reach redis-server")
        assert theirs.client.get("before") == b"1"
        print(f"failover to the redactor replica took {time.monotonic() - started:.1f}s")
    finally:
        for sentinel in sentinels:
            sentinel.stop()
