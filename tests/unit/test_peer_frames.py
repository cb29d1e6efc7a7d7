"""Node <-> node frames (protocol/peer.py): every verb round-trips, the bytes are the wire's, and any malformed
message is one PeerFrameError."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from protocol import peer
from protocol.peer import PEER_FAMILY, PEER_PROTOCOL_VERSION, PeerFrameError

EXAMPLES: list[peer.PeerFrame] = [
    peer.Hello("secret", PEER_PROTOCOL_VERSION),
    peer.HelloOk("a" * 40),
    peer.Error("NOAUTH Authentication required."),
    peer.Psync("?", -1, "node-1", 6380, "127.0.0.1", ""),
    peer.Psync("b" * 40, 1234, "node-2", 6381, "::1", "pw"),
    peer.Continue("c" * 40, 3),
    peer.FullResync("d" * 40, 99),
    peer.SnapBegin(-1),
    peer.SnapChunk(0, b"REDIS0010\x00\xff"),
    peer.SnapEnd(4096, -1),
    peer.SnapAck(1 << 20),
    peer.Stream(17, b"*1\r\n$4\r\nPING\r\n"),
    peer.Ack(-1),
    peer.Ping(42),
    peer.GetAck(),
    peer.Bye(),
]


def test_every_verb_has_an_example() -> None:
    assert {type(frame) for frame in EXAMPLES} == set(peer.FRAME_TYPES)


@pytest.mark.parametrize("frame", EXAMPLES, ids=lambda f: type(f).__name__)
def test_a_frame_round_trips(frame: peer.PeerFrame) -> None:
    assert peer.decode(peer.encode(frame)) == frame


def test_the_bytes_are_the_old_wire_format() -> None:
    """[b"N", msgpack [verb, fields...], payload?]: what nodes spoke before the frames were classes."""
    old = msgpack.packb(["psync", "?", -1, "n", 6380, "10.0.0.1", ""], use_bin_type=True)
    assert peer.encode(peer.Psync("?", -1, "n", 6380, "10.0.0.1", "")) == [b"N", old]
    header = msgpack.packb(["stream", 5], use_bin_type=True)
    assert peer.encode(peer.Stream(5, b"data")) == [b"N", header, b"data"]
    assert peer.encode(peer.Bye()) == [b"N", msgpack.packb(["bye"], use_bin_type=True)]


def _header(*values: Any) -> bytes:
    return bytes(msgpack.packb(list(values), use_bin_type=True))


MALFORMED: list[tuple[list[bytes], str]] = [
    ([], "not a peer message"),
    ([PEER_FAMILY], "not a peer message"),
    ([b"G", _header("ping", 1)], "not a peer message"),
    ([PEER_FAMILY, b"\xc1 not msgpack"], "header is not valid msgpack"),
    ([PEER_FAMILY, _header("ping", 1) + b"\x01"], "header is not valid msgpack (ExtraData)"),
    ([PEER_FAMILY, msgpack.packb({"verb": "ping"})], "header is not [verb, fields...]"),
    ([PEER_FAMILY, _header()], "header is not [verb, fields...]"),
    ([PEER_FAMILY, _header(7, 1)], "header is not [verb, fields...]"),
    ([PEER_FAMILY, b"\x91\xa2\xff\xfe"], "header is not valid msgpack"),  # a verb that is not UTF-8
    ([PEER_FAMILY, _header("launch", 1)], "unknown verb 'launch'"),
    ([PEER_FAMILY, _header("ping")], "ping: 0 fields, expected 1"),
    ([PEER_FAMILY, _header("ping", 1, 2)], "ping: 2 fields, expected 1"),
    ([PEER_FAMILY, _header("ping", "1")], "ping: sent is str, expected int"),
    ([PEER_FAMILY, _header("ack", True)], "ack: offset is bool, expected int"),
    ([PEER_FAMILY, _header("ack", 1.5)], "ack: offset is float, expected int"),
    ([PEER_FAMILY, _header("hello", b"pw", 1)], "hello: auth is bytes, expected str"),
    ([PEER_FAMILY, _header("hello", "", None)], "hello: version is NoneType, expected int"),
    ([PEER_FAMILY, _header("psync", "?", -1, "n", 1, "127.0.0.1")], "psync: 5 fields, expected 6"),
    ([PEER_FAMILY, _header("stream", 0)], "stream: expected one payload frame"),
    ([PEER_FAMILY, _header("snap", 0), b"a", b"b"], "snap: expected one payload frame"),
    ([PEER_FAMILY, _header("getack"), b"payload"], "getack: unexpected payload frame"),
]


@pytest.mark.parametrize("frames,reason", MALFORMED, ids=[reason for _, reason in MALFORMED])
def test_a_malformed_message_is_a_peer_frame_error(frames: list[bytes], reason: str) -> None:
    with pytest.raises(PeerFrameError) as caught:
        peer.decode(frames)
    assert str(caught.value).startswith(reason)


def test_random_bytes_never_raise_anything_but_peer_frame_error() -> None:
    import random

    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    valid = [peer.encode(frame) for frame in EXAMPLES]
    for _ in range(2000):
        frames = list(rng.choice(valid))
        index = rng.randrange(len(frames))
        data = bytearray(frames[index])
        for _ in range(rng.randint(1, 4)):
            if data and rng.random() < 0.7:
                data[rng.randrange(len(data))] = rng.randrange(256)
            else:
                data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        frames[index] = bytes(data)
        try:
            peer.decode(frames)
        except PeerFrameError:
            pass


def test_the_error_names_the_verb_once_the_header_is_read() -> None:
    """So a master can answer a Hello it cannot read (another version) rather than go silent."""
    with pytest.raises(PeerFrameError) as caught:
        peer.decode([PEER_FAMILY, _header("hello", "", "2")])
    assert caught.value.verb == "hello"
    with pytest.raises(PeerFrameError) as caught:
        peer.decode([PEER_FAMILY, b"\xc1"])
    assert caught.value.verb is None
