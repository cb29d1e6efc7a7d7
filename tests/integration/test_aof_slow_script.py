"""A slow script replayed from the AOF (Redis's "EVAL timeout with slow verbatim Lua script from AOF"): while it
runs past busy-reply-threshold, other clients get -LOADING instead of no answer at all, and once it ends the
load goes on. The same steps run on redis-server and on a node.

An AOF written by Redis 7.0 holds a script's effects, not the script; an older Redis (or a hand-made file)
holds EVAL itself, which is what the test appends to the incremental file before DEBUG LOADAOF.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer

# Runs for a second of its own clock (TIME), whatever the interpreter's speed.
SLOW_SCRIPT = (
    "redis.call('set', KEYS[1], 'y') "
    "local t0 = redis.call('time') "
    "repeat local t = redis.call('time') "
    "until (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 1000000 "
    "return 'ok'"
)


def _command(*args: str) -> bytes:
    out = b"*%d\r\n" % len(args)
    for arg in args:
        data = arg.encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["redis", "redactor"])
def test_clients_get_loading_while_a_slow_script_replays_from_the_aof(
    kind: str,
    tmp_path: Path,
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
) -> None:
    settings = {"appendonly": "yes", "lua-time-limit": "1", "aof-use-rdb-preamble": "no"}
    if kind == "redactor":
        node = node_factory("node", **{k.replace("-", "_"): v for k, v in settings.items()})
        port, directory = node.port, node.dir
    else:
        directory = tmp_path / "redis"
        directory.mkdir()
        server = redis_servers(directory, *[x for k, v in settings.items() for x in (f"--{k}", v)])
        port = server.port
    incr = next((Path(directory) / "appendonlydir").glob("*.incr.aof"))
    with incr.open("ab") as aof:
        aof.write(_command("SELECT", "9") + _command("EVAL", SLOW_SCRIPT, "1", "x"))
    # A plain socket: redis-py takes -LOADING for a connection error and retries until it passes. Connected
    # before the load starts, as in Redis's test.
    probe = socket.create_connection(("127.0.0.1", port), timeout=10)
    probe.sendall(_command("PING"))
    assert probe.recv(100) == b"+PONG\r\n"

    outcome: dict[str, Any] = {}

    def load() -> None:
        with redis.Redis(port=port, socket_timeout=30) as loader:
            outcome["reply"] = loader.execute_command("DEBUG", "LOADAOF")

    loader = threading.Thread(target=load)
    loader.start()
    try:
        # PING until the load is over: every PING meanwhile is answered -LOADING at once, the script's second
        # included (without turns of the loop, a PING sent during it waits for its end).
        replies: list[tuple[float, float, bytes]] = []  # (sent, round trip, reply)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sent = time.monotonic()
            probe.sendall(_command("PING"))
            reply = probe.recv(100)
            replies.append((sent, time.monotonic() - sent, reply))
            if reply == b"+PONG\r\n" and len(replies) > 1:
                break
            time.sleep(0.01)  # (the pace of the probe, not a wait for state)
    finally:
        loader.join(30)
        probe.close()
    loading = [r for r in replies if r[2] == b"-LOADING Redis is loading the dataset in memory\r\n"]
    assert loading, replies
    assert loading[-1][0] - loading[0][0] >= 0.6, f"-LOADING over less than the script's run: {replies}"
    assert max(trip for _, trip, _ in loading) < 0.5, f"a PING waited for the script: {replies}"
    assert outcome["reply"] in (b"OK", True)
    assert redis.Redis(port=port, db=9).get("x") == b"y"
    log = node.log() if kind == "redactor" else server.log_path.read_text()
    assert "Slow script detected" in log
