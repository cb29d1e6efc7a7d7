"""MODULE: LIST, HELP, and LOAD / LOADEX / UNLOAD refused, because redactor runs no Redis modules (they are C
shared objects written against Redis's module API). Replies and errors are Redis 7.0's for a server with no
module loaded: LIST is empty; LOAD, LOADEX and UNLOAD are refused unless ``enable-module-command`` allows
them (as Redis), and then LOAD fails as a library that does not load does and UNLOAD finds no such module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from actors.commands import command
from actors.commands.debug import protected_action_allowed
from protocol import errors
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.client import Client

log = structlog.get_logger("redactor.modules")

HELP = [
    b"MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"LIST",
    b"    Return a list of loaded modules.",
    b"LOAD <path> [<arg> ...]",
    b"    Load a module library from <path>, passing to it any optional arguments.",
    b"LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    b"    Load a module library from <path>, while passing it module configurations and optional arguments.",
    b"UNLOAD <name>",
    b"    Unload a module.",
    b"HELP",
    b"    Prints this help.",
]
# Redis 7.0's arity of each subcommand (commands/module-*.json).
ARITY = {b"list": 2, b"load": -3, b"loadex": -3, b"unload": 3, b"help": 2}
LOAD_FAILED = "ERR Error loading the extension. Please check the server logs."
NO_SUCH_MODULE = "ERR Error unloading module: no such module with that name"
MODULE_REFUSED = (
    'ERR MODULE command not allowed. If the enable-module-command option is set to "local", you can run it '
    "from a local connection, otherwise you need to set this option in the configuration file, and then "
    "restart the server."
)


@command(
    "module",
    -2,
    "admin noscript",
    (0, 0, 0),
    "server",
    "A container for module commands",
    subcommands=tuple(name.decode() for name in ARITY),
)
def cmd_module(client: Client, argv: list[bytes]) -> Any:
    sub = argv[1].lower()
    arity = ARITY.get(sub)
    if arity is None:
        raise errors.unknown_subcommand(errors.echoed(argv[1]), "module")
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        raise errors.wrong_arity(f"module|{sub.decode()}")
    if sub == b"help":
        return HELP
    if sub == b"list":
        return []
    if not protected_action_allowed(client, "enable-module-command"):
        raise CommandError(MODULE_REFUSED)
    if sub == b"unload":
        raise CommandError(NO_SUCH_MODULE)
    log.warning(
        "module_load_refused", path=argv[2].decode("utf-8", "replace"), reason="modules not supported"
    )
    raise CommandError(LOAD_FAILED)
