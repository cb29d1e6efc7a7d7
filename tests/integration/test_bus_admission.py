"""The bus's door (actors/bus/admission.py) against hostile peers, with real node processes and raw DEALERs.

Volumes are scaled down from the issue's attack figures (10,000 connects -> 1,000, each answered; 4,000 x 1 MiB frames ->
600 x 1 MiB) so the tests stay fast on a loaded 2-core machine; the limits they check do not depend on volume
(each connection or frame is refused on its own)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import msgpack
import pytest
import redis
import zmq

from protocol.client import NativeClient, ReplyError
from protocol.envelope import decode_reply, encode_request
from tests.harness import NodeProcess, wait_for

TIMEOUT_MS = 3000
# How long a call that must be answered may take: a loaded CI machine has taken over 3 s for a new node's
# first bus reply (a refusal is still judged by TIMEOUT_MS of silence).
ANSWER_TIMEOUT_MS = 20000


def _rss_bytes(node: NodeProcess, field: str = "VmRSS") -> int:
    """The node's resident memory now (or, with ``field="VmHWM"``, its peak so far)."""
    with open(f"/proc/{node.pid}/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


def _dealer(host: str, port: int) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sock.connect(f"tcp://{host}:{port}")
    return sock


def _connected_clients(r: redis.Redis) -> int:
    return int(r.info("clients")["connected_clients"])


def test_bus_connect_flood_leaves_resp_clients_served(node_factory: Callable[..., NodeProcess]) -> None:
    node = node_factory("node", requirepass="pw", maxclients=50)
    r = node.client(password="pw")
    rss_before = _rss_bytes(node)
    started = time.monotonic()
    for i in range(1000):
        sock = _dealer("127.0.0.1", node.bus_port)
        sock.send(encode_request(i, [b"PING"]))
        _, _, value = decode_reply(sock.recv())  # each PING reached the node and was answered
        assert "NOAUTH" in str(value)
        sock.close(0)
    print(f"1000 connect/PING/close cycles in {time.monotonic() - started:.1f}s")
    # A RESP client connects at once: the bus peers neither fill maxclients nor linger.
    fresh = redis.Redis(port=node.port, password="pw", socket_timeout=5)
    assert fresh.ping()
    fresh.close()
    wait_for(lambda: _connected_clients(r) <= 2, 10, what="the bus peers to be forgotten")
    grown = _rss_bytes(node) - rss_before
    print(f"RSS grew by {grown / 2**20:.1f} MiB")
    assert grown < 50 * 2**20


def test_unauthenticated_bus_peers_are_capped_and_timed_out(node_factory: Callable[..., NodeProcess]) -> None:
    node = node_factory(
        "node", requirepass="pw", maxclients=100, bus_max_unauthenticated_peers=20, bus_auth_timeout_ms=1000
    )
    r = node.client(password="pw")
    socks = []
    for i in range(60):
        sock = _dealer("127.0.0.1", node.bus_port)
        sock.send(encode_request(i, [b"PING"]))
        socks.append(sock)
    try:
        assert _connected_clients(r) <= 1 + 21
        # Idle and unauthenticated: dropped within the timeout (plus a sweep), all of them.
        wait_for(lambda: _connected_clients(r) == 1, 10, what="idle unauthenticated bus peers to be dropped")
        wait_for(
            lambda: "unauthenticated and idle" in node.log() or "too many unauthenticated" in node.log(),
            5,
            what="the drops to be logged",
        )
        # An authenticated native client is not dropped when idle.
        with NativeClient("127.0.0.1", node.bus_port, timeout_ms=TIMEOUT_MS, retries=1) as client:
            assert client.call("AUTH", "pw") == "OK"
            idle_until = time.monotonic() + 2.0
            wait_for(lambda: time.monotonic() > idle_until, 5, what="two idle seconds")
            assert client.call("SET", "k", "v") == "OK"
            assert r.get("k") == b"v"
    finally:
        for sock in socks:
            sock.close(0)


# A separate process floods the bus with unauthenticated 1 MiB SETs over 10 DEALERs. A queue of one frame per
# DEALER paces the sends by what the node reads (a DEALER re-makes a connection the node drops), so the frames
# reach the node rather than a queue discarded at exit.
_FLOODER = """
import sys, zmq
from protocol.envelope import encode_request
port, frames = int(sys.argv[1]), int(sys.argv[2])
payload = encode_request(1, [b"SET", b"k", b"x" * (1024 * 1024)])
ctx = zmq.Context()
socks = []
for _ in range(10):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.SNDHWM, 1)
    s.setsockopt(zmq.RECONNECT_IVL, 10)
    s.setsockopt(zmq.SNDTIMEO, 2000)
    s.connect(f"tcp://127.0.0.1:{port}")
    socks.append(s)
sent = 0
for i in range(frames):
    try:
        socks[i % 10].send(payload, copy=False)
        sent += 1
    except zmq.Again:
        pass
print(f"flooder: {sent} of {frames} frames sent", flush=True)
ctx.destroy(linger=1000)
"""
FLOOD_FRAMES = 600
# PING p99 of the attacked node: the target, and how much worse than the unattacked control node's
# (same machine, same moment) it may be. The machine is shared (load 10-20 is common), so the absolute target
# cannot be asserted alone: under load both nodes see scheduler stalls of tens of ms.
PING_P99_TARGET_MS = 10.0
PING_P99_OVER_CONTROL = 2.0
PING_P99_SLACK_MS = 15.0


def _load_1min() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def _p99(latencies_ms: list[float]) -> float:
    ordered = sorted(latencies_ms)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def test_big_unauthenticated_frames_are_refused_before_decoding(
    node_factory: Callable[..., NodeProcess],
) -> None:
    node = node_factory("node", requirepass="pw")
    control = node_factory("control", requirepass="pw")
    r = node.client(password="pw")
    rc = control.client(password="pw")
    rss_before = _rss_bytes(node)
    flooder = subprocess.Popen([sys.executable, "-c", _FLOODER, str(node.bus_port), str(FLOOD_FRAMES)])
    latencies_ms: dict[str, list[float]] = {"attacked": [], "control": []}
    try:
        deadline = time.monotonic() + 60
        while flooder.poll() is None and time.monotonic() < deadline:
            for name, client in (("attacked", r), ("control", rc)):  # alternately: the same moments
                t0 = time.perf_counter()
                assert client.ping()
                latencies_ms[name].append((time.perf_counter() - t0) * 1000)
        assert flooder.wait(timeout=10) == 0
    finally:
        if flooder.poll() is None:
            flooder.kill()
            flooder.wait()
    wait_for(lambda: "unauthenticated frame too big" in node.log(), 30, what="the big frames to be refused")
    assert r.get("k") is None  # nothing was applied
    info = _bus_info(r)
    assert info["bus_frames_refused"] > 0
    grown = _rss_bytes(node) - rss_before
    p99 = {name: _p99(values) for name, values in latencies_ms.items()}
    print(
        f"RSS grew by {grown / 2**20:.1f} MiB; {info}; PING p99 attacked {p99['attacked']:.1f} ms, "
        f"control {p99['control']:.1f} ms ({len(latencies_ms['attacked'])} pings each); "
        f"load {_load_1min()}"
    )
    assert grown < 100 * 2**20
    assert len(latencies_ms["attacked"]) >= 20
    assert p99["attacked"] < max(
        PING_P99_TARGET_MS, PING_P99_OVER_CONTROL * p99["control"] + PING_P99_SLACK_MS
    )
    # Authenticated, a 1 MiB value over the bus is fine.
    with NativeClient("127.0.0.1", node.bus_port, timeout_ms=10_000, retries=1) as client:
        assert client.call("AUTH", "pw") == "OK"
        assert client.call("SET", "k", b"x" * (1024 * 1024)) == "OK"
    assert r.strlen("k") == 1024 * 1024


def _bus_info(r: redis.Redis) -> dict[str, int]:
    return {k: int(v) for k, v in r.info("bus").items()}


def test_redis_preauth_limits_on_bus_frames(node_factory: Callable[..., NodeProcess]) -> None:
    """Before AUTH, a bus frame holds at most 10 arguments and 16 KiB per string (Redis 7's limits on the RESP
    port), walked before decoding: over them the connection is dropped and counted in INFO bus."""
    node = node_factory("node", requirepass="pw")
    r = node.client(password="pw")
    assert _bus_info(r) == {
        "bus_authenticated_peers": 0,
        "bus_unauthenticated_peers": 0,
        "bus_peers_dropped": 0,
        "bus_frames_refused": 0,
    }
    # Within the limits: answered (NOAUTH), and the peer is counted as unauthenticated.
    sock = _dealer("127.0.0.1", node.bus_port)
    try:
        sock.send(encode_request(1, [b"ECHO", b"x" * 16384]))
        assert "NOAUTH" in str(decode_reply(sock.recv())[2])
        sock.send(encode_request(2, [b"MSET", *[b"k"] * 9]))  # 10 arguments
        assert "NOAUTH" in str(decode_reply(sock.recv())[2])
        assert _bus_info(r)["bus_unauthenticated_peers"] == 1
    finally:
        sock.close(0)
    refused = [
        ([b"MSET", *[b"k"] * 10], "unauthenticated multibulk length"),  # 11 arguments
        ([b"ECHO", b"x" * 16385], "unauthenticated bulk length"),
        ([b"DEL", *[b""] * 60_000], "unauthenticated multibulk length"),  # 120 KiB of tiny arguments
    ]
    for count, (argv, reason) in enumerate(refused, 1):
        sock = _dealer("127.0.0.1", node.bus_port)
        try:
            sock.send(encode_request(1, argv))
            wait_for(
                lambda n=count: _bus_info(r)["bus_frames_refused"] >= n, 10, what=f"frame {count} refused"
            )
            wait_for(lambda why=reason: why in node.log(), 10, what=f"the refusal logged: {reason}")
        finally:
            sock.close(0)
    info = _bus_info(r)
    assert info["bus_peers_dropped"] >= 3
    wait_for(lambda: _bus_info(r)["bus_unauthenticated_peers"] == 0, 10, what="the dropped peers forgotten")
    # A replica's node messages are walked too: a Hello header of 20 fields is refused.
    sock = _dealer("127.0.0.1", node.bus_port)
    try:
        sock.send_multipart([b"N", msgpack.packb(["hello", *range(20)])])
        wait_for(lambda: _bus_info(r)["bus_frames_refused"] >= 4, 10, what="the node message refused")
    finally:
        sock.close(0)
    # One huge frame (256 MiB, well under ZMQ_MAXMSGSIZE) is cut off while libzmq is still reading it: the
    # node's peak memory never holds it.
    peak_before = _rss_bytes(node, "VmHWM")
    sock = _dealer("127.0.0.1", node.bus_port)
    try:
        sock.send(encode_request(1, [b"SET", b"huge", b"x" * (256 * 2**20)]), copy=False)
        wait_for(
            lambda: "unauthenticated peer is sending too much" in node.log(),
            20,
            what="the huge frame cut off",
        )
    finally:
        sock.close(0)
    peak_grown = _rss_bytes(node, "VmHWM") - peak_before
    print(f"peak RSS grew by {peak_grown / 2**20:.1f} MiB for a 256 MiB frame")
    assert peak_grown < 128 * 2**20
    assert r.exists("huge") == 0
    # Authenticated, the limits are gone: 11 arguments and a 1 MiB string on the same connection.
    with NativeClient("127.0.0.1", node.bus_port, timeout_ms=10_000, retries=1) as client:
        assert client.call("AUTH", "pw") == "OK"
        assert client.call("MSET", *[f"k{i}" for i in range(12)]) == "OK"
        assert client.call("SET", "big", b"x" * (1024 * 1024)) == "OK"
        assert _bus_info(r)["bus_authenticated_peers"] == 1
    assert r.get("k0") == b"k1"
    assert r.strlen("big") == 1024 * 1024
    # Without a password nothing is walked (as Redis: only clients that must authenticate are limited).
    open_node = node_factory("open")
    with NativeClient("127.0.0.1", open_node.bus_port, timeout_ms=10_000, retries=1) as client:
        assert client.call("MSET", *[f"k{i}" for i in range(12)]) == "OK"
    assert _bus_info(open_node.client())["bus_frames_refused"] == 0


def _non_loopback_address() -> str | None:
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            host = str(s.getsockname()[0])
    except OSError:
        return None
    return None if host.startswith("127.") else host


def test_bus_protected_mode_and_local_debug(node_factory: Callable[..., NodeProcess]) -> None:
    host = _non_loopback_address()
    if host is None:
        pytest.skip("no non-loopback address on this machine")
    node = node_factory("node", bind=f"127.0.0.1 {host}", protected_mode="yes")
    # Protected mode, no password: a peer from a non-loopback address is dropped, loopback is served.
    outside = _dealer(host, node.bus_port)
    outside.send(encode_request(1, [b"PING"]))
    with pytest.raises(zmq.Again):
        outside.recv()
    outside.close(0)
    with NativeClient("127.0.0.1", node.bus_port, timeout_ms=ANSWER_TIMEOUT_MS, retries=1) as client:
        assert client.call("PING") == "PONG"
    # enable-debug-command local: loopback only, on the bus as on the RESP port.
    node2 = node_factory("node2", bind=f"127.0.0.1 {host}", protected_mode="no", enable_debug_command="local")
    with NativeClient(host, node2.bus_port, timeout_ms=ANSWER_TIMEOUT_MS, retries=1) as client:
        with pytest.raises(ReplyError, match="DEBUG command not allowed"):
            client.call("DEBUG", "SLEEP", "0")
    with NativeClient("127.0.0.1", node2.bus_port, timeout_ms=ANSWER_TIMEOUT_MS, retries=1) as client:
        assert client.call("DEBUG", "SLEEP", "0") == "OK"


def test_replica_authenticates_on_the_bus_with_masterauth(node_factory: Callable[..., NodeProcess]) -> None:
    master = node_factory("master", requirepass="pw", bus_auth_timeout_ms=500)
    replica = node_factory("replica", requirepass="pw", masterauth="pw", replicaof=f"127.0.0.1 {master.port}")
    m = master.client(password="pw")
    rep = replica.client(password="pw")
    m.set("a", "1")
    wait_for(lambda: rep.get("a") == b"1", 15, what="the replica to get the write")
    # Well past the unauthenticated timeout, the link still streams (the replica proved the password).
    later = time.monotonic() + 1.5
    wait_for(lambda: time.monotonic() > later, 5, what="the timeout to pass")
    m.set("b", "2")
    wait_for(lambda: rep.get("b") == b"2", 15, what="the replica to get the second write")
    # A replica with the wrong masterauth gets nothing.
    bad = node_factory("bad", masterauth="nope", replicaof=f"127.0.0.1 {master.port}")
    b = bad.client()
    wait_for(lambda: "WRONGPASS" in bad.log() or "invalid" in bad.log(), 15, what="the bad replica refused")
    assert b.get("a") is None


def test_a_flood_of_bad_frames_writes_a_bounded_log(node_factory: Callable[..., NodeProcess]) -> None:
    """20,000 malformed frames on the bus and 200 RESP protocol errors (the issue's 200k frames, scaled): the
    log gets a few lines and a count per interval, not a line (or a traceback) per frame."""
    node = node_factory("node")
    r = node.client()
    size_before = node.log_path.stat().st_size
    sock = _dealer("127.0.0.1", node.bus_port)
    try:
        for i in range(20_000):
            sock.send(b"\xc1not msgpack" if i % 2 else b"")
            if i % 1000 == 0:
                sock.send_multipart([b"\x01", b"\x02", b"\x03"])  # an unexpected frame layout
                sock.send_multipart([b"peer", b"\x93\xa5psync\x01\x02", b"x"])  # a bad peer frame
        sock.send(encode_request(777, [b"PING"]))
        while True:  # the bad frames' error replies come first
            request_id, _, value = decode_reply(sock.recv())
            if request_id == 777:
                break
        assert value == "PONG"
    finally:
        sock.close(0)
    import socket

    for _ in range(200):
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
            s.sendall(b"*1\r\n$x\r\n")
            s.recv(100)
    assert r.ping()
    grown = node.log_path.stat().st_size - size_before
    print(f"log grew by {grown} bytes")
    assert grown < 64 * 1024
    assert "Traceback" not in node.log()
