"""CONFIG GET / SET / RESETSTAT / REWRITE / HELP over the node's ``Config`` (actors/config.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands.debug import protected_action_allowed
from actors.commands.server import check_subcommand
from actors.config import BY_NAME, ConfigError
from actors.server import cmdstats, latencystats, lazyfree
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import OK

# Redis's DENY_LOADING_CONFIG: not set while a dataset loads (-LOADING), async loading included.
DENY_LOADING_CONFIGS = frozenset({"appendonly", "repl-diskless-load", "dir"})

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server


# -- CONFIG ----------------------------------------------------------------------------------------------

# Redis's PROTECTED_CONFIG: where the node writes its files. With CONFIG SET of both, a client that got in
# could write a dump.rdb wherever the node may write (~/.ssh/authorized_keys...): refused unless
# enable-protected-configs says yes (or local, to a local client).
PROTECTED_CONFIGS = frozenset(("dir", "dbfilename"))


@command(
    "config",
    -2,
    "admin loading stale",
    (0, 0, 0),
    "server",
    "A container for server configuration commands",
    subcommands=("get", "set", "resetstat", "rewrite", "help"),
)
def cmd_config(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    sub = check_subcommand("config", argv)
    if sub == b"get":
        found: dict[bytes, bytes] = {}
        # Each directive once, under its first spelling (names match case-insensitively).
        seen: set[str] = set()
        for raw in argv[2:]:
            for name, value in server.config.match(raw.decode("utf-8", "replace")):
                if name.lower() not in seen:
                    seen.add(name.lower())
                    # (a value from redis.conf keeps its bytes, UTF-8 or not: the file is read with surrogateescape)
                    found[name.encode()] = value.encode("utf-8", "surrogateescape")
        return found
    if sub == b"set":
        if len(argv) < 4 or len(argv) % 2:
            raise errors.wrong_arity("config|set")
        pairs = [
            (argv[i].decode("utf-8", "surrogateescape"), _value_text(argv[i], argv[i + 1]))
            for i in range(2, len(argv), 2)
        ]
        names = [n.lower() for n, _ in pairs]
        if (server.loading or server.async_loading) and DENY_LOADING_CONFIGS.intersection(names):
            raise CommandError(errors.LOADING)  # (Redis answers this before any other error of the call)
        if len(set(names)) != len(names):
            raise CommandError(
                f"ERR CONFIG SET failed (possibly related to argument '{names[0]}') - duplicate parameter"
            )
        for name, _ in pairs:  # (in order: an unknown or immutable name before it is the error to answer)
            directive = BY_NAME.get(name.lower())
            if directive is None or not directive.mutable:
                break
            if directive.name in PROTECTED_CONFIGS and not protected_action_allowed(
                client, "enable-protected-configs"
            ):
                raise CommandError(
                    f"ERR CONFIG SET failed (possibly related to argument '{name}') - can't set protected config"
                )
        applied: list[tuple[str, str]] = []
        try:
            for name, value in pairs:
                previous = server.config.render(name) if name.lower() in _known(server) else None
                server.config.set_runtime(name, [value])
                if previous is not None:
                    applied.append((name, previous))
        except ConfigError as exc:
            for name, previous in reversed(applied):  # CONFIG SET of several pairs is all or nothing
                try:
                    server.config.set_runtime(name, [previous])
                except ConfigError:
                    pass
            raise CommandError(f"ERR {exc}") from None
        return OK
    if sub == b"resetstat" and len(argv) == 2:
        from actors.server.server import Stats

        server.stats = Stats()
        keyspace = server.keyspace
        keyspace.keyspace_hits = keyspace.keyspace_misses = keyspace.expired_keys = 0
        keyspace.expired_stale_perc = 0.0
        keyspace.expired_time_cap_reached_count = keyspace.expire_cycle_time_used_us = 0
        server.memory.evicted_keys = 0
        server.memory.exceeded_before_us = 0
        server.memory.exceeded_since_s = None
        lazyfree.reset_stats(server)
        # This server's table (counters are per instance), subcommands' records included (cmdstats.py).
        for cmd in cmdstats.unique_commands(server):
            cmd.calls = cmd.usec = cmd.failed_calls = cmd.rejected_calls = 0
            latencystats.reset(cmd)
        return OK
    if sub == b"rewrite":
        # The launcher's writer (launcher/config_rewrite.py), set only when the node started from a file.
        if server.config_rewrite is None:
            raise CommandError("ERR The server is running without a config file")
        try:
            server.config_rewrite()
        except OSError as exc:
            raise CommandError(f"ERR Rewriting config file: {exc.strerror or exc}") from None
        return OK
    if sub == b"help":
        return [
            b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"GET <pattern>",
            b"    Return parameters matching the glob-like <pattern> and their values.",
            b"SET <directive> <value>",
            b"    Set the configuration <directive> to <value>.",
            b"RESETSTAT",
            b"    Reset statistics reported by the INFO command.",
            b"REWRITE",
            b"    Rewrite the configuration file.",
            b"HELP",
            b"    Prints this help.",
        ]
    raise errors.unknown_subcommand(errors.echoed(argv[1]), "config")


# Values kept byte for byte (surrogateescape, as redis.conf's are read): requirepass is hashed from those bytes,
# so a binary password set here is the one AUTH then takes, as in Redis. Other values are decoded with U+FFFD
# for what is not UTF-8: the replication handshake and the bus carry masterauth / masteruser as text.
_BINARY_SAFE = frozenset((b"requirepass",))


def _value_text(name: bytes, value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape" if name.lower() in _BINARY_SAFE else "replace")


def _known(server: Server) -> set[str]:
    return set(BY_NAME)
