"""Each Server runs its own command table: counters are per instance, and a Server can be built with a subset
of the registered commands plus its own (as a sentinel will)."""

from __future__ import annotations

from typing import Any

from actors.commands import COMMANDS, Command, load_all
from actors.config import Config
from actors.server.client import Client
from actors.server.server import Server
from protocol.errors import CommandError


def run(server: Server, client: Client, *args: str) -> Any:
    return server.execute(client, [a.encode() for a in args])


def commandstats(server: Server, client: Client) -> str:
    return bytes(run(server, client, "INFO", "commandstats")).decode()


def test_two_servers_in_one_process_count_their_commands_apart() -> None:
    first, second = Server(Config()), Server(Config())
    a, b = Client(first), Client(second)
    run(first, a, "SET", "k", "v")
    run(first, a, "GET", "k")
    run(first, a, "GET", "k")
    run(second, b, "GET", "k")
    assert first.commands[b"get"] is not second.commands[b"get"]
    assert first.commands[b"get"].calls == 2
    assert second.commands[b"get"].calls == 1
    assert second.commands[b"set"].calls == 0
    assert "cmdstat_set:" in commandstats(first, a)
    assert "cmdstat_set:" not in commandstats(second, b)
    # The registered specs are templates: running commands never touches them.
    assert COMMANDS[b"get"].calls == 0


def test_config_resetstat_resets_only_its_own_server() -> None:
    first, second = Server(Config()), Server(Config())
    a, b = Client(first), Client(second)
    run(first, a, "PING")
    run(second, b, "PING")
    assert run(first, a, "CONFIG", "RESETSTAT") == "OK"
    assert first.commands[b"ping"].calls == 0
    assert second.commands[b"ping"].calls == 1


def test_a_server_built_with_a_subset_plus_its_own_command() -> None:
    def cmd_hello_sentinel(client: Client, argv: list[bytes]) -> Any:
        return b"sentinel here"

    registered = load_all()
    own = Command("sentinel", cmd_hello_sentinel, 1, frozenset(), 0, 0, 0, "sentinel", "")
    table = {name: registered[name] for name in (b"ping", b"info", b"config")} | {b"sentinel": own}
    server = Server(Config(), commands=table)
    client = Client(server)
    assert run(server, client, "SENTINEL") == b"sentinel here"
    assert run(server, client, "ping") == "PONG"
    refused = run(server, client, "SET", "k", "v")
    assert isinstance(refused, CommandError) and str(refused).startswith("ERR unknown command 'SET'")
    assert server.commands[b"sentinel"].calls == 1
    assert own.calls == 0
