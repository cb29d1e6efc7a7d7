"""The supervisor: crashed actors restart while the node keeps serving, too many crashes end the node, and the
sweep catches actors that die where pykka calls no hook (on_start).

Node tests run real node processes; the strategy and sweep tests run a Supervisor in this process over real
pykka actors, calling ``sweep()`` by hand where the node's cron would.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest
import redis
import zmq

from actors.supervision.supervisor import (
    ChildSpec,
    ChildStartError,
    ChildState,
    RestartPolicy,
    Strategy,
    SupervisedActor,
    Supervisor,
    SupervisorState,
)
from protocol import envelope
from tests.harness import NodeProcess, wait_for

# The actor that owns the node's bus (ZeroMQ ROUTER): the replication actor extends the bus actor.
BUS_ACTOR = "replication"

# -- helpers ------------------------------------------------------------------------------------------------


def native_call(bus_port: int, argv: list[bytes], timeout_ms: int = 500) -> tuple[int, int, Any] | None:
    """One request over the native protocol (a fresh DEALER each time); None if no reply came in time."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(f"tcp://127.0.0.1:{bus_port}")
        sock.send(envelope.encode_request(7, argv))
        if not sock.poll(timeout_ms):
            return None
        return envelope.decode_reply(sock.recv())
    finally:
        sock.close(0)


def actor_lines(r: redis.Redis) -> dict[str, Any]:
    return {k: v for k, v in r.info("actors").items() if isinstance(v, dict)}


def crash(r: redis.Redis, name: str) -> Any:
    return r.execute_command("DEBUG", "CRASH-ACTOR", name)


@pytest.fixture(scope="module")
def sup_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(tmp_path_factory.mktemp("supervisor"), "sup")
    node.start()
    yield node
    node.stop()


# -- a real node ---------------------------------------------------------------------------------------------


def test_a_crashed_bus_actor_is_restarted_while_the_node_keeps_serving_resp(sup_node: NodeProcess) -> None:
    r = sup_node.client()
    assert r.set("k", "v") is True
    assert native_call(sup_node.bus_port, [b"PING"]) == (7, envelope.KIND_OK, "PONG")
    before = actor_lines(r)[BUS_ACTOR]["restarts"]

    assert crash(r, BUS_ACTOR) == b"OK"

    wait_for(
        lambda: actor_lines(r)[BUS_ACTOR]["restarts"] == before + 1,
        10,
        what="INFO actors to count the restart",
    )
    bus = actor_lines(r)[BUS_ACTOR]
    assert bus == {
        "state": "running",
        "restarts": before + 1,
        "last_failure": "CrashRequested:DEBUG_CRASH-ACTOR",
    }
    assert r.get("k") == b"v"
    # The restarted bus serves the native protocol again (new sockets, the loop's PUSH reconnected).
    assert wait_for(
        lambda: native_call(sup_node.bus_port, [b"GET", b"k"]), 10, what="a native reply after the restart"
    ) == (7, envelope.KIND_OK, b"v")
    log = wait_for(lambda: "actor_restarted" in sup_node.log() and sup_node.log(), 5)
    assert (
        f'"name": "{BUS_ACTOR}", "reason": "CrashRequested: DEBUG CRASH-ACTOR", "restarts": {before + 1}'
        in log
    )


def test_info_actors_describes_the_supervisor(sup_node: NodeProcess) -> None:
    info = sup_node.client().info("actors")
    assert info["supervisor_state"] == "running"
    assert info["supervisor_strategy"] == "one_for_one"
    assert info["supervisor_max_restarts"] == 5
    assert info["supervisor_restart_window_seconds"] == 60
    assert BUS_ACTOR in info


def test_crash_actor_with_an_unknown_name_lists_the_actors(sup_node: NodeProcess) -> None:
    r = sup_node.client()
    names = ", ".join(actor_lines(r))
    with pytest.raises(redis.ResponseError) as excinfo:
        crash(r, "nope")
    assert str(excinfo.value) == f"no such actor 'nope'; actors: {names}"
    with pytest.raises(redis.ResponseError) as excinfo:
        r.execute_command("DEBUG", "CRASH-ACTOR")
    assert str(excinfo.value) == "wrong number of arguments for 'debug|crash-actor' command"


def test_crashes_past_the_restart_intensity_stop_the_node_with_a_non_zero_status(
    node_factory: Callable[..., NodeProcess],
) -> None:
    node = node_factory("fragile", supervisor_max_restarts=2)
    r = node.client()
    for restarts in (1, 2):
        wait_for(lambda: actor_lines(r)[BUS_ACTOR]["state"] == "running", 10)
        assert crash(r, BUS_ACTOR) == b"OK"
        wait_for(
            lambda n=restarts: actor_lines(r)[BUS_ACTOR]["restarts"] == n, 10, what=f"restart {restarts}"
        )
    wait_for(lambda: actor_lines(r)[BUS_ACTOR]["state"] == "running", 10)
    assert crash(r, BUS_ACTOR) == b"OK"
    assert node.wait_exit(15) == 3
    assert '"event": "supervisor_gave_up"' in node.log()


def test_debug_kill_node_kills_the_process(node_factory: Callable[..., NodeProcess]) -> None:
    node = node_factory("victim")
    with pytest.raises(redis.ConnectionError):
        node.client().execute_command("DEBUG", "KILL-NODE")
    assert node.wait_exit(10) == -signal.SIGKILL


def test_debug_crash_actor_is_refused_without_enable_debug_command(
    node_factory: Callable[..., NodeProcess],
) -> None:
    node = node_factory("guarded", enable_debug_command="no")
    r = node.client()
    with pytest.raises(redis.ResponseError) as excinfo:
        crash(r, BUS_ACTOR)
    assert str(excinfo.value) == (
        'DEBUG command not allowed. If the enable-debug-command option is set to "local", you can run it from a '
        "local connection, otherwise you need to set this option in the configuration file, and then restart the "
        "server."
    )
    assert actor_lines(r)[BUS_ACTOR]["restarts"] == 0


# -- the Supervisor in this process ------------------------------------------------------------------------


class Incarnations:
    """Counts the incarnations of one child and decides which of them fail in on_start."""

    def __init__(self, failing: set[int] | None = None) -> None:
        self.count = 0
        self.failing = failing or set()
        self.lock = threading.Lock()

    def next(self) -> tuple[int, bool]:
        with self.lock:
            self.count += 1
            return self.count, self.count in self.failing


class PlainActor(pykka.ThreadingActor):
    """A pykka actor that reports nothing: only the sweep can notice that it died."""

    def __init__(self, incarnations: Incarnations) -> None:
        super().__init__()
        self.number, self.fail_on_start = incarnations.next()

    def on_start(self) -> None:
        if self.fail_on_start:
            raise RuntimeError(f"cannot start (incarnation {self.number})")

    def on_receive(self, message: Any) -> Any:
        if message == "die":
            raise RuntimeError("told to die")
        return self.number


class Reporting(SupervisedActor):
    def __init__(self, incarnations: Incarnations) -> None:
        super().__init__()
        self.number, self.fail_on_start = incarnations.next()

    def on_start(self) -> None:
        if self.fail_on_start:
            raise RuntimeError(f"cannot start (incarnation {self.number})")

    def on_receive(self, message: Any) -> Any:
        return self.number


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def supervisors() -> Iterator[Callable[..., Supervisor]]:
    """Build supervisors whose wake-ups are collected (the test sweeps by hand); all are stopped after."""
    made: list[Supervisor] = []

    def make(specs: list[Any], **kwargs: Any) -> Supervisor:
        wakeups: list[Callable[[], None]] = []
        kwargs.setdefault("schedule", wakeups.append)
        supervisor = Supervisor(specs, **kwargs)
        made.append(supervisor)
        return supervisor

    yield make
    for supervisor in made:
        supervisor.stop()


def dead(supervisor: Supervisor, name: str) -> Callable[[], bool]:
    ref = supervisor.ref(name)
    return lambda: ref is not None and not ref.is_alive()


def test_an_actor_that_dies_in_on_start_is_found_by_the_sweep_and_restarted(
    supervisors: Callable[..., Supervisor],
) -> None:
    incarnations = Incarnations(failing={2})
    supervisor = supervisors([ChildSpec("plain", lambda: PlainActor.start(incarnations))])
    supervisor.start()
    supervisor.ref("plain").tell("die")  # incarnation 1 dies in a tell handler
    wait_for(dead(supervisor, "plain"), 5)
    supervisor.sweep()  # starts incarnation 2, which raises in on_start: pykka calls no hook at all
    wait_for(dead(supervisor, "plain"), 5, what="incarnation 2 to die in on_start")
    supervisor.sweep()  # only the sweep can see that; it starts incarnation 3
    child = supervisor.child("plain")
    assert child is not None
    assert child.restarts == 2
    assert supervisor.ref("plain").ask("which") == 3
    assert child.state is ChildState.RUNNING


def test_a_supervised_actor_reports_an_on_start_failure_with_its_cause(
    supervisors: Callable[..., Supervisor],
) -> None:
    incarnations = Incarnations(failing={2})
    supervisor = supervisors([ChildSpec("rep", lambda: Reporting.start(incarnations))])
    supervisor.start()
    supervisor.crash("rep")
    wait_for(dead(supervisor, "rep"), 5)
    supervisor.sweep()
    wait_for(dead(supervisor, "rep"), 5)
    supervisor.sweep()
    child = supervisor.child("rep")
    assert child is not None
    assert child.last_failure == "RuntimeError: cannot start (incarnation 2)"
    assert supervisor.ref("rep").ask("which") == 3
    assert dict(supervisor.info_lines())["rep"] == (
        "state=running,restarts=2,last_failure=RuntimeError:cannot_start_incarnation_2"
    )


def test_a_child_that_cannot_start_at_first_fails_the_start(supervisors: Callable[..., Supervisor]) -> None:
    first = Incarnations()
    broken = Incarnations(failing={1})
    supervisor = supervisors(
        [("ok", lambda: Reporting.start(first)), ("broken", lambda: Reporting.start(broken))]
    )
    with pytest.raises(ChildStartError) as excinfo:
        supervisor.start()
    assert str(excinfo.value) == "actor broken failed to start: RuntimeError: cannot start (incarnation 1)"
    assert supervisor.ref("ok") is None  # what had started was stopped again


def test_rest_for_one_restarts_the_children_started_after_the_dead_one(
    supervisors: Callable[..., Supervisor],
) -> None:
    counters = {name: Incarnations() for name in "abc"}
    specs = [ChildSpec(name, lambda c=counters[name]: Reporting.start(c)) for name in "abc"]
    supervisor = supervisors(specs, strategy=Strategy.REST_FOR_ONE)
    supervisor.start()
    first_a = supervisor.ref("a")
    supervisor.crash("b")
    wait_for(dead(supervisor, "b"), 5)
    supervisor.sweep()
    assert supervisor.ref("a") is first_a
    assert [supervisor.ref(n).ask("which") for n in "abc"] == [1, 2, 2]
    assert [c.restarts for c in supervisor.children] == [0, 1, 1]


def test_restart_policies_decide_what_comes_back(supervisors: Callable[..., Supervisor]) -> None:
    counters = {name: Incarnations() for name in ("perm", "trans", "temp")}
    supervisor = supervisors(
        [
            ChildSpec("perm", lambda: Reporting.start(counters["perm"]), RestartPolicy.PERMANENT),
            ChildSpec("trans", lambda: Reporting.start(counters["trans"]), RestartPolicy.TRANSIENT),
            ChildSpec("temp", lambda: Reporting.start(counters["temp"]), RestartPolicy.TEMPORARY),
        ]
    )
    supervisor.start()
    supervisor.ref("trans").stop()  # a normal exit: a transient child stays down
    supervisor.crash("temp")  # a temporary child stays down even after a failure
    supervisor.ref("perm").stop()  # a permanent child always comes back
    for name in ("perm", "trans", "temp"):
        wait_for(dead(supervisor, name), 5)
    supervisor.sweep()
    states = {c.name: c.state for c in supervisor.children}
    assert states == {"perm": ChildState.RUNNING, "trans": ChildState.EXITED, "temp": ChildState.EXITED}
    assert supervisor.ref("perm").ask("which") == 2


def test_the_intensity_counts_restarts_inside_the_window_only(supervisors: Callable[..., Supervisor]) -> None:
    clock = Clock()
    reasons: list[str] = []
    counter = Incarnations()
    supervisor = supervisors(
        [ChildSpec("x", lambda: Reporting.start(counter))],
        max_restarts=2,
        restart_window_s=10,
        clock=clock,
        on_give_up=reasons.append,
    )
    supervisor.start()

    def crash_and_sweep() -> None:
        supervisor.crash("x")
        wait_for(dead(supervisor, "x"), 5)
        supervisor.sweep()

    crash_and_sweep()
    clock.now_s += 1
    crash_and_sweep()
    clock.now_s += 20  # both restarts have left the window
    crash_and_sweep()
    clock.now_s += 1
    crash_and_sweep()
    assert supervisor.state is SupervisorState.RUNNING and not reasons
    clock.now_s += 1
    crash_and_sweep()  # a third restart within 10 s: give up
    assert supervisor.state is SupervisorState.GAVE_UP
    assert reasons == [
        "actor x ended (CrashRequested: DEBUG CRASH-ACTOR) after 2 restarts in 10s "
        "(supervisor-max-restarts 2)"
    ]
    assert supervisor.ref("x") is None


def test_info_values_never_break_the_info_line_format() -> None:
    from actors.supervision.supervisor import info_safe

    assert (
        info_safe("OSError: [Errno 98] Address in use, retry=no")
        == "OSError:_Errno_98_Address_in_use_retry_no"
    )
    assert info_safe("") == "-"
    assert len(info_safe("x" * 500)) == 120
