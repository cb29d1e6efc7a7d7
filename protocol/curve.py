"""ZeroMQ CURVE keys for the node bus: key files, the trusted-keys file, and the socket options that use them.

``redactor keygen PATH`` writes a keypair: ``PATH.key_secret`` (public and secret key, mode 0600: what
``bus-curve-secret-key-file`` names) and ``PATH.key`` (public key only, safe to copy around), both in
ZeroMQ's certificate format (what ``zmq.auth.load_certificate`` and CZMQ read), and prints the public key.

The trusted-keys file (``bus-curve-trusted-keys-file``) lists the public keys a node trusts, one per line as
40 Z85 characters, each optionally followed by the bus endpoints (``host:port``) of the node that owns it;
a line or the rest of a line from a word starting with ``#`` is a comment. A node accepts a bus peer only if the peer's public key is listed, and when it connects
to another node's bus (a replica to its master, the shell to a node) it expects the key listed for that
endpoint, or, when none is, its own public key (the simple deployment: one keypair shared by every node, the
shell users' keys added to the list).

Pure wire code: files and socket options, no threads, nothing of actors/.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import zmq
import zmq.utils.z85

# zmq.auth (with pathlib, glob, urllib) is imported by the functions that read or write key files: a node
# without CURVE never does, and its start-up does not pay for them.

__all__ = [
    "CurveError",
    "CurveKeys",
    "TrustedKeys",
    "apply_client",
    "load_keypair",
    "load_trusted",
    "write_keypair",
]

Z85_KEY_CHARS = 40


class CurveError(Exception):
    """A key file that cannot be used; ``str(self)`` says which and why."""


class CurveKeys(NamedTuple):
    """This process's keypair (Z85 bytes)."""

    public: bytes
    secret: bytes


class TrustedKeys:
    """Public keys (Z85 bytes) a node trusts, and which belongs to which bus endpoint. (A plain class, as
    CurveKeys is a NamedTuple: every node imports this module, and dataclasses cost start-up time to make.)"""

    __slots__ = ("keys", "by_endpoint")

    def __init__(self) -> None:
        self.keys: set[bytes] = set()
        self.by_endpoint: dict[str, bytes] = {}

    def server_key_for(self, host: str, port: int, own: CurveKeys) -> bytes:
        """The key the node at ``host:port`` must prove it holds (its own line's key, else ours)."""
        return (
            self.by_endpoint.get(f"{host}:{port}") or self.by_endpoint.get(f"[{host}]:{port}") or own.public
        )


def write_keypair(path: str) -> CurveKeys:
    """Write ``path.key`` (public) and ``path.key_secret`` (both keys, 0600); returns the keys."""
    from pathlib import Path

    import zmq.auth

    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    _public_file, secret_file = zmq.auth.create_certificates(str(directory), target.name)
    os.chmod(secret_file, 0o600)
    loaded_public, loaded_secret = zmq.auth.load_certificate(secret_file)
    assert loaded_secret is not None
    return CurveKeys(loaded_public, loaded_secret)


def load_keypair(path: str) -> CurveKeys:
    """The keypair in ``path`` (a ``.key_secret`` certificate). Raises CurveError."""
    import zmq.auth

    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise CurveError(f"cannot read the bus CURVE key file {path!r}: {exc}") from None
    if not secret:
        raise CurveError(
            f"{path!r} holds no secret key (it is a public .key file; name the .key_secret file)"
        )
    return CurveKeys(public, secret)


def load_public_key(text_or_path: str) -> bytes:
    """A public key given as 40 Z85 characters or as a certificate file (``.key``). Raises CurveError."""
    if len(text_or_path) == Z85_KEY_CHARS and _is_z85(text_or_path.encode()):
        return text_or_path.encode()
    import zmq.auth

    try:
        public, _secret = zmq.auth.load_certificate(text_or_path)
    except (OSError, ValueError) as exc:
        raise CurveError(f"not a Z85 public key nor a key file: {text_or_path!r} ({exc})") from None
    return public


def load_trusted(path: str) -> TrustedKeys:
    """The trusted-keys file (see the module docstring). Raises CurveError."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise CurveError(f"cannot read the bus trusted keys file {path!r}: {exc.strerror}") from None
    trusted = TrustedKeys()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split()
        if not line:
            continue
        key = line[0].encode()
        if key.startswith(b"#") and (len(key) != Z85_KEY_CHARS or not _is_z85(key)):
            continue  # a comment ('#' is also a Z85 character: a 40-character key may start with it)
        if len(key) != Z85_KEY_CHARS:
            raise CurveError(f"{path}:{number}: not a Z85 public key (40 characters): {line[0][:50]!r}")
        try:
            zmq.utils.z85.decode(key)
        except (ValueError, KeyError):
            raise CurveError(f"{path}:{number}: not a Z85 public key: {line[0][:50]!r}") from None
        trusted.keys.add(key)
        for endpoint in line[1:]:
            if endpoint.startswith("#"):
                break  # the rest of the line is a comment
            trusted.by_endpoint[endpoint] = key
    return trusted


def _is_z85(key: bytes) -> bool:
    try:
        zmq.utils.z85.decode(key)
    except (ValueError, KeyError):
        return False
    return True


def apply_client(sock: zmq.Socket[bytes], own: CurveKeys, server_public: bytes) -> None:
    """Make ``sock`` (before connect) a CURVE client that talks only to the holder of ``server_public``."""
    sock.setsockopt(zmq.CURVE_PUBLICKEY, own.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, own.secret)
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_public)
