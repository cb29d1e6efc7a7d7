"""The fast lane: plain GET and SET run here, inline, with exactly the effects the dispatcher would have.

Why it exists: with ``redis-benchmark -P 16`` a node spends its time in Python's per-command overhead, not in
the keyspace: the general path (``Server.execute`` -> ``Server.call`` -> ``cmd_set`` -> ``Keyspace.set`` ->
``Server.propagate``) reads some 35 attributes per command to check things that almost never apply. This module
checks them once per run of commands instead, and then handles the two commands pipelines are made of with a
few dict operations each, keeping the counters in locals until the run ends.

What it owns: nothing but that shortcut. It runs a prefix of a parsed batch and stops at the first command that
is not, in the current state, one it can run with the dispatcher's exact semantics; the caller runs that one
through ``Server.execute`` and calls again. The shortcut applies when:

- the node is unrestricted (not loading, not a read-only replica, no MASTERDOWN or NOREPLICAS refusal), and the
  client is authenticated as a user no ACL rule refuses (``Client.unchecked``), outside MULTI and not in RESP2
  pub/sub context: ``execute``'s checks all pass;
- no client is blocked on a key (``Keyspace.on_modified`` is unset): no write can wake anyone;
- the command is ``GET key`` or ``SET key value`` spelled in upper or lower case (anything else, options
  included, takes the general path);
- in cluster mode, the key's slot is this node's and neither MIGRATING nor IMPORTING, the cluster is ok, the
  client did not send ASKING and this node is a master (actors/cluster/routing.py ``lane_view``): anything else
  stops the run at that command, which the dispatcher routes (MOVED, ASK, TRYAGAIN ...) in pipeline order;
- for GET, the key has no TTL (lazy expiry belongs to ``Keyspace.lookup``) and holds a string (the WRONGTYPE
  error is the general path's); for SET, nobody WATCHes a key of the database (``Keyspace.touch``).

Effects kept identical: the value stored and any TTL dropped, ``keyspace.dirty``, the write propagated to the
AOF and the replicas through ``PropagationStream.propagate`` (same bytes, same SELECTs), keyspace hits and
misses, the command's ``calls`` (INFO commandstats and ``total_commands_processed``, their sum) and the client's
``last_command``. The counters are published before the caller runs the next command, so nothing can observe
them lagging.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import TYPE_CHECKING

from actors.server.latencystats import record as record_latency
from protocol.resp import BULK_HEADERS, CRLF, OK_REPLY
from protocol.slots import keyslot

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server

_NULL_RESP2 = b"$-1\r\n"
_NULL_RESP3 = b"_\r\n"
_MAX_CACHED_HEADER = len(BULK_HEADERS) - 1
# The names the lane may run, as clients send them: the caller tests this before calling.
NAMES = frozenset((b"GET", b"get", b"SET", b"set"))


class FastLane:
    """Runs plain GET/SET for one server; see the module docstring for when and why."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.get_command = server.orig_commands[b"get"]
        self.set_command = server.orig_commands[b"set"]

    def run_one(self, client: Client, argv: list[bytes], out: list[bytes]) -> bool:
        """Run ``argv``, a read's only command (an unpipelined client), as ``run`` would; False if it did not.

        The same checks and effects as ``run`` for a batch of one, without its setup for runs (locals for the
        loops, both commands' counters): unpipelined, that setup was most of the lane's cost per request.
        """
        server = self.server
        keyspace = server.keyspace
        if not (
            server._lane_open
            and client.multi is None
            and client.unchecked
            and not client.channels
            and not client.patterns
            and keyspace.on_modified is None
            and server.after_command is None
        ):
            return False
        db = client.db
        name = argv[0]
        nargs = len(argv)
        if nargs == 2 and (name == b"GET" or name == b"get"):
            cmd = self.get_command
        elif nargs == 3 and (name == b"SET" or name == b"set") and not db.watched:
            cmd = self.set_command
        else:
            return False
        key = argv[1]
        cluster = server._cluster
        if cluster is not None:  # as ``run``: this node's slot, not moving, else the dispatcher routes it
            view = cluster.lane_view(client)
            if view is None:
                return False
            owners, me, migrating, importing = view
            slot = keyslot(key)
            if owners[slot] != me or slot in migrating or slot in importing:
                return False
        started_ns = perf_counter_ns()
        if nargs == 2:
            expires = db.expires
            if expires and key in expires:
                return False  # lazy expiry is Keyspace.lookup's
            value = db.data.get(key)
            if type(value) is bytes:
                if server.memory.tracking:
                    db.note_access(key)
                size = len(value)
                out += (BULK_HEADERS[size] if size <= _MAX_CACHED_HEADER else b"$%d\r\n" % size, value, CRLF)
                keyspace.keyspace_hits += 1
            elif value is None:
                out.append(_NULL_RESP3 if client.resp3 else _NULL_RESP2)
                keyspace.keyspace_misses += 1
            else:
                return False  # WRONGTYPE is the general path's
            client.last_command = "get"
        else:
            memory = server.memory
            if memory.tracking and keyspace.account.dataset_bytes > memory.room_bytes():
                return False  # the dispatcher evicts (or refuses) first
            db.set(key, argv[2])
            stream = server.stream
            if stream.aof_feeding or stream.repl_feeding:
                stream.propagate(db.id, argv)
                client.woff = stream.offset
            out.append(OK_REPLY)
            keyspace.dirty += 1
            client.last_command = "set"
        # INFO commandstats and latency-tracking as Server.call counts them (SLOWLOG: see ``run``).
        duration_us = (perf_counter_ns() - started_ns) // 1000
        cmd.calls += 1
        cmd.usec += duration_us
        if duration_us < server.latency_small_us:
            cmd.latency_us[duration_us] += 1
        elif server.latency_tracking:
            record_latency(cmd, duration_us)
        return True

    def run(self, client: Client, commands: list[list[bytes]], start: int, out: list[bytes]) -> int:
        """Run ``commands[start:]`` while the lane applies, appending encoded replies to ``out``.

        Returns the index of the first command not run (``len(commands)`` when all were).
        """
        server = self.server
        keyspace = server.keyspace
        if not (
            server._lane_open
            and client.multi is None
            and client.unchecked
            and not client.channels
            and not client.patterns
            and keyspace.on_modified is None
            and server.after_command is None
        ):
            return start
        # Cluster mode: the slot map for this run (actors/cluster/routing.py lane_view).
        cluster = server._cluster
        slotted = cluster is not None
        if cluster is not None:
            view = cluster.lane_view(client)
            if view is None:
                return start
            owners, me, migrating, importing = view
            moving = bool(migrating or importing)
        started_ns = perf_counter_ns()
        db = client.db
        get = db.data.get
        expires = db.expires
        can_set = not db.watched
        null_reply = _NULL_RESP3 if client.resp3 else _NULL_RESP2
        # maxmemory or an eviction policy (actors/server/maxmemory.py): reads stamp their key; a SET past the
        # room left goes to the dispatcher, which evicts (or refuses) before it runs.
        # Bound only when tracked: unpipelined, every request pays this setup (measured with callgrind).
        tracked = server.memory.tracking
        if tracked:
            note_access = db.note_access
            account = keyspace.account
            room = server.memory.room_bytes()
        # One test per command for the rare checks (a key with a TTL in the database, cluster mode, maxmemory).
        careful_get = slotted or bool(expires)
        careful_set = slotted or tracked
        append = out.append
        gets = misses = sets = 0
        last = ""
        index = start
        end = len(commands)
        # Runs of the same command (a pipeline is usually all SETs or all GETs), each in its own tight loop:
        # at -P 16 the interpreter's cost per bytecode is the node's throughput, so every one counts here.
        while index < end:
            run_start = index
            name = commands[index][0]
            if name == b"GET" or name == b"get":
                for index in range(run_start, end):
                    try:
                        name, key = commands[index]
                    except ValueError:
                        break
                    if name != b"GET" and name != b"get":
                        break
                    if careful_get:
                        if expires and key in expires:
                            break  # lazy expiry is Keyspace.lookup's
                        if slotted:
                            slot = keyslot(key)
                            if owners[slot] != me or (moving and (slot in migrating or slot in importing)):
                                break  # routing.route's: MOVED, ASK, TRYAGAIN ...
                    value = get(key)
                    if type(value) is bytes:
                        try:
                            out += (BULK_HEADERS[len(value)], value, CRLF)
                        except IndexError:
                            out += (b"$%d\r\n" % len(value), value, CRLF)
                    elif value is None:
                        misses += 1
                        append(null_reply)
                    else:
                        break  # WRONGTYPE is the general path's
                else:
                    index = end
                if index > run_start:
                    gets += index - run_start
                    last = "get"
                    if tracked:  # the run's hits stamped as accessed (nothing reads the stamps in between)
                        for i in range(run_start, index):
                            key = commands[i][1]
                            if type(get(key)) is bytes:
                                note_access(key)
            elif can_set and (name == b"SET" or name == b"set"):
                for index in range(run_start, end):
                    try:
                        name, key, value = commands[index]
                    except ValueError:
                        break
                    if name != b"SET" and name != b"set":
                        break
                    if careful_set:
                        if slotted:
                            slot = keyslot(key)
                            if owners[slot] != me or (moving and (slot in migrating or slot in importing)):
                                break  # routing.route's: MOVED, ASK, TRYAGAIN ...
                        if tracked:
                            # maxmemory: one SET at a time, so the room check sees each one's charge.
                            if account.dataset_bytes > room:
                                break
                            db.set(key, value)
                else:
                    index = end
                if index > run_start:
                    # The run's stores, then its propagation: both before any other command runs.
                    if not tracked:
                        if index - run_start == 1:  # unpipelined: the store's writer, no run's loop
                            db.set(commands[run_start][1], commands[run_start][2])
                        else:  # the kvstore's writer of a run of SETs (actors/data/kvstore.py)
                            db.set_run(commands, run_start, index)
                    stream = server.stream  # (read per run of SETs: a run of GETs never needs it)
                    if stream.aof_feeding or stream.repl_feeding:
                        db_id = db.id
                        propagate = stream.propagate
                        for i in range(run_start, index):
                            propagate(db_id, commands[i])
                    sets += index - run_start
                    append(OK_REPLY * (index - run_start))
                    last = "set"
            if index == run_start:
                break
        ran = index - start
        if ran:
            # INFO commandstats: the run's time, shared by its commands (one clock read per run, not per
            # command). SLOWLOG does not see these: a plain GET or SET never takes milliseconds.
            per_command_us = (perf_counter_ns() - started_ns) / 1000 / ran
            # latency-tracking: the run's histogram counts, one bump per command name (as Server.call's).
            whole_us = int(per_command_us)
            small = whole_us < server.latency_small_us
            if gets:
                cmd = self.get_command
                cmd.calls += gets
                cmd.usec += round(per_command_us * gets)
                if small:
                    cmd.latency_us[whole_us] += gets
                elif server.latency_tracking:
                    record_latency(cmd, whole_us, gets)
                keyspace.keyspace_hits += gets - misses
                keyspace.keyspace_misses += misses
            if sets:
                cmd = self.set_command
                cmd.calls += sets
                cmd.usec += round(per_command_us * sets)
                if small:
                    cmd.latency_us[whole_us] += sets
                elif server.latency_tracking:
                    record_latency(cmd, whole_us, sets)
                keyspace.dirty += sets
            client.last_command = last
        return index
