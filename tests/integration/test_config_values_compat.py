"""CONFIG SET of bad and odd values, side by side with redis-server: every configuration both list is given
values Redis's parsers refuse or read in their own way (words for numbers, numbers past 64 bits, a leading
'+', '0' or space, memory units, percentages, empty strings), and the node must answer as Redis does: the
same error words, or OK and the same value read back. A value Redis refuses is never stored (the brief's
"accepted and ignored")."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import REPO, NodeProcess, config_set_differences, free_port, wait_for

pytestmark = pytest.mark.compat

# Not set here: they move the servers (files, ports, passwords, replication) or differ on purpose (see
# test_config_defaults_compat.py: TLS files, the cluster bus).
SKIPPED = {
    "requirepass", "masterauth", "masteruser", "dbfilename", "dir", "replicaof", "slaveof", "aclfile", "bind",
    "unixsocket", "logfile", "pidfile", "appendfilename", "appenddirname", "cluster-config-file",
    "bind-source-addr", "ignore-warnings", "port", "tls-port",
}  # fmt: skip
EVERY_CONFIG_VALUES = ("bogus-value", "-1", "99999999999999999999", "")
# Numbers and sizes as Redis's string2ll / memtoull read them, on directives of each numeric kind: a
# size_t / unsigned long long memory value, a long long one, a plain int, a range that includes negatives, a
# memory-or-percent one and inert ones checked all the same.
ODD_NUMBERS = (
    "01", "+1", " 1", "1 ", "-0", "1_000", "1.5", "0x10", "1kb", "1KB", "1 kb", "1kib", "1gb", "1b", "b", "kb",
    "18446744073709551615", "18446744073709551616", "9223372036854775808", "9223372036854775807",
    "-9223372036854775808", "-9223372036854775809", "20000000000gb", "5%", "-5%", "100%", "101%", "%", "0%",
)  # fmt: skip
NUMERIC = (
    "maxmemory", "hash-max-listpack-value", "repl-backlog-size", "timeout", "slowlog-log-slower-than",
    "list-max-listpack-size", "maxmemory-clients", "proto-max-bulk-len", "active-expire-effort",
    "stream-node-max-bytes", "maxclients", "maxmemory-samples", "repl-backlog-ttl",
)  # fmt: skip


def test_every_configuration_refuses_bad_values_as_redis_does(
    node: NodeProcess, redis_servers: Any, tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path).client
    mine = node.client()
    names = sorted(
        name
        for name in set(reference.config_get("*")) & set(mine.config_get("*"))
        if name not in SKIPPED and not name.startswith(("tls-", "syslog", "cluster-announce"))
    )
    assert len(names) > 120
    assert config_set_differences(mine, reference, names, EVERY_CONFIG_VALUES) == []


def test_numbers_and_sizes_are_read_as_redis_reads_them(
    node: NodeProcess, redis_servers: Any, tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path).client
    assert config_set_differences(node.client(), reference, NUMERIC, ODD_NUMBERS) == []


def test_a_tiny_maxmemory_clients_leaves_clients_connected_as_in_redis(
    node: NodeProcess, redis_servers: Any, tmp_path: Path
) -> None:
    """Redis never applies a client eviction limit under 128 KiB: maxmemory-clients 1 would otherwise close
    every connection, the one that set it included, and nobody could set it back."""
    reference = redis_servers(tmp_path)
    for port in (node.port, reference.port):
        control = redis.Redis(port=port)
        assert control.config_set("maxmemory-clients", "1")
        other = redis.Redis(port=port)
        assert other.set("k", "x" * 1000) and other.ping()
        assert control.ping()
        assert control.config_get("maxmemory-clients") == {"maxmemory-clients": "1"}
        control.config_set("maxmemory-clients", "0")
        control.close()
        other.close()


# redis.conf lines: what a file gives is read by the same rules, and a refused line stops the start with the
# message Redis prints under the line (">>> 'name value'").
FILE_LINES = [
    "lazyfree-lazy-eviction maybe",
    "list-max-listpack-size 1kb",
    "loglevel nothing",
    "tcp-backlog -1",
    'unixsocketperm ""',
    'client-output-buffer-limit ""',
    "maxmemory -1",
    'maxmemory ""',
    "timeout 01",
    "active-expire-effort 11",
    'proc-title-template "{bogus}"',
    "repl-diskless-load sometimes",
    # bare lines: save disables saving, client-output-buffer-limit changes nothing, the rest are refused
    "save",
    "client-output-buffer-limit",
    "oom-score-adj-values",
    "maxmemory",
    # skipped by Redis 7.0 (deprecated: no effect since 3.2 / 7.0), so old files still load
    "list-max-ziplist-entries 512",
    "list-max-ziplist-value 64",
    "lua-replicate-commands yes",
    "sentinel monitor m 127.0.0.1 6379 2",
]


def _pong(port: int) -> bool:
    """One PING over a raw socket (redis-py would retry a refused connection with back-off)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def _config_get(port: int, name: str) -> bytes:
    """CONFIG GET name's raw reply: an empty array, or one name and its value."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"CONFIG GET " + name.encode() + b"\r\n")
        reply = sock.recv(4096)
        while reply.count(b"\r\n") < (1 if reply.startswith(b"*0\r\n") else 5):
            reply += sock.recv(4096)
        return reply


def _start_outcome(command: list[str], directory: Path, line: str) -> str:
    """'started: <CONFIG GET of the line's directive>' once the server answers PING (then it is stopped), or
    'refused: <message>' if it exits."""
    port = free_port()
    conf = directory / f"{port}.conf"
    conf.write_text(f'port {port}\nsave ""\nappendonly no\ndir {directory}\n{line}\n')
    proc = subprocess.Popen([*command, str(conf)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        started = wait_for(
            lambda: proc.poll() is not None or _pong(port),
            timeout_s=20,
            what=f"{command[0]} on {line!r} to start or exit",
        )
        if proc.poll() is None and started:
            return f"started: {_config_get(port, line.split()[0])!r}"
        output = proc.communicate(timeout=10)[0].decode("utf-8", "replace").splitlines()
        lines = [text for text in output if text.strip()]
        shown = [i for i, text in enumerate(lines) if text.startswith(">>>")]
        return "refused: " + (
            lines[shown[0] + 1] if shown and shown[0] + 1 < len(lines) else repr(lines[-3:])
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def test_config_file_lines_are_read_as_redis_reads_them(tmp_path: Path) -> None:
    node = [sys.executable, "-m", "launcher.main", "server"]
    differences = []
    for line in FILE_LINES:
        got = _start_outcome(node, tmp_path, line)
        want = _start_outcome(["redis-server"], tmp_path, line)
        if got != want:
            differences.append(f"{line!r}: node {got!r}, redis-server {want!r}")
    assert differences == []


def test_a_node_with_nowhere_to_listen_exits_with_redis_words(tmp_path: Path) -> None:
    """A bare ``bind`` line (no address) or ``port 0`` with no tls-port or unixsocket: both servers exit, saying
    Redis's line; the node with status 1 (could not start)."""
    for line in ("bind", "port 0"):
        conf = tmp_path / "nowhere.conf"
        conf.write_text(f'port {free_port()}\nsave ""\nappendonly no\ndir {tmp_path}\n{line}\n')
        for command in ([sys.executable, "-m", "launcher.main", "server"], ["redis-server"]):
            done = subprocess.run([*command, str(conf)], cwd=REPO, capture_output=True, timeout=60)
            output = (done.stdout + done.stderr).decode()
            assert "Configured to not listen anywhere, exiting." in output, (line, command[0], output)
            assert done.returncode == 1, (line, command[0], done.returncode)


def _logs_in(command: list[str], cwd: Path, directory: str) -> tuple[bool, bool]:
    """Start a server in ``cwd`` with ``--dir directory --logfile rel.log``: (log in the dir, log in cwd)."""
    (cwd / directory).mkdir()
    port = free_port()
    argv = [*command, "--port", str(port), "--dir", directory, "--logfile", "rel.log", "--save", ""]
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: proc.poll() is not None or _pong(port), timeout_s=20, what=f"{command[0]} to start")
        assert proc.poll() is None, command
        in_dir = wait_for(lambda: (cwd / directory / "rel.log").exists(), timeout_s=10, what="the log file")
        return in_dir, (cwd / "rel.log").exists()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_relative_logfile_is_written_in_dir_as_redis_writes_it(tmp_path: Path) -> None:
    """`dir D` and `logfile L` with L relative: both servers log to D/L (Redis chdirs into dir while reading
    its configuration); the node used to write L in the directory it was started from."""
    assert _logs_in(["redis-server"], tmp_path, "redis") == (True, False)
    assert _logs_in([sys.executable, "-m", "launcher.main", "server"], tmp_path, "node") == (True, False)
