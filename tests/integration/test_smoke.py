"""The node answers redis-py over a real socket: the spine end to end."""

from __future__ import annotations

from tests.harness import NodeProcess


def test_set_then_get_round_trips_through_a_real_node(node: NodeProcess) -> None:
    r = node.client()
    assert r.set("a", "1") is True
    assert r.get("a") == b"1"
    assert r.incr("a") == 2
