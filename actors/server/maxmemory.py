"""maxmemory: the memory check before each command, eviction in bounded slices, and the OOM refusal.

What Redis's ``performEvictions`` does, on the dispatcher's slow path: while ``maxmemory`` is set, before each
command the node compares its used memory (actors/data/memory.py's running total of the key charges, plus a
fixed figure per client) with the limit; past it, it evicts keys chosen by the policy (actors/data/evict.py)
until it is back under, each eviction propagated as a DEL to the AOF and the replicas (the path expired keys
take) and counted in INFO's ``evicted_keys``. Evicting is bounded in time per call
(``maxmemory-eviction-tenacity``: Redis's ``evictionTimeLimitUs``, 500 us at the default 10); when the time is
up with memory still over, the command runs anyway and the rest is evicted in further slices, one per loop
turn (``loop.call_soon``, as Redis's 0 ms ``evictionTimeProc``), so a ``CONFIG SET maxmemory`` far below the
current use never blocks the node for long. When nothing can be evicted (``noeviction``, or a volatile-*
policy and no key with a TTL), commands flagged ``denyoom`` (and anything queued in MULTI) are refused with
Redis's ``-OOM`` error.

While maxmemory is set or a policy other than noeviction is chosen, keys carry access stamps and memory
charges (``Keyspace.start_tracking``), the dispatcher's fast path is off (``Server._unrestricted``) and the
GET/SET fast lane stamps each key it reads and hands a SET to the dispatcher when the dataset is past
``room_bytes()`` (so it evicts, or refuses, first); with maxmemory 0 and noeviction none of this runs.
A replica with ``replica-ignore-maxmemory yes`` (the default) never evicts: its master's DELs keep it in line.
"""

from __future__ import annotations

import math
import time
from enum import Enum
from typing import TYPE_CHECKING, Any

import structlog

from actors.commands.redis_flags import subcommand_flagged
from actors.data.evict import AccessTracker, EvictionPool, Policy
from actors.data.memory import estimate_dataset_bytes
from actors.server.client import ClientKind
from actors.server.notify import notify_evicted

if TYPE_CHECKING:
    from actors.commands import Command
    from actors.server.client import Client
    from actors.server.server import Server

log = structlog.get_logger("redactor.maxmemory")

OOM = "OOM command not allowed when used memory > 'maxmemory'."
# performEvictions checks the clock once per this many evicted keys.
EVICT_CLOCK_CHECK_KEYS = 16
# Commands that MULTI does not refuse on OOM (Redis: EXEC judged by its queue, DISCARD, QUIT, RESET).
_MULTI_NEVER_REFUSED = frozenset(("exec", "discard", "quit", "reset"))


def is_denyoom(cmd: Command, argv: list[bytes]) -> bool:
    """Redis's CMD_DENYOOM, judged on the subcommand for a container (XGROUP CREATE is, XGROUP HELP is not)."""
    return "denyoom" in cmd.flags or subcommand_flagged("denyoom", cmd, argv)


class EvictResult(Enum):
    OK = "ok"  # under the limit (or nothing to do): run the command
    RUNNING = "running"  # the time slice ended with memory still over: run it, evict more next turn
    FAIL = "fail"  # over the limit and nothing can be evicted: refuse denyoom commands


def eviction_time_limit_us(tenacity: int) -> float:
    """evictionTimeLimitUs: linear to 500 us up to tenacity 10, then +15% per step, unlimited at 100."""
    if tenacity <= 10:
        return 50.0 * tenacity
    if tenacity < 100:
        return 500.0 * math.pow(1.15, tenacity - 10.0)
    return math.inf


class MemoryGuard:
    """The node's maxmemory state, owned by the Server (loop thread only)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        config = server.config
        # True while keys carry access stamps and charges: maxmemory set or a policy other than noeviction.
        self.tracking = False
        # True while maxmemory > 0: the check runs before each command.
        self.enforcing = False
        self.maxmemory_bytes = 0
        self.policy = Policy(config["maxmemory-policy"])
        self.tracker = AccessTracker()
        self.pool = EvictionPool(self.policy, self.tracker, 5)
        self.time_limit_us = eviction_time_limit_us(10)
        self.ignore_on_replica = True
        # INFO stats: keys evicted since start (CONFIG RESETSTAT zeroes it).
        self.evicted_keys = 0
        # The longest single eviction run, in microseconds (a measure of the pause it causes).
        self.longest_slice_us = 0
        # INFO stats' total_ / current_eviction_exceeded_time: since when used memory has been over maxmemory
        # with evicting unfinished or impossible (None: it is not), and the earlier such spells' sum.
        self.exceeded_since_s: float | None = None
        self.exceeded_before_us = 0
        self.peak_bytes = 0
        # True while a further slice is queued on the loop (Redis's isEvictionProcRunning).
        self._slice_queued = False
        for name in (
            "maxmemory",
            "maxmemory-policy",
            "maxmemory-samples",
            "maxmemory-eviction-tenacity",
            "lfu-log-factor",
            "lfu-decay-time",
            "replica-ignore-maxmemory",
        ):
            config.on_change(name, self._reconfigure)
        self._apply(starting=True)

    def _reconfigure(self, _value: Any) -> None:
        self._apply(starting=False)

    def _apply(self, starting: bool) -> None:
        """Take the directives' current values (``starting``: the Server computes its restrictions itself)."""
        config = self.server.config
        self.maxmemory_bytes = int(config["maxmemory"])
        self.enforcing = self.maxmemory_bytes > 0
        policy = Policy(config["maxmemory-policy"])
        self.tracker.lfu = policy.is_lfu
        self.tracker.log_factor = int(config["lfu-log-factor"])
        self.tracker.decay_time_min = int(config["lfu-decay-time"])
        if policy is not self.policy or self.pool.samples != int(config["maxmemory-samples"]):
            self.policy = policy
            self.pool = EvictionPool(policy, self.tracker, int(config["maxmemory-samples"]))
        self.time_limit_us = eviction_time_limit_us(int(config["maxmemory-eviction-tenacity"]))
        self.ignore_on_replica = bool(config["replica-ignore-maxmemory"])
        tracking = self.enforcing or policy is not Policy.NOEVICTION
        keyspace = self.server.keyspace
        if tracking and keyspace.tracker is None:
            keyspace.start_tracking(self.tracker)
        elif not tracking and keyspace.tracker is not None:
            keyspace.stop_tracking()
        if tracking != self.tracking:
            self.tracking = tracking
            if not starting:
                self.server._restrictions_changed()
        if self.enforcing and self.used_bytes() > self.maxmemory_bytes:
            self._queue_slice()  # CONFIG SET maxmemory below the current use: evict down to it, in slices

    # -- figures ---------------------------------------------------------------------------------------

    def clients_bytes(self) -> int:
        return (
            self.server.client_eviction.clients_bytes()
        )  # buffers included (actors/server/client_memory.py)

    def dataset_bytes(self) -> int:
        keyspace = self.server.keyspace
        if keyspace.tracker is not None:
            return keyspace.account.dataset_bytes
        return estimate_dataset_bytes(list(keyspace.dbs))

    def used_bytes(self) -> int:
        """used_memory: the dataset's charges plus the clients' (see the module docstring)."""
        used = self.dataset_bytes() + self.clients_bytes()
        if used > self.peak_bytes:
            self.peak_bytes = used
        return used

    # -- the check ---------------------------------------------------------------------------------------

    def room_bytes(self) -> int | float:
        """What the dataset may reach before a command must evict first (the fast lane's check)."""
        if not self.enforcing or self.server.loading:
            return math.inf
        return self.maxmemory_bytes - self.clients_bytes()

    def before_command(self, client: Client, cmd: Command, argv: list[bytes]) -> str | None:
        """Evict if needed; the OOM error if ``cmd`` must be refused, else None."""
        if not self.enforcing or self.server.loading:
            return None
        self.server.client_eviction.note(client)
        if self.server.keyspace.account.dataset_bytes + self.clients_bytes() <= self.maxmemory_bytes:
            if self.exceeded_since_s is not None:
                self._exceeded(EvictResult.OK)
            return None
        if self.perform_evictions() is not EvictResult.FAIL or client.kind is ClientKind.MASTER:
            return None
        multi = client.multi
        if cmd.name == "exec" and multi:
            denied = any(is_denyoom(queued, queued_argv) for queued, queued_argv in multi)
        elif multi is not None:
            denied = cmd.name not in _MULTI_NEVER_REFUSED
        else:
            denied = is_denyoom(cmd, argv)
        return OOM if denied else None

    def refuses_denyoom(self, client: Client) -> bool:
        """Would a ``denyoom`` command of ``client`` be refused now? (Scripts ask: scriptVerifyOOM.)"""
        if not self.enforcing or self.server.loading or client.kind is ClientKind.MASTER:
            return False
        if self.server.keyspace.account.dataset_bytes + self.clients_bytes() <= self.maxmemory_bytes:
            return False
        return self.perform_evictions() is EvictResult.FAIL

    def exceeded_times_ms(self) -> tuple[int, int]:
        """INFO's (total_eviction_exceeded_time, current_eviction_exceeded_time), in milliseconds."""
        if self.exceeded_since_s is not None and (
            not self.enforcing
            or self.server.keyspace.account.dataset_bytes + self.clients_bytes() <= self.maxmemory_bytes
        ):
            self._exceeded(EvictResult.OK)  # back under since the last command that checked (a fast-lane SET)
        current_us = 0
        if self.exceeded_since_s is not None:
            current_us = int((time.monotonic() - self.exceeded_since_s) * 1e6)
        return (self.exceeded_before_us + current_us) // 1000, current_us // 1000

    def _exceeded(self, result: EvictResult) -> EvictResult:
        """performEvictions' update_metrics: a spell over the limit starts when evicting cannot finish and ends
        at the first check that finds memory under it."""
        if result is EvictResult.OK:
            if self.exceeded_since_s is not None:
                self.exceeded_before_us += int((time.monotonic() - self.exceeded_since_s) * 1e6)
                self.exceeded_since_s = None
        elif self.exceeded_since_s is None:
            self.exceeded_since_s = time.monotonic()
        return result

    def perform_evictions(self) -> EvictResult:
        """performEvictions: evict until under maxmemory, the time limit, or nothing left to evict."""
        server = self.server
        if server.is_replica and self.ignore_on_replica:
            return EvictResult.OK
        keyspace = server.keyspace
        account = keyspace.account
        extra = self.clients_bytes()
        limit = self.maxmemory_bytes
        if account.dataset_bytes + extra <= limit:
            return self._exceeded(EvictResult.OK)
        if self.policy is Policy.NOEVICTION:
            return self._exceeded(EvictResult.FAIL)
        started = time.perf_counter()
        deadline = started + self.time_limit_us / 1e6
        dbs = keyspace.dbs
        select = self.pool.select
        # A replica (replica-ignore-maxmemory no) evicts for itself only: as Redis's replicationFeedSlaves, it
        # passes on its master's stream, never its own writes, so its offset stays the master's.
        propagate = server.propagate if not server.is_replica else None
        evicted = 0
        result = EvictResult.OK
        while account.dataset_bytes + extra > limit:
            victim = select(dbs)
            if victim is None:
                result = EvictResult.FAIL
                break
            index, key = victim
            keyspace.evicting = True  # a change no client made, before any command runs (client tracking)
            try:
                keyspace.delete(dbs[index], key)
            finally:
                keyspace.evicting = False
            if propagate is not None:
                propagate(index, [b"DEL", key])
            notify_evicted(server, index, key)
            evicted += 1
            if evicted % EVICT_CLOCK_CHECK_KEYS == 0 and time.perf_counter() > deadline:
                result = EvictResult.RUNNING
                self._queue_slice()
                break
        self.evicted_keys += evicted
        took_us = int((time.perf_counter() - started) * 1e6)
        if took_us > self.longest_slice_us:
            self.longest_slice_us = took_us
        return self._exceeded(result)

    def _queue_slice(self) -> None:
        """Evict more on the loop's next turn (Redis's evictionTimeProc), once."""
        master = self.server.master_actor
        loop = master.loop if master is not None else None
        if self._slice_queued or loop is None or loop.is_closed():
            return
        self._slice_queued = True
        loop.call_soon(self._slice)

    def _slice(self) -> None:
        self._slice_queued = False
        if not self.enforcing or self.server.loading or self.server.script_busy is not None:
            return
        if self.perform_evictions() is EvictResult.RUNNING:
            self._queue_slice()
        master = self.server.master_actor
        if self.server.stream.chunks and master is not None:
            master.flush_now()  # the slice's DELs reach the AOF and the replicas with this turn
