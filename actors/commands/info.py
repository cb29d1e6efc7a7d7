"""INFO: the built-in sections (server, clients, memory, stats, cpu, keyspace, commandstats) and the
rendering of those the subsystems register in ``server.info_sections`` (persistence, replication, actors)."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.server.client import ClientKind
from actors.version import REDIS_VERSION, VERSION
from protocol.resp import Verbatim

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server


# -- INFO ------------------------------------------------------------------------------------------------


def server_redis_version(server: Server) -> str:
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
    persistence = server.persistence
    return [
        ("total_connections_received", st.total_connections_received),
        ("total_commands_processed", server.total_commands_processed),
        ("instantaneous_ops_per_sec", master.ops_per_sec if master is not None else 0),
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
        ("latest_fork_usec", persistence.latest_fork_usec if persistence is not None else 0),
        ("total_forks", persistence.total_forks if persistence is not None else 0),
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
    for cmd in server.commands.values():  # this server's table: counters are per instance
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
