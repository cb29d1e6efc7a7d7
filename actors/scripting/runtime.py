"""The Lua 5.1 interpreter scripts run in, sandboxed as Redis 7.0's (one per node, reused by every script).

What a script sees: the base library without ``print``, ``dofile``, ``loadfile``, ``module``, ``require``,
``newproxy``, ``getfenv``, ``setfenv``; ``string``, ``table``, ``math``, ``coroutine``, ``cjson``,
``cmsgpack``, ``bit``, ``struct`` (actors/scripting/libs.py); no ``os``, ``io``, ``package``, ``debug``, and
nothing of Python (no ``python`` table; Lua code cannot index a Python object). Globals are read-only: a
script runs with an environment (its ``_G``) that refuses writes ("Attempt to modify a readonly table") and
reads of missing names ("Script attempted to access nonexistent global variable"), as Redis's readonly-table
patch does; every library table is a read-only view, and the sandboxed setmetatable / rawset refuse them.
loadstring compiles text only, into the same environment. KEYS and ARGV are set on the real globals before
each EVAL run (a function gets them as parameters). A library sees only ``redis`` (the loading API) while it
loads, as Redis's library globals.

The ``redis`` table calls back into Python (``ScriptHost``, implemented by actors/scripting/engine.py) for
commands, the time hook, logging and the RESP version. Errors carry their position: the error handler finds
the innermost frame of user code (``@user_script`` for EVAL, ``@user_function`` for libraries, or a chunk
either compiled) and stores ``source`` and ``line`` in the error table, which the engine turns into "...
script: <sha>, on @user_script:<line>." exactly as Redis's ``__redis__err__handler`` does.

Runs on the master actor's loop thread (inside a greenlet of it, see engine.py).
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from lupa import lua51

from actors.scripting import cjson, libs
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

-- What Redis 7.0 leaves out of a script's globals; ``python`` is lupa's door to the Python interpreter
-- (the runtime is also made without builtins and with no attribute access on Python objects, see
-- LuaRuntime below), ``getfenv`` / ``setfenv`` would hand a script the real globals behind its environment.
-- lupa's as_function makes a Python callable a Lua function (a C closure), so a library function is a
-- 'function' to type() and tostring() as in Redis, not a userdata printing its Python name. (redis.call and
-- redis.pcall stay Python objects: they are the per-command hot path, and the closure costs a little there.)
local as_function = python.as_function
local function lua_functions(lib)
  for name, value in pairs(lib) do
    if type(value) == 'userdata' and name ~= 'null' then lib[name] = as_function(value) end
  end
  return lib
end
for _, name in ipairs({'print', 'dofile', 'loadfile', 'module', 'require', 'newproxy', 'os', 'io',
                       'package', 'debug', 'getfenv', 'setfenv', 'python'}) do
  G[name] = nil
end

-- Tables a script may read but never change (Redis's readonly tables): writes through them fail in their
-- __newindex, and setmetatable / rawset on them are refused by the sandboxed versions below. Weak keys:
-- the set never keeps a table alive.
local protected = setmetatable({}, {__mode = 'k'})
local readonly_error = 'Attempt to modify a readonly table'
local function refuse() error(readonly_error, 2) end
-- What getmetatable answers for a protected table: an empty table that refuses writes (so the metatable
-- behind it cannot be reached, and ``getmetatable(_G).__index = {}`` fails as in Redis).
local locked_mt = setmetatable({}, {__newindex = refuse, __metatable = false})
protected[locked_mt] = true

-- A view's entries, for pairs / next / rawget (a read-only table lists its entries in Redis too). The table
-- behind a view never reaches a script: pairs hands out a closure, not lua's next with that table.
local shown = setmetatable({}, {__mode = 'k'})

local function readonly(t)
  local view = setmetatable({}, {__index = t, __newindex = refuse, __metatable = locked_mt})
  protected[view] = true
  shown[view] = t
  return view
end

-- The wrappers call Lua's own functions through locals of the same names, so an argument error still names
-- them as Lua does ("bad argument #1 to 'rawget'").
local next, pairs = next, pairs
-- Argument errors as Lua's own, at the script's line (level 3: past the wrapper), not at this file's.
local function want_table(t, name)
  if type(t) ~= 'table' then
    error("bad argument #1 to '" .. name .. "' (table expected, got " .. type(t) .. ")", 3)
  end
end
G.setmetatable = function(t, mt)
  want_table(t, 'setmetatable')
  if protected[t] then error(readonly_error, 0) end
  if mt ~= nil and type(mt) ~= 'table' then
    error("bad argument #2 to 'setmetatable' (nil or table expected)", 2)
  end
  return setmetatable(t, mt)
end
G.rawset = function(t, k, v)
  want_table(t, 'rawset')
  if protected[t] then error(readonly_error, 0) end
  return rawset(t, k, v)
end
G.rawget = function(t, k)
  want_table(t, 'rawget')
  return rawget(shown[t] or t, k)
end
G.next = function(t, k)
  want_table(t, 'next')
  return next(shown[t] or t, k)
end
-- Plain tables iterate at C speed (lua's own next); a view through a closure over the table behind it.
G.pairs = function(t)
  want_table(t, 'pairs')
  local behind = shown[t]
  if behind == nil then return pairs(t) end
  return function(_, k) return next(behind, k) end, t, nil
end

local redis = {}
-- Python callables, not Lua wrappers: a C function called in tail position keeps the caller's frame, so
-- an error still knows the script's line (a Lua wrapper's "return redis.call(...)" would lose it).
redis.call = py.call
redis.pcall = py.pcall
-- As Redis 7.0's: one string argument, else the reply is (not raises) a "wrong number or type" error.
-- error_reply's text gets Redis's "-CODE message" form: a first word after '-' is the code, otherwise the
-- code is ERR (so '' gives "ERR " and "x" gives "ERR x"); CR / LF at either end of the message go.
local find, gsub = string.find, string.gsub
local bad_args = 'ERR wrong number or type of arguments'
redis.error_reply = function(...)
  local msg = ...
  if select('#', ...) ~= 1 or type(msg) ~= 'string' then return {err = bad_args} end
  if string.sub(msg, 1, 1) ~= '-' then msg = '-' .. msg end
  local code, text = 'ERR', string.sub(msg, 2)
  local space = find(msg, ' ', 1, true)
  if space then code, text = string.sub(msg, 2, space - 1), string.sub(msg, space + 1) end
  text = gsub(gsub(text, '^[\r\n]+', ''), '[\r\n]+$', '')
  return {err = code .. ' ' .. text}
end
redis.status_reply = function(...)
  local msg = ...
  if select('#', ...) ~= 1 or type(msg) ~= 'string' then return {err = bad_args} end
  return {ok = msg}
end
redis.sha1hex = as_function(py.sha1hex)
redis.log = as_function(py.log)
redis.setresp = as_function(py.setresp)
redis.set_repl = as_function(py.set_repl)
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = as_function(py.acl_check_cmd)
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION = py.version
redis.REDIS_VERSION_NUM = py.version_num

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
G.cjson = readonly(lua_functions(py.cjson))
G.cmsgpack = readonly(lua_functions(py.cmsgpack))
G.bit = readonly(lua_functions(py.bit))
G.struct = readonly(lua_functions(py.struct))
-- Lua's own libraries too (Redis protects every table under its globals): a script's math.random = ...
-- would otherwise outlive it. Strings index the real string table through their metatable, which now
-- answers getmetatable('') with a read-only view whose __index is the (read-only) ``string``.
local lua_string = string
-- A coroutine is a thread of its own, and a hook set from Lua (debug.sethook) does not follow into a new
-- thread: a loop inside one would never reach the time hook (no -BUSY, no SCRIPT KILL, the node frozen
-- for good). Each coroutine's body starts by setting the hook of the thread that created it.
local gethook, co_create, co_wrap = dbg.gethook, coroutine.create, coroutine.wrap
local function hooked(f, name)
  if type(f) ~= 'function' then error("bad argument #1 to '" .. name .. "' (Lua function expected)", 3) end
  local hook, mask, count = gethook()
  return function(...)
    if hook then sethook(hook, mask, count) end
    return f(...)
  end
end
local sandboxed_coroutine = {}
for name, value in pairs(coroutine) do sandboxed_coroutine[name] = value end
sandboxed_coroutine.create = function(f) return co_create(hooked(f, 'create')) end
sandboxed_coroutine.wrap = function(f) return co_wrap(hooked(f, 'wrap')) end
G.coroutine = sandboxed_coroutine
-- math.random / math.randomseed are Redis's (redis_math_random over rand48, the same numbers for the same
-- seed): a 48-bit linear congruential state in three 16-bit limbs, so every product stays exact in a double.
local floor, ceil = math.floor, math.ceil
local rx0, rx1, rx2 = 0x330E, 0, 0
local function lrand48()
  local p = 0xE66D * rx0 + 0xB
  local y0 = p % 65536
  p = floor(p / 65536) + 0xE66D * rx1 + 0xDEEC * rx0
  local y1 = p % 65536
  p = floor(p / 65536) + 0xE66D * rx2 + 0xDEEC * rx1 + 0x5 * rx0
  rx0, rx1, rx2 = y0, y1, p % 65536
  return rx2 * 32768 + floor(rx1 / 2)
end
local function checkint(value, arg, name)  -- luaL_checkint: a number (or numeric string), truncated
  local n = tonumber(value)
  if n == nil then
    local got = value == nil and 'no value' or type(value)
    error("bad argument #" .. arg .. " to '" .. name .. "' (number expected, got " .. got .. ")", 3)
  end
  if n >= 0 then return floor(n) end
  return ceil(n)
end
local function seed48(seed)  -- redisSrand48: the seed's low and high 16 bits, as an int32
  seed = seed % 4294967296
  rx0, rx1, rx2 = 0x330E, seed % 65536, floor(seed / 65536) % 65536
end
seed48(floor(py.random_seed))
local sandboxed_math = {}
for name, value in pairs(math) do sandboxed_math[name] = value end
sandboxed_math.random = function(...)
  local r = (lrand48() % 2147483647) / 2147483647
  local n = select('#', ...)
  if n == 0 then return r end
  if n == 1 then
    local u = checkint(..., 1, 'random')
    if u < 1 then error("bad argument #1 to 'random' (interval is empty)", 2) end
    return floor(r * u) + 1
  end
  if n == 2 then
    local l, u = checkint((...), 1, 'random'), checkint(select(2, ...), 2, 'random')
    if l > u then error("bad argument #2 to 'random' (interval is empty)", 2) end
    return floor(r * (u - l + 1)) + l
  end
  error('wrong number of arguments', 2)
end
sandboxed_math.randomseed = function(seed) seed48(checkint(seed, 1, 'randomseed')) end
G.math = sandboxed_math
for _, name in ipairs({'string', 'math', 'table', 'coroutine'}) do G[name] = readonly(G[name]) end
local string_mt = dbg.getmetatable('')
string_mt.__metatable = readonly({__index = G.string})
G.KEYS = {}
G.ARGV = {}

-- Scripts see the globals through this proxy: reads of missing names and every write fail. (The real
-- globals keep no erroring metatable: lupa itself reads globals outside any protected call.)
-- Reads go to the globals table itself (a table __index: no Lua call per global a script reads); a missing
-- name reaches ``strict``, the globals' metatable only while an EVAL script runs (debug.setmetatable: a
-- script's own setmetatable(_G, ...) cannot lock it), whose error names the script's line (level 2).
-- A script's ``_G`` is this proxy, never the real globals (nothing a script can reach leads to those).
local env = setmetatable({}, {__index = G, __newindex = refuse, __metatable = locked_mt})
protected[env] = true
shown[env] = G
G._G = env

-- loadstring / load compile text only (Redis 7.0's Lua reads a precompiled chunk as text, so string.dump's
-- output fails to parse: the leading space keeps Lua from taking it as bytecode, and the chunk name stays
-- the one Lua would give) and the chunk runs in the script's environment, never in the real globals.
local function sandboxed(f, err)
  if f then setfenv(f, env) end
  return f, err
end
local function compile_text(text, name)
  if type(text) == 'string' and lua_string.byte(text, 1) == 27 then
    return sandboxed(loadstring(' ' .. text, name or text))
  end
  return sandboxed(loadstring(text, name))
end
G.loadstring = compile_text
G.load = function(reader, name)
  if type(reader) ~= 'function' then return compile_text(reader, name) end
  local parts = {}
  while true do
    local part = reader()
    if part == nil or part == '' then break end
    if type(part) ~= 'string' then return nil, 'reader function must return a string' end
    parts[#parts + 1] = part
  end
  return compile_text(table.concat(parts), name or '=(load)')
end

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
    -- The innermost Lua frame that is not this file's (Redis: the function that raised, or its caller
    -- when that is C): the script's, a library's, or a chunk the script compiled with loadstring.
    if frame.what ~= 'C' and frame.source ~= '=redactor' then info = frame break end
  end
  if type(err) == 'userdata' then err = pyerror(err) end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  local plain = rawget(err, 'plain')
  if plain then
    if info then plain = info.short_src .. ':' .. info.currentline .. ': ' .. plain end
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
-- User code: the script's, a library's, or a chunk one of them compiled with loadstring (a loop there must
-- be killable too); not this file's, nor lupa's helpers run from Python ("<python>", ReplyToLua's).
local function in_user_code()
  local frame = dbg.getinfo(3, 'S')
  if frame == nil or frame.what == 'C' then return false end
  local source = frame.source
  return source ~= '=redactor' and source ~= '<python>'
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
  -- One key, the commonest case, built here as split builds it: a Lua call less per script.
  if nkeys == 1 then
    G.KEYS, G.ARGV = {(...)}, {select(2, ...)}
  else
    G.KEYS, G.ARGV = split(nkeys, ...)
  end
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
  -- As for EVAL: a library's environment reads the globals through a table, a missing name errs. A
  -- function gets its keys and arguments as parameters: the last EVAL's KEYS / ARGV must not show.
  G.KEYS, G.ARGV = nil, nil
  set_metatable(G, strict)
  local ok, result = xpcall(function() return f(keys, argv) end, handler)
  if type(result) ~= 'table' then set_metatable(G, nil) end
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

-- A library's code runs with its own environment (writes refused). While it loads it sees only ``redis``,
-- the loading API (register_function, log, constants), as Redis's library globals: ``math``,
-- ``getmetatable`` and the rest are "nonexistent" there. Once loaded (``loaded()``) its functions read the
-- globals, where ``redis`` is the full API (which has no register_function), through a table __index as
-- EVAL scripts do.
local function nonexistent(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end
local compile_library = function(body, loading_api)
  local f, err = loadstring(body, '@user_function')
  if f == nil then return nil, err end
  local load_globals = setmetatable({redis = loading_api},
                                    {__index = nonexistent, __newindex = refuse, __metatable = locked_mt})
  protected[load_globals] = true
  local lib_mt = {__index = load_globals, __newindex = refuse, __metatable = locked_mt}
  local lib_env = setmetatable({}, lib_mt)
  protected[lib_env] = true
  setfenv(f, lib_env)
  return f, function() lib_mt.__index = G end
end

local loading_api = function(register, log)
  local api = {register_function = as_function(register), log = as_function(log),
               LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
               REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM}
  local view = setmetatable({}, {
    __index = function(_, name)
      local value = api[name]
      if value == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
      end
      return value
    end,
    __newindex = refuse,
    __metatable = locked_mt,
  })
  protected[view] = true
  return view
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

    def lua_acl_check_cmd(self, *args: Any) -> bool: ...


def _no_attribute(obj: Any, name: Any, *value: Any) -> Any:
    """Lua code indexing a Python object (get or set): refused, whatever the name."""
    raise AttributeError("Python objects have no fields in scripts")


def _version_num(version: str) -> int:
    major, minor, patch = (int(part) for part in version.split("."))
    return (major << 16) | (minor << 8) | patch


class LuaRuntime:
    """One sandboxed Lua 5.1 state and the entry points the engine uses."""

    def __init__(self, host: ScriptHost, redis_version: str) -> None:
        # No ``python`` builtins and no attribute access on Python objects: redis.call and the libraries are
        # Python callables, and without this a script could walk from one (``redis.call.__self__``...) to
        # the whole interpreter. Scripts only call them.
        lua = lua51.LuaRuntime(
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            attribute_handlers=(_no_attribute, _no_attribute),
            encoding=None,
        )
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
            sha1hex=host.lua_sha1hex,
            acl_check_cmd=host.lua_acl_check_cmd,
            version=redis_version.encode(),
            version_num=_version_num(redis_version),
            period=HOOK_PERIOD_INSTRUCTIONS,
            # math.random's first seed (Redis's state is not reseeded per script: a sequence per node run).
            random_seed=int.from_bytes(os.urandom(4), "little"),
            cjson=cjson.cjson_table(lua),
            cmsgpack=libs.cmsgpack_table(lua),
            bit=libs.bit_table(lua),
            struct=libs.struct_table(lua),
        )
        # Lua's own rawget (the bootstrap gives scripts a version that also reads read-only views): replies
        # are read raw with it (convert.lua_to_reply).
        self.rawget = lua.eval("rawget")
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
            return None, result[1].decode("utf-8", "surrogateescape")  # (its bytes, as Redis echoes them)
        return result, None

    def compile_library(self, body: bytes, api: Any) -> tuple[Any, Any, str | None]:
        """(chunk, loaded, None): run the chunk to register functions, then call ``loaded()`` so they see the
        full ``redis`` table; or (None, None, Lua's compile error)."""
        first, second = self._compile_library(body, api)
        if first is None:
            return None, None, second.decode("utf-8", "surrogateescape")
        return first, second, None
