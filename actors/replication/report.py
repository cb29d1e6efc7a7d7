"""What replication reports on the loop thread: the INFO replication section and the ROLE reply.

Read-only over ``Replication`` and the views the actor publishes (states.py); fields and order are Redis
7.0's (``genRedisInfoString``, ``roleCommand``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from actors.replication.states import INFO_STATE_NAMES, ROLE_STATE_NAMES, LinkState, ReplicaState

if TYPE_CHECKING:
    from actors.replication.loop_side import Replication


def info_section(replication: Replication) -> list[tuple[str, Any]]:
    """INFO replication (Redis 7.0's fields and order); ``replication`` is the loop-side Replication."""
    server = replication.server
    config = replication.config
    now = time.monotonic()
    lines: list[tuple[str, Any]] = [("role", "slave" if replication.master_host is not None else "master")]
    if replication.master_host is not None:
        link = replication.link_view
        connected = link.state is LinkState.CONNECTED
        applied = server.repl_offset
        lines += [
            ("master_host", replication.master_host),
            ("master_port", replication.master_port),
            ("master_link_status", "up" if connected else "down"),
            ("master_last_io_seconds_ago", int(now - link.last_io_s) if connected else -1),
            ("master_sync_in_progress", int(replication.full_sync_in_progress())),
            # (max: with a direct stream (direct.py) the bytes reach the loop without passing the actor)
            (
                "slave_read_repl_offset",
                max(link.read_offset, replication._read_pos) if connected else applied,
            ),
            ("slave_repl_offset", applied),
        ]
        if link.state in (LinkState.TRANSFER, LinkState.LOADING):
            total = link.transfer_size
            perc = 100.0 * link.transfer_read / total if total > 0 else 0.0
            lines += [
                ("master_sync_total_bytes", total),
                ("master_sync_read_bytes", link.transfer_read),
                ("master_sync_left_bytes", total - link.transfer_read if total >= 0 else -1),
                ("master_sync_perc", f"{perc:.2f}"),
                ("master_sync_last_io_seconds_ago", int(now - (link.transfer_last_io_s or now))),
            ]
        if not connected:
            down = link.down_since_s
            lines.append(("master_link_down_since_seconds", int(time.time() - down) if down else -1))
        lines += [
            ("slave_priority", config["replica-priority"]),
            ("slave_read_only", int(bool(config["replica-read-only"]))),
            ("replica_announced", int(bool(config["replica-announced"]))),
        ]
    replicas = replication.replicas_view
    lines.append(("connected_slaves", len(replicas)))
    if replication._min_replicas_enabled():
        lines.append(("min_slaves_good_slaves", replication.good_replicas()))
    for index, replica in enumerate(replicas):
        lag = int(now - replica.ack_time_s) if replica.state is ReplicaState.ONLINE else 0
        lines.append(
            (
                f"slave{index}",
                f"ip={replica.ip},port={replica.port},state={INFO_STATE_NAMES[replica.state]},"
                f"offset={replica.ack_offset},lag={lag}",
            )
        )
    backlog = replication.backlog_view
    lines += [
        ("master_failover_state", replication.coordinated.state.value),
        ("master_replid", replication.replid),
        ("master_replid2", replication.replid2),
        ("master_repl_offset", server.repl_offset),
        ("second_repl_offset", replication.second_offset),
        ("repl_backlog_active", int(backlog is not None)),
        ("repl_backlog_size", config["repl-backlog-size"]),
        ("repl_backlog_first_byte_offset", backlog.first_byte_offset if backlog is not None else 0),
        ("repl_backlog_histlen", backlog.histlen if backlog is not None else 0),
    ]
    return lines


def role_reply(replication: Replication) -> list[Any]:
    """ROLE: [master, offset, [[ip, port, offset]...]] or [slave, host, port, state, offset]."""
    server = replication.server
    if replication.master_host is None:
        online = [
            [r.ip.encode(), b"%d" % r.port, b"%d" % r.ack_offset]
            for r in replication.replicas_view
            if r.state is ReplicaState.ONLINE
        ]
        return [b"master", server.repl_offset, online]
    link = replication.link_view
    offset = server.repl_offset if link.state is LinkState.CONNECTED else -1
    return [
        b"slave",
        replication.master_host.encode(),
        replication.master_port,
        ROLE_STATE_NAMES[link.state].encode(),
        offset,
    ]
