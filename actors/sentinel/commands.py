"""SENTINEL's subcommands, INFO and ROLE as Redis Sentinel answers them (replies and error texts of 7.0).

Each handler takes the monitor and the arguments after the subcommand and returns a reply value for
protocol/resp.py's encoder (bytes: bulk, str: status, dict: map) or raises ``CommandError``. The listener
(server.py) owns the other commands a sentinel serves (PING, SUBSCRIBE, CLIENT, HELLO, ...).
"""

from __future__ import annotations

import fnmatch
import os
import resource
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from actors.sentinel import failover
from actors.sentinel.config import MASTER_OPTIONS, set_master_option
from actors.sentinel.state import Flag, Instance, Kind, now_ms
from actors.version import REDIS_VERSION
from protocol.errors import CommandError, echoed, unknown_subcommand, wrong_arity
from protocol.resp import NULL_ARRAY, Verbatim

if TYPE_CHECKING:
    from actors.sentinel.monitor import Monitor

NO_SUCH_MASTER = "ERR No such master with that name"
START_TIME_S = time.time()
CONFIG_PARAMS = (
    "resolve-hostnames",
    "announce-hostnames",
    "announce-ip",
    "announce-port",
    "sentinel-user",
    "sentinel-pass",
)


def _master(monitor: Monitor, name: bytes) -> Instance:
    master = monitor.state.masters.get(name.decode("utf-8", "replace"))
    if master is None:
        raise CommandError(NO_SUCH_MASTER)
    return master


def _int(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:
        raise CommandError("ERR value is not an integer or out of range") from None


def ckquorum(master: Instance) -> tuple[bool, str]:
    usable = 1 + sum(1 for s in master.sentinels.values() if not s.flags & (Flag.S_DOWN | Flag.O_DOWN))
    voters = len(master.sentinels) + 1
    if usable >= master.quorum and usable >= voters // 2 + 1:
        return True, f"OK {usable} usable Sentinels. Quorum and failover authorization can be reached"
    text = f"NOQUORUM {usable} usable Sentinels. "
    if usable < master.quorum:
        text += "Not enough available Sentinels to reach the specified quorum for this master"
    if usable < voters // 2 + 1:
        if usable < master.quorum:
            text += ". "
        text += "Not enough available Sentinels to reach the majority and authorize a failover"
    return False, text


def sentinel_command(monitor: Monitor, args: list[bytes], resp3: bool) -> Any:
    if not args:
        raise wrong_arity("sentinel")
    sub = args[0].decode("utf-8", "replace").lower()
    rest = args[1:]
    handler = _SUBCOMMANDS.get(sub)
    if handler is None:
        raise unknown_subcommand(echoed(args[0]), "SENTINEL")
    low, high = _ARITY[sub]
    if len(rest) < low or (high is not None and len(rest) > high):
        raise CommandError(f"ERR wrong number of arguments for 'sentinel|{sub}' command")
    return handler(monitor, rest, resp3)


def _map(values: list[Any], resp3: bool) -> Any:
    if resp3:
        return dict(zip(values[::2], values[1::2], strict=True))
    return values


def _masters(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    now = now_ms()
    return [
        _map(m.instance_map(now, monitor.state.announce_hostnames), resp3)
        for m in monitor.state.masters.values()
    ]


def _master_cmd(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    return _map(_master(monitor, rest[0]).instance_map(now_ms(), monitor.state.announce_hostnames), resp3)


def _replicas(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    master = _master(monitor, rest[0])
    now = now_ms()
    return [
        _map(r.instance_map(now, monitor.state.announce_hostnames), resp3)
        for r in master.replicas.values()
        if r.replica_announced
    ]


def _sentinels(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    master = _master(monitor, rest[0])
    now = now_ms()
    return [
        _map(s.instance_map(now, monitor.state.announce_hostnames), resp3) for s in master.sentinels.values()
    ]


def _get_master_addr(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    master = monitor.state.masters.get(rest[0].decode("utf-8", "replace"))
    if master is None:
        return NULL_ARRAY
    current = failover.current_master(master)
    return [monitor.state.shown(current).encode(), str(current.port).encode()]


def _ckquorum(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    ok, text = ckquorum(_master(monitor, rest[0]))
    if not ok:
        raise CommandError(text)
    return text


def _failover(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    error = failover.force(monitor, _master(monitor, rest[0]))
    if error:
        raise CommandError(error)
    return "OK"


def _reset(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    pattern = rest[0].decode("utf-8", "replace")
    count = 0
    for master in list(monitor.state.masters.values()):
        if fnmatch.fnmatchcase(master.name, pattern):
            failover.reset_master(monitor, master, keep_sentinels=False)
            monitor.event("#", "+reset-master", master)
            count += 1
    if count:
        monitor.flush_config()
    return count


def _monitor(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    name, host = rest[0].decode(), rest[1].decode()
    port, quorum = _int(rest[2]), _int(rest[3])
    if quorum <= 0:
        raise CommandError("ERR Quorum must be 1 or greater.")
    if port <= 0 or port > 65535:
        raise CommandError("ERR Invalid port number")
    address = monitor.state.resolve(host)  # (a hostname needs resolve-hostnames yes, and must resolve)
    if address is None:
        raise CommandError("ERR Invalid IP address or hostname specified")
    if name in monitor.state.masters:
        raise CommandError("ERR Duplicate master name.")
    master = Instance(Kind.MASTER, name, address, port, flags=Flag.MASTER, quorum=quorum, hostname=host)
    master.down_after_ms = monitor.state.timing["default-down-after"]
    master.failover_timeout_ms = monitor.state.timing["default-failover-timeout"]
    monitor.state.masters[name] = master
    monitor.flush_config()
    monitor.event("#", "+monitor", master, f"quorum {quorum}")
    return "OK"


def _remove(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    master = _master(monitor, rest[0])
    failover.reset_master(monitor, master, keep_sentinels=False)
    del monitor.state.masters[master.name]
    monitor.flush_config()
    monitor.event("#", "-monitor", master)
    return "OK"


def _set(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    master = _master(monitor, rest[0])
    options = [a.decode("utf-8", "replace") for a in rest[1:]]
    if not options:
        raise CommandError("ERR wrong number of arguments for 'sentinel|set' command")
    index = 0
    changes: list[tuple[str, str]] = []
    while index < len(options):
        option = options[index].lower()
        width = 3 if option == "rename-command" else 2
        if option not in MASTER_OPTIONS or index + width > len(options):
            raise CommandError(
                f"ERR Unknown option or number of arguments for SENTINEL SET '{options[index]}'"
            )
        values = options[index + 1 : index + width]
        if (
            option in ("notification-script", "client-reconfig-script")
            and monitor.state.deny_scripts_reconfig
        ):
            raise CommandError(
                "ERR Reconfiguration of scripts path is denied for security reasons. Check the deny-scripts-reconfig configuration directive in your config file for more info."
            )
        error = set_master_option(master, option, values)
        if error:
            raise CommandError(f"ERR Invalid argument '{values[-1]}' for SENTINEL SET '{option}'")
        changes.append((option, "******" if option == "auth-pass" else " ".join(values)))
        index += width
    monitor.flush_config()
    for option, shown in changes:
        monitor.event("*", "+set", master, f"{option} {shown}")
    return "OK"


def _is_master_down(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    ip, port, epoch = rest[0].decode(), _int(rest[1]), _int(rest[2])
    runid = rest[3].decode("utf-8", "replace")
    master = monitor.state.master_by_addr(ip, port)
    down = not monitor.state.tilt and master is not None and master.has(Flag.S_DOWN)
    leader: str | None = None
    leader_epoch = 0
    if master is not None and runid != "*":
        leader, leader_epoch = failover.vote_leader(monitor, master, epoch, runid)
    return [int(down), (leader or "*").encode(), leader_epoch if leader else 0]


def _myid(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    return monitor.state.myid.encode()


def _config(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    action = rest[0].lower()
    state = monitor.state
    values: dict[str, str] = {
        "resolve-hostnames": "yes" if state.resolve_hostnames else "no",
        "announce-hostnames": "yes" if state.announce_hostnames else "no",
        "announce-ip": state.announce_ip,
        "announce-port": str(state.announce_port),
        "sentinel-user": state.sentinel_user or "",
        "sentinel-pass": state.sentinel_pass or "",
    }
    if action == b"get" and len(rest) == 2:
        pattern = rest[1].decode("utf-8", "replace").lower()
        found = {k.encode(): v.encode() for k, v in values.items() if fnmatch.fnmatchcase(k, pattern)}
        return found if resp3 else [x for kv in found.items() for x in kv]
    if action == b"set" and len(rest) == 3:
        param, value = rest[1].decode().lower(), rest[2].decode("utf-8", "replace")
        if param in ("resolve-hostnames", "announce-hostnames"):
            if value.lower() not in ("yes", "no"):
                raise CommandError(f"ERR Invalid argument '{value}' to SENTINEL CONFIG SET")
            setattr(state, param.replace("-", "_"), value.lower() == "yes")
        elif param == "announce-ip":
            state.announce_ip = value
        elif param == "announce-port":
            if not value.isdigit() or int(value) > 65535:
                raise CommandError(f"ERR Invalid argument '{value}' to SENTINEL CONFIG SET")
            state.announce_port = int(value)
        elif param in ("sentinel-user", "sentinel-pass"):
            setattr(state, param.replace("-", "_"), value or None)
            # sentinelDropConnections: the links to other sentinels reconnect with the new credentials.
            for master in state.masters.values():
                for sentinel in master.sentinels.values():
                    if sentinel.link.connected:
                        monitor.spawn(monitor.close_link(sentinel))
        else:
            raise CommandError(f"ERR Invalid argument '{param}' to SENTINEL CONFIG SET")
        monitor.flush_config()
        return "OK"
    raise CommandError("ERR Only SENTINEL CONFIG GET <param> / SET <param> <value> are supported.")


def _flushconfig(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    monitor.flush_config()
    return "OK"


def _info_cache(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    names = {a.decode("utf-8", "replace") for a in rest}
    now = now_ms()
    out: list[Any] = []
    for master in monitor.state.masters.values():
        if names and master.name not in names:
            continue
        entries = []
        for ri in (master, *master.replicas.values()):
            age = now - ri.info_refresh_ms if ri.info_refresh_ms else 0
            entries.append([age, Verbatim(ri.info.encode()) if ri.info else None])
        out += [master.name.encode(), entries]
    return out


def _simulate_failure(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    flags = 0
    for arg in rest:
        word = arg.decode("utf-8", "replace").lower()
        if word == "crash-after-election":
            flags |= failover.SIMULATE_CRASH_AFTER_ELECTION
        elif word == "crash-after-promotion":
            flags |= failover.SIMULATE_CRASH_AFTER_PROMOTION
        elif word == "help":
            return [b"crash-after-election", b"crash-after-promotion"]
        else:
            raise CommandError("ERR Unknown failure simulation specified")
    monitor.state.simulate_failure = flags
    return "OK"


def _debug(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    timing = monitor.state.timing
    if not rest:
        found = {k.upper().encode(): str(v).encode() for k, v in timing.items()}
        return found if resp3 else [x for kv in found.items() for x in kv]
    if len(rest) % 2:
        raise CommandError("ERR wrong number of arguments for 'sentinel|debug' command")
    updates = {}
    for key, value in zip(rest[::2], rest[1::2], strict=True):
        name = key.decode("utf-8", "replace").lower()
        if name not in timing or not value.isdigit() or int(value) <= 0:
            raise CommandError(f"ERR Invalid argument '{echoed(value)}' for SENTINEL DEBUG '{name}'")
        updates[name] = int(value)
    timing.update(updates)
    return "OK"


def _pending_scripts(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    return [_map(entry, resp3) for entry in monitor.scripts.pending()]


def _help(monitor: Monitor, rest: list[bytes], resp3: bool) -> Any:
    return [f"SENTINEL {name.upper()}" for name in sorted(_SUBCOMMANDS)]


def subcommand_names() -> list[str]:
    """SENTINEL's subcommands, for COMMAND LIST ("sentinel|masters" ...)."""
    return sorted(_SUBCOMMANDS)


Handler = Callable[["Monitor", list[bytes], bool], Any]
_SUBCOMMANDS: dict[str, Handler] = {
    "masters": _masters, "primaries": _masters, "master": _master_cmd, "primary": _master_cmd,
    "replicas": _replicas, "slaves": _replicas, "sentinels": _sentinels,
    "get-master-addr-by-name": _get_master_addr, "get-primary-addr-by-name": _get_master_addr,
    "ckquorum": _ckquorum, "failover": _failover, "reset": _reset, "monitor": _monitor, "remove": _remove,
    "set": _set, "is-master-down-by-addr": _is_master_down, "is-primary-down-by-addr": _is_master_down,
    "myid": _myid, "config": _config, "flushconfig": _flushconfig, "info-cache": _info_cache,
    "simulate-failure": _simulate_failure, "debug": _debug, "pending-scripts": _pending_scripts, "help": _help,
}  # fmt: skip
# Arguments after the subcommand: (at least, at most); None: no upper bound.
_ARITY: dict[str, tuple[int, int | None]] = {
    "masters": (0, 0), "primaries": (0, 0), "master": (1, 1), "primary": (1, 1), "replicas": (1, 1),
    "slaves": (1, 1), "sentinels": (1, 1), "get-master-addr-by-name": (1, 1), "get-primary-addr-by-name": (1, 1),
    "ckquorum": (1, 1), "failover": (1, 1), "reset": (1, 1), "monitor": (4, 4), "remove": (1, 1),
    "set": (1, None), "is-master-down-by-addr": (4, 4), "is-primary-down-by-addr": (4, 4), "myid": (0, 0),
    "config": (2, 3), "flushconfig": (0, 0), "info-cache": (0, None), "simulate-failure": (1, None),
    "debug": (0, None), "pending-scripts": (0, 0), "help": (0, 0),
}  # fmt: skip


class ListenerInfo(NamedTuple):
    """What INFO shows of the RESP listener (actors/sentinel/server.py), read on its thread."""

    clients: int
    port: int
    maxclients: int
    connections_received: int
    rejected_connections: int
    commands_processed: int
    pubsub_channels: int
    pubsub_patterns: int


def info_text(monitor: Monitor, sections: list[str], listener: ListenerInfo) -> str:
    """INFO for a sentinel: server, clients, cpu, stats and sentinel (Redis's allowed sections). The fields are
    the ones redis-sentinel prints that mean something here; the keyspace's and persistence's are left out."""
    wanted = {s.lower() for s in sections} or {"default"}
    everything = bool(wanted & {"all", "everything", "default"})
    parts: list[str] = []
    state = monitor.state
    if everything or "server" in wanted:
        uptime = int(time.time() - START_TIME_S)
        uname = os.uname()
        parts.append(
            "# Server\r\n"
            f"redis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n"
            f"redis_build_id:0\r\nredis_mode:sentinel\r\nos:{uname.sysname} {uname.release} {uname.machine}\r\n"
            "arch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\n"
            f"process_id:{os.getpid()}\r\nrun_id:{state.myid}\r\ntcp_port:{listener.port}\r\n"
            f"server_time_usec:{time.time_ns() // 1000}\r\n"
            f"uptime_in_seconds:{uptime}\r\nuptime_in_days:{uptime // 86400}\r\n"
            f"executable:redactor\r\nconfig_file:{monitor.config.path}\r\nio_threads_active:0\r\n"
        )
    if everything or "clients" in wanted:
        # (no blocking commands, client tracking or cluster links in a sentinel: those counts are 0)
        parts.append(
            f"# Clients\r\nconnected_clients:{listener.clients}\r\ncluster_connections:0\r\n"
            f"maxclients:{listener.maxclients}\r\nblocked_clients:0\r\ntracking_clients:0\r\n"
            "clients_in_timeout_table:0\r\n"
        )
    if everything or "cpu" in wanted:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # (scripts: notification and reconfig scripts)
        parts.append(
            f"# CPU\r\nused_cpu_sys:{me.ru_stime:.6f}\r\nused_cpu_user:{me.ru_utime:.6f}\r\n"
            f"used_cpu_sys_children:{kids.ru_stime:.6f}\r\nused_cpu_user_children:{kids.ru_utime:.6f}\r\n"
        )
    if everything or "stats" in wanted:
        parts.append(
            f"# Stats\r\ntotal_connections_received:{listener.connections_received}\r\n"
            f"total_commands_processed:{listener.commands_processed}\r\n"
            f"rejected_connections:{listener.rejected_connections}\r\n"
            f"pubsub_channels:{listener.pubsub_channels}\r\npubsub_patterns:{listener.pubsub_patterns}\r\n"
        )
    if everything or "sentinel" in wanted:
        tilt_since = (now_ms() - state.tilt_start_ms) // 1000 if state.tilt else -1
        lines = [
            "# Sentinel",
            f"sentinel_masters:{len(state.masters)}",
            f"sentinel_tilt:{int(state.tilt)}",
            f"sentinel_tilt_since_seconds:{tilt_since}",
            f"sentinel_running_scripts:{monitor.scripts.running}",
            # Redis counts the whole queue, running jobs included.
            f"sentinel_scripts_queue_length:{len(monitor.scripts.jobs)}",
            f"sentinel_simulate_failure_flags:{state.simulate_failure}",
        ]
        for index, master in enumerate(state.masters.values()):
            status = "odown" if master.has(Flag.O_DOWN) else "sdown" if master.has(Flag.S_DOWN) else "ok"
            current = failover.current_master(master)
            lines.append(
                f"master{index}:name={master.name},status={status},"
                f"address={state.shown(current)}:{current.port},"
                f"slaves={len(master.replicas)},sentinels={len(master.sentinels) + 1}"
            )
        parts.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(parts)
