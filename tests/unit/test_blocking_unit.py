"""The blocking registry inside one Server, no network: its keyspace hook exists only while a client waits,
which is what lets plain writes (and the fast lane, actors/fastlane.py) skip it the rest of the time."""

from __future__ import annotations

from typing import Any

from actors.config import Config
from actors.server.client import Client, ClientKind
from actors.server.server import BLOCKED, Server


def run(server: Server, client: Client, *args: str) -> Any:
    return server.execute(client, [a.encode() for a in args])


def test_the_keyspace_hook_is_set_only_while_a_client_waits() -> None:
    server = Server(Config())
    keyspace = server.keyspace
    delivered: list[Any] = []
    waiter = Client(server, ClientKind.INTERNAL)
    waiter.deliver = delivered.append
    pusher = Client(server, ClientKind.INTERNAL)
    server.add_client(waiter)
    server.add_client(pusher)
    assert keyspace.on_modified is None

    assert run(server, waiter, "BLPOP", "q", "0") is BLOCKED
    assert keyspace.on_modified is not None
    assert run(server, pusher, "RPUSH", "q", "a") == 1
    assert delivered == [[b"q", b"a"]]
    assert keyspace.on_modified is None  # served: nobody waits any more

    assert run(server, waiter, "BLPOP", "q", "other", "0") is BLOCKED
    assert run(server, pusher, "SET", "x", "1") == "OK"  # an unrelated write leaves the wait alone
    assert keyspace.on_modified is not None
    server.remove_client(waiter)  # a disconnect forgets the wait
    assert keyspace.on_modified is None
    assert run(server, pusher, "RPUSH", "q", "b") == 1
    assert delivered == [[b"q", b"a"]]
