"""Replica failover: the election a replica runs when its master FAILs, the masters' votes, and CLUSTER
FAILOVER [FORCE|TAKEOVER] (loop thread).

Redis's clusterHandleSlaveFailover / clusterSendFailoverAuthIfNeeded, reduced to their observable rules:

- a replica whose copy of its master's data is too old does not stand (cluster-replica-validity-factor: its
  link to the master down or silent for longer than node_timeout + node_timeout * factor +
  repl-ping-replica-period; factor 0 = always eligible; CLUSTER FAILOVER skips the check);
- a replica whose master is FAIL waits 500 ms (for the FAIL to reach the masters; no wait once a majority of
  masters told it they hold the master FAIL: the FAIL message's sender, the masters' gossip, and the ping a
  master sends the failed master's replicas when a FAIL message reaches it) + up to 500 ms random (only
  when it has sibling replicas to race with) + 1 s per sibling with a better replication offset (its rank,
  which can only grow while it waits: each step adds 1 s), then bumps currentEpoch and asks every node for a
  vote (AuthRequest);
- a master serving slots votes at most once per epoch (lastVoteEpoch, saved to nodes.conf before the vote
  leaves), only for a replica of a FAIL master (unless the request is forced), at most once per
  2 x node_timeout for the same master, and not if a claimed slot has a newer owner;
- with votes from a majority of the slot-owning masters the replica takes its master's slots with the
  election's epoch as its configEpoch and tells everyone (PONG broadcast); the others follow by configEpoch;
- CLUSTER FAILOVER (Redis's manual failover): the replica asks its master to start (MfStart); the master
  pauses its clients' writes (CLIENT PAUSE WRITE, for up to 2 x the 5 s manual-failover timeout) and answers
  with its replication offset (MfOffset, again for every repeated MfStart); the replica waits until it has
  applied that much, then at once runs an election the masters vote for although its master is not failed
  (``force``). Writes held by the pause run when it ends: on a node that lost its slots meanwhile they get
  MOVED, so no acknowledged write is lost. After 5 s without a promotion both sides give up ("Manual
  failover timed out.") and the master lets its writes go. FORCE skips the offset step (and the pause);
  TAKEOVER skips the vote too (a new configEpoch without consensus).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import structlog

from actors.server.pause import PauseMode
from protocol.clusterbus import AuthAck, AuthRequest, MfOffset, MfStart

if TYPE_CHECKING:
    from actors.cluster.facade import Cluster
    from actors.cluster.state import ClusterNode

log = structlog.get_logger("redactor.cluster")

ELECTION_FIXED_DELAY_MS = 500
ELECTION_RANDOM_DELAY_MS = 500
RANK_DELAY_MS = 1000
AUTH_TIMEOUT_MIN_MS = 2000
MANUAL_FAILOVER_TIMEOUT_MS = 5000  # Redis's CLUSTER_MF_TIMEOUT
# Redis's CLUSTER_MF_PAUSE_MULT: the master's pause outlives the manual failover's timeout by this factor, so
# it never ends before the master itself gives up (which unpauses at once).
MANUAL_FAILOVER_PAUSE_MULT = 2
# The master gives up this much later than the replica: a replica wins only before its own deadline, and its
# promotion (broadcast at once) must reach the master before the master lets its held writes run as a master.
MANUAL_FAILOVER_MASTER_GRACE_MS = 1000
# Redis's CLUSTER_CANT_FAILOVER_RELOG_PERIOD: a replica that cannot fail over says why this often.
CANT_FAILOVER_RELOG_MS = 10_000


class Phase(Enum):
    IDLE = "idle"  # nothing to do: our master is fine (or we are a master)
    WAITING = "waiting"  # an election is scheduled at start_ms (rank delay)
    VOTING = "voting"  # AuthRequests sent for epoch; counting AuthAcks until the auth timeout
    MANUAL_SYNC = "manual_sync"  # CLUSTER FAILOVER: waiting to apply the master's offset (mf_offset)


@dataclass
class Election:
    phase: Phase = Phase.IDLE
    start_ms: int = 0
    epoch: int = 0
    votes: set[str] = field(default_factory=set)
    retry_after_ms: int = 0
    manual: bool = False
    manual_deadline_ms: int = 0
    mf_offset: int = -1
    # The rank the scheduled election's delay counts (siblings with a better offset): it only grows while we
    # wait, and each step adds RANK_DELAY_MS (Redis's failover_auth_rank).
    rank: int = 0
    # The part of start_ms that only waits for the FAIL to spread (ELECTION_FIXED_DELAY_MS, or 0 when a
    # majority of masters already told us they hold our master FAIL).
    fixed_delay_ms: int = 0
    # masters: master id -> when we last voted for one of its replicas (ms)
    voted_ms: dict[str, int] = field(default_factory=dict)
    # masters: the replica whose manual failover paused our writes, and when we give up on it (ms); "" / 0
    # when none is in progress.
    mf_replica: str = ""
    mf_end_ms: int = 0
    # replicas: when we last logged why we cannot fail over (ms), so a stalled replica logs every 10 s
    cant_failover_logged_ms: int = 0

    def reset(self) -> None:
        self.phase = Phase.IDLE
        self.votes.clear()
        self.manual = False
        self.mf_offset = -1
        self.fixed_delay_ms = 0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _auth_timeout_ms(cluster: Cluster) -> int:
    return max(cluster.node_timeout_ms * 2, AUTH_TIMEOUT_MIN_MS)


def _rank(cluster: Cluster) -> int:
    state = cluster.state
    myself = state.myself
    master = state.nodes.get(myself.master_id or "")
    if master is None:
        return 0
    mine = cluster.repl_offset()
    return sum(
        1
        for r in master.replicas
        if r != myself.id and r in state.nodes and state.nodes[r].repl_offset > mine
    )


def cron(cluster: Cluster) -> None:
    state = cluster.state
    myself = state.myself
    election = cluster.election
    now = _now_ms()
    if myself.is_master:
        election.reset()
        if election.mf_end_ms and now > election.mf_end_ms:
            log.info("Manual failover timed out.", replica=election.mf_replica)
            end_master_pause(cluster)
        return
    if election.mf_end_ms:
        end_master_pause(cluster)  # we became a replica: the held writes now get MOVED
    master = state.nodes.get(myself.master_id or "")
    if master is None:
        return
    if election.manual and now > election.manual_deadline_ms:
        log.info(
            "Manual failover timed out.",
            phase=election.phase.value,
            master_offset=election.mf_offset,
            offset=cluster.repl_offset(),
        )
        election.reset()
        return
    automatic = master.failed and master.slot_count > 0 and not cluster.config["cluster-replica-no-failover"]
    if election.phase is Phase.MANUAL_SYNC and automatic:
        # The master failed before it sent its offset: Redis's manual failover is not started (mf_can_start
        # is 0), so its replica fails over as it would without one (clusterHandleSlaveFailover's
        # manual_failover is false), with the usual delays. Redis's cluster suite 10-manual-failover.
        log.info("cluster_manual_failover_overtaken", master=master.id)
        election.reset()
    if election.phase is Phase.MANUAL_SYNC:
        if election.mf_offset >= 0 and cluster.repl_offset() >= election.mf_offset:
            log.info(
                "All master replication stream processed, manual failover can start.",
                offset=cluster.repl_offset(),
            )
            election.phase = Phase.WAITING
            election.start_ms = now  # a manual failover's election starts at once (no rank delay)
            _start_election(cluster, master, now)
        elif election.mf_offset < 0:
            cluster.send(master, MfStart(myself.id), "mfstart")  # again: the first may have been dropped
        return
    wants = election.manual or automatic
    if not wants:
        if election.phase is not Phase.IDLE:
            election.reset()
        return
    if not election.manual and not _data_recent_enough(cluster, now):
        return  # neither scheduled nor started while our data is too old (a manual failover skips this)
    if election.phase is Phase.IDLE:
        if now < election.retry_after_ms:
            return
        election.fixed_delay_ms = (
            0 if election.manual or _fail_known_by_majority(cluster, master) else ELECTION_FIXED_DELAY_MS
        )
        delay = election.fixed_delay_ms
        if len(master.replicas) > 1:
            # The random part only keeps sibling replicas with the same offset from asking at the same
            # moment and splitting the votes; a master's only replica has no sibling to race with.
            delay += cluster.rng.randint(0, ELECTION_RANDOM_DELAY_MS)
        rank = election.rank = _rank(cluster)
        election.start_ms = now + delay + rank * RANK_DELAY_MS
        election.phase = Phase.WAITING
        log.info(
            "cluster_election_scheduled",
            delay_ms=election.start_ms - now,
            rank=rank,
            message=f"Start of election delayed for {election.start_ms - now} milliseconds "
            f"(rank #{rank}, offset {cluster.repl_offset()}).",
        )
        loop = cluster.master.loop
        if loop is not None:  # start on time, not at the first cron tick after it
            loop.call_later((election.start_ms - now) / 1000 + 0.001, cron, cluster)
        return
    if (
        election.phase is Phase.WAITING
        and election.fixed_delay_ms
        and _fail_known_by_majority(cluster, master)
    ):
        # The fixed delay only waits for the FAIL to reach the voters: a majority has told us it did.
        election.start_ms -= election.fixed_delay_ms
        election.fixed_delay_ms = 0
        log.info("cluster_election_hastened", delay_ms=max(0, election.start_ms - now))
        if election.start_ms > now and cluster.master.loop is not None:
            cluster.master.loop.call_later((election.start_ms - now) / 1000 + 0.001, cron, cluster)
    if election.phase is Phase.WAITING and not election.manual:
        # Siblings' offsets learned since the election was scheduled can push us back (clusterHandleSlaveFailover
        # updates the rank until the vote requests leave; never for a manual failover): the replica with the
        # most data asks first.
        rank = _rank(cluster)
        if rank > election.rank:
            added_ms = (rank - election.rank) * RANK_DELAY_MS
            election.start_ms += added_ms
            election.rank = rank
            log.info(
                "cluster_election_rank_updated",
                rank=rank,
                message=f"Replica rank updated to #{rank}, added {added_ms} milliseconds of delay.",
            )
    if election.phase is Phase.WAITING and now >= election.start_ms:
        _start_election(cluster, master, now)
        return
    if election.phase is Phase.VOTING and now - election.start_ms > _auth_timeout_ms(cluster):
        log.info("cluster_election_timed_out", epoch=election.epoch, votes=len(election.votes))
        election.reset()
        election.retry_after_ms = now + _auth_timeout_ms(cluster)


def _fail_known_by_majority(cluster: Cluster, master: ClusterNode) -> bool:
    """A majority of the slot-owning masters (the votes an election needs) are known to hold ``master`` FAIL
    (gossip.py's ``failed_by``): they will not refuse our vote request for want of the FAIL."""
    state = cluster.state
    voters = {n.id for n in state.masters_with_slots() if n is not master}
    return len(voters & master.failed_by) >= state.failure_quorum()


def master_data_age_ms(cluster: Cluster) -> int | None:
    """Redis's data_age: milliseconds since we last heard from our master over replication (the link is up)
    or since the link went down; None when it was never up (Redis's repl_down_since 0: "down since ever")."""
    from actors.replication.loop_side import Replication
    from actors.replication.states import LinkState as ReplicationLinkState

    replication = cluster.server.replication
    if not isinstance(replication, Replication):
        return None
    link = replication.link_view
    if link.state is ReplicationLinkState.CONNECTED:
        return int((time.monotonic() - link.last_io_s) * 1000)
    if not link.down_since_s:
        return None
    return max(0, int((time.time() - link.down_since_s) * 1000))


def _data_recent_enough(cluster: Cluster, now: int) -> bool:
    """Redis's cluster-replica-validity-factor rule (clusterHandleReplicaFailover's data_age check): a replica
    whose link to its master has been down (or silent) for longer than node_timeout (the time it takes to
    flag the master FAIL, which does not count) + node_timeout * factor + repl-ping-replica-period s has too
    old a copy to stand for election. Factor 0: always eligible."""
    factor = int(cluster.config["cluster-replica-validity-factor"])
    if not factor:
        return True
    timeout = cluster.node_timeout_ms
    age = master_data_age_ms(cluster)
    limit_ms = int(cluster.config["repl-ping-replica-period"]) * 1000 + timeout * factor
    if age is not None:
        if age > timeout:
            age -= timeout
        if age <= limit_ms:
            return True
    election = cluster.election
    if now - election.cant_failover_logged_ms > CANT_FAILOVER_RELOG_MS:
        election.cant_failover_logged_ms = now
        log.warning(
            "Currently unable to failover: Disconnected from master for longer than allowed. "
            "Please check the 'cluster-replica-validity-factor' configuration option.",
            data_age_ms=age,
            limit_ms=limit_ms,
        )
    return False


def _start_election(cluster: Cluster, master: ClusterNode, now: int) -> None:
    state = cluster.state
    election = cluster.election
    state.current_epoch += 1
    election.epoch = state.current_epoch
    election.votes.clear()
    election.phase = Phase.VOTING
    election.start_ms = now
    cluster.changed()  # fsynced before the AuthRequests leave (Cluster.send_to)
    request = AuthRequest(
        state.myself.id, state.current_epoch, master.id, state.bitmap_of(master.id), election.manual
    )
    cluster.broadcast(request, "auth-req")
    log.info("cluster_election_started", epoch=election.epoch, manual=election.manual)


def on_auth_request(cluster: Cluster, msg: AuthRequest) -> None:
    state = cluster.state
    myself = state.myself
    if msg.current_epoch > state.current_epoch:
        state.current_epoch = msg.current_epoch
    if not myself.is_master or myself.slot_count == 0:
        return
    if msg.current_epoch < state.current_epoch or state.last_vote_epoch == state.current_epoch:
        return
    node = state.nodes.get(msg.sender)
    master = state.nodes.get(msg.master_id)
    if node is None or master is None or node.is_master:
        return
    if not msg.force and not master.failed:
        return
    now = _now_ms()
    if now - cluster.election.voted_ms.get(master.id, 0) < cluster.node_timeout_ms * 2:
        return
    for slot in state.slots_in_bitmap(msg.slots):
        owner = state.owners[slot]
        if owner is None or owner == master.id:
            continue
        if state.nodes[owner].config_epoch > master.config_epoch:
            return
    state.last_vote_epoch = state.current_epoch
    cluster.election.voted_ms[master.id] = now
    cluster.changed()  # the vote is on disk (fsynced) before the AuthAck leaves (Cluster.send_to)
    cluster.send(node, AuthAck(myself.id, state.current_epoch), "auth-ack")
    log.info("cluster_vote_granted", replica=node.id, epoch=state.current_epoch)


def on_auth_ack(cluster: Cluster, msg: AuthAck) -> None:
    state = cluster.state
    election = cluster.election
    voter = state.nodes.get(msg.sender)
    if election.phase is not Phase.VOTING or voter is None or not voter.is_master or not voter.slot_count:
        return
    if msg.current_epoch < election.epoch:
        return
    election.votes.add(voter.id)
    if len(election.votes) >= state.failure_quorum():
        log.info(
            "cluster_election_won", epoch=election.epoch, message="Failover election won: I'm the new master."
        )
        promote(cluster, election.epoch)


def promote(cluster: Cluster, config_epoch: int) -> None:
    """Take the old master's slots and tell everyone (clusterFailoverReplaceYourMaster)."""
    state = cluster.state
    myself = state.myself
    old_master = state.nodes.get(myself.master_id or "")
    cluster.election.reset()
    cluster.become_master()
    if old_master is not None:
        for slot in state.slots_of(old_master.id):
            state.assign(slot, myself.id)
        if not old_master.failed:
            state.set_master_of(old_master, myself.id)
    myself.config_epoch = max(config_epoch, myself.config_epoch)
    state.current_epoch = max(state.current_epoch, myself.config_epoch)
    cluster.changed()
    from actors.cluster.gossip import send_gossip

    for node in list(state.nodes.values()):
        if node is not myself and "handshake" not in node.flags:
            send_gossip(cluster, node, "pong")
    log.info("cluster_failover_done", config_epoch=myself.config_epoch)


def start_manual(cluster: Cluster, mode: str) -> None:
    state = cluster.state
    election = cluster.election
    election.reset()
    if mode == "takeover":
        log.info("Taking over the master (user request).")
        state.current_epoch += 1
        promote(cluster, state.current_epoch)
        return
    election.manual = True
    election.manual_deadline_ms = _now_ms() + MANUAL_FAILOVER_TIMEOUT_MS
    if mode == "force":
        log.info("Forced failover user request accepted.")
        election.phase = Phase.WAITING
        election.start_ms = _now_ms()
        return
    log.info("Manual failover user request accepted.")
    election.phase = Phase.MANUAL_SYNC
    master = state.nodes.get(state.myself.master_id or "")
    if master is not None:
        cluster.send(master, MfStart(state.myself.id), "mfstart")


def on_mfstart(cluster: Cluster, msg: MfStart) -> None:
    """Master side (clusterProcessPacket MFSTART): pause writes, then tell the replica our offset. Every
    repeated MfStart gets the offset again (the answer may have been dropped); the pause starts once."""
    state = cluster.state
    election = cluster.election
    replica = state.nodes.get(msg.sender)
    if replica is None or replica.master_id != state.myself.id or not state.myself.is_master:
        return
    if election.mf_replica != replica.id or not election.mf_end_ms:
        log.info("Manual failover requested by replica.", replica=replica.id)
        election.mf_replica = replica.id
        election.mf_end_ms = _now_ms() + MANUAL_FAILOVER_TIMEOUT_MS + MANUAL_FAILOVER_MASTER_GRACE_MS
        cluster.server.client_pause.pause(
            PauseMode.WRITE, MANUAL_FAILOVER_TIMEOUT_MS * MANUAL_FAILOVER_PAUSE_MULT
        )
    # Every write that ran before the pause is in this offset; none can follow it until the pause ends.
    cluster.send(replica, MfOffset(state.myself.id, cluster.repl_offset()), "mfstart")


def end_master_pause(cluster: Cluster) -> None:
    """The manual failover we paused for is over (promoted, or timed out): the held writes run now (and get
    MOVED if our slots are gone)."""
    election = cluster.election
    if not election.mf_end_ms:
        return
    election.mf_end_ms = 0
    election.mf_replica = ""
    cluster.server.client_pause.unpause()


def on_mfoffset(cluster: Cluster, msg: MfOffset) -> None:
    election = cluster.election
    if election.phase is Phase.MANUAL_SYNC and msg.sender == cluster.state.myself.master_id:
        if election.mf_offset < 0:
            log.info(
                "Received replication offset for paused master manual failover.", master_offset=msg.offset
            )
        election.mf_offset = msg.offset
