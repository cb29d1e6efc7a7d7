"""The sentinel's ACL users: Redis 7.0 Sentinel's ``user`` lines, ``requirepass``, AUTH, the ACL command and the
permission check, on the node's own ACL engine (actors/server/acl.py, acl_rules.py, actors/commands/acl.py).

What it owns: redis-sentinel's command table as ACL rules see it (``COMMANDS``: each command and subcommand with
its categories and arity, from redis-sentinel 7.0.15's COMMAND INFO, so ``+@all``, ``-@dangerous``,
``+sentinel|myid`` and ACL CAT mean what they mean there), and ``SentinelAcl``: the node's ``Acl`` over that
table, its host adapter (the settings a node Config holds: requirepass, user lines, acllog-max-len,
acl-pubsub-default; the listener's clients), and the ``user`` lines a config rewrite writes, kept as a snapshot
the monitor's thread reads while the listener's thread changes the users. Also CLIENT KILL's filters
(``kill_filter``: USER among them).

Lives in the ``SentinelSystem`` (it survives a listener restart, as Redis's users survive a client's); used on
the listener's loop thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from actors.commands import Command
from actors.commands.acl import acl_reply
from actors.config import Config
from actors.server.acl import Acl, full_name
from actors.server.acl_rules import Catalog
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.acl import Client

_ADS = "admin slow dangerous"
_CONN = "slow connection"
_ADS_CONN = "admin slow dangerous connection"
# redis-sentinel 7.0.15's commands: name -> (arity, categories, no_auth, {subcommand: (arity, categories)}).
_TABLE: dict[str, tuple[int, str, bool, dict[str, tuple[int, str]]]] = {
    "acl": (-2, "slow", False, {
        "cat": (-2, "slow"), "deluser": (-3, _ADS), "dryrun": (-4, _ADS), "genpass": (-2, "slow"),
        "getuser": (3, _ADS), "help": (2, "slow"), "list": (2, _ADS), "load": (2, _ADS), "log": (-2, _ADS),
        "save": (2, _ADS), "setuser": (-3, _ADS), "users": (2, _ADS), "whoami": (2, "slow"),
    }),
    "auth": (-2, "fast connection", True, {}),
    "client": (-2, "slow", False, {
        "caching": (3, _CONN), "getname": (2, _CONN), "getredir": (2, _CONN), "help": (2, _CONN),
        "id": (2, _CONN), "info": (2, _CONN), "kill": (-3, _ADS_CONN), "list": (-2, _ADS_CONN),
        "no-evict": (3, _ADS_CONN), "pause": (-3, _ADS_CONN), "reply": (3, _CONN), "setname": (3, _CONN),
        "tracking": (-3, _CONN), "trackinginfo": (2, _CONN), "unblock": (-3, _ADS_CONN),
        "unpause": (2, _ADS_CONN),
    }),
    "command": (-1, _CONN, False, {
        "count": (2, _CONN), "docs": (-2, _CONN), "getkeys": (-4, _CONN), "getkeysandflags": (-4, _CONN),
        "help": (2, _CONN), "info": (-2, _CONN), "list": (-2, _CONN),
    }),
    "hello": (-1, "fast connection", True, {}),
    "info": (-1, "slow dangerous", False, {}),
    "ping": (-1, "fast connection", False, {}),
    "psubscribe": (-2, "pubsub slow", False, {}),
    "publish": (3, "pubsub fast", False, {}),
    "punsubscribe": (-1, "pubsub slow", False, {}),
    "role": (1, "admin fast dangerous", False, {}),
    "sentinel": (-2, _ADS, False, {
        "ckquorum": (3, _ADS), "config": (-3, _ADS), "debug": (-2, _ADS), "failover": (3, _ADS),
        "flushconfig": (2, _ADS), "get-master-addr-by-name": (3, _ADS), "help": (2, "slow"),
        "info-cache": (-3, _ADS), "is-master-down-by-addr": (6, _ADS), "master": (3, _ADS),
        "masters": (2, _ADS), "monitor": (6, _ADS), "myid": (2, _ADS), "pending-scripts": (2, _ADS),
        "remove": (3, _ADS), "replicas": (3, _ADS), "reset": (3, _ADS), "sentinels": (3, _ADS),
        "set": (-5, _ADS), "simulate-failure": (-3, _ADS), "slaves": (3, _ADS),
    }),
    "shutdown": (-1, _ADS, False, {}),
    "subscribe": (-2, "pubsub slow", False, {}),
    "unsubscribe": (-1, "pubsub slow", False, {}),
}  # fmt: skip


def _info_entry(name: str, arity: int, categories: str, subs: list[Any]) -> list[Any]:
    """A COMMAND INFO-shaped entry, as ``Catalog`` reads the node's (index 6: categories, 9: subcommands)."""
    return [name.encode(), arity, [], 0, 0, 0, categories.split(), [], [], subs]


CATALOG = Catalog(
    {
        name: _info_entry(
            name,
            arity,
            categories,
            [_info_entry(f"{name}|{sub}", a, c, []) for sub, (a, c) in subs.items()],
        )
        for name, (arity, categories, _, subs) in _TABLE.items()
    }
)


def _noop(*_: Any) -> Any:
    return None


COMMANDS: dict[bytes, Command] = {
    name.encode(): Command(
        name=name, fn=_noop, arity=arity, flags=frozenset(("no-auth",) if no_auth else ()),
        first_key=0, last_key=0, key_step=0, group="sentinel", summary="", no_auth=no_auth,
        subcommands=list(subs), latency_us=[],
    )
    for name, (arity, _, no_auth, subs) in _TABLE.items()
}  # fmt: skip

# The node directives sentinel.conf may hold that the users are built from.
SETTINGS = ("requirepass", "user", "acllog-max-len", "acl-pubsub-default")


class SentinelAcl(Acl):
    """The node's ``Acl`` on redis-sentinel's command table; its own host (settings and the listener's clients)."""

    def __init__(self, settings: Config) -> None:
        self._settings = settings
        self.listener_clients: Mapping[int, Client] = {}
        # `user` lines for the config rewrite (any thread reads it; replaced, never changed in place)
        self.lines: list[str] = []
        super().__init__(self, CATALOG)
        self._snapshot()

    @property
    def config(self) -> Config:
        return self._settings

    @property
    def clients(self) -> Mapping[int, Client]:
        return self.listener_clients

    def changed(self) -> None:
        super().changed()
        self._snapshot()

    def _snapshot(self) -> None:
        self.lines = [f"user {u.name} {u.describe()}" for u in self.sorted_users()]

    def refusal(self, client: Client, argv: list[bytes]) -> str | None:
        """The NOPERM error ``client`` gets for ``argv`` (logged in ACL LOG), or None: it may run it."""
        if client.user.permissive:
            return None
        cmd = COMMANDS.get(argv[0].lower())
        if cmd is None:
            return None  # (unknown: the listener answers that)
        return self.check_command(client, cmd, full_name(cmd, argv), argv)

    def command(self, client: Client, argv: list[bytes]) -> Any:
        """ACL ``argv[1:]``: the node's ACL command on these users and this table."""
        return acl_reply(self, client, argv, COMMANDS.get)


def kill_filter(args: list[bytes], acl: Acl) -> tuple[Callable[[Any], bool], bool]:
    """CLIENT KILL's arguments (Redis 7.0's clientKillCommand): which clients it kills, and SKIPME (yes unless
    said otherwise; the old one-address form may kill the caller). Filters: ID, TYPE, USER, ADDR, LADDR,
    MAXAGE. Raises CommandError with Redis's texts."""
    tests: list[Callable[[Any], bool]] = []
    if len(args) == 1:
        addr = args[0].decode("utf-8", "surrogateescape")
        return (lambda c: c.addr == addr), False
    skipme = True
    now = time.monotonic()
    for i in range(0, len(args), 2):
        if i + 1 >= len(args):
            raise CommandError("ERR syntax error")
        option, value = args[i].lower(), args[i + 1].decode("utf-8", "surrogateescape")
        if option == b"id":
            if not value.lstrip("-").isdigit() or int(value) <= 0:
                raise CommandError("ERR client-id should be greater than 0")
            tests.append(_attr_is("id", int(value)))
        elif option == b"type":
            kind = value.lower()
            if kind not in ("normal", "master", "replica", "slave", "pubsub"):
                raise CommandError(f"ERR Unknown client type '{value}'")
            tests.append(_type_is(kind))
        elif option == b"user":
            user = acl.users.get(value)
            if user is None:
                raise CommandError(f"ERR No such user '{value}'")
            tests.append(_attr_is("user", user))
        elif option in (b"addr", b"laddr"):
            tests.append(_attr_is(option.decode(), value))
        elif option == b"skipme":
            if value.lower() not in ("yes", "no"):
                raise CommandError("ERR syntax error")
            skipme = value.lower() == "yes"
        elif option == b"maxage":
            if not value.lstrip("-").isdigit():
                raise CommandError("ERR value is not an integer or out of range")
            tests.append(_older_than(now - int(value)))
        else:
            raise CommandError("ERR syntax error")
    return (lambda c: all(test(c) for test in tests)), skipme


def _attr_is(name: str, value: Any) -> Callable[[Any], bool]:
    return lambda c: bool(getattr(c, name) == value)


def _type_is(kind: str) -> Callable[[Any], bool]:
    return lambda c: kind == ("pubsub" if c.in_pubsub else "normal")


def _older_than(created_s: float) -> Callable[[Any], bool]:
    return lambda c: bool(c.created_s <= created_s)
