"""The libraries Redis links into its Lua (cjson, cmsgpack, bit, struct), written over Python's stdlib.

Each ``*_table(lua)`` builds the Lua table a script sees. Behaviour follows the C libraries Redis ships:
lua-cjson 2.1 (numbers with ``%.14g``, ``/`` escaped, an empty table encodes as ``{}``, ``cjson.null``),
lua-cmsgpack (a table with keys 1..n packs as an array, otherwise a map; integral numbers as integers),
LuaBitOp (32-bit two's complement results) and Roberto Ierusalimschy's struct (the common formats).
"""

from __future__ import annotations

import json
import math
import re
import struct as pystruct
from typing import Any

import msgpack


def lua_table(lua: Any, **fields: Any) -> Any:
    """A Lua table with string keys (the runtime has no encoding, so keys must be bytes to be Lua strings)."""
    return lua.table_from({name.encode(): value for name, value in fields.items()})


class _Null:
    """cjson.null: decoded JSON nulls; a script returning it answers nil (it is not a table)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "cjson.null"


NULL = _Null()


def _is_table(value: Any) -> bool:
    return hasattr(value, "items") and not isinstance(value, dict)


def _array_length(table: Any) -> int | None:
    """n if the table's keys are exactly 1..n (n >= 1), else None."""
    count = 0
    highest = 0
    for key in table.keys():
        if type(key) not in (int, float) or key != int(key) or key < 1:
            return None
        count += 1
        highest = max(highest, int(key))
    if count == 0 or highest != count:
        return None
    return count


def _json_number(value: float) -> str:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise ValueError("Cannot serialise number: must not be NaN or Inf")
    if type(value) is int:
        return str(value)
    text = f"{value:.14g}"
    return text


def _json_string(value: bytes) -> str:
    text = json.dumps(value.decode("latin-1"), ensure_ascii=False)
    return text.replace("/", "\\/")


def _json_encode(value: Any, depth: int = 0) -> str:
    if depth > 1000:
        raise ValueError("Cannot serialise, excessive nesting (1001)")
    kind = type(value)
    if kind is bytes:
        return _json_string(value)
    if kind is int or kind is float:
        return _json_number(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None or value is NULL:
        return "null"
    if _is_table(value):
        length = _array_length(value)
        if length is not None:
            return "[" + ",".join(_json_encode(value[i], depth + 1) for i in range(1, length + 1)) + "]"
        parts = []
        for key, item in value.items():
            if type(key) is bytes:
                name = _json_string(key)
            elif type(key) in (int, float):
                name = '"' + _json_number(key) + '"'
            else:
                raise ValueError("Cannot serialise table: table key must be a number or string")
            parts.append(name + ":" + _json_encode(item, depth + 1))
        return "{" + ",".join(parts) + "}"
    from lupa import lua51

    raise ValueError(f"Cannot serialise {lua51.lua_type(value) or kind.__name__}: type not supported")


def cjson_table(lua: Any) -> Any:
    def to_lua(value: Any) -> Any:
        if isinstance(value, str):
            # The string's bytes as lua-cjson leaves them: the text's own bytes (UTF-8 or not: decoded with
            # surrogateescape), \u escapes as UTF-8 (a lone surrogate escape was refused before parsing).
            return value.encode("utf-8", "surrogateescape")
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return value
        if value is None:
            return NULL
        if isinstance(value, list):
            return lua.table_from([to_lua(item) for item in value])
        table = lua.table()
        for key, item in value.items():
            table[to_lua(key)] = to_lua(item)
        return table

    def encode(value: Any) -> bytes:
        try:
            return _json_encode(value).encode("latin-1", "replace")
        except ValueError as exc:
            raise _lua_error(lua, str(exc)) from None
        except RecursionError:
            # A table holding itself (Python's stack ends before lua-cjson's 1000 levels): cjson's error.
            raise _lua_error(lua, "Cannot serialise, excessive nesting (1001)") from None

    def decode(text: Any) -> Any:
        if type(text) is not bytes:
            raise _lua_error(lua, "bad argument #1 to 'decode' (string expected)")
        bad_escape = _lone_surrogate_escape(text)
        if bad_escape >= 0:
            raise _lua_error(
                lua, f"Expected value but found invalid unicode escape code at character {bad_escape + 1}"
            )
        try:
            return to_lua(json.loads(text.decode("utf-8", "surrogateescape")))
        except json.JSONDecodeError as exc:
            raise _lua_error(
                lua, f"Expected value but found invalid token at character {exc.pos + 1}"
            ) from None
        except (ValueError, UnicodeError) as exc:
            raise _lua_error(lua, f"Expected value but found invalid token: {exc}") from None

    return lua_table(lua, encode=encode, decode=decode, null=NULL)


# A \u escape of a UTF-16 surrogate (lua-cjson decodes a high one followed by an escaped low one as one
# character, and refuses any other), and any other escape, matched so that "\\\\" is skipped as one.
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")
_ESCAPES = re.compile(rb"\\(?:u([dD][89a-fA-F][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?|.)", re.S)


def _lone_surrogate_escape(text: bytes) -> int:
    """The offset of the first \\u escape lua-cjson refuses ("invalid unicode escape code"): a low surrogate
    alone, or a high one not followed by an escaped low one; -1 when there is none (the common case, found
    without a scan: no \\uD8.. to \\uDF.. escape at all)."""
    if _SURROGATE_HINT.search(text) is None:
        return -1
    for match in _ESCAPES.finditer(text):
        unit = match.group(1)
        if unit is not None and (int(unit, 16) >= 0xDC00 or match.group(2) is None):
            return match.start()
    return -1


class LibError(Exception):
    """A library function's error (luaL_error): the error handler prefixes the script's position, as Lua
    does for C functions ("user_script:1: Expected value but ...")."""


def _lua_error(lua: Any, message: str) -> Exception:
    return LibError(message)


# lua-cmsgpack's LUACMSGPACK_MAX_NESTING: a table this deep packs as nil, so a table that holds itself packs
# as a deep copy 16 levels down instead of recursing forever.
_MSGPACK_MAX_NESTING = 16


def _pack_value(value: Any, level: int = 0) -> Any:
    kind = type(value)
    if kind is float and math.isfinite(value) and value == int(value):
        return int(value)
    if _is_table(value):
        if level >= _MSGPACK_MAX_NESTING:
            return None
        length = _array_length(value)
        if length is not None:
            return [_pack_value(value[i], level + 1) for i in range(1, length + 1)]
        return {_pack_value(k, level + 1): _pack_value(v, level + 1) for k, v in value.items()}
    if value is NULL:
        return None
    return value


def _msgpack(value: Any) -> bytes:
    """lua-cmsgpack's encoding: as msgpack's, but a float exact in single precision packs as float32."""
    if type(value) is list:
        n = len(value)
        head = (
            bytes((0x90 | n,))
            if n < 16
            else (b"\xdc" + n.to_bytes(2, "big") if n < 1 << 16 else b"\xdd" + n.to_bytes(4, "big"))
        )
        return head + b"".join(_msgpack(item) for item in value)
    if type(value) is dict:
        n = len(value)
        head = (
            bytes((0x80 | n,))
            if n < 16
            else (b"\xde" + n.to_bytes(2, "big") if n < 1 << 16 else b"\xdf" + n.to_bytes(4, "big"))
        )
        return head + b"".join(_msgpack(k) + _msgpack(v) for k, v in value.items())
    if type(value) is float:
        try:
            single = pystruct.pack(">f", value)
        except OverflowError:
            single = b""
        if single and (pystruct.unpack(">f", single)[0] == value or math.isnan(value)):
            return b"\xca" + single
        return b"\xcb" + pystruct.pack(">d", value)
    packed: bytes = msgpack.packb(value, use_bin_type=False)
    return packed


def cmsgpack_table(lua: Any) -> Any:
    def to_lua(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return lua.table_from([to_lua(item) for item in value])
        if isinstance(value, dict):
            table = lua.table()
            for key, item in value.items():
                table[to_lua(key)] = to_lua(item)
            return table
        if isinstance(value, str):
            return value.encode()
        return value

    def pack(*values: Any) -> bytes:
        return b"".join(_msgpack(_pack_value(v)) for v in values)

    def unpack(data: bytes) -> Any:
        unpacker = msgpack.Unpacker(raw=True, strict_map_key=False)
        unpacker.feed(data)
        return tuple(to_lua(item) for item in unpacker)

    return lua_table(lua, pack=pack, unpack=unpack)


def _tobit(value: Any) -> int:
    number = int(value) & 0xFFFFFFFF
    return number - 0x100000000 if number & 0x80000000 else number


def bit_table(lua: Any) -> Any:
    def band(*values: Any) -> int:
        result = -1
        for v in values:
            result &= _tobit(v)
        return _tobit(result)

    def bor(*values: Any) -> int:
        result = 0
        for v in values:
            result |= _tobit(v)
        return _tobit(result)

    def bxor(*values: Any) -> int:
        result = 0
        for v in values:
            result ^= _tobit(v)
        return _tobit(result)

    def tohex(value: Any, digits: Any = 8) -> bytes:
        n = int(digits)
        upper = n < 0
        n = min(abs(n), 8)
        text = f"{int(value) & 0xFFFFFFFF:08x}"
        text = text[-n:] if n else ""
        return (text.upper() if upper else text).encode()

    def rol(value: Any, shift: Any) -> int:
        v, s = _tobit(value) & 0xFFFFFFFF, int(shift) & 31
        return _tobit((v << s) | (v >> (32 - s)))

    def ror(value: Any, shift: Any) -> int:
        v, s = _tobit(value) & 0xFFFFFFFF, int(shift) & 31
        return _tobit((v >> s) | (v << (32 - s)))

    def checked(name: str, fn: Any) -> Any:
        """LuaBitOp's argument check: every argument a number, else its "bad argument" error."""

        def call(*args: Any) -> Any:
            for i, arg in enumerate(args, 1):
                if type(arg) not in (int, float):
                    raise LibError(
                        f"bad argument #{i} to '{name}' (number expected, got {_lua_type_name(arg)})"
                    )
            return fn(*args)

        return call

    return lua_table(
        lua,
        **{name: checked(name, fn) for name, fn in _bit_functions(band, bor, bxor, tohex, rol, ror).items()},
    )


def _lua_type_name(value: Any) -> str:
    from lupa import lua51

    if value is None:
        return "no value"
    if type(value) is bytes:
        return "string"
    if type(value) is bool:
        return "boolean"
    return str(lua51.lua_type(value) or "userdata")


def _bit_functions(band: Any, bor: Any, bxor: Any, tohex: Any, rol: Any, ror: Any) -> dict[str, Any]:
    return dict(
        tobit=_tobit,
        tohex=tohex,
        bnot=lambda v: _tobit(~_tobit(v)),
        band=band,
        bor=bor,
        bxor=bxor,
        lshift=lambda v, s: _tobit(_tobit(v) << (int(s) & 31)),
        rshift=lambda v, s: _tobit((_tobit(v) & 0xFFFFFFFF) >> (int(s) & 31)),
        arshift=lambda v, s: _tobit(_tobit(v) >> (int(s) & 31)),
        rol=rol,
        ror=ror,
        bswap=lambda v: _tobit(int.from_bytes((_tobit(v) & 0xFFFFFFFF).to_bytes(4, "little"), "big")),
    )


# struct's format letters and their Python struct counterparts (sizes of a 64-bit Linux build).
_STRUCT_CODES = {"b": "b", "B": "B", "h": "h", "H": "H", "l": "q", "L": "Q", "T": "Q", "f": "f", "d": "d"}


def _struct_items(fmt: str) -> tuple[str, list[tuple[str, int]]]:
    """Endianness prefix and (letter, size) items of a struct format."""
    order = "<"
    items: list[tuple[str, int]] = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        i += 1
        digits = ""
        while i < len(fmt) and fmt[i].isdigit():
            digits += fmt[i]
            i += 1
        if ch in "<>=!":
            order = {"<": "<", ">": ">", "=": "<", "!": "<"}[ch]
        elif ch == " ":
            continue
        else:
            items.append((ch, int(digits) if digits else -1))
    return order, items


def struct_table(lua: Any) -> Any:
    def pack(fmt: bytes, *values: Any) -> bytes:
        order, items = _struct_items(fmt.decode())
        out = bytearray()
        args = list(values)
        for letter, size in items:
            if letter == "x":
                out += b"\0"
                continue
            value = args.pop(0)
            if letter in _STRUCT_CODES:
                code = _STRUCT_CODES[letter]
                out += pystruct.pack(order + code, value if code in "fd" else int(value))
            elif letter in "iI":
                n = 4 if size < 0 else size
                out += int(value).to_bytes(n, "little" if order == "<" else "big", signed=letter == "i")
            elif letter == "c":
                data = bytes(value)
                n = len(data) if size <= 0 else size
                out += data[:n].ljust(n, b"\0")
            elif letter == "s":
                out += bytes(value) + b"\0"
            else:
                raise LibError(f"bad argument #1 to 'pack' (invalid format option '{letter}')")
        return bytes(out)

    def unpack(fmt: bytes, data: bytes, start: Any = 1) -> tuple[Any, ...]:
        order, items = _struct_items(fmt.decode())
        pos = int(start) - 1
        results: list[Any] = []
        for letter, size in items:
            if letter == "x":
                pos += 1
                continue
            if letter in _STRUCT_CODES:
                code = order + _STRUCT_CODES[letter]
                width = pystruct.calcsize(code)
                results.append(pystruct.unpack_from(code, data, pos)[0])
                pos += width
            elif letter in "iI":
                n = 4 if size < 0 else size
                chunk = data[pos : pos + n]
                results.append(
                    int.from_bytes(chunk, "little" if order == "<" else "big", signed=letter == "i")
                )
                pos += n
            elif letter == "c":
                n = size if size > 0 else len(data) - pos
                results.append(data[pos : pos + n])
                pos += n
            elif letter == "s":
                end = data.index(b"\0", pos)
                results.append(data[pos:end])
                pos = end + 1
            else:
                raise LibError(f"bad argument #1 to 'unpack' (invalid format option '{letter}')")
        results.append(pos + 1)
        return tuple(results)

    def size(fmt: bytes) -> int:
        order, items = _struct_items(fmt.decode())
        total = 0
        for letter, n in items:
            if letter in _STRUCT_CODES:
                total += pystruct.calcsize(order + _STRUCT_CODES[letter])
            elif letter in "iI":
                total += 4 if n < 0 else n
            elif letter in "xc":
                total += max(n, 1)
            else:
                raise RuntimeError("options 's' and 'c0' have variable size")
        return total

    return lua_table(lua, pack=pack, unpack=unpack, size=size)
