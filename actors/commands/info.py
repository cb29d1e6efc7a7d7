"""INFO: the built-in sections (server, clients, memory, stats, cpu, modules, errorstats, cluster, keyspace,
commandstats), Redis 7.0's default / all / everything selections and order, and the rendering of those the
subsystems register in ``server.info_sections`` (persistence, replication, actors)."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands.migrate import cached_sockets
from actors.scripting.meminfo import memory_fields
from actors.server import cmdstats, latencystats, lazyfree
from actors.server.client import ClientKind
from actors.server.errorstats import info_errorstats
from actors.server.tracking import tracking_clients, tracking_stats
from actors.version import REDIS_VERSION, VERSION
from protocol.resp import Verbatim

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server

# Redis's LRU clock wraps at 24 bits of seconds (LRU_CLOCK_MAX).
LRU_CLOCK_MAX = (1 << 24) - 1


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


def allocator_figures(used: int, rss: int, lua: int) -> tuple[int, int, int]:
    """(allocated, active, resident): pymalloc gives no allocator figures, so these are what Redis reports when
    its allocator gives none (libc malloc, cronUpdateMemoryStats): allocated = used_memory, active = resident =
    RSS less Lua's heap."""
    resident = max(0, rss - lua)
    return used, resident, resident


def aof_buffer_bytes(server: Server) -> int:
    """The tick's writes not yet handed to the AOF (Redis's aof_buf)."""
    stream = server.stream
    return sum(map(len, stream.chunks)) if stream.aof_feeding else 0


def _section_server(server: Server) -> list[tuple[str, Any]]:
    uptime = server.uptime_s()
    return [
        ("redis_version", REDIS_VERSION),
        ("redactor_version", VERSION),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", "0"),
        ("redis_mode", "standalone" if server.cluster is None else "cluster"),
        ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("arch_bits", 64),
        ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "epoll"),
        ("python_version", platform.python_version()),
        ("process_id", os.getpid()),
        ("process_supervised", server.supervised_mode),
        ("run_id", server.run_id),
        ("tcp_port", server.port),
        ("server_time_usec", time.time_ns() // 1000),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", server.config["hz"]),
        ("configured_hz", server.config["hz"]),
        # Redis's LRU clock: seconds, on 24 bits (LRU_CLOCK_RESOLUTION 1000 ms, LRU_CLOCK_MAX).
        ("lru_clock", int(time.time()) & LRU_CLOCK_MAX),
        ("executable", sys.argv[0] if sys.argv else ""),
        ("config_file", server.config_file),
        ("io_threads_active", 0),
        # (only while a shutdown waits for its replicas, as in Redis)
        *(
            [("shutdown_in_milliseconds", shutdown_ms)]
            if (shutdown_ms := server.shutdown_in_ms()) is not None
            else []
        ),
    ]


def _section_clients(server: Server) -> list[tuple[str, Any]]:
    clients = [c for c in server.clients.values() if c.kind is not ClientKind.MASTER]
    # The largest query buffer (with its room) and reply backlog of any client now: Redis keeps the largest of
    # the last 8 seconds' samples instead, so a burst shows here only while it lasts.
    max_input = max_output = 0
    for client in clients:
        qbuf, room, unsent = client.buffers()
        max_input = max(max_input, qbuf + room)
        max_output = max(max_output, unsent)
    return [
        ("connected_clients", len(clients)),
        ("cluster_connections", server.cluster.connections() if server.cluster is not None else 0),
        ("maxclients", server.config["maxclients"]),
        ("client_recent_max_input_buffer", max_input),
        ("client_recent_max_output_buffer", max_output),
        ("blocked_clients", sum(1 for c in clients if c.blocked is not None)),
        ("tracking_clients", tracking_clients(server)),
        # Blocked with a timeout (BLPOP 5, WAIT 1 1000...): what Redis's timeout table holds.
        (
            "clients_in_timeout_table",
            sum(1 for c in clients if getattr(c.blocked, "timer", None) is not None),
        ),
    ]


def _section_memory(server: Server) -> list[tuple[str, Any]]:
    # used_memory is actors/data/memory.py's estimate of the dataset and the clients (see the README).
    rss = rss_bytes()
    memory = server.memory
    dataset = memory.dataset_bytes()
    used = memory.used_bytes()
    peak = memory.peak_bytes
    clients = memory.clients_bytes()
    maxmemory = server.config["maxmemory"]
    lazy_pending, lazy_freed = lazyfree.stats(server)
    scripting = memory_fields(server)
    lua = scripting[0][1]  # used_memory_lua
    total_system = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    allocated, active, resident = allocator_figures(used, rss, lua)
    replication = server.replication
    backlog = replication.backlog_bytes() if replication is not None else 0
    repl_buffers = replication.buffer_bytes() if replication is not None else 0
    aof_buffer = aof_buffer_bytes(server)
    return [
        ("used_memory", used),
        ("used_memory_human", _human_bytes(used)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", _human_bytes(rss)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", _human_bytes(peak)),
        ("used_memory_peak_perc", f"{used * 100 / peak if peak else 0:.2f}%"),
        # used_memory counts nothing at start-up (the interpreter is not in the estimate): the overhead is
        # what is not the dataset, the clients' buffers and records.
        ("used_memory_overhead", used - dataset),
        ("used_memory_startup", 0),
        ("used_memory_dataset", dataset),
        ("used_memory_dataset_perc", f"{dataset * 100 / used if used else 0:.2f}%"),
        ("used_memory_clients", clients),
        ("allocator_allocated", allocated),
        ("allocator_active", active),
        ("allocator_resident", resident),
        ("total_system_memory", total_system),
        ("total_system_memory_human", _human_bytes(total_system)),
        *scripting,
        ("maxmemory", maxmemory),
        ("maxmemory_human", _human_bytes(maxmemory)),
        ("maxmemory_policy", server.config["maxmemory-policy"]),
        ("allocator_frag_ratio", f"{active / allocated if allocated else 0:.2f}"),
        ("allocator_frag_bytes", active - allocated),
        ("allocator_rss_ratio", f"{resident / active if active else 0:.2f}"),
        ("allocator_rss_bytes", resident - active),
        ("rss_overhead_ratio", f"{rss / resident if resident else 0:.2f}"),
        ("rss_overhead_bytes", rss - resident),
        ("mem_fragmentation_ratio", f"{rss / used if used else 1:.2f}"),
        ("mem_fragmentation_bytes", rss - used),
        # Eviction weighs all of used_memory (no AOF or replication buffers kept aside).
        ("mem_not_counted_for_evict", 0),
        ("mem_replication_backlog", backlog),
        ("mem_total_replication_buffers", repl_buffers),
        ("mem_clients_normal", clients),
        ("mem_aof_buffer", aof_buffer),
        ("mem_allocator", "pymalloc"),
        ("active_defrag_running", 0),  # no active defragmentation (activedefrag is refused)
        ("lazyfree_pending_objects", lazy_pending),  # UNLINK's big values (actors/server/lazyfree.py)
        ("lazyfreed_objects", lazy_freed),
    ]


def _section_stats(server: Server) -> list[tuple[str, Any]]:
    st = server.stats
    ks = server.keyspace
    master = server.master_actor
    persistence = server.persistence
    exceeded_total_ms, exceeded_current_ms = server.memory.exceeded_times_ms()
    return [
        ("total_connections_received", st.total_connections_received),
        ("total_commands_processed", server.total_commands_processed),
        ("instantaneous_ops_per_sec", master.ops_per_sec if master is not None else 0),
        ("total_net_input_bytes", st.net_input_bytes),
        ("total_net_output_bytes", st.net_output_bytes),
        ("instantaneous_input_kbps", f"{master.input_kbps if master is not None else 0:.2f}"),
        ("instantaneous_output_kbps", f"{master.output_kbps if master is not None else 0:.2f}"),
        ("rejected_connections", st.rejected_connections),
        ("sync_full", st.sync_full),
        ("sync_partial_ok", st.sync_partial_ok),
        ("sync_partial_err", st.sync_partial_err),
        ("expired_keys", ks.expired_keys),
        ("expired_stale_perc", f"{ks.expired_stale_perc * 100:.2f}"),
        ("expired_time_cap_reached_count", ks.expired_time_cap_reached_count),
        ("expire_cycle_cpu_milliseconds", ks.expire_cycle_time_used_us // 1000),
        ("evicted_keys", server.memory.evicted_keys),
        ("evicted_clients", st.evicted_clients),
        ("total_eviction_exceeded_time", exceeded_total_ms),
        ("current_eviction_exceeded_time", exceeded_current_ms),
        ("keyspace_hits", ks.keyspace_hits),
        ("keyspace_misses", ks.keyspace_misses),
        ("pubsub_channels", len(getattr(server, "pubsub_channels", {}))),
        ("pubsub_patterns", len(getattr(server, "pubsub_patterns", {}))),
        ("pubsubshard_channels", len(server.pubsub_shard_channels)),
        ("latest_fork_usec", persistence.latest_fork_usec if persistence is not None else 0),
        ("total_forks", persistence.total_forks if persistence is not None else 0),
        ("migrate_cached_sockets", cached_sockets(server)),
        ("slave_expires_tracked_keys", len(ks.replica_written)),  # a writable replica's own keys with a TTL
        # No active defragmentation (activedefrag yes is refused): Redis reports these zeros without it too.
        ("active_defrag_hits", 0),
        ("active_defrag_misses", 0),
        ("active_defrag_key_hits", 0),
        ("active_defrag_key_misses", 0),
        ("total_active_defrag_time", 0),
        ("current_active_defrag_time", 0),
        *tracking_stats(server),
        ("unexpected_error_replies", st.unexpected_error_replies),
        ("total_error_replies", st.total_error_replies),
        ("dump_payload_sanitizations", st.dump_payload_sanitizations),
        ("total_reads_processed", st.reads_processed),
        ("total_writes_processed", st.writes_processed),
        # No I/O threads (io-threads is a start-up setting here with no effect): every read and write is the
        # loop's.
        ("io_threaded_reads_processed", 0),
        ("io_threaded_writes_processed", 0),
    ]


def _section_cpu(server: Server) -> list[tuple[str, Any]]:
    # A node runs every command on its event loop's thread, Redis's main thread: this one. Read first, so the
    # process's figures read after it are never below it.
    main = resource.getrusage(resource.RUSAGE_THREAD) if server.master_actor is not None else None
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [
        ("used_cpu_sys", f"{me.ru_stime:.6f}"),
        ("used_cpu_user", f"{me.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{kids.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{kids.ru_utime:.6f}"),
    ]
    if main is not None:
        lines += [
            ("used_cpu_sys_main_thread", f"{main.ru_stime:.6f}"),
            ("used_cpu_user_main_thread", f"{main.ru_utime:.6f}"),
        ]
    return lines


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
            lines.append(
                (f"db{db.id}", f"keys={len(db.data)},expires={len(db.expires)},avg_ttl={db.avg_ttl_ms}")
            )
    return lines


def _section_commandstats(server: Server) -> list[tuple[str, Any]]:
    lines = []
    for cmd in cmdstats.unique_commands(server):  # this server's table, subcommands apart (config|get)
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


def _section_modules(server: Server) -> list[tuple[str, Any]]:
    return []  # no modules: Redis prints the header alone


# Redis 7.0's sections in the one order it prints them, whatever order they are asked in (genRedisInfoString).
# persistence and replication come from their subsystems.
ALL_SECTIONS = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
]
# `INFO` and `INFO default`: all of them but commandstats and latencystats.
DEFAULT_SECTIONS = [name for name in ALL_SECTIONS if name not in ("commandstats", "latencystats")]
# `INFO everything` adds what Redis's modules would: here redactor's own sections (actors).
EXTRA_SECTIONS = ["actors"]


def _section_cluster(server: Server) -> list[tuple[str, Any]]:
    if server.cluster is None:
        return [("cluster_enabled", 0)]
    return server.cluster.info_section()


def _section(server: Server, name: str) -> list[tuple[str, Any]] | None:
    builtin = {
        "server": _section_server,
        "clients": _section_clients,
        "memory": _section_memory,
        "stats": _section_stats,
        "cpu": _section_cpu,
        "modules": _section_modules,
        "errorstats": info_errorstats,
        "cluster": _section_cluster,
        "keyspace": _section_keyspace,
        "commandstats": _section_commandstats,
        "latencystats": latencystats.info_section,
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
    asked: set[str] = set()
    for name in wanted or ["default"]:
        name = name.lower()
        if name == "default":
            asked.update(DEFAULT_SECTIONS)
        elif name == "all":
            asked.update(ALL_SECTIONS)
        elif name == "everything":
            asked.update(ALL_SECTIONS + EXTRA_SECTIONS + list(server.info_sections))
        else:
            asked.add(name)
    # Redis's order first, then any other section asked for (redactor's own) in name order.
    names = [n for n in ALL_SECTIONS if n in asked] + sorted(asked.difference(ALL_SECTIONS))
    chunks = []
    for name in names:
        lines = _section(server, name)
        if lines is None:
            continue
        title = _SECTION_TITLES.get(name) or name.capitalize()
        body = "".join(f"{k}:{v}\r\n" for k, v in lines)
        chunks.append(f"# {title}\r\n{body}")
    # (surrogateescape: an errorstats prefix keeps the bytes of the error it counts, UTF-8 or not, as Redis's)
    return "\r\n".join(chunks).encode("utf-8", "surrogateescape")


@command("info", -1, "loading stale", (0, 0, 0), "server", "Get information and statistics about the server")
def cmd_info(client: Client, argv: list[bytes]) -> Any:
    return Verbatim(render_info(client.server, [a.decode("utf-8", "replace") for a in argv[1:]]))
