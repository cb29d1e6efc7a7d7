"""``redactor status``: what the state file and each node's INFO say, as a table or as JSON.

Columns: name, port, pid, state, role, master, offset, lag, keys, uptime, restarts (role/offset/lag from INFO
replication; "-" when unknown; lag is how many bytes a replica is behind its master). A cluster topology shows
id, role, master, slots, epochs, link and cluster_state instead of the replication columns (clusterstatus.py). Read from another
process than the launcher's: the ports come from the state file, with the offset ``up`` used.
"""

from __future__ import annotations

import json
from typing import Any

from launcher.topology.clusterstatus import CLUSTER_COLUMNS, add_cluster_fields
from launcher.topology.probe import node_info
from launcher.topology.rundir import pid_alive, pid_matches, read_state
from launcher.topology.spec import Topology


def state_nodes(topology: Topology, state: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The nodes as the state file has them (ports with the offset `up` used), else as the topology has them."""
    by_name = {n.get("name"): n for n in (state or {}).get("nodes", []) if isinstance(n, dict)}
    out = []
    for spec in topology.nodes:
        entry = dict(by_name.get(spec.name, {}))
        entry.setdefault("name", spec.name)
        entry.setdefault("port", spec.port)
        entry.setdefault("restarts", 0)
        pid = entry.get("pid")
        if not (isinstance(pid, int) and pid_alive(pid) and pid_matches(pid, "server", str(entry["port"]))):
            entry["pid"] = None
        out.append(entry)
    return out


def _format_uptime(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def sentinel_view(info: dict[str, str], port_to_name: dict[int, str]) -> str:
    """What a sentinel's INFO says of its masters: ``mymaster=n2 (ok, 2 replicas, 3 sentinels)``."""
    views = []
    for key, value in info.items():
        if not (key.startswith("master") and key[6:].isdigit()):
            continue
        fields = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
        host, _, port = fields.get("address", "?:?").rpartition(":")
        node = port_to_name.get(int(port)) if port.isdigit() and host in ("127.0.0.1", "localhost") else None
        views.append(
            f"{fields.get('name')}={node or fields.get('address')} ({fields.get('status')}, "
            f"{fields.get('slaves')} replicas, {fields.get('sentinels')} sentinels)"
        )
    return "; ".join(views) or "-"


def collect_status(topology: Topology) -> list[dict[str, Any]]:
    """One dict per node: what the state file and the node's INFO say; None where nothing is known."""
    state = read_state(topology)
    entries = state_nodes(topology, state)
    port_to_name = {int(e["port"]): e["name"] for e in entries}
    rows: list[dict[str, Any]] = []
    infos: dict[str, dict[str, str] | None] = {}
    for entry in entries:
        spec = topology.node(entry["name"])
        sections = ("server", "sentinel") if spec.is_sentinel else ("server", "replication", "keyspace")
        infos[entry["name"]] = node_info(int(entry["port"]), spec.password, sections)
    for entry in entries:
        info = infos[entry["name"]]
        spec = topology.node(entry["name"])
        row: dict[str, Any] = {
            "name": entry["name"],
            "port": int(entry["port"]),
            "pid": entry.get("pid"),
            "state": "down",
            "role": None,
            "master": None,
            "offset": None,
            "lag": None,
            "keys": None,
            "uptime_s": None,
            "restarts": int(entry.get("restarts") or 0),
        }
        if info is None:
            if row["pid"] is not None:
                row["state"] = str(entry.get("state") or "starting")
        else:
            row["state"] = "up"
            if row["pid"] is None and info.get("process_id", "").isdigit():
                row["pid"] = int(info["process_id"])
            if info.get("uptime_in_seconds", "").isdigit():
                row["uptime_s"] = int(info["uptime_in_seconds"])
            if spec.is_sentinel:
                row["role"] = "sentinel"
                row["master"] = sentinel_view(info, port_to_name)
                rows.append(row)
                continue
            role = info.get("role")
            row["role"] = "replica" if role == "slave" else role
            if role == "slave":
                host, port = info.get("master_host", "?"), info.get("master_port", "?")
                name = (
                    port_to_name.get(int(port))
                    if port.isdigit() and host in ("127.0.0.1", "localhost")
                    else None
                )
                row["master"] = name or f"{host}:{port}"
                offset = info.get("slave_repl_offset") or info.get("master_repl_offset")
            else:
                offset = info.get("master_repl_offset")
            if offset is not None and offset.lstrip("-").isdigit():
                row["offset"] = int(offset)
            keys = 0
            found_keyspace = False
            for key, value in info.items():
                if key.startswith("db") and key[2:].isdigit():
                    found_keyspace = True
                    for part in value.split(","):
                        if part.startswith("keys=") and part[5:].isdigit():
                            keys += int(part[5:])
            row["keys"] = keys if found_keyspace or "redis_version" in info else None
        rows.append(row)
    by_name = {r["name"]: r for r in rows}
    for row in rows:
        master = by_name.get(row["master"]) if row["master"] else None
        if master is not None and master["offset"] is not None and row["offset"] is not None:
            row["lag"] = max(master["offset"] - row["offset"], 0)
    if topology.cluster:
        add_cluster_fields(rows, {n.name: n.password for n in topology.nodes})
    return rows


def print_status(topology: Topology, rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"topology": topology.name, "nodes": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a pipe has no width; don't squeeze the columns
    state = read_state(topology)
    launcher_pid = (state or {}).get("launcher_pid")
    launcher = f"launcher pid {launcher_pid}" if pid_alive(launcher_pid) else "no launcher running"
    table = Table(title=f"topology {topology.name} ({launcher})")
    if topology.cluster:
        columns: tuple[str, ...] = ("name", "port", "pid", "state", *CLUSTER_COLUMNS, "keys", "restarts")
    else:
        columns = ("name", "port", "pid", "state", "role", "master", "offset", "lag", "keys", "uptime_s")
        columns += ("restarts",)
    numeric = ("port", "pid", "offset", "lag", "keys", "restarts")
    for column in columns:
        table.add_column(
            "uptime" if column == "uptime_s" else column, justify="right" if column in numeric else "left"
        )
    for row in rows:
        cells = []
        for column in columns:
            value = row[column]
            if value is None:
                cells.append("-")
            elif column == "uptime_s":
                cells.append(_format_uptime(value))
            else:
                cells.append(str(value))
        style = None if row["state"] == "up" else "red"
        table.add_row(*cells, style=style)
    console.print(table)
