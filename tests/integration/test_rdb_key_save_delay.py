"""rdb-key-save-delay, Redis's hidden test knob: the RDB writer sleeps after each key, so a BGSAVE can be seen
at work; FLUSHALL stops such a child (its snapshot is of data now gone), as Redis's flushAllDataAndResetRDB."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.harness import NodeProcess, RedisServer, wait_for


def test_config_get_of_hidden_and_plain_names_as_in_redis(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    theirs = redis_servers(tmp_path).client
    ours = node.client()
    for client in (theirs, ours):
        assert client.config_set("rdb-key-save-delay", "-7")
    for pattern in ("rdb-key-save-delay", "RDB-KEY-SAVE-DELAY", "rdb-key-save-*", "*"):
        want = theirs.config_get(pattern).get("rdb-key-save-delay")
        assert ours.config_get(pattern).get("rdb-key-save-delay") == want, pattern
    assert ours.config_get("rdb-key-save-delay") == {"rdb-key-save-delay": "-7"}
    assert "user" not in ours.config_get("user")  # redis.conf's ACL lines are no config, even by name
    for bad in ("x", "2147483648"):
        want_error = _error(theirs.config_set, "rdb-key-save-delay", bad)
        assert _error(ours.config_set, "rdb-key-save-delay", bad) == want_error
    # A plain name is answered as the client spelled it, each directive once (Redis's configGetCommand).
    for args in (
        ("MAXMEMORY",),
        ("maxmemory", "MAXMEMORY", "maxmemory*"),
        ("Slaveof", "replicaof"),
        ("nosuchthing", "appendonly"),
    ):
        want = theirs.execute_command("CONFIG", "GET", *args)
        got = ours.execute_command("CONFIG", "GET", *args)
        assert want == got, args


def _error(call: Callable[..., object], *args: object) -> str:
    try:
        call(*args)
    except Exception as exc:
        return str(exc)
    return "no error"


def test_bgsave_child_sleeps_per_key_and_flushall_stops_it(node: NodeProcess) -> None:
    r = node.client()
    r.set("k", "v")
    r.config_set("rdb-key-save-delay", 10_000_000)  # 10 s after the one key
    r.bgsave()
    wait_for(lambda: r.info("persistence")["rdb_bgsave_in_progress"] == 1, 10)
    time.sleep(0.3)  # the child, though well past its fork, is still sleeping after its key
    assert r.info("persistence")["rdb_bgsave_in_progress"] == 1
    r.config_set("rdb-key-save-delay", 0)  # the running child keeps the value it was forked with
    r.flushall()
    wait_for(lambda: r.info("persistence")["rdb_bgsave_in_progress"] == 0, 5, what="FLUSHALL stops the child")
    assert r.info("persistence")["rdb_last_bgsave_status"] == "ok"  # stopped on purpose: not a failure
    r.set("k", "v")
    assert r.bgsave()
    wait_for(lambda: r.info("persistence")["rdb_bgsave_in_progress"] == 0, 10)
    assert r.info("persistence")["rdb_last_bgsave_status"] == "ok"
