"""TLS on the RESP port, as Redis's ``tls-*`` directives describe it: the server's SSL context.

``tls-port`` opens a second RESP listener (the same connections, the same commands) wrapped in TLS with
``tls-cert-file`` / ``tls-key-file`` (``tls-key-file-pass``); ``tls-auth-clients`` (yes: a client certificate
signed by ``tls-ca-cert-file`` / ``tls-ca-cert-dir`` is required; optional: checked if given; no) decides
whether clients must present one; ``tls-protocols`` and ``tls-ciphers`` / ``tls-prefer-server-ciphers`` shape
the handshake. ``port 0`` with a ``tls-port`` serves TLS only.

Start-up refuses a node whose TLS cannot be configured with Redis's lines ("No tls-cert-file configured!" ...
then "Failed to configure TLS. Check logs for more info."), as redis-server does, instead of starting with
nothing listening on ``tls-port``.

What does not apply: replication and (later) cluster traffic ride the node bus (ZeroMQ), not RESP, so
``tls-replication yes`` / ``tls-cluster yes`` are refused with a pointer to the bus's CURVE keys
(README, 'Locked doors') that protect those links instead. TLS 1.3 cipher suites (``tls-ciphersuites``) cannot be
chosen through Python's ssl module, so a value for it is refused rather than ignored.
"""

from __future__ import annotations

import ssl
from typing import Any

# Redis's last line when TLS cannot be set up (then it exits 1).
TLS_FAILED = "Failed to configure TLS. Check logs for more info."
_PROTOCOLS = {
    "tlsv1": ssl.TLSVersion.TLSv1,
    "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}


class TlsConfigError(Exception):
    """TLS cannot be configured: ``str(self)`` is Redis's log line saying why."""


def tls_wanted(config: Any) -> bool:
    """Whether the node must set up TLS at start (Redis: tls-port, or tls-replication / tls-cluster)."""
    return bool(config["tls-port"])


def build_server_context(config: Any) -> ssl.SSLContext:
    """The SSL context for ``tls-port``, from the live configuration. Raises TlsConfigError (Redis's lines)."""
    cert_file = config["tls-cert-file"]
    key_file = config["tls-key-file"]
    ca_file = config["tls-ca-cert-file"]
    ca_dir = config["tls-ca-cert-dir"]
    auth_clients = config["tls-auth-clients"]
    if not cert_file:
        raise TlsConfigError("No tls-cert-file configured!")
    if not key_file:
        raise TlsConfigError("No tls-key-file configured!")
    if auth_clients != "no" and not ca_file and not ca_dir:
        raise TlsConfigError(
            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, "
            "tls-replication or tls-auth-clients are enabled!"
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    protocols = config["tls-protocols"].split()
    if protocols:
        versions = []
        for name in protocols:
            version = _PROTOCOLS.get(name.lower())
            if version is None:
                raise TlsConfigError(
                    "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and "
                    "'TLSv1.3'."
                )
            versions.append(version)
        ctx.minimum_version = min(versions)
        ctx.maximum_version = max(versions)
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # Redis's default: "TLSv1.2 TLSv1.3"
    try:
        ctx.load_cert_chain(cert_file, key_file, password=config["tls-key-file-pass"] or None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"Failed to load certificate: {cert_file}: {_reason(exc)}") from None
    if ca_file or ca_dir:
        try:
            ctx.load_verify_locations(cafile=ca_file or None, capath=ca_dir or None)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(
                f"Failed to configure CA certificate(s) file/directory: {_reason(exc)}"
            ) from None
    ctx.verify_mode = {"yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL}.get(
        auth_clients, ssl.CERT_NONE
    )
    ciphers = config["tls-ciphers"]
    if ciphers:
        try:
            ctx.set_ciphers(ciphers)
        except ssl.SSLError:
            raise TlsConfigError(f"Failed to configure ciphers: {ciphers}") from None
    if config["tls-prefer-server-ciphers"]:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
