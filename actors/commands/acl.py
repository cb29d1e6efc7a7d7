"""ACL: SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, GENPASS, LOG, SAVE, LOAD, DRYRUN, HELP.

The users, the rule language and the checks live in actors/server/acl.py and acl_rules.py; this module parses
the subcommands and shapes the replies as Redis 7.0 does. ``acl_reply`` is the command without the node: the
sentinel's listener (actors/sentinel/acl.py) runs it on its own users and command table.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actors.commands import Command, command
from actors.commands._util import parse_int
from actors.server.acl import Acl, full_name
from actors.server.acl_rules import CATEGORIES, AclRuleError
from protocol import errors
from protocol.errors import CommandError, echoed
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.acl import Client as AclClient
    from actors.server.client import Client

# Variadic by arity, but Redis 7.0's ACL handler takes one optional argument at most for these.
_AT_MOST_ONE_ARGUMENT = frozenset((b"cat", b"genpass", b"log"))

# Redis 7.0's arity of each ACL subcommand (-n: at least n arguments, the command's name included).
ACL_SUBCOMMANDS: dict[bytes, int] = {
    b"cat": -2,
    b"deluser": -3,
    b"dryrun": -4,
    b"genpass": -2,
    b"getuser": 3,
    b"help": 2,
    b"list": 2,
    b"load": 2,
    b"log": -2,
    b"save": 2,
    b"setuser": -3,
    b"users": 2,
    b"whoami": 2,
}
GENPASS_MAX_BITS = 4096
_GENPASS_RANGE = "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"

_HELP = [
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
]


@command(
    "acl",
    -2,
    "admin noscript loading stale",
    (0, 0, 0),
    "server",
    "A container for Access List Control commands",
    subcommands=tuple(sub.decode() for sub in ACL_SUBCOMMANDS),
)
def cmd_acl(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    return acl_reply(server.acl, client, argv, server.commands.get)


def acl_reply(
    acl: Acl, client: AclClient, argv: list[bytes], lookup: Callable[[bytes], Command | None]
) -> Any:
    """ACL ``argv`` run by ``client`` on ``acl``'s users; ``lookup`` finds a command by lowercase name (DRYRUN)."""
    sub = argv[1].lower()
    arity = ACL_SUBCOMMANDS.get(sub)
    if arity is None:
        raise errors.unknown_subcommand(errors.echoed(argv[1]), "acl")
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        raise errors.wrong_arity(f"acl|{sub.decode()}")
    if sub in _AT_MOST_ONE_ARGUMENT and len(argv) > 3:  # Redis's aclCommand falls through to its syntax error
        raise CommandError(
            f"ERR unknown subcommand or wrong number of arguments for '{echoed(argv[1])}'. Try ACL HELP."
        )
    try:
        if sub == b"setuser":
            acl.setuser(argv[2], argv[3:])
            return OK
        if sub == b"deluser":
            return acl.deluser(argv[2:])
    except AclRuleError as exc:
        raise CommandError(str(exc)) from None
    if sub == b"getuser":
        user = acl.users.get(argv[2].decode("utf-8", "surrogateescape"))
        return None if user is None else user.getuser_reply()
    if sub == b"list":
        return [
            f"user {u.name} {u.describe()}".encode("utf-8", "surrogateescape") for u in acl.sorted_users()
        ]
    if sub == b"users":
        return [u.name.encode("utf-8", "surrogateescape") for u in acl.sorted_users()]
    if sub == b"whoami":
        return client.user.name.encode("utf-8", "surrogateescape")
    if sub == b"cat":
        return _cat(acl, argv)
    if sub == b"genpass":
        return _genpass(argv)
    if sub == b"log":
        return _log(acl, argv)
    if sub in (b"load", b"save"):
        if not acl.aclfile:
            raise CommandError(
                "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via "
                "the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration "
                "file set) in order to store users in the Redis configuration."
            )
        error = acl.load_file() if sub == b"load" else acl.save_file()
        if error is not None:
            raise CommandError(error if error.startswith("ERR ") else "ERR " + error)
        return OK
    if sub == b"dryrun":
        return _dryrun(acl, argv, lookup)
    return [line.encode() for line in _HELP]


def _cat(acl: Acl, argv: list[bytes]) -> list[bytes]:
    if len(argv) == 2:
        return [c.encode() for c in CATEGORIES]
    if len(argv) > 3:
        raise errors.wrong_arity("acl|cat")
    category = argv[2].decode("utf-8", "replace").lower()
    if category not in CATEGORIES:
        raise CommandError(f"ERR Unknown category '{echoed(argv[2])}'")
    return [name.encode() for name in acl.catalog.in_category(category)]


def _genpass(argv: list[bytes]) -> bytes:
    bits = 256
    if len(argv) > 3:
        raise errors.wrong_arity("acl|genpass")
    if len(argv) == 3:
        bits = parse_int(argv[2])
        if bits <= 0 or bits > GENPASS_MAX_BITS:
            raise CommandError(_GENPASS_RANGE)
    chars = (bits + 3) // 4
    return os.urandom((chars + 1) // 2).hex()[:chars].encode()


def _log(acl: Acl, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise errors.wrong_arity("acl|log")
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            acl.log.clear()
            return OK
        return acl.log_reply(parse_int(argv[2]))
    return acl.log_reply(None)


def _dryrun(acl: Acl, argv: list[bytes], lookup: Callable[[bytes], Command | None]) -> Any:
    name = argv[2].decode("utf-8", "surrogateescape")
    if name not in acl.users:
        raise CommandError(f"ERR User '{name}' not found")
    cmd_argv = argv[3:]
    cmd = lookup(cmd_argv[0].lower())
    if cmd is None:
        raise CommandError(f"ERR Command '{echoed(cmd_argv[0])}' not found")
    if (cmd.arity > 0 and len(cmd_argv) != cmd.arity) or len(cmd_argv) < -cmd.arity:
        raise errors.wrong_arity(cmd.name)
    denial = acl.dryrun(argv[2], cmd, full_name(cmd, cmd_argv), cmd_argv)
    return OK if denial is None else denial.encode("utf-8", "surrogateescape")
