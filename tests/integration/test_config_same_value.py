"""CONFIG SET of bind / port / the cluster bus's directives to the value they have is a no-op (Redis 7.0 sets
them at runtime, so a CONFIG GET * round trip works there); another value is refused as immutable (but for
port, which CONFIG SET moves), and so is any value of a directive Redis itself never sets at runtime (daemonize)."""

from __future__ import annotations

import pytest
import redis

from tests.harness import NodeProcess


def test_same_value_is_a_no_op(node: NodeProcess) -> None:
    r = node.client(decode_responses=True)
    current = r.config_get("bind")["bind"]
    assert r.config_set("bind", current) is True
    assert r.config_set("port", str(node.port)) is True
    assert r.config_set("bus-port", r.config_get("bus-port")["bus-port"]) is True
    # (port moves the listeners at runtime now, as in Redis: tests/integration/test_config_set_port.py)
    for name, value in (("bind", "127.0.0.2"), ("daemonize", "no")):
        with pytest.raises(redis.ResponseError, match="can't set immutable config"):
            r.config_set(name, value)
    assert r.config_get("bind")["bind"] == current
