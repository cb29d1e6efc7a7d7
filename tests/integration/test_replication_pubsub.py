"""PUBLISH on a master reaches subscribers on its replicas (and theirs), as Redis propagates it to replicas;
it counts in the replication offset but is left out of the AOF, alone or inside MULTI/EXEC."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from tests.harness import NodeProcess, wait_for

NodeFactory = Callable[..., NodeProcess]


def link_up(replica: redis.Redis) -> bool:
    return bool(replica.info("replication")["master_link_status"] == "up")


def offset(client: redis.Redis, field: str) -> int:
    return int(client.info("replication")[field])


def next_message(sub: Any) -> Any:
    return wait_for(lambda: sub.get_message(timeout=0.1), 5, what="a pub/sub message")


def aof_bytes(node: NodeProcess) -> bytes:
    return b"".join(path.read_bytes() for path in sorted((node.dir / "appendonlydir").iterdir()))


def test_publish_reaches_subscribers_on_replicas_and_stays_out_of_the_aof(node_factory: NodeFactory) -> None:
    master = node_factory("m", appendonly="yes")
    replica, chained = node_factory("r"), node_factory("c")
    mc, rc, cc = master.client(), replica.client(), chained.client()
    assert rc.execute_command("REPLICAOF", "127.0.0.1", master.port) == b"OK"
    wait_for(lambda: link_up(rc), 15, what="the replica's link")
    assert cc.execute_command("REPLICAOF", "127.0.0.1", replica.port) == b"OK"
    wait_for(lambda: link_up(cc), 15, what="the chained replica's link")
    sub, chained_sub = rc.pubsub(), cc.pubsub()
    try:
        sub.subscribe("news")
        sub.psubscribe("n*")
        chained_sub.subscribe("news")
        assert [next_message(sub)["type"] for _ in range(2)] == ["subscribe", "psubscribe"]
        assert next_message(chained_sub)["type"] == "subscribe"

        before = offset(mc, "master_repl_offset")
        assert mc.publish("news", "hello") == 0  # nobody subscribes on the master itself
        got = [next_message(sub) for _ in range(2)]
        assert {(m["type"], m["channel"], m["data"]) for m in got} == {
            ("message", b"news", b"hello"),
            ("pmessage", b"news", b"hello"),
        }
        assert next_message(chained_sub)["data"] == b"hello"
        assert offset(mc, "master_repl_offset") > before  # it is in the stream, as in Redis

        pipe = mc.pipeline(transaction=True)
        pipe.set("k", "1")
        pipe.publish("news", "in-tx")
        pipe.execute()
        assert next_message(sub)["data"] == b"in-tx"
        assert rc.get("k") == b"1"  # the transaction arrived as a unit: its write is there already
        assert next_message(chained_sub)["data"] == b"in-tx"
        wait_for(
            lambda: (
                offset(rc, "slave_repl_offset")
                == offset(cc, "slave_repl_offset")
                == offset(mc, "master_repl_offset")
            ),
            10,
            what="every offset to agree",
        )
    finally:
        sub.close()
        chained_sub.close()

    aof = aof_bytes(master)
    assert b"$1\r\nk\r\n" in aof and b"MULTI" in aof.upper()
    assert b"PUBLISH" not in aof.upper() and b"in-tx" not in aof and b"hello" not in aof
    master.stop()
    master.start()
    assert master.client().get("k") == b"1"  # the AOF, written without the PUBLISHes, loads
