"""nodes.conf: the cluster state a node keeps across restarts, in Redis's format, replaced atomically.

Format (Redis's clusterSaveConfig): one CLUSTER NODES line per known node (handshake nodes left out), with the
IMPORTING / MIGRATING markers on the ``myself`` line, then ``vars currentEpoch <n> lastVoteEpoch <n>``.
Redis rewrites the file in place; here it goes through actors/files.py (temp, fsync, rename, fsync the
directory), so a crash leaves the old file or the new one, never a torn one (redis/redis#13353). Slot moves
(CLUSTER SETSLOT) are written in place without fsync, as Redis saves them (see ``save``). The file is
locked with flock while the node runs, so two nodes cannot share it, as Redis does.

On load every peer starts disconnected with no ping in flight, as after a Redis restart; flags other than
master / slave / myself / nofailover / fail are not kept (``fail?`` is re-learned).
"""

from __future__ import annotations

import fcntl
import os
from typing import IO

from actors.cluster.state import ClusterNode, ClusterState, LinkState
from actors.files import write_bytes_atomically


class NodesConfError(Exception):
    """nodes.conf exists but cannot be used (unparsable, or no ``myself`` line)."""


_KEPT_FLAGS = {"myself", "master", "slave", "fail", "nofailover"}


def render(state: ClusterState) -> bytes:
    lines = [state.node_line(n) for n in state.nodes.values() if "handshake" not in n.flags]
    lines.append(f"vars currentEpoch {state.current_epoch} lastVoteEpoch {state.last_vote_epoch}")
    return ("\n".join(lines) + "\n").encode()


def save(state: ClusterState, path: str, durable: bool = True) -> None:
    """Replace nodes.conf: durably (temp, fsync, rename, fsync the directory), or with ``durable=False``
    written in place without fsync, as Redis saves without CLUSTER_TODO_FSYNC_CONFIG for slot moves
    (CLUSTER SETSLOT): a reshard moves thousands of slots, each with a SETSLOT on every master, and a lost
    move is found again by redis-cli --cluster fix. In place is Redis's clusterSaveConfig: one write of the
    new text padded with newlines to the old length, then a truncate, so a process crash leaves the old text
    or the new one (plus blank lines, which load skips), never a torn one; a temp file and a rename cost
    ~1 ms here (the rename makes ext4 start writing the data out), the write ~10 us. Only a power loss in
    between could tear it, as Redis's. Epochs and votes (which must never go backwards) are always saved
    durably."""
    text = render(state)
    if durable:
        write_bytes_atomically(path, text)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        old_size = os.fstat(fd).st_size
        padded = text + b"\n" * (old_size - len(text)) if old_size > len(text) else text
        written = os.pwrite(fd, padded, 0)
        if written != len(padded):
            raise OSError(f"short write to {path}: {written} of {len(padded)} bytes")
        if len(padded) != len(text):
            os.ftruncate(fd, len(text))
    finally:
        os.close(fd)


def lock(path: str) -> IO[bytes]:
    """Hold an exclusive flock on nodes.conf (created empty if missing) for the node's lifetime."""
    handle = open(path, "ab")  # held open until the process exits
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise NodesConfError(
            f"Sorry, the cluster configuration file {path} is already used by a different Redis Cluster node. "
            "Please make sure that different nodes use different cluster configuration files."
        ) from exc
    return handle


def load(path: str) -> ClusterState | None:
    """The state saved in ``path``; None when the file is missing or empty (a new node)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    if not text.strip():
        return None
    rows: list[list[str]] = []
    current_epoch = last_vote = 0
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if words[0] == "vars":
            pairs = dict(zip(words[1::2], words[2::2], strict=False))
            current_epoch = int(pairs.get("currentEpoch", 0))
            last_vote = int(pairs.get("lastVoteEpoch", 0))
            continue
        if len(words) < 8:
            raise NodesConfError(f"Unrecoverable error: corrupted cluster config file at line {number}")
        rows.append(words)
    me = [w for w in rows if "myself" in w[2].split(",")]
    if len(me) != 1:
        raise NodesConfError("Unrecoverable error: corrupted cluster config file (no myself line)")
    state: ClusterState | None = None
    nodes: list[tuple[ClusterNode, list[str]]] = []
    for words in [me[0]] + [w for w in rows if w is not me[0]]:
        address, _, hostname = words[1].partition(",")
        hostport, _, cport = address.partition("@")
        ip, _, port = hostport.rpartition(":")
        flags = {f for f in words[2].split(",") if f in _KEPT_FLAGS}
        node = ClusterNode(words[0], ip, int(port), int(cport or int(port) + 10000), flags=flags)
        node.hostname = hostname
        node.config_epoch = int(words[6])
        node.ping_sent_ms = 0
        node.pong_recv_ms = 0
        node.link = LinkState.DISCONNECTED
        if state is None:
            state = ClusterState(node)
            node.link = LinkState.CONNECTED
        else:
            state.add(node)
        nodes.append((node, words))
    assert state is not None
    for node, words in nodes:
        if words[3] != "-":
            state.set_master_of(node, words[3])
            node.config_epoch = 0  # a replica's column shows its master's epoch
        for item in words[8:]:
            if item.startswith("["):
                body = item[1:-1]
                if node is state.myself and "->-" in body:
                    slot, dest = body.split("->-")
                    state.migrating[int(slot)] = dest
                elif node is state.myself and "-<-" in body:
                    slot, src = body.split("-<-")
                    state.importing[int(slot)] = src
                continue
            first, _, last = item.partition("-")
            for number in range(int(first), int(last or first) + 1):
                state.assign(number, node.id)
    # Replicas listed before their master: link them now that every node exists.
    for node, _ in nodes:
        if node.master_id and node.master_id in state.nodes:
            state.add_replica(state.nodes[node.master_id], node.id)
    state.current_epoch = current_epoch
    state.last_vote_epoch = last_vote
    return state


def remove_stale(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
