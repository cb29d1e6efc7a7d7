"""Configuration directives: their types, defaults, validation, and the live values a node runs with.

One table serves the config file, the command line (``--port 7001``) and ``CONFIG GET``/``CONFIG SET``, so a
directive is validated the same way wherever it comes from. Reading files is the launcher's business
(launcher/config.py); this module only knows directives and values. Directives that redactor accepts for
compatibility with a stock redis.conf but does not act on are marked ``inert`` and stored as given.

Values are Python objects: bool, int (sizes in bytes), str, ``list[tuple[int, int]]`` for ``save`` points,
``tuple[str, int] | None`` for ``replicaof``, ``list[str]`` for ``bind``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class ConfigError(Exception):
    """A directive or value that cannot be used. ``str(self)`` reads like Redis's config errors."""


def parse_bool(args: list[str]) -> bool:
    value = args[0].lower()
    if value == "yes":
        return True
    if value == "no":
        return False
    raise ConfigError("argument must be 'yes' or 'no'")


_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
}


def parse_memory(text: str) -> int:
    """Redis's memtoull: ``1gb`` = 2**30, ``1g`` = 10**9, plain numbers are bytes."""
    lowered = text.strip().lower()
    digits = lowered.rstrip("kmgb")
    unit = lowered[len(digits) :]
    if unit not in _MEMORY_UNITS or not digits or not digits.lstrip("-").isdigit():
        raise ConfigError("argument must be a memory value")
    return int(digits) * _MEMORY_UNITS[unit]


def _int_parser(low: int, high: int, memory: bool = False) -> Callable[[list[str]], int]:
    def parse(args: list[str]) -> int:
        try:
            value = parse_memory(args[0]) if memory else int(args[0], 10)
        except ValueError:
            raise ConfigError("argument couldn't be parsed into an integer") from None
        if not low <= value <= high:
            raise ConfigError(f"argument must be between {low} and {high} inclusive")
        return value

    return parse


def _enum_parser(*choices: str) -> Callable[[list[str]], str]:
    def parse(args: list[str]) -> str:
        value = args[0].lower()
        if value not in choices:
            raise ConfigError(f"argument(s) must be one of the following: {', '.join(choices)}")
        return value

    return parse


def _hz_parser(args: list[str]) -> int:
    """Redis accepts any non-negative hz and clamps it to 1..500 (CONFIG_MIN_HZ, CONFIG_MAX_HZ)."""
    return min(max(_int_parser(0, 2**31 - 1)(args), 1), 500)


def _str_parser(args: list[str]) -> str:
    return args[0]


def _save_parser(args: list[str]) -> list[tuple[int, int]]:
    """``save 3600 1 300 100`` or ``save ""``; several ``save`` lines in a file accumulate (see Config.set)."""
    if len(args) == 1:
        # `save ""` disables; `--save "3600 1 300 100"` (one quoted argument) is split as redis-server does.
        args = args[0].split()
        if not args:
            return []
    if len(args) % 2:
        raise ConfigError("Invalid save parameters")
    points = []
    for i in range(0, len(args), 2):
        try:
            seconds, changes = int(args[i]), int(args[i + 1])
        except ValueError:
            raise ConfigError("Invalid save parameters") from None
        if seconds < 1 or changes < 0:
            raise ConfigError("Invalid save parameters")
        points.append((seconds, changes))
    return points


def _replicaof_parser(args: list[str]) -> tuple[str, int] | None:
    if len(args) == 1:
        args = args[0].split()
    if len(args) == 2 and args[0].lower() == "no" and args[1].lower() == "one":
        return None
    if len(args) != 2:
        raise ConfigError("wrong number of arguments")
    try:
        port = int(args[1])
    except ValueError:
        raise ConfigError("Invalid master port") from None
    if not 0 < port < 65536:
        raise ConfigError("Invalid master port")
    return (args[0], port)


def _bind_parser(args: list[str]) -> list[str]:
    if len(args) == 1:
        args = args[0].split()
    return [a for a in args if a]


def _daemonize_parser(args: list[str]) -> bool:
    if parse_bool(args):
        raise ConfigError(
            "daemonize yes is not supported: redactor runs in the foreground (use `redactor up`)"
        )
    return False


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return ""
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    if isinstance(value, list):
        return " ".join(" ".join(str(x) for x in v) if isinstance(v, tuple) else str(v) for v in value)
    return str(value)


@dataclass(frozen=True, slots=True)
class Directive:
    name: str
    parse: Callable[[list[str]], Any]
    default: Any
    mutable: bool = True  # CONFIG SET may change it at runtime
    nargs: int = 1  # -1: any number of arguments (save, bind, replicaof)
    inert: bool = False  # accepted for redis.conf compatibility, stored, not acted on
    aliases: tuple[str, ...] = field(default=())


_MAXINT = 2**63 - 1
LLONG = (-(2**63), _MAXINT)

DIRECTIVES: list[Directive] = [
    # Network
    Directive("bind", _bind_parser, ["127.0.0.1", "-::1"], mutable=False, nargs=-1),
    Directive("port", _int_parser(0, 65535), 6379, mutable=False),
    Directive("bus-port", _int_parser(0, 65535), 0, mutable=False),  # 0: port + 10000, as Redis Cluster's bus
    Directive("protected-mode", parse_bool, True),
    Directive("tcp-backlog", _int_parser(0, 65535), 511, mutable=False),
    Directive("timeout", _int_parser(0, 2**31 - 1), 0),
    Directive("tcp-keepalive", _int_parser(0, 2**31 - 1), 300),
    Directive("maxclients", _int_parser(1, 2**31 - 1), 10000),
    Directive("slowlog-log-slower-than", _int_parser(-1, 2**63 - 1), 10000),  # microseconds; -1: off
    Directive("slowlog-max-len", _int_parser(0, 2**63 - 1), 128),
    Directive("requirepass", _str_parser, ""),
    Directive("proto-max-bulk-len", _int_parser(1024 * 1024, _MAXINT, memory=True), 512 * 1024 * 1024),
    Directive("client-query-buffer-limit", _int_parser(1024 * 1024, _MAXINT, memory=True), 1024**3),
    # General
    Directive("daemonize", _daemonize_parser, False, mutable=False),
    Directive("loglevel", _enum_parser("debug", "verbose", "notice", "warning", "nothing"), "notice"),
    Directive("logfile", _str_parser, "", mutable=False),
    Directive("databases", _int_parser(1, 2**31 - 1), 16, mutable=False),
    Directive("hz", _hz_parser, 10),
    # Milliseconds a script runs before other clients get -BUSY (actors/scripting); 0: at once.
    Directive("busy-reply-threshold", _int_parser(0, _MAXINT), 5000, aliases=("lua-time-limit",)),
    Directive("enable-debug-command", _enum_parser("no", "yes", "local"), "no", mutable=False),
    Directive("pidfile", _str_parser, "", mutable=False),
    # Cluster (actors/cluster): cluster-enabled and the file are immutable, as in Redis
    Directive("cluster-enabled", parse_bool, False, mutable=False),
    Directive("cluster-config-file", _str_parser, "nodes.conf", mutable=False),
    Directive("cluster-node-timeout", _int_parser(0, _MAXINT), 15000),  # milliseconds
    Directive("cluster-require-full-coverage", parse_bool, True),
    Directive("cluster-allow-reads-when-down", parse_bool, False),
    Directive("cluster-replica-no-failover", parse_bool, False, aliases=("cluster-slave-no-failover",)),
    # Snapshotting
    Directive("save", _save_parser, [(3600, 1), (300, 100), (60, 10000)], nargs=-1),
    Directive("dir", _str_parser, "."),
    Directive("dbfilename", _str_parser, "dump.rdb"),
    Directive("rdbcompression", parse_bool, True),
    Directive("rdbchecksum", parse_bool, True),
    Directive("stop-writes-on-bgsave-error", parse_bool, True),
    # Append only file
    Directive("appendonly", parse_bool, False),
    Directive("appendfilename", _str_parser, "appendonly.aof", mutable=False),
    Directive("appenddirname", _str_parser, "appendonlydir", mutable=False),
    Directive("appendfsync", _enum_parser("always", "everysec", "no"), "everysec"),
    Directive("no-appendfsync-on-rewrite", parse_bool, False),
    Directive("auto-aof-rewrite-percentage", _int_parser(0, 2**31 - 1), 100),
    Directive("auto-aof-rewrite-min-size", _int_parser(0, _MAXINT, memory=True), 64 * 1024 * 1024),
    Directive("aof-load-truncated", parse_bool, True),
    Directive("aof-use-rdb-preamble", parse_bool, True),
    Directive("aof-timestamp-enabled", parse_bool, False),
    # Replication
    Directive("replicaof", _replicaof_parser, None, nargs=-1, aliases=("slaveof",)),
    Directive("masterauth", _str_parser, ""),
    Directive("replica-read-only", parse_bool, True, aliases=("slave-read-only",)),
    Directive("replica-serve-stale-data", parse_bool, True, aliases=("slave-serve-stale-data",)),
    Directive("repl-backlog-size", _int_parser(1, _MAXINT, memory=True), 1024 * 1024),
    Directive("repl-backlog-ttl", _int_parser(0, 2**31 - 1), 3600),
    Directive("repl-ping-replica-period", _int_parser(1, 2**31 - 1), 10, aliases=("repl-ping-slave-period",)),
    Directive("repl-timeout", _int_parser(1, 2**31 - 1), 60),
    Directive("repl-diskless-sync", parse_bool, True),
    Directive("repl-diskless-sync-delay", _int_parser(0, 2**31 - 1), 5),
    Directive("min-replicas-to-write", _int_parser(0, 2**31 - 1), 0, aliases=("min-slaves-to-write",)),
    Directive("min-replicas-max-lag", _int_parser(0, 2**31 - 1), 10, aliases=("min-slaves-max-lag",)),
    Directive("replica-priority", _int_parser(0, 2**31 - 1), 100, aliases=("slave-priority",)),
    Directive("replica-announce-ip", _str_parser, "", aliases=("slave-announce-ip",)),
    Directive("replica-announce-port", _int_parser(0, 65535), 0, aliases=("slave-announce-port",)),
    # Supervision (redactor's own): restart intensity of the node's actor supervisor.
    Directive("supervisor-max-restarts", _int_parser(0, 1000), 5),
    Directive("supervisor-restart-window-seconds", _int_parser(1, 3600), 60),
    # Memory
    Directive("maxmemory", _int_parser(0, _MAXINT, memory=True), 0),
    Directive(
        "maxmemory-policy",
        _enum_parser(
            "volatile-lru",
            "allkeys-lru",
            "volatile-lfu",
            "allkeys-lfu",
            "volatile-random",
            "allkeys-random",
            "volatile-ttl",
            "noeviction",
        ),
        "noeviction",
    ),
]

# Directives of a stock Redis 7.0 redis.conf that redactor accepts and stores without acting on them, so
# users' existing files load unchanged.
_INERT_NAMES = (
    "unixsocket unixsocketperm tcp-keepalive-interval supervised syslog-enabled syslog-ident syslog-facility "
    "crash-log-enabled crash-memcheck-enabled always-show-logo set-proc-title proc-title-template "
    "locale-collate sanitize-dump-payload rdb-del-sync-files repl-diskless-load repl-disable-tcp-nodelay "
    "repl-diskless-sync-max-replicas replica-ignore-maxmemory replica-lazy-flush lazyfree-lazy-eviction "
    "lazyfree-lazy-expire lazyfree-lazy-server-del lazyfree-lazy-user-del lazyfree-lazy-user-flush "
    "oom-score-adj oom-score-adj-values disable-thp appendfsync-on-rewrite aof-rewrite-incremental-fsync "
    "rdb-save-incremental-fsync "
    "latency-monitor-threshold notify-keyspace-events hash-max-listpack-entries hash-max-listpack-value "
    "hash-max-ziplist-entries hash-max-ziplist-value list-max-listpack-size list-max-ziplist-size "
    "list-compress-depth set-max-intset-entries zset-max-listpack-entries zset-max-listpack-value "
    "zset-max-ziplist-entries zset-max-ziplist-value hll-sparse-max-bytes stream-node-max-bytes "
    "stream-node-max-entries activerehashing client-output-buffer-limit dynamic-hz jemalloc-bg-thread "
    "activedefrag maxmemory-samples maxmemory-eviction-tenacity io-threads io-threads-do-reads "
    "tls-port acllog-max-len lfu-log-factor "
    "lfu-decay-time active-expire-effort shutdown-timeout shutdown-on-sigint shutdown-on-sigterm "
    "ignore-warnings enable-protected-configs enable-module-command latency-tracking "
    "latency-tracking-info-percentiles repl-diskless-sync-max-replicas replica-announced "
    "cluster-announce-ip tracking-table-max-keys propagation-error-behavior lazyfree-lazy-user-flush"
).split()
# What redis-server 7.0 reports for them in CONFIG GET, so tools that read these see familiar values.
_INERT_DEFAULTS = {
    "unixsocketperm": "0",
    "supervised": "no",
    "syslog-enabled": "no",
    "syslog-ident": "redis",
    "syslog-facility": "local0",
    "crash-log-enabled": "yes",
    "crash-memcheck-enabled": "yes",
    "always-show-logo": "no",
    "set-proc-title": "yes",
    "proc-title-template": "{title} {listen-addr} {server-mode}",
    "sanitize-dump-payload": "no",
    "rdb-del-sync-files": "no",
    "repl-diskless-load": "disabled",
    "repl-disable-tcp-nodelay": "no",
    "repl-diskless-sync-max-replicas": "0",
    "replica-ignore-maxmemory": "yes",
    "replica-lazy-flush": "no",
    "lazyfree-lazy-eviction": "no",
    "lazyfree-lazy-expire": "no",
    "lazyfree-lazy-server-del": "no",
    "lazyfree-lazy-user-del": "no",
    "lazyfree-lazy-user-flush": "no",
    "oom-score-adj": "no",
    "oom-score-adj-values": "0 200 800",
    "disable-thp": "yes",
    "aof-rewrite-incremental-fsync": "yes",
    "rdb-save-incremental-fsync": "yes",
    "latency-monitor-threshold": "0",
    "hash-max-listpack-entries": "512",
    "hash-max-listpack-value": "64",
    "hash-max-ziplist-entries": "512",
    "hash-max-ziplist-value": "64",
    "list-max-listpack-size": "-2",
    "list-max-ziplist-size": "-2",
    "list-compress-depth": "0",
    "set-max-intset-entries": "512",
    "zset-max-listpack-entries": "128",
    "zset-max-listpack-value": "64",
    "zset-max-ziplist-entries": "128",
    "zset-max-ziplist-value": "64",
    "hll-sparse-max-bytes": "3000",
    "stream-node-max-bytes": "4096",
    "stream-node-max-entries": "100",
    "activerehashing": "yes",
    "client-output-buffer-limit": "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    "dynamic-hz": "yes",
    "jemalloc-bg-thread": "yes",
    "activedefrag": "no",
    "maxmemory-samples": "5",
    "maxmemory-eviction-tenacity": "10",
    "io-threads": "1",
    "io-threads-do-reads": "no",
    "tls-port": "0",
    "acllog-max-len": "128",
    "lfu-log-factor": "10",
    "lfu-decay-time": "1",
    "active-expire-effort": "1",
    "shutdown-timeout": "10",
    "shutdown-on-sigint": "default",
    "shutdown-on-sigterm": "default",
    "enable-protected-configs": "no",
    "enable-module-command": "no",
    "latency-tracking": "yes",
    "latency-tracking-info-percentiles": "50 99 99.9",
    "replica-announced": "yes",
    "tracking-table-max-keys": "1000000",
    "propagation-error-behavior": "ignore",
}
for _name in dict.fromkeys(_INERT_NAMES):
    DIRECTIVES.append(
        Directive(_name, lambda args: " ".join(args), _INERT_DEFAULTS.get(_name, ""), nargs=-1, inert=True)
    )

BY_NAME: dict[str, Directive] = {}
for _d in DIRECTIVES:
    BY_NAME[_d.name] = _d
    for _alias in _d.aliases:
        BY_NAME[_alias] = _d


class Config:
    """The live configuration of one node. Listeners run after a value changes (CONFIG SET)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {d.name: d.default for d in DIRECTIVES}
        self._listeners: dict[str, list[Callable[[Any], None]]] = {}
        # Directives given more than once in a file that accumulate rather than replace (save).
        self._seen_in_file: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        return self.values[BY_NAME[name].name]

    def directive(self, name: str) -> Directive:
        directive = BY_NAME.get(name.lower())
        if directive is None:
            raise ConfigError("Bad directive or wrong number of arguments")
        return directive

    def apply(self, name: str, args: list[str], from_file: bool = False) -> None:
        """Validate and store one directive. Raises ``ConfigError`` with Redis's wording."""
        directive = self.directive(name)
        if directive.nargs >= 0 and len(args) != directive.nargs:
            raise ConfigError("wrong number of arguments")
        if not args:
            raise ConfigError("wrong number of arguments")
        value = directive.parse(args)
        if from_file and directive.name == "save" and directive.name in self._seen_in_file and value:
            value = self.values["save"] + value
        if from_file:
            self._seen_in_file.add(directive.name)
        self.values[directive.name] = value

    def set_runtime(self, name: str, args: list[str]) -> None:
        """CONFIG SET: like ``apply`` but refuses immutable directives and notifies listeners."""
        directive = BY_NAME.get(name.lower())
        if directive is None:
            raise ConfigError(f"Unknown option or number of arguments for CONFIG SET - '{name}'")
        if not directive.mutable:
            raise ConfigError(
                f"CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
            )
        if directive.name in ("save", "bind", "replicaof") and len(args) == 1:
            args = args[0].split() or [""]
        old = self.values[directive.name]
        try:
            if directive.nargs >= 0 and len(args) != directive.nargs:
                raise ConfigError("wrong number of arguments")
            self.values[directive.name] = directive.parse(args)
            for listener in self._listeners.get(directive.name, []):
                listener(self.values[directive.name])
        except ConfigError as exc:
            self.values[directive.name] = old
            raise ConfigError(f"CONFIG SET failed (possibly related to argument '{name}') - {exc}") from None
        except Exception:
            self.values[directive.name] = old
            raise

    def on_change(self, name: str, listener: Callable[[Any], None]) -> None:
        self._listeners.setdefault(BY_NAME[name].name, []).append(listener)

    def render(self, name: str) -> str:
        return _render(self.values[BY_NAME[name].name])

    def match(self, pattern: str) -> list[tuple[str, str]]:
        """CONFIG GET: (name, rendered value) for every directive (or alias) matching the glob pattern."""
        pattern = pattern.lower()
        found: dict[str, str] = {}
        for name, directive in BY_NAME.items():
            if fnmatch.fnmatchcase(name, pattern):
                found[name] = _render(self.values[directive.name])
        return sorted(found.items())
