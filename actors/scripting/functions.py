"""Function libraries (Redis 7.0's functions.c / function_lua.c): loading, the registry, DUMP / RESTORE
payloads and the RDB records.

A library is Lua code whose first line is ``#!lua name=<library>``; running it registers functions with
``redis.register_function(name, callback)`` or ``redis.register_function{function_name=, callback=,
flags=, description=}``. While it loads, ``redis`` offers only register_function, log and the constants;
its functions later run with the full ``redis`` table, through the same engine as EVAL (engine.py).

Persistence: each library is one RDB_OPCODE_FUNCTION2 record holding its code (before the databases, as
Redis writes it), so redis-server loads our RDB's functions and we load its. FUNCTION DUMP's payload is
those records followed by the RDB version and a CRC64, as DUMP's. The RDB reader and writer reach this
module through two hooks in actors/data/rdb_hooks.py.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from actors.scripting.bridge import ScriptCallError
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.scripting.engine import ScriptEngine

OPCODE_FUNCTION2 = 245
# FUNCTION DUMP's payload trailer: the RDB version it was written with (Redis 7.0: 10).
DUMP_RDB_VERSION = 10
# Redis's LOAD_TIMEOUT_MS: a library's top-level code may run this long, then FUNCTION LOAD fails.
LOAD_TIMEOUT_S = 0.5
FUNCTION_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")
_NAME = re.compile(rb"^[A-Za-z0-9_]+$")
_BAD_NAME = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
_BAD_FUNCTION_NAME = "Function names can only contain letters, numbers, or underscores(_) and must be at least one character long"


@dataclass
class Function:
    name: str
    callback: Any  # the Lua function
    flags: frozenset[str]
    description: bytes | None
    library: str


@dataclass
class Library:
    name: str
    code: bytes
    functions: dict[str, Function] = field(default_factory=dict)


class _LoadError(Exception):
    """A registration refused while a library loads (raised through Lua as a ScriptCallError)."""


def parse_library_header(code: bytes) -> str:
    """The library name of ``#!lua name=<name>``; raises CommandError with Redis's texts."""
    if not code.startswith(b"#!"):
        raise CommandError("ERR Missing library metadata")
    end = code.find(b"\n")
    first = code[: end if end >= 0 else len(code)].decode("utf-8", "surrogateescape")
    try:
        # Split as Redis's sdssplitargs: quotes are honoured, a backslash outside them is a plain character.
        lexer = shlex.shlex(first, posix=True)
        lexer.whitespace_split = True
        lexer.escape = ""
        lexer.commenters = ""
        parts = list(lexer)
    except ValueError:
        raise CommandError("ERR Invalid library metadata") from None
    engine = parts[0][2:] if parts and parts[0].startswith("#!") else ""
    name = None
    for part in parts[1:]:
        if part.startswith("name="):
            if name is not None:
                raise CommandError("ERR Invalid metadata value, name argument was given multiple times")
            name = part[5:]
        else:
            raise CommandError(f"ERR Invalid metadata value given: {part}")
    if engine.lower() != "lua":
        raise CommandError(f"ERR Engine '{engine}' not found")
    if name is None:
        raise CommandError("ERR Library name was not given")
    if not _NAME.match(name.encode("utf-8", "surrogateescape")):
        raise CommandError(f"ERR {_BAD_NAME}")
    return name


class FunctionStore:
    """The node's libraries and functions. Loop thread only (loading from an RDB is handed over to it)."""

    def __init__(self, engine: ScriptEngine) -> None:
        self.engine = engine
        self.libraries: dict[str, Library] = {}
        self.functions: dict[str, Function] = {}
        self._loading: Library | None = None
        # One loading API and one timeout check for every load: lupa keeps a slot per distinct Python object
        # handed to Lua, so a new bound method or lambda per FUNCTION LOAD grew the Lua heap by ~30 bytes a
        # load until its cache was rehashed (INFO's used_memory_lua climbed past 500 KB over 10000 loads).
        self._api: Any = None
        self._deadline_s = 0.0
        self._timed_out = self._load_timed_out

    def _load_timed_out(self) -> bool:
        return time.monotonic() > self._deadline_s

    # -- loading -----------------------------------------------------------------------------------------

    def load(self, code: bytes, replace: bool) -> str:
        """FUNCTION LOAD: compile and run the library, then register its functions; returns its name."""
        name = parse_library_header(code)
        old = self.libraries.get(name)
        if old is not None and not replace:
            raise CommandError(f"ERR Library '{name}' already exists")
        library = self._build(name, code)
        for fname in library.functions:
            owner = self.functions.get(fname)
            if owner is not None and owner.library != name:
                raise CommandError(f"ERR Function {fname} already exists")
        self._install(library)
        return name

    def _build(self, name: str, code: bytes) -> Library:
        runtime = self.engine.runtime
        library = Library(name, code)
        api = self._api
        if api is None:
            api = self._api = runtime.loading_api(self._register, self.engine.lua_log)
        chunk, loaded, error = runtime.compile_library(b"--" + code[2:], api)
        if chunk is None:
            raise CommandError(f"ERR Error compiling function: {error}")
        self._loading = library
        self._deadline_s = time.monotonic() + LOAD_TIMEOUT_S
        try:
            ok, result = runtime.run_loader(chunk, self._timed_out)
        finally:
            self._loading = None
        if not ok:
            err = result[b"err"] if hasattr(result, "values") else None
            text = err.decode("utf-8", "replace") if type(err) is bytes else str(result)
            raise CommandError(f"ERR Error registering functions: {text}")
        if not library.functions:
            raise CommandError("ERR No functions registered")
        loaded()
        return library

    def _install(self, library: Library) -> None:
        old = self.libraries.pop(library.name, None)
        if old is not None:
            for fname in old.functions:
                self.functions.pop(fname, None)
        self.libraries[library.name] = library
        self.functions.update(library.functions)

    def _register(self, *args: Any) -> None:
        """redis.register_function, while a library loads."""
        from lupa.lua51 import lua_type  # lupa is loaded lazily (a node that runs no script never loads it)

        library = self._loading
        if library is None:
            raise ScriptCallError(b"ERR redis.register_function can only be called on FUNCTION LOAD command")
        flags: frozenset[str] = frozenset()
        description: bytes | None = None
        if len(args) == 1:
            table = args[0]
            if not hasattr(table, "items"):
                raise ScriptCallError(
                    b"ERR calling redis.register_function with a single argument is only applicable to Lua "
                    b"table (representing named arguments)."
                )
            name = callback = None
            for key, value in table.items():
                if key == b"function_name":
                    if type(value) is not bytes:
                        raise ScriptCallError(
                            b"ERR function_name argument given to redis.register_function must be a string"
                        )
                    name = value
                elif key == b"callback":
                    if lua_type(value) != "function":
                        raise ScriptCallError(
                            b"ERR callback argument given to redis.register_function must be a function"
                        )
                    callback = value
                elif key == b"flags":
                    if lua_type(value) != "table":
                        raise ScriptCallError(
                            b"ERR flags argument to redis.register_function must be a table representing "
                            b"function flags"
                        )
                    names = list(value.values())
                    if any(type(flag) is not bytes or flag.decode() not in FUNCTION_FLAGS for flag in names):
                        raise ScriptCallError(b"ERR unknown flag given")
                    flags = frozenset(flag.decode() for flag in names)
                elif key == b"description":
                    if type(value) is not bytes:
                        raise ScriptCallError(
                            b"ERR description argument given to redis.register_function must be a string"
                        )
                    description = value
                else:
                    raise ScriptCallError(b"ERR unknown argument given to redis.register_function")
            if type(name) is not bytes:
                raise ScriptCallError(b"ERR redis.register_function must get a function name argument")
            if callback is None:
                raise ScriptCallError(b"ERR redis.register_function must get a callback argument")
        elif len(args) == 2:
            name, callback = args
            if type(name) is not bytes:
                raise ScriptCallError(b"ERR first argument to redis.register_function must be a string")
            if lua_type(callback) != "function":
                raise ScriptCallError(b"ERR second argument to redis.register_function must be a function")
        else:
            raise ScriptCallError(b"ERR wrong number of arguments to redis.register_function")
        if not _NAME.match(name):
            raise ScriptCallError(f"ERR {_BAD_NAME}".encode())
        fname = name.decode()
        if fname in library.functions:
            raise ScriptCallError(b"ERR Function already exists in the library")
        library.functions[fname] = Function(fname, callback, flags, description, library.name)

    # -- the other subcommands -----------------------------------------------------------------------

    def delete(self, name: str) -> None:
        library = self.libraries.pop(name, None)
        if library is None:
            raise CommandError("ERR Library not found")
        for fname in library.functions:
            self.functions.pop(fname, None)

    def flush(self) -> None:
        self.libraries.clear()
        self.functions.clear()

    def replace_all(self, codes: list[bytes]) -> None:
        """The libraries of a loaded RDB replace the current ones (start-up, a replica's full sync)."""
        built = []
        for code in codes:
            built.append(self._build(parse_library_header(code), code))
        self.flush()
        for library in built:
            self._install(library)

    def rdb_records(self) -> bytes:
        """Every library as an RDB_OPCODE_FUNCTION2 record (what an RDB file and FUNCTION DUMP hold)."""
        return b"".join(bytes((OPCODE_FUNCTION2,)) + _rdb_string(lib.code) for lib in self.libraries.values())

    def list(self, pattern: bytes | None, with_code: bool) -> list[Any]:
        import fnmatch

        out: list[Any] = []
        for library in self.libraries.values():
            if pattern is not None and not fnmatch.fnmatchcase(
                library.name, pattern.decode("utf-8", "replace")
            ):
                continue
            functions = [
                {
                    b"name": fn.name.encode(),
                    b"description": fn.description,
                    b"flags": {flag.encode() for flag in fn.flags},
                }
                for fn in library.functions.values()
            ]
            entry: dict[bytes, Any] = {
                b"library_name": library.name.encode(),
                b"engine": b"LUA",
                b"functions": functions,
            }
            if with_code:
                entry[b"library_code"] = library.code
            out.append(entry)
        return out


def _rdb_string(data: bytes) -> bytes:
    """An RDB string record, uncompressed (rdbSaveRawString's length prefix)."""
    n = len(data)
    if n < 1 << 6:
        head = bytes((n,))
    elif n < 1 << 14:
        head = bytes((0x40 | (n >> 8), n & 0xFF))
    elif n <= 0xFFFFFFFF:
        head = b"\x80" + n.to_bytes(4, "big")
    else:
        head = b"\x81" + n.to_bytes(8, "big")
    return head + data
