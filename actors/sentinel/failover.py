"""The failover: leader election by epoch votes, replica selection, promotion, the replicas' reconfiguration,
and the switch of the master's address (Redis's sentinelFailover* and sentinelVoteLeader, same rules).

Called by the monitor: ``start_if_needed`` and ``step`` from the timer, ``after_info`` when an INFO reply
arrives, ``switch_to_promoted`` once a failover reached UPDATE_CONFIG. Every state change is an event on the
sentinel's pub/sub and, where Redis persists it, a rewrite of sentinel.conf.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from typing import TYPE_CHECKING, Any

from actors.sentinel.config import add_replica
from actors.sentinel.state import MAX_DESYNC_MS, FailoverState, Flag, Instance, Kind, now_ms

if TYPE_CHECKING:
    from actors.sentinel.monitor import Monitor

SIMULATE_CRASH_AFTER_ELECTION = 1
SIMULATE_CRASH_AFTER_PROMOTION = 2


def current_master(master: Instance) -> Instance:
    """Whose address hellos announce: the promoted replica's once it is promoted (Redis does the same, so the
    other sentinels switch before the replicas are all reconfigured)."""
    promoted = master.promoted
    if promoted is not None and master.failover_state in (
        FailoverState.RECONF_SLAVES,
        FailoverState.UPDATE_CONFIG,
    ):
        return promoted
    return master


def set_state(monitor: Monitor, master: Instance, state: FailoverState, now: int) -> None:
    master.failover_state = state
    master.failover_state_change_ms = now


# -- votes --------------------------------------------------------------------------------------------------


def vote_leader(monitor: Monitor, master: Instance, req_epoch: int, req_runid: str) -> tuple[str | None, int]:
    """Redis's sentinelVoteLeader: one vote per epoch, durable before it is answered."""
    state = monitor.state
    if req_epoch > state.current_epoch:
        state.current_epoch = req_epoch
        monitor.flush_config()
        monitor.event("#", "+new-epoch", None, str(req_epoch))
    if master.leader_epoch < req_epoch and state.current_epoch <= req_epoch:
        master.leader = req_runid
        master.leader_epoch = state.current_epoch
        monitor.flush_config()
        monitor.event("#", "+vote-for-leader", None, f"{req_runid} {master.leader_epoch}")
        if req_runid != state.myid:
            master.failover_start_ms = now_ms() + random.randrange(MAX_DESYNC_MS)
    return master.leader, master.leader_epoch


def get_leader(monitor: Monitor, master: Instance, epoch: int) -> str | None:
    """Redis's sentinelGetLeader: the runid with a majority of the known sentinels and at least the quorum."""
    votes: Counter[str] = Counter()
    for sentinel in master.sentinels.values():
        if sentinel.leader and sentinel.leader_epoch == monitor.state.current_epoch:
            votes[sentinel.leader] += 1
    voters = len(master.sentinels) + 1
    winner = votes.most_common(1)[0][0] if votes else None
    my_vote, leader_epoch = vote_leader(monitor, master, epoch, winner or monitor.state.myid)
    if my_vote and leader_epoch == epoch:
        votes[my_vote] += 1
    if not votes:
        return None
    winner, most = votes.most_common(1)[0]
    if most < voters // 2 + 1 or most < master.quorum:
        return None
    return winner


# -- starting -----------------------------------------------------------------------------------------------


def start(monitor: Monitor, master: Instance, now: int) -> None:
    """Redis's sentinelStartFailover: a new epoch, then ask for votes."""
    state = monitor.state
    set_state(monitor, master, FailoverState.WAIT_START, now)
    master.flags |= Flag.FAILOVER_IN_PROGRESS
    state.current_epoch += 1
    master.failover_epoch = state.current_epoch
    monitor.flush_config()
    monitor.event("#", "+new-epoch", None, str(state.current_epoch))
    monitor.event("#", "+try-failover", master)
    master.failover_start_ms = now + random.randrange(MAX_DESYNC_MS)


def start_if_needed(monitor: Monitor, master: Instance, now: int) -> bool:
    if not master.has(Flag.O_DOWN) or master.has(Flag.FAILOVER_IN_PROGRESS):
        return False
    if now - master.failover_start_ms < master.failover_timeout_ms * 2:
        if master.failover_delay_logged != master.failover_start_ms:
            master.failover_delay_logged = master.failover_start_ms
            monitor.log(
                "#",
                f"Next failover delay: I will not start a failover before {master.failover_start_ms + master.failover_timeout_ms * 2 - now} ms",
            )
        return False
    start(monitor, master, now)
    return True


def force(monitor: Monitor, master: Instance) -> str | None:
    """SENTINEL FAILOVER: no agreement asked. The error text, or None once started."""
    if master.has(Flag.FAILOVER_IN_PROGRESS):
        return "INPROG Failover already in progress"
    if select_replica(monitor, master, now_ms()) is None:
        return "NOGOODSLAVE No suitable replica to promote"
    now = now_ms()
    start(monitor, master, now)
    master.flags |= Flag.FORCE_FAILOVER
    master.failover_start_ms = now
    return None


# -- the state machine --------------------------------------------------------------------------------------


def step(monitor: Monitor, master: Instance, now: int) -> None:
    if not master.has(Flag.FAILOVER_IN_PROGRESS):
        return
    state = master.failover_state
    if state is FailoverState.WAIT_START:
        _wait_start(monitor, master, now)
    elif state is FailoverState.SELECT_SLAVE:
        _select_slave(monitor, master, now)
    elif state is FailoverState.SEND_SLAVEOF_NOONE:
        _send_slaveof_noone(monitor, master, now)
    elif state is FailoverState.WAIT_PROMOTION:
        if now - master.failover_state_change_ms > master.failover_timeout_ms:
            monitor.event("#", "-failover-abort-slave-timeout", master)
            abort(monitor, master)
    elif state is FailoverState.RECONF_SLAVES:
        _reconf_slaves(monitor, master, now)


def _wait_start(monitor: Monitor, master: Instance, now: int) -> None:
    leader = get_leader(monitor, master, master.failover_epoch)
    elected = leader == monitor.state.myid
    if not elected and not master.has(Flag.FORCE_FAILOVER):
        election_timeout = min(monitor.state.timing["election-timeout"], master.failover_timeout_ms)
        if now - master.failover_start_ms > election_timeout:
            monitor.event("#", "-failover-abort-not-elected", master)
            abort(monitor, master)
        return
    monitor.event("#", "+elected-leader", master)
    if monitor.state.simulate_failure & SIMULATE_CRASH_AFTER_ELECTION:
        os._exit(99)
    set_state(monitor, master, FailoverState.SELECT_SLAVE, now)
    monitor.event("#", "+failover-state-select-slave", master)
    _select_slave(monitor, master, now)


def select_replica(monitor: Monitor, master: Instance, now: int) -> Instance | None:
    """Redis's sentinelSelectSlave: healthy, recently seen replicas; lowest priority, then highest offset,
    then the smallest run id. Priority 0 is never promoted."""
    info_period = monitor.state.timing["info-period"]
    max_down_ms = master.down_after_ms * 10
    if master.has(Flag.S_DOWN):
        max_down_ms += now - master.s_down_since_ms
    info_validity = info_period * 5 // 10 if master.has(Flag.S_DOWN) else info_period * 3
    info_validity = max(info_validity, 5000)
    candidates = []
    for replica in master.replicas.values():
        if replica.flags & (Flag.S_DOWN | Flag.O_DOWN) or not replica.link.connected:
            continue
        if now - replica.link.last_avail_ms > monitor.state.timing["ping-period"] * 5:
            continue
        if replica.slave_priority == 0 or replica.role_reported is not Kind.REPLICA:
            continue
        if not replica.info_refresh_ms or now - replica.info_refresh_ms > info_validity:
            continue
        if replica.master_link_down_ms > max_down_ms:
            continue
        candidates.append(replica)
    if not candidates:
        return None
    candidates.sort(key=lambda r: (r.slave_priority, -r.slave_repl_offset, r.runid or "\xff"))
    return candidates[0]


def _select_slave(monitor: Monitor, master: Instance, now: int) -> None:
    replica = select_replica(monitor, master, now)
    if replica is None:
        monitor.event("#", "-failover-abort-no-good-slave", master)
        abort(monitor, master)
        return
    monitor.event("#", "+selected-slave", replica)
    replica.flags |= Flag.PROMOTED
    master.promoted = replica
    set_state(monitor, master, FailoverState.SEND_SLAVEOF_NOONE, now)
    monitor.event("*", "+failover-state-send-slaveof-noone", replica)
    _send_slaveof_noone(monitor, master, now)


def send_slaveof(
    monitor: Monitor, ri: Instance, host: str | None, port: int = 0, on_done: Any = None
) -> bool:
    """The reconfiguration transaction Redis sends (sentinelSendSlaveOf): SLAVEOF, CONFIG REWRITE, and the
    CLIENT KILLs that make application clients ask the sentinels again."""
    return monitor.transaction(ri, slaveof_commands(host, port), on_done)


def slaveof_commands(host: str | None, port: int = 0) -> list[list[Any]]:
    slaveof: list[Any] = ["SLAVEOF", "NO", "ONE"] if host is None else ["SLAVEOF", host, port]
    return [
        ["MULTI"], slaveof, ["CONFIG", "REWRITE"], ["CLIENT", "KILL", "TYPE", "normal"],
        ["CLIENT", "KILL", "TYPE", "pubsub"], ["EXEC"],
    ]  # fmt: skip


def _send_slaveof_noone(monitor: Monitor, master: Instance, now: int) -> None:
    promoted = master.promoted
    assert promoted is not None
    if not promoted.link.connected:
        if now - master.failover_state_change_ms > master.failover_timeout_ms:
            monitor.event("#", "-failover-abort-slave-timeout", master)
            abort(monitor, master)
        return

    def promoted_answered() -> None:
        monitor.send_info(promoted)  # see the promotion now rather than at the next INFO period

    if not send_slaveof(monitor, promoted, None, on_done=promoted_answered):
        return
    monitor.event("*", "+failover-state-wait-promotion", promoted)
    set_state(monitor, master, FailoverState.WAIT_PROMOTION, now)


def _reconf_slaves(monitor: Monitor, master: Instance, now: int) -> None:
    promoted = master.promoted
    assert promoted is not None
    in_progress = sum(
        1 for r in master.replicas.values() if r.flags & (Flag.RECONF_SENT | Flag.RECONF_INPROG)
    )
    reconf_timeout = monitor.state.timing["slave-reconf-timeout"]
    for replica in master.replicas.values():
        if replica is promoted or replica.has(Flag.RECONF_DONE):
            continue
        if replica.has(Flag.RECONF_SENT) and now - replica.reconf_sent_ms > reconf_timeout:
            monitor.event("-", "-slave-reconf-sent-timeout", replica)
            replica.flags = (replica.flags & ~Flag.RECONF_SENT) | Flag.RECONF_DONE
            continue
        if in_progress >= master.parallel_syncs:
            break
        if replica.flags & (Flag.RECONF_SENT | Flag.RECONF_INPROG) or not replica.link.connected:
            continue

        def sent(replica: Instance = replica) -> None:
            monitor.send_info(replica)

        if send_slaveof(monitor, replica, monitor.state.shown(promoted), promoted.port, on_done=sent):
            replica.flags |= Flag.RECONF_SENT
            replica.reconf_sent_ms = now
            monitor.event("*", "+slave-reconf-sent", replica)
            in_progress += 1
    _detect_end(monitor, master, now)


def _detect_end(monitor: Monitor, master: Instance, now: int) -> None:
    promoted = master.promoted
    assert promoted is not None
    if promoted.has(Flag.S_DOWN):
        return
    not_reconfigured = sum(
        1
        for r in master.replicas.values()
        if r is not promoted and not r.has(Flag.RECONF_DONE) and not r.has(Flag.S_DOWN)
    )
    timeout = now - master.failover_state_change_ms > master.failover_timeout_ms
    if timeout:
        not_reconfigured = 0
        monitor.event("#", "+failover-end-for-timeout", master)
    if not_reconfigured:
        return
    monitor.event("#", "+failover-end", master)
    set_state(monitor, master, FailoverState.UPDATE_CONFIG, now)
    if timeout:
        for replica in master.replicas.values():
            if replica is promoted or replica.flags & (Flag.RECONF_DONE | Flag.RECONF_SENT):
                continue
            if send_slaveof(monitor, replica, monitor.state.shown(promoted), promoted.port):
                monitor.event("*", "+slave-reconf-sent-be", replica)


def abort(monitor: Monitor, master: Instance) -> None:
    """Redis's sentinelAbortFailover: back to watching; the promoted flag goes."""
    master.flags &= ~(Flag.FAILOVER_IN_PROGRESS | Flag.FORCE_FAILOVER)
    set_state(monitor, master, FailoverState.NONE, now_ms())
    if master.promoted is not None:
        master.promoted.flags &= ~Flag.PROMOTED
        master.promoted = None


# -- what INFO replies mean for a failover ------------------------------------------------------------------


def _master_looks_sane(monitor: Monitor, master: Instance, now: int) -> bool:
    return (
        master.has(Flag.MASTER)
        and not master.flags & (Flag.S_DOWN | Flag.O_DOWN)
        and master.role_reported is Kind.MASTER
        and bool(master.info_refresh_ms)
        and now - master.info_refresh_ms < monitor.state.timing["info-period"] * 2
    )


def _no_down_for(ri: Instance, ms: int, now: int) -> bool:
    if ri.flags & (Flag.S_DOWN | Flag.O_DOWN):
        return False
    most_recent = max(ri.s_down_since_ms, ri.o_down_since_ms)
    return most_recent == 0 or now - most_recent > ms


def after_info(monitor: Monitor, ri: Instance, role: Kind, now: int) -> None:
    master = ri.master
    if ri.kind is not Kind.REPLICA or master is None:
        return
    if role is Kind.MASTER:
        if ri.has(Flag.PROMOTED):
            if (
                master.has(Flag.FAILOVER_IN_PROGRESS)
                and master.failover_state is FailoverState.WAIT_PROMOTION
            ):
                master.config_epoch = master.failover_epoch
                set_state(monitor, master, FailoverState.RECONF_SLAVES, now)
                monitor.flush_config()
                monitor.event("#", "+promoted-slave", ri)
                if monitor.state.simulate_failure & SIMULATE_CRASH_AFTER_PROMOTION:
                    os._exit(99)
                monitor.event("#", "+failover-state-reconf-slaves", master)
                shown = monitor.state.shown
                monitor.client_reconfig(master, "leader", (shown(master), master.port), (shown(ri), ri.port))
                monitor.force_hello(master)
            return
        wait_ms = monitor.state.timing["publish-period"] * 4
        if (
            _master_looks_sane(monitor, master, now)
            and _no_down_for(ri, wait_ms, now)
            and now - ri.role_reported_ms > wait_ms
        ):
            if send_slaveof(monitor, ri, monitor.state.shown(master), master.port):
                monitor.event("*", "+convert-to-slave", ri)
        return
    state = monitor.state
    if ri.slave_master_port != master.port or not state.names(master, ri.slave_master_host):
        wait_ms = master.failover_timeout_ms
        if (
            not ri.flags & (Flag.RECONF_SENT | Flag.RECONF_INPROG)
            and _master_looks_sane(monitor, master, now)
            and _no_down_for(ri, wait_ms, now)
            and now - ri.slave_conf_change_ms > wait_ms
        ):
            if send_slaveof(monitor, ri, monitor.state.shown(master), master.port):
                monitor.event("*", "+fix-slave-config", ri)
    promoted = master.promoted
    if promoted is None or not ri.flags & (Flag.RECONF_SENT | Flag.RECONF_INPROG):
        return
    if (
        ri.has(Flag.RECONF_SENT)
        and ri.slave_master_port == promoted.port
        and state.names(promoted, ri.slave_master_host)
    ):
        ri.flags = (ri.flags & ~Flag.RECONF_SENT) | Flag.RECONF_INPROG
        monitor.event("*", "+slave-reconf-inprog", ri)
    if ri.has(Flag.RECONF_INPROG) and ri.slave_master_link_up:
        ri.flags = (ri.flags & ~Flag.RECONF_INPROG) | Flag.RECONF_DONE
        monitor.event("*", "+slave-reconf-done", ri)


# -- the end ------------------------------------------------------------------------------------------------


def switch_to_promoted(monitor: Monitor, master: Instance) -> None:
    promoted = master.promoted
    assert promoted is not None
    old_ip, old_port = master.ip, master.port
    shown = monitor.state.shown
    # Redis converts a still-running old master (SENTINEL FAILOVER, a partition) only once it has reported
    # role:master for 4 publish periods, ~8 s in which clients still write to it and lose those writes. We
    # demote it at once: the same transaction, CLIENT KILL included, sent as the switch is made.
    old_alive = master.link.connected and not master.flags & (Flag.S_DOWN | Flag.O_DOWN)
    monitor.event(
        "#",
        "+switch-master",
        None,
        f"{master.name} {shown(master)} {old_port} {shown(promoted)} {promoted.port}",
    )
    reset_master_and_change_address(monitor, master, promoted.ip, promoted.port, promoted.hostname)
    old = master.replicas.get(f"{old_ip}:{old_port}")
    if old_alive and old is not None:
        monitor.spawn(monitor.one_shot_transaction(old, slaveof_commands(shown(promoted), promoted.port)))
        monitor.event("*", "+convert-to-slave", old)


def reset_master(monitor: Monitor, master: Instance, keep_sentinels: bool = True) -> None:
    """Redis's sentinelResetMaster: forget replicas (and sentinels unless kept), flags and failover state."""
    for replica in master.replicas.values():
        monitor.spawn(monitor.close_link(replica))
    master.replicas = {}
    if not keep_sentinels:
        for sentinel in master.sentinels.values():
            monitor.spawn(monitor.close_link(sentinel))
        master.sentinels = {}
    monitor.spawn(monitor.close_link(master))
    master.flags = Flag.MASTER
    master.leader = None
    master.failover_state = FailoverState.NONE
    master.failover_state_change_ms = 0
    master.failover_start_ms = 0
    master.promoted = None
    master.runid = ""
    master.info_refresh_ms = 0
    master.role_reported = Kind.MASTER
    master.role_reported_ms = now_ms()
    master.s_down_since_ms = master.o_down_since_ms = 0
    master.link.act_ping_ms = 0
    master.link.last_avail_ms = master.link.last_pong_ms = now_ms()


def reset_master_and_change_address(
    monitor: Monitor, master: Instance, ip: str, port: int, hostname: str = ""
) -> None:
    """The replicas become the old ones minus the new master, plus the old master (it will come back as a
    replica); sentinels are kept; sentinel.conf is rewritten. ``hostname``: the name ``ip`` was resolved from."""
    addresses = [(r.ip, r.port, r.hostname) for r in master.replicas.values() if (r.ip, r.port) != (ip, port)]
    if (master.ip, master.port) != (ip, port):
        addresses.append((master.ip, master.port, master.hostname))
    reset_master(monitor, master)
    master.ip, master.port, master.hostname = ip, port, hostname
    for replica_ip, replica_port, replica_hostname in addresses:
        replica = add_replica(master, replica_ip, replica_port, replica_hostname)
        if replica is not None:
            monitor.event("*", "+slave", replica)
    monitor.flush_config()
