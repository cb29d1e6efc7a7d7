"""Lua <-> reply conversions, as Redis 7.0's script_lua.c does them.

Command reply -> Lua (what ``redis.call`` returns), RESP2 rules: integer -> number, bulk -> string, nil
bulk or nil array -> false, array -> table, status -> ``{ok=...}``, error -> ``{err=...}``. Under
``redis.setresp(3)`` a map becomes ``{map={...}}``, a set ``{set={member=true}}``, a double ``{double=n}``,
a null ``nil``, a boolean a boolean, a verbatim string ``{verbatim_string={format=, string=}}``.

Lua -> reply (what a script returns): number -> integer (truncated, as a C cast: out of range gives
-2^63), string -> bulk, true -> 1 (RESP2 script) or a boolean (RESP3), false/nil -> null, a table with a
string ``ok`` / ``err`` field -> status / error, ``{double=}`` / ``{map=}`` / ``{set=}`` / ``{big_number=}``
/ ``{verbatim_string=}`` -> their RESP3 types, any other table -> an array of its items 1..n up to the first
nil.

Values here are lupa's: Lua strings arrive as ``bytes`` (the runtime has no encoding), numbers as int or
float, tables as ``lupa.lua51._LuaTable``.
"""

from __future__ import annotations

import math
from typing import Any

from actors.server.errorstats import CountedError
from protocol.errors import CommandError
from protocol.resp import (
    NULL_ARRAY,
    Attribute,
    BigNumber,
    MultiReply,
    Push,
    ReplySet,
    Verbatim,
    format_double,
)

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# {ok='OK'} tables made per Python->Lua call (see ReplyToLua.status).
STATUS_OK_BATCH = 64


def lua_number_to_int(value: float) -> int:
    """A Lua number as Redis turns it into an integer reply: ``(long long)`` truncation."""
    if math.isnan(value) or math.isinf(value):
        return _INT64_MIN
    result = int(value)
    if result < _INT64_MIN or result > _INT64_MAX:
        return _INT64_MIN
    return result


def lua_arg_bytes(value: Any) -> bytes | None:
    """A redis.call argument as Redis reads it: strings as they are, numbers with ``%.17g``; None otherwise."""
    kind = type(value)
    if kind is bytes:
        return value
    if kind is int:
        return b"%d" % value
    if kind is float:
        return b"%.17g" % value
    return None


class ReplyToLua:
    """Converts command replies to Lua values for one runtime (it needs the runtime to build tables)."""

    def __init__(self, lua: Any, ok_pool: list[Any] | None = None) -> None:
        self._table = lua.table_from
        # {ok=...} / {err=...} built by Lua itself: a Lua call is cheaper than building a table from Python.
        self._make_status, self._error = (
            lua.eval("function(s) return {ok=s} end"),
            lua.eval("function(s) return {err=s} end"),
        )
        # Fresh {ok='OK'} tables made STATUS_OK_BATCH at a time (SET's reply, the most common status): one
        # Python->Lua call (which releases and retakes the GIL in lupa) per batch instead of per redis.call.
        # Each table is handed out once, so a script may still change the one it got, as in Redis.
        self._make_ok_batch = lua.eval(
            "function(n) local t = {} for i = 1, n do t[i] = {ok='OK'} end return unpack(t, 1, n) end"
        )
        # (The script lane, lane.py, takes SET's reply from the same list: ``ok_pool`` is shared with it.)
        self._ok_pool: list[Any] = ok_pool if ok_pool is not None else []
        self._new = lambda **fields: lua.table_from({k.encode(): v for k, v in fields.items()})
        self._empty = lua.table

    def status(self, text: str) -> Any:
        """The {ok=text} table for a status reply."""
        if text == "OK":
            pool = self._ok_pool
            if not pool:
                pool.extend(self._make_ok_batch(STATUS_OK_BATCH))
            return pool.pop()
        return self._make_status(text.encode())

    def refill_ok(self) -> None:
        """Another batch of fresh {ok='OK'} tables into the (empty) pool."""
        self._ok_pool.extend(self._make_ok_batch(STATUS_OK_BATCH))

    def convert(self, value: Any, resp3: bool) -> Any:
        kind = type(value)
        if kind is bytes:
            return value
        if kind is int:
            return value
        if kind is str:
            return self.status(value)
        if value is None or value is NULL_ARRAY:
            return None if resp3 else False
        if kind is MultiReply and len(value) == 2 and type(value[0]) is Attribute:
            # Attributes are not exposed to scripts (Redis's parser skips them): the reply that follows is.
            return self.convert(value[1], resp3)
        if kind is list or kind is tuple or kind is Push or kind is MultiReply:
            if kind is MultiReply and value and type(value[0]) is Attribute:
                # As Redis: a script never sees attributes, only the reply that follows them.
                return self.convert(value[1], resp3)
            return self._table([self.convert(item, resp3) for item in value])
        if isinstance(value, CommandError):
            return self._error(value.wire_bytes())
        if kind is bool:
            return value if resp3 else int(value)
        if kind is float:
            if resp3:
                return self._new(double=value)
            return format_double(value)
        if kind is dict:
            if resp3:
                inner = self._empty()
                for key, item in value.items():
                    inner[self.convert(key, resp3)] = self.convert(item, resp3)
                return self._new(map=inner)
            flat: list[Any] = []
            for key, item in value.items():
                flat.append(self.convert(key, resp3))
                flat.append(self.convert(item, resp3))
            return self._table(flat)
        if kind is set or kind is frozenset or kind is ReplySet:
            if resp3:
                inner = self._empty()
                for item in value:
                    inner[self.convert(item, resp3)] = True
                return self._new(set=inner)
            return self._table([self.convert(item, resp3) for item in value])
        if kind is BigNumber:
            return self._new(big_number=bytes(value)) if resp3 else bytes(value)
        if kind is Verbatim:
            if resp3:
                return self._new(verbatim_string=self._new(format=b"txt", string=bytes(value)))
            return bytes(value)
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        if isinstance(value, int):
            return int(value)
        raise TypeError(f"no Lua form for a reply of type {kind.__name__}")


def lua_to_reply(value: Any, script_resp3: bool, rawget: Any) -> Any:
    """A script's return value as a reply (see the module docstring); errors come back as CommandError.

    Tables are read raw, as Redis's lua_rawget / lua_rawgeti: ``rawget`` is the runtime's Lua rawget, so no
    metamethod of the script's runs after it (one that raised, called redis or never returned nil for an
    index would otherwise decide the reply, or never end it). As cheap from Python as indexing the table.

    A table nested beyond Python's recursion limit (a table holding itself) or one whose metatable raises
    while it is read is answered with an error reply, never by dropping the connection."""
    try:
        return _to_reply(value, script_resp3, rawget)
    except RecursionError:
        return CommandError("ERR reached lua stack limit")
    except Exception as exc:
        # Imported here: lupa is loaded once a script has run, and a node that runs none never loads it.
        from lupa.lua51 import LuaError

        err = getattr(
            exc, "err", None
        )  # redis.call's error from a metamethod, after the run (ScriptCallError)
        if isinstance(err, bytes):
            return CommandError(err.decode("utf-8", "surrogateescape").replace("\r", " ").replace("\n", " "))
        if not isinstance(exc, LuaError):
            raise
        return CommandError(f"ERR {exc}".replace("\r", " ").replace("\n", " "))


def _to_reply(value: Any, script_resp3: bool, rawget: Any) -> Any:
    kind = type(value)
    if kind is bytes:
        return value
    if kind is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else _INT64_MIN
    if kind is float:
        return lua_number_to_int(value)
    if value is None:
        return None
    if kind is bool:
        if script_resp3:
            return value
        return 1 if value else None
    if not hasattr(value, "values"):  # a function, userdata, thread: Redis answers nil
        return None
    err = rawget(value, b"err")
    if type(err) is bytes:
        if value[
            b"ignore_error_stats_update"
        ]:  # redis.pcall's error returned: counted when the command gave it
            return CountedError(error_text(err))
        return CommandError(error_text(err))
    ok = rawget(value, b"ok")
    if type(ok) is bytes:
        return ok.decode("utf-8", "surrogateescape")
    double = rawget(value, b"double")
    if type(double) in (int, float):
        return float(double)
    big = rawget(value, b"big_number")
    if type(big) is bytes:
        # As Redis: CR and LF would break the ( line, so they become spaces (RESP2's bulk string too).
        return BigNumber(big.replace(b"\r", b" ").replace(b"\n", b" "))
    verbatim = rawget(value, b"verbatim_string")
    if verbatim is not None and hasattr(verbatim, "values"):
        text = rawget(verbatim, b"string")
        if type(text) is bytes:
            return Verbatim(text)
    mapping = rawget(value, b"map")
    if mapping is not None and hasattr(mapping, "values"):
        return {
            _hashable(_to_reply(k, script_resp3, rawget)): _to_reply(v, script_resp3, rawget)
            for k, v in mapping.items()
        }
    members = rawget(value, b"set")
    if members is not None and hasattr(members, "values"):
        # In Lua's iteration order (the array part first), as Redis's reply lists them.
        return ReplySet(dict.fromkeys(_hashable(_to_reply(k, script_resp3, rawget)) for k in members.keys()))
    items = []
    index = 1
    while True:
        item = rawget(value, index)
        if item is None:
            break
        items.append(_to_reply(item, script_resp3, rawget))
        index += 1
    return items


def _hashable(value: Any) -> Any:
    return tuple(value) if type(value) is list else value


def error_text(message: bytes) -> str:
    """An error reply's text from a script's ``{err=...}``: a leading '-' is dropped (redis.error_reply
    strips it), as Redis's addReplyErrorFormat does; the rest goes out as it is."""
    text = message.decode("utf-8", "surrogateescape")
    if text.startswith("-"):
        text = text[1:]
    return text
