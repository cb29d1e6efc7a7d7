"""``redactor status`` of a ``[cluster]`` topology: each node's place in the cluster, next to its process.

Per node, from its own CLUSTER NODES / CLUSTER INFO: its short id, role, master, slot ranges (with open
``[slot->-id]`` / ``[slot-<-id]`` markers while a slot moves), configEpoch / currentEpoch and cluster_state;
and from its peers' CLUSTER NODES: how many see its link connected and which failure flags they give it
(``fail?`` = PFAIL, ``fail``), since a node cannot report its own failure.
"""

from __future__ import annotations

from typing import Any

from launcher.topology.clusterjoin import NodeLine, format_ranges, myself, parse_nodes
from launcher.topology.probe import MAX_INFO_REPLY_BYTES, REQUEST_TIMEOUT_S, parse_info
from protocol.resp_client import BlockingRespClient, ReplyError

# Columns of the table (status.py prints them for a cluster topology).
CLUSTER_COLUMNS = ("id", "role", "master", "slots", "epochs", "link", "cluster_state")
SHORT_ID_CHARS = 8


def _cluster_view(port: int, password: str) -> tuple[list[NodeLine], dict[str, str]] | None:
    options: dict[str, Any] = {"timeout_s": REQUEST_TIMEOUT_S, "max_reply_bytes": MAX_INFO_REPLY_BYTES}
    try:
        with BlockingRespClient.connect("127.0.0.1", port, password=password or None, **options) as c:
            nodes, info = c.pipeline([("CLUSTER", "NODES"), ("CLUSTER", "INFO")])
    except (OSError, ConnectionError, ReplyError):
        return None
    if not isinstance(nodes, bytes) or not isinstance(info, bytes):
        return None
    return parse_nodes(nodes), parse_info(info)


def add_cluster_fields(rows: list[dict[str, Any]], passwords: dict[str, str]) -> None:
    """Add CLUSTER_COLUMNS to each status row (None where the node does not answer)."""
    views = {}
    for row in rows:
        view = _cluster_view(row["port"], passwords.get(row["name"], "")) if row["state"] == "up" else None
        views[row["name"]] = view
    id_to_name: dict[str, str] = {}
    for row in rows:
        view = views[row["name"]]
        me = myself(view[0]) if view else None
        if me is not None:
            id_to_name[me.id] = row["name"]
    for row in rows:
        for column in CLUSTER_COLUMNS:
            row.setdefault(column, None)
        view = views[row["name"]]
        me = myself(view[0]) if view else None
        if view is None or me is None:
            continue
        info = view[1]
        row["id"] = me.id[:SHORT_ID_CHARS]
        row["node_id"] = me.id
        row["role"] = "master" if me.is_master else "replica"
        if me.master_id:
            row["master"] = id_to_name.get(me.master_id, me.master_id[:SHORT_ID_CHARS])
        row["slots"] = " ".join(filter(None, [format_ranges(me.slots) if me.slots else "", *me.open_slots]))
        row["slots"] = row["slots"] or "-"
        row["slot_count"] = me.slot_count()
        row["config_epoch"] = me.config_epoch
        row["current_epoch"] = int(info.get("cluster_current_epoch", "0") or 0)
        row["epochs"] = f"{row['config_epoch']}/{row['current_epoch']}"
        row["cluster_state"] = info.get("cluster_state")
        row["flags"] = ",".join(f for f in me.flags if f != "myself")
    for row in rows:
        if row.get("node_id") is None:
            continue
        connected, peers = 0, 0
        failing: set[str] = set()
        for other, view in views.items():
            if other == row["name"] or view is None:
                continue
            line = next((x for x in view[0] if x.id == row["node_id"]), None)
            if line is None:
                continue
            peers += 1
            connected += line.link == "connected"
            failing.update(f for f in line.flags if f in ("fail?", "fail", "handshake", "noaddr"))
        link = f"{connected}/{peers} connected"
        row["link"] = f"{link} ({','.join(sorted(failing))})" if failing else link
