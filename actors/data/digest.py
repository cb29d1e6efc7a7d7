"""DEBUG DIGEST: a hash of the whole dataset, computed exactly as Redis's debug.c does.

Keys are hashed independently and XORed together (so iteration order does not matter); within a value, lists
and strings are mixed in order, while sets, hashes and sorted sets XOR their elements. A key with a TTL adds
the marker ``!!expire!!`` (the deadline itself is not hashed). Using Redis's algorithm means a dataset has the
same digest in redactor and in redis-server, which the compatibility tests rely on.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Any

from actors.data.keyspace import Database, Keyspace
from actors.data.stream import Stream
from actors.data.types import ZSet

_TYPE_CODES: dict[type, int] = {bytes: 0, deque: 1, set: 2, ZSet: 3, dict: 4, Stream: 6}
_ZERO = bytes(20)


def _sha1(data: bytes) -> bytes:
    import hashlib  # here: DEBUG DIGEST is rare, and OpenSSL's hashes cost every node start-up time

    return hashlib.sha1(data).digest()


def _xor(digest: bytearray, data: bytes) -> None:
    h = _sha1(data)
    for j in range(20):
        digest[j] ^= h[j]


def _mix(digest: bytearray, data: bytes) -> None:
    _xor(digest, data)
    digest[:] = _sha1(bytes(digest))


def _score_text(score: float) -> bytes:
    if score == float("inf"):
        return b"inf"
    if score == float("-inf"):
        return b"-inf"
    return b"%.17g" % score


def value_digest(db: Database, key: bytes, value: Any) -> bytearray:
    """The digest of one key (key bytes, type, value, expiry marker), as computeDatasetDigest builds it."""
    digest = bytearray(20)
    _mix(digest, key)
    object_digest(db, key, value, digest)
    return digest


def object_digest(db: Database, key: bytes, value: Any, digest: bytearray | None = None) -> bytearray:
    """Type, value and expiry marker mixed into ``digest``, as xorObjectDigest does (DEBUG DIGEST-VALUE)."""
    if digest is None:
        digest = bytearray(20)
    _mix(digest, struct.pack(">I", _TYPE_CODES[type(value)]))
    kind = type(value)
    if kind is bytes:
        _mix(digest, value)
    elif kind is deque:
        for item in value:
            _mix(digest, item)
    elif kind is set:
        for member in value:
            _xor(digest, member)
    elif kind is ZSet:
        for member, score in value.items():
            element = bytearray(20)
            _mix(element, member)
            _mix(element, _score_text(score))
            _xor(digest, bytes(element))
    elif kind is dict:
        for field, item in value.items():
            element = bytearray(20)
            _mix(element, field)
            _mix(element, item)
            _xor(digest, bytes(element))
    elif kind is Stream:  # entries in order: "ms.seq" then each field and value (groups are not hashed)
        for (ms, seq), pairs in value.entries.items():
            _mix(digest, b"%d.%d" % (ms, seq))
            for item in pairs:
                _mix(digest, item)
    if key in db.expires:
        _xor(digest, b"!!expire!!")
    return digest


def dataset_digest(keyspace: Keyspace) -> bytes:
    """40 hex characters; all zeros for an empty dataset."""
    final = bytearray(20)
    for db in keyspace.dbs:
        if not db.data:
            continue
        _mix(final, struct.pack(">I", db.id))
        for key, value in db.data.items():
            # Redis folds each key's digest in with xorDigest, i.e. XOR of its SHA1, not of the digest itself.
            _xor(final, bytes(value_digest(db, key, value)))
    return bytes(final).hex().encode()
