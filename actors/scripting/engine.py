"""Running scripts: the script cache, one run at a time, effects propagation, time limits and SCRIPT KILL.

A script runs on the loop thread, inside a greenlet of its own. Lua's count hook calls ``lua_hook`` every
HOOK_PERIOD_INSTRUCTIONS; until ``busy-reply-threshold`` milliseconds have passed it returns at once, so a
short script costs one greenlet switch and nothing else, and runs atomically (no other command can run:
the loop is inside it). Past the threshold the node is *busy* (``server.script_busy`` holds the -BUSY text):
every RUN_SLICE_S the hook switches back to the loop's greenlet, which serves one turn of I/O, where other
clients get -BUSY and SCRIPT KILL / FUNCTION KILL / SHUTDOWN NOSAVE are served, then resumes the script from
a ``call_soon`` callback. So the keyspace is still touched by nothing but the script, and the loop keeps
answering. The caller's connection sees its command as blocked (``client.blocked`` is the ScriptRun) and
gets the reply through ``client.deliver`` when the script ends. Where the caller cannot wait that way (inside
EXEC, the AOF loader, a master's stream, no event loop), the script simply runs to the end.

Effects replication: while a script runs, ``server.exec_propagation`` collects its writes; at the end they
are propagated as EXEC's are (actors/commands/transactions.py): one alone, several wrapped in MULTI/EXEC.
The EVAL itself is never propagated (``client.propagate_as = []``). ``redis.set_repl`` narrows where the
following writes go (REPL_NONE drops them, REPL_REPLICA sends them to the replicas only; REPL_AOF is kept
as REPL_ALL, the stream having no AOF-only span).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from enum import Enum
from time import monotonic
from typing import TYPE_CHECKING, Any

import greenlet
import structlog
from greenlet import getcurrent

from actors.commands.transactions import _propagate_transaction
from actors.data import rdb_hooks
from actors.scripting.bridge import REPL_ALL, RedisBridge, sha1_hex
from actors.scripting.convert import _INT64_MAX, _INT64_MIN, ReplyToLua, error_text, lua_to_reply
from actors.scripting.functions import FunctionStore
from actors.scripting.lane import make_call
from actors.scripting.runtime import FUNCTION_KILLED, SCRIPT_KILLED, LuaRuntime
from actors.server.client import Client, ClientKind
from actors.server.errorstats import CountedError, count_error_reply
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.server import Server

log = structlog.get_logger("redactor.scripting")

# Once busy, how long the script runs between two turns of the event loop: short enough that SCRIPT KILL
# is answered and acted on well within 100 ms, long enough that the loop's turns cost the script little.
RUN_SLICE_S = 0.01

BUSY_SCRIPT = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
BUSY_FUNCTION = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
NOTBUSY = "NOTBUSY No scripts in execution right now."
UNKILLABLE = (
    "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait "
    "the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
)


class _Suspended:
    """What the script's greenlet hands the loop when it pauses for a turn of I/O."""

    __slots__ = ()


SUSPENDED = _Suspended()


class RunState(Enum):
    RUNNING = "running"  # within busy-reply-threshold: atomic, nothing else runs
    BUSY = "busy"  # past it: other clients get -BUSY, the loop gets a turn every RUN_SLICE_S
    KILLED = "killed"  # SCRIPT KILL / FUNCTION KILL asked it to stop: the next hook raises in the script


_RUNNING = RunState.RUNNING  # (a module global: one lookup less on every script's hot path)


class ScriptRun:
    """One script in progress (there is at most one per node)."""

    __slots__ = (
        "caller",
        "name",
        "is_function",
        "read_only",
        "wrote",
        "state",
        "started_s",
        "slice_started_s",
        "writes",
        "outer_writes",
        "resp3",
        "repl_flags",
        "task",
        "argv",
        "numkeys",
    )
    slice_started_s: float  # when the current slice began (set once busy: only a busy run reads it)

    def __init__(
        self,
        caller: Client,
        name: str,
        is_function: bool,
        read_only: bool,
        argv: list[bytes],
        numkeys: int,
        outer_writes: list[tuple[int, list[bytes], bool]] | None,
        task: Any,
    ) -> None:
        self.start(caller, name, is_function, read_only, argv, numkeys, outer_writes, task)

    def start(
        self,
        caller: Client,
        name: str,
        is_function: bool,
        read_only: bool,
        argv: list[bytes],
        numkeys: int,
        outer_writes: list[tuple[int, list[bytes], bool]] | None,
        task: Any,
    ) -> None:
        """(Re)start this record for a new run: the engine reuses the record of a short run that ended, which
        costs a script less than making one. Only what a short run reads is set here (slice_started_s is set
        when the run goes busy). ScriptEngine.execute inlines this for a reused record: keep the two alike."""
        self.caller = caller
        self.name = name  # the sha of an EVAL script, the function's name for FCALL (error texts show it)
        self.is_function = is_function
        self.read_only = read_only  # EVAL_RO / FCALL_RO / a no-writes flag: writes are refused
        self.wrote = False  # a write ran: SCRIPT KILL answers UNKILLABLE
        self.state = _RUNNING
        self.started_s = monotonic()
        self.writes: list[tuple[int, list[bytes], bool]] = []  # the script's effects, propagated at the end
        self.outer_writes = outer_writes  # EXEC's list when inside EXEC (None otherwise)
        self.resp3 = False  # redis.setresp(3)
        self.repl_flags = REPL_ALL
        self.task = task  # the greenlet running the script
        # The command as sent (EVAL/EVALSHA/FCALL script-or-name numkeys keys... args...) and its numkeys.
        self.argv = argv
        self.numkeys = numkeys

    @property
    def keys(self) -> list[bytes]:
        """The keys the caller declared (numkeys): CLIENT TRACKING remembers them."""
        return self.argv[3 : 3 + self.numkeys]

    def can_yield(self, server: Server) -> bool:
        """May this run pause for turns of the event loop once busy? Asked only then (never on a short run):
        not inside EXEC, the AOF loader or a master's stream (their caller cannot wait), nor without a loop."""
        master = server.master_actor
        return (
            self.outer_writes is None
            and (self.caller.kind is ClientKind.RESP or self.caller.kind is ClientKind.NATIVE)
            and master is not None
            and master.loop is not None
        )


class ScriptEngine(RedisBridge):
    """The node's Lua runtime, its EVAL script cache and the run in progress. Loop thread only."""

    def __init__(self, server: Server, redis_version: str) -> None:
        self.server = server
        self.run: ScriptRun | None = None
        # Commands scripts may call, by name as scripts spell it ('get', 'GET'): one dict hit per call.
        self._script_commands: dict[bytes, Any] = {}
        self._lane_get = server.orig_commands.get(b"get")  # (lane.py: the script lane's two commands)
        self._lane_set = server.orig_commands.get(b"set")
        # The client scripts' commands run as (Redis's lua_client): its database follows the caller's.
        self.client = server.lua_client
        self.client.authenticated = True
        # Set while a client tracks keys (actors/server/tracking.py): told each command a script runs, with the
        # keys its caller declared, which Redis 7.0 remembers for the caller when the script reads (None:
        # nobody tracks, nothing to do).
        self.on_command: Callable[[Client, Any, list[bytes]], None] | None = None
        # redis.call (lane.py), made before the runtime that hands it to Lua; SET's {ok='OK'} tables come from
        # the converter's pool, which is made once the runtime exists.
        ok_pool: list[Any] = []
        self.lua_call = make_call(self, ok_pool, self._refill_ok)
        self.runtime = LuaRuntime(self, redis_version)
        to_lua = self._converter = ReplyToLua(self.runtime.lua, ok_pool)
        self._to_lua = to_lua.convert
        self._status = to_lua.status  # {ok=...} from a status's text (redis.call's general path)
        # EVAL scripts by sha1 (lower-case hex): the compiled function and its source (SCRIPT FLUSH empties it).
        self.scripts: dict[str, tuple[Any, bytes]] = {}
        # The same scripts by the sha's lower-case hex as bytes, as EVALSHA names them: (function, the source
        # when it opens with a shebang (flags for EVALSHA to check) or None, sha).
        self.by_sha: dict[bytes, tuple[Any, bytes | None, str]] = {}
        self._spare_run: ScriptRun | None = None  # a short run's record, for the next run (see execute)
        self.allow_oom = False  # the script about to run declared allow-oom (set by prepare_run)
        self.fcall_argv: list[bytes] = []  # the last FCALL's arguments (FUNCTION STATS names the running one)
        self._script_guarded: dict[bytes, tuple[Any, Any]] = {}  # commands checked per call (bridge.py)
        # The expiry clock scripts see (frozen_clock), bound once; the run it was worked out for, and its time.
        self._frozen_clock = self.frozen_clock
        self._frozen: tuple[ScriptRun | None, int] = (None, 0)
        # The greenlet scripts run in (see _task_loop); made again if it died or belongs to another thread.
        self._task: Any = None
        # The Lua entry point of the next job of the greenlet: runtime.run_script or runtime.run_function.
        self._run_script = self.runtime.run_script
        self._run_function = self.runtime.run_function
        self._entry: Any = self._run_script
        self.threshold_s = int(server.config["busy-reply-threshold"]) / 1000
        server.config.on_change("busy-reply-threshold", self._on_threshold)
        self.functions = FunctionStore(self)
        # The RDB reader and writer reach the libraries through these hooks (the last engine made wins: a
        # node process has one).
        rdb_hooks.function_records = self._rdb_records
        rdb_hooks.functions_loaded = self.load_rdb_functions

    def _refill_ok(self) -> None:
        self._converter.refill_ok()

    def _on_threshold(self, value: Any) -> None:
        self.threshold_s = int(value) / 1000

    # -- cache -------------------------------------------------------------------------------------------

    def compile(self, body: bytes) -> tuple[str, Any]:
        """(sha, function) for an EVAL body, compiling and caching it on first sight; raises CommandError."""
        sha = sha1_hex(body)
        cached = self.scripts.get(sha)
        if cached is not None:
            return sha, cached[0]
        source = body
        if body.startswith(b"#!"):
            # The shebang line is a comment to Lua; keeping the line keeps error line numbers right.
            source = b"--" + body[2:]
        fn, error = self.runtime.compile(source)
        if fn is None:
            raise CommandError(f"ERR Error compiling script (new function): {error}")
        self.scripts[sha] = (fn, body)
        self.by_sha[sha.encode()] = (fn, body if body.startswith(b"#!") else None, sha)
        return sha, fn

    def flush(self) -> None:
        self.scripts.clear()
        self.by_sha.clear()

    # -- running ----------------------------------------------------------------------------------------

    def execute(
        self,
        caller: Client,
        fn: Any,
        name: str,
        argv: list[bytes],
        numkeys: int,
        read_only: bool,
        is_function: bool = False,
    ) -> Any:
        """Run a compiled script or function for ``caller``; its reply, or BLOCKED if it went busy.

        ``argv`` is the command as sent (EVAL / EVALSHA / FCALL and their _RO forms all put numkeys at
        argv[2], the keys and then the arguments after it). The hot path of EVALSHA: every line here is paid
        by each script, so what only a busy run needs (may it yield?) is worked out in the hook, when the run
        gets there."""
        if self.run is not None:  # a script calling EVAL is refused earlier ("noscript"): defensive
            raise CommandError(BUSY_FUNCTION if self.run.is_function else BUSY_SCRIPT)
        # The stream itself, not Server's exec_propagation property: four property calls less per script.
        stream = self.server.stream
        outer = stream.exec_writes
        task = self._task
        if task is None or task.dead or task.parent is not getcurrent():
            task = self._task = greenlet.greenlet(self._task_loop)
        run = self._spare_run
        if run is None:
            run = ScriptRun(caller, name, is_function, read_only, argv, numkeys, outer, task)
        else:
            self._spare_run = None
            # ScriptRun.start, inlined (a Python call less per script): keep the two alike.
            run.caller = caller
            run.name = name
            run.is_function = is_function
            run.read_only = read_only
            run.wrote = False
            run.state = _RUNNING
            run.started_s = monotonic()
            run.writes = []
            run.outer_writes = outer
            run.resp3 = False
            run.repl_flags = REPL_ALL
            run.task = task
            run.argv = argv
            run.numkeys = numkeys
        self.run = run
        # Redis 7.0 freezes the clock expiry is judged by while a script runs: no key expires mid-script (TTLs
        # are still set and read on the real clock). Two stores per run: the frozen time is worked out only if
        # an expiry is judged (_frozen_clock). Put back when the run ends (_end, or the inline end below).
        # The run record is reused (_spare_run), so the frozen time is forgotten here, not matched by identity.
        self._frozen = (None, 0)
        keyspace = self.server.keyspace
        keyspace.expiry_clock = self._frozen_clock
        stream.exec_writes = run.writes
        script_client = self.client
        script_client.db = caller.db
        script_client.resp3 = False
        if is_function:
            self._entry = self._run_function
        try:
            result = task.switch(fn, numkeys, *argv[3:])
        except BaseException:
            self._task = None
            self._entry = self._run_script
            self._end(run)
            raise
        if is_function:
            self._entry = self._run_script  # (the greenlet reads it only when it starts a job)
        # The command itself is never propagated: its effects are (see the module docstring).
        caller.propagate_as = []
        if result is SUSPENDED:
            stream.exec_writes = outer
            caller.blocked = run
            from actors.server.server import BLOCKED

            return BLOCKED
        # _finish, inlined for the common short run (no busy state to clear).
        if run.state is not _RUNNING:
            reply = self._finish(run, result)
            if isinstance(reply, CommandError):
                raise reply  # (raised: Server.call counts the script's command as failed, as Redis)
            return reply
        stream.exec_writes = outer
        self.run = None
        keyspace.expiry_clock = keyspace.clock
        # Nothing keeps a short run's record once it ended (a busy one may be the caller's ``blocked``).
        self._spare_run = run
        writes = run.writes
        if writes:
            if len(writes) == 1:
                db_index, write, replicas_only = writes[0]
                if not replicas_only:  # one write, for everyone: as _propagate_transaction
                    # (PropagationStream.propagate's own test, first: with no EXEC around the script, no AOF
                    # and no replica, the write goes nowhere, and the call is saved.)
                    if outer is not None or stream.aof_feeding or stream.repl_feeding:
                        stream.propagate(db_index, write)
                else:
                    _propagate_transaction(self.server, writes)
            else:
                _propagate_transaction(self.server, writes)
        # One value: the script's (bytes most often); a tuple (false, error table): it failed.
        kind = type(result)
        if kind is bytes:
            return result
        if kind is int and _INT64_MIN <= result <= _INT64_MAX:
            # A number (redis-py's Lock, counters, rate limits): lua_to_reply's answer, two calls less.
            return result
        if kind is not tuple:
            reply = lua_to_reply(result, run.resp3, self.runtime.rawget)
            if isinstance(reply, CommandError):  # a returned {err=...}: EVAL failed (Server.call counts it)
                raise reply
            return reply
        raise self._error_reply(run, result[1])

    def frozen_clock(self) -> int:
        """The keyspace's expiry clock while a script runs: the node's clock as it was when the run began
        (worked out from the run's monotonic start on the first expiry judged, then remembered)."""
        run = self.run
        keyspace = self.server.keyspace
        if run is None:  # (between runs the node's clock is back in place: defensive)
            return keyspace.clock()
        frozen = self._frozen
        if frozen[0] is not run:
            # Rounded so as never to fall after the run's start (a key set with PX 1 by the script lives on).
            elapsed_ms = math.ceil((monotonic() - run.started_s) * 1000)
            frozen = self._frozen = (run, keyspace.clock() - elapsed_ms)
        return frozen[1]

    def _task_loop(self, *job: Any) -> None:
        """The body of the greenlet scripts run in, reused run after run (making a greenlet per script
        costs several times a short script's run): run a job, hand its result back, wait for the next."""
        back = greenlet.getcurrent().parent.switch  # execute() makes a new greenlet if the parent changes
        while True:
            job = back(self._entry(*job))

    def _resume(self) -> None:
        """A turn of the busy script (a call_soon callback on the loop)."""
        run = self.run
        if run is None or run.task is None:
            return
        server = self.server
        # The replies of the loop's last turn (-BUSY, SCRIPT KILL's OK) leave now, not after another slice.
        if server.master_actor is not None:
            server.master_actor.flush_now()
        server.exec_propagation = run.writes
        try:
            result = run.task.switch()
        except BaseException:
            self._end(run)
            raise
        if result is SUSPENDED:
            server.exec_propagation = run.outer_writes
            return
        reply = self._finish(run, result)
        caller = run.caller
        if caller.blocked is run:
            caller.blocked = None
        if isinstance(reply, CommandError):
            count_error_reply(server, reply)
            name = run.argv[0].lower()
            cmd = server.commands.get(name) or server.orig_commands.get(name)
            if cmd is not None:
                cmd.failed_calls += 1
        caller.deliver(reply)
        if server.after_command is not None:
            server.after_command()

    def _end(self, run: ScriptRun) -> None:
        server = self.server
        server.stream.exec_writes = run.outer_writes
        self.run = None
        server.keyspace.expiry_clock = server.keyspace.clock
        if run.state is not RunState.RUNNING:
            server.script_busy = None
            log.info(
                "script_finished_busy",
                name=run.name,
                duration_ms=int((time.monotonic() - run.started_s) * 1000),
            )

    def _finish(self, run: ScriptRun, result: Any) -> Any:
        """Propagate the effects and turn the script's outcome into the reply."""
        self._end(run)
        if run.writes:
            _propagate_transaction(self.server, run.writes)
        if type(result) is not tuple:
            return lua_to_reply(result, run.resp3, self.runtime.rawget)
        return self._error_reply(run, result[1])

    def _error_reply(self, run: ScriptRun, value: Any) -> CommandError:
        if not hasattr(value, "values"):
            return CommandError(f"ERR Error running script (call to {run.name}): @{value!r}")
        err = value[b"err"]
        text = error_text(err) if type(err) is bytes else "ERR unknown error"
        source = value[b"source"]
        line = value[b"line"]
        if type(source) is bytes and line is not None:
            text = f"{text} script: {run.name}, on {source.decode('utf-8', 'replace')}:{int(line)}."
        if value[b"ignore_error_stats_update"]:  # a command's error, counted when the command gave it
            return CountedError(text)
        return CommandError(text)

    def kill(self, functions: bool) -> str:
        """SCRIPT KILL (functions False) or FUNCTION KILL: OK, or raises NOTBUSY / UNKILLABLE / a mismatch."""
        run = self.run
        if run is None:
            raise CommandError(NOTBUSY)
        if run.caller.kind is ClientKind.MASTER:
            raise CommandError(
                "UNKILLABLE The busy script was sent by a master instance in the context of replication and "
                "cannot be killed."
            )
        if run.wrote:
            raise CommandError(UNKILLABLE)
        if run.is_function != functions:
            # SCRIPT KILL does not stop a function, nor FUNCTION KILL a script: the error names the other.
            raise CommandError(BUSY_FUNCTION if run.is_function else BUSY_SCRIPT)
        run.state = RunState.KILLED
        return "OK"

    # -- callbacks from Lua (ScriptHost) ----------------------------------------------------------------

    def lua_hook(self) -> bool:
        """Every HOOK_PERIOD_INSTRUCTIONS of a script: True makes the script raise the kill error."""
        run = self.run
        if run is None:
            return False
        if run.state is RunState.KILLED:
            return True
        now = time.monotonic()
        if run.state is RunState.RUNNING:
            if now - run.started_s < self.threshold_s:
                return False
            run.state = RunState.BUSY
            run.slice_started_s = run.started_s
            self.server.script_busy = BUSY_FUNCTION if run.is_function else BUSY_SCRIPT
            log.warning(
                "script_busy",
                name=run.name,
                threshold_ms=int(self.threshold_s * 1000),
                message=f"Slow script detected: still in execution after {int((now - run.started_s) * 1000)} "
                f"milliseconds. You can try killing the script using the "
                f"{'FUNCTION KILL' if run.is_function else 'SCRIPT KILL'} command. Script name is: {run.name}.",
            )
        if now - run.slice_started_s < RUN_SLICE_S:
            return False
        if not run.can_yield(self.server):
            loop_greenlet = self.server.loading_turns
            if loop_greenlet is None or run.caller.kind is not ClientKind.INTERNAL:
                return False
            # Replayed from the AOF: the replay slice waits inside this script, and the loop, handed a turn
            # straight from here, answers -LOADING meanwhile (Redis's processEventsWhileBlocked while loading);
            # it switches back into the script for the next slice (loading.py).
            from actors.server.server import LOADING_TURN

            loop_greenlet.switch(LOADING_TURN)
            run.slice_started_s = time.monotonic()
            return run.state is RunState.KILLED
        master = self.server.master_actor
        assert (
            master is not None and master.loop is not None
        )  # only a node's loop thread runs yielding scripts
        master.loop.call_soon(self._resume)
        run.task.parent.switch(SUSPENDED)
        run.slice_started_s = time.monotonic()
        return run.state is RunState.KILLED

    def lua_killed(self) -> bool:
        run = self.run
        return run is not None and run.state is RunState.KILLED

    def lua_killed_error(self) -> Any:
        run = self.run
        message = FUNCTION_KILLED if run is not None and run.is_function else SCRIPT_KILLED
        return self.runtime.table(err=message)

    def _rdb_records(self) -> bytes:
        """The libraries as RDB records (a forked child or a snapshot thread calls this: it only reads)."""
        return self.functions.rdb_records()

    def load_rdb_functions(self, codes: list[bytes]) -> None:
        """An RDB was read (start-up, a replica's full sync): its libraries replace ours, on the loop thread."""
        master = self.server.master_actor
        if master is not None and master.loop is not None and master.loop.is_running():
            master.call_threadsafe(self._install_loaded, list(codes))
        else:
            self._install_loaded(list(codes))

    def _install_loaded(self, codes: list[bytes]) -> None:
        try:
            self.functions.replace_all(codes)
        except CommandError as exc:
            log.error("rdb_functions_not_loaded", reason=str(exc))

    def busy_allows(self, name: str, argv: list[bytes]) -> bool:
        """May ``argv`` run while a script is busy? (Redis's allow-busy commands.)"""
        if name in ("auth", "hello", "multi", "discard", "watch", "unwatch"):  # Redis 7.0's ALLOW_BUSY
            return True
        if name == "shutdown":
            return any(arg.lower() == b"nosave" for arg in argv[1:])
        if name in ("script", "function") and len(argv) > 1:
            sub = argv[1].lower()
            return sub == b"kill" or (name == "function" and sub == b"stats")
        return False
