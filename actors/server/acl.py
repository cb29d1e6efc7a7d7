"""The node's ACL: its users, who may run what (Redis 7.0's ACLCheckAllPerm), authentication and the ACL LOG.

What it owns: the users by name (the ``default`` user among them, tied to ``requirepass`` as Redis ties it),
the permission check the dispatcher calls from its slow path, AUTH / HELLO AUTH's password check, the ACL LOG,
and the ACL file (``aclfile``: ACL LOAD reads it, ACL SAVE replaces it atomically) and redis.conf's ``user``
lines. The rule language itself is actors/server/acl_rules.py.

Cost: only a client whose user is not all-permissive (every command, key and channel) is checked: its
``Client.unchecked`` is False, which keeps that client (and no other) off the dispatcher's fast paths, so a node
with a restricted user still runs everyone else's commands without looking at this module. Runs on the master actor's loop thread; the replication actor only
calls ``authenticate_link`` (a read of immutable-enough records, as the requirepass check it replaces).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from actors.commands.getkeys import get_keys_and_flags
from actors.config import ConfigError
from actors.server.acl_rules import (
    CATALOG,
    EALREADY,
    READ,
    WRITE,
    AclRuleError,
    Catalog,
    Selector,
    User,
    merge_selector_args,
    validate_username,
)
from actors.server.client import ClientKind
from protocol import errors

if TYPE_CHECKING:
    from actors.commands import Command
    from actors.config import Config

log = structlog.get_logger(__name__)

# ACL LOG entries this close in time, for the same reason, context, object and user, are one entry counted.
LOG_GROUPING_MAX_TIME_MS = 60_000
# ACL LOG without a count shows this many entries, as Redis.
LOG_DEFAULT_COUNT = 10
# How many of the newest entries a new one is compared with (acl.c scans 10).
LOG_GROUPING_SCAN = 10

NOPERM_COMMAND = "NOPERM this user has no permissions to run the '{}' command"
NOPERM_KEY = "NOPERM this user has no permissions to access one of the keys used as arguments"
NOPERM_CHANNEL = "NOPERM this user has no permissions to access one of the channels used as arguments"
# scriptVerifyACL's texts (redis.call / redis.pcall).
SCRIPT_DENIED = {
    1: "ERR The user executing the script can't run this command or subcommand",
    2: "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments",
    4: "ERR The user executing the script can't publish to the channel mentioned in the command",
}
NO_ACL_FILE = (
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL "
    "SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order "
    "to store users in the Redis configuration."
)

_ACCESS_FLAGS = frozenset(("access",))
_WRITE_FLAGS = frozenset(("insert", "delete", "update"))
# Commands whose arguments are channels: name -> (first channel argument, all the rest too, is a pattern).
_CHANNEL_ARGS = {
    "publish": (1, False, False),
    "spublish": (1, False, False),
    "subscribe": (1, True, False),
    "ssubscribe": (1, True, False),
    "psubscribe": (1, True, True),
}


class Client(Protocol):
    """What the ACL needs of a connection: the node's actors/server/client.py Client, or a sentinel's."""

    user: User
    authenticated: bool
    close_requested: bool
    last_command: str

    @property
    def kind(self) -> ClientKind: ...
    @property
    def multi(self) -> list[Any] | None: ...
    @property
    def in_pubsub(self) -> bool: ...
    @property
    def channels(self) -> Collection[bytes]: ...
    @property
    def patterns(self) -> Collection[bytes]: ...
    @property
    def shard_channels(self) -> Collection[bytes]: ...
    def kill(self) -> None: ...
    def refresh_unchecked(self) -> None: ...
    def describe(self) -> str: ...


class Host(Protocol):
    """What the ACL needs of the process it serves: its settings (requirepass, user lines, acllog-max-len,
    acl-pubsub-default, aclfile: a node Config) and its connections. The node's Server is one; a sentinel
    gives an adapter (actors/sentinel/acl.py)."""

    @property
    def config(self) -> Config: ...
    @property
    def clients(self) -> Mapping[int, Client]: ...


# A master's replication stream and the AOF loader run as no user at all (Redis: c->user is NULL).
_UNCHECKED_KINDS = (ClientKind.MASTER, ClientKind.INTERNAL)


class Denial(IntEnum):
    """Why a check refused (acl.c's ACL_DENIED_*): a larger value is the more relevant error to report."""

    OK = 0  # allowed
    COMMAND = 1  # no selector may run the command
    KEY = 2  # a key matches no pattern with the needed permission
    AUTH = 3  # wrong user name or password, or a disabled user
    CHANNEL = 4  # a channel matches no channel pattern


_EXEC_REASONS = {
    Denial.COMMAND: "no permission to execute the command or subcommand",
    Denial.KEY: "no permission to touch the specified keys",
    Denial.CHANNEL: "no permission to access one of the channels used as arguments",
}
_REASON = {Denial.COMMAND: "command", Denial.KEY: "key", Denial.AUTH: "auth", Denial.CHANNEL: "channel"}


class LogEntry:
    __slots__ = ("count", "reason", "context", "object", "username", "ctime_ms", "client_info")

    def __init__(
        self,
        count: int,
        reason: str,
        context: str,
        object: bytes,
        username: bytes,
        ctime_ms: int,
        client_info: str,
    ) -> None:
        self.count: int = count
        self.reason: str = reason
        # toplevel, multi, lua
        self.context: str = context
        self.object: bytes = object
        self.username: bytes = username
        self.ctime_ms: int = ctime_ms
        self.client_info: str = client_info

    def reply(self, now_ms: int) -> dict[bytes, Any]:
        return {
            b"count": self.count,
            b"reason": self.reason.encode(),
            b"context": self.context.encode(),
            b"object": self.object,
            b"username": self.username,
            b"age-seconds": (now_ms - self.ctime_ms) / 1000,
            b"client-info": self.client_info.encode("utf-8", "replace"),
        }


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def full_name(cmd: Command, argv: list[bytes]) -> str:
    """The name ACL rules use: ``config|get`` for a container's subcommand, else the command's."""
    if cmd.subcommands and len(argv) > 1:
        sub = argv[1].lower().decode("utf-8", "replace")
        if sub in cmd.subcommands:
            return f"{cmd.name}|{sub}"
    return cmd.name


def new_default_user(catalog: Catalog = CATALOG) -> User:
    user = User("default", catalog=catalog)
    for rule in ("+@all", "~*", "&*", "on", "nopass"):
        user.apply(rule)
    return user


class Acl:
    """The users of one node and the checks against them; see the module docstring."""

    def __init__(self, server: Host, catalog: Catalog = CATALOG) -> None:
        self.server = server
        # the command table rules name: the node's, or the sentinel's (ACL CAT lists its categories' members)
        self.catalog = catalog
        config = server.config
        self.default = new_default_user(catalog)
        self.users: dict[str, User] = {"default": self.default}
        self.log: deque[LogEntry] = deque()
        # Some user is not all-permissive: the dispatcher must ask check_command (see the module docstring).
        self.enforcing = False
        self.aclfile: str = config["aclfile"]
        # Replaces a file atomically (temp, fsync, rename, directory fsync): actors/files.py's helper, installed
        # by the node (this package may not import it); None where no node runs (unit tests).
        self.write_file: Callable[[str, bytes], None] | None = None
        self._set_default_password(config["requirepass"])
        config.on_change("requirepass", self._set_default_password)
        # Lowering the limit keeps the entries there are: Redis trims the log only when it adds one.
        self.log_max_len = int(config["acllog-max-len"])
        config.on_change("acllog-max-len", lambda v: setattr(self, "log_max_len", int(v)))
        lines: list[list[str]] = config["user"]
        if lines and self.aclfile:
            raise ConfigError(
                "Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is "
                "invalid. This setup is very likely to lead to configuration errors and security holes, please "
                "define either an ACL file or declare users directly in your redis.conf, but not both."
            )
        if lines:
            self._load_config_users(lines)
        elif self.aclfile:
            error = self.load_file()
            if error is not None:
                raise ConfigError(f"Aborting Redis startup because of ACL errors: {error}")
        self.enforcing = any(not user.permissive for user in self.users.values())

    # -- users -----------------------------------------------------------------------------------------

    def _set_default_password(self, password: Any) -> None:
        """requirepass is the default user's one password (ACLUpdateDefaultUserPassword)."""
        self.default.apply("resetpass")
        if password:
            self.default.apply(">" + str(password))
        else:
            self.default.apply("nopass")

    def changed(self) -> None:
        """Users were added, changed or removed: recompute whether commands must be checked."""
        self.enforcing = any(not user.permissive for user in self.users.values())
        for client in self.server.clients.values():
            client.refresh_unchecked()

    @property
    def pubsub_default_all(self) -> bool:
        """acl-pubsub-default allchannels: new users, new selectors and ``reset`` start with ``&*``."""
        return bool(self.server.config["acl-pubsub-default"] == "allchannels")

    def new_user(self, name: str) -> User:
        """ACLCreateUser: off, no passwords, no commands, keys or channels, unless acl-pubsub-default
        allchannels gives it every channel."""
        user = User(name, catalog=self.catalog)
        if self.pubsub_default_all:
            user.apply("allchannels")
        return user

    def setuser(self, raw_name: bytes, raw_rules: list[bytes]) -> None:
        """ACL SETUSER: all rules apply, or none (they run on a copy). Raises AclRuleError with the reply."""
        name = _name(raw_name)
        validate_username(name)
        rules = merge_selector_args([_name(r) for r in raw_rules])
        existing = self.users.get(name)
        user = existing.copy() if existing is not None else self.new_user(name)
        for rule in rules:
            try:
                user.apply(rule, self.pubsub_default_all)
            except AclRuleError as exc:
                raise AclRuleError(f"ERR Error in ACL SETUSER modifier '{rule}': {exc}") from None
        if existing is None:
            self.users[name] = user
        else:
            old_channels: list[bytes] | None = [c for s in existing.all_selectors for c in s.channels]
            if any(s.allchannels for s in existing.all_selectors):
                old_channels = None  # allchannels revoked: every subscriber is checked
            existing.assign(user)
            self._kill_pubsub_clients_if_needed(existing, old_channels)
        self.changed()

    def _kill_pubsub_clients_if_needed(self, user: User, old_channels: list[bytes] | None) -> None:
        """ACLKillPubsubClientsIfNeeded: channel permissions narrowed, so subscribers of that user whose
        subscriptions are no longer allowed are disconnected."""
        if any(s.allchannels for s in user.all_selectors):
            return
        upcoming = [c for s in user.all_selectors for c in s.channels]
        if old_channels is not None and all(c in upcoming for c in old_channels):  # nothing was taken away
            return
        matchers = [m for s in user.all_selectors for m in s.channel_matchers]
        for client in list(self.server.clients.values()):
            if client.user is not user or not client.in_pubsub:
                continue
            if any(p not in upcoming for p in client.patterns) or any(
                not any(match(c) for match in matchers)
                for c in (*client.channels, *client.shard_channels)  # SSUBSCRIBE's too, as Redis
            ):
                client.close_requested = True
                client.kill()

    def deluser(self, raw_names: list[bytes]) -> int:
        deleted = 0
        for raw in raw_names:
            name = _name(raw)
            if name == "default":
                raise AclRuleError("ERR The 'default' user cannot be removed")
        for raw in raw_names:
            user = self.users.pop(_name(raw), None)
            if user is None:
                continue
            deleted += 1
            for client in list(self.server.clients.values()):
                if client.user is user:
                    client.user = self.default
                    client.authenticated = False
                    client.close_requested = True
                    client.kill()
        self.changed()
        return deleted

    def sorted_users(self) -> list[User]:
        return [
            self.users[name]
            for name in sorted(self.users, key=lambda n: n.encode("utf-8", "surrogateescape"))
        ]

    # -- authentication ---------------------------------------------------------------------------------

    def authenticate(self, client: Client, username: bytes, password: bytes, argv0: bytes) -> bool:
        """AUTH / HELLO AUTH: on success the client runs as that user; on failure an ACL LOG entry."""
        user = self.users.get(_name(username))
        if user is not None and user.enabled and user.check_password(password):
            client.user = user
            client.authenticated = True
            return True
        self.add_log(client, Denial.AUTH, argv0, username)
        return False

    def link_refusal(self, username: str, password: str) -> str | None:
        """A replica's Hello / PSYNC over the bus (masteruser / masterauth): None if that user may log in and
        run PSYNC, else the error it gets. A bare password is the default user's; none at all is accepted only
        while the default user needs none (and any password is then accepted, as before ACL users)."""
        if not username:
            if not password:
                return errors.NOAUTH if self.auth_required_by_default() else None
            if not self.auth_required_by_default():
                return None
        user = self.users.get(username or "default")
        if user is None or not user.enabled or not user.check_password(password.encode()):
            return errors.WRONGPASS
        if not any(s.allcommands or "psync" in s.allowed for s in user.all_selectors):
            return NOPERM_COMMAND.format("psync")
        return None

    def auth_required_by_default(self) -> bool:
        """A new connection starts unauthenticated (Redis's authRequired for the default user)."""
        return not self.default.nopass or not self.default.enabled

    # -- permission checks (ACLCheckAllUserCommandPerm) -------------------------------------------------------

    def check(self, user: User, cmd: Command, full_name: str, argv: list[bytes]) -> tuple[Denial, int]:
        """The most relevant denial over the user's selectors (OK if one allows), and the argument it is for."""
        relevant, last_pos = Denial.COMMAND, 0
        keys: list[tuple[int, Any]] | None = None
        for selector in user.all_selectors:
            denial, pos, keys = _check_selector(selector, cmd, full_name, argv, keys)
            if denial is Denial.OK:
                return Denial.OK, 0
            if denial > relevant or (denial == relevant and pos > last_pos):
                relevant, last_pos = denial, pos
        return relevant, last_pos

    def permits(self, user: User, cmd: Command, full_name: str, argv: list[bytes]) -> bool:
        """``user`` may run ``argv`` (redis.acl_check_cmd): a check that logs nothing."""
        return user.permissive or self.check(user, cmd, full_name, argv)[0] is Denial.OK

    def unrestricted_key_read(self, client: Client, cmd: Command, argv: list[bytes]) -> bool:
        """ACLUserCheckCmdWithUnrestrictedKeyAccess(..., CMD_KEY_ACCESS): one of the user's selectors allows
        ``argv`` and may read any key (allkeys, or a ``%R~*`` / ``~*`` pattern). SORT's BY / GET need it."""
        user = client.user
        if user.permissive or client.kind in _UNCHECKED_KINDS:
            return True
        name = full_name(cmd, argv)
        keys: list[tuple[int, Any]] | None = None
        for selector in user.all_selectors:
            denial, _, keys = _check_selector(selector, cmd, name, argv, keys)
            if denial is Denial.OK and (
                selector.allkeys or any(p.pattern == b"*" and p.flags & READ == READ for p in selector.keys)
            ):
                return True
        return False

    def check_command(self, client: Client, cmd: Command, full_name: str, argv: list[bytes]) -> str | None:
        """The dispatcher's one call: None if ``client`` may run ``argv``, else the NOPERM error (logged)."""
        user = client.user
        if user.permissive or client.kind in _UNCHECKED_KINDS:
            return None
        denial, pos = self.check(user, cmd, full_name, argv)
        if denial is Denial.OK:
            return None
        client.last_command = full_name  # Redis sets it at lookup: the log's client-info shows it
        context = "multi" if client.multi is not None else "toplevel"
        self._log_denial(client, denial, pos, full_name, argv, context)
        if denial is Denial.COMMAND:
            return NOPERM_COMMAND.format(full_name)
        return NOPERM_KEY if denial is Denial.KEY else NOPERM_CHANNEL

    def exec_refusal(self, client: Client, cmd: Command, argv: list[bytes]) -> str | None:
        """A queued command checked again at EXEC: None, or the NOPERM error it is answered instead."""
        user = client.user
        if user.permissive or client.kind in _UNCHECKED_KINDS:
            return None
        name = full_name(cmd, argv)
        denial, pos = self.check(user, cmd, name, argv)
        if denial is Denial.OK:
            return None
        self._log_denial(client, denial, pos, name, argv, "multi")
        return (
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. "
            "This command is no longer allowed for the following reason: " + _EXEC_REASONS[denial]
        )

    def check_script_call(
        self, caller: Client, cmd: Command, full_name: str, argv: list[bytes]
    ) -> str | None:
        """redis.call inside a script runs with the caller's permissions (scriptVerifyACL)."""
        user = caller.user
        if user.permissive:
            return None
        denial, pos = self.check(user, cmd, full_name, argv)
        if denial is Denial.OK:
            return None
        self._log_denial(caller, denial, pos, full_name, argv, "lua")
        return SCRIPT_DENIED[denial]

    def dryrun(self, raw_name: bytes, cmd: Command, full_name: str, argv: list[bytes]) -> str | None:
        user = self.users.get(_name(raw_name))
        assert user is not None
        denial, pos = self.check(user, cmd, full_name, argv)
        if denial is Denial.OK:
            return None
        if denial is Denial.COMMAND:
            return f"This user has no permissions to run the '{full_name}' command"
        kind = "key" if denial is Denial.KEY else "channel"
        return f"This user has no permissions to access the '{_name(argv[pos])}' {kind}"

    # -- ACL LOG ----------------------------------------------------------------------------------------

    def _log_denial(
        self, client: Client, denial: Denial, pos: int, full_name: str, argv: list[bytes], context: str
    ) -> None:
        obj = full_name.encode() if denial is Denial.COMMAND else argv[pos]
        self.add_log(client, denial, obj, client.user.name.encode("utf-8", "surrogateescape"), context)

    def add_log(
        self, client: Client, denial: Denial, obj: bytes, username: bytes, context: str = "toplevel"
    ) -> None:
        now_ms = int(time.time() * 1000)
        reason = _REASON[denial]
        info = client.describe()
        for i, entry in enumerate(self.log):
            if i >= LOG_GROUPING_SCAN:
                break
            if (
                entry.reason == reason
                and entry.context == context
                and now_ms - entry.ctime_ms <= LOG_GROUPING_MAX_TIME_MS
                and entry.object == obj
                and entry.username == username
            ):
                del self.log[i]
                entry.count += 1
                entry.ctime_ms = now_ms
                entry.client_info = info
                self.log.appendleft(entry)
                return
        self.log.appendleft(LogEntry(1, reason, context, obj, username, now_ms, info))
        while len(self.log) > self.log_max_len:
            self.log.pop()

    def log_reply(self, count: int | None) -> list[dict[bytes, Any]]:
        now_ms = int(time.time() * 1000)
        entries = list(self.log)[: LOG_DEFAULT_COUNT if count is None else max(count, 0)]
        return [entry.reply(now_ms) for entry in entries]

    # -- ACL files and `user` lines ------------------------------------------------------------------------

    def _load_config_users(self, lines: list[list[str]]) -> None:
        """redis.conf's ``user`` lines, at start-up: an error stops the node, as in Redis."""
        seen: set[str] = set()
        for line in lines:
            name, rules = line[0], line[1:]
            try:
                validate_username(name)
                if name in seen:
                    raise AclRuleError(EALREADY)
                seen.add(name)
                user = self.users.get(name) or self.new_user(name)
                if name == "default":
                    # a `user default ...` line starts from scratch (ACLLoadConfiguredUsers)
                    user.apply("reset", self.pubsub_default_all)
                for rule in merge_selector_args(rules):
                    user.apply(rule, self.pubsub_default_all)
            except AclRuleError as exc:
                raise ConfigError(f"Error in user declaration '{name}': {exc}") from None
            self.users[name] = user

    def load_file(self) -> str | None:
        """ACL LOAD: replace every user by the file's, all or nothing (ACLLoadFromFile, its texts included);
        the error text, or None."""
        path = self.aclfile
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError as exc:
            return f"Error loading ACLs, opening file '{path}': {exc.strerror}"
        users: dict[str, User] = {}
        errors = ""
        for lineno, raw_line in enumerate(text.split("\n"), 1):
            line = raw_line.strip(" \t\r\n")
            if not line:
                continue
            words = line.split(" ")  # no quoting in ACL files (sdssplitlen)
            if words[0] != "user" or len(words) < 2:
                errors += f"{path}:{lineno} should start with user keyword followed by the username. "
                continue
            name = words[1]
            if name in users:
                errors += f"WARNING: Duplicate user '{name}' found on line {lineno}. "
                continue
            user = users[name] = self.new_user(name)
            try:
                rules = merge_selector_args(words[2:])
            except AclRuleError:
                errors += f"{path}:{lineno}: Unmatched parenthesis in selector definition."
                continue
            for rule in rules:
                try:
                    user.apply(rule.strip("\t\r\n"), self.pubsub_default_all)
                except AclRuleError as exc:
                    errors += f"{path}:{lineno}: {exc}. "
        if errors:
            return (
                errors
                + "WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
            )
        default = users.pop("default", None)
        self.default.assign(default if default is not None else new_default_user(self.catalog))
        self.users = {"default": self.default, **users}
        for client in list(self.server.clients.values()):
            if client.user is not self.default:
                # Redis frees the old users and with them the clients authenticated as one of them.
                client.authenticated = False
                client.close_requested = True
                client.kill()
        self.changed()
        return None

    def save_file(self) -> str | None:
        """ACL SAVE: every user as a ``user`` line, written to a temp file, fsynced and renamed over the file."""
        data = "".join(f"user {u.name} {u.describe()}\n" for u in self.sorted_users())
        if self.write_file is None:
            return "ERR ACL SAVE is not available without a node's file writer"
        try:
            self.write_file(self.aclfile, data.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            log.warning("acl_save_failed", path=self.aclfile, reason=str(exc))
            return "ERR There was an error trying to save the ACLs. Please check the server logs for more information"
        return None


def _check_selector(
    selector: Selector,
    cmd: Command,
    full_name: str,
    argv: list[bytes],
    keys: list[tuple[int, Any]] | None,
) -> tuple[Denial, int, list[tuple[int, Any]] | None]:
    """ACLSelectorCheckCmd: the command, then its keys, then its channels. ``keys`` caches the key positions
    between selectors."""
    if not selector.allcommands and not cmd.no_auth and full_name not in selector.allowed:
        args = selector.firstargs.get(full_name)
        if not args or len(argv) < 2 or argv[1].decode("utf-8", "surrogateescape").lower() not in args:
            return Denial.COMMAND, 0, keys
    if not selector.allkeys:
        if keys is None:  # a container's subcommand has its own key specs: get_keys_and_flags looks it up
            keys = get_keys_and_flags(cmd, argv)
        for pos, flags in keys:
            needed = (READ if not _ACCESS_FLAGS.isdisjoint(flags) else 0) | (
                WRITE if not _WRITE_FLAGS.isdisjoint(flags) else 0
            )
            key = argv[pos]
            if not any((p.flags & needed) == needed and p.match(key) for p in selector.keys):
                return Denial.KEY, pos, keys
    if not selector.allchannels:
        spec = _CHANNEL_ARGS.get(cmd.name)
        if spec is not None:
            first, rest, is_pattern = spec
            for pos in range(first, len(argv) if rest else first + 1):
                channel = argv[pos]
                if is_pattern:
                    allowed = channel in selector.channels
                else:
                    allowed = any(match(channel) for match in selector.channel_matchers)
                if not allowed:
                    return Denial.CHANNEL, pos, keys
    return Denial.OK, 0, keys
