"""EXISTS, TYPE, TTL and PTTL ask about a key without using it (Redis's LOOKUP_NOTOUCH): OBJECT IDLETIME keeps
growing through them, while TOUCH and GET reset it. Idle times are kept while an eviction policy is set."""

from __future__ import annotations

from tests.harness import NodeProcess, wait_for


def test_exists_type_ttl_leave_the_idle_time(node: NodeProcess) -> None:
    r = node.client()
    r.config_set("maxmemory-policy", "allkeys-lru")
    try:
        r.set("foo", "bar")
        wait_for(lambda: r.object("idletime", "foo") >= 1, 10.0, what="foo idle for a second")
        r.exists("foo")
        r.type("foo")
        r.ttl("foo")
        r.pttl("foo")
        assert r.object("idletime", "foo") >= 1
        r.touch("foo")
        assert r.object("idletime", "foo") == 0
    finally:
        r.config_set("maxmemory-policy", "noeviction")
