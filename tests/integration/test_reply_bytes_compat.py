"""Replies that carry a client's or a script's own bytes, compared byte for byte with redis-server's: error
replies that quote an argument (unknown command and subcommand, bad options), errors and statuses a script
returns, INFO errorstats keyed by such errors, and cjson.decode's strings. Redis copies the bytes as they
came, UTF-8 or not; the node used to answer U+FFFD for them, or fail the command (a script's
``redis.error_reply('\\xff...')`` closed the connection, and INFO errorstats then failed for good)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.harness import NodeProcess

pytestmark = pytest.mark.compat


def _command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _exchange(port: int, payload: bytes, replies: int = 1) -> bytes:
    """Send ``payload`` and read until ``replies`` top-level replies of simple kinds (+ - : $) arrived."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        data = b""
        while _count(data) < replies:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {data!r}"
            data += chunk
        return data


def _count(data: bytes) -> int:
    count = pos = 0
    while pos < len(data):
        end = data.find(b"\r\n", pos)
        if end < 0:
            return count
        if data[pos : pos + 1] == b"$" and data[pos + 1 : end] != b"-1":
            end = data.find(b"\r\n", end + 2 + int(data[pos + 1 : end]))
            if end < 0:
                return count
        count += 1
        pos = end + 2
    return count


ARGUMENT_ECHOES = [
    _command(b"\xff\xfe", b"a\xff"),
    _command(b"CONFIG", b"SET", b"\xff", b"1"),
    _command(b"OBJECT", b"\xff"),
    _command(b"CLIENT", b"\xff"),
    _command(b"SCRIPT", b"\xff"),
    _command(b"MEMORY", b"\xff"),
    _command(b"PUBSUB", b"\xff"),
    _command(b"DEBUG", b"\xff"),
    _command(b"CLUSTER", b"\xff"),
    _command(b"CLUSTER", b"INFO", b"extra"),
    _command(b"CLUSTER", b"KEYSLOT"),
    _command(b"CLUSTER", b"HELP"),
    _command(b"HELLO", b"3", b"\xff"),
    _command(b"ACL", b"SETUSER", b"u", b"on", b"+\xff"),
    _command(b"ACL", b"CAT", b"\xff"),
    _command(b"FUNCTION", b"LOAD", b"#!\xff name=x\n"),
    _command(b"FUNCTION", b"LOAD", b"#!lua name=\xff\nredis.register_function('f', function() return 1 end)"),
    _command(b"XINFO", b"\xff"),
    _command(b"EVAL", b"\xff\xfe syntax", b"0"),
]
SCRIPT_REPLIES = [
    b"return redis.error_reply('\xff\xfeBAD oops')",
    b"return {err='\xff x'}",
    b"return {ok='\xff x'}",
    b"return redis.status_reply('\xff x')",
    b"return redis.pcall('\xff\xfe', 'a')",
]
CJSON = [
    b"return cjson.decode('\"\xc3\xa9\"')",
    b"return cjson.decode('\"\\\\u00e9\"')",
    b"return cjson.decode('{\"\xc3\xa9\": 1}')['\xc3\xa9']",
    b"return cjson.encode(cjson.decode('\"\\\\u00e9\"'))",
    b"return cjson.decode('\"\xff\xfe\"')",
    b"return cjson.decode('\"\\\\ud83d\\\\ude00\"')",
    b"return cjson.decode('\"\\\\ud800\"')",
    b"return cjson.decode('\"a\\\\udc00x\"')",
    b"return cjson.decode('[1, \"\\\\ud83dx\"]')",
    b"return cjson.decode('\"\\\\\\\\ud800\"')",
]


def test_errors_quote_arguments_byte_for_byte(node: NodeProcess, redis_servers: Any, tmp_path: Path) -> None:
    reference = redis_servers(tmp_path)
    for payload in ARGUMENT_ECHOES:
        assert _exchange(node.port, payload) == _exchange(reference.port, payload), payload


def test_script_errors_and_statuses_keep_their_bytes_and_errorstats_count_them(
    node: NodeProcess, redis_servers: Any, tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path)
    for port in (node.port, reference.port):
        assert _exchange(port, _command(b"CONFIG", b"RESETSTAT")) == b"+OK\r\n"
    for body in SCRIPT_REPLIES:
        payload = _command(b"EVAL", body, b"0")
        assert _exchange(node.port, payload) == _exchange(reference.port, payload), body
    errorstats = _command(b"INFO", b"errorstats")
    want = _exchange(reference.port, errorstats)
    assert b"errorstat_\xff\xfeBAD:count=1" in want
    assert _exchange(node.port, errorstats) == want
    assert node.client().ping()


def test_cjson_decode_keeps_utf8_and_refuses_lone_surrogates_as_lua_cjson(
    node: NodeProcess, redis_servers: Any, tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path)
    for body in CJSON:
        payload = _command(b"EVAL", body, b"0")
        assert _exchange(node.port, payload) == _exchange(reference.port, payload), body


def test_a_binary_requirepass_set_at_runtime_is_the_password_auth_takes(
    node: NodeProcess, redis_servers: Any, tmp_path: Path
) -> None:
    """CONFIG SET requirepass keeps the password's bytes (the node hashed U+FFFD in their place, so the
    password just set was refused) and CONFIG GET gives them back."""
    reference = redis_servers(tmp_path)
    password = b"p\xff\xfe"
    session = (
        _command(b"AUTH", b"wrong")
        + _command(b"AUTH", password)
        + _command(b"CONFIG", b"GET", b"requirepass")
        + _command(b"CONFIG", b"SET", b"requirepass", b"")
    )
    for port in (node.port, reference.port):
        assert _exchange(port, _command(b"CONFIG", b"SET", b"requirepass", password)) == b"+OK\r\n"
    # (CONFIG GET's reply is an array: counted as its header and two bulks)
    assert _exchange(node.port, session, replies=6) == _exchange(reference.port, session, replies=6)
    assert node.client().ping()
