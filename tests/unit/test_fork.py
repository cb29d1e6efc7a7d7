"""actors/fork.py with real forks: exit statuses, signals, the one-child rule, descriptors, reaping."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import fork
from actors.fork import ChildBusy, ChildExit, ChildKind, ChildRegistry, ExitKind, ForkedChild
from tests.harness import wait_for


class Finished:
    """Records every on_exit call."""

    def __init__(self) -> None:
        self.calls: list[tuple[ForkedChild, ChildExit]] = []

    def __call__(self, child: ForkedChild, result: ChildExit) -> None:
        self.calls.append((child, result))


@pytest.fixture
def registry() -> Iterator[ChildRegistry]:
    children = ChildRegistry()
    yield children
    children.kill(signal.SIGKILL)  # never leave a child behind, whatever the test did


def reap_when_done(children: ChildRegistry) -> ChildExit:
    return wait_for(lambda: children.reap(), timeout_s=10.0, what="the child to exit")


def test_a_child_that_finishes_its_work_is_reaped_as_ok(registry: ChildRegistry, tmp_path: Path) -> None:
    out = tmp_path / "out"
    finished = Finished()

    def work() -> None:
        out.write_bytes(b"done")

    child = registry.fork_child(ChildKind.RDB, work, finished)
    assert registry.active is child and child.kind is ChildKind.RDB and child.pid != os.getpid()
    result = reap_when_done(registry)
    assert result.kind is ExitKind.OK and result.ok
    assert (result.exit_code, result.signal) == (0, 0)
    assert out.read_bytes() == b"done"
    assert registry.active is None
    assert finished.calls == [(child, result)]
    assert registry.total_forks == 1 and registry.latest_fork_usec > 0


def test_an_exception_in_the_work_is_exit_status_1(registry: ChildRegistry) -> None:
    def work() -> None:
        raise ValueError("disk on fire")

    registry.fork_child(ChildKind.AOF, work, Finished())
    result = reap_when_done(registry)
    assert (result.kind, result.exit_code, result.signal) == (ExitKind.ERROR, 1, 0)
    assert not result.ok and result.describe() == "exit status 1"


def test_an_explicit_exit_status_is_reported(registry: ChildRegistry) -> None:
    registry.fork_child(ChildKind.RDB, lambda: os._exit(7), Finished())
    result = reap_when_done(registry)
    assert (result.kind, result.exit_code) == (ExitKind.ERROR, 7)
    assert result.cow_bytes == 0  # it left before reporting


def test_a_child_killed_by_a_signal_is_told_apart_from_an_error(registry: ChildRegistry) -> None:
    finished = Finished()
    child = registry.fork_child(ChildKind.RDB, lambda: time.sleep(30), finished)
    os.kill(child.pid, signal.SIGKILL)
    result = reap_when_done(registry)
    assert (result.kind, result.signal, result.exit_code) == (ExitKind.SIGNALED, signal.SIGKILL, 0)
    assert not result.killed_by_parent and result.describe() == f"signal {int(signal.SIGKILL)}"
    assert len(finished.calls) == 1


def test_kill_stops_the_child_with_sigusr1_and_reaps_it(registry: ChildRegistry) -> None:
    finished = Finished()
    registry.fork_child(ChildKind.AOF, lambda: time.sleep(30), finished)
    started = time.monotonic()
    result = registry.kill()
    assert result is not None and result.killed_by_parent
    assert time.monotonic() - started < 10  # SIGUSR1 has its default action again in the child: it dies
    assert registry.active is None and len(finished.calls) == 1
    assert registry.kill() is None  # nothing left to kill


def test_a_second_child_is_refused_while_one_runs(registry: ChildRegistry) -> None:
    first = registry.fork_child(ChildKind.AOF, lambda: time.sleep(30), Finished())
    for kind in ChildKind:
        with pytest.raises(ChildBusy) as refused:
            registry.fork_child(kind, lambda: None, Finished())
        assert refused.value.active is first
    assert registry.total_forks == 1
    registry.kill()
    registry.fork_child(ChildKind.REPLICA_SNAPSHOT, lambda: None, Finished())  # free again once reaped
    assert reap_when_done(registry).ok


def test_on_exit_may_start_the_next_child(registry: ChildRegistry) -> None:
    """A BGSAVE scheduled behind a rewrite forks from the rewrite's completion."""
    second = Finished()

    def first_done(child: ForkedChild, result: ChildExit) -> None:
        registry.fork_child(ChildKind.RDB, lambda: None, second)

    registry.fork_child(ChildKind.AOF, lambda: None, first_done)
    reap_when_done(registry)
    assert registry.active is not None and registry.active.kind is ChildKind.RDB
    reap_when_done(registry)
    assert len(second.calls) == 1


def test_the_child_keeps_only_the_descriptors_it_is_given(registry: ChildRegistry, tmp_path: Path) -> None:
    kept_r, kept_w = os.pipe()
    other_r, other_w = os.pipe()
    report = tmp_path / "fds"

    def work() -> None:
        open_fds = []
        for fd in (kept_w, other_w):
            try:
                os.fstat(fd)
                open_fds.append(fd)
            except OSError:
                pass
        os.write(kept_w, b"x")
        report.write_text(" ".join(map(str, open_fds)))

    try:
        registry.fork_child(ChildKind.REPLICA_SNAPSHOT, work, Finished(), keep_fds=(kept_w,))
        assert reap_when_done(registry).ok
        assert report.read_text() == str(kept_w)
        assert os.read(kept_r, 1) == b"x"
    finally:
        for fd in (kept_r, kept_w, other_r, other_w):
            os.close(fd)


def test_the_child_reports_its_copy_on_write(registry: ChildRegistry) -> None:
    ballast = [bytearray(4096) for _ in range(2048)]  # 8 MiB the child writes to: every page is copied

    def work() -> None:
        for page in ballast:
            page[0] = 1

    registry.fork_child(ChildKind.RDB, work, Finished())
    result = reap_when_done(registry)
    assert result.ok
    if os.path.exists("/proc/self/smaps_rollup"):
        assert result.cow_bytes >= 4 * 1024 * 1024


def test_a_child_reaped_elsewhere_is_lost(registry: ChildRegistry) -> None:
    child = registry.fork_child(ChildKind.RDB, lambda: None, Finished())
    os.waitpid(child.pid, 0)  # another waitpid in the process took it
    result = registry.reap()
    assert result is not None and (result.kind, result.exit_code) == (ExitKind.LOST, 1)


def test_the_module_functions_share_one_node_registry() -> None:
    assert fork.active() is None
    child = fork.fork_child(ChildKind.RDB, lambda: time.sleep(30), Finished())
    try:
        assert fork.active() is child is fork.NODE_CHILDREN.active
        with pytest.raises(ChildBusy):
            fork.fork_child(ChildKind.REPLICA_SNAPSHOT, lambda: None, Finished())
    finally:
        result = fork.kill()
    assert result is not None and result.killed_by_parent and fork.active() is None
