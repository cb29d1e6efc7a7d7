"""Connection and server commands: PING, AUTH, HELLO, CLIENT, INFO, CONFIG, DEBUG, SHUTDOWN, TIME (COMMAND: introspection.py)."""

from __future__ import annotations

import os
import platform
import re
import resource
import sys
import time
from typing import TYPE_CHECKING, Any

from actors.commands import COMMANDS, command
from actors.commands._util import parse_int
from actors.config import ConfigError
from actors.data.digest import dataset_digest, object_digest
from actors.server.client import ClientKind
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import OK, Verbatim

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server


@command("ping", -1, "fast pubsub-ok", (0, 0, 0), "connection", "Ping the server")
def cmd_ping(client: Client, argv: list[bytes]) -> Any:
    if len(argv) > 2:
        raise errors.wrong_arity("ping")
    if client.in_pubsub and not client.resp3:
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return argv[1] if len(argv) == 2 else "PONG"


@command("echo", 2, "fast stale loading", (0, 0, 0), "connection", "Echo the given string")
def cmd_echo(client: Client, argv: list[bytes]) -> Any:
    return argv[1]


@command(
    "quit",
    -1,
    "fast stale loading no-auth pubsub-ok no-multi",
    (0, 0, 0),
    "connection",
    "Close the connection",
)
def cmd_quit(client: Client, argv: list[bytes]) -> Any:
    client.close_requested = True
    return OK


def _check_password(client: Client, username: bytes, password: bytes) -> None:
    required = client.server.requirepass
    if not required:
        if username == b"default":
            client.authenticated = True
            return
        raise CommandError(
            "ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?"
        )
    if username != b"default" or password != required.encode():
        raise CommandError(errors.WRONGPASS)
    client.authenticated = True


@command("auth", -2, "fast stale loading no-auth", (0, 0, 0), "connection", "Authenticate to the server")
def cmd_auth(client: Client, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2:
        if not client.server.requirepass:
            raise CommandError(
                "ERR AUTH <password> called without any password configured for the default user. "
                "Are you sure your configuration is correct?"
            )
        _check_password(client, b"default", argv[1])
    else:
        _check_password(client, argv[1], argv[2])
    return OK


@command("hello", -1, "fast stale loading no-auth", (0, 0, 0), "connection", "Handshake with Redis")
def cmd_hello(client: Client, argv: list[bytes]) -> Any:
    version = 3 if client.resp3 else 2
    i = 1
    if len(argv) > 1:
        try:
            version = parse_int(argv[1])
        except CommandError:
            raise CommandError("ERR Protocol version is not an integer or out of range") from None
        i = 2
        if version not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
    name: bytes | None = None
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"auth" and i + 2 < len(argv):
            _check_password(client, argv[i + 1], argv[i + 2])
            i += 3
        elif opt == b"setname" and i + 1 < len(argv):
            name = argv[i + 1]
            _validate_client_name(name)
            i += 2
        else:
            raise CommandError(f"ERR Syntax error in HELLO option '{argv[i].decode('utf-8', 'replace')}'")
    if not client.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH "
            "<user> <pass> option can be used to authenticate the client and select the RESP protocol "
            "version at the same time"
        )
    if name is not None:
        client.name = name
    client.resp3 = version == 3
    server = client.server
    return {
        b"server": b"redis",
        b"version": server_redis_version(server).encode(),
        b"proto": version,
        b"id": client.id,
        b"mode": b"standalone",
        b"role": b"replica" if server.is_replica else b"master",
        b"modules": [],
    }


@command(
    "reset",
    1,
    "fast stale loading no-auth pubsub-ok no-multi",
    (0, 0, 0),
    "connection",
    "Reset the connection",
)
def cmd_reset(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    client.multi = None
    client.multi_error = False
    client.dirty_cas = False
    for db, key in client.watched:
        watchers = db.watched.get(key)
        if watchers is not None:
            watchers.discard(client)
            if not watchers:
                del db.watched[key]
    client.watched.clear()
    for hook in server.client_removed_hooks:
        hook(client)  # pub/sub and blocked-client families forget this client
    client.channels.clear()
    client.patterns.clear()
    client.select(0)
    client.resp3 = False
    client.name = b""
    client.authenticated = not server.requirepass
    return "RESET"


@command("time", 1, "fast loading stale", (0, 0, 0), "server", "Return the current server time")
def cmd_time(client: Client, argv: list[bytes]) -> Any:
    now_us = time.time_ns() // 1000
    return [b"%d" % (now_us // 1_000_000), b"%d" % (now_us % 1_000_000)]


# -- subcommands -----------------------------------------------------------------------------------------

# Redis 7.0's arity of each container subcommand (same convention as a command's: -n means at least n).
SUBCOMMAND_ARITY: dict[str, dict[bytes, int]] = {
    "client": {
        b"id": 2,
        b"info": 2,
        b"kill": -3,
        b"list": -2,
        b"getname": 2,
        b"setname": 3,
        b"setinfo": 4,
        b"no-evict": 3,
        b"no-touch": 3,
        b"reply": 3,
        b"unblock": -3,
        b"help": 2,
    },
    "config": {b"get": -3, b"set": -4, b"resetstat": 2, b"help": 2},
    "slowlog": {b"get": -2, b"len": 2, b"reset": 2, b"help": 2},
}


def check_subcommand(container: str, argv: list[bytes]) -> bytes:
    """The lowered subcommand of ``argv``, after Redis's checks: it exists, then its arity."""
    sub = argv[1].lower()
    arity = SUBCOMMAND_ARITY[container].get(sub)
    if arity is None:
        raise errors.unknown_subcommand(argv[1].decode("utf-8", "replace"), container)
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        raise errors.wrong_arity(f"{container}|{sub.decode()}")
    return sub


# -- CLIENT ----------------------------------------------------------------------------------------------


def _validate_client_name(name: bytes) -> None:
    if any(c < 0x21 or c > 0x7E for c in name):
        raise CommandError("ERR Client names cannot contain spaces, newlines or special characters.")


def _client_type(client: Client) -> str:
    if client.kind is ClientKind.MASTER:
        return "master"
    if getattr(client, "is_replica_link", False):
        return "replica"
    if client.in_pubsub:
        return "pubsub"
    return "normal"


_CLIENT_HELP = [
    b"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"ID",
    b"INFO",
    b"KILL <ip:port>",
    b"KILL <option> <value> [<option> <value> [...]]",
    b"LIST [options ...]",
    b"GETNAME",
    b"SETNAME <name>",
    b"SETINFO <option> <value>",
    b"NO-EVICT (ON|OFF)",
    b"NO-TOUCH (ON|OFF)",
    b"REPLY (ON|OFF|SKIP)",
    b"UNBLOCK <clientid> [TIMEOUT|ERROR]",
    b"HELP",
]


@command(
    "client",
    -2,
    "stale loading",
    (0, 0, 0),
    "connection",
    "A container for client connection commands",
    subcommands=(
        "id",
        "info",
        "kill",
        "list",
        "getname",
        "setname",
        "setinfo",
        "no-evict",
        "no-touch",
        "reply",
        "unblock",
        "help",
    ),
)
def cmd_client(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    sub = check_subcommand("client", argv)
    if sub == b"id" and len(argv) == 2:
        return client.id
    if sub == b"getname" and len(argv) == 2:
        return client.name or None
    if sub == b"setname" and len(argv) == 3:
        _validate_client_name(argv[2])
        client.name = argv[2]
        return OK
    if sub == b"setinfo" and len(argv) == 4:
        attr = argv[2].lower()
        value = argv[3].decode("utf-8", "replace")
        if any(c in value for c in " \n\r"):
            raise CommandError(
                f"ERR {argv[2].decode()} cannot contain spaces, newlines or special characters."
            )
        if attr == b"lib-name":
            client.lib_name = value
        elif attr == b"lib-ver":
            client.lib_ver = value
        else:
            raise CommandError(f"ERR Unrecognized option '{argv[2].decode('utf-8', 'replace')}'")
        return OK
    if sub == b"info" and len(argv) == 2:
        return Verbatim(client.describe().encode() + b"\n")
    if sub == b"list":
        chosen = list(server.clients.values())
        i = 2
        while i < len(argv):
            opt = argv[i].lower()
            if opt == b"type" and i + 1 < len(argv):
                wanted = argv[i + 1].lower().decode()
                wanted = {"slave": "replica"}.get(wanted, wanted)
                if wanted not in ("normal", "master", "replica", "pubsub"):
                    raise CommandError(f"ERR Unknown client type '{argv[i + 1].decode('utf-8', 'replace')}'")
                chosen = [c for c in chosen if _client_type(c) == wanted]
                i += 2
            elif opt == b"id" and i + 1 < len(argv):
                ids = {parse_int(raw, "ERR Invalid client ID") for raw in argv[i + 1 :]}
                chosen = [c for c in chosen if c.id in ids]
                i = len(argv)
            else:
                raise CommandError(errors.SYNTAX)
        return Verbatim("".join(c.describe() + "\n" for c in chosen).encode())
    if sub == b"kill":
        return _client_kill(client, argv)
    if sub in (b"no-evict", b"no-touch") and len(argv) == 3:
        if argv[2].lower() not in (b"on", b"off"):
            raise CommandError(errors.SYNTAX)
        return OK
    if sub == b"reply" and len(argv) == 3:
        if argv[2].lower() != b"on":
            raise CommandError("ERR CLIENT REPLY OFF|SKIP is not supported by redactor")
        return OK
    if sub == b"unblock" and len(argv) in (3, 4):
        # CLIENT UNBLOCK <id> [TIMEOUT|ERROR]: the blocked-client registry (actors/blocking.py) ends the wait.
        with_error = False
        if len(argv) == 4:
            reason = argv[3].lower()
            if reason not in (b"timeout", b"error"):
                raise CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
            with_error = reason == b"error"
        from actors.server.blocking import unblock_client

        target = client.server.clients.get(parse_int(argv[2]))
        return 1 if target is not None and unblock_client(client.server, target, with_error) else 0
    if sub == b"help" and len(argv) == 2:
        return _CLIENT_HELP
    raise errors.unknown_subcommand(argv[1].decode("utf-8", "replace"), "client")


def _client_kill(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    if len(argv) == 3:
        addr = argv[2].decode("utf-8", "replace")
        for other in list(server.clients.values()):
            if other.addr == addr:
                other.kill()
                return OK
        raise CommandError("ERR No such client")
    if len(argv) % 2 != 0:
        raise CommandError(errors.SYNTAX)
    filters: list[tuple[bytes, bytes]] = []
    skipme = True
    for i in range(2, len(argv), 2):
        opt, value = argv[i].lower(), argv[i + 1]
        if opt == b"skipme":
            if value.lower() not in (b"yes", b"no"):
                raise CommandError(errors.SYNTAX)
            skipme = value.lower() == b"yes"
        elif opt in (b"id", b"addr", b"laddr", b"type", b"user"):
            if opt == b"id":
                parse_int(value, "ERR client-id should be greater than 0")
            filters.append((opt, value))
        else:
            raise CommandError(errors.SYNTAX)
    killed = 0
    for other in list(server.clients.values()):
        if skipme and other is client:
            continue
        if all(_client_matches(other, opt, value) for opt, value in filters):
            other.kill()
            killed += 1
    return killed


def _client_matches(client: Client, opt: bytes, value: bytes) -> bool:
    text = value.decode("utf-8", "replace")
    if opt == b"id":
        return client.id == int(value)
    if opt == b"addr":
        return client.addr == text
    if opt == b"laddr":
        return client.laddr == text
    if opt == b"type":
        return _client_type(client) == {"slave": "replica"}.get(text.lower(), text.lower())
    return text == "default"


# -- INFO ------------------------------------------------------------------------------------------------


def server_redis_version(server: Server) -> str:
    from actors.server.server import REDIS_VERSION

    return REDIS_VERSION


def _human_bytes(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.2f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return f"{n:.2f}T"


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _section_server(server: Server) -> list[tuple[str, Any]]:
    from actors.server.server import REDIS_VERSION, VERSION

    uptime = server.uptime_s()
    return [
        ("redis_version", REDIS_VERSION),
        ("redactor_version", VERSION),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", "0"),
        ("redis_mode", "standalone"),
        ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("arch_bits", 64),
        ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "epoll"),
        ("python_version", platform.python_version()),
        ("process_id", os.getpid()),
        ("process_supervised", "no"),
        ("run_id", server.run_id),
        ("tcp_port", server.port),
        ("server_time_usec", time.time_ns() // 1000),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", server.config["hz"]),
        ("configured_hz", server.config["hz"]),
        ("executable", sys.argv[0] if sys.argv else ""),
        ("config_file", server.config_file),
        ("io_threads_active", 0),
    ]


def _section_clients(server: Server) -> list[tuple[str, Any]]:
    clients = [c for c in server.clients.values() if c.kind is not ClientKind.MASTER]
    return [
        ("connected_clients", len(clients)),
        ("cluster_connections", 0),
        ("maxclients", server.config["maxclients"]),
        ("client_recent_max_input_buffer", 0),
        ("client_recent_max_output_buffer", 0),
        ("blocked_clients", sum(1 for c in clients if c.blocked is not None)),
        ("tracking_clients", 0),
        ("clients_in_timeout_table", 0),
    ]


def _section_memory(server: Server) -> list[tuple[str, Any]]:
    rss = rss_bytes()
    peak = max(rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    maxmemory = server.config["maxmemory"]
    return [
        ("used_memory", rss),
        ("used_memory_human", _human_bytes(rss)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", _human_bytes(rss)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", _human_bytes(peak)),
        ("used_memory_dataset", rss),
        ("total_system_memory", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")),
        ("maxmemory", maxmemory),
        ("maxmemory_human", _human_bytes(maxmemory)),
        ("maxmemory_policy", server.config["maxmemory-policy"]),
        ("mem_fragmentation_ratio", "1.00"),
        ("mem_allocator", "pymalloc"),
    ]


def _section_stats(server: Server) -> list[tuple[str, Any]]:
    st = server.stats
    ks = server.keyspace
    master = server.master_actor
    return [
        ("total_connections_received", st.total_connections_received),
        ("total_commands_processed", st.total_commands_processed),
        ("instantaneous_ops_per_sec", getattr(master, "ops_per_sec", 0)),
        ("total_net_input_bytes", st.net_input_bytes),
        ("total_net_output_bytes", st.net_output_bytes),
        ("rejected_connections", st.rejected_connections),
        ("sync_full", st.sync_full),
        ("sync_partial_ok", st.sync_partial_ok),
        ("sync_partial_err", st.sync_partial_err),
        ("expired_keys", ks.expired_keys),
        ("evicted_keys", 0),
        ("keyspace_hits", ks.keyspace_hits),
        ("keyspace_misses", ks.keyspace_misses),
        ("pubsub_channels", len(getattr(server, "pubsub_channels", {}))),
        ("pubsub_patterns", len(getattr(server, "pubsub_patterns", {}))),
        ("latest_fork_usec", getattr(server.persistence, "latest_fork_usec", 0)),
        ("total_forks", getattr(server.persistence, "total_forks", 0)),
        ("total_error_replies", st.total_error_replies),
    ]


def _section_cpu(server: Server) -> list[tuple[str, Any]]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return [
        ("used_cpu_sys", f"{me.ru_stime:.6f}"),
        ("used_cpu_user", f"{me.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{kids.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{kids.ru_utime:.6f}"),
    ]


def _section_replication_default(server: Server) -> list[tuple[str, Any]]:
    return [
        ("role", "master"),
        ("connected_slaves", 0),
        ("master_replid", server.run_id),
        ("master_repl_offset", server.repl_offset),
    ]


def _section_keyspace(server: Server) -> list[tuple[str, Any]]:
    lines = []
    for db in server.keyspace.dbs:
        if db.data:
            lines.append((f"db{db.id}", f"keys={len(db.data)},expires={len(db.expires)},avg_ttl=0"))
    return lines


def _section_commandstats(server: Server) -> list[tuple[str, Any]]:
    lines = []
    for cmd in COMMANDS.values():
        if cmd.calls or cmd.rejected_calls or cmd.failed_calls:
            per_call = cmd.usec / cmd.calls if cmd.calls else 0.0
            lines.append(
                (
                    f"cmdstat_{cmd.name}",
                    f"calls={cmd.calls},usec={cmd.usec},usec_per_call={per_call:.2f},"
                    f"rejected_calls={cmd.rejected_calls},failed_calls={cmd.failed_calls}",
                )
            )
    return lines


# Section order as Redis prints it; persistence, replication and actors come from their subsystems.
DEFAULT_SECTIONS = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "actors",
    "keyspace",
]
EXTRA_SECTIONS = ["commandstats"]


def _section(server: Server, name: str) -> list[tuple[str, Any]] | None:
    builtin = {
        "server": _section_server,
        "clients": _section_clients,
        "memory": _section_memory,
        "stats": _section_stats,
        "cpu": _section_cpu,
        "keyspace": _section_keyspace,
        "commandstats": _section_commandstats,
    }
    if name in server.info_sections:
        return server.info_sections[name]()
    if name in builtin:
        return builtin[name](server)
    if name == "replication":
        return _section_replication_default(server)
    return None


# Section headers Redis spells other than capitalized.
_SECTION_TITLES = {"cpu": "CPU"}


def render_info(server: Server, wanted: list[str]) -> bytes:
    names: list[str] = []
    for name in wanted or ["default"]:
        name = name.lower()
        if name == "default":
            names += DEFAULT_SECTIONS
        elif name in ("all", "everything"):
            names += DEFAULT_SECTIONS + EXTRA_SECTIONS
        else:
            names.append(name)
    chunks = []
    for name in dict.fromkeys(names):
        lines = _section(server, name)
        if lines is None:
            continue
        title = _SECTION_TITLES.get(name) or name.capitalize()
        body = "".join(f"{k}:{v}\r\n" for k, v in lines)
        chunks.append(f"# {title}\r\n{body}")
    return "\r\n".join(chunks).encode()


@command("info", -1, "loading stale", (0, 0, 0), "server", "Get information and statistics about the server")
def cmd_info(client: Client, argv: list[bytes]) -> Any:
    return Verbatim(render_info(client.server, [a.decode("utf-8", "replace") for a in argv[1:]]))


# -- CONFIG ----------------------------------------------------------------------------------------------


@command(
    "config",
    -2,
    "admin loading stale",
    (0, 0, 0),
    "server",
    "A container for server configuration commands",
    subcommands=("get", "set", "resetstat", "help"),
)
def cmd_config(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    sub = check_subcommand("config", argv)
    if sub == b"get":
        found: dict[bytes, bytes] = {}
        for raw in argv[2:]:
            for name, value in server.config.match(raw.decode("utf-8", "replace")):
                found[name.encode()] = value.encode()
        return found
    if sub == b"set":
        if len(argv) < 4 or len(argv) % 2:
            raise errors.wrong_arity("config|set")
        pairs = [
            (argv[i].decode("utf-8", "replace"), argv[i + 1].decode("utf-8", "replace"))
            for i in range(2, len(argv), 2)
        ]
        names = [n.lower() for n, _ in pairs]
        if len(set(names)) != len(names):
            raise CommandError(
                f"ERR CONFIG SET failed (possibly related to argument '{names[0]}') - duplicate parameter"
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
        server.keyspace.keyspace_hits = server.keyspace.keyspace_misses = server.keyspace.expired_keys = 0
        for cmd in COMMANDS.values():
            cmd.calls = cmd.usec = cmd.failed_calls = cmd.rejected_calls = 0
        return OK
    if sub == b"help":
        return [
            b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"GET <pattern>",
            b"SET <directive> <value>",
            b"RESETSTAT",
            b"HELP",
        ]
    raise errors.unknown_subcommand(argv[1].decode("utf-8", "replace"), "config")


def _known(server: Server) -> set[str]:
    from actors.config import BY_NAME

    return set(BY_NAME)


# -- DEBUG -----------------------------------------------------------------------------------------------

DEBUG_REFUSED = (
    'ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", you can run it '
    "from a local connection, otherwise you need to set this option in the configuration file, and then "
    "restart the server."
)

# DEBUG subcommands added by other modules (persistence: RELOAD; supervisor: CRASH-ACTOR, KILL-NODE).
DEBUG_HANDLERS: dict[bytes, Any] = {}


def debug_allowed(client: Client) -> bool:
    mode = client.server.config["enable-debug-command"]
    if mode == "yes":
        return True
    if mode == "local":
        host = client.addr.rsplit(":", 1)[0]
        return (
            client.kind is not ClientKind.RESP
            or host in ("127.0.0.1", "::1", "localhost")
            or host.startswith("127.")
        )
    return False


@command(
    "debug",
    -2,
    "admin noscript loading stale",
    (0, 0, 0),
    "server",
    "A container for debugging commands",
    subcommands=(
        "digest",
        "digest-value",
        "sleep",
        "set-active-expire",
        "crash-actor",
        "kill-node",
        "reload",
        "help",
    ),
)
def cmd_debug(client: Client, argv: list[bytes]) -> Any:
    if not debug_allowed(client):
        raise CommandError(DEBUG_REFUSED)
    server = client.server
    sub = argv[1].lower()
    if sub == b"digest" and len(argv) == 2:
        return dataset_digest(server.keyspace).decode()  # a status reply, as in Redis
    if sub == b"digest-value":
        out = []
        for key in argv[2:]:
            # As in Redis: the value's digest without the key name, and logically expired keys still count.
            value = client.db.data.get(key)
            out.append("0" * 40 if value is None else bytes(object_digest(client.db, key, value)).hex())
        return out
    if sub == b"sleep" and len(argv) == 3:
        # As in Redis, this blocks the whole node: it exists to test what clients and replicas do then.
        time.sleep(max(_strtod(argv[2]), 0.0))
        return OK
    if sub == b"set-active-expire" and len(argv) == 3:
        server.active_expire_enabled = argv[2] != b"0"
        return OK
    handler = DEBUG_HANDLERS.get(sub)
    if handler is not None:
        return handler(client, argv)
    if sub == b"help":
        return [
            b"DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"DIGEST",
            b"DIGEST-VALUE <key> ...",
            b"SLEEP <seconds>",
            b"SET-ACTIVE-EXPIRE <0|1>",
            *[n.upper() for n in DEBUG_HANDLERS],
            b"HELP",
        ]
    raise CommandError(
        f"ERR unknown subcommand or wrong number of arguments for '{argv[1].decode('utf-8', 'replace')[:128]}'. "
        "Try DEBUG HELP."
    )


_STRTOD_PREFIX = re.compile(rb"\s*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")


def _strtod(raw: bytes) -> float:
    """C's strtod as DEBUG SLEEP uses it: the longest numeric prefix, 0 when there is none."""
    match = _STRTOD_PREFIX.match(raw)
    return float(match.group(0)) if match else 0.0


# -- SHUTDOWN --------------------------------------------------------------------------------------------


@command(
    "shutdown",
    -1,
    "admin loading stale deny-multi",
    (0, 0, 0),
    "server",
    "Synchronously save the dataset to disk and then shut down the server",
)
def cmd_shutdown(client: Client, argv: list[bytes]) -> Any:
    save: bool | None = None
    for raw in argv[1:]:
        opt = raw.lower()
        if opt == b"nosave":
            save = False
        elif opt == b"save":
            save = True
        elif opt in (b"now", b"force", b"abort"):
            continue
        else:
            raise CommandError(errors.SYNTAX)
    from actors.server.server import BLOCKED

    error = client.server.request_shutdown(save)
    if error:
        raise CommandError(error)
    # No reply: the node exits and clients see the connection close, as with Redis (redis-py expects that).
    return BLOCKED


@command(
    "monitor", 1, "admin noscript loading stale deny-multi", (0, 0, 0), "server", "Listen for all requests"
)
def cmd_monitor(client: Client, argv: list[bytes]) -> Any:
    """From now on the client gets every command the node runs, one status line each (Redis's format);
    administrative commands are not shown, nor commands refused before they run."""
    if client.kind is not ClientKind.RESP:
        raise CommandError("ERR MONITOR is only available over RESP")
    client.server.add_monitor(client)
    return OK


_SLOWLOG_HELP = [
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
]


@command(
    "slowlog",
    -2,
    "admin random loading stale",
    (0, 0, 0),
    "server",
    "A container for slow log commands",
    subcommands=("get", "len", "reset", "help"),
)
def cmd_slowlog(client: Client, argv: list[bytes]) -> Any:
    """SLOWLOG GET [count] | LEN | RESET | HELP: commands that ran for slowlog-log-slower-than microseconds
    or more (timed in Server.call; the fast lane's plain GET/SET are not timed one by one)."""
    server = client.server
    sub = check_subcommand("slowlog", argv)
    if sub == b"help":
        return _SLOWLOG_HELP
    if sub == b"len":
        return len(server.slowlog)
    if sub == b"reset":
        server.slowlog.clear()
        return OK
    if sub == b"get" and len(argv) <= 3:
        count = 10
        if len(argv) == 3:
            count = parse_int(argv[2], "ERR count should be greater than or equal to -1")
            if count < -1:
                raise CommandError("ERR count should be greater than or equal to -1")
        entries = list(server.slowlog) if count == -1 else list(server.slowlog)[:count]
        return [
            [entry_id, ts, usec, list(args), addr, name] for entry_id, ts, usec, args, addr, name in entries
        ]
    raise CommandError(
        f"ERR unknown subcommand or wrong number of arguments for '{argv[1].decode('utf-8', 'replace')[:128]}'. "
        "Try SLOWLOG HELP."
    )
