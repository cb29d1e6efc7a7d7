"""The `redactor` command.

redactor server [redis.conf] [--directive value ...]   one node in the foreground
redactor sentinel sentinel.conf [--directive value ...] a sentinel (also: redactor server sentinel.conf --sentinel)
redactor cli [-h host] [-p port] [-a pass] [-n db] [--raw] [command ...]
redactor up TOPOLOGY | down | status | logs NODE        whole topologies (launcher/topology/)
redactor keygen PATH                                   a bus CURVE keypair: PATH.key_secret, PATH.key
"""

from __future__ import annotations

import gc
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.config import Config
    from actors.persistence.rdb.helper import LoadHelper


def _hide_rich_from_structlog() -> None:
    """Import structlog without rich when stderr is not a terminal: a node starts ~25 ms sooner.

    structlog imports rich (when installed) at import time only to pretty-print tracebacks in its console
    renderer; a node not on a terminal logs JSON lines (launcher/logs.py) and never uses it. rich stays
    importable afterwards: only structlog's optional import is turned down.
    """
    if "structlog" in sys.modules or sys.stderr.isatty():
        return
    hidden = [name for name in ("rich", "better_exceptions") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # None: "import fails", as if not installed
    try:
        import structlog  # noqa: F401
    finally:
        for name in hidden:
            del sys.modules[name]


def _start_load_helper(config: Config) -> LoadHelper | None:
    """Start the process that helps load dump.rdb (actors/persistence/rdb/helper.py) now, before the node imports most of
    its code: its own start-up and first runs then overlap the node's (~0.1 s of imports and actor starts)."""
    if config["appendonly"]:
        return None
    path = os.path.join(config["dir"], config["dbfilename"])
    if not os.path.isfile(path):
        return None
    from actors.persistence.rdb.helper import LoadHelper

    # Every key, expired or not: the start-up load drops a master's expired keys after the parse, by name
    # (actors/persistence/loading.py), so that replication can send their DELs.
    return LoadHelper.spawn(path, None)


def _server(args: list[str]) -> int:
    if "--sentinel" in args:
        from launcher.sentinel import main as sentinel_main

        return sentinel_main(args)
    # No cyclic garbage collection while the node imports its code and builds itself: the imports allocate
    # hundreds of thousands of long-lived objects, and collecting them over and over cost ~10% of start-up.
    # launcher/node.py freezes what start-up made and turns collection back on before the node serves.
    gc.disable()
    _hide_rich_from_structlog()
    from launcher.config import ConfigFileError, load_config

    config_file = ""
    if args and not args[0].startswith("--"):
        config_file, args = args[0], args[1:]
    if args[:1] in (["--help"], ["-h"]):
        print(__doc__)
        return 0
    if args[:1] in (["--version"], ["-v"]):
        from actors.server.server import VERSION

        print(f"redactor {VERSION}")
        return 0
    try:
        config = load_config(config_file or None, args)
    except ConfigFileError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    helper = _start_load_helper(config)
    try:
        from launcher.node import Node

        return Node(config, config_file, helper).run()
    finally:
        if helper is not None and not helper.taken:
            helper.close()  # the node never got to its load (it failed to start)


def _keygen(args: list[str]) -> int:
    """Write a CURVE keypair for the bus (protocol/curve.py) and print the public key for trusted-keys files."""
    if len(args) != 1 or args[0].startswith("-"):
        print(
            "usage: redactor keygen PATH   (writes PATH.key_secret, mode 0600, and PATH.key)", file=sys.stderr
        )
        return 2
    from protocol.curve import write_keypair

    path = args[0]
    if os.path.exists(path + ".key_secret"):
        print(f"redactor keygen: {path}.key_secret exists; not overwriting a secret key", file=sys.stderr)
        return 1
    keys = write_keypair(path)
    print(f"secret key file (bus-curve-secret-key-file): {path}.key_secret")
    print(f"public key file: {path}.key")
    print("public key (a line for bus-curve-trusted-keys-file):")
    print(keys.public.decode())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "server":
        return _server(rest)
    if command == "sentinel":
        from launcher.sentinel import main as sentinel_main

        return sentinel_main(rest)
    if command == "cli":
        from launcher.shell import main as shell_main

        return shell_main(rest)
    if command == "keygen":
        return _keygen(rest)
    if command in ("up", "down", "status", "logs"):
        from launcher.topology.cli import main as topology_main

        return topology_main(command, rest)
    print(f"redactor: unknown command '{command}'\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
