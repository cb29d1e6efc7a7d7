"""The node bus extended by registration (actors/bus/bus.py): a BusActor in this process with a stand-in for
the master actor, extensions registered for a peer family, typed loop messages, control messages and a bulk
sender, and a real ZeroMQ DEALER on loopback as the peer."""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pykka
import pytest
import zmq

from actors.bus.bus import BULK_BYTES_PER_POLL, LOOP_MESSAGES_FRAME, POLL_SLICE_MS, BusActor
from actors.config import Config
from tests.harness import free_port, wait_for

FAMILY = b"T"
RECV_TIMEOUT_MS = 5000


class StandInMaster:
    """What the bus uses of the master actor: the inproc endpoint, call_threadsafe, the outbox, and (for the
    bus's admission and CURVE parts) the server's configuration and the peer address table."""

    def __init__(self) -> None:
        # No password: the ACL's default user needs none (what admission asks).
        no_password = SimpleNamespace(auth_required_by_default=lambda: False)
        self.server = SimpleNamespace(config=Config(), requirepass="", acl=no_password, info_sections={})
        self.peer_addresses: dict[bytes, str] = {}
        self.bus_endpoint = f"inproc://test-bus-{id(self)}"
        self.bus_outbox: deque[Any] = deque()
        self.push: zmq.Socket[bytes] | None = None

    def call_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        pass  # only reconnect_bus is asked for here, and the test connects its PUSH itself

    def reconnect_bus(self) -> None:
        pass

    def tell_bus(self, message: Any) -> None:
        if self.push is None:
            self.push = zmq.Context.instance().socket(zmq.PUSH)
            self.push.setsockopt(zmq.LINGER, 0)
            self.push.connect(self.bus_endpoint)
        self.bus_outbox.append(message)
        self.push.send(LOOP_MESSAGES_FRAME)


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Question:
    text: str


class EndlessTransfer:
    """An extension whose bulk sender always has more to send (a transfer that never ends), answering pings."""

    made: list[EndlessTransfer] = []

    def __init__(self, bus: BusActor) -> None:
        self.bus = bus
        self.bulk_calls = 0
        self.budgets: set[int] = set()
        self.notes: list[str] = []
        bus.register_family(FAMILY, self.on_frame)
        bus.register_bulk(self.send_bulk)
        bus.register_loop_message(Note, lambda note: self.notes.append(note.text))
        bus.register_control(Question, lambda question: f"answer to {question.text}")
        EndlessTransfer.made.append(self)

    def on_frame(self, identity: bytes, frames: list[bytes]) -> None:
        assert frames[0] == FAMILY
        self.bus.send_to_peer(identity, [FAMILY, b"pong", frames[1]])

    def send_bulk(self, budget_bytes: int) -> bool:
        self.bulk_calls += 1
        self.budgets.add(budget_bytes)
        return True


@pytest.fixture
def bus() -> Iterator[tuple[pykka.ActorRef[BusActor], StandInMaster, int]]:
    EndlessTransfer.made.clear()
    master = StandInMaster()
    port = free_port()
    ref = BusActor.start(master, ["127.0.0.1"], port, [EndlessTransfer])  # type: ignore[arg-type]
    try:
        yield ref, master, port
    finally:
        ref.stop()
        if master.push is not None:
            master.push.close(0)


def test_small_frames_are_answered_while_a_bulk_sender_always_has_more(
    bus: tuple[pykka.ActorRef[BusActor], StandInMaster, int],
) -> None:
    _ref, _master, port = bus
    (ext,) = EndlessTransfer.made
    wait_for(lambda: ext.bulk_calls > 10, 5, what="the endless transfer to run")
    dealer: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.RCVTIMEO, RECV_TIMEOUT_MS)
    dealer.connect(f"tcp://127.0.0.1:{port}")
    try:
        before = ext.bulk_calls
        for i in range(20):
            dealer.send_multipart([FAMILY, b"%d" % i])
            assert dealer.recv_multipart() == [FAMILY, b"pong", b"%d" % i]
        # The transfer goes on (control frames that keep coming are drained first, within one iteration even).
        wait_for(lambda: ext.bulk_calls > before + 10, 5, what="the transfer to go on")
    finally:
        dealer.close(0)
    # Each iteration's bulk work is bounded, which is what bounds a control frame's wait.
    assert ext.budgets == {BULK_BYTES_PER_POLL}


def test_typed_loop_messages_and_control_messages_reach_their_handlers(
    bus: tuple[pykka.ActorRef[BusActor], StandInMaster, int],
) -> None:
    ref, master, _port = bus
    (ext,) = EndlessTransfer.made
    for text in ("one", "two", "three"):
        master.tell_bus(Note(text))
    wait_for(lambda: ext.notes == ["one", "two", "three"], 5, what="the notes, in order")
    assert ref.ask(Question("life")) == "answer to life"
    assert ref.ask("ping") == "pong"


def test_a_family_is_registered_once() -> None:
    EndlessTransfer.made.clear()
    bus = BusActor(StandInMaster(), ["127.0.0.1"], free_port(), [EndlessTransfer])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        bus.register_family(FAMILY, lambda identity, frames: None)


class Counselor:
    """An extension that only answers control messages: with nothing on its sockets the bus blocks in each poll
    for the whole slice (POLL_SLICE_MS)."""

    def __init__(self, bus: BusActor) -> None:
        bus.register_control(Question, lambda question: f"answer to {question.text}")


def test_an_idle_bus_answers_another_threads_ask_without_waiting_out_its_poll() -> None:
    """A pykka message from another thread ends the bus's blocking poll at once (actors/bus/bus.py's
    _WakingInbox). Before, each ask waited for the slice to end: the supervisor's start-up confirmation cost a
    node start ~20 ms, and each ask here took ~POLL_SLICE_MS (each lands right after the actor began a poll)."""
    master = StandInMaster()
    ref = BusActor.start(master, ["127.0.0.1"], free_port(), [Counselor])  # type: ignore[arg-type]
    try:
        assert ref.ask(Question("warm-up")) == "answer to warm-up"
        waits_ms = []
        for i in range(15):
            started = time.perf_counter()
            assert ref.ask(Question(str(i)), timeout=5) == f"answer to {i}"
            waits_ms.append((time.perf_counter() - started) * 1000)
        assert statistics.median(waits_ms) < POLL_SLICE_MS / 4, waits_ms
    finally:
        ref.stop()


def test_the_inbox_wakes_the_poll_for_other_threads_only() -> None:
    """The actor's own _POLL tells (from its thread) must not wake its poll: a wake for each would make the loop
    spin instead of blocking between messages."""
    inbox = BusActor._create_actor_inbox()
    wakes: list[int] = []
    inbox.wake = lambda: wakes.append(threading.get_ident())
    inbox.owner_thread = threading.get_ident()
    inbox.put("from the actor's thread")
    assert wakes == []
    other = threading.Thread(target=inbox.put, args=("from another thread",))
    other.start()
    other.join()
    assert len(wakes) == 1 and wakes[0] != threading.get_ident()
    assert [inbox.get_nowait(), inbox.get_nowait()] == ["from the actor's thread", "from another thread"]
