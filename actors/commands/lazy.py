"""Command modules imported on their first call: the command table lists their commands from catalog.py.

Why: a node imports its code before it can answer anything, and the command modules few clients use (GEO,
SORT, HyperLogLog, bitmaps, streams, LCS, LOLWUT, LATENCY, SLOWLOG, MODULE, CLUSTER, ACL, scripts and
functions) were ~10% of an empty node's start-up. ``load_all`` registers each of their commands from the
catalog (the same name, arity, flags, key positions, group, summary and subcommands their ``@command`` gives,
so COMMAND, COMMAND DOCS, ACL categories and key extraction see the full table at once) with a
``LazyCommandFn`` for function. The first call of any of them imports its module: the module's ``@command``
then hands the real function to the registered spec (actors/commands/__init__.py ``command``), the stub
remembers it, and the calling server's table entries of that module point straight at it. Later calls made
through a record that still holds the stub (the general lane's table, another server in the same process)
cost one forwarding call.

Which modules: those no module imported at start-up imports, whose import has no effect beyond ``@command``
(no DEBUG handler, no hook registration; tests/unit/test_command_catalog.py checks both, and that catalog.py
matches the modules). ops/gen-command-catalog rewrites catalog.py after a change to one of their commands.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.server.client import Client

# The modules (under actors/commands) whose commands come from the catalog until first called.
LAZY_MODULES = (
    "acl",
    "bitmaps",
    "cluster",
    "functions",
    "geo",
    "geo_areas",  # no command: the cells GEO searches scan (geo.py imports it)
    "hll_selftest",
    "hyperloglog",
    "latency",
    "lcs",
    "lolwut",
    "modules",
    "scripting",
    "slowlog",
    "sort",
    "streams",
    "streams_groups",
    "streams_info",
    "streams_read",
)


class LazyCommandFn:
    """The function of a catalogued command until its module is imported (see the module docstring)."""

    __slots__ = ("module", "name", "fn")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name
        self.fn: Any = None  # the real function, once the module is imported

    def load(self) -> Any:
        """Import the module (once); returns the real function its ``@command`` registered."""
        if self.fn is None:
            importlib.import_module(f"actors.commands.{self.module}")
            if self.fn is None:  # the module no longer registers this name: catalog.py is stale
                raise RuntimeError(f"actors.commands.{self.module} did not register '{self.name}'")
        return self.fn

    def __call__(self, client: Client, argv: list[bytes]) -> Any:
        fn = self.fn
        if fn is None:
            fn = self.load()
            # This server's entries of the module now call the functions themselves.
            for cmd in client.server.orig_commands.values():
                stub = cmd.fn
                if isinstance(stub, LazyCommandFn) and stub.fn is not None:
                    cmd.fn = stub.fn
        return fn(client, argv)

    def __repr__(self) -> str:
        return f"<lazy {self.module}.{self.name}>"
