"""actors/cluster/state.py's incremental slot bitmaps and coverage count, and nodes.conf saved in place
(nodesconf.save with durable=False) and atomically, read back the same."""

from __future__ import annotations

import random
from pathlib import Path

from actors.cluster import nodesconf
from actors.cluster.state import SLOTS, ClusterNode, ClusterState, new_node_id


def _state(masters: int) -> tuple[ClusterState, list[str]]:
    me = ClusterNode(new_node_id(), "127.0.0.1", 7000, 17000, flags={"myself", "master"})
    state = ClusterState(me)
    ids = [me.id]
    for i in range(1, masters):
        node = ClusterNode(new_node_id(), "127.0.0.1", 7000 + i, 17000 + i, flags={"master"})
        state.add(node)
        ids.append(node.id)
    return state, ids


def _bitmap_from_scratch(state: ClusterState, node_id: str) -> bytes:
    bits = bytearray(SLOTS // 8)
    for slot, owner in enumerate(state.owners):
        if owner == node_id:
            bits[slot >> 3] |= 1 << (slot & 7)
    return bytes(bits)


def test_bitmaps_and_coverage_follow_every_change(seed: int) -> None:
    rng = random.Random(seed)
    state, ids = _state(4)
    for step in range(3000):
        slot = rng.randrange(SLOTS)
        state.assign(slot, rng.choice([*ids, None]))
        if step == 1500:  # a node leaves (CLUSTER FORGET): its slots become unassigned
            state.remove(ids.pop())
        if step == 2000:  # a slotted node renamed (bookkeeping follows it)
            old = ids[1]
            state.rename(old, new_node_id())
            ids[1] = next(i for i in state.nodes if i not in ids)
    for node_id in ids:
        assert state.bitmap_of(node_id) == _bitmap_from_scratch(state, node_id)
        assert state.nodes[node_id].slot_count == state.owners.count(node_id)
        assert state.slots_in_bitmap(state.bitmap_of(node_id)) == state.slots_of(node_id)
    claim = bytes(rng.randrange(256) for _ in range(SLOTS // 8))
    known = state.bitmap_of(ids[0])
    owned = set(state.slots_in_bitmap(known))
    expected = [s for s in state.slots_in_bitmap(claim) if s not in owned]
    assert state.slots_beyond(claim, known) == expected
    assert state.unassigned == state.owners.count(None)


def test_nodes_conf_in_place_and_atomic_saves_read_back(tmp_path: Path) -> None:
    path = str(tmp_path / "nodes.conf")
    state, ids = _state(3)
    for slot in range(SLOTS):
        state.assign(slot, ids[slot % 3])  # thousands of one-slot ranges: a long file
    state.current_epoch = 7
    nodesconf.save(state, path, durable=True)
    long_size = Path(path).stat().st_size
    for slot in range(SLOTS):
        state.assign(slot, ids[slot * 3 // SLOTS])  # three ranges: a much shorter file, written in place
    state.migrating[5] = ids[1]
    nodesconf.save(state, path, durable=False)
    text = Path(path).read_text()
    assert len(text) < long_size and text.endswith("lastVoteEpoch 0\n")
    loaded = nodesconf.load(path)
    assert loaded is not None
    assert loaded.owners == state.owners
    assert loaded.migrating == {5: ids[1]}
    assert loaded.current_epoch == 7
    # A crash between the padded write and the truncate leaves blank lines, which load skips.
    Path(path).write_text(text + "\n" * 50)
    again = nodesconf.load(path)
    assert again is not None and again.owners == state.owners
