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

import hashlib
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
from actors.scripting.convert import ReplyToLua, error_text, lua_arg_bytes, lua_to_reply
from actors.scripting.functions import FunctionStore
from actors.scripting.runtime import FUNCTION_KILLED, SCRIPT_KILLED, LuaRuntime
from actors.server.acl import full_name
from actors.server.client import Client, ClientKind
from actors.server.errorstats import count_error_reply
from actors.server.maxmemory import OOM
from actors.server.pause import MAY_REPLICATE
from protocol import errors
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.server import Server

log = structlog.get_logger("redactor.scripting")

# Once busy, how long the script runs between two turns of the event loop: short enough that SCRIPT KILL
# is answered and acted on well within 100 ms, long enough that the loop's turns cost the script little.
RUN_SLICE_S = 0.01
# Distinct command spellings remembered for redis.call (a bound: scripts may build names at run time).
SCRIPT_COMMAND_CACHE_SIZE = 1024

BUSY_SCRIPT = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
BUSY_FUNCTION = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
NOTBUSY = "NOTBUSY No scripts in execution right now."
UNKILLABLE = (
    "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait "
    "the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
)
_UNKNOWN_COMMAND = "ERR Unknown Redis command called from script"
_WRONG_ARGS = "ERR Wrong number of args calling Redis command from script"
_NO_ARGS = "ERR Please specify at least one argument for this redis lib call"
_BAD_ARG = "ERR Lua redis lib command arguments must be strings or integers"
_NOT_FROM_SCRIPT = "ERR This Redis command is not allowed from script"
_WRITE_IN_RO = "ERR Write commands are not allowed from read-only scripts."
_LOG_LEVELS = ("debug", "info", "info", "warning")

# redis.set_repl's flags.
REPL_NONE, REPL_AOF, REPL_REPLICA, REPL_ALL = 0, 1, 2, 3


class ScriptCallError(Exception):
    """redis.call's error reply, raised through Lua: the error handler turns it into an {err=...} table, and
    a script that catches it with pcall can still read ``.err``, as it could read Redis's table."""

    def __init__(self, err: bytes) -> None:
        super().__init__(err.decode("utf-8", "replace"))
        self.err = err


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
        # Made for every script: only what a short run reads is set here (slice_started_s is set when the run
        # goes busy).
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


def sha1_hex(body: bytes) -> str:
    return hashlib.sha1(body).hexdigest()


class ScriptEngine:
    """The node's Lua runtime, its EVAL script cache and the run in progress. Loop thread only."""

    def __init__(self, server: Server, redis_version: str) -> None:
        self.server = server
        self.runtime = LuaRuntime(self, redis_version)
        to_lua = ReplyToLua(self.runtime.lua)
        self._to_lua = to_lua.convert
        self._status = to_lua.status  # {ok=...} from a status's text (redis.call's fast path)
        # EVAL scripts by sha1 (lower-case hex): the compiled function and its source (SCRIPT FLUSH empties it).
        self.scripts: dict[str, tuple[Any, bytes]] = {}
        # The same scripts by the sha's lower-case hex as bytes, as EVALSHA names them: (function, the source
        # when it opens with a shebang (flags for EVALSHA to check) or None, sha).
        self.by_sha: dict[bytes, tuple[Any, bytes | None, str]] = {}
        self.run: ScriptRun | None = None
        self.allow_oom = False  # the script about to run declared allow-oom (set by prepare_run)
        self.fcall_argv: list[bytes] = []  # the last FCALL's arguments (FUNCTION STATS names the running one)
        # Commands scripts may call, by name as scripts spell it ('get', 'GET'): one dict hit per call.
        self._script_commands: dict[bytes, Any] = {}
        # The greenlet scripts run in (see _task_loop); made again if it died or belongs to another thread.
        self._task: Any = None
        # The Lua entry point of the next job of the greenlet: runtime.run_script or runtime.run_function.
        self._run_script = self.runtime.run_script
        self._run_function = self.runtime.run_function
        self._entry: Any = self._run_script
        # The client scripts' commands run as (Redis's lua_client): its database follows the caller's.
        self.client = server.lua_client
        self.client.authenticated = True
        # Set while a client tracks keys (actors/server/tracking.py): told each command a script runs, with the
        # keys its caller declared, which Redis 7.0 remembers for the caller when the script reads (None:
        # nobody tracks, nothing to do).
        self.on_command: Callable[[Client, Any, list[bytes]], None] | None = None
        self.threshold_s = int(server.config["busy-reply-threshold"]) / 1000
        server.config.on_change("busy-reply-threshold", self._on_threshold)
        self.functions = FunctionStore(self)
        # The RDB reader and writer reach the libraries through these hooks (the last engine made wins: a
        # node process has one).
        rdb_hooks.function_records = self._rdb_records
        rdb_hooks.functions_loaded = self.load_rdb_functions

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
        run = self.run = ScriptRun(caller, name, is_function, read_only, argv, numkeys, outer, task)
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
            return self._finish(run, result)
        stream.exec_writes = outer
        self.run = None
        if run.writes:
            _propagate_transaction(self.server, run.writes)
        # One value: the script's (bytes most often); a tuple (false, error table): it failed.
        kind = type(result)
        if kind is bytes:
            return result
        if kind is not tuple:
            return lua_to_reply(result, run.resp3)
        return self._error_reply(run, result[1])

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
        caller.deliver(reply)
        if server.after_command is not None:
            server.after_command()

    def _end(self, run: ScriptRun) -> None:
        server = self.server
        server.stream.exec_writes = run.outer_writes
        self.run = None
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
            return lua_to_reply(result, run.resp3)
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
            log.warning("script_busy", name=run.name, threshold_ms=int(self.threshold_s * 1000))
        if now - run.slice_started_s < RUN_SLICE_S or not run.can_yield(self.server):
            return False
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

    def lua_call(self, *args: Any) -> Any:
        """redis.call: the Lua form of the reply; an error reply is raised as a Lua error.

        The common case is inline (one Python frame per redis.call besides the command's own): a command
        spelled as before (found in ``_script_commands``) with its arity, string arguments, a run that is
        not read-only, REPL_ALL, nobody tracking, no ACL, no node-wide restriction. Anything else takes
        ``_run_command``, which checks it all."""
        run = self.run
        try:
            cmd = self._script_commands[args[0]]
        except (KeyError, IndexError, TypeError):  # a first call by this spelling, no arguments, a table...
            cmd = None
        server = self.server
        arity = cmd.arity if cmd is not None else 0
        if (
            cmd is None
            or run is None
            or (arity > 0 and len(args) != arity)
            or len(args) < -arity
            or run.read_only
            or run.repl_flags != REPL_ALL
            or self.on_command is not None
            or server.acl.enforcing
        ):
            reply = self._run_command(args)
        else:
            for arg in args:
                if type(arg) is not bytes:
                    reply = self._run_command(args)
                    break
            else:
                if cmd.is_write:
                    if not server._unrestricted:
                        refusal = self._refusal_of_write(run, cmd)
                        if refusal is not None:
                            raise ScriptCallError(refusal.encode())
                    run.wrote = True
                try:
                    reply = server.call(self.client, cmd, list(args))
                except Exception as exc:  # a bug in a command must not unwind through Lua
                    log.exception("script_command_failed", command=cmd.name)
                    reply = CommandError(f"ERR {exc}")
        kind = type(reply)
        if kind is bytes or kind is int:  # GET, INCR...: the same value in Lua (most replies)
            return reply
        if kind is str:  # a status (SET's OK)
            return self._status(reply)
        if reply is None:  # a missing key: false (nil under RESP3)
            return None if self.client.resp3 else False
        if isinstance(reply, CommandError):
            raise ScriptCallError(str(reply).encode())
        return self._to_lua(reply, self.client.resp3)

    def _refusal_of_write(self, run: ScriptRun, cmd: Any) -> str | None:
        """Why the running script may not run the write ``cmd`` now (None: it may); both redis.call paths ask."""
        refusal = self._write_refusal(run)
        if refusal is None and not run.wrote and "denyoom" in cmd.flags and not self.allow_oom:
            # scriptVerifyOOM: until the script has written, a denyoom command obeys maxmemory.
            if self.server.memory.refuses_denyoom(run.caller):
                refusal = OOM
        return refusal

    def lua_pcall(self, *args: Any) -> Any:
        """redis.pcall: the Lua form of the reply, an error reply as an {err=...} table."""
        reply = self._run_command(args)
        kind = type(reply)
        if kind is bytes or kind is int:
            return reply
        return self._to_lua(reply, self.client.resp3)

    def lua_error_table(self, error: Any) -> Any:
        """The {err=...} table for a Python exception met by the error handler (redis.call's, or a bug)."""
        if isinstance(error, ScriptCallError):
            return self.runtime.table(err=error.err)
        # Another error of a Python function (a library's, or a bug): the handler adds the position.
        return self.runtime.table(plain=str(error).encode())

    def _run_command(self, args: tuple[Any, ...]) -> Any:
        """One command of the running script: its reply (a CommandError for refusals and error replies).

        Paid by every redis.call: the common case (a known command spelled as before, string arguments,
        no ACL, no read-only run, no node-wide restriction, REPL_ALL, nobody tracking) is a few attribute
        reads and the command's own ``server.call``."""
        run = self.run
        if run is None:
            return CommandError("ERR redis.call is only available while a script runs")
        if not args:
            return CommandError(_NO_ARGS)
        argv: list[bytes] = list(args)
        # Lua strings arrive as bytes: converted only where a script passed a number (or something refused).
        for arg in args:
            if type(arg) is not bytes:
                bad = self._convert_args(argv)
                if bad is not None:
                    return bad
                break
        cmd = self._script_commands.get(argv[0])
        if cmd is None:
            cmd = self._lookup_command(argv[0])
            if type(cmd) is CommandError:
                return cmd
        arity = cmd.arity
        if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
            return CommandError(_WRONG_ARGS)
        server = self.server
        if server.acl.enforcing:
            denial = server.acl.check_script_call(run.caller, cmd, full_name(cmd, argv), argv)
            if denial is not None:
                return CommandError(denial)
        if cmd.is_write:
            # The common case needs no look at the node: no read-only script, no node-wide restriction.
            if run.read_only or not server._unrestricted:
                refusal = self._refusal_of_write(run, cmd)
                if refusal is not None:
                    return CommandError(refusal)
            run.wrote = True
        elif run.read_only and cmd.name in MAY_REPLICATE:
            # Redis 7.0.1+ (scriptVerifyWriteCommandAllow): PUBLISH, PFCOUNT... reach replicas, so not from here.
            return CommandError(_WRITE_IN_RO)
        if run.repl_flags == REPL_ALL and self.on_command is None:
            try:
                return server.call(self.client, cmd, argv)
            except Exception as exc:  # a bug in a command must not unwind through Lua
                log.exception("script_command_failed", command=cmd.name)
                return CommandError(f"ERR {exc}")
        mark = len(run.writes)
        try:
            reply = server.call(self.client, cmd, argv)
        except Exception as exc:
            log.exception("script_command_failed", command=cmd.name)
            reply = CommandError(f"ERR {exc}")
        if run.repl_flags != REPL_ALL and len(run.writes) > mark:
            self._apply_repl_flags(run, mark)
        if self.on_command is not None:
            self.on_command(run.caller, cmd, run.keys)
        return reply

    @staticmethod
    def _convert_args(argv: list[Any]) -> CommandError | None:
        """Numbers as Redis prints them (in place); a refusal for anything else."""
        for i, arg in enumerate(argv):
            if type(arg) is not bytes:
                converted = lua_arg_bytes(arg)
                if converted is None:
                    return CommandError(_BAD_ARG)
                argv[i] = converted
        return None

    def _lookup_command(self, name: bytes) -> Any:
        """The command a script names (remembered for the next call), or the error reply refusing it."""
        cmd = self.server.commands.get(name.lower())
        if cmd is None:
            return CommandError(_UNKNOWN_COMMAND)
        if "noscript" in cmd.flags:
            if not self.server.script_disable_deny_script:
                return CommandError(_NOT_FROM_SCRIPT)
            return cmd  # (not remembered: the DEBUG switch may be turned off again)
        if len(self._script_commands) < SCRIPT_COMMAND_CACHE_SIZE:
            self._script_commands[name] = cmd
        return cmd

    def _write_refusal(self, run: ScriptRun) -> str | None:
        server = self.server
        if run.read_only:
            return _WRITE_IN_RO
        if run.caller.kind is ClientKind.MASTER:
            return None
        if server.is_replica and server.replica_read_only:
            return errors.READONLY
        if server.disk_error is not None:
            return server.disk_error
        if server.write_refusal is not None:
            return server.write_refusal
        return None

    def _apply_repl_flags(self, run: ScriptRun, mark: int) -> None:
        if run.repl_flags == REPL_NONE:
            del run.writes[mark:]
        elif run.repl_flags == REPL_REPLICA:
            run.writes[mark:] = [(db, argv, True) for db, argv, _ in run.writes[mark:]]

    def lua_log(self, *args: Any) -> None:
        if len(args) < 2:
            raise ScriptCallError(b"ERR redis.log() requires two arguments or more.")
        level = args[0]
        if type(level) not in (int, float):
            raise ScriptCallError(b"ERR First argument must be a number (log level).")
        if not 0 <= level <= 3:
            raise ScriptCallError(b"ERR Invalid debug level.")
        message = b" ".join(lua_arg_bytes(arg) or b"" for arg in args[1:])
        getattr(log, _LOG_LEVELS[int(level)])("script_log", message=message.decode("utf-8", "replace"))

    def lua_setresp(self, *args: Any) -> None:
        if len(args) != 1:
            raise ScriptCallError(b"ERR redis.setresp() requires one argument.")
        if args[0] not in (2, 3):
            raise ScriptCallError(b"ERR RESP version must be 2 or 3.")
        resp3 = args[0] == 3
        if self.run is not None:
            self.run.resp3 = resp3
        self.client.resp3 = resp3

    def lua_set_repl(self, *args: Any) -> None:
        if len(args) != 1:
            raise ScriptCallError(b"ERR redis.set_repl() requires one argument.")
        flags = args[0]
        if type(flags) not in (int, float) or not 0 <= flags <= REPL_ALL:
            raise ScriptCallError(
                b"ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."
            )
        if self.run is not None:
            self.run.repl_flags = int(flags)

    def lua_sha1hex(self, *args: Any) -> bytes:
        if len(args) != 1:
            raise ScriptCallError(b"ERR wrong number of arguments")
        return sha1_hex(lua_arg_bytes(args[0]) or b"").encode()

    def lua_register_function(self, *args: Any) -> Any:
        raise ScriptCallError(b"ERR redis.register_function can only be called on FUNCTION LOAD command")

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
