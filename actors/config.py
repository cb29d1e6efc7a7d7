"""Configuration directives: their types, defaults, validation, and the live values a node runs with.

One table serves the config file, the command line (``--port 7001``) and ``CONFIG GET``/``CONFIG SET``, so a
directive is validated the same way wherever it comes from. Reading files is the launcher's business
(launcher/config.py); this module only knows directives and values. Directives that redactor accepts for
compatibility with a stock redis.conf but does not act on are marked ``inert``: their values are still read
and checked as Redis reads them (actors/config_values.py has the number rules), then stored.

Values are Python objects: bool, int (sizes in bytes), str, ``list[tuple[int, int]]`` for ``save`` points,
``tuple[str, int] | None`` for ``replicaof``, ``list[str]`` for ``bind``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from actors.config_values import (
    ConfigError,
    announced_hostname,
    int_parser,
    memory_or_percent,
    parse_memory,
    parse_proc_title_template,
)
from actors.data import events
from protocol.ports import bus_port_for

__all__ = ["ConfigError", "parse_memory"]  # (re-exported: the rest of the node reads them from here)


def parse_bool(args: list[str]) -> bool:
    value = args[0].lower()
    if value == "yes":
        return True
    if value == "no":
        return False
    raise ConfigError("argument must be 'yes' or 'no'")


def parse_activedefrag(args: list[str]) -> bool:
    """``activedefrag``: only ``no``. pymalloc cannot move live objects, so there is nothing to defragment;
    Redis built without its modified jemalloc refuses ``yes`` with this same message (isValidActiveDefrag)."""
    if parse_bool(args):
        raise ConfigError(
            "Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified "
            "Jemalloc like the one shipped by default with the Redis source distribution"
        )
    return False


def _enum_parser(*choices: str) -> Callable[[list[str]], str]:
    def parse(args: list[str]) -> str:
        value = args[0].lower()
        if value not in choices:
            raise ConfigError(f"argument(s) must be one of the following: {', '.join(choices)}")
        return value

    return parse


def _oom_mode_parser(args: list[str]) -> str:
    """oom-score-adj: no | yes | relative | absolute (yes is relative, and CONFIG GET says yes for both)."""
    mode = _enum_parser("no", "yes", "relative", "absolute")(args)
    return "yes" if mode == "relative" else mode


def _oom_values_parser(args: list[str]) -> tuple[int, int, int]:
    """oom-score-adj-values: master, replica and background child values, each -2000..2000."""
    words = " ".join(args).split()
    if len(words) != 3:
        raise ConfigError("wrong number of arguments")
    try:
        values = tuple(int(word, 10) for word in words)
    except ValueError:
        values = (9999,)
    if not all(-2000 <= v <= 2000 for v in values):
        raise ConfigError("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")
    return values[0], values[1], values[2]


def _hz_parser(args: list[str]) -> int:
    """Redis accepts any non-negative hz and clamps it to 1..500 (CONFIG_MIN_HZ, CONFIG_MAX_HZ)."""
    return min(max(int_parser(0, 2**31 - 1)(args), 1), 500)


def _percentiles_parser(args: list[str]) -> tuple[str, ...]:
    """latency-tracking-info-percentiles: doubles in [0, 100], kept as Redis renders them ("%f", trimmed)."""
    found = []
    for word in (w for arg in args for w in arg.split()):
        try:
            value = float(word)
        except ValueError:
            raise ConfigError("Invalid latency-tracking-info-percentiles parameters") from None
        if not 0.0 <= value <= 100.0:  # NaN fails this too
            raise ConfigError("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")
        text = f"{value:f}"
        found.append(text.rstrip("0").rstrip(".") if "." in text else text)
    return tuple(found)


def _str_parser(args: list[str]) -> str:
    return args[0]


# shutdown-on-sigint / -sigterm's flags in Redis's order; "default" is none of them.
SHUTDOWN_FLAGS = ("save", "nosave", "now", "force")


def _shutdown_flags_parser(args: list[str]) -> str:
    """What SIGINT / SIGTERM do, as SHUTDOWN's flags: ``default`` or some of save|nosave, now, force."""
    words = {word.lower() for arg in args for word in arg.split()}
    unknown = words - {"default", *SHUTDOWN_FLAGS}
    if unknown or not words:
        raise ConfigError("argument(s) must be one of the following: default, save, nosave, now, force")
    if {"save", "nosave"} <= words:
        raise ConfigError("shutdown options SAVE and NOSAVE can't be used simultaneously")
    return " ".join(flag for flag in SHUTDOWN_FLAGS if flag in words) or "default"


def _octal_parser(high: int) -> Callable[[list[str]], str]:
    """An octal number (unixsocketperm), kept as its octal digits (CONFIG GET shows ``700``); read as Redis's
    strtoll(value, &end, 8) with nothing left after it: "" reads as 0, a space or sign before digits is allowed."""

    def parse(args: list[str]) -> str:
        text = args[0]
        if text and _OCTAL.fullmatch(text) is None:
            raise ConfigError("argument couldn't be parsed as an octal number")
        value = int(text.strip(), 8) if text else 0
        if not 0 <= value <= high:
            raise ConfigError(f"argument must be between 0 and {high:o} inclusive")
        return f"{value:o}"

    return parse


_OCTAL = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-7]+")


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
    if not 0 <= port < 65536:  # (0, as Redis takes it: a replica of a master it never reaches)
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


# client-output-buffer-limit's classes, as CONFIG GET shows them (``replica`` is accepted for ``slave``).
OUTPUT_BUFFER_CLASSES = ("normal", "slave", "pubsub")


def _output_buffer_limit_parser(args: list[str]) -> dict[str, tuple[int, int, int]]:
    """client-output-buffer-limit <class> <hard> <soft> <soft seconds> [<class> ...]: the classes given, as
    {class: (hard bytes, soft bytes, soft seconds)}; Config merges them into the current value as Redis does."""
    if not args:
        return {}  # CONFIG SET of "": nothing to change
    words = " ".join(args).split()
    if not words or len(words) % 4:
        raise ConfigError("Wrong number of arguments in buffer limit configuration.")
    limits: dict[str, tuple[int, int, int]] = {}
    for i in range(0, len(words), 4):
        name = words[i].lower()
        name = "slave" if name == "replica" else name
        if name not in OUTPUT_BUFFER_CLASSES:
            raise ConfigError("Invalid client class specified in buffer limit configuration.")
        try:
            hard, soft = parse_memory(words[i + 1]), parse_memory(words[i + 2])
            seconds = int(words[i + 3], 10)
        except (ConfigError, ValueError):
            raise ConfigError(_OBUF_BAD_VALUE) from None
        if hard < 0 or soft < 0 or seconds < 0:
            raise ConfigError(_OBUF_BAD_VALUE)
        limits[name] = (hard, soft, seconds)
    return limits


_OBUF_BAD_VALUE = "Error in hard, soft or soft_seconds setting in buffer limit configuration."


def _tls_bus_only(name: str) -> Callable[[list[str]], bool]:
    """tls-replication / tls-cluster: only ``no``; node-to-node links run over the bus (CURVE keys there)."""

    def parse(args: list[str]) -> bool:
        if parse_bool(args):
            raise ConfigError(
                f"{name} yes is not supported: replication and cluster links run over the node bus (ZeroMQ), "
                "not RESP; encrypt and authenticate them with the bus-curve-* directives (README: Locked doors)"
            )
        return False

    return parse


def _tls_ciphersuites_parser(args: list[str]) -> str:
    if args[0].strip():
        raise ConfigError(
            "tls-ciphersuites is not supported: Python's ssl module cannot choose TLS 1.3 cipher suites "
            "(OpenSSL's defaults are used)"
        )
    return ""


def _notify_events_parser(args: list[str]) -> events.EventClasses:
    """notify-keyspace-events: the class bits, read back as Redis's normalized string (``KEA`` -> ``AKE``)."""
    flags = events.flags_from_string("".join(args))
    if flags is None:
        raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    return events.EventClasses(flags)


def _render(value: Any) -> str:
    if isinstance(value, dict):  # client-output-buffer-limit
        return " ".join(f"{name} {h} {s} {t}" for name, (h, s, t) in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return ""
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    if isinstance(value, list):
        return " ".join(" ".join(str(x) for x in v) if isinstance(v, tuple) else str(v) for v in value)
    return str(value)


class Directive(NamedTuple):
    name: str
    parse: Callable[[list[str]], Any]
    default: Any
    mutable: bool = True  # CONFIG SET may change it at runtime
    nargs: int = 1  # -1: any number of arguments (save, bind, replicaof)
    inert: bool = False  # accepted for redis.conf compatibility, stored, not acted on
    merges: bool = (
        False  # a dict value: a setting replaces only the keys it names (client-output-buffer-limit)
    )
    aliases: tuple[str, ...] = ()


# Directives Redis 7.0 changes at runtime (bind, port, tls-*) and the cluster bus's own, which this node sets only
# at start: CONFIG SET to the value they already have is a no-op (CONFIG GET * round-trips), another value is
# refused as immutable.
_SAME_VALUE_ONLY = frozenset(
    (
        "bind",
        "port",
        "tls-auth-clients",
        "tls-cluster",
        "tls-replication",
        "tls-key-file-pass",
        "bus-port",
        "bus-curve-secret-key-file",
        "bus-curve-trusted-keys-file",
    )
)

_MAXINT = 2**63 - 1
# CONFIG_REPL_BACKLOG_MIN_SIZE: the smallest replication backlog CONFIG SET leaves in force.
REPL_BACKLOG_MIN_BYTES = 16 * 1024
LLONG = (-(2**63), _MAXINT)

DIRECTIVES: list[Directive] = [
    # Network
    Directive("bind", _bind_parser, ["127.0.0.1", "-::1"], mutable=False, nargs=-1),
    Directive("port", int_parser(0, 65535), 6379),  # CONFIG SET moves the listeners (loop/listeners.py)
    Directive("bus-port", int_parser(0, 65535), 0, mutable=False),  # 0: port + 10000, as Redis Cluster's bus
    Directive("protected-mode", parse_bool, True),
    Directive("tcp-backlog", int_parser(0, 2**31 - 1), 511, mutable=False),
    Directive("timeout", int_parser(0, 2**31 - 1), 0),
    Directive("tcp-keepalive", int_parser(0, 2**31 - 1), 300),
    Directive("maxclients", int_parser(1, 2**32 - 1), 10000),
    # The bus's door (actors/bus/admission.py): peers that have not authenticated yet, how many may be
    # connected at once and how long one may stay idle before it is dropped.
    Directive("bus-max-unauthenticated-peers", int_parser(1, 2**31 - 1), 128),
    Directive("bus-auth-timeout-ms", int_parser(100, 2**31 - 1), 5000),
    # ZeroMQ CURVE on the bus (actors/bus/curve.py; keys from `redactor keygen`): both or neither.
    Directive("bus-curve-secret-key-file", _str_parser, "", mutable=False),
    Directive("bus-curve-trusted-keys-file", _str_parser, "", mutable=False),
    Directive("slowlog-log-slower-than", int_parser(-1, 2**63 - 1), 10000),  # microseconds; -1: off
    Directive("slowlog-max-len", int_parser(0, 2**63 - 1), 128),
    # The kernel's OOM-killer preference per process class (actors/server/oom_score.py).
    Directive("oom-score-adj", _oom_mode_parser, "no"),
    Directive("oom-score-adj-values", _oom_values_parser, (0, 200, 800), nargs=-1),
    # Test knob (hidden, as Redis's): microseconds the RDB writer sleeps after each key (rdb/writer.py).
    Directive("rdb-key-save-delay", int_parser(-(2**31), 2**31 - 1), 0),
    # Test knob (hidden, as Redis's): microseconds each key loaded takes longer (persistence/loading.py).
    Directive("key-load-delay", int_parser(-(2**31), 2**31 - 1), 0),
    # What a replica does with a failing command from its master, and a load with one of the AOF's: log it, or
    # abort (actors/panic.py; read in replication/apply.py and persistence/aof/replay.py).
    Directive("replica-ignore-disk-write-errors", parse_bool, False),  # actors/server/server_state.py
    Directive("propagation-error-behavior", _enum_parser("ignore", "panic", "panic-on-replicas"), "ignore"),
    # How many bytes Redis loads between two event-loop runs (hidden): inert here, where the RDB parse runs in
    # a worker thread and AOF replay in 20 ms slices, so the loop answers throughout any load.
    Directive(
        "loading-process-events-interval-bytes", int_parser(1024, 2**31 - 1), 2 * 1024 * 1024, inert=True
    ),
    Directive("requirepass", _str_parser, ""),
    # ACL (actors/server/acl.py): the ACL file, redis.conf's `user` lines (they accumulate; not in CONFIG GET),
    # and how many ACL LOG entries are kept.
    Directive("aclfile", _str_parser, "", mutable=False),
    Directive("user", lambda args: [args], [], mutable=False, nargs=-1),
    # redis.conf's `rename-command OLD NEW` lines, in order (they accumulate; not in CONFIG GET): the server's
    # command table applies them (actors/commands/__init__.py's apply_renames; launcher/config.py checks each).
    Directive("rename-command", lambda args: [(args[0], args[1])], [], mutable=False, nargs=2),
    Directive("acllog-max-len", int_parser(0, 2**63 - 1), 128),
    # The channels a new user, a new selector or ACL SETUSER's `reset` starts with (actors/server/acl.py).
    Directive("acl-pubsub-default", _enum_parser("allchannels", "resetchannels"), "resetchannels"),
    Directive("proto-max-bulk-len", int_parser(1024 * 1024, _MAXINT, memory=True), 512 * 1024 * 1024),
    Directive(
        "client-query-buffer-limit", int_parser(1024 * 1024, _MAXINT, memory=True, unsigned=True), 1024**3
    ),
    # TLS on the RESP port (actors/server/tls.py builds the context; set at start, as files are read then)
    Directive("tls-port", int_parser(0, 65535), 0, mutable=False),
    Directive("tls-cert-file", _str_parser, "", mutable=False),
    Directive("tls-key-file", _str_parser, "", mutable=False),
    Directive("tls-key-file-pass", _str_parser, "", mutable=False),
    Directive("tls-ca-cert-file", _str_parser, "", mutable=False),
    Directive("tls-ca-cert-dir", _str_parser, "", mutable=False),
    Directive("tls-auth-clients", _enum_parser("no", "yes", "optional"), "yes", mutable=False),
    Directive("tls-protocols", _str_parser, "", mutable=False),
    Directive("tls-ciphers", _str_parser, "", mutable=False),
    Directive("tls-ciphersuites", _tls_ciphersuites_parser, "", mutable=False),
    Directive("tls-prefer-server-ciphers", parse_bool, False, mutable=False),
    Directive("tls-replication", _tls_bus_only("tls-replication"), False, mutable=False),
    Directive("tls-cluster", _tls_bus_only("tls-cluster"), False, mutable=False),
    # General
    Directive("daemonize", _daemonize_parser, False, mutable=False),
    Directive("loglevel", _enum_parser("debug", "verbose", "notice", "warning"), "notice"),
    Directive("logfile", _str_parser, "", mutable=False),
    Directive("databases", int_parser(1, 2**31 - 1), 16, mutable=False),
    Directive("hz", _hz_parser, 10),
    # Milliseconds a script runs before other clients get -BUSY (actors/scripting); 0: at once.
    Directive("busy-reply-threshold", int_parser(0, _MAXINT), 5000, aliases=("lua-time-limit",)),
    Directive("enable-debug-command", _enum_parser("no", "yes", "local"), "no", mutable=False),
    # CONFIG SET of dir / dbfilename (Redis's PROTECTED_CONFIG): refused unless yes, or local and the client is.
    Directive("enable-protected-configs", _enum_parser("no", "yes", "local"), "no", mutable=False),
    # No modules to load (MODULE is refused whatever this says); kept for redis.conf files that name it.
    Directive("enable-module-command", _enum_parser("no", "yes", "local"), "no", mutable=False),
    # A Unix socket served beside the TCP port(s) (actors/loop/master.py), and its mode (octal; 0: umask's).
    Directive("unixsocket", _str_parser, "", mutable=False),
    Directive("unixsocketperm", _octal_parser(0o777), "0", mutable=False),
    # Tell systemd (sd_notify READY=1) or upstart (SIGSTOP) that the node is ready (launcher/supervised.py).
    Directive("supervised", _enum_parser("upstart", "systemd", "auto", "no"), "no", mutable=False),
    # The start-up banner (launcher/node.py), whose "PID: n" Redis's own test suite waits for.
    Directive("always-show-logo", parse_bool, False, mutable=False),
    # Every log event copied to the system log too (launcher/logs.py).
    Directive("syslog-enabled", parse_bool, False, mutable=False),
    Directive("syslog-ident", _str_parser, "redis", mutable=False),
    Directive(
        "syslog-facility",
        _enum_parser("user", *(f"local{n}" for n in range(8))),
        "local0",
        mutable=False,
    ),
    # Seconds a shutdown waits for lagging replicas (actors/server/shutdown.py); 0: it does not wait.
    Directive("shutdown-timeout", int_parser(0, 2**31 - 1), 10),
    # SHUTDOWN's flags for the signals (launcher/node.py): "default" saves iff save points exist.
    Directive("shutdown-on-sigint", _shutdown_flags_parser, "default", nargs=-1),
    Directive("shutdown-on-sigterm", _shutdown_flags_parser, "default", nargs=-1),
    Directive("pidfile", _str_parser, "", mutable=False),
    # Cluster (actors/cluster): cluster-enabled and the file are immutable, as in Redis
    Directive("cluster-enabled", parse_bool, False, mutable=False),
    Directive("cluster-config-file", _str_parser, "nodes.conf", mutable=False),
    Directive("cluster-node-timeout", int_parser(0, _MAXINT), 15000),  # milliseconds
    Directive("cluster-require-full-coverage", parse_bool, True),
    Directive("cluster-allow-reads-when-down", parse_bool, False),
    # Replica migration (actors/cluster/migration.py): a replica moves to an orphaned master only if its own keeps
    # more than the barrier's working replicas; no: replicas never move, nor follow slots their master lost.
    Directive("cluster-migration-barrier", int_parser(0, 2**31 - 1), 1),
    Directive("cluster-allow-replica-migration", parse_bool, True),
    Directive("cluster-replica-no-failover", parse_bool, False, aliases=("cluster-slave-no-failover",)),
    Directive(
        "cluster-replica-validity-factor",
        int_parser(0, 2**31 - 1),
        10,
        aliases=("cluster-slave-validity-factor",),
    ),
    # What this node announces to its peers and clients instead of what they would see (NAT, containers):
    # actors/cluster/facade.py applies them to its own entry, at start and at CONFIG SET.
    Directive("cluster-announce-ip", _str_parser, ""),
    Directive("cluster-announce-port", int_parser(0, 65535), 0),
    Directive("cluster-announce-bus-port", int_parser(0, 65535), 0),
    # Read only with tls-cluster yes, which the node refuses (its links ride the bus), as Redis 7.0 reads it.
    Directive("cluster-announce-tls-port", int_parser(0, 65535), 0),
    Directive("cluster-announce-hostname", announced_hostname, ""),
    Directive("cluster-preferred-endpoint-type", _enum_parser("ip", "hostname", "unknown-endpoint"), "ip"),
    Directive("cluster-port", int_parser(0, 65535), 0, mutable=False),  # the bus port (launcher/node.py)
    Directive("cluster-allow-pubsubshard-when-down", parse_bool, True),
    # Snapshotting
    Directive("save", _save_parser, [(3600, 1), (300, 100), (60, 10000)], nargs=-1),
    Directive("dir", _str_parser, "."),
    Directive("dbfilename", _str_parser, "dump.rdb"),
    Directive("rdbcompression", parse_bool, True),
    Directive("rdbchecksum", parse_bool, True, mutable=False),
    Directive("stop-writes-on-bgsave-error", parse_bool, True),
    # Append only file
    Directive("appendonly", parse_bool, False),
    Directive("appendfilename", _str_parser, "appendonly.aof", mutable=False),
    Directive("appenddirname", _str_parser, "appendonlydir", mutable=False),
    Directive("appendfsync", _enum_parser("everysec", "always", "no"), "everysec"),
    Directive("no-appendfsync-on-rewrite", parse_bool, False),
    Directive("auto-aof-rewrite-percentage", int_parser(0, 2**31 - 1), 100),
    Directive("auto-aof-rewrite-min-size", int_parser(0, _MAXINT, memory=True), 64 * 1024 * 1024),
    Directive("aof-load-truncated", parse_bool, True),
    Directive("aof-use-rdb-preamble", parse_bool, True),
    # Keep the history files a rewrite leaves (manifest ``type h``) instead of removing them (Redis's test knob).
    Directive("aof-disable-auto-gc", parse_bool, False),
    Directive("aof-timestamp-enabled", parse_bool, False),
    # Replication
    # REPLICAOF changes it at run time; CONFIG SET refuses it, as Redis does.
    Directive("replicaof", _replicaof_parser, None, mutable=False, nargs=-1, aliases=("slaveof",)),
    Directive("masterauth", _str_parser, ""),
    Directive("masteruser", _str_parser, ""),
    Directive("replica-read-only", parse_bool, True, aliases=("slave-read-only",)),
    Directive("replica-serve-stale-data", parse_bool, True, aliases=("slave-serve-stale-data",)),
    Directive("repl-backlog-size", int_parser(1, _MAXINT, memory=True), 1024 * 1024),
    Directive("repl-backlog-ttl", int_parser(0, _MAXINT), 3600),
    Directive("repl-ping-replica-period", int_parser(1, 2**31 - 1), 10, aliases=("repl-ping-slave-period",)),
    Directive("repl-timeout", int_parser(1, 2**31 - 1), 60),
    # A full sync waits repl-diskless-sync-delay (with repl-diskless-sync yes) for more replicas to share its
    # snapshot, or until repl-diskless-sync-max-replicas wait (actors/replication/snapshot_jobs.py). The transfer
    # itself is the same either way: the file the child writes, sent as it grows.
    Directive("repl-diskless-sync", parse_bool, True),
    Directive("repl-diskless-sync-delay", int_parser(0, 2**31 - 1), 5),
    Directive("repl-diskless-sync-max-replicas", int_parser(0, 2**31 - 1), 0),
    # How a replica's full-sync load shows: loading once the snapshot is in (disabled), from the transfer's
    # start (on-empty-db with no keys), or async loading with the old data served (swapdb): loop_side.py.
    Directive("repl-diskless-load", _enum_parser("disabled", "on-empty-db", "swapdb"), "disabled"),
    Directive("min-replicas-to-write", int_parser(0, 2**31 - 1), 0, aliases=("min-slaves-to-write",)),
    Directive("min-replicas-max-lag", int_parser(0, 2**31 - 1), 10, aliases=("min-slaves-max-lag",)),
    Directive("replica-priority", int_parser(0, 2**31 - 1), 100, aliases=("slave-priority",)),
    # no: Sentinel leaves this replica out of SENTINEL REPLICAS and never promotes it (INFO replica_announced).
    Directive("replica-announced", parse_bool, True),
    Directive("replica-announce-ip", _str_parser, "", aliases=("slave-announce-ip",)),
    Directive("replica-announce-port", int_parser(0, 65535), 0, aliases=("slave-announce-port",)),
    # Milliseconds a command must take to be a LATENCY event (0: the latency monitor is off).
    Directive("latency-monitor-threshold", int_parser(0, _MAXINT), 0),
    # Per-command latency histograms (LATENCY HISTOGRAM, INFO latencystats: actors/server/latencystats.py).
    Directive("latency-tracking", parse_bool, True),
    Directive("latency-tracking-info-percentiles", _percentiles_parser, ("50", "99", "99.9"), nargs=-1),
    # Encodings OBJECT ENCODING reports (Redis 7.0's thresholds; the *-ziplist-* names are its aliases).
    Directive(
        "hash-max-listpack-entries", int_parser(0, _MAXINT), 512, aliases=("hash-max-ziplist-entries",)
    ),
    Directive(
        "hash-max-listpack-value",
        int_parser(0, _MAXINT, memory=True, unsigned=True),
        64,
        aliases=("hash-max-ziplist-value",),
    ),
    Directive(
        "zset-max-listpack-entries", int_parser(0, _MAXINT), 128, aliases=("zset-max-ziplist-entries",)
    ),
    Directive(
        "zset-max-listpack-value",
        int_parser(0, _MAXINT, memory=True, unsigned=True),
        64,
        aliases=("zset-max-ziplist-value",),
    ),
    Directive("set-max-intset-entries", int_parser(0, _MAXINT), 512),
    # Supervision (redactor's own): restart intensity of the node's actor supervisor.
    Directive("supervisor-max-restarts", int_parser(0, 1000), 5),
    Directive("supervisor-restart-window-seconds", int_parser(1, 3600), 60),
    # Keyspace events (actors/server/notify.py publishes them)
    Directive("notify-keyspace-events", _notify_events_parser, events.EventClasses(0)),
    # Client-side caching: keys the tracking table remembers before it invalidates random ones (0: no limit).
    Directive("tracking-table-max-keys", int_parser(0, _MAXINT), 1000000),
    # Memory
    Directive("maxmemory", int_parser(0, 2**64 - 1, memory=True, unsigned=True), 0),
    # Bytes, or "N%" of maxmemory (actors/server/client_memory.py); 0 disables client eviction.
    Directive("maxmemory-clients", memory_or_percent, 0),
    Directive(
        "maxmemory-policy",
        _enum_parser(
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ),
        "noeviction",
    ),
    # Keys sampled per database for each eviction (actors/data/evict.py), and the time one eviction run may
    # take (actors/server/maxmemory.py's eviction_time_limit_us).
    Directive("maxmemory-samples", int_parser(1, 2**31 - 1), 5),
    Directive("maxmemory-eviction-tenacity", int_parser(0, 100), 10),
    Directive("lfu-log-factor", int_parser(0, 2**31 - 1), 10),
    Directive("lfu-decay-time", int_parser(0, 2**31 - 1), 1),  # minutes
    Directive("replica-ignore-maxmemory", parse_bool, True, aliases=("slave-ignore-maxmemory",)),
    Directive("activedefrag", parse_activedefrag, False),
    # Per client class: (hard limit bytes, soft limit bytes, soft seconds); 0 disables a limit.
    Directive(
        "client-output-buffer-limit",
        _output_buffer_limit_parser,
        {
            "normal": (0, 0, 0),
            "slave": (256 * 1024**2, 64 * 1024**2, 60),
            "pubsub": (32 * 1024**2, 8 * 1024**2, 60),
        },
        nargs=-1,
        merges=True,
    ),
]

# Directives of a stock Redis 7.0 redis.conf that redactor accepts and stores without acting on them, so
# users' existing files load unchanged: each is read and checked as Redis 7.0 reads it (a bad value is refused
# with Redis's words, never stored), and CONFIG GET answers what redis-server would.
_INT_MAX = 2**31 - 1
_INERT: list[tuple[str, Callable[[list[str]], Any], Any]] = [
    ("crash-log-enabled", parse_bool, True),
    ("crash-memcheck-enabled", parse_bool, True),
    ("set-proc-title", parse_bool, True),
    ("proc-title-template", parse_proc_title_template, "{title} {listen-addr} {server-mode}"),
    # (RESTORE checks every payload whole anyway; the directive decides what INFO's dump_payload_sanitizations
    # counts, as Redis's does: actors/commands/keys.py)
    ("sanitize-dump-payload", _enum_parser("no", "yes", "clients"), "no"),
    ("rdb-del-sync-files", parse_bool, False),
    ("repl-disable-tcp-nodelay", parse_bool, False),
    ("replica-lazy-flush", parse_bool, False),
    ("lazyfree-lazy-eviction", parse_bool, False),
    ("lazyfree-lazy-expire", parse_bool, False),
    ("lazyfree-lazy-server-del", parse_bool, False),
    ("lazyfree-lazy-user-del", parse_bool, False),
    ("lazyfree-lazy-user-flush", parse_bool, False),
    ("disable-thp", parse_bool, True),
    ("aof-rewrite-incremental-fsync", parse_bool, True),
    ("rdb-save-incremental-fsync", parse_bool, True),
    ("list-max-listpack-size", int_parser(-(2**31), _INT_MAX), -2),
    ("list-compress-depth", int_parser(0, _INT_MAX), 0),
    ("hll-sparse-max-bytes", int_parser(0, _MAXINT, memory=True, unsigned=True), 3000),
    ("stream-node-max-bytes", int_parser(0, _MAXINT, memory=True, unsigned=True), 4096),
    ("stream-node-max-entries", int_parser(0, _MAXINT), 100),
    ("activerehashing", parse_bool, True),
    ("dynamic-hz", parse_bool, True),
    ("jemalloc-bg-thread", parse_bool, True),
    ("io-threads", int_parser(1, 128), 1),
    ("io-threads-do-reads", parse_bool, False),
    ("active-expire-effort", int_parser(1, 10), 1),
    ("ignore-warnings", _str_parser, ""),
    # Active defragmentation's tuning: read as Redis reads it, idle because `activedefrag yes` is refused
    # (as redis-server without jemalloc refuses it).
    ("active-defrag-cycle-min", int_parser(1, 99), 1),
    ("active-defrag-cycle-max", int_parser(1, 99), 25),
    ("active-defrag-threshold-lower", int_parser(0, 1000), 10),
    ("active-defrag-threshold-upper", int_parser(0, 1000), 100),
    ("active-defrag-ignore-bytes", int_parser(1, 2**63 - 1, memory=True, unsigned=True), 100 << 20),
    ("active-defrag-max-scan-fields", int_parser(1, 2**63 - 1, unsigned=True), 1000),
]
# Their old names that Redis 7.0 still accepts (and lists in CONFIG GET *).
_INERT_ALIASES = {
    "replica-lazy-flush": ("slave-lazy-flush",),
    "list-max-listpack-size": ("list-max-ziplist-size",),
}
# Those Redis reads only at start: CONFIG SET refuses them as immutable, as Redis does.
_INERT_IMMUTABLE = frozenset("set-proc-title disable-thp io-threads io-threads-do-reads".split())
for _name, _parse, _default in _INERT:
    DIRECTIVES.append(
        Directive(
            _name,
            _parse,
            _default,
            mutable=_name not in _INERT_IMMUTABLE,
            inert=True,
            aliases=_INERT_ALIASES.get(_name, ()),
        )
    )

BY_NAME: dict[str, Directive] = {}
for _d in DIRECTIVES:
    BY_NAME[_d.name] = _d
    for _alias in _d.aliases:
        BY_NAME[_alias] = _d


# Directives a file may give several times, each line adding to the value.
_ACCUMULATING = ("save", "user", "rename-command")
# Directives CONFIG GET lists only when asked by their exact name, never by a pattern (Redis's HIDDEN_CONFIG).
_HIDDEN = ("rdb-key-save-delay", "key-load-delay", "loading-process-events-interval-bytes")
# Not configs at all in CONFIG GET or CONFIG SET (redis.conf's `user` lines are ACL rules, `rename-command`
# lines shape the command table): CONFIG SET answers Unknown option for them, as Redis does.
_NEVER_LISTED = ("user", "rename-command")


class Config:
    """The live configuration of one node. Listeners run after a value changes (CONFIG SET)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {d.name: d.default for d in DIRECTIVES}
        self._listeners: dict[str, list[Callable[[Any], None]]] = {}
        # Directives given more than once in a file that accumulate rather than replace (save).
        self._seen_in_file: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        return self.values[BY_NAME[name].name]

    def bus_port(self) -> int:
        """The port the node bus listens on: bus-port, else cluster-port (Redis Cluster's name for the same
        port: the cluster bus is this bus), else the RESP port + 10000 (tls-port's for a TLS-only node)."""
        explicit = int(self["bus-port"] or self["cluster-port"])
        return bus_port_for(int(self["port"] or self["tls-port"]), explicit)

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
        # A bare line, as Redis reads it: `save` sets no save points, `bind` no address (the node will not
        # start), `client-output-buffer-limit` changes nothing; any other directive needs a value.
        if not args and directive.name in ("save", "bind"):
            args = [""]
        elif not args and directive.name != "client-output-buffer-limit":
            raise ConfigError("wrong number of arguments")
        value = directive.parse(args)
        if from_file and directive.name in _ACCUMULATING and directive.name in self._seen_in_file and value:
            value = self.values[directive.name] + value
        if from_file:
            self._seen_in_file.add(directive.name)
        if directive.merges:
            value = {**self.values[directive.name], **value}
        self.values[directive.name] = value

    def set_runtime(self, name: str, args: list[str]) -> None:
        """CONFIG SET: like ``apply`` but refuses immutable directives and notifies listeners."""
        directive = BY_NAME.get(name.lower())
        if directive is None or directive.name in _NEVER_LISTED:
            raise ConfigError(f"Unknown option or number of arguments for CONFIG SET - '{name}'")
        if directive.name in ("save", "bind", "replicaof", "client-output-buffer-limit") and len(args) == 1:
            # (CONFIG SET client-output-buffer-limit "" changes nothing, as in Redis; a file's empty value is
            # a wrong number of arguments there, and here)
            args = args[0].split() or ([] if directive.name == "client-output-buffer-limit" else [""])
        if not directive.mutable:
            if directive.name in _SAME_VALUE_ONLY and self._is_current(directive, args):
                return  # nothing to change (Redis sets these at runtime; this node only at start)
            raise ConfigError(
                f"CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
            )
        old = self.values[directive.name]
        try:
            if directive.nargs >= 0 and len(args) != directive.nargs:
                raise ConfigError("wrong number of arguments")
            value = directive.parse(args)
            if directive.name == "repl-backlog-size":
                # Redis's resizeReplicationBacklog: a backlog set at runtime is never under 16 KiB (a file may
                # give less, kept as written, as in Redis).
                value = max(value, REPL_BACKLOG_MIN_BYTES)
            self.values[directive.name] = {**old, **value} if directive.merges else value
            for listener in self._listeners.get(directive.name, []):
                listener(self.values[directive.name])
        except ConfigError as exc:
            self.values[directive.name] = old
            raise ConfigError(f"CONFIG SET failed (possibly related to argument '{name}') - {exc}") from None
        except Exception:
            self.values[directive.name] = old
            raise

    def _is_current(self, directive: Directive, args: list[str]) -> bool:
        try:
            return bool(directive.parse(args) == self.values[directive.name])
        except (ConfigError, ValueError):
            return False

    def on_change(self, name: str, listener: Callable[[Any], None]) -> None:
        self._listeners.setdefault(BY_NAME[name].name, []).append(listener)

    def render(self, name: str) -> str:
        return _render(self.values[BY_NAME[name].name])

    def match(self, pattern: str) -> list[tuple[str, str]]:
        """CONFIG GET: (name, rendered value) for every directive (or alias) matching the glob pattern."""
        if not any(c in pattern for c in "[*?"):
            # A plain name is looked up, hidden ones included, and answered under the name as the client
            # spelled it (Redis's configGetCommand: `CONFIG GET MAXMEMORY` answers "MAXMEMORY").
            directive = BY_NAME.get(pattern.lower())
            if directive is None or pattern.lower() in _NEVER_LISTED:
                return []
            return [(pattern, _render(self.values[directive.name]))]
        pattern = pattern.lower()
        found: dict[str, str] = {}
        for name, directive in BY_NAME.items():
            if name in _NEVER_LISTED or name in _HIDDEN:
                continue
            if fnmatch.fnmatchcase(name, pattern):
                found[name] = _render(self.values[directive.name])
        return sorted(found.items())
