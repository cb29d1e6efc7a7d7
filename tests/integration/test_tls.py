"""TLS on the RESP port (actors/server/tls.py) with throwaway certificates: redis-cli --tls and redis-py
ssl=True connect, client certificates are required when tls-auth-clients says so, and a node that cannot set
TLS up refuses to start with redis-server's lines."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.certs import Certs, make_certs
from tests.harness import REPO, NodeProcess, free_port


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(Path(tmp_path_factory.mktemp("certs")))


def _tls_node(
    node_factory: Callable[..., NodeProcess], certs: Certs, **extra: str
) -> tuple[NodeProcess, int]:
    tls_port = free_port()
    node = node_factory(
        "node",
        tls_port=tls_port,
        tls_cert_file=str(certs.server_cert),
        tls_key_file=str(certs.server_key),
        tls_ca_cert_file=str(certs.ca),
        **extra,
    )
    return node, tls_port


def test_redis_cli_and_redis_py_connect_over_tls(
    node_factory: Callable[..., NodeProcess], certs: Certs
) -> None:
    node, tls_port = _tls_node(node_factory, certs)
    tls = redis.Redis(
        port=tls_port,
        ssl=True,
        ssl_ca_certs=str(certs.ca),
        ssl_certfile=str(certs.client_cert),
        ssl_keyfile=str(certs.client_key),
        socket_timeout=10,
    )
    try:
        assert tls.set("k", "v" * 50_000)
        assert tls.get("k") == b"v" * 50_000
        assert tls.pipeline().set("a", 1).incr("a").execute() == [True, 2]
    finally:
        tls.close()
    # The plain port serves the same data.
    assert node.client().get("a") == b"2"
    out = subprocess.run(
        ["redis-cli", "-p", str(tls_port), "--tls", "--cacert", str(certs.ca), "--cert", str(certs.client_cert),
         "--key", str(certs.client_key), "GET", "a"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.stdout.strip() == "2", out


def test_client_certificate_required_unless_tls_auth_clients_no(
    node_factory: Callable[..., NodeProcess], certs: Certs
) -> None:
    node, tls_port = _tls_node(node_factory, certs)
    bare = redis.Redis(port=tls_port, ssl=True, ssl_ca_certs=str(certs.ca), socket_timeout=5)
    with pytest.raises(redis.ConnectionError):
        bare.ping()
    bare.close()
    node.stop()
    open_node, open_port = _tls_node(node_factory, certs, tls_auth_clients="no")
    bare = redis.Redis(port=open_port, ssl=True, ssl_ca_certs=str(certs.ca), socket_timeout=5)
    try:
        assert bare.ping()
    finally:
        bare.close()


def _start_output(args: list[str]) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "launcher.main", "server", *args],
        capture_output=True, text=True, timeout=30, cwd=str(REPO),
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def _redis_output(args: list[str]) -> tuple[int, str]:
    proc = subprocess.run(["redis-server", *args], capture_output=True, text=True, timeout=30)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--tls-port", "PORT"],
        ["--tls-port", "PORT", "--tls-cert-file", "CERT"],
        ["--tls-port", "PORT", "--tls-cert-file", "CERT", "--tls-key-file", "KEY"],
    ],
)
def test_tls_port_without_certificates_refuses_to_start_as_redis(
    args: list[str], certs: Certs, tmp_path: Path
) -> None:
    subst = {"PORT": str(free_port()), "CERT": str(certs.server_cert), "KEY": str(certs.server_key)}
    argv = [subst.get(a, a) for a in args] + [
        "--port",
        str(free_port()),
        "--dir",
        str(tmp_path),
        "--save",
        "",
    ]
    ours_code, ours = _start_output(argv)
    ref_code, ref = _redis_output(argv)
    assert ours_code != 0 and ref_code != 0
    for line in ("No tls-cert-file configured!", "No tls-key-file configured!", "Either tls-ca-cert-file"):
        assert (line in ours) == (line in ref), (line, ours, ref)
    assert "Failed to configure TLS. Check logs for more info." in ours


def test_tls_replication_yes_is_refused_with_a_pointer_to_the_bus(tmp_path: Path) -> None:
    code, out = _start_output(
        ["--port", str(free_port()), "--dir", str(tmp_path), "--tls-replication", "yes"]
    )
    assert code != 0
    assert "tls-replication yes is not supported" in out
