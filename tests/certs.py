"""Throwaway TLS material for tests and ops/bench: a CA, a server certificate for 127.0.0.1 / localhost and a
client certificate, made with the ``openssl`` command line (as Redis's utils/gen-test-certs.sh does)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(directory: Path) -> Certs:
    """Write a CA and server / client certificates signed by it into ``directory`` (made if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("genrsa", "-out", "ca.key", "2048", cwd=directory)
    _openssl(
        "req", "-x509", "-new", "-nodes", "-sha256", "-key", "ca.key", "-days", "2",
        "-subj", "/O=redactor test/CN=Certificate Authority", "-out", "ca.crt", cwd=directory,
    )  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("genrsa", "-out", f"{name}.key", "2048", cwd=directory)
        _openssl(
            "req", "-new", "-sha256", "-key", f"{name}.key", "-subj", f"/O=redactor test/CN={name}",
            "-out", f"{name}.csr", cwd=directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-sha256", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", f"{name}.crt", cwd=directory,
        )  # fmt: skip
    return Certs(
        ca=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )
