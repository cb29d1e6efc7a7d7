"""The COMMAND family: COMMAND, COUNT, INFO, DOCS, LIST, GETKEYS, GETKEYSANDFLAGS, HELP, as Redis 7.0 answers.

It owns how the command table describes itself. The reference data (ACL categories, tips, key specs,
subcommand entries, docs) is Redis 7.0's, generated into keyspecs.py by ops/gen-keyspecs; what describes
what *we* do (arity, the flags the dispatcher acts on, which subcommands exist) comes from our own table.
Where the two differ, the reply says what we do:

- flags: ours, under Redis's names and in Redis's order; ``random`` is not shown (Redis 7.0 dropped it for
  the ``nondeterministic_output`` tip, which the data carries). Flags we have no behaviour for yet
  (noscript: no scripting; skip_monitor, skip_slowlog, asking, allow_busy, no_async_loading,
  no_mandatory_keys) are Redis's; ``movablekeys`` is derived from the key specs, as Redis derives it. MONITOR shows ``no_multi``: we refuse it inside MULTI,
  Redis queues it.
- a container (CLIENT, CONFIG, OBJECT, MEMORY, PUBSUB, SLOWLOG, COMMAND) is shown as Redis shows it, with no
  flags of its own (our dispatcher applies the container's flags; its subcommands' entries are Redis's),
  listing only the subcommands we implement, sorted by name (Redis's order follows its random hash seed). CLIENT SETINFO and NO-TOUCH (Redis 7.2) and
  DEBUG's subcommands have no Redis 7.0 entry and are not listed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import Command, command
from actors.commands.getkeys import checked_keys_and_flags, lookup
from actors.commands.keyspecs import DOCS, INFO
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import ReplySet

if TYPE_CHECKING:
    from actors.server.client import Client

# Redis 7.0's command flags in the order COMMAND INFO lists them (addReplyCommandFlags).
FLAG_ORDER = (
    "write",
    "readonly",
    "denyoom",
    "module",
    "admin",
    "pubsub",
    "noscript",
    "blocking",
    "loading",
    "stale",
    "skip_monitor",
    "skip_slowlog",
    "asking",
    "fast",
    "no_auth",
    "may_replicate",
    "sentinel",
    "only_sentinel",
    "no_mandatory_keys",
    "protected",
    "no_async_loading",
    "no_multi",
    "movablekeys",
    "allow_busy",
)
# Our flag names that Redis spells differently; the others that are not Redis flags are dropped.
_OUR_FLAG_NAMES = {"no-auth": "no_auth", "deny-multi": "no_multi"}
_OURS_ONLY = frozenset({"pubsub-ok", "no-multi", "random", "movablekeys"})
# Flags with no behaviour in redactor yet: shown as Redis has them.
_REDIS_ONLY = frozenset(
    {
        "noscript",
        "skip_monitor",
        "skip_slowlog",
        "asking",
        "may_replicate",
        "no_mandatory_keys",
        "no_async_loading",
        "allow_busy",
    }
)

# Status strings, as Redis's addReplyHelp sends them.
HELP_LINES = [
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
]


def to_reply(value: Any) -> Any:
    """keyspecs.py's literals as replies: tuples (RESP3 sets there) become ReplySets, recursively."""
    kind = type(value)
    if kind is tuple:
        return ReplySet(to_reply(v) for v in value)
    if kind is list:
        return [to_reply(v) for v in value]
    if kind is dict:
        return {k: to_reply(v) for k, v in value.items()}
    return value


def reply_flags(cmd: Command, redis_flags: tuple[str, ...]) -> ReplySet:
    """Our flags under Redis's names and order, with Redis's for what we have no behaviour of our own."""
    ours = {_OUR_FLAG_NAMES.get(f, f) for f in cmd.flags if f not in _OURS_ONLY}
    ours.update(f for f in redis_flags if f in _REDIS_ONLY)
    if cmd.key_info.movable:  # from our key specs, as Redis derives it from its own
        ours.add("movablekeys")
    return ReplySet(f for f in FLAG_ORDER if f in ours)


def _sub_name(entry: list[Any]) -> str:
    return str(entry[0].decode().split("|", 1)[1])


def info_entry(cmd: Command) -> list[Any]:
    """COMMAND INFO's 10-element entry for one of our commands."""
    entry = INFO.get(cmd.name)
    if entry is None:  # not a Redis 7.0 command: what we declare
        return [
            cmd.name.encode(),
            cmd.arity,
            reply_flags(cmd, ()),
            cmd.first_key,
            cmd.last_key,
            cmd.key_step,
            ReplySet(),
            ReplySet(),
            ReplySet(),
            ReplySet(),
        ]
    if entry[9]:
        wanted = set(cmd.subcommands)
        subs = [to_reply(sub) for sub in entry[9] if _sub_name(sub) in wanted]
        flags = to_reply(entry[2])
    else:
        subs = to_reply(entry[9])
        flags = reply_flags(cmd, entry[2])
    return [
        cmd.name.encode(),
        cmd.arity,
        flags,
        cmd.first_key,
        cmd.last_key,
        cmd.key_step,
        to_reply(entry[6]),
        to_reply(entry[7]),
        to_reply(entry[8]),
        subs,
    ]


def docs_entry(cmd: Command) -> dict[bytes, Any]:
    """COMMAND DOCS's map for one of our commands: Redis's, with only the subcommands we implement."""
    doc = DOCS.get(cmd.name)
    if doc is None:
        return {b"summary": cmd.summary.encode(), b"since": b"1.0.0", b"group": cmd.group.encode()}
    reply: dict[bytes, Any] = to_reply(doc)
    subs = reply.get(b"subcommands")
    if subs is not None:
        wanted = {f"{cmd.name}|{s}".encode() for s in cmd.subcommands}
        reply[b"subcommands"] = {name: sub for name, sub in subs.items() if name in wanted}
    return reply


def _find(table: dict[bytes, Command], name: bytes) -> tuple[Command, list[Any] | None] | None:
    """A command or ``container|sub`` by name (Redis's lookupCommandBySds): the command and the sub entry."""
    base, _, sub = name.lower().partition(b"|")
    cmd = table.get(base)
    if cmd is None:
        return None
    if not sub:
        return cmd, None
    entry = INFO.get(cmd.name)
    if entry is None or sub.decode("utf-8", "replace") not in cmd.subcommands:
        return None
    for sub_entry in entry[9]:
        if _sub_name(sub_entry).encode() == sub:
            return cmd, sub_entry
    return None


def _find_info(table: dict[bytes, Command], name: bytes) -> Any:
    found = _find(table, name)
    if found is None:
        return None
    cmd, sub_entry = found
    return info_entry(cmd) if sub_entry is None else to_reply(sub_entry)


def _find_docs(table: dict[bytes, Command], name: bytes) -> tuple[bytes, Any] | None:
    found = _find(table, name)
    if found is None:
        return None
    cmd, sub_entry = found
    if sub_entry is None:
        return cmd.name.encode(), docs_entry(cmd)
    full = sub_entry[0]
    return full, to_reply(DOCS[cmd.name][b"subcommands"][full])


def _command_list(table: dict[bytes, Command], argv: list[bytes]) -> list[bytes]:
    """COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: commands and subcommands."""
    kind = arg = None
    i = 2
    while i < len(argv):
        if argv[i].lower() == b"filterby" and len(argv) - 1 - i == 2:
            kind = argv[i + 1].lower()
            if kind not in (b"module", b"aclcat", b"pattern"):
                raise CommandError(errors.SYNTAX)
            arg = argv[i + 2]
            i += 3
        else:
            raise CommandError(errors.SYNTAX)
    out: list[bytes] = []
    for cmd in table.values():
        entry = INFO.get(cmd.name)
        named = [(cmd.name.encode(), entry)]
        if entry is not None:
            named += [(sub[0], sub) for sub in entry[9] if _sub_name(sub) in cmd.subcommands]
        for name, data in named:
            if kind == b"module":
                continue  # no modules
            if kind == b"aclcat" and arg is not None:
                category = "@" + arg.decode("utf-8", "replace").lower()
                if data is None or category not in data[6]:
                    continue
            if kind == b"pattern" and arg is not None and not _glob_nocase(arg, name):
                continue
            out.append(name)
    return out


def _glob_nocase(pattern: bytes, name: bytes) -> bool:
    from actors.commands._util import glob_match

    return glob_match(pattern.lower(), name.lower())


def _getkeys(table: dict[bytes, Command], argv: list[bytes], with_flags: bool) -> Any:
    """COMMAND GETKEYS / GETKEYSANDFLAGS <full command>."""
    target = argv[2:]
    cmd = table.get(target[0].lower())
    found = checked_keys_and_flags(None if cmd is None else lookup(cmd.key_info, target), target)
    if with_flags:
        return [[target[pos], ReplySet(flags)] for pos, flags in found]
    return [target[pos] for pos, _ in found]


_SUBCOMMANDS = ("docs", "info", "getkeys", "getkeysandflags", "help", "list", "count")


@command(
    "command",
    -1,
    "loading stale",
    (0, 0, 0),
    "server",
    "Get array of Redis command details",
    subcommands=_SUBCOMMANDS,
)
def cmd_command(client: Client, argv: list[bytes]) -> Any:
    table = client.server.commands  # this server's own table (a sentinel's lists its own commands)
    if len(argv) == 1:
        return [info_entry(c) for c in table.values()]
    sub = argv[1].lower()
    sub_keys = client.server.orig_commands[b"command"].key_info.subcommands.get(sub)
    if sub_keys is None:
        raise errors.unknown_subcommand(errors.echoed(argv[1]), "command")
    if (sub_keys.arity > 0 and len(argv) != sub_keys.arity) or len(argv) < -sub_keys.arity:
        raise errors.wrong_arity(sub_keys.name)
    if sub == b"count":
        return len(table)
    if sub == b"info":
        if len(argv) == 2:
            return [info_entry(c) for c in table.values()]
        return [_find_info(table, name) for name in argv[2:]]
    if sub == b"docs":
        if len(argv) == 2:
            return {c.name.encode(): docs_entry(c) for c in table.values()}
        docs: dict[bytes, Any] = {}
        for name in argv[2:]:
            found = _find_docs(table, name)
            if found is not None:
                docs[found[0]] = found[1]
        return docs
    if sub == b"list":
        return _command_list(table, argv)
    if sub == b"getkeys":
        return _getkeys(table, argv, with_flags=False)
    if sub == b"getkeysandflags":
        return _getkeys(table, argv, with_flags=True)
    return HELP_LINES
