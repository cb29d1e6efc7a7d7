"""The Lua 5.1 interpreter scripts run in, sandboxed as Redis 7.0's (one per node, reused by every script).

What a script sees: the base library without ``print``, ``dofile``, ``loadfile``, ``module``, ``require``,
``newproxy``; ``string``, ``table``, ``math``, ``coroutine``, ``cjson``, ``cmsgpack``, ``bit``, ``struct``
(actors/scripting/libs.py); no ``os``, ``io``, ``package``, ``debug``. Globals are read-only: a script runs
with an environment that refuses writes ("Attempt to modify a readonly table") and reads of missing names
("Script attempted to access nonexistent global variable"), as Redis's readonly-table patch does. KEYS and
ARGV are set on the real globals before each run.

The ``redis`` table calls back into Python (``ScriptHost``, implemented by actors/scripting/engine.py) for
commands, the time hook, logging and the RESP version. Errors carry their position: the error handler finds
the innermost frame of user code (``@user_script`` for EVAL, ``@user_function`` for libraries) and stores
``source`` and ``line`` in the error table, which the engine turns into "... script: <sha>, on
@user_script:<line>." exactly as Redis's ``__redis__err__handler`` does.

Runs on the master actor's loop thread (inside a greenlet of it, see engine.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from lupa import lua51

from actors.scripting import libs
from actors.scripting.libs import lua_table

# Lua instructions between two calls of the time hook (Redis's LUA_MASKCOUNT period): cheap enough not to
# show in a short script, frequent enough (well under a millisecond of Lua) for SCRIPT KILL to act quickly.
HOOK_PERIOD_INSTRUCTIONS = 100_000
SCRIPT_KILLED = b"ERR Script killed by user with SCRIPT KILL..."
FUNCTION_KILLED = b"ERR Script killed by user with FUNCTION KILL..."

_BOOTSTRAP = r"""
local py = ...
local G = _G
local error, type, tostring, rawget, rawset, setmetatable, xpcall, setfenv, select =
      error, type, tostring, rawget, rawset, setmetatable, xpcall, setfenv, select
local dbg = debug
local sethook = debug.sethook
local pyhook, pykilled, pyerror = py.hook, py.killed, py.error_table
local loadstring = loadstring

for _, name in ipairs({'print', 'dofile', 'loadfile', 'module', 'require', 'newproxy', 'os', 'io',
                       'package', 'debug'}) do
  G[name] = nil
end

local redis = {}
-- Python callables, not Lua wrappers: a C function called in tail position keeps the caller's frame, so
-- an error still knows the script's line (a Lua wrapper's "return redis.call(...)" would lose it).
redis.call = py.call
redis.pcall = py.pcall
redis.error_reply = function(msg)
  if type(msg) ~= 'string' and type(msg) ~= 'number' then
    error({err = 'ERR wrong number or type of arguments'}, 0)
  end
  return {err = tostring(msg)}
end
redis.status_reply = function(msg)
  if type(msg) ~= 'string' and type(msg) ~= 'number' then
    error({err = 'ERR wrong number or type of arguments'}, 0)
  end
  return {ok = tostring(msg)}
end
redis.sha1hex = py.sha1hex
redis.log = py.log
redis.setresp = py.setresp
redis.set_repl = py.set_repl
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = py.acl_check_cmd
redis.register_function = function(...) return py.register_function(...) end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION = py.version
redis.REDIS_VERSION_NUM = py.version_num

local function readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function() error('Attempt to modify a readonly table', 2) end,
    __metatable = false,
  })
end

-- Redis's pcall hands a script the text of an {err=...} error (redis.call's included), not the table.
local lua_pcall, unpack, maxn = pcall, unpack, table.maxn
G.pcall = function(...)
  local results = {lua_pcall(...)}
  if not results[1] then
    local e = results[2]
    if type(e) == 'userdata' then e = pyerror(e) end
    if type(e) == 'table' and type(rawget(e, 'err')) == 'string' then results[2] = rawget(e, 'err') end
    if type(e) == 'table' and type(rawget(e, 'plain')) == 'string' then results[2] = rawget(e, 'plain') end
  end
  return unpack(results, 1, maxn(results))
end

G.redis = readonly(redis)
G.cjson = readonly(py.cjson)
G.cmsgpack = readonly(py.cmsgpack)
G.bit = readonly(py.bit)
G.struct = readonly(py.struct)
G.KEYS = {}
G.ARGV = {}

-- Scripts see the globals through this proxy: reads of missing names and every write fail. (The real
-- globals keep no erroring metatable: lupa itself reads globals outside any protected call.)
-- Reads go to the globals table itself (a table __index: no Lua call per global a script reads); a missing
-- name reaches ``strict``, the globals' metatable only while an EVAL script runs (debug.setmetatable: a
-- script's own setmetatable(_G, ...) cannot lock it), whose error names the script's line (level 2).
local env = setmetatable({}, {
  __index = G,
  __newindex = function() error('Attempt to modify a readonly table', 2) end,
  __metatable = false,
})
-- lupa itself reads globals from C (``debug`` on each Python->Lua call, outside any protected call): a read
-- with no Lua function behind it (level 2 is C) gets nil, as without the metatable.
local getinfo = dbg.getinfo
local strict = {
  __index = function(_, name)
    local caller = getinfo(2, 'S')
    if caller == nil or caller.what == 'C' then return nil end
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
  end,
}
local set_metatable = dbg.setmetatable

local function handler(err)
  local info = nil
  for level = 2, 100 do
    local frame = dbg.getinfo(level, 'Sl')
    if frame == nil then break end
    if frame.what ~= 'C' and string.sub(frame.source, 1, 1) == '@' then info = frame break end
  end
  if type(err) == 'userdata' then err = pyerror(err) end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  local plain = rawget(err, 'plain')
  if plain then
    if info then plain = string.sub(info.source, 2) .. ':' .. info.currentline .. ': ' .. plain end
    err = {err = 'ERR ' .. plain}
  end
  if info then
    err['source'] = info.source
    err['line'] = info.currentline
  end
  return err
end

-- The kill error is raised only in user code (a hook also fires in this file's functions, outside xpcall).
-- Once killed, a line hook raises it again at every line, so a script's pcall cannot swallow it for good.
local sub = string.sub
local function in_user_code()
  local frame = dbg.getinfo(3, 'S')
  return frame ~= nil and sub(frame.source, 1, 1) == '@'
end
local killer = function()
  if in_user_code() and pykilled() then error(py.killed_error(), 0) end
end
-- The count hook stays set between runs (setting it and clearing it around each run cost a short script two
-- C calls); with no run in progress ``pyhook`` answers false. Only a kill swaps it for the line hook, and the
-- entry points put the count hook back once that run is over.
local killing = false
local counter = function()
  if pyhook() then
    -- Killed: from now on every line checks. The count hook may keep firing outside user code (in a
    -- Python callable's frame, at the same point of every turn of a loop), so it alone may never raise.
    killing = true
    sethook(killer, 'l')
    if in_user_code() then error(py.killed_error(), 0) end
  end
end
local period = py.period
local function rearm()
  killing = false
  sethook(counter, '', period)
end

-- Entry points take KEYS and ARGV as varargs (cheaper from Python than two tables): nkeys, keys..., args...
-- One table from the varargs becomes ARGV once the keys are moved out of its front (no unpack calls: this
-- runs before every script).
local function split(nkeys, ...)
  -- One key (the commonest case) and none: tables made at their size by constructors (no rehash on insert).
  if nkeys == 1 then return {(...)}, {select(2, ...)} end
  local argv = {...}
  local keys = {}
  if nkeys > 0 then
    local n = select('#', ...)
    for i = 1, nkeys do keys[i] = argv[i] end
    for i = 1, n - nkeys do argv[i] = argv[i + nkeys] end
    for i = n - nkeys + 1, n do argv[i] = nil end
  end
  return keys, argv
end

-- A run's outcome crosses back as ONE value when the script succeeded (its return value) and as two
-- (false, the error table) when it failed: Python tells them apart by the tuple lupa makes for two values,
-- and the common case makes none.
local run_script = function(f, nkeys, ...)
  G.KEYS, G.ARGV = split(nkeys, ...)
  set_metatable(G, strict)
  local ok, result = xpcall(f, handler)
  -- A table reply is read from Python after this returns, and its metamethods may still read globals: the
  -- metatable stays until the next run (Redis's globals stay protected; C reads still get nil).
  if type(result) ~= 'table' then set_metatable(G, nil) end
  if killing then rearm() end
  if ok then return result end
  return false, result
end

local run_function = function(f, nkeys, ...)
  local keys, argv = split(nkeys, ...)
  local ok, result = xpcall(function() return f(keys, argv) end, handler)
  if killing then rearm() end
  if ok then return result end
  return false, result
end

local compile = function(body, name)
  local f, err = loadstring(body, name)
  if f == nil then return nil, err end
  setfenv(f, env)
  return f
end

-- A library's code runs with its own environment: globals readable, writes refused; while it loads,
-- ``redis`` is the loading API (register_function, log, constants), afterwards the full one.
local compile_library = function(body, loading_api)
  local f, err = loadstring(body, '@user_function')
  if f == nil then return nil, err end
  local api = loading_api
  local lib_env = setmetatable({}, {
    __index = function(_, name)
      if name == 'redis' then return api end
      local value = rawget(G, name)
      if value == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
      end
      return value
    end,
    __newindex = function() error('Attempt to modify a readonly table', 2) end,
    __metatable = false,
  })
  setfenv(f, lib_env)
  return f, function() api = G.redis end
end

local loading_api = function(register, log)
  local api = {register_function = register, log = log,
               LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
               REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM}
  return setmetatable({}, {
    __index = function(_, name)
      local value = api[name]
      if value == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
      end
      return value
    end,
    __newindex = function() error('Attempt to modify a readonly table', 2) end,
    __metatable = false,
  })
end

-- A library's load runs under Redis's load timeout: past it, every line raises (a pcall cannot hold it).
-- Raised only in user code: the hook outlives xpcall until rearm() below puts the count hook back.
local load_timeout = function()
  if in_user_code() then error({err = 'ERR FUNCTION LOAD timeout'}, 0) end
end
local run_loader = function(f, timed_out)
  sethook(function()
    if timed_out() then
      sethook(load_timeout, 'l')
      if in_user_code() then error({err = 'ERR FUNCTION LOAD timeout'}, 0) end
    end
  end, '', period)
  local ok, result = xpcall(f, handler)
  rearm()  -- the count hook is left set between runs: every later script depends on it (BUSY, SCRIPT KILL)
  return ok, result
end

local function_env = function(f)
  setfenv(f, env)
  return f
end

rearm()
return run_script, run_function, compile, compile_library, run_loader, loading_api
"""


class ScriptHost(Protocol):
    """What the runtime calls back into (actors/scripting/engine.py implements it)."""

    def lua_call(self, *args: Any) -> Any: ...

    def lua_pcall(self, *args: Any) -> Any: ...

    def lua_error_table(self, error: Any) -> Any: ...

    def lua_hook(self) -> bool: ...

    def lua_killed(self) -> bool: ...

    def lua_killed_error(self) -> Any: ...

    def lua_log(self, *args: Any) -> None: ...

    def lua_setresp(self, *args: Any) -> None: ...

    def lua_set_repl(self, *args: Any) -> None: ...

    def lua_sha1hex(self, *args: Any) -> bytes: ...

    def lua_register_function(self, *args: Any) -> Any: ...

    def lua_acl_check_cmd(self, *args: Any) -> bool: ...


def _version_num(version: str) -> int:
    major, minor, patch = (int(part) for part in version.split("."))
    return (major << 16) | (minor << 8) | patch


class LuaRuntime:
    """One sandboxed Lua 5.1 state and the entry points the engine uses."""

    def __init__(self, host: ScriptHost, redis_version: str) -> None:
        lua = lua51.LuaRuntime(unpack_returned_tuples=True, register_eval=False, encoding=None)
        self.lua = lua
        py = lua_table(
            lua,
            call=host.lua_call,
            pcall=host.lua_pcall,
            error_table=host.lua_error_table,
            hook=host.lua_hook,
            killed=host.lua_killed,
            killed_error=host.lua_killed_error,
            log=host.lua_log,
            setresp=host.lua_setresp,
            set_repl=host.lua_set_repl,
            register_function=host.lua_register_function,
            sha1hex=host.lua_sha1hex,
            acl_check_cmd=host.lua_acl_check_cmd,
            version=redis_version.encode(),
            version_num=_version_num(redis_version),
            period=HOOK_PERIOD_INSTRUCTIONS,
            cjson=libs.cjson_table(lua),
            cmsgpack=libs.cmsgpack_table(lua),
            bit=libs.bit_table(lua),
            struct=libs.struct_table(lua),
        )
        bootstrap, error = lua.globals().loadstring(_BOOTSTRAP.encode(), b"=redactor"), None
        if type(bootstrap) is tuple:
            bootstrap, error = bootstrap
        if bootstrap is None:
            raise RuntimeError(f"the Lua bootstrap does not compile: {error!r}")
        (
            self.run_script,
            self.run_function,
            self._compile,
            self._compile_library,
            self.run_loader,
            self.loading_api,
        ) = bootstrap(py)
        self.table_from = lua.table_from
        self.table = lambda **fields: lua_table(lua, **fields)

    def compile(self, body: bytes, chunk_name: bytes = b"@user_script") -> tuple[Any, str | None]:
        """(function, None), or (None, Lua's compile error)."""
        result = self._compile(body, chunk_name)
        if type(result) is tuple:
            return None, result[1].decode("utf-8", "replace")
        return result, None

    def compile_library(self, body: bytes, api: Any) -> tuple[Any, Any, str | None]:
        """(chunk, loaded, None): run the chunk to register functions, then call ``loaded()`` so they see the
        full ``redis`` table; or (None, None, Lua's compile error)."""
        first, second = self._compile_library(body, api)
        if first is None:
            return None, None, second.decode("utf-8", "replace")
        return first, second, None
