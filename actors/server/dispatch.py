"""The general lane: runs of ordinary data commands with ``Server.execute``'s exact effects, checked once per run.

Why it exists: pipelined (``redis-benchmark -P 16``), a node spends its time in Python's per-command overhead.
``Server.execute`` tests some fifteen node and client conditions per command, then ``Server.call`` reads a
dozen attributes of the server for its statistics, and the connection encodes the reply: for PING or HSET that
bookkeeping costs more than the command. The fast lane (actors/loop/fastlane.py) removed it for plain GET/SET
only; this module removes it for every command that cannot change what those checks depend on.

What it owns: ``GeneralLane.run`` and the table it runs from. The table (built once per server, from its own
command table) holds a precomputed dispatch record per name as clients send it (``LPUSH`` and ``lpush``):
the command, its function, its arity as a [min, max] range. A command is in it when it is a data command
(strings, lists, hashes, sets, sorted sets, keys, bitmaps, geo, HyperLogLog, streams) or PING / ECHO /
DBSIZE, and it can neither block (``blocking`` flag, WAIT) nor change the node's or the client's state that
``execute`` checks: no MULTI / EXEC, AUTH, HELLO, SELECT, CLIENT, CONFIG, SUBSCRIBE, scripts, admin commands.
``GET`` / ``SET`` spelled in upper or lower case are the fast lane's: the lane runs one only where the fast
lane declined it (first in a run) or when it is not the plain form (``SET key value EX 10``).

When it runs (the RESP connection calls it for a batch of two or more commands; checked once per run, the
test ``execute`` makes before its common case): the node is
unrestricted (``Server._unrestricted``: not loading, no read-only replica, no MISCONF / NOREPLICAS / busy
script, no MONITOR, no keyspace notifications, no tracking, no CLIENT PAUSE, no maxmemory, not in cluster
mode, SLOWLOG threshold not under 1 ms), the client is outside MULTI, authenticated as a user no ACL rule
refuses, not in RESP2 pub/sub context, and no client waits on a key (``after_command`` unset). None of those
can change while the lane runs its commands (none of them is in the table); a write that feeds a blocked
client sets ``after_command``, which the lane runs right after that command, as ``execute`` does, and then
hands back to the connection so every condition is tested again.

Effects kept identical to ``execute`` + ``call``: ``client.last_command``, each command timed on its own
(``usec``, ``calls``, ``failed_calls``, the latency-tracking histogram, the latency monitor and SLOWLOG
thresholds), propagation of ``argv`` or ``client.propagate_as`` when the command changed the dataset, error
replies counted (INFO errorstats), replies encoded as the connection would. (A stretch of one command under 1 us
each, PING PING PING ..., has its calls and latency bucket 0 added once, when the stretch ends: same totals.) It stops, without running it, at
the first command not in the table or with the wrong arity: the caller runs that one through ``execute``
(which answers the error) and calls again.

Runs on the master actor's loop thread only.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from actors.commands import Command
from actors.ratelog import remote_errors
from actors.server import latency, latencystats
from actors.server.errorstats import count_error_reply
from protocol.errors import CommandError
from protocol.resp import BULK_HEADERS, CRLF, OK, OK_REPLY, SMALL_INTS, encode_into

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server

# Command groups whose commands only read or write the keyspace (Redis's @read / @write families).
DATA_GROUPS = frozenset(
    ("string", "list", "hash", "set", "sortedset", "generic", "bitmap", "geo", "hyperloglog", "stream")
)
# Commands of other groups that change nothing the dispatcher checks.
EXTRA_NAMES = frozenset(("ping", "echo", "dbsize"))
# Flags that keep a command out: it may block, or it is not a plain data command.
EXCLUDING_FLAGS = frozenset(("blocking", "noscript", "admin", "pubsub", "no-multi", "deny-multi", "no-auth"))
# Data-group commands that can block or that reach beyond the keyspace anyway.
EXCLUDED_NAMES = frozenset(("wait", "waitaof", "migrate"))
# The fast lane's names (actors/loop/fastlane.py NAMES): it runs those first.
FAST_LANE_NAMES = frozenset((b"GET", b"get", b"SET", b"set"))
# No threshold: larger than any duration.
_NEVER_US = 1 << 62
# A command's arity as the largest argument count it accepts, for "at least n" arities.
_ANY_COUNT = 1 << 62

# A dispatch record: (command, its function, fewest arguments, most arguments, its name).
Record = tuple[Command, Callable[["Client", list[bytes]], Any], int, int, str]


def lane_eligible(cmd: Command) -> bool:
    """True if ``cmd`` may run in the general lane (see the module docstring)."""
    if cmd.name in EXCLUDED_NAMES or cmd.flags & EXCLUDING_FLAGS:
        return False
    return cmd.group in DATA_GROUPS or cmd.name in EXTRA_NAMES


def build_tables(commands: dict[bytes, Command]) -> tuple[dict[bytes, Record], dict[bytes, Record]]:
    """The lane's records by name as clients send them (lower and upper case), from a server's own table: the
    main table, and GET / SET under the fast lane's names (see ``GeneralLane.run``)."""
    table: dict[bytes, Record] = {}
    fast_names: dict[bytes, Record] = {}
    for name, cmd in commands.items():
        if not lane_eligible(cmd):
            continue
        arity = cmd.arity
        fewest, most = (arity, arity) if arity > 0 else (-arity, _ANY_COUNT)
        record: Record = (cmd, cmd.fn, fewest, most, cmd.name)
        for sent in (name.lower(), name.upper()):
            (fast_names if sent in FAST_LANE_NAMES else table)[sent] = record
    return table, fast_names


class GeneralLane:
    """Runs lane-eligible commands for one server; see the module docstring for when and why."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.table, self.fast_names = build_tables(server.commands)
        # Status replies already encoded (PONG, OK ...): the common simple strings cost one dict lookup.
        self._status: dict[str, bytes] = {}

    def run(self, client: Client, commands: list[list[bytes]], start: int, out: list[bytes]) -> int:
        """Run ``commands[start:]`` while the lane applies, appending encoded replies to ``out``.

        Returns the index of the first command not run (``start`` when the lane does not apply at all).
        """
        table = self.table
        fast_names = self.fast_names
        if commands[start][0] not in table and commands[start][0] not in fast_names:
            return start
        server = self.server
        if not (
            server._unrestricted
            and client.multi is None
            and client.unchecked
            and not client.channels
            and not client.patterns
            and server.after_command is None
        ):
            return start
        keyspace = server.keyspace
        stream = server.stream
        # Nothing consumes the stream (no AOF, no replica, not inside EXEC): a write's propagation is a no-op.
        feeding = stream.aof_feeding or stream.repl_feeding or stream.exec_writes is not None
        propagate = stream.propagate
        small_us = server.latency_small_us
        tracking = server.latency_tracking
        # The lowest duration either the latency monitor or SLOWLOG wants to hear about.
        slow_us = _NEVER_US
        if server.latency_threshold_us > 0:
            slow_us = server.latency_threshold_us
        if 0 <= server.slowlog_threshold_us < slow_us:
            slow_us = server.slowlog_threshold_us
        dirty = 0
        # Counters of a stretch of one command (PING PING PING ...), added to its record when another command
        # comes and when the run ends (see _add_stretch): a command under 1 us, the common case pipelined,
        # then costs two local increments instead of three read-modify-writes of its record (calls, usec and
        # latency_us[0]). Exact: nothing the lane runs reads these counters, and they are added before
        # anything that could (after_command, the end of the run, an exception).
        batch_zero = small_us > 0 and slow_us > 0  # a 0 us command: histogram bucket 0, below any threshold
        stretch_cmd: Command | None = None
        stretch_calls = 0
        stretch_zero = 0
        resp3 = client.resp3
        status = self._status
        append = out.append
        clock = perf_counter_ns
        index = start
        end = len(commands)
        try:
            while index < end:
                argv = commands[index]
                record = table.get(argv[0])
                if record is None:
                    # GET / SET: the fast lane's plain forms (GET key, SET key value) go back to it, except as the
                    # first command (the fast lane just declined it: a key with a TTL, a wrong type); SET with
                    # options (EX, NX, GET ...) runs here.
                    record = fast_names.get(argv[0])
                    if record is None or (index != start and len(argv) <= 3):
                        break
                cmd, fn, fewest, most, _ = record
                if not fewest <= len(argv) <= most:
                    break  # execute answers the arity error
                index += 1
                if feeding:
                    dirty = keyspace.dirty
                started_ns = clock()
                try:
                    reply = fn(client, argv)
                except CommandError as exc:
                    reply = exc
                    cmd.failed_calls += 1
                except Exception as exc:  # (a bug: see internal_error)
                    reply = internal_error(cmd.name, exc)
                    cmd.failed_calls += 1
                duration_us = (clock() - started_ns) // 1000
                if cmd is not stretch_cmd:
                    if stretch_cmd is not None:
                        _add_stretch(stretch_cmd, stretch_calls, stretch_zero)
                    stretch_cmd = cmd
                    stretch_calls = stretch_zero = 0
                stretch_calls += 1
                if duration_us == 0 and batch_zero:
                    stretch_zero += 1
                else:
                    cmd.usec += duration_us
                    if duration_us < small_us:
                        cmd.latency_us[duration_us] += 1
                    elif tracking:
                        latencystats.record(cmd, duration_us)
                    if duration_us >= slow_us:
                        ran_slowly(server, client, cmd, argv, duration_us)
                # (a save resets dirty: as Redis, only a rise propagates; with nothing fed both are no-ops)
                if client.propagate_as is not None:
                    if feeding and keyspace.dirty > dirty:
                        stream.propagate_several(client.db.id, client.propagate_as)
                        client.woff = stream.offset
                    client.propagate_as = None
                elif feeding and keyspace.dirty > dirty:
                    propagate(client.db.id, argv)
                    client.woff = stream.offset
                kind = type(reply)
                if kind is bytes:
                    n = len(reply)
                    append(BULK_HEADERS[n] if n < 1024 else b"$%d\r\n" % n)
                    append(reply)
                    append(CRLF)
                elif kind is int:
                    append(SMALL_INTS[reply + 1] if -1 <= reply <= 1023 else b":%d\r\n" % reply)
                elif reply is OK:
                    append(OK_REPLY)
                elif kind is str:
                    encoded = status.get(reply)
                    if encoded is None:
                        encode_into(out, reply, resp3)
                        if len(status) < 64:
                            status[reply] = out[-1]
                    else:
                        append(encoded)
                else:
                    if kind is not list and isinstance(reply, CommandError):
                        count_error_reply(server, reply)
                    encode_into(out, reply, resp3)
                if server.after_command is not None:
                    # The write fed a blocked client: serve it now, as execute does, then let the caller test
                    # every condition again (serving it may have run that client's own pipeline).
                    client.last_command = cmd.name
                    _add_stretch(cmd, stretch_calls, stretch_zero)
                    stretch_cmd = None
                    server.after_command()
                    break
        finally:
            if stretch_cmd is not None:
                _add_stretch(stretch_cmd, stretch_calls, stretch_zero)
            if index > start:  # CLIENT LIST's cmd=: the last command run (set once per run, not per command)
                last = commands[index - 1][0]
                client.last_command = (table.get(last) or fast_names[last])[4]
        return index


def internal_error(name: str, exc: Exception) -> CommandError:
    """The reply to a command that raised something other than its error reply: a bug of ours. Answered as an
    error, so the client keeps its connection (uvloop closes a transport whose data_received raises, which would
    drop the client's pipelined commands unanswered), and logged with its traceback, rate-limited (a client can
    repeat the command at will). What the command changed before it failed stays, as after a crash."""
    remote_errors.warning(
        "command_failed", command=name, error=repr(exc), traceback=traceback.format_exc(limit=-8)
    )
    return CommandError(f"ERR internal error running '{name}' ({type(exc).__name__}); the node logged it")


def _add_stretch(cmd: Command, calls: int, zero_us: int) -> None:
    """Add a stretch's counters to ``cmd``'s record: ``calls`` runs, ``zero_us`` of them under 1 us (usec + 0,
    latency-tracking bucket 0); the others' durations were added one by one."""
    cmd.calls += calls
    if zero_us:
        cmd.latency_us[0] += zero_us


def ran_slowly(server: Server, client: Client, cmd: Command, argv: list[bytes], duration_us: int) -> None:
    """``Server.call``'s reports for a command at or over a threshold: the latency monitor's sample and the
    SLOWLOG entry (EXEC's commands are logged each, never EXEC itself: Redis's skip_slowlog)."""
    if duration_us >= server.latency_threshold_us > 0:
        latency.command_ran(server, "fast" in cmd.flags, duration_us)
    if duration_us >= server.slowlog_threshold_us >= 0 and cmd.name != "exec":
        server._log_slow(client, argv, duration_us)
