"""The ``cjson`` table a script sees: lua-cjson 2.1.0 as Redis 7.0 links it (deps/lua/src/lua_cjson.c).

Encoding walks the Lua value as lua_cjson.c does: a table whose keys are all integers >= 1 is an array up to
its highest key (holes encode as null) unless it is "excessively sparse", an empty table is ``{}``, numbers
are ``%.14g``, ``/`` and control bytes are escaped and other bytes pass as they are. Decoding is a port of its
tokenizer: strtod's numbers (hex, ``+1``, ``inf``, ``nan`` while decode_invalid_numbers is on), a NUL byte
ends the text, nulls are ``cjson.null``, and the errors name the token and character as lua-cjson does.
Python's json module decodes the texts where it provably gives the same table (the common case); the port
decodes the rest and words every error. The configuration functions (``encode_max_depth``,
``encode_sparse_array``, ``encode_invalid_numbers`` ...) set one state per table, kept across scripts as in
Redis's single Lua state; ``cjson.new()`` makes a table with a state of its own.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from actors.scripting.libs import (
    NULL,
    LibError,
    check_number,
    check_string,
    is_table,
    lua_table,
    lua_type_name,
)

INT_MAX = 2**31 - 1
_ON_OFF = ("off", "on")
_INVALID_NUMBERS = ("off", "on", "null")

# lua_cjson.c's char2escape: the bytes a string escapes (every other byte, 0x80-0xff too, passes unchanged).
_ESCAPE = {i: f"\\u{i:04x}".encode() for i in range(32)} | {
    8: b"\\b",
    9: b"\\t",
    10: b"\\n",
    12: b"\\f",
    13: b"\\r",
    34: b'\\"',
    47: b"\\/",
    92: b"\\\\",
    127: b"\\u007f",
}
_NEEDS_ESCAPE = re.compile(rb'[\x00-\x1f"/\\\x7f]')
_ESCAPE_BY_BYTE = {bytes((i,)): text for i, text in _ESCAPE.items()}


class Config:
    """json_config_t: one cjson table's settings (defaults as lua_cjson.c's DEFAULT_*)."""

    __slots__ = (
        "sparse_convert",
        "sparse_ratio",
        "sparse_safe",
        "encode_max_depth",
        "decode_max_depth",
        "encode_invalid_numbers",
        "decode_invalid_numbers",
        "keep_buffer",
        "precision",
    )

    def __init__(self) -> None:
        self.sparse_convert = 0
        self.sparse_ratio = 2
        self.sparse_safe = 10
        self.encode_max_depth = 1000
        self.decode_max_depth = 1000
        self.encode_invalid_numbers = 0  # 0 off, 1 on, 2 null
        self.decode_invalid_numbers = 1
        # lua-cjson's reuse of one encode buffer: a memory choice with no effect a script can see; kept so the
        # setter answers what it was given, as lua-cjson's does.
        self.keep_buffer = 1
        self.precision = 14


# -- encoding -------------------------------------------------------------------------------------------------


def _string(value: bytes) -> bytes:
    if _NEEDS_ESCAPE.search(value) is None:
        return b'"' + value + b'"'
    return b'"' + _NEEDS_ESCAPE.sub(lambda m: _ESCAPE_BY_BYTE[m.group()], value) + b'"'


def _number(cfg: Config, value: float) -> bytes:
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        if cfg.encode_invalid_numbers == 0:
            raise LibError("Cannot serialise number: must not be NaN or Inf")
        if cfg.encode_invalid_numbers == 2:
            return b"null"
        if math.isnan(number):
            return b"nan"
    return b"%.*g" % (cfg.precision, number)


def _array_length(cfg: Config, table: Any) -> int:
    """lua_array_length: the highest key when every key is an integer >= 1 (0 for an empty table), -1 for an
    object; an excessively sparse array is an object when sparse_convert is on, else an error."""
    highest = 0
    items = 0
    for key in table.keys():
        if type(key) not in (int, float) or key < 1 or key != math.floor(key):
            return -1
        highest = max(highest, int(key))
        items += 1
    if cfg.sparse_ratio > 0 and highest > items * cfg.sparse_ratio and highest > cfg.sparse_safe:
        if not cfg.sparse_convert:
            raise LibError("Cannot serialise table: excessively sparse array")
        return -1
    return highest


def _encode(cfg: Config, value: Any, depth: int, out: list[bytes]) -> None:
    kind = type(value)
    if kind is bytes:
        out.append(_string(value))
    elif kind is bool:  # (before int: a bool is an int to Python)
        out.append(b"true" if value else b"false")
    elif kind is int or kind is float:
        out.append(_number(cfg, value))
    elif value is None or value is NULL:
        out.append(b"null")
    elif is_table(value):
        depth += 1
        if depth > cfg.encode_max_depth:
            raise LibError(f"Cannot serialise, excessive nesting ({depth})")
        length = _array_length(cfg, value)
        if length > 0:
            out.append(b"[")
            for i in range(1, length + 1):
                if i > 1:
                    out.append(b",")
                _encode(cfg, value[i], depth, out)
            out.append(b"]")
            return
        out.append(b"{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(b",")
            first = False
            if type(key) is bytes:
                out.append(_string(key) + b":")
            elif type(key) in (int, float):
                out.append(b'"' + _number(cfg, key) + b'":')
            else:
                raise LibError(f"Cannot serialise {lua_type_name(key)}: table key must be a number or string")
            _encode(cfg, item, depth, out)
        out.append(b"}")
    else:
        raise LibError(f"Cannot serialise {lua_type_name(value)}: type not supported")


# -- decoding -------------------------------------------------------------------------------------------------

_TOKEN_NAMES = {"{": "T_OBJ_BEGIN", "}": "T_OBJ_END", "[": "T_ARR_BEGIN", "]": "T_ARR_END", ":": "T_COLON"}
_WHITESPACE = re.compile(rb"[ \t\n\r]*")
# strtod's numbers: decimal (leading zeros and '+' allowed), hexadecimal (with a fraction and a 'p' exponent),
# inf/infinity and nan (any case, nan with an optional "(chars)").
_STRTOD = re.compile(
    rb"[+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?)"
)
_PLAIN_STRING = re.compile(rb'[^"\\\x00]*')


class _Error(Exception):
    """A token lua-cjson refuses: what was expected is added by the caller that saw it."""

    def __init__(self, found: str, index: int) -> None:
        self.found, self.index = found, index


def _strtod(text: bytes) -> float:
    body = text.lstrip(b"+-")
    sign = -1.0 if text.startswith(b"-") else 1.0
    if body[:2] in (b"0x", b"0X"):
        return sign * float.fromhex(body.decode())
    lowered = body.lower()
    if lowered.startswith(b"inf"):
        return sign * math.inf
    if lowered.startswith(b"nan"):
        return math.copysign(math.nan, sign)  # ("-nan" keeps its sign, as strtod's: Lua prints it "-nan")
    return sign * float(body)


def _invalid_number(data: bytes, at: int) -> bool:
    """json_is_invalid_number: '+', hex, leading zeros, inf and nan are not strict JSON."""
    if data[at : at + 1] == b"+":
        return True
    if data[at : at + 1] == b"-":
        at += 1
    head = data[at : at + 1]
    if head == b"0":
        following = data[at + 1 : at + 2]
        return following in (b"x", b"X") or following.isdigit()
    if head and head <= b"9":
        return False
    return data[at : at + 3].lower() in (b"inf", b"nan")


class _Parser:
    """json_parse_t: the text, the position, the nesting depth, and the settings it decodes by."""

    def __init__(self, lua: Any, cfg: Config, data: bytes) -> None:
        self.lua, self.cfg, self.text, self.pos, self.depth = lua, cfg, data, 0, 0

    def token(self) -> tuple[str, Any, int]:
        """json_next_token: (kind, value, index) with kind one of lua_cjson.c's T_* names."""
        data = self.text
        self.pos = _WHITESPACE.match(data, self.pos).end()  # type: ignore[union-attr]
        at = self.pos
        if at >= len(data) or data[at] == 0:
            return "T_END", None, at
        char = chr(data[at])
        if char in "{}[]:,":
            self.pos += 1
            return ("T_COMMA" if char == "," else _TOKEN_NAMES[char]), None, at
        if char == '"':
            return "T_STRING", self.string(), at
        invalid = self.cfg.decode_invalid_numbers
        if char == "-" or "0" <= char <= "9":
            if not invalid and _invalid_number(data, at):
                raise _Error("invalid number", at)
            return "T_NUMBER", self.number(), at
        for word, kind, value in ((b"true", "T_BOOLEAN", True), (b"false", "T_BOOLEAN", False)):
            if data.startswith(word, at):
                self.pos += len(word)
                return kind, value, at
        if data.startswith(b"null", at):
            self.pos += 4
            return "T_NULL", NULL, at
        if char in "+iInN" and invalid and _invalid_number(data, at):
            return "T_NUMBER", self.number(), at  # strtod's forms: '+1', inf, nan
        raise _Error("invalid token", at)

    def number(self) -> float:
        match = _STRTOD.match(self.text, self.pos)
        if match is None:
            raise _Error("invalid number", self.pos)
        self.pos = match.end()
        return _strtod(match.group())

    def string(self) -> bytes:
        data = self.text
        pos = self.pos + 1
        parts = []
        while True:
            end = _PLAIN_STRING.match(data, pos).end()  # type: ignore[union-attr]
            parts.append(data[pos:end])
            pos = end
            if pos >= len(data) or data[pos] == 0:
                self.pos = pos
                raise _Error("unexpected end of string", pos)
            if data[pos] == 34:  # '"'
                self.pos = pos + 1
                return b"".join(parts)
            escape = data[pos + 1 : pos + 2]
            if escape == b"u":
                decoded, length = _unicode_escape(data, pos)
                if decoded is None:
                    self.pos = pos
                    raise _Error("invalid unicode escape code", pos)
                parts.append(decoded)
                pos += length
                continue
            simple = _SIMPLE_ESCAPES.get(escape)
            if simple is None:
                self.pos = pos
                raise _Error("invalid escape code", pos)
            parts.append(simple)
            pos += 2

    def expect_error(self, expected: str, found: str, index: int) -> LibError:
        return LibError(f"Expected {expected} but found {found} at character {index + 1}")

    def value(self, kind: str, value: Any, index: int) -> Any:
        if kind in ("T_STRING", "T_NUMBER", "T_BOOLEAN", "T_NULL"):
            return value
        if kind == "T_OBJ_BEGIN":
            return self.container(is_object=True)
        if kind == "T_ARR_BEGIN":
            return self.container(is_object=False)
        raise self.expect_error("value", kind, index)

    def next_token(self, expected: str) -> tuple[str, Any, int]:
        try:
            return self.token()
        except _Error as exc:
            raise self.expect_error(expected, exc.found, exc.index) from None

    def container(self, is_object: bool) -> Any:
        self.depth += 1
        if self.depth > self.cfg.decode_max_depth:
            raise LibError(f"Found too many nested data structures ({self.depth}) at character {self.pos}")
        table = self.lua.table()
        closer = "T_OBJ_END" if is_object else "T_ARR_END"
        kind, value, index = self.next_token("object key string" if is_object else "value")
        if kind == closer:
            self.depth -= 1
            return table
        i = 1
        while True:
            if is_object:
                if kind != "T_STRING":
                    raise self.expect_error("object key string", kind, index)
                kind_colon, _, at = self.next_token("colon")
                if kind_colon != "T_COLON":
                    raise self.expect_error("colon", kind_colon, at)
                table[value] = self.value(*self.next_token("value"))
            else:
                table[i] = self.value(kind, value, index)
                i += 1
            what = "comma or object end" if is_object else "comma or array end"
            kind, _, at = self.next_token(what)
            if kind == closer:
                self.depth -= 1
                return table
            if kind != "T_COMMA":
                raise self.expect_error(what, kind, at)
            kind, value, index = self.next_token("object key string" if is_object else "value")


_SIMPLE_ESCAPES = {
    b'"': b'"',
    b"\\": b"\\",
    b"/": b"/",
    b"b": b"\b",
    b"t": b"\t",
    b"n": b"\n",
    b"f": b"\f",
    b"r": b"\r",
}
_HEX4 = re.compile(rb"[0-9a-fA-F]{4}")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _unicode_escape(data: bytes, at: int) -> tuple[bytes | None, int]:
    """json_append_unicode_escape: (UTF-8 bytes, escape length), or (None, 0) for an invalid escape."""
    if _HEX4.fullmatch(data, at + 2, at + 6) is None:
        return None, 0
    unit = int(data[at + 2 : at + 6], 16)
    if unit & 0xF800 != 0xD800:
        return chr(unit).encode("utf-8", "surrogatepass"), 6
    if unit & 0x400 or data[at + 6 : at + 8] != b"\\u" or _HEX4.fullmatch(data, at + 8, at + 12) is None:
        return None, 0
    low = int(data[at + 8 : at + 12], 16)
    if low & 0xFC00 != 0xDC00:
        return None, 0
    return chr((((unit & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000).encode(), 12


def _from_python(lua: Any, value: Any) -> Any:
    """json.loads's result as the port would build it (numbers are floats: parse_int=float)."""
    if type(value) is str:
        return value.encode("utf-8", "surrogateescape")
    if type(value) is list:
        return lua.table_from([_from_python(lua, item) for item in value])
    if type(value) is dict:
        table = lua.table()
        for key, item in value.items():
            table[key.encode("utf-8", "surrogateescape")] = _from_python(lua, item)
        return table
    return NULL if value is None else value


def _python_agrees(cfg: Config, data: bytes) -> bool:
    """Whether json.loads gives lua-cjson's table for this text when it accepts it: default number settings,
    no NUL byte (lua-cjson's end of text), no \\u escape of a surrogate (Python takes a lone one, lua-cjson
    refuses it), and fewer brackets than the depth limit."""
    return (
        cfg.decode_invalid_numbers == 1
        and b"\x00" not in data
        and _SURROGATE_ESCAPE.search(data) is None
        and data.count(b"[") + data.count(b"{") < cfg.decode_max_depth
    )


def _decode(lua: Any, cfg: Config, data: bytes) -> Any:
    if len(data) >= 2 and (data[0] == 0 or data[1] == 0):
        raise LibError("JSON parser does not support UTF-16 or UTF-32")
    if _python_agrees(cfg, data):
        try:
            text = data.decode("utf-8", "surrogateescape")
            return _from_python(lua, json.loads(text, strict=False, parse_int=float))
        except (ValueError, RecursionError):
            pass  # the port words the error (or accepts what strtod reads: hex, '+1', leading zeros)
    parser = _Parser(lua, cfg, data)
    result = parser.value(*parser.next_token("value"))
    kind, _, at = parser.next_token("the end")
    if kind != "T_END":
        raise parser.expect_error("the end", kind, at)
    return result


# -- the table ------------------------------------------------------------------------------------------------


def _check_args(name: str, args: tuple[Any, ...], most: int) -> None:
    if len(args) > most:
        raise LibError(f"bad argument #{most + 1} to '{name}' (found too many arguments)")


def _integer_option(name: str, value: Any, current: int, low: int, high: int) -> int:
    if value is None:
        return current
    number = int(check_number(name, 1, value))  # (#1 for every option: lua-cjson's json_integer_option)
    if not low <= number <= high:
        raise LibError(f"bad argument #1 to '{name}' (expected integer between {low} and {high})")
    return number


def _enum_option(name: str, value: Any, current: int, options: tuple[str, ...]) -> int:
    if value is None:
        return current
    if type(value) is bool:
        return int(value)
    if type(value) in (int, float):
        value = (b"%.14g" % value) if type(value) is float else str(value).encode()
    if type(value) is not bytes:
        raise LibError(f"bad argument #1 to '{name}' (string expected, got {lua_type_name(value)})")
    word = value.decode("utf-8", "surrogateescape")
    if word not in options:
        raise LibError(f"bad argument #1 to '{name}' (invalid option '{word}')")
    return options.index(word)


def _shown(setting: int, options: tuple[str, ...]) -> Any:
    return bool(setting) if setting in (0, 1) else options[setting].encode()


def cjson_table(lua: Any) -> Any:
    """A cjson table with its own settings (lua_cjson_new)."""
    cfg = Config()

    def encode(*args: Any) -> bytes:
        if len(args) != 1:
            raise LibError("bad argument #1 to 'encode' (expected 1 argument)")
        out: list[bytes] = []
        try:
            _encode(cfg, args[0], 0, out)
        except RecursionError:
            # Python's stack ends before a depth limit over ~900 (a table holding itself, say)
            raise LibError(f"Cannot serialise, excessive nesting ({cfg.encode_max_depth + 1})") from None
        return b"".join(out)

    def decode(*args: Any) -> Any:
        if len(args) != 1:
            raise LibError("bad argument #1 to 'decode' (expected 1 argument)")
        data = check_string("decode", 1, args[0])
        try:
            return _decode(lua, cfg, data)
        except RecursionError:
            raise LibError(f"Found too many nested data structures ({cfg.decode_max_depth + 1})") from None

    def integer_setting(name: str, attribute: str, low: int, high: int) -> Callable[..., int]:
        def setting(*args: Any) -> int:
            _check_args(name, args, 1)
            value = _integer_option(name, args[0] if args else None, getattr(cfg, attribute), low, high)
            setattr(cfg, attribute, value)
            return value

        return setting

    def enum_setting(name: str, attribute: str, options: tuple[str, ...]) -> Callable[..., Any]:
        def setting(*args: Any) -> Any:
            _check_args(name, args, 1)
            value = _enum_option(name, args[0] if args else None, getattr(cfg, attribute), options)
            setattr(cfg, attribute, value)
            return _shown(value, options)

        return setting

    def encode_sparse_array(*args: Any) -> tuple[Any, int, int]:
        _check_args("encode_sparse_array", args, 3)
        convert, ratio, safe = (*args, None, None, None)[:3]
        name = "encode_sparse_array"
        cfg.sparse_convert = _enum_option(name, convert, cfg.sparse_convert, _ON_OFF)
        cfg.sparse_ratio = _integer_option(name, ratio, cfg.sparse_ratio, 0, INT_MAX)
        cfg.sparse_safe = _integer_option(name, safe, cfg.sparse_safe, 0, INT_MAX)
        return bool(cfg.sparse_convert), cfg.sparse_ratio, cfg.sparse_safe

    return lua_table(
        lua,
        encode=encode,
        decode=decode,
        encode_sparse_array=encode_sparse_array,
        encode_max_depth=integer_setting("encode_max_depth", "encode_max_depth", 1, INT_MAX),
        decode_max_depth=integer_setting("decode_max_depth", "decode_max_depth", 1, INT_MAX),
        encode_number_precision=integer_setting("encode_number_precision", "precision", 1, 14),
        encode_keep_buffer=enum_setting("encode_keep_buffer", "keep_buffer", _ON_OFF),
        encode_invalid_numbers=enum_setting(
            "encode_invalid_numbers", "encode_invalid_numbers", _INVALID_NUMBERS
        ),
        decode_invalid_numbers=enum_setting("decode_invalid_numbers", "decode_invalid_numbers", _ON_OFF),
        new=lambda: cjson_table(lua),
        null=NULL,
        _NAME=b"cjson",
        _VERSION=b"2.1.0",
    )
