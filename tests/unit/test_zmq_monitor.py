"""protocol/monitor.py: a socket monitor whose events cannot block libzmq for good.

Each case runs in a child Python: the failure being guarded against is libzmq's I/O thread blocked for good on
a monitor send, which, once pyzmq's ``monitor`` call holds the GIL waiting on the same mutex, freezes every
thread of the process. The child is given a timeout; a hang is a failure, not a stuck test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.harness import REPO

CHILD_TIMEOUT_S = 60


def run_child(code: str) -> str:
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"the child hung (libzmq monitor deadlock); it printed: {exc.stdout!r}"
        ) from None
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_monitor_holds_more_events_than_libzmqs_default_pipe() -> None:
    # 1,500 TCP connections that open and close: 3,000 events, past the 2,000 messages libzmq's default inproc
    # pipe holds. With the default, its I/O thread blocks on the 2,001st until someone reads, and no one does.
    out = run_child(
        """
        import socket, zmq
        from protocol.monitor import close_monitor, event_number, open_monitor
        ctx = zmq.Context()
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        port = router.bind_to_random_port("tcp://127.0.0.1")
        reader = open_monitor(router, zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
        for _ in range(1500):
            socket.create_connection(("127.0.0.1", port)).close()
        # A round trip through the router: the I/O thread has handled the connections before it.
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(f"tcp://127.0.0.1:{port}")
        dealer.send(b"x")
        assert router.recv_multipart()[1] == b"x"
        counts = {}
        while reader.poll(1000):
            event = event_number(reader.recv_multipart())
            counts[event] = counts.get(event, 0) + 1
            if counts.get(zmq.EVENT_DISCONNECTED, 0) >= 1500 and counts.get(zmq.EVENT_ACCEPTED, 0) >= 1501:
                break
        close_monitor(router, reader)
        dealer.close(0)
        router.close(0)
        ctx.term()
        print(counts[zmq.EVENT_ACCEPTED], counts[zmq.EVENT_DISCONNECTED])
        """
    )
    accepted, disconnected = map(int, out.split())
    assert accepted == 1501 and disconnected == 1500
