"""The sentinel's instance model: masters, their replicas and the other sentinels, as Redis Sentinel keeps them.

Plain data with no I/O: the monitor (monitor.py) fills it from PING, INFO and hello replies, the failover
(failover.py) drives ``FailoverState``, and the commands (commands.py) render it as Redis's instance map.
Times are ``time.monotonic()`` milliseconds (``now_ms()``), so a clock jump cannot fake a timeout; TILT is
detected separately from the timer's own period.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass, field
from enum import Enum, IntFlag
from typing import Any

# Redis's defaults (sentinel.c): the periods of the three timers and the failure detection constants.
PING_PERIOD_MS = 1000  # a PING at least this often (less if down-after-milliseconds is smaller)
INFO_PERIOD_MS = 10_000  # INFO to masters and replicas; 1 s for replicas while the master fails over
PUBLISH_PERIOD_MS = 2000  # a hello to every master, replica and sentinel
ASK_PERIOD_MS = 1000  # IS-MASTER-DOWN-BY-ADDR to the other sentinels while a master is SDOWN
DEFAULT_DOWN_AFTER_MS = 30_000
DEFAULT_FAILOVER_TIMEOUT_MS = 180_000
DEFAULT_PARALLEL_SYNCS = 1
TILT_TRIGGER_MS = 2000  # a timer gap over this (or a negative one) means the process was stopped: TILT
TILT_PERIOD_MS = 30_000  # how long TILT lasts once nothing jumps any more
SLAVE_RECONF_TIMEOUT_MS = 10_000  # a replica sent SLAVEOF that shows no progress within this is skipped
MIN_LINK_RECONNECT_PERIOD_MS = 15_000
ELECTION_TIMEOUT_MS = 10_000
MAX_DESYNC_MS = 1000  # random delay added to a failover start so sentinels rarely try at once
INFO_VALIDITY_FACTOR = 3  # a replica whose INFO is older than this many info periods is not promoted
MASTER_REBOOT_DOWN_AFTER_DEFAULT_MS = 0

HELLO_CHANNEL = "__sentinel__:hello"


def now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class Kind(Enum):
    MASTER = "master"  # a monitored master: has replicas, sentinels and a quorum
    REPLICA = "slave"  # a replica discovered from its master's INFO (or from sentinel.conf)
    SENTINEL = "sentinel"  # another sentinel monitoring the same master, discovered by hello


class Flag(IntFlag):
    """SRI_* in Redis's order: the order ``flags`` prints them in."""

    S_DOWN = 1 << 0
    O_DOWN = 1 << 1
    MASTER = 1 << 2
    SLAVE = 1 << 3
    SENTINEL = 1 << 4
    DISCONNECTED = 1 << 5  # rendered from the link, never stored
    MASTER_DOWN = 1 << 6  # a sentinel that said the master is down (for ODOWN)
    FAILOVER_IN_PROGRESS = 1 << 7
    PROMOTED = 1 << 8
    RECONF_SENT = 1 << 9
    RECONF_INPROG = 1 << 10
    RECONF_DONE = 1 << 11
    FORCE_FAILOVER = 1 << 12
    SCRIPT_KILL_SENT = 1 << 13
    # A master whose run_id changed (it restarted) while master-reboot-down-after-period is set, until it
    # answers PING with PONG (not -LOADING); SDOWN once that lasts longer than the period. Not in replies'
    # flags, as Redis's SRI_MASTER_REBOOT is not.
    MASTER_REBOOT = 1 << 14


FLAG_NAMES = (
    (Flag.S_DOWN, "s_down"),
    (Flag.O_DOWN, "o_down"),
    (Flag.MASTER, "master"),
    (Flag.SLAVE, "slave"),
    (Flag.SENTINEL, "sentinel"),
    (Flag.DISCONNECTED, "disconnected"),
    (Flag.MASTER_DOWN, "master_down"),
    (Flag.FAILOVER_IN_PROGRESS, "failover_in_progress"),
    (Flag.PROMOTED, "promoted"),
    (Flag.RECONF_SENT, "reconf_sent"),
    (Flag.RECONF_INPROG, "reconf_inprog"),
    (Flag.RECONF_DONE, "reconf_done"),
    (Flag.FORCE_FAILOVER, "force_failover"),
    (Flag.SCRIPT_KILL_SENT, "script_kill_sent"),
)


class FailoverState(Enum):
    """SENTINEL_FAILOVER_STATE_*: where a master's failover is (the leader's view)."""

    NONE = "none"  # no failover running
    WAIT_START = "wait_start"  # waiting to learn whether this sentinel won the election
    SELECT_SLAVE = "select_slave"  # elected: choosing the replica to promote
    SEND_SLAVEOF_NOONE = "send_slaveof_noone"  # sending SLAVEOF NO ONE to the chosen replica
    WAIT_PROMOTION = "wait_promotion"  # waiting for the replica's INFO to say role:master
    RECONF_SLAVES = (
        "reconf_slaves"  # pointing the other replicas at the promoted one, parallel-syncs at a time
    )
    UPDATE_CONFIG = "update_config"  # done: the timer switches the master to the promoted address


@dataclass
class Link:
    """What the monitor knows about its connections to one instance (the connections live in monitor.py)."""

    connected: bool = False  # the command connection is up (and, for data nodes, the pub/sub one too)
    connected_at_ms: int = 0
    pending_commands: int = 0
    act_ping_ms: int = 0  # when the PING now awaited was sent (0: none outstanding)
    last_ping_ms: int = 0  # when the last PING was sent
    last_pong_ms: int = field(default_factory=now_ms)  # the last PING reply of any kind
    last_avail_ms: int = field(
        default_factory=now_ms
    )  # the last acceptable PING reply (PONG/LOADING/MASTERDOWN)
    last_pubsub_ms: int = field(default_factory=now_ms)  # the last message on the pub/sub connection
    cmd: Any = None  # the command connection (a RespClient), None while down
    pubsub: Any = None  # the pub/sub connection (data nodes only)
    connecting: bool = False  # a connection attempt is running
    last_attempt_ms: int = 0  # when the last one started (attempts are spaced)
    info_pending: bool = False  # an INFO was sent and not answered: no second one
    ask_pending: bool = False  # an IS-MASTER-DOWN-BY-ADDR was sent and not answered


@dataclass
class Instance:
    """One sentinelRedisInstance: a master, a replica or a sentinel."""

    kind: Kind
    name: str
    ip: str  # its address: what the links connect to and what addresses are compared by
    port: int
    master: Instance | None = None  # the master of a replica or a sentinel
    # The name it was given (sentinel monitor, INFO's slave<n>:ip=, a hello) when resolve-hostnames made ``ip``
    # from it; announced instead of ``ip`` with announce-hostnames yes (Redis's sentinelAddr.hostname).
    hostname: str = ""
    runid: str = ""
    flags: Flag = Flag(0)
    link: Link = field(default_factory=Link)
    s_down_since_ms: int = 0
    o_down_since_ms: int = 0
    down_after_ms: int = DEFAULT_DOWN_AFTER_MS
    info_refresh_ms: int = 0  # when INFO last answered (0: never)
    info: str = ""  # the last INFO text (INFO-CACHE)
    role_reported: Kind = Kind.MASTER
    role_reported_ms: int = field(default_factory=now_ms)
    slave_conf_change_ms: int = field(default_factory=now_ms)
    last_pub_ms: int = 0  # the last hello sent to it
    last_hello_ms: int = 0  # a sentinel: its last hello received
    last_master_down_reply_ms: int = 0  # a sentinel: its last IS-MASTER-DOWN-BY-ADDR reply
    # Masters.
    quorum: int = 2
    parallel_syncs: int = DEFAULT_PARALLEL_SYNCS
    failover_timeout_ms: int = DEFAULT_FAILOVER_TIMEOUT_MS
    auth_pass: str | None = None
    auth_user: str | None = None
    notification_script: str | None = None
    client_reconfig_script: str | None = None
    master_reboot_down_after_ms: int = MASTER_REBOOT_DOWN_AFTER_DEFAULT_MS
    master_reboot_since_ms: int = 0  # when MASTER_REBOOT was set
    rename_commands: dict[str, str] = field(default_factory=dict)
    replicas: dict[str, Instance] = field(default_factory=dict)  # by "ip:port"
    sentinels: dict[str, Instance] = field(default_factory=dict)  # by runid
    config_epoch: int = 0
    leader: str | None = None  # masters: the runid this sentinel voted for; sentinels: who they voted for
    leader_epoch: int = 0
    failover_epoch: int = 0
    failover_state: FailoverState = FailoverState.NONE
    failover_state_change_ms: int = 0
    failover_start_ms: int = 0  # also the "not before" of the next attempt (a vote pushes it forward)
    failover_delay_logged: int = 0
    promoted: Instance | None = None
    # Replicas (from their INFO).
    master_link_down_ms: int = 0
    slave_master_host: str = ""
    slave_master_port: int = 0
    slave_master_link_up: bool = False
    slave_priority: int = 100
    slave_repl_offset: int = 0
    replica_announced: bool = True
    reconf_sent_ms: int = 0

    @property
    def addr(self) -> str:
        return f"{self.ip}:{self.port}"

    def shown_ip(self, hostnames: bool) -> str:
        """Redis's announceSentinelAddr: the hostname it was given with announce-hostnames yes, else its IP."""
        return (self.hostname or self.ip) if hostnames else self.ip

    def has(self, flag: Flag) -> bool:
        return bool(self.flags & flag)

    def flag_names(self) -> str:
        flags = self.flags
        if not self.link.connected:
            flags |= Flag.DISCONNECTED
        return ",".join(name for bit, name in FLAG_NAMES if flags & bit)

    def event_text(self, hostnames: bool = False) -> str:
        """Redis's ``%@``: ``<type> <name> <ip> <port>``, plus `` @ <master> <ip> <port>`` for a non-master."""
        text = f"{self.kind.value} {self.name} {self.shown_ip(hostnames)} {self.port}"
        if self.master is not None:
            text += f" @ {self.master.name} {self.master.shown_ip(hostnames)} {self.master.port}"
        return text

    def instance_map(self, now: int, hostnames: bool = False) -> list[Any]:
        """SENTINEL MASTER/REPLICAS/SENTINELS's flat field list, in Redis's order, every value a bulk string."""
        link = self.link
        out: list[Any] = [
            "name", self.name, "ip", self.shown_ip(hostnames), "port", self.port, "runid", self.runid,
            "flags", self.flag_names(), "link-pending-commands", link.pending_commands, "link-refcount", 1,
        ]  # fmt: skip
        if self.failover_state is not FailoverState.NONE:
            out += ["failover-state", self.failover_state.value]
        out += [
            "last-ping-sent", now - link.act_ping_ms if link.act_ping_ms else 0,
            "last-ok-ping-reply", now - link.last_avail_ms,
            "last-ping-reply", now - link.last_pong_ms,
        ]  # fmt: skip
        if self.has(Flag.S_DOWN):
            out += ["s-down-time", now - self.s_down_since_ms]
        if self.has(Flag.O_DOWN):
            out += ["o-down-time", now - self.o_down_since_ms]
        out += ["down-after-milliseconds", self.down_after_ms]
        if self.kind is not Kind.SENTINEL:
            out += [
                "info-refresh", now - self.info_refresh_ms if self.info_refresh_ms else 0,
                "role-reported", self.role_reported.value,
                "role-reported-time", now - self.role_reported_ms,
            ]  # fmt: skip
        if self.kind is Kind.MASTER:
            out += [
                "config-epoch", self.config_epoch, "num-slaves", len(self.replicas),
                "num-other-sentinels", len(self.sentinels), "quorum", self.quorum,
                "failover-timeout", self.failover_timeout_ms, "parallel-syncs", self.parallel_syncs,
            ]  # fmt: skip
            if self.notification_script:
                out += ["notification-script", self.notification_script]
            if self.client_reconfig_script:
                out += ["client-reconfig-script", self.client_reconfig_script]
        if self.kind is Kind.REPLICA:
            out += [
                "master-link-down-time", self.master_link_down_ms,
                "master-link-status", "ok" if self.slave_master_link_up else "err",
                "master-host", self.slave_master_host or "?", "master-port", self.slave_master_port,
                "slave-priority", self.slave_priority, "slave-repl-offset", self.slave_repl_offset,
                "replica-announced", int(self.replica_announced),
            ]  # fmt: skip
        if self.kind is Kind.SENTINEL:
            out += [
                "last-hello-message", now - self.last_hello_ms,
                "voted-leader", self.leader or "?", "voted-leader-epoch", self.leader_epoch,
            ]  # fmt: skip
        return [value if isinstance(value, bytes) else str(value).encode() for value in out]


@dataclass
class SentinelState:
    """The whole sentinel: its id, epoch, masters and global settings (what sentinel.conf persists)."""

    myid: str
    current_epoch: int = 0
    masters: dict[str, Instance] = field(default_factory=dict)
    announce_ip: str = ""
    announce_port: int = 0
    resolve_hostnames: bool = False
    announce_hostnames: bool = False
    sentinel_user: str | None = None
    sentinel_pass: str | None = None
    deny_scripts_reconfig: bool = True
    tilt: bool = False
    tilt_start_ms: int = 0
    previous_timer_ms: int = field(default_factory=now_ms)
    simulate_failure: int = 0  # 1: crash after election, 2: crash after promotion
    # SENTINEL DEBUG's knobs (milliseconds), Redis's names.
    timing: dict[str, int] = field(
        default_factory=lambda: {
            "info-period": INFO_PERIOD_MS,
            "ping-period": PING_PERIOD_MS,
            "ask-period": ASK_PERIOD_MS,
            "publish-period": PUBLISH_PERIOD_MS,
            "default-down-after": DEFAULT_DOWN_AFTER_MS,
            "default-failover-timeout": DEFAULT_FAILOVER_TIMEOUT_MS,
            "tilt-trigger": TILT_TRIGGER_MS,
            "tilt-period": TILT_PERIOD_MS,
            "slave-reconf-timeout": SLAVE_RECONF_TIMEOUT_MS,
            "min-link-reconnect-period": MIN_LINK_RECONNECT_PERIOD_MS,
            "election-timeout": ELECTION_TIMEOUT_MS,
            "script-max-runtime": 60_000,
            "script-retry-delay": 30_000,
        }
    )

    def master_by_addr(self, host: str, port: int) -> Instance | None:
        for master in self.masters.values():
            if master.port == port and self.names(master, host):
                return master
        return None

    # -- addresses (resolve-hostnames, announce-hostnames) -----------------------------------------------

    def resolve(self, host: str) -> str | None:
        """Redis's createSentinelAddr: an IP address as it is; with resolve-hostnames yes a hostname's first
        address (getaddrinfo, as anetResolve); None for a hostname otherwise, or one that does not resolve."""
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            pass
        if not self.resolve_hostnames or not host:
            return None
        try:
            found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return None
        return str(found[0][4][0]) if found else None

    def names(self, ri: Instance, host: str) -> bool:
        """Redis's sentinelAddrEqualsHostname: does ``host`` (an IP or a hostname) name ``ri``? By address when it
        resolves, else by the name it was given (resolve-hostnames yes) or its IP."""
        resolved = self.resolve(host)
        if resolved is None:
            known = (ri.hostname or ri.ip) if self.resolve_hostnames else ri.ip
            return host.lower() == known.lower()
        return resolved == ri.ip

    def shown(self, ri: Instance) -> str:
        """The address announced for ``ri`` (replies, events, hellos, sentinel.conf, SLAVEOF)."""
        return ri.shown_ip(self.announce_hostnames)
