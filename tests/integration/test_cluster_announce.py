"""A cluster behind NAT: cluster-announce-ip / -port / -bus-port / -hostname, cluster-preferred-endpoint-type,
cluster-port; and shard channels (routing, cluster-allow-pubsubshard-when-down, slots leaving a shard), each run
the same way on redis-server and on nodes.

The NAT is real sockets: every server binds 127.0.0.1 only, and a forwarder per port listens on 127.0.0.2
(another loopback address) and relays to it, as a container's port mapping does. The servers announce the
forwarders' address and ports, so the cluster forms only if every peer connects where it was told to (nothing
listens on 127.0.0.2 but the forwarders), and a cluster client given one forwarder reaches every slot through
the MOVED replies.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest
import redis
from redis.cluster import RedisCluster

from tests.harness import NodeProcess, RedisServer, free_port, wait_for
from tests.integration.test_cluster_multi import nodes_of, wait_ok

pytestmark = [pytest.mark.slow]
NAT_IP = "127.0.0.2"
KINDS = ["redis", "redactor"]


class Forwarder:
    """Relays TCP connections from ``NAT_IP``:``port`` to 127.0.0.1:``target`` (a thread per direction);
    ``target`` may be set after it is made (a server's port is known once it runs)."""

    def __init__(self, target: int = 0) -> None:
        self.target = target
        self.listener = socket.create_server((NAT_IP, 0))
        self.port: int = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                inside, _ = self.listener.accept()
            except OSError:
                return
            try:
                outside = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                inside.close()
                continue
            outside.settimeout(None)
            self.sockets += [inside, outside]
            for src, dst in ((inside, outside), (outside, inside)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def forwarders() -> Iterator[Callable[..., Forwarder]]:
    made: list[Forwarder] = []

    def make(target: int = 0) -> Forwarder:
        made.append(Forwarder(target))
        return made[-1]

    yield make
    for forwarder in made:
        forwarder.close()


def start_server(
    kind: str,
    tmp_path: Path,
    index: int,
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    **directives: Any,
) -> int:
    """A cluster server of ``kind`` binding 127.0.0.1 only, with ``directives``; returns its port."""
    if kind == "redactor":
        return node_factory(f"n{index}", cluster_enabled="yes", **directives).port
    directory = tmp_path / f"redis{index}"
    directory.mkdir()
    args = ["--cluster-enabled", "yes", "--bind", "127.0.0.1"]
    for name, value in directives.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return redis_servers(directory, *args).port


def raw_client(port: int) -> redis.Redis:
    """A client whose CLUSTER SLOTS / SHARDS replies are left as the server sent them."""
    client = redis.Redis(port=port, socket_timeout=5)
    for name in ("CLUSTER SLOTS", "CLUSTER SHARDS"):
        client.set_response_callback(name, lambda reply, **_: reply)
    return client


def moved(client: redis.Redis, key: str, command: str = "GET", *args: str) -> str:
    """The redirect ``command key`` gets (redis-py raises it as MovedError, without its first word)."""
    with pytest.raises(redis.exceptions.MovedError) as info:
        client.execute_command(command, key, *args)
    return f"MOVED {info.value}"


def as_map(value: Any) -> dict[bytes, Any]:
    """A metadata map as the client gave it (a dict, or RESP2's flat array of pairs)."""
    return value if isinstance(value, dict) else dict(zip(value[::2], value[1::2], strict=True))


def free_pair() -> tuple[int, int]:
    """A port, and another for its bus that is neither it nor its port + 10000 (cluster-port's point)."""
    while True:
        port, bus = free_port(), free_port()
        if bus not in (port, port + 10000):
            return port, bus


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", KINDS)
def test_a_cluster_behind_nat_forms_and_redirects_to_the_announced_addresses(
    kind: str,
    tmp_path: Path,
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    forwarders: Callable[..., Forwarder],
) -> None:
    ports: list[int] = []
    outside: list[tuple[int, int]] = []  # (client port, bus port) on NAT_IP
    for i in range(3):
        bus = free_port()  # cluster-port: the bus away from port + 10000
        client_fw, bus_fw = forwarders(), forwarders(bus)
        ports.append(
            start_server(
                kind,
                tmp_path,
                i,
                node_factory,
                redis_servers,
                cluster_port=bus,
                cluster_node_timeout=3000,
                cluster_announce_ip=NAT_IP,
                cluster_announce_port=client_fw.port,
                cluster_announce_bus_port=bus_fw.port,
                cluster_announce_hostname=f"node-{i}",
            )
        )
        client_fw.target = ports[-1]
        outside.append((client_fw.port, bus_fw.port))
    created = subprocess.run(
        ["redis-cli", "--cluster", "create", *[f"{NAT_IP}:{c}" for c, _ in outside]]
        + ["--cluster-replicas", "0", "--cluster-yes"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    wait_ok(ports, 3, timeout_s=60)

    ids = [redis.Redis(port=p).execute_command("CLUSTER", "MYID").decode() for p in ports]
    expected = {ids[i]: f"{NAT_IP}:{c}@{b},node-{i}" for i, (c, b) in enumerate(outside)}
    for port in ports:
        text = redis.Redis(port=port).execute_command("CLUSTER", "NODES").decode()
        assert {line.split()[0]: line.split()[1] for line in text.splitlines()} == expected

    # CLUSTER SLOTS: each node's entry is [ip, port, id, {hostname}] (Redis's metadata map, hostname known).
    slots = raw_client(ports[0]).execute_command("CLUSTER", "SLOTS")
    assert len(slots) == 3
    for entry in slots:
        ip, port, node_id, extra = entry[2]
        index = ids.index(node_id.decode())
        assert (ip, port, as_map(extra)) == (
            NAT_IP.encode(),
            outside[index][0],
            {b"hostname": f"node-{index}".encode()},
        )

    # A cluster client that knows one forwarder reaches every slot through the others.
    with RedisCluster(host=NAT_IP, port=outside[0][0], socket_timeout=5) as cluster:
        for n in range(60):
            cluster.set(f"key:{n}", n)
        assert [int(cluster.get(f"key:{n}") or -1) for n in range(60)] == list(range(60))
        assert {node.name for node in cluster.get_nodes()} == {f"{NAT_IP}:{c}" for c, _ in outside}

    # cluster-preferred-endpoint-type: what clients are told to reach a node by.
    first = raw_client(ports[0])
    slot = next(e for e in first.execute_command("CLUSTER", "SLOTS") if e[2][2].decode() == ids[1])[0]
    key = next(f"k{n}" for n in range(100000) if first.cluster("keyslot", f"k{n}") == slot)
    assert moved(first, key) == f"MOVED {slot} {NAT_IP}:{outside[1][0]}"
    # A shard channel is routed by its slot as a key is.
    assert moved(first, key, "SPUBLISH", "message") == f"MOVED {slot} {NAT_IP}:{outside[1][0]}"
    first.config_set("cluster-preferred-endpoint-type", "hostname")
    assert moved(first, key) == f"MOVED {slot} node-1:{outside[1][0]}"
    entry = next(e for e in first.execute_command("CLUSTER", "SLOTS") if e[0] == slot)
    assert entry[2][:3] == [b"node-1", outside[1][0], ids[1].encode()]
    assert as_map(entry[2][3]) == {b"ip": NAT_IP.encode()}
    shards = [as_map(s) for s in first.execute_command("CLUSTER", "SHARDS")]
    shard = next(s for s in shards if s[b"slots"] and s[b"slots"][0] == slot)
    details = as_map(shard[b"nodes"][0])
    assert (details[b"ip"], details[b"endpoint"], details[b"hostname"]) == (
        NAT_IP.encode(),
        b"node-1",
        b"node-1",
    )
    first.config_set("cluster-preferred-endpoint-type", "unknown-endpoint")
    assert moved(first, key) == f"MOVED {slot} :{outside[1][0]}"
    entry = next(e for e in first.execute_command("CLUSTER", "SLOTS") if e[0] == slot)
    assert entry[2][:3] == [None, outside[1][0], ids[1].encode()]
    assert as_map(entry[2][3]) == {b"ip": NAT_IP.encode(), b"hostname": b"node-1"}

    # Changed at runtime: the peers hear of it by gossip.
    relay = forwarders(ports[2])
    last = redis.Redis(port=ports[2])
    last.config_set("cluster-announce-port", relay.port)
    last.config_set("cluster-announce-hostname", "renamed")
    wanted = f"{NAT_IP}:{relay.port}@{outside[2][1]},renamed"
    wait_for(
        lambda: f" {wanted} " in redis.Redis(port=ports[0]).execute_command("CLUSTER", "NODES").decode(),
        30,
        what="the new announced port and hostname to reach the other nodes",
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_shard_channels_work_in_a_down_cluster_unless_told_not_to(
    kind: str,
    tmp_path: Path,
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
) -> None:
    port = start_server(kind, tmp_path, 0, node_factory, redis_servers)
    client = redis.Redis(port=port, socket_timeout=5)
    client.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "8000")  # half the slots: the cluster is down
    channel = next(f"c{n}" for n in range(100000) if client.cluster("keyslot", f"c{n}") <= 8000)
    wait_for(lambda: client.cluster("info")["cluster_state"] == "fail", 10, what="cluster_state:fail")
    unserved = next(f"c{n}" for n in range(100000) if client.cluster("keyslot", f"c{n}") > 8000)
    with pytest.raises(redis.exceptions.ClusterDownError, match="^Hash slot not served$"):
        client.execute_command("SPUBLISH", unserved, "hello")
    with pytest.raises(redis.ResponseError, match="Keys in request don't hash to the same slot$"):
        client.execute_command("SSUBSCRIBE", channel, unserved)
    with pytest.raises(redis.exceptions.ClusterDownError, match="^The cluster is down$"):
        client.get(channel)
    assert client.execute_command("SPUBLISH", channel, "hello") == 0  # the default: yes
    client.config_set("cluster-allow-pubsubshard-when-down", "no")
    with pytest.raises(redis.exceptions.ClusterDownError, match="^The cluster is down$"):
        client.execute_command("SPUBLISH", channel, "hello")
    client.config_set("cluster-allow-reads-when-down", "yes")  # reads, not shard channels
    with pytest.raises(redis.exceptions.ClusterDownError, match="^The cluster is down$"):
        client.execute_command("SPUBLISH", channel, "hello")
    assert client.get(channel) is None


@pytest.mark.timeout(60)
def test_a_replica_reaches_its_masters_bus_on_the_port_the_master_names(
    node_factory: Callable[..., NodeProcess],
) -> None:
    port, bus = free_pair()
    master = node_factory("master", port=port, bus_port=bus)
    master.client().set("k", "v")
    replica = node_factory("replica", replicaof=f"127.0.0.1 {master.port}")
    rc = replica.client()
    wait_for(
        lambda: rc.info("replication")["master_link_status"] == "up",
        20,
        what="the replica's link to a master whose bus is not at its port + 10000",
    )
    wait_for(lambda: rc.get("k") == b"v", 10, what="the key to arrive")


class Subscriber:
    """A raw connection that sends commands and reads replies and pushes one at a time (hiredis's reader)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = hiredis.Reader()

    def send(self, *args: str) -> None:
        self.sock.sendall(b"".join(_encode(args)))

    def read(self) -> Any:
        while (reply := self.reader.gets()) is False:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.reader.feed(data)
        return reply

    def close(self) -> None:
        self.sock.close()


def _encode(args: tuple[str, ...]) -> list[bytes]:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg.encode()), arg.encode()))
    return out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KINDS)
def test_shard_channels_follow_their_slot(
    kind: str,
    tmp_path: Path,
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
) -> None:
    """Subscribers of a shard channel whose slot leaves the shard (SETSLOT NODE, DELSLOTS) get a sunsubscribe
    message, on the master and on its replica, which serves the channel without READONLY."""
    ports = [
        start_server(kind, tmp_path, i, node_factory, redis_servers, cluster_node_timeout=3000)
        for i in range(3)
    ]
    a, b, r = (redis.Redis(port=p, socket_timeout=5) for p in ports)
    a.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "8191")
    b.execute_command("CLUSTER", "ADDSLOTSRANGE", "8192", "16383")
    for port in ports[1:]:
        a.execute_command("CLUSTER", "MEET", "127.0.0.1", str(port))
    wait_for(lambda: all(len(nodes_of(p)) == 3 for p in ports), 30, what="the nodes to meet")
    a_id, b_id = (c.execute_command("CLUSTER", "MYID").decode() for c in (a, b))
    r.execute_command("CLUSTER", "REPLICATE", a_id)
    wait_ok(ports, 3, timeout_s=60)
    # A master sends SPUBLISH to the replicas its cluster table lists (gossip tells it, after the sync may be done).
    r_id = r.execute_command("CLUSTER", "MYID").decode()
    wait_for(
        lambda: any(r_id in line.decode() for line in a.execute_command("CLUSTER", "REPLICAS", a_id)),
        30,
        what="the master to list its replica",
    )

    channel = next(f"ch{n}" for n in range(100000) if a.cluster("keyslot", f"ch{n}") <= 8191)
    slot = a.cluster("keyslot", channel)
    subscribers = {name: Subscriber(port) for name, port in (("master", ports[0]), ("replica", ports[2]))}
    try:
        for sub in subscribers.values():
            sub.send("SSUBSCRIBE", channel)
            assert sub.read() == [b"ssubscribe", channel.encode(), 1]
        other = Subscriber(ports[1])
        other.send("SSUBSCRIBE", channel)
        moved = other.read()
        other.close()
        assert isinstance(moved, hiredis.ReplyError) and str(moved) == f"MOVED {slot} 127.0.0.1:{ports[0]}"
        assert a.execute_command("SPUBLISH", channel, "hello") == 1
        assert subscribers["master"].read() == [b"smessage", channel.encode(), b"hello"]
        assert subscribers["replica"].read() == [b"smessage", channel.encode(), b"hello"]

        # The slot moves to B, as redis-cli moves it (B takes it with a new configEpoch, which the replica
        # learns from B's gossip): both subscribers are let go.
        assert a.execute_command("CLUSTER", "SETSLOT", str(slot), "MIGRATING", b_id) == b"OK"
        assert b.execute_command("CLUSTER", "SETSLOT", str(slot), "IMPORTING", a_id) == b"OK"
        assert b.execute_command("CLUSTER", "SETSLOT", str(slot), "NODE", b_id) == b"OK"
        assert a.execute_command("CLUSTER", "SETSLOT", str(slot), "NODE", b_id) == b"OK"
        for sub in subscribers.values():
            assert sub.read() == [b"sunsubscribe", channel.encode(), 0]

        # A slot deleted from its owner lets its subscribers go too.
        subscribers["b"] = Subscriber(ports[1])
        subscribers["b"].send("SSUBSCRIBE", channel)
        assert subscribers["b"].read() == [b"ssubscribe", channel.encode(), 1]
        assert b.execute_command("CLUSTER", "DELSLOTS", str(slot)) == b"OK"
        assert subscribers["b"].read() == [b"sunsubscribe", channel.encode(), 0]
    finally:
        for sub in subscribers.values():
            sub.close()
