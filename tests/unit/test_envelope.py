"""The native protocol's msgpack envelope (protocol/envelope.py): requests, replies, pushes, bad frames."""

from __future__ import annotations

import msgpack
import pytest

from protocol import envelope
from protocol.envelope import KIND_ERROR, KIND_OK, KIND_PUSH, VERSION, ReplyError
from protocol.errors import CommandError, ProtocolVersionError
from protocol.resp import NULL_ARRAY, Push, Verbatim


def test_a_request_round_trips() -> None:
    frame = envelope.encode_request(7, [b"SET", b"k", b"\x00\xff"])
    assert msgpack.unpackb(frame) == [VERSION, 7, [b"SET", b"k", b"\x00\xff"]]
    assert envelope.decode_request(frame) == (7, [b"SET", b"k", b"\x00\xff"])


def test_string_and_number_arguments_become_bytes() -> None:
    frame = msgpack.packb([VERSION, 1, ["SET", "clé", 12, 1.5]], use_bin_type=True)
    assert envelope.decode_request(frame) == (1, [b"SET", "clé".encode(), b"12", b"1.5"])


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\xc1garbage", "ERR Protocol error: frame is not valid msgpack (FormatError)"),
        (b"\x92\x01", "ERR Protocol error: frame is not valid msgpack (ValueError)"),
        (msgpack.packb({"a": 1}), "ERR Protocol error: expected [version, request_id, argv]"),
        (msgpack.packb([VERSION, 1]), "ERR Protocol error: expected [version, request_id, argv]"),
        (msgpack.packb([VERSION, "x", [b"PING"]]), "ERR Protocol error: request id must be an integer"),
        (msgpack.packb([VERSION, True, [b"PING"]]), "ERR Protocol error: request id must be an integer"),
        (msgpack.packb([VERSION, 1, []]), "ERR Protocol error: argv must be a non-empty array"),
        (msgpack.packb([VERSION, 1, b"PING"]), "ERR Protocol error: argv must be a non-empty array"),
        (
            msgpack.packb([VERSION, 1, [b"GET", None]]),
            "ERR Protocol error: arguments must be strings or numbers",
        ),
        (
            msgpack.packb([VERSION, 1, [b"GET", [b"x"]]]),
            "ERR Protocol error: arguments must be strings or numbers",
        ),
        (
            msgpack.packb([VERSION, 1, [b"GET", True]]),
            "ERR Protocol error: arguments must be strings or numbers",
        ),
    ],
)
def test_bad_frames_are_command_errors(frame: bytes, message: str) -> None:
    with pytest.raises(CommandError) as info:
        envelope.decode_request(frame)
    assert str(info.value) == message


def test_another_version_is_refused_with_its_number() -> None:
    with pytest.raises(ProtocolVersionError) as info:
        envelope.decode_request(msgpack.packb([99, 5, [b"PING"]]))
    assert str(info.value) == "ERR Protocol error: unsupported envelope version 99 (this node speaks 1)"


def test_peek_request_id_finds_the_id_of_a_frame_that_failed_later_checks() -> None:
    assert envelope.peek_request_id(msgpack.packb([99, 5, [b"PING"]])) == 5
    assert envelope.peek_request_id(msgpack.packb([VERSION, 8, []])) == 8
    assert envelope.peek_request_id(b"\xc1garbage") == 0
    assert envelope.peek_request_id(msgpack.packb("text")) == 0


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (b"bulk", b"bulk"),
        ("OK", "OK"),
        (3, 3),
        (1.5, 1.5),
        (None, None),
        (NULL_ARRAY, None),
        (True, 1),
        (Verbatim(b"info text"), b"info text"),
        ([b"a", [1, None]], [b"a", [1, None]]),
        ((b"t",), [b"t"]),
        ({b"k": b"v"}, {b"k": b"v"}),
        (Push([b"message", b"ch", b"m"]), [b"message", b"ch", b"m"]),
        (bytearray(b"ba"), b"ba"),
    ],
)
def test_to_wire_keeps_the_distinctions_a_shell_prints(value: object, wire: object) -> None:
    assert envelope.to_wire(value) == wire


def test_sets_become_arrays_and_nested_errors_become_ext_types() -> None:
    assert sorted(envelope.to_wire({b"a", b"b"})) == [b"a", b"b"]
    nested = envelope.to_wire([b"ok", CommandError("ERR inner")])
    assert nested == [b"ok", msgpack.ExtType(envelope.EXT_ERROR, b"ERR inner")]
    with pytest.raises(TypeError):
        envelope.to_wire(object())


def test_replies_errors_and_pushes_decode_on_the_client_side() -> None:
    assert envelope.decode_reply(envelope.encode_reply(3, [b"x", "OK", 1])) == (3, KIND_OK, [b"x", "OK", 1])
    assert envelope.decode_reply(envelope.encode_reply(4, CommandError("ERR no"))) == (
        4,
        KIND_ERROR,
        "ERR no",
    )
    assert envelope.decode_reply(envelope.encode_error(0, "ERR bad frame")) == (
        0,
        KIND_ERROR,
        "ERR bad frame",
    )
    assert envelope.decode_reply(envelope.encode_push([b"message", b"c", b"m"])) == (
        0,
        KIND_PUSH,
        [b"message", b"c", b"m"],
    )
    request_id, kind, value = envelope.decode_reply(envelope.encode_reply(5, [CommandError("ERR inner"), 1]))
    assert (request_id, kind) == (5, KIND_OK)
    assert isinstance(value[0], ReplyError) and str(value[0]) == "ERR inner" and value[1] == 1


def test_decode_reply_refuses_other_shapes_and_versions() -> None:
    with pytest.raises(ValueError):
        envelope.decode_reply(msgpack.packb([VERSION, 1, KIND_OK]))
    with pytest.raises(ValueError):
        envelope.decode_reply(msgpack.packb([2, 1, KIND_OK, None]))
