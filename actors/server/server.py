"""The node's state and its command dispatcher, independent of any transport.

``Server.execute(client, argv)`` is the single entry point for every command from every source (RESP,
ZeroMQ, the AOF loader, the master's replication stream). In order it checks, as Redis's ``processCommand``
does: the command exists and has the right arity, authentication, ACL permissions (actors/server/acl.py, only while
a restricted user exists), commands refused inside MULTI (and EXEC
against the flags of what it would run), read-only replica, min-replicas, pub/sub context, stale replica,
loading; then queues it inside MULTI, or runs it and, if it wrote, propagates it. A refusal inside MULTI makes
EXEC answer EXECABORT.

Propagation: every write goes to ``server.stream`` (actors/server/stream.py), which owns the tick's chunks,
the selected database and the replication offset; at the end of each loop tick the master actor takes the
tick's ``StreamBatch`` and hands it, once, to the AOF and to the replication actor. The ``prop_*`` /
``repl_*`` attributes are the stream's, kept as properties for the actors that still use those names
(``StreamNames``, actors/server/server_state.py, with the node-wide flags of ``NodeRestrictions``).

Runs on the master actor's event-loop thread only.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from actors.commands import BLOCKED as BLOCKED  # re-exported: loop/ and replication/ import it from here
from actors.commands import Command, apply_renames, instance_table, load_all
from actors.commands.redis_flags import redis_flagged
from actors.commands.transactions import EXECABORT_BECAUSE, discard_transaction, exec_refusal
from actors.config import Config
from actors.data import rdb_hooks
from actors.data.keyspace import Keyspace, wall_clock_ms
from actors.server import blocking, cmdstats, latency, latencystats, notify
from actors.server.acl import Acl
from actors.server.buffers import OutputBufferLimits
from actors.server.client import Client, ClientKind
from actors.server.client_memory import CLIENT_EVICTED, ClientEviction
from actors.server.dispatch import GeneralLane, internal_error
from actors.server.maxmemory import MemoryGuard
from actors.server.oom_score import OomScore
from actors.server.pause import ClientPause
from actors.server.ports import (
    ClusterPort,
    MasterPort,
    PersistencePort,
    ReplicationPort,
    SnapshotCodec,
    SupervisorPort,
)
from actors.server.redact import redacted
from actors.server.server_state import NodeRestrictions, StreamNames
from actors.server.stream import PropagationStream
from actors.server.stream import without_spans as without_spans  # re-exported for persistence
from actors.version import REDIS_VERSION as REDIS_VERSION  # re-exported for persistence/rdb
from actors.version import VERSION as VERSION  # re-exported for launcher/
from protocol import errors
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.scripting.engine import ScriptEngine
    from actors.server.shutdown import ShutdownFlags

# What a busy script replayed from the AOF hands the loop's greenlet for a turn (``Server.loading_turns``).
LOADING_TURN = "loading turn"
_QUEUED = "QUEUED"
_NOT_IN_MULTI = "ERR Command not allowed inside a transaction"
_MASTERDOWN = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
_PUBSUB_ALLOWED = "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"


# Commands MONITOR shows before they run (Redis 7.0 logs EVAL / FCALL ahead of the commands their script
# calls); every other command is shown once it has run, as Redis's call() does.
_MONITORED_BEFORE = frozenset(("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"))


def _full_name(cmd: Command, argv: list[bytes]) -> str:
    """The name Redis puts in some errors: ``config|get`` for a container's subcommand, else the command's."""
    if cmd.subcommands and len(argv) > 1:
        sub = argv[1].lower().decode("utf-8", "replace")
        if sub in cmd.subcommands:
            return f"{cmd.name}|{sub}"
    return cmd.name


@dataclass
class Stats:
    """Counters INFO stats reports; CONFIG RESETSTAT zeroes them."""

    total_connections_received: int = 0
    # (total_commands_processed is Server.total_commands_processed: the sum of the commands' own counters.)
    rejected_connections: int = 0
    evicted_clients: int = 0  # maxmemory-clients (actors/server/client_memory.py)
    net_input_bytes: int = 0
    net_output_bytes: int = 0
    # Reads from and writes to client sockets (RESP) and bus batches (native): total_reads/writes_processed.
    reads_processed: int = 0
    writes_processed: int = 0
    total_error_replies: int = 0
    # Errors replied to the master's stream or the AOF's commands (Redis's stat_unexpected_error_replies).
    unexpected_error_replies: int = 0
    # RESTORE payloads' blobs deep-checked under sanitize-dump-payload (Redis's stat_dump_payload_sanitizations).
    dump_payload_sanitizations: int = 0
    sync_full: int = 0
    sync_partial_ok: int = 0
    sync_partial_err: int = 0
    # Error replies by prefix (ERR, WRONGTYPE...): INFO errorstats (actors/server/errorstats.py).
    error_counts: dict[str, int] = field(default_factory=dict)


# No threshold (latency monitor off, SLOWLOG off): larger than any duration.
_NEVER_US = 1 << 62
# slowlog.h: how much of a command a SLOWLOG entry keeps.
SLOWLOG_ENTRY_MAX_ARGC = 32
SLOWLOG_ENTRY_MAX_STRING = 128
# sdscatrepr's escapes; other bytes outside printable ASCII are written as \xHH.
_QUOTE_ESCAPES = {
    0x5C: b"\\\\",
    0x22: b'\\"',
    0x0A: b"\\n",
    0x0D: b"\\r",
    0x09: b"\\t",
    0x07: b"\\a",
    0x08: b"\\b",
}
_QUOTE_BYTES = [_QUOTE_ESCAPES.get(b, bytes((b,)) if 32 <= b < 127 else b"\\x%02x" % b) for b in range(256)]


def _quote(arg: bytes) -> bytes:
    """An argument as MONITOR shows it (Redis's sdscatrepr): in double quotes, escaped."""
    if arg.isalnum():
        return b'"' + arg + b'"'
    return b'"' + b"".join([_QUOTE_BYTES[b] for b in arg]) + b'"'


class Server(NodeRestrictions, StreamNames):
    """Everything a command can reach: keyspace, config, clients, stats, and the handles to other actors."""

    def __init__(
        self,
        config: Config,
        clock: Callable[[], int] = wall_clock_ms,
        commands: Mapping[bytes, Command] | None = None,
    ) -> None:
        """``commands``: the specs this server runs (default: every registered command); a sentinel passes a
        subset plus its own. The server works on its own copies, so its counters are its own."""
        self.config = config
        # Cluster mode keeps a per-slot key index (COUNTKEYSINSLOT, GETKEYSINSLOT, migration).
        self.keyspace = Keyspace(config["databases"], clock, per_slot=bool(config["cluster-enabled"]))
        # Every command by its own name: what lookups by a command's name (not a client's spelling) use, such
        # as the fast lanes' GET and SET, a blocked command's record and AOF replay's fallback.
        self.orig_commands: dict[bytes, Command] = instance_table(
            load_all() if commands is None else commands
        )
        # The table clients see, after redis.conf's rename-command lines (the same Commands, renamed or gone),
        # and each renamed spelling's own command name (empty without renames).
        self.commands = self.orig_commands
        self.renamed: dict[bytes, bytes] = {}
        if config["rename-command"]:
            self.commands = apply_renames(self.orig_commands, config["rename-command"])
            self.renamed = {
                name: cmd.name.encode()
                for name, cmd in self.commands.items()
                if self.orig_commands.get(name) is not cmd
            }
        # The same table keyed by the names as clients send them (redis-py and redis-benchmark: upper case), so
        # the common lookup needs no lower() call; mixed case falls back to ``commands``.
        self._by_sent_name: dict[bytes, Command] = {name.upper(): cmd for name, cmd in self.commands.items()}
        self._by_sent_name.update(self.commands)
        # Each Command once (aliases share one): total_commands_processed sums their ``calls`` on every cron tick
        # (ops/sec), and building this set there was most of an idle node's loop-thread instructions.
        self._unique_commands = tuple({id(cmd): cmd for cmd in self.commands.values()}.values())
        self.clients: dict[int, Client] = {}
        self.stats = Stats()
        self.run_id = os.urandom(20).hex()
        self.start_time_s = time.time()
        self.port = int(config["port"])
        # The config file the node started from ("" for none): INFO server's config_file.
        self.config_file = ""
        # `supervised` as resolved at start (launcher/supervised.py): INFO's process_supervised.
        self.supervised_mode = "no"
        # CONFIG REWRITE's writer, set by the launcher when the node has a config file (None: refused).
        self.config_rewrite: Callable[[], None] | None = None
        # Cached config values read on every command (CONFIG SET keeps them fresh).
        self.requirepass: str = config["requirepass"]
        config.on_change("requirepass", self._on_requirepass)
        # ACL users (actors/server/acl.py): while one is restricted, every command is checked (slow path).
        self.acl = Acl(self)
        # The node-wide restrictions below are properties (and the monitors list, changed through
        # add_monitor): changing one recomputes ``_unrestricted``, the single flag the dispatcher tests on every
        # command instead of seven.
        self._unrestricted = True
        # SSUBSCRIBE's registry (actors/commands/pubsub_shard.py): while it is not empty, commands take the
        # slow path, where a RESP2 client with shard subscriptions is held to the pub/sub commands.
        self.pubsub_shard_channels: dict[bytes, dict[Client, None]] = {}
        # Features that need every command on the dispatcher's full path while they are on (keyspace
        # notifications, client tracking, CLIENT PAUSE ...): see ``restrict``.
        self._restricted_by: set[str] = set()
        if any(self.commands.get(name) is not self.orig_commands.get(name) for name in (b"get", b"set")):
            # The fast lanes know GET and SET by their spelling (actors/loop/fastlane.py): renamed, or another
            # command renamed to one of them, and every command takes the full path.
            self._restricted_by.add("rename-command")
        # The same without maxmemory's part: the fast lane runs then too, and does the memory check itself.
        self._lane_open = True
        # Set while a dataset is loading: commands not flagged "loading" get -LOADING.
        self._loading = False
        # Set while a replica loads a full sync with repl-diskless-load swapdb: the old data is still served
        # (INFO async_loading:1, Redis's async loading); the new dataset is swapped in when it has loaded.
        self.async_loading = False
        # Replication role, maintained by the replication actor's loop-side handle.
        self._is_replica = False
        self.oom_score = OomScore(self)  # oom-score-adj (actors/server/oom_score.py)
        self._replica_read_only = bool(config["replica-read-only"])
        config.on_change("replica-read-only", lambda v: setattr(self, "replica_read_only", bool(v)))
        # On a replica whose link is down with replica-serve-stale-data no: most commands get MASTERDOWN.
        self._refuse_stale = False
        # min-replicas-to-write: the replication handle keeps this up to date (None: no limit).
        self._write_refusal: str | None = None
        # A script ran past busy-reply-threshold: the -BUSY text other clients get (actors/scripting/engine.py).
        self._script_busy: str | None = None
        # While an AOF replay slice runs in a greenlet of its own (actors/persistence/loading.py): the loop's
        # greenlet, which a busy script replayed from the file hands turns to, as it would for a client's.
        self.loading_turns: Any = None
        # The Lua engine (actors/scripting): scripts, function libraries, the run in progress. Made on first use
        # (the ``scripting`` property), so a node that runs no script imports no lupa and builds no Lua state;
        # until then the RDB hooks stand in for it (no libraries to write; libraries read make the engine).
        self._scripting: ScriptEngine | None = None
        # The client scripts' commands run as (Redis's lua_client): made here, not with the engine, because
        # redis-server makes it at start-up, so client ids (CLIENT ID, CLIENT LIST) count as redis-server's.
        self.lua_client = Client(self, ClientKind.INTERNAL, "lua", "")
        rdb_hooks.function_records = self._function_records
        rdb_hooks.functions_loaded = self._functions_loaded
        # SLOWLOG: the latest commands that took at least slowlog-log-slower-than microseconds (<0: none).
        self.slowlog: deque[list[Any]] = deque(maxlen=int(config["slowlog-max-len"]))
        self.slowlog_next_id = 0
        self.slowlog_threshold_us = int(config["slowlog-log-slower-than"])
        config.on_change("slowlog-log-slower-than", self._on_slowlog_threshold)
        # latency-tracking (actors/server/latencystats.py): call() counts durations below latency_small_us.
        self.latency_tracking = True
        self.latency_small_us = 0
        latencystats.attach(self)
        # latency-monitor-threshold in microseconds (0: off), compared with each command's duration in call().
        self.latency_threshold_us = int(config["latency-monitor-threshold"]) * 1000
        config.on_change("latency-monitor-threshold", self._on_latency_threshold)
        # The lowest duration the latency monitor or SLOWLOG wants to hear about: call() tests only this one.
        self._report_us = 0
        self._thresholds_changed()
        config.on_change("slowlog-max-len", self._on_slowlog_max_len)
        # MONITOR clients: every command run is echoed to them (which also keeps commands off the fast paths).
        self.monitors: list[Client] = []
        # MISCONF: persistence is failing (a BGSAVE with save points and stop-writes-on-bgsave-error, or AOF
        # writes); writes and PING are refused with this error. Kept up to date by actors/persistence.py.
        self._disk_error: str | None = None
        self._disk_error_logged_s = float("-inf")  # (server_state.py: master_write_despite_disk_error)
        # Propagation: the stream every write goes to (its only writer of the replication offset).
        # ``propagate`` is the stream's bound method itself, so a write costs no extra call on its way.
        self.stream = PropagationStream()
        self.propagate = self.stream.propagate
        self.propagate_to_replicas = self.stream.propagate_to_replicas
        # repl-id / repl-offset aux fields of the RDB loaded at start-up (None if none), so replication can
        # resume from them; set by actors/persistence.py.
        self.loaded_repl_id: str | None = None
        self.loaded_repl_offset: int | None = None
        # The keys a master's start-up load dropped because their time passed while it was down, as (db index,
        # key): replication sends their DELs once it restored the RDB's history (Redis's RDBFLAGS_FEED_REPL), so
        # replicas that continue that history drop them too (actors/replication/loop_side.py empties it).
        self.expired_on_load: list[tuple[int, bytes]] = []
        # Named INFO sections beyond the built-in ones: section name -> () -> [(field, value)].
        self.info_sections: dict[str, Callable[[], list[tuple[str, Any]]]] = {}
        # The other actors, as the commands see them (actors/server/ports.py); each actor's loop-side facade
        # installs itself here when it starts. None: the node runs without it (a sentinel, a unit test).
        self.persistence: PersistencePort | None = None
        self.replication: ReplicationPort | None = None
        self.supervisor: SupervisorPort | None = None
        # Cluster mode (actors/cluster): set through ``cluster`` below, which also turns the fast path off so
        # every command with keys is routed (MOVED / ASK / CROSSSLOT ...); the fast lane stays open and checks
        # each GET/SET's slot itself (actors/cluster/routing.py lane_view). None: a standalone node.
        self._cluster: ClusterPort | None = None
        self.master_actor: MasterPort | None = None
        # The RDB encoding, for DUMP / RESTORE / DEBUG RELOAD: installed with the master actor (None: those
        # commands answer that they are not available).
        self.rdb_codec: SnapshotCodec | None = None
        self.keyspace.on_expired = self._propagate_expired
        # Pub/sub registries (actors/commands/pubsub.py): channel or pattern -> subscribers, in subscription
        # order (a dict used as an ordered set).
        self.pubsub_channels: dict[bytes, dict[Client, None]] = {}
        self.pubsub_patterns: dict[bytes, dict[Client, None]] = {}
        # Called when a client goes away (pub/sub, blocked clients and WATCH clean up after it).
        self.client_removed_hooks: list[Callable[[Client], None]] = []
        # SHUTDOWN (actors/server/shutdown.py, installed by the node): request(flags, client) answers an error
        # message or None (stopping, or waiting for replicas); abort() ends a wait (False: none).
        self.request_shutdown: Callable[[ShutdownFlags, Client | None], str | None] = lambda flags, client: (
            None
        )
        self.abort_shutdown: Callable[[], bool] = lambda: False
        # INFO's shutdown_in_milliseconds (the Shutdown's remaining_ms): None while no shutdown waits.
        self.shutdown_in_ms: Callable[[], int | None] = lambda: None
        # False after DEBUG SET-ACTIVE-EXPIRE 0: only lazy expiry runs.
        self.active_expire_enabled = True
        # DEBUG PAUSE-CRON 1: the loop's cron does nothing until it is resumed.
        self.cron_paused = False
        # DEBUG QUICKLIST-PACKED-THRESHOLD's value (actors/commands/debug.py); no layout here depends on it.
        self.quicklist_packed_threshold_bytes = 1 << 30
        # DEBUG SET-DISABLE-DENY-SCRIPTS 1: scripts may call commands flagged noscript (Redis's tests use it).
        self.script_disable_deny_script = False
        # DEBUG DROP-CLUSTER-PACKET-FILTER: a cluster bus message type dropped as it arrives (-1: none).
        self.cluster_drop_packet_filter = -1
        # Set by actors/blocking.py when a key that clients block on got data: execute() calls it once the
        # current command has finished, so they are served in the same tick, after the write that fed them
        # (Redis's handleClientsBlockedOnKeys).
        self.after_command: Callable[[], None] | None = None
        # maxmemory, eviction and access tracking (actors/server/maxmemory.py); while it tracks, execute's fast
        # path is off (every command passes the memory check); the fast lane does its own (``_lane_open``).
        self.client_eviction = ClientEviction(self)  # first: used_memory counts the clients' buffers
        self.memory = MemoryGuard(self)
        # client-output-buffer-limit (actors/server/buffers.py), checked by the transports after each flush.
        self.output_limits = OutputBufferLimits(self)
        self.client_eviction.start()
        self._restrictions_changed()  # the configuration may start with one (slowlog-log-slower-than 0)
        notify.install(self)  # keyspace notifications follow notify-keyspace-events
        # CLIENT PAUSE (actors/server/pause.py): while on, execute() holds the commands it names.
        self.client_pause = ClientPause(self)
        # The general lane (actors/server/dispatch.py): runs of data commands, checked once per run.
        self.general_lane = GeneralLane(self)

    def _on_requirepass(self, value: Any) -> None:
        self.requirepass = value

    def _on_slowlog_threshold(self, value: Any) -> None:
        self.slowlog_threshold_us = int(value)
        self._thresholds_changed()
        self._restrictions_changed()

    def _on_latency_threshold(self, value: Any) -> None:
        self.latency_threshold_us = int(value) * 1000
        self._thresholds_changed()

    def _thresholds_changed(self) -> None:
        lowest = _NEVER_US
        if self.latency_threshold_us > 0:
            lowest = self.latency_threshold_us
        if 0 <= self.slowlog_threshold_us < lowest:
            lowest = self.slowlog_threshold_us
        self._report_us = lowest

    def _on_slowlog_max_len(self, value: Any) -> None:
        self.slowlog = deque(self.slowlog, maxlen=int(value))

    def _log_slow(self, client: Client, argv: list[bytes], duration_us: int) -> None:
        """A SLOWLOG entry (slowlogCreateEntry): at most 32 arguments of at most 128 bytes, as Redis trims;
        passwords and ACL rules redacted (actors/server/redact.py)."""
        args = argv = redacted(argv, self.renamed)
        if len(argv) > SLOWLOG_ENTRY_MAX_ARGC:
            args = argv[: SLOWLOG_ENTRY_MAX_ARGC - 1] + [
                b"... (%d more arguments)" % (len(argv) - SLOWLOG_ENTRY_MAX_ARGC + 1)
            ]
        args = [
            a[:SLOWLOG_ENTRY_MAX_STRING] + b"... (%d more bytes)" % (len(a) - SLOWLOG_ENTRY_MAX_STRING)
            if len(a) > SLOWLOG_ENTRY_MAX_STRING
            else a
            for a in args
        ]
        entry = [self.slowlog_next_id, int(time.time()), duration_us, args, client.addr.encode(), client.name]
        self.slowlog_next_id += 1
        self.slowlog.appendleft(entry)

    @property
    def scripting(self) -> ScriptEngine:
        engine = self._scripting
        if engine is None:
            from actors.scripting.engine import ScriptEngine

            engine = self._scripting = ScriptEngine(self, REDIS_VERSION)  # installs its own RDB hooks
        return engine

    @property
    def scripting_started(self) -> ScriptEngine | None:
        """The engine if a script, a function or an RDB library made one (FUNCTION FLUSH need not build it:
        the first build loads Lua, ~15 ms, which a fresh node's first FUNCTION FLUSH used to pay)."""
        return self._scripting

    def _function_records(self) -> bytes:
        engine = self._scripting
        return engine.functions.rdb_records() if engine is not None else b""

    def _functions_loaded(self, codes: list[bytes]) -> None:
        if codes or self._scripting is not None:  # no engine and none read: no libraries to replace
            self.scripting.load_rdb_functions(codes)  # the engine's own hook from now on

    # -- dispatch --------------------------------------------------------------------------------------

    def execute(self, client: Client, argv: list[bytes]) -> Any:
        """Run one command for ``client``; returns its reply (a CommandError for error replies)."""
        cmd = self._by_sent_name.get(argv[0])
        if cmd is None:
            cmd = self.commands.get(argv[0].lower())
        if cmd is None:
            if client.multi is not None:
                client.multi_error = True
            return errors.unknown_command(errors.echoed(argv[0]), argv[1:])
        arity = cmd.arity
        if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
            cmd.rejected_calls += 1  # Redis's rejectCommand: INFO commandstats counts it
            if client.multi is not None:
                client.multi_error = True
            return errors.wrong_arity(cmd.name)
        multi = client.multi
        if (
            multi is None
            and self._unrestricted
            and client.unchecked
            and not (client.channels or client.patterns)
        ):
            # The common case: none of the checks below can refuse this command. (RespConnection._run in
            # actors/loop/master.py makes this same test before calling ``call`` itself: keep the two alike.)
            reply = self.call(client, cmd, argv)
            if self.after_command is not None:
                self.after_command()
            return reply
        if not client.authenticated and not cmd.no_auth and self.acl.auth_required_by_default():
            return self._reject(client, cmd, errors.NOAUTH)
        if self.acl.enforcing:
            denial = self.acl.check_command(client, cmd, _full_name(cmd, argv), argv)
            if denial is not None:
                return self._reject(client, cmd, denial)
        if self._cluster is not None and client.kind is not ClientKind.MASTER:
            # Redis's getNodeByQuery, after authentication, before everything else (actors/cluster/routing.py).
            redirect = self._cluster.route(client, cmd, argv)
            if redirect is not None:
                if cmd.name == "exec":
                    discard_transaction(client)
                return self._reject(client, cmd, redirect)
        if multi is not None:
            if "deny-multi" in cmd.flags:
                return self._reject(client, cmd, _NOT_IN_MULTI)
            if multi and cmd.name == "exec":
                # Redis judges EXEC by the flags of what it would run: a write queued before this node became
                # a read-only replica (or lost its good replicas) aborts the whole transaction.
                refusal = exec_refusal(self, client, multi)
                if refusal is not None:
                    cmd.rejected_calls += 1
                    discard_transaction(client)
                    return CommandError(EXECABORT_BECAUSE.format(refusal))
        if self.client_eviction.enabled and self.client_eviction.before_command(client):
            return CLIENT_EVICTED  # the caller was the biggest: closed, nothing is sent
        if self.memory.enforcing:
            oom = self.memory.before_command(client, cmd, argv)  # evicts first; Redis's order: before MISCONF
            if oom is not None:  # (counted on the subcommand, as Redis: XGROUP CREATE is the one refused)
                return self._reject(client, cmdstats.subcommand(cmd, argv) if cmd.subcommands else cmd, oom)
        if self.disk_error is not None and (cmd.is_write or cmd.name == "ping"):
            # As Redis, before NOREPLICAS and READONLY; PING too, so health checks notice.
            if client.kind is not ClientKind.MASTER:
                return self._reject(client, cmd, self.disk_error)
            self.master_write_despite_disk_error(cmd.name)
        if cmd.is_write and client.kind is not ClientKind.MASTER:
            if self.is_replica and self.replica_read_only:
                return self._reject(client, cmd, errors.READONLY)
            if self.write_refusal is not None:
                return self._reject(client, cmd, self.write_refusal)
        if (
            (client.channels or client.patterns or client.shard_channels)
            and not client.resp3
            and not cmd.allowed_in_pubsub
        ):
            return self._reject(client, cmd, _PUBSUB_ALLOWED.format(_full_name(cmd, argv)))
        if self.refuse_stale and not cmd.allowed_when_stale and client.kind is not ClientKind.MASTER:
            return self._reject(client, cmd, _MASTERDOWN)
        if self.loading and not cmd.allowed_while_loading:
            return self._reject(client, cmd, errors.LOADING)
        # Redis's CMD_NO_ASYNC_LOADING (REPLICAOF, SAVE, CLUSTER FAILOVER ...): they would save, serve or drop
        # the dataset being replaced while a replica async-loads.
        if self.async_loading and redis_flagged("no_async_loading", cmd, argv):
            return self._reject(client, cmd, errors.LOADING)
        if (
            self._script_busy is not None
            and client.kind is not ClientKind.MASTER  # a master's stream is applied, never refused
            and not self.scripting.busy_allows(cmd.name, argv)
        ):
            return self._reject(client, cmd, self._script_busy)
        if self.client_pause.active and self.client_pause.holds(client, cmd, argv):
            return self.client_pause.postpone(client, argv)
        if multi is not None and cmd.queues_in_multi:
            multi.append((cmd, argv))
            return _QUEUED
        reply = self.call(client, cmd, argv)
        if self.after_command is not None:
            self.after_command()
        return reply

    def _reject(self, client: Client, cmd: Command, message: str) -> CommandError:
        """Refuse ``cmd`` before it runs (Redis's rejectCommand): counted, and it dooms an open transaction."""
        cmd.rejected_calls += 1
        if client.multi is not None:
            if cmd.name == "exec":  # Redis's execCommandAbort: the refusal ends the transaction
                discard_transaction(client)
                return CommandError(EXECABORT_BECAUSE.format(message))
            client.multi_error = True
        return CommandError(message)

    def call(self, client: Client, cmd: Command, argv: list[bytes]) -> Any:
        """Run ``cmd`` (already checked) and propagate it if it changed the dataset."""
        keyspace = self.keyspace
        dirty_before = keyspace.dirty
        # A container (CONFIG, CLIENT ...): counted and named per subcommand, as Redis (actors/server/cmdstats.py).
        if cmd.subcommands:
            cmd = cmdstats.subcommand(cmd, argv)
        client.last_command = cmd.name
        if self.monitors and cmd.name in _MONITORED_BEFORE:
            self._feed_monitors(client, argv)  # a script's line precedes those of the commands it runs
        started_ns = perf_counter_ns()
        try:
            reply = cmd.fn(client, argv)
        except CommandError as exc:
            reply = exc
            cmd.failed_calls += 1
        except Exception as exc:  # a bug of ours: an error reply, not a closed connection (dispatch.py)
            reply = internal_error(cmd.name, exc)
            cmd.failed_calls += 1
        duration_us = (perf_counter_ns() - started_ns) // 1000
        cmd.usec += duration_us
        if duration_us < self.latency_small_us:  # latency-tracking (actors/server/latencystats.py)
            cmd.latency_us[duration_us] += 1
        elif self.latency_tracking:
            latencystats.record(cmd, duration_us)
        if duration_us >= self._report_us or reply is BLOCKED:  # (one test for the common, quick command)
            if duration_us >= self.latency_threshold_us > 0:
                latency.command_ran(self, "fast" in cmd.flags, duration_us)
            # A key wait (BLPOP ...) is logged when served, with its serving time added, as Redis 7.0.
            held = reply is BLOCKED and blocking.hold_for_slowlog(client, argv, duration_us)
            if duration_us >= self.slowlog_threshold_us >= 0 and cmd.name != "exec" and not held:
                # EXEC's commands are logged each (Redis: skip_slowlog)
                self._log_slow(client, argv, duration_us)
        cmd.calls += 1  # total_commands_processed is the sum of these (one increment per command, not two)
        if self.monitors and not cmd.is_admin and cmd.name not in _MONITORED_BEFORE:
            self._feed_monitors(client, argv)
        # ``>``: a save resets dirty to 0, and SAVE / SHUTDOWN SAVE must not reach the replicas (Redis clamps
        # call()'s dirty delta at 0 for the same reason).
        if keyspace.dirty > dirty_before:
            stream = self.stream
            propagate_as = client.propagate_as
            if propagate_as is not None:
                # Empty for a script's EVAL / FCALL (its effects were propagated when it ended): no call then.
                if propagate_as:
                    stream.propagate_several(client.db.id, propagate_as)
                client.propagate_as = None
            elif stream.aof_feeding or stream.repl_feeding or stream.exec_writes is not None:
                # (propagate's own first tests: while nothing consumes the stream a write costs no call)
                self.propagate(client.db.id, argv)
            client.woff = stream.offset
        elif client.propagate_as is not None:
            client.propagate_as = None
        return reply

    @property
    def total_commands_processed(self) -> int:
        """INFO's total_commands_processed: every command run counts once in its own ``calls`` (call() and the
        fast lane keep the two together, CONFIG RESETSTAT zeroes them together), so the total is their sum,
        read when asked rather than kept by a second increment on every command."""
        return sum([cmd.calls for cmd in cmdstats.with_subcommands(self._unique_commands)])

    # -- clients ---------------------------------------------------------------------------------------

    def add_client(self, client: Client) -> None:
        self.clients[client.id] = client
        self.stats.total_connections_received += 1

    def add_monitor(self, client: Client) -> None:
        if client not in self.monitors:
            self.monitors.append(client)
            self._restrictions_changed()

    def shard_subscriptions_changed(self) -> None:
        """SSUBSCRIBE / SUNSUBSCRIBE changed whether anyone holds a shard subscription."""
        self._restrictions_changed()

    def remove_monitor(self, client: Client) -> None:
        """RESET of a monitor: it stops receiving lines (its own RESET included), as in Redis."""
        if client in self.monitors:
            self.monitors.remove(client)
            self._restrictions_changed()

    def _feed_monitors(self, client: Client, argv: list[bytes]) -> None:
        """One line per command run, as Redis's replicationFeedMonitors: time, database (after the command),
        address, then the arguments quoted (credentials redacted: actors/server/redact.py)."""
        now = time.time()
        args = redacted(argv, self.renamed)
        line = b"+%d.%06d [%d %s] %s\r\n" % (
            int(now),
            int((now % 1) * 1_000_000),
            client.db.id,
            client.addr.encode(),
            b" ".join(_quote(arg) for arg in args),
        )
        for monitor in list(self.monitors):
            monitor.write_raw(line)

    def remove_client(self, client: Client) -> None:
        self.clients.pop(client.id, None)
        if client in self.monitors:
            self.monitors.remove(client)
            self._restrictions_changed()
        for db, key in client.watched:
            watchers = db.watched.get(key)
            if watchers is not None:
                watchers.discard(client)
                if not watchers:
                    del db.watched[key]
        client.watched.clear()
        for hook in self.client_removed_hooks:
            hook(client)

    def uptime_s(self) -> int:
        return int(time.time() - self.start_time_s)
