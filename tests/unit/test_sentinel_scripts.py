"""The sentinel's script queue (actors/sentinel/scripts.py) against Redis's rules: retry delays, the
PENDING-SCRIPTS entry, retries of exit status 1, -script-error for other failures, the queue cap."""

from __future__ import annotations

import asyncio
from pathlib import Path

from actors.sentinel.scripts import MAX_QUEUED_SCRIPTS, JobState, ScriptJob, ScriptRunner


def _runner(reports: list[tuple[str, str]]) -> ScriptRunner:
    timing = {"script-max-runtime": 60_000, "script-retry-delay": 30_000}
    return ScriptRunner(timing, lambda kind, text: reports.append((kind, text)))


def test_retry_delay_doubles_after_the_first_retry_as_redis() -> None:
    runner = _runner([])
    assert [runner.retry_delay_ms(n) for n in (1, 2, 3, 4)] == [30_000, 60_000, 120_000, 240_000]


def test_pending_entry_fields_in_redis_order() -> None:
    job = ScriptJob(["/s", "+sdown", "master m 127.0.0.1 1"], start_ms=1_500, retry_num=1)
    assert job.describe(1_000) == [
        b"argv", [b"/s", b"+sdown", b"master m 127.0.0.1 1"], b"flags", b"scheduled", b"pid", b"0",
        b"run-delay", b"500", b"retry-num", b"1",
    ]  # fmt: skip
    job.state, job.pid, job.start_ms = JobState.RUNNING, 42, 1_000
    assert job.describe(1_250)[4:8] == [b"pid", b"42", b"run-time", b"250"]


def test_exit_1_is_retried_and_other_failures_are_reported(tmp_path: Path) -> None:
    retried = tmp_path / "retried.sh"
    retried.write_text("#!/bin/sh\nexit 1\n")
    failed = tmp_path / "failed.sh"
    failed.write_text("#!/bin/sh\nexit 3\n")
    for path in (retried, failed):
        path.chmod(0o755)
    reports: list[tuple[str, str]] = []

    async def scenario() -> ScriptRunner:
        runner = _runner(reports)
        runner.run(str(retried), "a")
        runner.run(str(failed), "b")
        for _ in range(500):
            if len(runner.jobs) == 1 and runner.jobs[0].state is JobState.SCHEDULED:
                break
            await asyncio.sleep(0.01)
        return runner

    runner = asyncio.run(scenario())
    assert reports == [("-script-error", f"{failed} 0 3")]
    (job,) = runner.jobs
    assert job.argv == [str(retried), "a"] and job.retry_num == 1 and job.pid == 0


def test_a_full_queue_drops_its_oldest_scheduled_job() -> None:
    runner = _runner([])
    runner.jobs = [ScriptJob([f"/s{i}"], start_ms=2**62) for i in range(MAX_QUEUED_SCRIPTS)]

    async def add() -> list[list[str]]:
        runner.run("/new")  # its start is a task that has not run yet: only the queue is looked at
        return [job.argv for job in runner.jobs]

    queue = asyncio.run(add())
    assert len(queue) == MAX_QUEUED_SCRIPTS
    assert queue[0] == ["/s1"] and queue[-1] == ["/new"]
