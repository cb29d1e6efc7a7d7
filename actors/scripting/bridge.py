"""The ``redis`` library's bridge back into the node: redis.call / redis.pcall and the small redis.* helpers.

Each redis.call of a running script lands in ``lua_call`` (lane.py's, which hands all but a plain GET / SET
to ``call_general``) or ``lua_pcall``: the command is looked up once
per spelling, its arguments checked as Redis's scriptCall does (arity, strings or numbers, ACL, read-only
runs, writes refused on a read-only replica or under OOM before the script has written), then run through
``Server.call`` as the script's own client (Redis's lua_client), and its reply converted to Lua
(convert.py). ``redis.set_repl`` narrows where the following writes are propagated.

``RedisBridge`` is a mixin of ScriptEngine (engine.py), which owns the run and the runtime; it is kept apart
because it is the per-call hot path, read and measured on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from actors.scripting.convert import lua_arg_bytes
from actors.scripting.refusals import NOT_FROM_SCRIPT, Guard, guard_of
from actors.server import cmdstats
from actors.server.acl import full_name
from actors.server.client import Client, ClientKind
from actors.server.errorstats import CountedError, count_error_reply
from actors.server.maxmemory import OOM
from actors.server.pause import MAY_REPLICATE
from protocol import errors
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.scripting.engine import ScriptRun
    from actors.scripting.runtime import LuaRuntime
    from actors.server.server import Server

log = structlog.get_logger("redactor.scripting")

# Distinct command spellings remembered for redis.call (a bound: scripts may build names at run time).
SCRIPT_COMMAND_CACHE_SIZE = 1024

_UNKNOWN_COMMAND = "ERR Unknown Redis command called from script"
_WRONG_ARGS = "ERR Wrong number of args calling Redis command from script"
_NO_ARGS = "ERR Please specify at least one argument for this redis lib call"
_BAD_ARG = "ERR Lua redis lib command arguments must be strings or integers"
_WRITE_IN_RO = "ERR Write commands are not allowed from read-only scripts."
_LOG_LEVELS = ("debug", "info", "info", "warning")

# redis.set_repl's flags.
REPL_NONE, REPL_AOF, REPL_REPLICA, REPL_ALL = 0, 1, 2, 3


def _refuse_noscript(argv: list[bytes]) -> str:
    """The guard of a command flagged noscript as a whole (EVAL, BLPOP, SUBSCRIBE...)."""
    return NOT_FROM_SCRIPT


class _LibError(CommandError):
    """An error of the redis lib call itself (no arguments, an argument neither string nor number): Redis raises
    it before scriptCall, so only the script's reply counts it, when it ends the script."""


class ScriptCallError(Exception):
    """redis.call's error reply, raised through Lua: the error handler turns it into an {err=...} table, and
    a script that catches it with pcall can still read ``.err``, as it could read Redis's table."""

    def __init__(self, err: bytes, counted: bool = False) -> None:
        super().__init__(err.decode("utf-8", "replace"))
        self.err = err
        self.counted = counted  # a command's error, already in the error stats (CountedError)


def sha1_hex(body: bytes) -> str:
    return hashlib.sha1(body).hexdigest()


class RedisBridge:
    """redis.call and friends, mixed into ScriptEngine (whose attributes these are)."""

    server: Server
    runtime: LuaRuntime
    run: ScriptRun | None
    client: Client
    allow_oom: bool
    on_command: Callable[[Client, Any, list[bytes]], None] | None
    _script_commands: dict[bytes, Any]
    _script_guarded: dict[bytes, tuple[Any, Guard]]
    _lane_get: Any  # GET and SET: the commands the script lane (lane.py) may run
    _lane_set: Any
    lua_call: Callable[
        ..., Any
    ]  # redis.call: the lane's function (lane.make_call), which falls back on call_general
    _to_lua: Callable[[Any, bool], Any]
    _status: Callable[[str], Any]

    def call_general(self, *args: Any) -> Any:
        """redis.call's general path (the lane, lane.py, is redis.call itself and hands everything it does not
        run here): the Lua form of the reply; an error reply is raised as a Lua error.

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
        reply: Any = None
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
                            raise ScriptCallError(str(self._rejected(cmd, args, refusal)).encode(), True)
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
            if type(reply) is _LibError:  # the call itself was wrong: the script's reply counts it
                raise ScriptCallError(str(reply).encode())
            if type(reply) is not CountedError:  # (the inline path's: _run_command's are counted)
                count_error_reply(server, reply)
            raise ScriptCallError(str(reply).encode(), True)
        return self._to_lua(reply, self.client.resp3)

    def _rejected(self, cmd: Any, argv: Any, message: str) -> CountedError:
        """A refusal of ``cmd`` before it runs, counted as Redis's scriptCall counts it (its rejected_calls, the
        error stats): the script's EVAL then does not count it again (CountedError)."""
        if cmd.subcommands:
            cmd = cmdstats.subcommand(cmd, list(argv))
        cmd.rejected_calls += 1
        count_error_reply(self.server, message)
        return CountedError(message)

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
        if (
            kind is CountedError
        ):  # marked, as Redis's ignore_error_stats_update: returned, it is not counted again
            return self.runtime.table(err=str(reply).encode(), ignore_error_stats_update=True)
        return self._to_lua(reply, self.client.resp3)

    def lua_error_table(self, error: Any) -> Any:
        """The {err=...} table for a Python exception met by the error handler (redis.call's, or a bug)."""
        if isinstance(error, ScriptCallError):
            if error.counted:
                return self.runtime.table(err=error.err, ignore_error_stats_update=True)
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
            return _LibError("ERR redis.call is only available while a script runs")
        if not args:
            return _LibError(_NO_ARGS)
        argv: list[bytes] = list(args)
        # Lua strings arrive as bytes: converted only where a script passed a number (or something refused).
        for arg in args:
            if type(arg) is not bytes:
                bad = self._convert_args(argv)
                if bad is not None:
                    return bad
                break
        cmd = self._script_commands.get(argv[0])
        guard = None
        if cmd is None:
            found = self._lookup_command(argv[0])
            if type(found) is CountedError:
                return found
            cmd, guard = found
        arity = cmd.arity
        if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
            return self._rejected(cmd, argv, _WRONG_ARGS)
        server = self.server
        if guard is not None:
            refused = guard(argv)
            if refused is not None and not (refused is NOT_FROM_SCRIPT and server.script_disable_deny_script):
                return self._rejected(cmd, argv, refused)
        if server.acl.enforcing:
            denial = server.acl.check_script_call(run.caller, cmd, full_name(cmd, argv), argv)
            if denial is not None:
                return self._rejected(cmd, argv, denial)
        if cmd.is_write:
            # The common case needs no look at the node: no read-only script, no node-wide restriction.
            if run.read_only or not server._unrestricted:
                refusal = self._refusal_of_write(run, cmd)
                if refusal is not None:
                    return self._rejected(cmd, argv, refusal)
            run.wrote = True
        elif run.read_only and cmd.name in MAY_REPLICATE:
            # Redis 7.0.1+ (scriptVerifyWriteCommandAllow): PUBLISH, PFCOUNT... reach replicas, so not from here.
            return self._rejected(cmd, argv, _WRITE_IN_RO)
        mark = len(run.writes)
        try:
            reply = server.call(self.client, cmd, argv)
        except Exception as exc:  # a bug in a command must not unwind through Lua
            log.exception("script_command_failed", command=cmd.name)
            reply = CommandError(f"ERR {exc}")
        if run.repl_flags != REPL_ALL and len(run.writes) > mark:
            self._apply_repl_flags(run, mark)
        if self.on_command is not None:
            self.on_command(run.caller, cmd, run.keys)
        if isinstance(reply, CommandError):  # counted here, as Redis counts the error the command replied
            count_error_reply(server, reply)
            return CountedError(str(reply))
        return reply

    @staticmethod
    def _convert_args(argv: list[Any]) -> _LibError | None:
        """Numbers as Redis prints them (in place); a refusal for anything else."""
        for i, arg in enumerate(argv):
            if type(arg) is not bytes:
                converted = lua_arg_bytes(arg)
                if converted is None:
                    return _LibError(_BAD_ARG)
                argv[i] = converted
        return None

    def _lookup_command(self, name: bytes) -> Any:
        """The command a script names and the per-call check it needs (refusals.py), or the error reply.

        A command its name alone lets through is remembered in ``_script_commands`` (redis.call's inline
        path); one refused or checked per call (noscript, CLUSTER RESET, XREAD BLOCK...) in
        ``_script_guarded``, which only this slow path reads."""
        guarded = self._script_guarded.get(name)
        if guarded is not None:
            return guarded
        cmd = self.server.commands.get(name.lower())
        if cmd is None:
            count_error_reply(
                self.server, _UNKNOWN_COMMAND
            )  # (scriptCall's error path, no command to count on)
            return CountedError(_UNKNOWN_COMMAND)
        guard = _refuse_noscript if "noscript" in cmd.flags else guard_of(cmd.name)
        if guard is None:
            if len(self._script_commands) < SCRIPT_COMMAND_CACHE_SIZE:
                self._script_commands[name] = cmd
            return cmd, None
        if len(self._script_guarded) < SCRIPT_COMMAND_CACHE_SIZE:
            self._script_guarded[name] = (cmd, guard)
        return cmd, guard

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

    def lua_acl_check_cmd(self, *args: Any) -> bool:
        """redis.acl_check_cmd: may the script's caller run this command with these arguments (keys included)?

        As Redis 7.0's luaRedisAclCheckCmdPermissionsCommand: arguments converted as redis.call's, the command
        (or container subcommand) looked up without an arity check, an unknown one raised as an error."""
        if not args:
            raise ScriptCallError(_NO_ARGS.encode())
        argv: list[bytes] = list(args)
        bad = self._convert_args(argv)
        if bad is not None:
            raise ScriptCallError(str(bad).encode())
        server = self.server
        cmd = server.commands.get(argv[0].lower())
        name = full_name(cmd, argv) if cmd is not None else ""
        if cmd is None or (cmd.subcommands and len(argv) > 1 and "|" not in name):
            raise ScriptCallError(b"ERR Invalid command passed to redis.acl_check_cmd()")
        run = self.run
        if run is None or run.caller.user is None:
            return True
        return server.acl.permits(run.caller.user, cmd, name, argv)
