"""Redis Cluster's key -> hash slot function: CRC16 (XMODEM) of the key's hash tag, modulo 16384.

    SLOTS = 16384
    hashtag(b"{user1000}.following") == b"user1000"      the part between the first '{' and the first '}'
    hashtag(b"foo{}{bar}") == b"foo{}{bar}"               after it, when non-empty; else the whole key
    keyslot(b"123456789") == 0x31C3 & 0x3FFF              binascii.crc_hqx is CRC16/XMODEM, in C

Keys sharing a hash tag share a slot, which is how multi-key commands stay on one node (Redis's
cluster-spec, "Hash tags"). Wire-level arithmetic only: nothing here knows which node owns a slot.
"""

from __future__ import annotations

from binascii import crc_hqx

__all__ = ["SLOTS", "SLOT_MASK", "hashtag", "keyslot"]

# The number of hash slots (Redis Cluster's CLUSTER_SLOTS): 16384, so a slot bitmap fits a 2 KiB ping header.
SLOTS = 16384
# SLOTS is a power of two: the modulo is a mask.
SLOT_MASK = SLOTS - 1


def hashtag(key: bytes) -> bytes:
    """The part of ``key`` that is hashed: the text between the first ``{`` and the first ``}`` after it, when
    that text is not empty; otherwise the whole key (Redis's keyHashSlot)."""
    start = key.find(b"{")
    if start < 0:
        return key
    end = key.find(b"}", start + 1)
    if end <= start + 1:  # no '}' after the '{', or "{}": the whole key is hashed
        return key
    return key[start + 1 : end]


def keyslot(key: bytes) -> int:
    """The hash slot of ``key`` (0..16383), as ``CLUSTER KEYSLOT`` answers."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc_hqx(key, 0) & SLOT_MASK
