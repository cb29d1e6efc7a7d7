"""The direct stream (actors/replication/direct.py): once a replica's link is up, the master's loop writes the
stream straight to a socket the replica's loop reads, handed over from the bus at an exact offset.

What is checked: the hand-over loses and doubles nothing (digests and offsets meet, with writes before, during
and after it, across databases); WAIT is answered through the stream's GETACK; a SAVE on the master
is not replayed by the replica; a reset link ends its direct
socket and the partial resync opens a new one. The bus-only path (no direct socket: bus CURVE keys) is
test_bus_curve.py's replication test.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.harness import NodeProcess, wait_for
from tests.integration.test_replication import info, wait_converged
from tests.integration.test_replication_resync import stats, write_some

STARTED = '"event": "direct_stream_started"'


def test_the_stream_moves_to_the_direct_socket_without_a_byte_lost_and_wait_is_answered(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master", requirepass="pw")
    replica = node_factory("replica", masterauth="pw")
    mc = master.client(password="pw")
    rc = replica.client()
    write_some(mc, "before", 200)  # in the snapshot
    assert rc.execute_command("REPLICAOF", "127.0.0.1", master.port) == b"OK"
    write_some(mc, "during", 300)  # while the link comes up and the stream changes hands
    wait_for(lambda: replica.log().count(STARTED) == 1, 15, what="the replica's direct stream")
    assert master.log().count(STARTED) == 1
    write_some(mc, "after", 300)
    master.client(db=3, password="pw").set("in-three", "3")
    mc.set("back-in-zero", "0")
    wait_converged(mc, rc)
    mc.set("before-wait", "w")
    started = time.monotonic()
    assert mc.execute_command("WAIT", 1, 5000) == 1
    assert time.monotonic() - started < 4  # the GETACK in the stream, not a timeout
    assert rc.get("before-wait") == b"w"
    # A save resets the dirty counter: SAVE is not a write, and no replica runs it (nor SHUTDOWN SAVE).
    # (Once the full sync's snapshot child is reaped: until then SAVE answers "Background save already in
    # progress", as Redis does while its replication BGSAVE child runs.)
    wait_for(
        lambda: mc.info("persistence")["rdb_bgsave_in_progress"] == 0, 10, what="the snapshot child reaped"
    )
    assert mc.execute_command("SAVE")
    mc.set("after-save", "s")
    wait_converged(mc, rc)
    assert '"event": "save_finished"' not in replica.log()
    assert info(rc)["slave_read_repl_offset"] == info(rc)["slave_repl_offset"]
    assert replica.client(db=3).get("in-three") == b"3"
    assert stats(mc)[:2] == (1, 0)  # one full sync, and the direct socket is no resync


def test_a_reset_link_closes_its_direct_socket_and_the_partial_resync_opens_another(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master")
    replica = node_factory("replica")
    mc, rc = master.client(), replica.client()
    rc.execute_command("REPLICAOF", "127.0.0.1", master.port)
    wait_for(lambda: replica.log().count(STARTED) == 1, 15, what="the first direct stream")
    write_some(mc, "a", 100)
    wait_converged(mc, rc)
    assert rc.execute_command("CLIENT", "KILL", "TYPE", "master") >= 1
    write_some(mc, "b", 100)
    wait_for(lambda: stats(mc)[1] == 1, 15, what="a partial resync")
    wait_for(lambda: replica.log().count(STARTED) == 2, 15, what="the second direct stream")
    write_some(mc, "c", 100)
    wait_converged(mc, rc)
    assert stats(mc)[0] == 1  # the first sync only
