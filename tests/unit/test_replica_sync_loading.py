"""How a replica's full sync shows as a load (actors/replication/loop_side.py, ``_follow_link``), link state by
link state: Redis's disk-based load (loading once the snapshot is in), its diskless loads (loading from the
transfer's start) and its async loading (swapdb with the same replication id: the old data served). The
integration tests (test_replica_async_loading.py, test_cluster_replica_loading.py) check the same on
running nodes against redis-server; this one reaches the paths a test cannot time, such as a promotion while
loading (a cluster failover), which must end the load."""

from __future__ import annotations

from typing import Any

import pytest

from actors.config import Config
from actors.replication.loop_side import Replication
from actors.replication.states import LinkState, LinkView
from actors.server.server import Server


class FakeMaster:
    """What the loop-side replication uses of the master actor: messages to the bus actor are kept."""

    def __init__(self) -> None:
        self.told: list[Any] = []
        self.stream_sinks: list[Any] = []
        self.after_flush: list[Any] = []
        self.cron_jobs: list[Any] = []
        self.loop = None

    def schedule_flush(self) -> None:
        pass

    def tell_bus(self, message: Any) -> None:
        self.told.append(message)


def _replica(load: str = "disabled", with_a_key: bool = False) -> tuple[Server, Replication]:
    server = Server(Config())
    server.config.set_runtime("repl-diskless-load", [load])
    if with_a_key:
        server.execute(_client(server), [b"SET", b"k", b"v"])
    replication = Replication(server, FakeMaster())  # type: ignore[arg-type]
    replication.set_master("127.0.0.1", 6399)
    return server, replication


def _link(replication: Replication, state: LinkState, replid: str = "") -> None:
    replication.link_view = LinkView(state=state, transfer_size=100, transfer_replid=replid)
    replication.link_changed(replication.gen)


def _shown(server: Server) -> tuple[bool, bool]:
    return server.loading, server.async_loading


def test_a_disk_based_load_is_loading_once_the_snapshot_is_in() -> None:
    server, replication = _replica()
    _link(replication, LinkState.TRANSFER)
    assert _shown(server) == (False, False)  # the old data is served while the snapshot comes in
    _link(replication, LinkState.LOADING)
    assert _shown(server) == (True, False)
    _link(replication, LinkState.CONNECTED)
    assert _shown(server) == (False, False)


def test_swapdb_with_the_same_history_is_async_loading_and_keeps_the_fast_paths_off() -> None:
    server, replication = _replica("swapdb")
    _link(replication, LinkState.TRANSFER, replication.replid)
    assert _shown(server) == (False, True)
    assert (
        "async-loading" in server._restricted_by
    )  # REPLICAOF, SAVE ... are checked, refused (Server.execute)
    _link(replication, LinkState.LOADING, replication.replid)
    assert _shown(server) == (False, True)
    _link(replication, LinkState.CONNECT)  # the sync failed: the old data stays, served as before
    assert _shown(server) == (False, False)
    assert "async-loading" not in server._restricted_by


@pytest.mark.parametrize("load", ["swapdb", "on-empty-db"])
def test_other_diskless_loads_are_loading_from_the_transfer_s_start(load: str) -> None:
    server, replication = _replica(load)
    _link(replication, LinkState.TRANSFER, "another history")
    assert _shown(server) == (True, False)


def test_on_empty_db_with_keys_loads_from_disk() -> None:
    server, replication = _replica("on-empty-db", with_a_key=True)
    _link(replication, LinkState.TRANSFER)
    assert _shown(server) == (False, False)


def test_a_promotion_while_loading_ends_the_load() -> None:
    server, replication = _replica()
    _link(replication, LinkState.LOADING)
    assert server.loading
    replication.unset_master()  # a cluster failover's promotion (REPLICAOF NO ONE gets -LOADING first)
    assert _shown(server) == (False, False)


def _client(server: Server) -> Any:
    from actors.server.client import Client, ClientKind

    client = Client(server, ClientKind.RESP)
    server.add_client(client)
    return client
