"""CONFIG GET * against redis-server's: every configuration Redis 7.0 lists, the node lists with Redis's
default value, or refuses by name (CONFIG SET and a redis.conf line both say so). Tools read these defaults
(redis-cli --stat, sentinels, operators' scripts), and a file written for Redis either loads or is refused
loudly: never accepted and ignored under a name the node does not know."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer

# Given on both command lines or set by the harnesses differently: not defaults.
ARGUMENTS = {"port", "dir", "logfile", "save", "enable-debug-command", "pidfile", "daemonize", "appendonly"}
# Defaults that differ on purpose, each with its reason.
DIFFERENT_ON_PURPOSE = {
    # A node binds redis.conf's shipped `bind 127.0.0.1 -::1`; redis-server without a file binds every interface.
    "bind",
}
# Redis 7.0's configurations the node refuses by name, for features it does not have (the README lists them).
REFUSED = {
    "aof_rewrite_cpulist",  # no CPU affinity
    "bgsave_cpulist",
    "bio_cpulist",
    "server_cpulist",
    "bind-source-addr",
    "cluster-link-sendbuf-limit",
    "socket-mark-id",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
    "tls-dh-params-file",
    "tls-session-cache-size",
    "tls-session-cache-timeout",
    "tls-session-caching",
}


@pytest.fixture
def node(node_factory: Callable[..., NodeProcess]) -> NodeProcess:
    """A node on the embedded defaults: without the harness's ``repl-diskless-sync-delay 0``."""
    made = node_factory("node", start=False)
    del made.directives["repl-diskless-sync-delay"]
    return made.start()


@pytest.fixture
def both(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> tuple[dict[str, str], dict[str, str], redis.Redis]:
    server = redis_servers(tmp_path, "--repl-diskless-sync-delay", "5")  # its default, over the harness's 0
    ours = node.client(decode_responses=True)
    reference = redis.Redis(port=server.port, decode_responses=True)
    return reference.config_get("*"), ours.config_get("*"), ours


def test_every_configuration_of_redis_is_listed_with_its_default_or_refused(
    both: tuple[dict[str, str], dict[str, str], redis.Redis],
) -> None:
    theirs, ours, _ = both
    missing = sorted(set(theirs) - set(ours) - REFUSED)
    assert missing == [], f"Redis 7.0 lists these, the node neither lists nor refuses them: {missing}"
    wrongly_refused = sorted(REFUSED & set(ours))
    assert wrongly_refused == [], f"listed by the node now: take them out of REFUSED: {wrongly_refused}"
    different = {
        name: (theirs[name], ours[name])
        for name in set(theirs) & set(ours) - ARGUMENTS - DIFFERENT_ON_PURPOSE
        if theirs[name] != ours[name]
    }
    assert different == {}, f"defaults unlike redis-server's (redis, node): {different}"


def test_what_the_node_lacks_is_refused_by_name(
    both: tuple[dict[str, str], dict[str, str], redis.Redis],
) -> None:
    theirs, _, ours = both
    for name in sorted(REFUSED):
        with pytest.raises(redis.ResponseError, match=f"Unknown option.*'{name}'"):
            ours.config_set(name, theirs[name] or "x")


# CONFIG SET answers that differ on purpose: TLS is set up at start only (the README, "Locked doors").
SET_AT_START_ONLY = {
    "tls-ca-cert-dir",
    "tls-ca-cert-file",
    "tls-cert-file",
    "tls-ciphers",
    "tls-ciphersuites",
    "tls-key-file",
    "tls-port",
    "tls-prefer-server-ciphers",
    "tls-protocols",
}


def outcome(client: redis.Redis, name: str, value: str) -> str:
    try:
        client.config_set(name, value)
        return "OK"
    except redis.ResponseError as exc:
        return str(exc)


def test_config_set_of_the_current_value_is_answered_as_redis_answers_it(
    both: tuple[dict[str, str], dict[str, str], redis.Redis],
) -> None:
    """Each configuration set to what it holds: OK where Redis changes it at run time, "can't set immutable
    config" where Redis reads it only at start, "can't set protected config" for dir and dbfilename."""
    theirs, ours, client = both
    reference = redis.Redis(port=int(theirs["port"]), decode_responses=True)
    different = {}
    for name in sorted(set(theirs) & set(ours) - SET_AT_START_ONLY - {"port"}):
        want, got = outcome(reference, name, theirs[name]), outcome(client, name, ours[name])
        if want != got:
            different[name] = (want, got)
    assert different == {}
