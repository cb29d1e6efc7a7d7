"""The script lane: a running script's plain ``GET key`` and ``SET key value``, inline in redis.call.

Why it exists: a short script (EVALSHA of a GET and a SET, issue 12's figure) spent about a fifth of its
instructions taking each redis.call through ``Server.call`` -> ``cmd_get`` / ``cmd_set`` -> ``Keyspace`` ->
``Server.propagate``: six Python frames for two dict operations. This is the fast lane's idea
(actors/loop/fastlane.py) for commands inside scripts: when the node's state makes the general path's extra
work a no-op, do the command here with exactly the effects it would have had.

What it owns: nothing but that shortcut. ``lane_call`` answers NOT_RUN (and has touched nothing) unless:

- the node is unrestricted (``Server._unrestricted``: not loading, not a read-only replica, no MASTERDOWN or
  NOREPLICAS refusal, no maxmemory tracking, not cluster mode, no MONITOR, no keyspace notifications, no
  client tracking, no SLOWLOG threshold a GET or SET could reach, no CLIENT PAUSE...), no ACL is enforced and
  no client is blocked on a key (``Keyspace.on_modified`` unset);
- the arguments are strings (numbers and the rest are converted or refused by the bridge's general path);
- for GET, the key has no TTL in the database (lazy expiry is ``Keyspace.lookup``'s) and holds a string or
  nothing (WRONGTYPE is the general path's); for SET, nobody WATCHes a key of the database, the run is not
  read-only and ``redis.set_repl`` was left at REPL_ALL.

Effects kept identical to ``Server.call``'s: the value stored (its TTL dropped), ``keyspace.dirty``, the
write captured in the run's effects (what ``PropagationStream.propagate`` does while a script runs),
keyspace hits and misses, the script client's ``last_command``, the run's ``wrote`` (SCRIPT KILL answers
UNKILLABLE), and INFO commandstats, latency-tracking, LATENCY and SLOWLOG as ``Server.call`` counts them.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from actors.server import latency
from actors.server.latencystats import record as record_latency
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.scripting.engine import ScriptRun
    from actors.server.client import Client
    from actors.server.server import Server

REPL_ALL = 3  # (bridge.py's redis.set_repl flag, repeated: bridge imports this module)


class _NotRun:
    """The lane did not run the command: the bridge's general path does."""

    __slots__ = ()


NOT_RUN: Any = _NotRun()


def lane_call(server: Server, client: Client, run: ScriptRun, cmd: Any, args: tuple[Any, ...]) -> Any:
    """Run ``args`` (a GET with 2 arguments or a SET with 3, as ``cmd`` says) for the script; NOT_RUN if the
    lane does not apply (nothing was touched then). The caller has checked ``server._unrestricted``."""
    keyspace = server.keyspace
    key = args[1]
    if keyspace.on_modified is not None or server.acl.enforcing or type(key) is not bytes:
        return NOT_RUN
    db = client.db
    started_ns = perf_counter_ns()
    if len(args) == 2:
        expires = db.expires
        if expires and key in expires:
            return NOT_RUN  # lazy expiry is Keyspace.lookup's
        reply = db.data.get(key)
        if type(reply) is bytes:
            keyspace.keyspace_hits += 1
        elif reply is None:
            keyspace.keyspace_misses += 1
        else:
            return NOT_RUN  # WRONGTYPE is the general path's
    else:
        value = args[2]
        if type(value) is not bytes or db.watched or run.read_only or run.repl_flags != REPL_ALL:
            return NOT_RUN
        run.wrote = True
        db.set(key, value)
        keyspace.dirty += 1
        # The stream's exec_writes while a script runs (engine.py): its effects, propagated when it ends.
        run.writes.append((db.id, [args[0], key, value], False))
        reply = OK
    client.last_command = cmd.name
    duration_us = (perf_counter_ns() - started_ns) // 1000
    cmd.calls += 1
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
