"""MEMORY: USAGE (an estimate of what a key costs this process), STATS, DOCTOR, PURGE, MALLOC-STATS, HELP;
and OBJECT FREQ / IDLETIME's reading of a key's access stamp (``object_access``, for actors/commands/keys.py).

MEMORY USAGE is an honest estimate of Python's own accounting, not Redis's allocator figures: ``sys.getsizeof``
of the key, of the value's container(s), and of its elements. As Redis does, a collection's elements are
sampled (SAMPLES, default 5; 0 means all) and the average is multiplied by the element count, so the command
stays cheap on big values. The dict slot that holds the key in the database is included, spread per key.
"""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from actors.data.evict import STAMP_MASK, Policy, lfu_decayed, lru_idle_ms
from actors.data.memory import DEFAULT_SAMPLES, EXPIRE_SLOT_BYTES, KEY_SLOT_BYTES, alloc_bytes
from actors.data.memory import estimate_value_bytes as estimate_value_bytes  # re-exported
from actors.scripting.meminfo import memory_fields
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import OK, Verbatim

if TYPE_CHECKING:
    from actors.server.client import Client

# MEMORY DOCTOR under 5 MB of used memory: Redis's words (getMemoryDoctorReport's "empty" report).
DOCTOR_EMPTY_BYTES = 5 * 1024 * 1024
DOCTOR_EMPTY = (
    b"Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these "
    b"conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will "
    b"be back to our programming as soon as I finished rebooting.\n"
)

HELP = [
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
]


_LFU_NOT_SELECTED = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when "
    "switching between policies at runtime LRU and LFU data will take some time to adjust."
)
_LFU_SELECTED = (
    "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
    "switching between policies at runtime LRU and LFU data will take some time to adjust."
)


def object_access(client: Client, key: bytes, freq: bool) -> int:
    """OBJECT FREQ (the decayed LFU counter) or IDLETIME (seconds since the last access), from the key's
    access stamp (actors/data/evict.py). Stamps are kept while maxmemory or an eviction policy is set; without
    them IDLETIME answers 0 (see the README's cache section)."""
    policy = Policy(client.server.config["maxmemory-policy"])
    if freq != policy.is_lfu:
        raise CommandError(_LFU_NOT_SELECTED if freq else _LFU_SELECTED)
    db = client.db
    tracker = client.server.keyspace.tracker
    stamp = db.meta.get(key) if db.meta is not None else None
    if stamp is None or tracker is None:
        return 0
    stamp &= STAMP_MASK
    if freq:
        return lfu_decayed(stamp, tracker.decay_time_min)
    return lru_idle_ms(stamp) // 1000


def memory_stats(client: Client) -> dict[bytes, Any]:
    """MEMORY STATS with Redis 7.0's fields and order, from the same figures as INFO memory."""
    # (imported here: info imports migrate, which imports keys, which imports this module)
    from actors.commands.info import allocator_figures, aof_buffer_bytes, rss_bytes

    server = client.server
    memory = server.memory
    used = memory.used_bytes()
    dataset = memory.dataset_bytes()
    keys = server.keyspace.total_keys()
    overhead = used - dataset
    scripting = dict(memory_fields(server))
    rss = rss_bytes()
    allocated, active, resident = allocator_figures(used, rss, scripting["used_memory_lua"])
    replication = server.replication
    stats: dict[bytes, Any] = {
        b"peak.allocated": memory.peak_bytes,
        b"total.allocated": used,
        b"startup.allocated": 0,
        b"replication.backlog": replication.backlog_bytes() if replication is not None else 0,
        b"clients.slaves": 0,  # replicas are bus peers, not clients (INFO leaves mem_clients_slaves out)
        b"clients.normal": memory.clients_bytes(),
        b"cluster.links": 0,  # the cluster bus is ZeroMQ's, not counted
        b"aof.buffer": aof_buffer_bytes(server),
        b"lua.caches": scripting["used_memory_scripts_eval"],
        b"functions.caches": scripting["used_memory_functions"],
        b"overhead.total": overhead,
        b"keys.count": keys,
        b"keys.bytes-per-key": dataset // keys if keys else 0,
        b"dataset.bytes": dataset,
        b"dataset.percentage": dataset * 100 / used if used else 0.0,
        b"peak.percentage": used * 100 / memory.peak_bytes if memory.peak_bytes else 0.0,
    }
    for db in server.keyspace.dbs:
        if db.data:
            stats[b"db.%d" % db.id] = {
                b"overhead.hashtable.main": sys.getsizeof(db.data),
                b"overhead.hashtable.expires": sys.getsizeof(db.expires),
            }
    stats.update(
        {
            b"allocator.allocated": allocated,
            b"allocator.active": active,
            b"allocator.resident": resident,
            b"allocator-fragmentation.ratio": active / allocated if allocated else 0.0,
            b"allocator-fragmentation.bytes": active - allocated,
            b"allocator-rss.ratio": resident / active if active else 0.0,
            b"allocator-rss.bytes": resident - active,
            b"rss-overhead.ratio": rss / resident if resident else 0.0,
            b"rss-overhead.bytes": rss - resident,
            b"fragmentation": rss / used if used else 0.0,
            b"fragmentation.bytes": rss - used,
        }
    )
    return stats


@command(
    "memory",
    -2,
    "",
    (0, 0, 0),
    "server",
    "A container for memory diagnostics commands",
    subcommands=("usage", "doctor", "purge", "malloc-stats", "stats", "help"),
)
def cmd_memory(client: Client, argv: list[bytes]) -> Any:
    sub = argv[1].lower()
    if sub == b"help" and len(argv) == 2:
        return HELP
    if sub == b"usage":
        if len(argv) < 3:
            raise errors.wrong_arity("memory|usage")
        samples = DEFAULT_SAMPLES
        i = 3
        while i < len(argv):
            if argv[i].lower() == b"samples" and i + 1 < len(argv):
                samples = parse_int(argv[i + 1])
                if samples < 0:
                    raise CommandError(errors.SYNTAX)
                i += 2
            else:
                raise CommandError(errors.SYNTAX)
        key = argv[2]
        value = client.server.keyspace.lookup(client.db, key)
        if value is None:
            return None
        # The same figure as the key's charge in used_memory (actors/data/memory.py), with SAMPLES applied.
        size_bytes = alloc_bytes(sys.getsizeof(key)) + KEY_SLOT_BYTES + estimate_value_bytes(value, samples)
        if key in client.db.expires:
            size_bytes += EXPIRE_SLOT_BYTES
        return size_bytes
    if sub == b"stats" and len(argv) == 2:
        return memory_stats(client)
    if sub == b"doctor" and len(argv) == 2:
        if client.server.memory.used_bytes() < DOCTOR_EMPTY_BYTES:
            return Verbatim(DOCTOR_EMPTY)
        return Verbatim(
            b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on "
            b"this base.\n"
        )
    if sub == b"purge" and len(argv) == 2:
        from actors.data.allocator import trim_heap  # ctypes: only when asked

        gc.collect()
        trim_heap()  # as Redis's jemalloc purge: free pages go back to the system
        return OK
    if sub == b"malloc-stats" and len(argv) == 2:
        return Verbatim(b"Stats not supported for the current allocator")
    if sub in (b"doctor", b"purge", b"malloc-stats", b"stats", b"help"):
        raise errors.wrong_arity(f"memory|{sub.decode()}")
    raise errors.unknown_subcommand(errors.echoed(argv[1]), "memory")
