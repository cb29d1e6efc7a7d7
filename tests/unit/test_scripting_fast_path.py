"""redis.call's fast paths inside one Server, no network: the replies that skip the generic conversion (bulk,
integer, nil, a pooled {ok='OK'}) keep Redis's Lua forms, every status table is a fresh one, and the checks
moved off the common path (number arguments, unknown commands, arity) still answer as before."""

from __future__ import annotations

from typing import Any

from actors.config import Config
from actors.scripting.convert import STATUS_OK_BATCH
from actors.server.client import Client, ClientKind
from actors.server.server import Server
from protocol.errors import CommandError


def _eval(server: Server, client: Client, body: str, *args: bytes | str) -> Any:
    argv = [b"EVAL", body.encode(), *(a if isinstance(a, bytes) else a.encode() for a in args)]
    return server.execute(client, argv)


def _node() -> tuple[Server, Client]:
    server = Server(Config())
    client = Client(server, ClientKind.RESP)
    server.add_client(client)
    return server, client


def test_common_replies_keep_their_lua_forms() -> None:
    server, client = _node()
    body = """
        local set = redis.call('SET', KEYS[1], ARGV[1])
        local got = redis.call('GET', KEYS[1])
        local missing = redis.call('GET', KEYS[2])
        local n = redis.call('INCR', KEYS[3])
        local kind = redis.call('TYPE', KEYS[1])
        return {type(set), set.ok, got, type(missing), tostring(missing), n, kind.ok}
    """
    reply = _eval(server, client, body, "3", "k", "absent", "counter", "v")
    assert reply == [b"table", b"OK", b"v", b"boolean", b"false", 1, b"string"]
    resp3 = "redis.setresp(3) return type(redis.call('GET', KEYS[1]))"
    assert _eval(server, client, resp3, "1", "absent") == b"nil"


def test_every_ok_table_is_a_fresh_one_past_several_batches() -> None:
    server, client = _node()
    count = STATUS_OK_BATCH * 2 + 3
    body = f"""
        local seen, first = {{}}, redis.call('SET', KEYS[1], 'a')
        first.ok = 'changed'
        for i = 1, {count} do
          local r = redis.call('SET', KEYS[1], i)
          if seen[r] or r.ok ~= 'OK' then return 'reused at ' .. i end
          seen[r] = true
          r.ok = 'spoiled'
        end
        return {{first.ok, redis.call('SET', KEYS[1], 'z').ok}}
    """
    assert _eval(server, client, body, "1", "k") == [b"changed", b"OK"]
    # The next script's tables are fresh too (none of the spoiled ones comes back).
    assert _eval(server, client, "return redis.call('SET', KEYS[1], 'x').ok", "1", "k") == b"OK"


def test_checks_off_the_common_path_still_answer() -> None:
    server, client = _node()
    assert _eval(server, client, "return redis.call('SET', KEYS[1], 1.5)", "1", "k") == "OK"
    assert server.execute(client, [b"GET", b"k"]) == b"1.5"
    assert _eval(server, client, "return redis.call('INCRBY', KEYS[1], 3)", "1", "n") == 3
    refused = _eval(server, client, "return redis.call('SET', KEYS[1], {})", "1", "k")
    assert isinstance(refused, CommandError)
    assert str(refused).startswith("ERR Lua redis lib command arguments must be strings or integers")
    unknown = _eval(server, client, "return redis.call('NOSUCH')", "0")
    assert isinstance(unknown, CommandError)
    assert str(unknown).startswith("ERR Unknown Redis command called from script")
    arity = _eval(server, client, "return redis.call('GET')", "0")
    assert isinstance(arity, CommandError)
    assert str(arity).startswith("ERR Wrong number of args calling Redis command from script")
    caught = _eval(server, client, "return redis.pcall('NOSUCH')", "0")
    assert isinstance(caught, CommandError)
    assert str(caught) == "ERR Unknown Redis command called from script"
