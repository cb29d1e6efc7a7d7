"""``cluster-enabled``: until cluster mode lands, ``yes`` stops a node at start-up with a clear message (as any
unsupported directive value does), ``no`` is accepted, and CONFIG SET refuses it as Redis refuses immutable
configs (the same error redis-server 7.0 answers)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from actors.config import CLUSTER_UNSUPPORTED, Config, ConfigError
from tests.harness import REPO, NodeProcess, RedisServer

START_TIMEOUT_S = 30


def start_node(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher.main", "server", *args],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )


def test_a_node_started_with_cluster_enabled_in_its_file_exits_with_the_message(tmp_path: Path) -> None:
    path = tmp_path / "redis.conf"
    path.write_text(f"port 7001\ndir {tmp_path}\ncluster-enabled yes\n")
    proc = start_node(str(path))
    assert proc.returncode == 1
    assert (
        f"Reading the configuration file {path}, at line 3\n>>> 'cluster-enabled yes'\n{CLUSTER_UNSUPPORTED}"
        in proc.stderr
    )


def test_a_node_started_with_cluster_enabled_on_its_command_line_exits_with_the_message(
    tmp_path: Path,
) -> None:
    proc = start_node("--port", "0", "--dir", str(tmp_path), "--cluster-enabled", "yes")
    assert proc.returncode == 1
    assert ">>> 'cluster-enabled yes'" in proc.stderr
    assert CLUSTER_UNSUPPORTED in proc.stderr


def test_cluster_enabled_no_is_accepted_and_reads_back_as_no() -> None:
    config = Config()
    config.apply("cluster-enabled", ["no"], from_file=True)
    assert config["cluster-enabled"] is False
    assert config.match("cluster-enabled") == [("cluster-enabled", "no")]
    with pytest.raises(ConfigError, match="is not supported yet"):
        config.apply("cluster-enabled", ["yes"], from_file=True)


def test_config_set_cluster_enabled_is_refused_as_redis_refuses_it(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
) -> None:
    reference = redis_servers(tmp_path)
    ours = node_factory().client(protocol=2)
    for value in ("yes", "no"):
        replies = []
        for client in (ours, reference.client):
            with pytest.raises(redis.ResponseError) as info:
                client.config_set("cluster-enabled", value)
            replies.append(str(info.value))
        assert replies[0] == replies[1], replies
    assert ours.config_get("cluster-enabled") == {"cluster-enabled": "no"}
