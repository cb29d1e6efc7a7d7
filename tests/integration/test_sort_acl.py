"""SORT's BY and GET patterns read keys no key spec names: a user gets them only if one of its selectors allows
the SORT and reads every key (allkeys or %R~*), as Redis 7.0 (tests/unit/acl-v2.tcl). Compared with redis-server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from tests.harness import NodeProcess, RedisServer


def _observe(port: int) -> list[Any]:
    admin = redis.Redis(port=port)
    admin.set("v1", 1)
    admin.lpush("mylist", 1)
    seen: list[Any] = []
    for rules in ("(+sort ~mylist)", "(+sort ~mylist ~v*)", "(+sort ~mylist %W~*)", "(+sort ~mylist %R~*)"):
        admin.execute_command("ACL", "SETUSER", "sorter", "reset", "on", "nopass", rules)
        user = redis.Redis(port=port, single_connection_client=True)  # its handshake runs as default
        user.execute_command("AUTH", "sorter", "x")
        for argv in (
            ("SORT", "mylist", "BY", "v*"),
            ("SORT", "mylist", "GET", "v*"),
            ("SORT", "mylist", "BY", "x"),
        ):
            try:
                seen.append(user.execute_command(*argv))
            except redis.ResponseError as exc:
                seen.append(str(exc))
        user.close()
    admin.execute_command("ACL", "DELUSER", "sorter")
    admin.close()
    return seen


def test_sort_patterns_need_full_read_access(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path)
    ours = _observe(node.port)
    assert ours[0] == "BY option of SORT denied due to insufficient ACL permissions."
    assert ours == _observe(reference.port)
