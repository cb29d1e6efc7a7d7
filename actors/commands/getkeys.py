"""Which arguments of a command are keys: Redis 7.0's key specs, interpreted generically, plus key finders.

This is the one place cluster routing, ACL key patterns, client-side tracking, scripting and ``COMMAND
GETKEYS`` ask for a command's keys. It owns:

- ``KeySpec``: one of Redis's key specs (begin_search: index / keyword; find_keys: range / keynum; flags),
  parsed from the generated reference data in keyspecs.py;
- ``CommandKeys``: everything about one command's (or subcommand's) keys: its specs, Redis's legacy
  first/last/step, its key finder, and, for a container (OBJECT, MEMORY, ...), its subcommands';
- the key finders (Redis's getkeys_procs) for the commands whose keys specs cannot describe alone, and
  ``register_key_finder`` so a later family plugs its own in by name (EVAL/FCALL, XREAD/XREADGROUP and
  MIGRATE already have theirs here, checked against redis-server before those commands exist);
- ``get_keys`` / ``get_keys_and_flags``: Redis's getKeysFromCommandWithSpecs. ``get_keys`` is plain
  arithmetic on the legacy range for every command whose keys are exactly that range (most of them);
- ``checked_keys_and_flags``: COMMAND GETKEYS's checks and errors, in Redis's order;
- ``attach_keys``: called once when the table is built, gives every ``Command`` its ``CommandKeys``.

A key finder is ``finder(argv) -> [(position, flags), ...]``; ``argv[0]`` is the command name, and an
empty list means "no keys" (Redis then answers COMMAND GETKEYS with "Invalid arguments specified").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any

from actors.commands.keyspecs import INFO
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.commands import Command

KeyFlags = tuple[str, ...]
KeyFinder = Callable[[list[bytes]], list[tuple[int, KeyFlags]]]

# Key flags as Redis replies them (addReplyFlagsForKeyArgs order); a finder's flags follow this order too.
RO_ACCESS: KeyFlags = ("RO", "access")
OW_UPDATE: KeyFlags = ("OW", "update")
RW_ACCESS_UPDATE: KeyFlags = ("RW", "access", "update")
RW_ACCESS_DELETE: KeyFlags = ("RW", "access", "delete")
NO_FLAGS: KeyFlags = ()


class BeginSearch(Enum):
    """How a spec finds its first key (Redis's kspec_bs_type)."""

    INDEX = "index"  # at a fixed argument index
    KEYWORD = (
        "keyword"  # just after a keyword, searched from ``startfrom`` (negative: from the end, backwards)
    )
    UNKNOWN = "unknown"  # cannot be found from the spec: the command's key finder must say


class FindKeys(Enum):
    """How a spec finds its keys once it has the first one (Redis's kspec_fk_type)."""

    RANGE = "range"  # first .. first+lastkey (lastkey < 0: counted from the end), every keystep
    KEYNUM = "keynum"  # an argument holds the number of keys that follow
    UNKNOWN = "unknown"  # only the key finder knows


class KeySpec:
    """One of Redis's key specs. Fields of the begin/find kinds not in use keep their defaults."""

    __slots__ = (
        "flags",
        "begin",
        "find",
        "index",
        "keyword",
        "startfrom",
        "lastkey",
        "keystep",
        "limit",
        "keynumidx",
        "firstkey",
    )

    def __init__(
        self,
        flags: KeyFlags,
        begin: BeginSearch,
        find: FindKeys,
        index: int = 0,
        keyword: bytes = b"",
        startfrom: int = 0,
        lastkey: int = 0,
        keystep: int = 1,
        limit: int = 0,
        keynumidx: int = 0,
        firstkey: int = 0,
    ) -> None:
        self.flags: KeyFlags = flags
        self.begin: BeginSearch = begin
        self.find: FindKeys = find
        # BeginSearch.INDEX: the argument index
        self.index: int = index
        # BeginSearch.KEYWORD: the keyword (lowercase), and where the search starts
        self.keyword: bytes = keyword
        self.startfrom: int = startfrom
        # FindKeys.RANGE: last key relative to the first (< 0: from the end), step, limit
        self.lastkey: int = lastkey
        self.keystep: int = keystep
        self.limit: int = limit
        # FindKeys.KEYNUM: where the count is (relative to first), where keys start
        self.keynumidx: int = keynumidx
        self.firstkey: int = firstkey

    @classmethod
    def from_reply(cls, reply: dict[bytes, Any]) -> KeySpec:
        """A spec from its COMMAND INFO map (as keyspecs.py stores it)."""
        begin = reply[b"begin_search"]
        find = reply[b"find_keys"]
        bs = begin[b"spec"]
        fk = find[b"spec"]
        return cls(
            flags=tuple(reply[b"flags"]),
            begin=BeginSearch(begin[b"type"].decode()),
            find=FindKeys(find[b"type"].decode()),
            index=bs.get(b"index", 0),
            keyword=bs.get(b"keyword", b"").lower(),
            startfrom=bs.get(b"startfrom", 0),
            lastkey=fk.get(b"lastkey", 0),
            keystep=fk.get(b"keystep", 1),
            limit=fk.get(b"limit", 0),
            keynumidx=fk.get(b"keynumidx", 0),
            firstkey=fk.get(b"firstkey", 0),
        )


class CommandKeys:
    """What one command or subcommand declares about its keys, ready for ``get_keys``."""

    __slots__ = (
        "name",
        "arity",
        "first_key",
        "last_key",
        "key_step",
        "specs",
        "finder",
        "finder_flags_only",
        "no_mandatory_keys",
        "subcommands",
        "has_keys",
        "use_specs",
        "simple",
        "movable",
    )

    def __init__(
        self,
        name: str,
        arity: int,
        first_key: int,
        last_key: int,
        key_step: int,
        specs: tuple[KeySpec, ...] = (),
        finder: KeyFinder | None = None,
        finder_flags_only: bool = False,
        no_mandatory_keys: bool = False,
        subcommands: dict[bytes, CommandKeys] | None = None,
        has_keys: bool = False,
        use_specs: bool = False,
        simple: bool = False,
        movable: bool = False,
    ) -> None:
        # full name: "get", "object|encoding"
        self.name: str = name
        # the command's own arity (a subcommand's, for a subcommand)
        self.arity: int = arity
        # Redis's legacy range (COMMAND INFO's first/last/step)
        self.first_key: int = first_key
        self.last_key: int = last_key
        self.key_step: int = key_step
        self.specs: tuple[KeySpec, ...] = specs
        self.finder: KeyFinder | None = finder
        # The finder only chooses flags (SET, BITFIELD): positions are the specs' ranges.
        self.finder_flags_only: bool = finder_flags_only
        # COMMAND GETKEYS answers [] rather than an error when none are found
        self.no_mandatory_keys: bool = no_mandatory_keys
        self.subcommands: dict[bytes, CommandKeys] = {} if subcommands is None else subcommands
        # Derived by finish():
        # Redis's doesCommandHaveKeys: a finder, or a spec that is not "not_key".
        self.has_keys: bool = has_keys
        # Specs are complete and their flags reliable (no "variable_flags"): Redis tries them before the finder.
        self.use_specs: bool = use_specs
        # Keys are the legacy range exactly (index+range specs end to end, no finder that moves keys, no
        # subcommands): get_keys is plain arithmetic.
        self.simple: bool = simple
        # A spec that is not index+range: keys move with the arguments (COMMAND INFO's "movablekeys" flag,
        # as Redis derives it; a key finder alone does not make SET or BITFIELD movable).
        self.movable: bool = movable

    def finish(self) -> CommandKeys:
        real = [s for s in self.specs if "not_key" not in s.flags]
        self.has_keys = self.finder is not None or bool(real)
        self.use_specs = bool(real) and not any("variable_flags" in s.flags for s in self.specs)
        self.movable = any(
            s.begin is not BeginSearch.INDEX or s.find is not FindKeys.RANGE for s in self.specs
        )
        self.simple = self._is_legacy_range()
        return self

    def _is_legacy_range(self) -> bool:
        """Whether the specs' keys are always the legacy range's, for any argv of a valid arity.

        True for one index+range spec (GET, MSET, DEL), and for several laid end to end with step 1 (RENAME,
        SMOVE, BITOP, SINTERSTORE: Redis's legacy range spans them); a key finder must only choose flags.
        """
        if self.subcommands or not self.specs or (self.finder is not None and not self.finder_flags_only):
            return False
        expected = self.specs[0].index
        for n, spec in enumerate(self.specs):
            if (
                spec.begin is not BeginSearch.INDEX
                or spec.find is not FindKeys.RANGE
                or spec.limit
                or spec.index != expected
                or "incomplete" in spec.flags
                or "not_key" in spec.flags
                or (len(self.specs) > 1 and spec.keystep != 1)
            ):
                return False
            if spec.lastkey < 0 and n != len(self.specs) - 1:
                return False
            expected = spec.index + spec.lastkey + 1
        last_spec = self.specs[-1]
        last = last_spec.index + last_spec.lastkey if last_spec.lastkey >= 0 else last_spec.lastkey
        legacy = (self.specs[0].index, last, last_spec.keystep)
        return (self.first_key, self.last_key, self.key_step) == legacy


def lookup(keys: CommandKeys, argv: list[bytes]) -> CommandKeys | None:
    """The entry ``argv`` runs, as Redis's lookupCommand: a container's subcommand when there are two words."""
    if keys.subcommands and len(argv) > 1:
        return keys.subcommands.get(argv[1].lower())
    return keys


def _spec_keys(keys: CommandKeys, argv: list[bytes]) -> list[tuple[int, KeyFlags]] | None:
    """Redis's getKeysUsingKeySpecs: every spec in order; None when a spec is invalid or incomplete here."""
    argc = len(argv)
    out: list[tuple[int, KeyFlags]] = []
    for spec in keys.specs:
        if "not_key" in spec.flags:
            continue
        if spec.begin is BeginSearch.INDEX:
            first = spec.index
        elif spec.begin is BeginSearch.KEYWORD:
            first = 0
            if spec.startfrom > 0:
                positions: Iterable[int] = range(spec.startfrom, argc - 1)
            else:
                # Backwards from argc+startfrom down to 2 (Redis stops before index 1).
                positions = range(argc + spec.startfrom, 1, -1)
            for i in positions:
                if i >= argc or i < 1:
                    break
                if argv[i].lower() == spec.keyword:
                    first = i + 1
                    break
            if not first:
                continue  # keyword absent: this spec has no keys here
        else:
            return None
        if spec.find is FindKeys.RANGE:
            step = spec.keystep
            if spec.lastkey >= 0:
                last = first + spec.lastkey
            elif not spec.limit:
                last = argc + spec.lastkey
            else:
                last = first + ((argc - first) // spec.limit + spec.lastkey)
        elif spec.find is FindKeys.KEYNUM:
            step = spec.keystep
            # Redis compares keynumidx alone with argc; first + keynumidx is what it then reads, so that is
            # checked too (Redis's arity checks keep it in bounds for every 7.0 command).
            if spec.keynumidx >= argc or first + spec.keynumidx >= argc:
                return None
            numkeys = _string2ll(argv[first + spec.keynumidx])
            if numkeys is None or numkeys < 0:
                return None
            first += spec.firstkey
            last = first + _c_int(numkeys) - 1
        else:
            return None
        if last >= argc or last < first or first >= argc:
            return None
        out.extend((i, spec.flags) for i in range(first, last + 1, step))
        if "incomplete" in spec.flags:
            return None
    return out


def _c_int(value: int) -> int:
    """``(int)value`` in C: the low 32 bits, signed (Redis casts its key counts so)."""
    return (value + 2**31) % 2**32 - 2**31


def _string2ll(text: bytes) -> int | None:
    """Redis's string2ll: a plain decimal integer (no spaces, no '+', no leading zeros), else None."""
    if not text or len(text) > 20:
        return None
    if text == b"0":
        return 0
    body = text[1:] if text[:1] == b"-" else text
    if not body or not body.isdigit() or body[:1] == b"0":
        return None
    value = int(text)
    if not -(2**63) <= value < 2**63:
        return None
    return value


def get_keys_and_flags(cmd: Command, argv: list[bytes]) -> list[tuple[int, KeyFlags]]:
    """Positions of the keys in ``argv`` with their flags, as Redis's getKeysFromCommandWithSpecs.

    An empty list means "no keys" (or arguments too malformed to tell: the command itself reports that).
    ``argv`` is the whole command, its name included; arity is the caller's to check.
    """
    keys = lookup(cmd.key_info, argv)
    if keys is None:
        return []
    return keys_and_flags_of(keys, argv)


def keys_and_flags_of(keys: CommandKeys, argv: list[bytes]) -> list[tuple[int, KeyFlags]]:
    """``get_keys_and_flags`` for an entry already looked up (a subcommand's, for a container)."""
    if keys.use_specs:
        found = _spec_keys(keys, argv)
        if found is not None:
            return found
    if keys.finder is not None:
        return keys.finder(argv)
    return []


def checked_keys_and_flags(keys: CommandKeys | None, argv: list[bytes]) -> list[tuple[int, KeyFlags]]:
    """COMMAND GETKEYS's work on ``argv`` (a whole command) run by ``keys``: Redis's checks, in its order.

    Raises CommandError with Redis's message: no such command (``keys`` is None), no key arguments, wrong
    number of arguments, or no keys found where the command must have some.
    """
    if keys is None:
        raise CommandError("ERR Invalid command specified")
    if not keys.has_keys:
        raise CommandError("ERR The command has no key arguments")
    if (keys.arity > 0 and keys.arity != len(argv)) or len(argv) < -keys.arity:
        raise CommandError("ERR Invalid number of arguments specified for command")
    found = keys_and_flags_of(keys, argv)
    if not found and not keys.no_mandatory_keys:
        raise CommandError("ERR Invalid arguments specified for command")
    return found


def get_keys(cmd: Command, argv: list[bytes]) -> list[int]:
    """Positions of the keys in ``argv`` (see ``get_keys_and_flags``); plain arithmetic for most commands."""
    keys = cmd.key_info
    if keys.simple:
        last = keys.last_key
        if last < 0:
            last += len(argv)
        if last >= len(argv) or last < keys.first_key:
            return []
        return list(range(keys.first_key, last + 1, keys.key_step))
    return [pos for pos, _ in get_keys_and_flags(cmd, argv)]


# -- key finders (Redis's getkeys_procs) -----------------------------------------------------------------

KEY_FINDERS: dict[str, KeyFinder] = {}
# Finders that only choose the keys' flags, never their positions (get_keys keeps its fast path).
FLAGS_ONLY_FINDERS: set[str] = set()


def register_key_finder(name: str, finder: KeyFinder, flags_only: bool = False) -> None:
    """Give command ``name`` (full name, lowercase) a key finder; takes effect at the next ``attach_keys``.

    For the commands Redis gives a getkeys_proc: their specs are incomplete or carry variable flags.
    ``flags_only``: the finder's positions are always the specs' (SET: only GET changes the flags).
    """
    KEY_FINDERS[name] = finder
    if flags_only:
        FLAGS_ONLY_FINDERS.add(name)


_ATOI = re.compile(rb"[ \t\n\r\v\f]*([+-]?[0-9]+)")


def _atoi(text: bytes) -> int:
    """C's atoi as glibc has it: (int) strtol: blanks, a sign, digits up to the first other byte; else 0."""
    match = _ATOI.match(text)
    if match is None:
        return 0
    return _c_int(max(-(2**63), min(2**63 - 1, int(match.group(1)))))


def numkeys_finder(store: int, count: int, first: int) -> KeyFinder:
    """Redis's genericGetKeys: ``argv[count]`` keys from ``first``, then the destination at ``store`` if any."""

    def find(argv: list[bytes]) -> list[tuple[int, KeyFlags]]:
        if count >= len(argv):
            return []
        num = _atoi(argv[count])
        if num < 1 or num > len(argv) - first:
            return []
        found = [(first + i, NO_FLAGS) for i in range(num)]
        if store:
            found.append((store, NO_FLAGS))
        return found

    return find


def _sort_ro_keys(argv: list[bytes]) -> list[tuple[int, KeyFlags]]:
    return [(1, RO_ACCESS)]


# SORT's options that take one argument (LIMIT takes two; Redis's sortGetKeys skiplist).
_SORT_SKIP = {b"get": 1, b"by": 1}


def _sort_keys(argv: list[bytes]) -> list[tuple[int, KeyFlags]]:
    """The sorted key, and the last STORE destination; BY/GET patterns name no key of their own."""
    store = 0
    i = 2
    while i < len(argv):
        word = argv[i].lower()
        if word == b"limit":
            i += 2
        elif word == b"store" and i + 1 < len(argv):
            store = i + 1  # not skipped: Redis scans the destination as a possible option name too
        elif word in _SORT_SKIP:
            i += _SORT_SKIP[word]
        i += 1
    return [(1, RO_ACCESS), (store, OW_UPDATE)] if store else [(1, RO_ACCESS)]


# MIGRATE's options before KEYS and how many arguments each takes (Redis's migrateGetKeys).
_MIGRATE_SKIP = {b"copy": 0, b"replace": 0, b"auth": 1, b"auth2": 2}


def _migrate_keys(argv: list[bytes]) -> list[tuple[int, KeyFlags]]:
    """MIGRATE host port key db timeout: the key; with an empty key and KEYS k ...: every key after KEYS."""
    first, num = 3, 1
    i = 6
    while i < len(argv):
        word = argv[i].lower()
        if word == b"keys":
            if argv[3]:
                num = 0  # a syntax error MIGRATE itself reports
            else:
                first, num = i + 1, len(argv) - i - 1
            break
        i += _MIGRATE_SKIP.get(word, 0) + 1
    return [(first + j, RW_ACCESS_DELETE) for j in range(num)]


def _georadius_keys(argv: list[bytes]) -> list[tuple[int, KeyFlags]]:
    """The key, and the last STORE / STOREDIST destination."""
    stored = -1
    i = 5
    while i < len(argv):
        if argv[i].lower() in (b"store", b"storedist") and i + 1 < len(argv):
            stored = i + 1
            i += 1
        i += 1
    return [(1, NO_FLAGS), (stored, NO_FLAGS)] if stored != -1 else [(1, NO_FLAGS)]


def _xread_keys(argv: list[bytes]) -> list[tuple[int, KeyFlags]]:
    """XREAD / XREADGROUP: the first half of the arguments after STREAMS (the other half are IDs)."""
    streams = -1
    i = 1
    while i < len(argv):
        word = argv[i].lower()
        if word in (b"block", b"count"):
            i += 1
        elif word == b"group":
            i += 2
        elif word == b"streams":
            streams = i
            break
        elif word != b"noack":
            break
        i += 1
    num = len(argv) - streams - 1
    if streams == -1 or num == 0 or num % 2:
        return []
    return [(streams + 1 + j, NO_FLAGS) for j in range(num // 2)]


def _set_keys(argv: list[bytes]) -> list[tuple[int, KeyFlags]]:
    """SET reads the old value only with GET."""
    if any(arg.lower() == b"get" for arg in argv[3:]):
        return [(1, RW_ACCESS_UPDATE)]
    return [(1, OW_UPDATE)]


def _bitfield_keys(argv: list[bytes]) -> list[tuple[int, KeyFlags]]:
    """BITFIELD is read-only when it only GETs (a malformed call counts as a write, as in Redis)."""
    readonly = True
    i = 2
    while i < len(argv):
        remaining = len(argv) - i - 1
        word = argv[i].lower()
        if word == b"get" and remaining >= 2:
            i += 2
        elif word in (b"set", b"incrby") and remaining >= 3:
            readonly = False
            break
        elif word == b"overflow" and remaining >= 1:
            i += 1
        else:
            readonly = False
            break
        i += 1
    return [(1, RO_ACCESS if readonly else RW_ACCESS_UPDATE)]


for _name in ("zunion", "zinter", "zdiff", "zintercard", "sintercard", "lmpop", "zmpop"):
    register_key_finder(_name, numkeys_finder(0, 1, 2))
for _name in ("zunionstore", "zinterstore", "zdiffstore"):
    register_key_finder(_name, numkeys_finder(1, 2, 3))
# EVAL and FCALL (and their _RO / SHA forms) have this one too: the scripting family gets it from here.
for _name in ("blmpop", "bzmpop", "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"):
    register_key_finder(_name, numkeys_finder(0, 2, 3))
register_key_finder("sort", _sort_keys)
register_key_finder("sort_ro", _sort_ro_keys)
register_key_finder("migrate", _migrate_keys)
register_key_finder("georadius", _georadius_keys)
register_key_finder("georadiusbymember", _georadius_keys)
register_key_finder("xread", _xread_keys)
register_key_finder("xreadgroup", _xread_keys)
register_key_finder("set", _set_keys, flags_only=True)
register_key_finder("bitfield", _bitfield_keys, flags_only=True)


# -- building ----------------------------------------------------------------------------------------------


def keys_from_info(entry: list[Any], implemented: Iterable[str] | None = None) -> CommandKeys:
    """A ``CommandKeys`` from a COMMAND INFO entry of keyspecs.py; ``implemented`` limits its subcommands."""
    name = entry[0].decode()
    subs: dict[bytes, CommandKeys] = {}
    wanted = None if implemented is None else set(implemented)
    for sub in entry[9]:
        sub_name = sub[0].decode().split("|", 1)[1]
        if wanted is None or sub_name in wanted:
            subs[sub_name.encode()] = keys_from_info(sub)
    return CommandKeys(
        name=name,
        arity=entry[1],
        first_key=entry[3],
        last_key=entry[4],
        key_step=entry[5],
        specs=tuple(KeySpec.from_reply(spec) for spec in entry[8]),
        finder=KEY_FINDERS.get(name),
        finder_flags_only=name in FLAGS_ONLY_FINDERS,
        no_mandatory_keys="no_mandatory_keys" in entry[2],
        subcommands=subs,
    ).finish()


def legacy_keys(cmd: Command) -> CommandKeys:
    """For a command Redis 7.0 does not have: its declared first/last/step as one read-write range spec."""
    specs: tuple[KeySpec, ...] = ()
    if cmd.first_key:
        last = cmd.last_key - cmd.first_key if cmd.last_key >= 0 else cmd.last_key
        specs = (
            KeySpec(
                ("RW",), BeginSearch.INDEX, FindKeys.RANGE, cmd.first_key, lastkey=last, keystep=cmd.key_step
            ),
        )
    return CommandKeys(
        name=cmd.name,
        arity=cmd.arity,
        first_key=cmd.first_key,
        last_key=cmd.last_key,
        key_step=cmd.key_step,
        specs=specs,
        finder=KEY_FINDERS.get(cmd.name),
    ).finish()


def attach_keys(table: dict[bytes, Command]) -> None:
    """Give every command its ``CommandKeys``, by name, from Redis 7.0's data (idempotent).

    Redis's legacy first/last/step replace the decorator's: they are derived from the same key specs, and
    COMMAND INFO must show Redis's (a container such as OBJECT has 0 0 0; its subcommands carry the keys).
    """
    for cmd in table.values():
        entry = INFO.get(cmd.name)
        if entry is None:
            cmd.key_info = legacy_keys(cmd)
            continue
        cmd.key_info = keys_from_info(entry, cmd.subcommands)
        cmd.first_key, cmd.last_key, cmd.key_step = entry[3], entry[4], entry[5]
