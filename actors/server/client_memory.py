"""Client memory: what each connection holds (CLIENT LIST's qbuf / argv-mem / multi-mem / omem / tot-mem) and
client eviction (``maxmemory-clients``, Redis 7.0's ``evictClients``).

A client's memory is what its connection holds for it: the query buffer (bytes of a request not complete yet,
and of requests read but not run yet), the arguments of the command it runs, the commands queued in MULTI, the
replies not sent yet (those of this tick still being gathered plus what the socket did not take: the transport's
buffer), and a small charge per watched key, subscription and tracking prefix, over a fixed base. Python gives
no allocator sizes, so the figures are the payload bytes plus fixed per-item charges: relative behaviour (which
client is biggest, when the total passes the limit) follows Redis; the exact byte counts do not.

``maxmemory-clients`` (bytes, or a percentage of ``maxmemory``; 0 disables) bounds the sum over normal and
pub/sub clients. While it is set the dispatcher's fast paths are off (``Server.restrict``) and before each
command (Redis's ``processCommand``), after each read (a request still arriving) and once per cron tick, the
node disconnects the biggest clients first until the sum is back under the limit, counting each in INFO's
``evicted_clients``. Clients with ``CLIENT NO-EVICT on``, replicas and masters are never evicted (their memory
still counts, as in Redis). A client whose pending replies already pass its client-output-buffer-limit is
closed for that first (Redis frees such a client before it can count toward eviction).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server

log = structlog.get_logger("redactor.client_memory")

RESTRICTION = "client-eviction"
# The reply of a command whose client was evicted before it ran: never sent (the connection is closed).
CLIENT_EVICTED = CommandError("ERR client evicted")
# What an idle connection costs besides its buffers (Client, parser, transport): a fixed figure.
CLIENT_BASE_BYTES = 2048
# A client holding more than this over its base is followed between cron ticks (ClientEviction.busy).
BUSY_BYTES = 1024
# Per watched key, subscription or tracking prefix: the list/dict entry holding it, plus its name's bytes.
ENTRY_BYTES = 48


class Usage:
    """One client's memory, as CLIENT LIST shows it."""

    __slots__ = ("qbuf", "argv_mem", "multi_mem", "omem", "total")

    def __init__(self, qbuf: int, argv_mem: int, multi_mem: int, omem: int, total: int) -> None:
        self.qbuf = qbuf
        self.argv_mem = argv_mem
        self.multi_mem = multi_mem
        self.omem = omem
        self.total = total


def _argv_bytes(argv: list[bytes] | None) -> int:
    if not argv:
        return 0
    return sum(map(len, argv))  # Redis's argv_len_sum


def usage(client: Client, argv: list[bytes] | None = None) -> Usage:
    """The client's memory now (Redis's getClientMemoryUsage plus CLIENT LIST's buffer fields); ``argv``: the
    command it is running, if any."""
    qbuf, qbuf_room, omem = client.buffers()
    argv_mem = _argv_bytes(argv)
    multi = client.multi
    multi_mem = sum(_argv_bytes(argv) for _cmd, argv in multi) if multi else 0
    entries = 0
    for key_set in (client.channels, client.patterns, client.shard_channels):
        for name in key_set:
            entries += ENTRY_BYTES + len(name)
    for _db, key in client.watched:
        entries += ENTRY_BYTES + len(key)
    tracking = client.tracking
    if tracking is not None:
        for prefix in tracking.prefixes:
            entries += ENTRY_BYTES + len(prefix)
    total = CLIENT_BASE_BYTES + qbuf_room + argv_mem + multi_mem + omem + entries
    return Usage(qbuf, argv_mem, multi_mem, omem, total)


def counts_toward_limit(client: Client) -> bool:
    """Normal and pub/sub clients count toward maxmemory-clients (Redis's CLIENT_TYPE_NORMAL and _PUBSUB)."""
    # (by name: client.py imports this module, so this one does not import client.py at run time)
    return client.kind.name == "RESP" and not client.rdb_only and client.last_command not in ("sync", "psync")


# The lowest limit in force (Redis's getClientEvictionLimit): a smaller maxmemory-clients, "1" say, would
# disconnect every client, the one that set it included, and leave nobody able to set it back.
MIN_LIMIT_BYTES = 128 * 1024


def parse_limit(value: Any, maxmemory: int) -> int:
    """maxmemory-clients in bytes: an int as is, ``N%`` as that share of maxmemory (0 when maxmemory is 0: no
    limit), and never under ``MIN_LIMIT_BYTES`` while there is one."""
    if isinstance(value, str) and value.endswith("%"):
        limit = maxmemory * int(value[:-1]) // 100 if maxmemory else 0
    else:
        limit = int(value)
    return max(limit, MIN_LIMIT_BYTES) if limit > 0 else 0


class ClientEviction:
    """maxmemory-clients: the limit, the eviction pass, and INFO's evicted_clients (loop thread only)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.limit_bytes = 0
        # True while evicting: a client closed on the way must not start another pass.
        self._evicting = False
        # Clients holding more than BUSY_BYTES over their base, as of the last cron tick or their last command:
        # used_memory sums their fresh figures and a base for everyone else, so it costs per busy client, not
        # per connection.
        self.busy: set[Client] = set()
        server.client_removed_hooks.append(self._forget)

    def start(self) -> None:
        """Follow maxmemory-clients (once the Server's other parts exist: eviction uses them)."""
        self.server.config.on_change("maxmemory-clients", self._reconfigure)
        self.server.config.on_change("maxmemory", self._reconfigure)
        self._reconfigure(None)

    @property
    def enabled(self) -> bool:
        return self.limit_bytes > 0

    def _reconfigure(self, _value: Any) -> None:
        config = self.server.config
        self.limit_bytes = parse_limit(config["maxmemory-clients"], config["maxmemory"])
        self.server.restrict(RESTRICTION, self.enabled)
        if self.enabled:
            self.evict()  # a lower limit applies at once, as Redis's CONFIG SET maxmemory-clients

    def before_command(self, client: Client) -> bool:
        """Redis's processCommand: evict before running; True when the caller itself was evicted. The caller
        counts as Redis last measured it: its query buffer, not the arguments of the command about to run."""
        self.evict()
        return client.id not in self.server.clients

    def _forget(self, client: Client) -> None:
        self.busy.discard(client)

    def note(self, client: Client) -> None:
        """A command is about to run for ``client`` with maxmemory set: follow it if it holds memory."""
        if client not in self.busy and usage(client).total > CLIENT_BASE_BYTES + BUSY_BYTES:
            self.busy.add(client)

    def partial_read(self, client: Client) -> None:
        """A read left ``client`` with a request still arriving: it counts now (Redis updates a client's
        memory after each read), for maxmemory and for maxmemory-clients."""
        if self.server.memory.enforcing:
            self.note(client)
        if self.enabled:
            self.evict()

    def clients_bytes(self) -> int:
        """used_memory's share of the clients (INFO's used_memory_clients; maxmemory weighs it)."""
        extra = 0
        for client in self.busy:
            extra += usage(client).total - CLIENT_BASE_BYTES
        return len(self.server.clients) * CLIENT_BASE_BYTES + extra

    def cron(self) -> None:
        """Once per cron tick: replies piling up count with no command running; a client past its soft
        output limit is closed when its time is up even if nothing more is sent to it (Redis's clientsCron)."""
        server = self.server
        limits = server.output_limits
        for client_id in limits.soft_clocked():
            client = server.clients.get(client_id)
            if client is not None and limits.exceeded(client, usage(client).omem):
                client.abort()
        self.busy = {c for c in server.clients.values() if usage(c).total > CLIENT_BASE_BYTES + BUSY_BYTES}
        self.evict()

    def evict(self) -> int:
        """Disconnect the biggest evictable clients until the total is under the limit; how many went."""
        if not self.enabled or self._evicting:
            return 0
        server = self.server
        limits = server.output_limits
        total = 0
        candidates: list[tuple[int, Client]] = []
        over_obuf: list[Client] = []
        for client in server.clients.values():
            if not counts_toward_limit(client):
                continue
            used = usage(client)
            if used.omem and limits.exceeded(client, used.omem):
                over_obuf.append(client)  # closed for its output buffer limit first: it does not count
                continue
            total += used.total
            if not client.no_evict:
                candidates.append((used.total, client))
        self._evicting = True
        try:
            for client in over_obuf:
                client.abort()
            if total < self.limit_bytes:
                return 0
            candidates.sort(key=lambda item: item[0], reverse=True)
            evicted = 0
            for size, client in candidates:
                if total < self.limit_bytes:
                    break
                log.info("client_evicted", client_id=client.id, addr=client.addr, tot_mem=size)
                client.abort()
                server.stats.evicted_clients += 1
                total -= size
                evicted += 1
            return evicted
        finally:
            self._evicting = False
