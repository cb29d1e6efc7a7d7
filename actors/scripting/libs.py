"""The libraries Redis links into its Lua (cmsgpack, bit, struct; cjson is actors/scripting/cjson.py), written
over Python's stdlib.

Each ``*_table(lua)`` builds the Lua table a script sees. Behaviour follows the C libraries Redis ships:
lua-cmsgpack (a table with keys 1..n packs as an array, otherwise a map; integral numbers as integers),
LuaBitOp (32-bit two's complement results) and Roberto Ierusalimschy's struct (the common formats).
"""

from __future__ import annotations

import math
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


def is_table(value: Any) -> bool:
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
    if is_table(value):
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

    def unpack_full(name: str, data: Any, limit: int, offset: int) -> tuple[Any, ...]:
        """mp_unpack_full: every value (limit and offset 0), or the next offset (-1 at the end) and up to
        ``limit`` values from ``offset``."""
        data = check_string(name, 1, data)
        if offset < 0 or limit < 0:  # (lua-cmsgpack prints the input's length as the limit)
            raise LibError(f"Invalid request to unpack with offset of {offset} and limit of {len(data)}.")
        if offset > len(data):
            raise LibError(f"Start offset {offset} greater than input length {len(data)}.")
        decode_all = not limit and not offset
        unpacker = msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=max(len(data), 1))
        unpacker.feed(data[offset:])
        values: list[Any] = []
        try:
            while offset + unpacker.tell() < len(data) and (decode_all or len(values) < limit):
                values.append(to_lua(unpacker.unpack()))
        except msgpack.OutOfData:
            raise LibError("Missing bytes in input.") from None
        except ValueError:  # (msgpack's format, stack and extra-data errors)
            raise LibError("Bad data format in input.") from None
        if decode_all:
            return tuple(values)
        end = offset + unpacker.tell()
        return (-1 if end == len(data) else end, *values)

    def integer_arg(name: str, position: int, value: Any, default: int | None) -> int:
        if value is None and default is not None:
            return default
        return int(check_number(name, position, value))

    def unpack(data: Any = None, *_: Any) -> tuple[Any, ...]:
        return unpack_full("unpack", data, 0, 0)

    def unpack_one(data: Any = None, offset: Any = None, *_: Any) -> tuple[Any, ...]:
        return unpack_full("unpack_one", data, 1, integer_arg("unpack_one", 2, offset, 0))

    def unpack_limit(data: Any = None, limit: Any = None, offset: Any = None, *_: Any) -> tuple[Any, ...]:
        count = integer_arg("unpack_limit", 2, limit, None)
        return unpack_full("unpack_limit", data, count, integer_arg("unpack_limit", 3, offset, 0))

    return lua_table(
        lua,
        pack=pack,
        unpack=unpack,
        unpack_one=unpack_one,
        unpack_limit=unpack_limit,
        _NAME=b"cmsgpack",
        _VERSION=b"lua-cmsgpack 0.4.0",
        _COPYRIGHT=b"Copyright (C) 2012, Salvatore Sanfilippo",
        _DESCRIPTION=b"MessagePack C implementation for Lua",
    )


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
                        f"bad argument #{i} to '{name}' (number expected, got {lua_type_name(arg)})"
                    )
            return fn(*args)

        return call

    return lua_table(
        lua,
        **{name: checked(name, fn) for name, fn in _bit_functions(band, bor, bxor, tohex, rol, ror).items()},
    )


def check_number(name: str, position: int, value: Any) -> int | float:
    """luaL_checknumber for a library function written in Python: a number, or a string Lua reads as one;
    else Lua's "bad argument" error."""
    if type(value) is bytes:
        try:
            value = float(value)
        except ValueError:
            pass
    if type(value) not in (int, float):
        raise LibError(f"bad argument #{position} to '{name}' (number expected, got {lua_type_name(value)})")
    return value


def check_string(name: str, position: int, value: Any) -> bytes:
    """luaL_checklstring for a library function written in Python: a string, or a number as its text; else
    Lua's "bad argument" error."""
    if type(value) is int:
        return str(value).encode()
    if type(value) is float:
        return b"%.14g" % value
    if type(value) is not bytes:
        raise LibError(f"bad argument #{position} to '{name}' (string expected, got {lua_type_name(value)})")
    return value


def lua_type_name(value: Any) -> str:
    from lupa import lua51

    if value is None:
        return "no value"
    if type(value) is bytes:
        return "string"
    if type(value) is bool:
        return "boolean"
    if type(value).__name__ in ("_LuaThread", "_LuaCoroutineFunction"):  # (lupa's coroutine that has not run)
        return "thread"
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
