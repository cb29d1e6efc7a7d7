"""The script lane: redis.call itself, with a running script's plain ``GET key`` and ``SET key value`` inline.

Why it exists: a short script (EVALSHA of a GET and a SET, issue 12's figure) spent about a fifth of its
instructions taking each redis.call through ``Server.call`` -> ``cmd_get`` / ``cmd_set`` -> ``Keyspace`` ->
``Server.propagate``: six Python frames for two dict operations. This is the fast lane's idea
(actors/loop/fastlane.py) for commands inside scripts: when the node's state makes the general path's extra
work a no-op, do the command here with exactly the effects it would have had.

What it owns: ``make_call``, which builds the function Lua's ``redis.call`` is (one per engine): a closure over
what never changes for the engine (the server, its keyspace and ACL, the script client, GET and SET, the
command cache), so a plain GET or SET costs one Python frame and no attribute walk. Every other call, and a
GET / SET the lane declines, goes to the bridge's general path (``RedisBridge.call_general``, bridge.py),
untouched. The lane runs a command only when:

- the node is unrestricted (``Server._unrestricted``: not loading, not a read-only replica, no MASTERDOWN or
  NOREPLICAS refusal, no maxmemory tracking, not cluster mode, no MONITOR, no keyspace notifications, no
  client tracking, no SLOWLOG threshold a GET or SET could reach, no CLIENT PAUSE, no busy script...), no ACL
  is enforced, nobody tracks keys (the engine's ``on_command``) and no client is blocked on a key
  (``Keyspace.on_modified`` unset); all read per call, so nothing is assumed across a call;
- the command is spelled as a cached one (``_script_commands``) and its arguments are strings (numbers and
  the rest are converted or refused by the general path);
- for GET, the key has no TTL in the database (lazy expiry is ``Keyspace.lookup``'s) and holds a string or
  nothing (WRONGTYPE is the general path's); for SET, nobody WATCHes a key of the database, the run is not
  read-only and ``redis.set_repl`` was left at REPL_ALL.

Effects kept identical to ``Server.call``'s: the value stored (its TTL dropped), ``keyspace.dirty``, the
write captured in the run's effects (what ``PropagationStream.propagate`` does while a script runs),
keyspace hits and misses, the script client's ``last_command``, the run's ``wrote`` (SCRIPT KILL answers
UNKILLABLE), INFO commandstats, latency-tracking, LATENCY and SLOWLOG as ``Server.call`` counts them, and
the reply as the general path converts it (a bulk as a string, a missing key as false, or nil under RESP3,
SET's OK as a fresh ``{ok='OK'}`` table from the converter's pool).
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from actors.server import latency
from actors.server.latencystats import record as record_latency

if TYPE_CHECKING:
    from actors.scripting.bridge import RedisBridge

REPL_ALL = 3  # (bridge.py's redis.set_repl flag, repeated: bridge imports this module)


def make_call(engine: RedisBridge, ok_pool: list[Any], refill_ok: Callable[[], None]) -> Callable[..., Any]:
    """redis.call for ``engine``: the lane for a plain GET / SET, the bridge's general path for the rest.

    ``ok_pool`` is the converter's pool of fresh ``{ok='OK'}`` tables (convert.ReplyToLua.status), refilled by
    ``refill_ok`` when empty: SET's reply takes one, as the general path's conversion would."""
    server = engine.server
    keyspace = server.keyspace
    acl = server.acl
    client = engine.client
    commands = engine._script_commands
    get = engine._lane_get
    set_ = engine._lane_set
    general = engine.call_general
    clock = perf_counter_ns

    def call(*args: Any) -> Any:
        try:
            cmd = commands[args[0]]
        except (KeyError, IndexError, TypeError):  # a first call by this spelling, no arguments, a table...
            return general(*args)
        nargs = len(args)
        if not (((cmd is get and nargs == 2) or (cmd is set_ and nargs == 3)) and server._unrestricted):
            return general(*args)
        run = engine.run
        key = args[1]
        if (
            run is None
            or engine.on_command is not None
            or keyspace.on_modified is not None
            or acl.enforcing
            or type(key) is not bytes
        ):
            return general(*args)
        db = client.db
        if nargs == 2:
            expires = db.expires
            if expires and key in expires:
                return general(*args)  # lazy expiry is Keyspace.lookup's
            started_ns = clock()
            reply = db.data.get(key)
            if type(reply) is bytes:
                keyspace.keyspace_hits += 1
            elif reply is None:
                keyspace.keyspace_misses += 1
                reply = None if client.resp3 else False
            else:
                return general(*args)  # WRONGTYPE is the general path's
        else:
            value = args[2]
            if type(value) is not bytes or db.watched or run.read_only or run.repl_flags != REPL_ALL:
                return general(*args)
            if not ok_pool:
                refill_ok()
            reply = ok_pool.pop()  # (taken before the clock starts: the conversion is not the command's time)
            started_ns = clock()
            run.wrote = True
            db.set(key, value)
            keyspace.dirty += 1
            # The stream's exec_writes while a script runs (engine.py): its effects, propagated when it ends.
            run.writes.append((db.id, [args[0], key, value], False))
        # Server.call's statistics for the command.
        duration_us = (clock() - started_ns) // 1000
        client.last_command = cmd.name
        cmd.calls += 1
        if not duration_us and server.latency_small_us:
            # Under a microsecond (the lane's usual): no usec to add, its histogram bucket, and no threshold
            # to reach (the latency monitor's is over 0; a SLOWLOG one under 1 ms closes the lane).
            cmd.latency_us[0] += 1
            return reply
        cmd.usec += duration_us
        if duration_us < server.latency_small_us:
            cmd.latency_us[duration_us] += 1
        elif server.latency_tracking:
            record_latency(cmd, duration_us)
        if duration_us >= server.latency_threshold_us > 0:
            latency.command_ran(server, "fast" in cmd.flags, duration_us)
        if duration_us >= server.slowlog_threshold_us >= 0:
            server._log_slow(client, list(args), duration_us)
        return reply

    return call
