"""redis.conf's ``rename-command`` compared with redis-server 7.0: the same renames on both servers, then the
same commands (renamed, hidden and untouched names; COMMAND, INFO commandstats, ACL rules, scripts, MULTI,
pipelines, SLOWLOG's redaction, CLIENT REPLY), and the same refusals of bad lines at start-up.

Hardening guides rename or hide FLUSHALL, CONFIG, KEYS, DEBUG...; a node used to refuse the directive, so a
configuration that has one could not start at all. GET is renamed here on purpose: the fast lanes know GET and
SET by their spelling (actors/loop/fastlane.py), and must not answer the old name."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import REPO, NodeProcess, RedisServer, free_port

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

RENAMES = [
    ("KEYS", "KEYSNEW"),
    ("FLUSHALL", ""),
    ("auth", "myauth"),
    ("GET", "fetch"),
    ("CLIENT", "myclient"),
]


def rename_args(renames: list[tuple[str, str]]) -> list[str]:
    args: list[str] = []
    for old, new in renames:
        args += ["--rename-command", old, new]
    return args


class RenamingNode(NodeProcess):
    """A node started with ``--rename-command OLD NEW`` pairs (a directive given several times)."""

    def __init__(self, base_dir: Path, name: str, renames: list[tuple[str, str]], **directives: Any) -> None:
        super().__init__(base_dir, name, **directives)
        self.renames = renames

    def argv(self) -> list[str]:
        return [*super().argv(), *rename_args(self.renames)]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[redis.Redis, redis.Redis, int, int]]:
    (tmp_path / "redis").mkdir()
    reference = RedisServer(tmp_path / "redis", *rename_args(RENAMES))
    try:
        node = RenamingNode(tmp_path, "node", RENAMES).start()
        try:
            yield reference.client, node.client(), reference.port, node.port
        finally:
            node.stop()
    finally:
        reference.stop()


def outcome(client: redis.Redis, *args: Any) -> Any:
    try:
        return ("ok", client.execute_command(*args))
    except (redis.ResponseError, redis.AuthenticationError) as exc:
        return ("err", str(exc))


def script_outcome(client: redis.Redis, body: str) -> Any:
    kind, value = outcome(client, "EVAL", body, "0")
    if kind == "err":  # the script's sha is the same on both; the line is what matters
        value = value.split(" script: ")[0]
    return kind, value


def commandstats_names(client: redis.Redis) -> set[str]:
    text = bytes(client.execute_command("INFO", "commandstats")).decode()
    return {line.split(":")[0] for line in text.splitlines() if line.startswith("cmdstat_")}


def test_renamed_and_hidden_commands_answer_as_redis(
    servers: tuple[redis.Redis, redis.Redis, int, int],
) -> None:
    reference, node, _, _ = servers
    for client in (reference, node):
        client.response_callbacks.clear()  # the replies as they come (redis-py parses COMMAND's, CONFIG's...)
    seen: list[tuple[Any, Any, Any]] = []

    def same(*args: Any) -> None:
        seen.append((args, outcome(reference, *args), outcome(node, *args)))

    same("SET", "a", "b")
    for name in ("GET", "get", "fetch", "FETCH"):
        same(name, "a")
    for name in ("KEYS", "keys", "KEYSNEW", "keysnew"):
        same(name, "*")
    same("FLUSHALL")
    same("flushall", "ASYNC")
    same("COMMAND", "COUNT")
    for name in ("keysnew", "keys", "fetch", "get", "flushall"):  # (no container: its subcommands come in
        same("COMMAND", "INFO", name)  # Redis's hash order)
        same("COMMAND", "DOCS", name)
    same("COMMAND", "INFO", "client")
    same("COMMAND", "GETKEYS", "fetch", "a")
    same("COMMAND", "GETKEYS", "get", "a")
    same("ACL", "SETUSER", "u", "on", "nopass", "~*", "+keysnew")
    same("ACL", "SETUSER", "u", "on", "nopass", "~*", "+keys", "+get")
    same("ACL", "DRYRUN", "u", "keysnew", "*")
    same("ACL", "DRYRUN", "u", "keys", "*")
    same("ACL", "DRYRUN", "u", "fetch", "a")
    same("CONFIG", "GET", "rename-command")
    same("CONFIG", "SET", "rename-command", "keys other")
    same("myauth", "nobody-has-this-password")
    same("auth", "x")
    same("myclient", "getname")
    same("client", "getname")
    for body in (
        "return redis.call('keys', '*')",
        "return redis.call('keysnew', '*')",
        "return redis.call('fetch', 'a')",
        "return redis.call('get', 'a')",
        "return redis.pcall('flushall')",
    ):
        seen.append((body, script_outcome(reference, body), script_outcome(node, body)))
    for args, theirs, mine in seen:
        assert mine == theirs, f"{args}: redis-server {theirs!r}, node {mine!r}"
    listed = [set(map(bytes, c.execute_command("COMMAND", "LIST"))) for c in (reference, node)]
    for name in (b"keys", b"get", b"flushall", b"keysnew", b"fetch", b"client", b"myclient"):
        assert (name in listed[0]) == (name in listed[1]), name
    renamed_client = [c.execute_command("COMMAND", "INFO", "myclient")[0][0] for c in (reference, node)]
    assert renamed_client == [b"client", b"client"]
    # INFO commandstats goes by the commands' own names, as COMMAND INFO does.
    assert commandstats_names(node) == commandstats_names(reference)
    assert {"cmdstat_keys", "cmdstat_get"} <= commandstats_names(node)
    assert commandstats_names(node) & {"cmdstat_keysnew", "cmdstat_fetch"} == set()


def test_transactions_pipelines_and_the_fast_lanes(
    servers: tuple[redis.Redis, redis.Redis, int, int],
) -> None:
    reference, node, _, _ = servers
    for client in (reference, node):
        client.execute_command("SET", "a", "1")
    results = []
    for client in (reference, node):
        pipe = client.pipeline(transaction=True)
        pipe.execute_command("fetch", "a")
        pipe.execute_command("GET", "a")
        try:
            pipe.execute()
            results.append("ran")
        except redis.ResponseError as exc:
            results.append(str(exc))
        # A pipeline of plain GETs and SETs: the fast lanes' run (the node) must not answer the old name.
        pipe = client.pipeline(transaction=False)
        for i in range(20):
            pipe.execute_command("SET", f"k{i}", i)
            pipe.execute_command("GET" if i % 2 else "fetch", f"k{i}")
        results.append([type(r).__name__ if isinstance(r, Exception) else r for r in pipe.execute(False)])
        results.append(client.execute_command("fetch", "k7"))
    assert results[:3] == results[3:]
    assert "unknown command 'GET'" in results[0]  # (redis-py raises the queueing error, as EXEC would abort)


def raw_replies(port: int, payload: bytes, count: int) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        data = b""
        while data.count(b"\r\n") < count:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n")[:count]


def test_client_reply_and_slowlog_know_a_renamed_command(
    servers: tuple[redis.Redis, redis.Redis, int, int],
) -> None:
    reference, node, reference_port, node_port = servers
    # CLIENT REPLY SKIP, then CLIENT REPLY ON by its new name: ON's OK is sent (it clears the skip first).
    payload = b"myclient reply skip\r\nmyclient reply on\r\nping\r\n"
    assert raw_replies(node_port, payload, 2) == raw_replies(reference_port, payload, 2) == [b"+OK", b"+PONG"]
    # A renamed AUTH is redacted in SLOWLOG as AUTH is (Redis redacts in the command itself).
    entries = []
    for client in (reference, node):
        client.config_set("slowlog-log-slower-than", 0)
        outcome(client, "myauth", "user", "secret-password")
        entry = next(e for e in client.slowlog_get(10) if e["command"].startswith(b"myauth"))
        entries.append(entry["command"])
    assert entries[0] == entries[1] == b"myauth (redacted) (redacted)"


def start_outcome(argv: list[str], cwd: Path) -> tuple[int, list[str]]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=30)
    lines = (done.stdout + done.stderr).decode(errors="replace").splitlines()
    return done.returncode, lines[lines.index(next(x for x in lines if x.startswith(">>> "))) :]


@pytest.mark.parametrize(
    "lines",
    [
        ["rename-command nosuch foo"],
        ["rename-command keys get"],
        ["rename-command keys a", "rename-command keys b"],
        ["rename-command keys a b"],
        ["rename-command keys"],
    ],
)
def test_bad_rename_command_lines_stop_start_up_as_redis(tmp_path: Path, lines: list[str]) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("\n".join(lines) + "\n")
    port = str(free_port())
    theirs = start_outcome(["redis-server", str(conf), "--port", port, "--dir", str(tmp_path)], tmp_path)
    ours = start_outcome(
        [sys.executable, "-m", "launcher.main", "server", str(conf), "--port", port, "--dir", str(tmp_path)],
        REPO,
    )
    assert ours == theirs
    assert ours[0] == 1


def test_a_subcommand_is_no_command_to_rename(tmp_path: Path) -> None:
    """Redis 7.0 asserts and crashes on ``rename-command config|get x`` (it finds the subcommand, then fails to
    delete it from the top-level table); a node refuses it as it refuses any name its table lacks."""
    conf = tmp_path / "bad.conf"
    conf.write_text("rename-command config|get x\n")
    code, lines = start_outcome(
        [sys.executable, "-m", "launcher.main", "server", str(conf), "--port", str(free_port())], REPO
    )
    assert (code, lines[-1]) == (1, "No such command in rename-command")


def test_config_rewrite_keeps_the_lines_and_the_aof_still_loads(tmp_path: Path) -> None:
    """CONFIG REWRITE keeps rename-command lines as written (Redis keeps them verbatim). An AOF written before a
    rename still loads: replay finds a command by its own name too (Redis would refuse the file)."""
    first = NodeProcess(tmp_path, "aof", appendonly="yes").start()
    try:
        first.client().set("kept", "v")
        first.client().execute_command("FLUSHALL")
        first.client().set("after", "v")
    finally:
        first.stop()
    conf = tmp_path / "redis.conf"
    conf.write_text('rename-command SET myset\nrename-command FLUSHALL ""\n')

    class ConfiguredNode(NodeProcess):
        def argv(self) -> list[str]:
            args = super().argv()
            at = args.index("server") + 1
            return [*args[:at], str(conf), *args[at:]]

    again = ConfiguredNode(tmp_path, "aof", port=first.port, appendonly="yes").start()
    try:
        client = again.client()
        assert client.keys("*") == [b"after"]
        assert client.execute_command("myset", "new", "1") == b"OK"
        assert client.config_rewrite()
        text = conf.read_text()
        assert text.startswith('rename-command SET myset\nrename-command FLUSHALL ""\n')
        assert text.count("rename-command") == 2
    finally:
        again.stop()
