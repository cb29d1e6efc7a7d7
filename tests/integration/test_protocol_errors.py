"""The RESP wire as Redis 7.0 speaks it, over raw sockets: protocol errors close only the offending connection,
inline commands, pipelining, requests split across reads, and the size limits."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess
from tests.integration.shared import Wire


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    n = NodeProcess(Path(tmp_path_factory.mktemp("wire"))).start()
    yield n
    n.stop()


@pytest.fixture
def r(node: NodeProcess) -> Iterator[redis.Redis]:
    client = node.client(protocol=2)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def wire(node: NodeProcess) -> Iterator[Wire]:
    w = Wire(node.port)
    yield w
    w.close()


# -- protocol errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"*x\r\n", b"invalid multibulk length"),
        (b"*1\r\n$x\r\n", b"invalid bulk length"),
        (b"*1\r\n$-1\r\n", b"invalid bulk length"),
        (b"*2\r\n$-5\r\n", b"invalid bulk length"),
        (b"*2\r\n$3\r\nGET\r\n:1\r\n", b"expected '$', got ':'"),
        (b"*2\r\n$3\r\nGET\r\nX\r\n", b"expected '$', got 'X'"),
        (b"*1\r\n*1\r\n$4\r\nPING\r\n", b"expected '$', got '*'"),
        (b'SET "a b"c\r\n', b"unbalanced quotes in request"),
        (b"SET 'a\r\n", b"unbalanced quotes in request"),
        (b"*3000000000\r\n", b"invalid multibulk length"),
    ],
)
def test_malformed_input_gets_a_protocol_error_and_the_connection_closes(
    node: NodeProcess, r: redis.Redis, data: bytes, error: bytes
) -> None:
    w = Wire(node.port)
    w.send(data)
    assert w.read_until_closed() == b"-ERR Protocol error: " + error + b"\r\n"
    w.close()
    assert r.ping() is True  # other clients carry on


def test_commands_before_the_malformed_part_still_run(node: NodeProcess, r: redis.Redis) -> None:
    w = Wire(node.port)
    w.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$x\r\n")
    assert w.read_until_closed() == b"+OK\r\n-ERR Protocol error: invalid bulk length\r\n"
    w.close()
    assert r.get("k") == b"v"


def test_a_connection_in_the_middle_of_a_command_does_not_hold_up_others(
    node: NodeProcess, r: redis.Redis
) -> None:
    w = Wire(node.port)
    w.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc")
    assert r.set("other", "1") is True
    w.send(b"defghij\r\n")
    w.expect(b"+OK\r\n")
    assert r.get("k") == b"abcdefghij"
    w.close()


def test_a_huge_argument_count_is_refused_at_once_without_stalling_the_node(
    node: NodeProcess, r: redis.Redis
) -> None:
    # Redis 7.0 would wait for 2,000,000 arguments; redactor keeps Redis 6's limit of 1024*1024, because hiredis
    # allocates the whole argument array when it reads the header (see protocol/resp.py).
    w = Wire(node.port)
    w.send(b"*1\r\n$4\r\nPING\r\n*2000000000\r\n")
    started = time.monotonic()
    assert w.read_until_closed() == b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"
    w.close()
    assert r.ping() is True
    assert time.monotonic() - started < 1.0


def test_too_big_inline_request_is_refused(wire: Wire) -> None:
    wire.send(b"A" * (70 * 1024))
    assert wire.read_until_closed() == b"-ERR Protocol error: too big inline request\r\n"


# -- inline commands -------------------------------------------------------------------------------------


def test_inline_commands_with_quotes_and_escapes(wire: Wire) -> None:
    wire.send(b"PING\r\n")
    wire.expect(b"+PONG\r\n")
    wire.send(b'set "a b" c\r\nget "a b"\r\n')
    wire.expect(b"+OK\r\n$1\r\nc\r\n")
    wire.send(b"echo \"\\x41\\n\"\r\necho 'it''s'\r\n")
    wire.expect(b"$2\r\nA\n\r\n-ERR Protocol error: unbalanced quotes in request\r\n")


def test_inline_commands_end_at_a_bare_newline_and_empty_lines_are_skipped(wire: Wire) -> None:
    wire.send(b"\r\n\r\n   \r\nPING\nECHO x\n")
    wire.expect(b"+PONG\r\n$1\r\nx\r\n")


def test_inline_and_multibulk_requests_mix_in_one_write(wire: Wire) -> None:
    wire.send(b"*1\r\n$4\r\nPING\r\nECHO a\r\n*2\r\n$4\r\nECHO\r\n$1\r\nb\r\nECHO c\r\n")
    wire.expect(b"+PONG\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n")


def test_null_and_empty_multibulks_are_skipped(wire: Wire) -> None:
    wire.send(b"*-1\r\n*0\r\n*1\r\n$4\r\nPING\r\n")
    wire.expect(b"+PONG\r\n")


def test_an_empty_command_name_is_an_unknown_command(wire: Wire) -> None:
    wire.send(b"*1\r\n$0\r\n\r\n")
    wire.expect(b"-ERR unknown command '', with args beginning with: \r\n")


# -- pipelining and split reads --------------------------------------------------------------------------


def test_a_thousand_pipelined_commands_in_one_write_get_a_thousand_replies_in_order(
    wire: Wire, r: redis.Redis
) -> None:
    request = b"".join(b"*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n" for _ in range(1000))
    wire.send(request)
    expected = b"".join(b":%d\r\n" % i for i in range(1, 1001))
    wire.expect(expected)
    assert r.get("counter") == b"1000"


def test_a_command_split_at_every_byte_is_parsed_the_same(node: NodeProcess, r: redis.Redis) -> None:
    request = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nhello\r\nPING\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
    w = Wire(node.port)
    w.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(request)):
        w.send(request[i : i + 1])
        if i % 7 == 0:
            r.ping()  # a round trip on another connection lets the node read the byte on its own
    w.expect(b"+OK\r\n+PONG\r\n$5\r\nhello\r\n")
    w.close()


def test_a_command_split_between_its_arguments_is_not_mistaken_for_inline(
    node: NodeProcess, r: redis.Redis
) -> None:
    w = Wire(node.port)
    w.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n")
    r.ping()
    w.send(b"$5\r\nhello\r\n")
    w.expect(b"+OK\r\n")
    assert r.get("k") == b"hello"
    w.close()


# -- limits ----------------------------------------------------------------------------------------------


def test_proto_max_bulk_len_refuses_a_bigger_bulk_as_soon_as_its_header_arrives(
    node: NodeProcess, r: redis.Redis
) -> None:
    try:
        assert r.config_set("proto-max-bulk-len", "1mb") is True
        w = Wire(node.port)
        w.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n")  # the payload never comes
        assert w.read_until_closed() == b"-ERR Protocol error: invalid bulk length\r\n"
        w.close()
        w = Wire(node.port)
        w.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n" + b"x" * 1048576 + b"\r\n")
        w.expect(b"+OK\r\n")  # exactly the limit is fine
        w.close()
        assert r.strlen("k") == 1048576
        error = "CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 9223372036854775807 inclusive"
        with pytest.raises(redis.ResponseError, match=error.replace("(", r"\(").replace(")", r"\)")):
            r.config_set("proto-max-bulk-len", "1000")
    finally:
        r.config_set("proto-max-bulk-len", "512mb")


def test_proto_max_bulk_len_applies_to_connections_already_open(node: NodeProcess, r: redis.Redis) -> None:
    w = Wire(node.port)
    w.send(b"PING\r\n")
    w.expect(b"+PONG\r\n")
    try:
        r.config_set("proto-max-bulk-len", "1mb")
        w.send(b"*2\r\n$4\r\nECHO\r\n$2000000\r\n")
        assert w.read_until_closed() == b"-ERR Protocol error: invalid bulk length\r\n"
    finally:
        r.config_set("proto-max-bulk-len", "512mb")
        w.close()


def test_client_query_buffer_limit_closes_a_client_that_overruns_it(
    node: NodeProcess, r: redis.Redis
) -> None:
    try:
        assert r.config_set("client-query-buffer-limit", "1mb") is True
        w = Wire(node.port)
        try:
            w.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n")
            for _ in range(15):  # 1.5 MB of a 3 MB argument: past the limit
                w.send(b"x" * 100_000)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the node may close while we still send
        # As Redis does, the node closes the connection without a reply.
        assert w.read_until_closed() == b""
        w.close()
    finally:
        r.config_set("client-query-buffer-limit", "1gb")
    assert r.exists("k") == 0
    assert r.ping() is True
