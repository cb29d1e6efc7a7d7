"""ACL users on a real node: redis-py's acl_* methods, AUTH / HELLO with users on RESP and on the native
protocol, requirepass as the default user's password, MULTI/EXEC and scripts, ACL files (LOAD / SAVE) and
redis.conf's `user` lines, CLIENT LIST's user, and replication links that log in with masteruser."""

from __future__ import annotations

import contextlib
import hashlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from protocol.client import NativeClient, ReplyError
from tests.harness import NodeProcess, wait_for
from tests.integration.shared import module_node_fixture

node = module_node_fixture()


@pytest.fixture
def r(node: NodeProcess) -> Iterator[redis.Redis]:
    """An admin client as the default user, replies decoded (redis-py's acl_* parsers expect it)."""
    client = node.client(protocol=2, decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def fresh_users(r: redis.Redis) -> None:
    for name in r.acl_users():
        if name != "default":
            r.acl_deluser(name)
    r.acl_log_reset()


def as_user(node: NodeProcess, user: str, password: str) -> redis.Redis:
    return node.client(username=user, password=password, protocol=2)


def test_redis_py_acl_methods_round_trip(node: NodeProcess, r: redis.Redis) -> None:
    assert r.acl_whoami() == "default"
    assert r.acl_setuser(
        "alice",
        enabled=True,
        passwords=["+secret"],
        categories=["+@read"],
        commands=["+set", "-get"],
        keys=["app:*"],
        channels=["news.*"],
    )
    user = r.acl_getuser("alice")
    assert user["enabled"] is True
    assert "on" in user["flags"]
    assert user["passwords"] == [hashlib.sha256(b"secret").hexdigest()]
    assert user["keys"] == ["~app:*"] and user["channels"] == ["&news.*"]
    assert user["categories"] == ["-@all", "+@read"] and sorted(user["commands"]) == ["+set", "-get"]
    assert sorted(r.acl_users()) == ["alice", "default"]
    assert any(line.startswith("user alice on #") for line in r.acl_list())
    assert "read" in r.acl_cat() and "get" in r.acl_cat("read")
    assert len(r.acl_genpass()) == 64 and len(r.acl_genpass(32)) == 8
    assert r.acl_dryrun("alice", "set", "app:1", "v") == "OK"
    assert "no permissions to run the 'get' command" in r.acl_dryrun("alice", "get", "app:1")
    assert r.acl_deluser("alice") == 1
    assert r.acl_getuser("alice") is None


def test_a_user_runs_only_what_its_rules_allow(node: NodeProcess, r: redis.Redis) -> None:
    r.acl_setuser("app", enabled=True, passwords=["+pw"], categories=["+@string"], keys=["app:*"])
    app = as_user(node, "app", "pw")
    assert app.set("app:1", "v") and app.get("app:1") == b"v"
    with pytest.raises(redis.exceptions.NoPermissionError, match="access one of the keys"):
        app.get("other")
    with pytest.raises(redis.exceptions.NoPermissionError, match="run the 'hset' command"):
        app.hset("app:h", "f", "v")
    with pytest.raises(redis.exceptions.NoPermissionError, match="run the 'acl|whoami' command"):
        app.execute_command("ACL", "WHOAMI")
    entries = r.acl_log()
    assert [e["reason"] for e in entries[:3]] == ["command", "command", "key"]
    assert entries[0]["object"] == "acl|whoami" and entries[0]["username"] == "app"
    assert "app" in [c["user"] for c in r.client_list()]  # CLIENT LIST's user= field
    # The default user is untouched: all-permissive, so commands take the fast path again once app is gone.
    r.acl_deluser("app")
    wait_for(lambda: not _alive(app), 5, what="the deleted user's connection to close")
    assert r.get("app:1") == "v"


def _alive(client: redis.Redis) -> bool:
    try:
        client.ping()
    except (redis.ConnectionError, redis.exceptions.NoPermissionError, redis.AuthenticationError):
        return False
    return True


def test_auth_and_hello_auth_with_users(node: NodeProcess, r: redis.Redis) -> None:
    r.acl_setuser("bob", enabled=True, passwords=["+pw"], commands=["+ping", "+acl|whoami"])
    talk = node.client(protocol=2, single_connection_client=True)
    assert talk.execute_command("AUTH", "bob", "pw")
    assert talk.execute_command("ACL", "WHOAMI") == b"bob"
    with pytest.raises(redis.AuthenticationError):
        talk.execute_command("AUTH", "bob", "nope")
    hello = talk.execute_command("HELLO", "2", "AUTH", "default", "")
    assert hello[hello.index(b"proto") + 1] == 2
    assert talk.execute_command("ACL", "WHOAMI") == b"default"
    r.acl_setuser("bob", enabled=False)
    with pytest.raises(redis.AuthenticationError):
        talk.execute_command("AUTH", "bob", "pw")  # a disabled user cannot log in
    reasons = [(e["reason"], e["username"], e["object"]) for e in r.acl_log()]
    assert ("auth", "bob", "AUTH") in reasons


def test_requirepass_is_the_default_users_password(node: NodeProcess, r: redis.Redis) -> None:
    r.config_set("requirepass", "topsecret")
    try:
        user = r.acl_getuser("default")
        assert user["passwords"] == [hashlib.sha256(b"topsecret").hexdigest()]
        assert "nopass" not in user["flags"]
        fresh = node.client(protocol=2)
        with pytest.raises(redis.AuthenticationError):
            fresh.ping()
        assert node.client(password="topsecret", protocol=2).ping()
    finally:
        r.config_set("requirepass", "")
    assert "nopass" in r.acl_getuser("default")["flags"]


def test_multi_queues_nothing_a_user_may_not_run_and_exec_checks_again(
    node: NodeProcess, r: redis.Redis
) -> None:
    r.acl_setuser("tx", enabled=True, passwords=["+pw"], categories=["+@all"], keys=["t:*"])
    tx = as_user(node, "tx", "pw")
    pipe = tx.pipeline()
    pipe.set("t:1", "a").set("other", "b")
    with pytest.raises(redis.exceptions.NoPermissionError):
        pipe.execute()
    assert r.get("t:1") is None  # EXECABORT: nothing ran
    assert r.acl_log(1)[0]["context"] == "multi"
    # Permissions revoked between MULTI and EXEC: the command is answered NOPERM inside EXEC's reply.
    conn = tx.connection_pool.get_connection()
    try:
        conn.send_command("MULTI")
        assert conn.read_response() == b"OK"
        conn.send_command("SET", "t:2", "v")
        assert conn.read_response() == b"QUEUED"
        r.acl_setuser("tx", keys=[], reset_keys=True)
        conn.send_command("EXEC")
        replies = conn.read_response()
        assert isinstance(replies[0], redis.ResponseError)
        assert str(replies[0]).startswith(
            "ACLs rules changed between the moment the transaction was accumulated"
        )
    finally:
        tx.connection_pool.release(conn)
    assert r.get("t:2") is None


def test_scripts_run_with_the_callers_permissions(node: NodeProcess, r: redis.Redis) -> None:
    r.acl_setuser("lua", enabled=True, passwords=["+pw"], categories=["+@scripting", "+@read"], keys=["*"])
    lua = as_user(node, "lua", "pw")
    assert lua.eval("return redis.call('get', KEYS[1])", 1, "k") is None
    with pytest.raises(redis.ResponseError, match="can't run this command or subcommand"):
        lua.eval("return redis.call('set', KEYS[1], 'v')", 1, "k")
    assert r.acl_log(1)[0]["context"] == "lua"


def test_channel_patterns_limit_publish_and_subscribe(node: NodeProcess, r: redis.Redis) -> None:
    r.acl_setuser("ps", enabled=True, passwords=["+pw"], categories=["+@pubsub"], channels=["news.*"])
    ps = as_user(node, "ps", "pw")
    assert ps.publish("news.today", "m") == 0
    with pytest.raises(redis.exceptions.NoPermissionError, match="channels"):
        ps.publish("sport", "m")
    sub = ps.pubsub()
    sub.subscribe("news.a")
    assert sub.get_message(timeout=5)["type"] == "subscribe"
    sub.close()


def test_native_protocol_clients_log_in_as_users(node: NodeProcess, r: redis.Redis) -> None:
    r.acl_setuser("nat", enabled=True, passwords=["+pw"], commands=["+get", "+auth"], keys=["n:*"])
    with NativeClient("127.0.0.1", node.bus_port, timeout_ms=3000, retries=1) as client:
        assert client.call("AUTH", "nat", "pw") in (b"OK", "OK")
        assert client.call("GET", "n:1") is None
        with pytest.raises(ReplyError, match="NOPERM"):
            client.call("SET", "n:1", "v")
        with pytest.raises(ReplyError, match="WRONGPASS"):
            client.call("AUTH", "nat", "bad")


def test_acl_save_and_load_use_the_acl_file(node_factory: Callable[..., NodeProcess], tmp_path: Path) -> None:
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user default on nopass ~* &* +@all\nuser reader on >rpw ~* &* -@all +@read\n")
    n = node_factory("aclfile", aclfile=str(aclfile))
    admin = n.client(protocol=2)
    assert sorted(admin.acl_users()) == ["default", "reader"]
    assert as_user(n, "reader", "rpw").get("x") is None
    admin.acl_setuser("writer", enabled=True, passwords=["+wpw"], categories=["+@write"], keys=["*"])
    assert admin.acl_save()
    lines = aclfile.read_text().splitlines()
    assert [line.split()[1] for line in lines] == ["default", "reader", "writer"]
    assert not [p for p in tmp_path.iterdir() if p.name != "users.acl" and p.name.startswith("users.acl")]
    aclfile.write_text("user default on nopass ~* &* +@all\n")
    assert admin.acl_load()
    assert admin.acl_users() == ["default"]
    aclfile.write_text("user default on nopass ~* &* +@all\nuser bad on +nosuchcommand\nnonsense\n")
    with pytest.raises(redis.ResponseError) as info:
        admin.acl_load()
    assert str(info.value) == (
        f"{aclfile}:2: Unknown command or category name in ACL. {aclfile}:3 should start with user keyword "
        "followed by the username. WARNING: ACL errors detected, no change to the previously active ACL rules "
        "was performed"
    )
    assert admin.acl_users() == ["default"]


def test_a_bad_acl_file_stops_the_node(tmp_path: Path) -> None:
    aclfile = tmp_path / "bad.acl"
    aclfile.write_text("user x on +nosuchcommand\n")
    bad = NodeProcess(tmp_path, "badacl", aclfile=str(aclfile)).start(wait=False)
    try:
        assert bad.proc is not None
        assert bad.proc.wait(timeout=15) == 1
        assert "Aborting Redis startup because of ACL errors" in bad.log()
    finally:
        bad.stop()


class ConfiguredNode(NodeProcess):
    """A node started from a redis.conf file (``user`` lines take several words: not a command-line job)."""

    def __init__(self, base_dir: Path, name: str, conf: Path) -> None:
        super().__init__(base_dir, name)
        self.conf = conf

    def argv(self) -> list[str]:
        args = super().argv()
        at = args.index("server") + 1
        return [*args[:at], str(self.conf), *args[at:]]


def test_user_lines_in_the_configuration(tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text(
        "user ops on >opspw ~* &* +@all -flushall\nuser default on nopass ~* &* +@all\n"
        # read after the whole file, as Redis loads configured users: the later line still applies to pub
        "user pub on nopass +publish\nacl-pubsub-default allchannels\n"
    )
    n = ConfiguredNode(tmp_path, "userlines", conf).start()
    try:
        admin = n.client(protocol=2, decode_responses=True)
        assert "user ops on #" in " ".join(admin.acl_list())
        assert "user pub on nopass &* -@all +publish" in admin.acl_list()
        ops = as_user(n, "ops", "opspw")
        assert ops.set("k", "v")
        with pytest.raises(redis.exceptions.NoPermissionError):
            ops.flushall()
        assert "user" not in admin.config_get("*")
        assert admin.config_get("acllog-max-len") == {"acllog-max-len": "128"}
        admin.config_set("acllog-max-len", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            ops.execute_command("DEBUG", "SLEEP", "0")
        assert len(admin.acl_log()) == 1
    finally:
        n.stop()


def test_a_replica_logs_in_with_masteruser(node_factory: Callable[..., NodeProcess]) -> None:
    master = node_factory("m", requirepass="rootpw")
    admin = master.client(password="rootpw", protocol=2)
    admin.acl_setuser("repl", enabled=True, passwords=["+replpw"], commands=["+psync", "+replconf", "+ping"])
    admin.set("k", "v")
    replica = node_factory("r", replicaof=f"127.0.0.1 {master.port}", masteruser="repl", masterauth="replpw")
    rc = replica.client(protocol=2)
    wait_for(lambda: rc.info("replication")["master_link_status"] == "up", 20, what="the link to come up")
    wait_for(lambda: rc.get("k") == b"v", 10, what="the data to arrive")
    wrong = node_factory("w", replicaof=f"127.0.0.1 {master.port}", masteruser="repl", masterauth="nope")
    wc = wrong.client(protocol=2)
    assert wc.info("replication")["master_link_status"] == "down"


def test_narrowing_channels_disconnects_subscribers_no_longer_allowed(
    node: NodeProcess, r: redis.Redis
) -> None:
    r.acl_setuser("subs", enabled=True, passwords=["+pw"], categories=["+@pubsub"], channels=["a*", "b*"])
    keeps = as_user(node, "subs", "pw").pubsub()
    keeps.subscribe("a1")
    loses = as_user(node, "subs", "pw").pubsub()
    loses.subscribe("b1")
    for sub in (keeps, loses):
        assert sub.get_message(timeout=5)["type"] == "subscribe"
    r.acl_setuser("subs", channels=["a*"], reset_channels=True)
    wait_for(
        lambda: sum(1 for c in r.client_list() if c["user"] == "subs") == 1, 5, what="b1's subscriber to go"
    )
    assert r.publish("a1", "m") == 1
    keeps.close()
    loses.close()


def test_client_kill_by_user(node: NodeProcess, r: redis.Redis) -> None:
    r.acl_setuser("victim", enabled=True, nopass=True, categories=["+@all"])
    victim = as_user(node, "victim", "x")
    assert victim.ping()
    assert r.client_kill_filter(user="victim") == 1
    with pytest.raises(redis.ResponseError, match="No such user 'ghost'"):
        r.client_kill_filter(user="ghost")


def test_a_killed_client_leaves_client_list_at_once(node: NodeProcess, r: redis.Redis) -> None:
    """As Redis (which frees it inside CLIENT KILL): the LIST pipelined right after the KILL omits it."""
    victim = node.client(protocol=2, single_connection_client=True)
    victim.client_setname("victim")
    victim_id = victim.client_id()
    pipe = r.pipeline(transaction=False)
    pipe.execute_command("CLIENT", "KILL", "ID", victim_id).client_list()
    killed, listed = pipe.execute()
    assert killed == 1
    assert "victim" not in [c.get("name") for c in listed]
    victim.close()


def test_clearing_requirepass_lets_waiting_connections_run_commands(
    node: NodeProcess, r: redis.Redis
) -> None:
    r.config_set("requirepass", "pw")
    try:
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(100) == b"-NOAUTH Authentication required.\r\n"
            node.client(password="pw", protocol=2).config_set("requirepass", "")
            sock.sendall(b"PING\r\n")
            assert sock.recv(100) == b"+PONG\r\n"  # as Redis: the default user needs no password any more
            sock.sendall(b"HELLO 2\r\n")
            assert sock.recv(100).startswith(b"-NOAUTH HELLO must be called")  # but HELLO still wants AUTH
    finally:
        with contextlib.suppress(redis.AuthenticationError):
            node.client(password="pw", protocol=2).config_set("requirepass", "")  # if the test stopped early


def test_a_restricted_user_is_refused_on_the_fast_lane_while_others_use_it(
    node: NodeProcess, r: redis.Redis
) -> None:
    """ACL checks are per client: pipelined GET/SET (the fast lane's commands) of a restricted user are refused
    key by key, while an all-permissive client's pipelines in between run; narrowing a logged-in user's rules
    applies to its very next command."""
    r.acl_setuser("narrow", enabled=True, passwords=["+pw"], commands=["+get", "+set"], keys=["n:*"])
    r.acl_setuser("wide", enabled=True, passwords=["+pw"], categories=["+@all"], keys=["*"], channels=["*"])
    narrow = as_user(node, "narrow", "pw")
    wide = as_user(node, "wide", "pw")
    for round_no in range(3):
        pipe = narrow.pipeline(transaction=False)
        pipe.set("n:1", f"v{round_no}").set("other", "x").get("n:1").get("other").set("n:2", "y")
        replies = pipe.execute(raise_on_error=False)
        assert replies[0] is True and replies[2] == f"v{round_no}".encode() and replies[4] is True
        for refused in (replies[1], replies[3]):
            assert isinstance(refused, redis.exceptions.NoPermissionError)
            assert "access one of the keys" in str(refused)
        free = wide.pipeline(transaction=False)
        for i in range(20):
            free.set(f"k:{i}", i)
        for i in range(20):
            free.get(f"k:{i}")
        assert free.execute() == [True] * 20 + [str(i).encode() for i in range(20)]
    assert r.get("other") is None
    # The permissive user made restrictive while logged in: its next pipelined SET is refused.
    r.acl_setuser("wide", commands=["-set"])
    pipe = wide.pipeline(transaction=False)
    pipe.get("k:1").set("k:1", "z")
    got, refused = pipe.execute(raise_on_error=False)
    assert got == b"1" and isinstance(refused, redis.exceptions.NoPermissionError)
    assert "run the 'set' command" in str(refused)
    assert r.get("k:1") == "1"
    narrow.close()
    wide.close()
