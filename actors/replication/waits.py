"""WAIT and min-replicas on the loop thread: clients blocked until enough replicas acked their writes, and
the NOREPLICAS refusal while too few replicas are good (Redis's waitCommand / refreshGoodSlavesCount).

Both read the replica views the actor publishes (acks, states); ``Replication`` calls ``replicas_changed``
whenever a new view arrives.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from actors.replication import messages as m
from actors.replication.states import ReplicaState
from actors.server.client import Client, ClientKind
from actors.server.server import BLOCKED
from protocol import errors

if TYPE_CHECKING:
    from actors.replication.loop_side import Replication


class _Waiter:
    """A client blocked in WAIT."""

    def __init__(self, client: Client, target_offset: int, numreplicas: int, timer: Any = None) -> None:
        self.client: Client = client
        self.target_offset: int = target_offset
        self.numreplicas: int = numreplicas
        # asyncio.TimerHandle of the timeout, None for WAIT ... 0
        self.timer: Any = timer


class Waits:
    """The WAIT clients and the min-replicas refusal (``Replication.waits``)."""

    def __init__(self, replication: Replication) -> None:
        self.replication = replication
        self.server = replication.server
        self.master = replication.master
        self.config = replication.config
        self.waiters: list[_Waiter] = []
        self._getack_requested = False

    def replicas_changed(self) -> None:
        """The actor published new replica states or acks: wake WAIT clients, re-check min-replicas."""
        if self.waiters:
            for waiter in list(self.waiters):
                count = self.count_acked(waiter.target_offset)
                if count >= waiter.numreplicas:
                    self._finish_wait(waiter, count)
        self._update_write_refusal()

    def count_acked(self, offset: int) -> int:
        return sum(
            1
            for r in self.replication.replicas_view
            if r.state is ReplicaState.ONLINE and r.ack_offset >= offset
        )

    def good_replicas(self) -> int:
        max_lag_s = self.config["min-replicas-max-lag"]
        now = time.monotonic()
        return sum(
            1
            for r in self.replication.replicas_view
            if r.state is ReplicaState.ONLINE and int(now - r.ack_time_s) <= max_lag_s
        )

    def _min_replicas_enabled(self) -> bool:
        return bool(self.config["min-replicas-to-write"]) and bool(self.config["min-replicas-max-lag"])

    def _update_write_refusal(self) -> None:
        server = self.server
        refuse = (
            self.replication.master_host is None
            and self._min_replicas_enabled()
            and self.good_replicas() < self.config["min-replicas-to-write"]
        )
        if refuse:
            if server.write_refusal is None:
                server.write_refusal = errors.NOREPLICAS
        elif server.write_refusal == errors.NOREPLICAS:
            server.write_refusal = None

    def wait(self, client: Client, numreplicas: int, timeout_ms: int) -> Any:
        """WAIT: the number of replicas that acked the client's last write (its ``woff``, as Redis's), blocking
        the client (not the node) until enough did or the timeout passed."""
        server = self.server
        target = client.woff
        count = self.count_acked(target)
        if count >= numreplicas or server.exec_propagation is not None or client.kind is ClientKind.INTERNAL:
            return count
        waiter = _Waiter(client, target, numreplicas)
        if timeout_ms > 0:
            loop = self.master.loop
            assert loop is not None
            waiter.timer = loop.call_later(timeout_ms / 1000.0, self._wait_timed_out, waiter)
        client.blocked = waiter
        self.waiters.append(waiter)
        self.request_acks()
        return BLOCKED

    def request_acks(self) -> None:
        """Ask the replicas for their offsets now rather than at their next periodic ack: after this tick's
        flush (an after_flush hook), so the request follows the writes it is about on the stream."""
        self._getack_requested = True
        self.master.schedule_flush()

    def _after_flush(self) -> None:
        if self._getack_requested:
            self._getack_requested = False
            self.replication.resp.request_acks()
            self.replication._tell(m.RequestAcks())

    def _wait_timed_out(self, waiter: _Waiter) -> None:
        if waiter in self.waiters:
            self._finish_wait(waiter, self.count_acked(waiter.target_offset))

    def _finish_wait(self, waiter: _Waiter, reply: Any) -> None:
        self.waiters.remove(waiter)
        if waiter.timer is not None:
            waiter.timer.cancel()
        client = waiter.client
        if client.blocked is waiter:
            client.blocked = None
        client.deliver(reply)

    def _unblock_waiters(self, reply: Any) -> None:
        for waiter in list(self.waiters):
            self._finish_wait(waiter, reply)

    def _client_removed(self, client: Client) -> None:
        for waiter in list(self.waiters):
            if waiter.client is client:
                self.waiters.remove(waiter)
                if waiter.timer is not None:
                    waiter.timer.cancel()
