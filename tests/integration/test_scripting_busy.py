"""Scripts and time: atomicity below busy-reply-threshold, -BUSY past it, SCRIPT KILL (within 100 ms of the
threshold even for a script that never ends), UNKILLABLE after a write, SHUTDOWN NOSAVE while busy."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, wait_for
from tests.integration.shared import error_of, module_node_fixture, raw

node = module_node_fixture()

NodeFactory = Callable[..., NodeProcess]

FOREVER = "local i = 0 while true do i = i + 1 end"
# Runs ARGV[1] microseconds by the server's clock, reading KEYS[1] at its start and at its end.
FOR_A_WHILE = """
local first = redis.call('get', KEYS[1])
local s = redis.call('time')
while true do
  local t = redis.call('time')
  if (t[1] - s[1]) * 1000000 + (t[2] - s[2]) > tonumber(ARGV[1]) then break end
end
return {first or false, redis.call('get', KEYS[1]) or false}
"""


class Background:
    """A command run on its own connection in a thread; ``result`` is its reply or the exception it raised."""

    def __init__(self, port: int, *args: Any) -> None:
        self.client = redis.Redis(port=port, socket_timeout=30)
        self.result: Any = None
        self.started_s = time.monotonic()
        self.thread = threading.Thread(target=self._run, args=args)
        self.thread.start()

    def _run(self, *args: Any) -> None:
        try:
            self.result = self.client.execute_command(*args)
        except redis.RedisError as exc:
            self.result = exc

    def join(self) -> Any:
        self.thread.join(30)
        assert not self.thread.is_alive()
        self.client.close()
        return self.result


def _busy(client: redis.Redis) -> bool:
    try:
        client.ping()
    except redis.exceptions.BusyLoadingError:
        raise
    except redis.ResponseError as exc:
        assert str(exc).startswith("BUSY Redis is busy running a script."), exc
        return True
    return False


def test_a_script_runs_atomically_below_the_threshold(node: NodeProcess) -> None:
    r = node.client()
    r.set("k", "before")
    script = Background(node.port, "EVAL", FOR_A_WHILE, 1, "k", 300_000)
    time.sleep(0.05)  # the script is running (this is the point of the test, not a wait for state)
    assert r.set("k", "after")  # waits for the script: it is answered only once the script ends
    assert script.join() == [b"before", b"before"]
    assert r.get("k") == b"after"


def test_script_kill_is_answered_within_100_ms_of_the_threshold(node: NodeProcess) -> None:
    r = node.client()
    r.config_set("busy-reply-threshold", 300)
    assert r.config_get("lua-time-limit") == {"lua-time-limit": "300"}
    killer = redis.Redis(port=node.port, socket_timeout=10)
    assert killer.ping()  # connected before the script starts
    script = Background(node.port, "EVAL", FOREVER, 0)
    time.sleep(0.1)  # well inside the threshold: SCRIPT KILL is sent while the loop is inside the script
    assert killer.execute_command("SCRIPT", "KILL") == b"OK"
    answered_s = time.monotonic()
    late_s = answered_s - (script.started_s + 0.3)
    print(f"SCRIPT KILL answered {late_s * 1000:.0f} ms after the threshold")
    assert late_s < 0.1, f"SCRIPT KILL answered {late_s * 1000:.0f} ms after the threshold"
    result = script.join()
    assert isinstance(result, redis.ResponseError)
    assert str(result).startswith("Script killed by user with SCRIPT KILL... script: ")
    assert str(result).endswith(", on @user_script:1.")
    assert r.ping()
    assert error_of(killer.execute_command, "SCRIPT", "KILL") == "NOTBUSY No scripts in execution right now."
    # Redis's warning when a script goes busy, in the node's log (script.c's words; the name is the sha).
    sha = hashlib.sha1(FOREVER.encode()).hexdigest()
    assert re.search(
        rf"Slow script detected: still in execution after \d+ milliseconds\. You can try killing the script "
        rf"using the SCRIPT KILL command\. Script name is: {sha}\.",
        node.log(),
    )
    killer.close()


def test_busy_refuses_others_and_keeps_pipelined_commands_in_order(node: NodeProcess) -> None:
    r = node.client()
    r.config_set("busy-reply-threshold", 100)
    r.set("k", "v")
    caller = redis.Redis(port=node.port, socket_timeout=30)
    pipe = caller.pipeline(transaction=False)
    pipe.eval(FOREVER, 0)
    pipe.get("k")
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.extend(pipe.execute(raise_on_error=False)))
    thread.start()
    wait_for(lambda: _busy(r), 10, what="the node to answer -BUSY")
    # (FUNCTION STATS is served while a function is busy, refused while an EVAL script is: Redis's slowevalerr.)
    for command in (
        ("GET", "k"),
        ("SET", "k", "x"),
        ("SCRIPT", "FLUSH"),
        ("EVAL", "return 1", 0),
        ("FUNCTION", "STATS"),
    ):
        message = error_of(r.execute_command, *command)
        assert (
            message
            == "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
        )
    assert error_of(r.execute_command, "FUNCTION", "KILL") == (
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    )
    assert error_of(r.execute_command, "SHUTDOWN").startswith("BUSY")
    assert r.execute_command("SCRIPT", "KILL") == b"OK"
    thread.join(30)
    assert isinstance(results[0], redis.ResponseError) and results[1] == b"v"
    assert r.get("k") == b"v"
    caller.close()


def test_a_script_that_wrote_is_unkillable_and_shutdown_nosave_still_works(node_factory: NodeFactory) -> None:
    n = node_factory("unkillable")
    r = n.client()
    r.config_set("busy-reply-threshold", 100)
    script = Background(n.port, "EVAL", "redis.call('set', KEYS[1], '1') " + FOREVER, 1, "k")
    wait_for(lambda: _busy(r), 10, what="the node to answer -BUSY")
    message = error_of(r.execute_command, "SCRIPT", "KILL")
    assert message.startswith(
        "UNKILLABLE Sorry the script already executed write commands against the dataset."
    )
    with pytest.raises(redis.ConnectionError):
        r.execute_command("SHUTDOWN", "NOSAVE")
    assert n.wait_exit(10) == 0
    assert isinstance(script.join(), redis.ConnectionError)


def test_function_kill_stops_a_function_that_loops(node: NodeProcess) -> None:
    r = node.client()
    r.config_set("busy-reply-threshold", 100)
    r.function_load(
        "#!lua name=loops\nredis.register_function('forever', function() local i = 0 while true do i = i + 1 end end)",
        replace=True,
    )
    call = Background(node.port, "FCALL", "forever", 0)
    wait_for(lambda: _busy(r), 10, what="the node to answer -BUSY")
    assert (
        error_of(r.ping)
        == "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    )
    stats = raw(r, "FUNCTION", "STATS")  # RESP3: maps
    assert stats[b"running_script"][b"name"] == b"forever" and stats[b"running_script"][b"duration_ms"] >= 100
    assert stats[b"running_script"][b"command"] == [b"FCALL", b"forever", b"0"]  # the command in full
    assert error_of(r.execute_command, "SCRIPT", "KILL").startswith(
        "BUSY Redis is busy running a script. You can only call FUNCTION KILL"
    )
    assert r.execute_command("FUNCTION", "KILL") == b"OK"
    result = call.join()
    assert str(result).startswith(
        "Script killed by user with FUNCTION KILL... script: forever, on @user_function:2."
    )
    assert r.ping()
    assert "using the FUNCTION KILL command. Script name is: forever." in node.log()


def test_function_kill_stops_a_pcall_loop_killed_as_soon_as_busy(node: NodeProcess) -> None:
    """The kill reaches a function whose loop spends its time in redis.call and pcall: asked as soon as the
    node is busy, it used to leave the function running for good (and the node answering nothing)."""
    r = node.client()
    r.config_set("busy-reply-threshold", 10)
    body = "local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end"
    r.function_load(
        f"#!lua name=pcalls\nredis.register_function('spin', function() {body} end)", replace=True
    )
    call = Background(node.port, "FCALL", "spin", 0)
    wait_for(lambda: _busy(r), 10, what="the node to answer -BUSY")
    assert r.execute_command("FUNCTION", "KILL") == b"OK"
    assert str(call.join()).startswith("Script killed by user with FUNCTION KILL...")
    assert r.ping()
    r.config_set("busy-reply-threshold", 5000)


@pytest.mark.parametrize(
    ("script", "where"),
    [
        # A loop in a loadstring chunk (not the script's own code): the error names the chunk, as Redis's.
        ("loadstring('while true do end')()", "while true do end:1"),
        # A loop inside a coroutine (a thread of its own: the hook did not follow it there, the node froze).
        ("coroutine.wrap(function() while true do end end)()", "@user_script:1"),
        # A coroutine resumed forever from a pcall loop (redis-server cannot kill this one; we can).
        (
            "local co = coroutine.create(function() while true do coroutine.yield(1) end end)\n"
            "while true do pcall(coroutine.resume, co) end",
            "@user_script:2",
        ),
    ],
)
def test_script_kill_stops_loops_outside_the_scripts_own_frame(
    node: NodeProcess, script: str, where: str
) -> None:
    """Loops the time hook used to miss kept the node busy (or frozen: no -BUSY at all) until SHUTDOWN
    NOSAVE; each now answers -BUSY and SCRIPT KILL stops it."""
    r = node.client()
    r.config_set("busy-reply-threshold", 10)
    call = Background(node.port, "EVAL", script, 0)
    wait_for(lambda: _busy(r), 10, what="the node to answer -BUSY")
    assert r.execute_command("SCRIPT", "KILL") == b"OK"
    result = str(call.join())
    assert result.startswith("Script killed by user with SCRIPT KILL... script: "), result
    assert result.endswith(f", on {where}."), result
    assert r.ping()
    r.config_set("busy-reply-threshold", 5000)


def test_a_transaction_meeting_a_busy_script_is_aborted_whole(node: NodeProcess) -> None:
    """As Redis 7.0: MULTI is served while a script is busy, a command queued then gets -BUSY and dooms the
    transaction; EXEC refused while busy answers EXECABORT with the reason and ends the transaction."""
    r = node.client()
    r.config_set("busy-reply-threshold", 10)
    r.set("xx", 1)
    queued = node.client()
    for exec_while_busy in (False, True):
        if exec_while_busy:
            assert queued.execute_command("MULTI") == b"OK"
            assert queued.execute_command("INCR", "xx") == b"QUEUED"
        script = Background(node.port, "EVAL", FOREVER, 0)
        wait_for(lambda: _busy(r), 10, what="the node to answer -BUSY")
        if exec_while_busy:
            # (redis-py drops the EXECABORT code from the text it keeps)
            assert error_of(queued.execute_command, "EXEC").startswith(
                "Transaction discarded because of: BUSY Redis is busy running a script."
            )
        else:
            assert queued.execute_command("MULTI") == b"OK"
            assert error_of(queued.execute_command, "INCR", "xx").startswith("BUSY ")
        assert r.execute_command("SCRIPT", "KILL") == b"OK"
        script.join()
        if not exec_while_busy:
            assert queued.execute_command("INCR", "xx") == b"QUEUED"
            assert error_of(queued.execute_command, "EXEC") == (
                "Transaction discarded because of previous errors."
            )
        assert queued.execute_command("GET", "xx") == b"1"  # answered, not QUEUED: no longer in MULTI
        assert r.get("xx") == b"1"
    r.config_set("busy-reply-threshold", 5000)
