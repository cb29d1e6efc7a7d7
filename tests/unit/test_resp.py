"""RESP2/RESP3 encoding (protocol/resp.py) and request parsing (protocol/resp_parse.py): exact bytes, no sockets."""

from __future__ import annotations

import random

import pytest

from protocol.errors import CommandError, ProtocolError
from protocol.resp import (
    NULL_ARRAY,
    Push,
    Verbatim,
    encode,
    encode_command,
    format_double,
)
from protocol.resp_parse import MAX_INLINE_BYTES, Limits, RequestParser, split_inline

# -- encoding --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "resp2", "resp3"),
    [
        (b"foo", b"$3\r\nfoo\r\n", b"$3\r\nfoo\r\n"),
        (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
        (b"x" * 2000, b"$2000\r\n" + b"x" * 2000 + b"\r\n", b"$2000\r\n" + b"x" * 2000 + b"\r\n"),
        ("OK", b"+OK\r\n", b"+OK\r\n"),
        (0, b":0\r\n", b":0\r\n"),
        (-1, b":-1\r\n", b":-1\r\n"),
        (1024, b":1024\r\n", b":1024\r\n"),
        (-(2**63), b":-9223372036854775808\r\n", b":-9223372036854775808\r\n"),
        (None, b"$-1\r\n", b"_\r\n"),
        (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
        ([], b"*0\r\n", b"*0\r\n"),
        ([b"a", 1, None], b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", b"*3\r\n$1\r\na\r\n:1\r\n_\r\n"),
        ([[b"a"], []], b"*2\r\n*1\r\n$1\r\na\r\n*0\r\n", b"*2\r\n*1\r\n$1\r\na\r\n*0\r\n"),
        ({b"k": 1}, b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n"),
        ({b"m"}, b"*1\r\n$1\r\nm\r\n", b"~1\r\n$1\r\nm\r\n"),
        (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (float("inf"), b"$3\r\ninf\r\n", b",inf\r\n"),
        (float("-inf"), b"$4\r\n-inf\r\n", b",-inf\r\n"),
        (Verbatim(b"text"), b"$4\r\ntext\r\n", b"=8\r\ntxt:text\r\n"),
        (
            Push([b"message", b"ch", b"hi"]),
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
            b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
        ),
        (CommandError("ERR bad"), b"-ERR bad\r\n", b"-ERR bad\r\n"),
        ([CommandError("ERR in\r\nexec")], b"*1\r\n-ERR in  exec\r\n", b"*1\r\n-ERR in  exec\r\n"),
        (True, b":1\r\n", b"#t\r\n"),
        (False, b":0\r\n", b"#f\r\n"),
        (bytearray(b"ab"), b"$2\r\nab\r\n", b"$2\r\nab\r\n"),
    ],
)
def test_encode_gives_redis_bytes_for_each_protocol(value: object, resp2: bytes, resp3: bytes) -> None:
    assert encode(value, resp3=False) == resp2
    assert encode(value, resp3=True) == resp3


def test_encode_refuses_unknown_types() -> None:
    with pytest.raises(TypeError):
        encode(object())


def test_encode_command_is_a_resp_array_of_bulk_strings() -> None:
    assert encode_command([b"SET", b"k", b""]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, b"1.5"),
        (0.1, b"0.10000000000000001"),
        (3.0, b"3"),
        (1e20, b"1e+20"),
        (-0.0, b"-0"),
        (float("inf"), b"inf"),
        (float("-inf"), b"-inf"),
    ],
)
def test_format_double_is_percent_17g(value: float, text: bytes) -> None:
    assert format_double(value) == text


# -- inline splitting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        (b"set a b", [b"set", b"a", b"b"]),
        (b"  set   a\tb  ", [b"set", b"a", b"b"]),
        (b'set "a b" c', [b"set", b"a b", b"c"]),
        (b"set 'a b' c", [b"set", b"a b", b"c"]),
        (b'echo "\\x41\\x4a\\n\\t\\r\\a\\b\\"\\\\"', [b"echo", b'AJ\n\t\r\x07\x08"\\']),
        (b"echo 'it\\'s'", [b"echo", b"it's"]),
        (b"echo 'no\\nescape'", [b"echo", b"no\\nescape"]),
        (b'echo ""', [b"echo", b""]),
        (b'echo "\\xZZ"', [b"echo", b"xZZ"]),
        (b"", []),
        (b"   ", []),
    ],
)
def test_split_inline_follows_sdssplitargs(line: bytes, argv: list[bytes]) -> None:
    assert split_inline(line) == argv


@pytest.mark.parametrize("line", [b'set "a', b"set 'a", b'set "a"b', b"set 'a'b"])
def test_split_inline_refuses_unbalanced_quotes(line: bytes) -> None:
    with pytest.raises(ProtocolError, match="unbalanced quotes in request"):
        split_inline(line)


# -- request parsing -------------------------------------------------------------------------------------


def _feed(parser: RequestParser, chunk: bytes, out: list[list[bytes]], combined: bool) -> None:
    """One read, through the connection's combined call or through feed() then parse()."""
    if combined:
        parser.feed_parse(chunk, out)
    else:
        parser.feed(chunk)
        parser.parse(out)


def parse_chunks(chunks: list[bytes], **kwargs: int) -> list[list[bytes]]:
    """Commands parsed from ``chunks`` (one read each); both ways of feeding a read must agree."""
    results = []
    for combined in (False, True):
        parser = RequestParser(Limits(**kwargs))
        out: list[list[bytes]] = []
        for chunk in chunks:
            _feed(parser, chunk, out, combined)
        results.append(out)
    assert results[0] == results[1]
    return results[0]


def parse_error(chunks: list[bytes], **kwargs: int) -> tuple[list[list[bytes]], str]:
    """The commands parsed before the protocol error, and the error; both ways of feeding must agree."""
    results = []
    for combined in (False, True):
        parser = RequestParser(Limits(**kwargs))
        out: list[list[bytes]] = []
        with pytest.raises(ProtocolError) as info:
            for chunk in chunks:
                _feed(parser, chunk, out, combined)
        results.append((out, str(info.value)))
    assert results[0] == results[1]
    return results[0]


STREAM = (
    b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n"
    b"PING\r\n"
    b'set "a b" c\n'
    b"*-1\r\n*0\r\n"
    b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"
    b"ECHO x\r\n"
)
STREAM_COMMANDS = [
    [b"SET", b"key", b"va\r\nl"],
    [b"PING"],
    [b"set", b"a b", b"c"],
    [b"ECHO", b""],
    [b"ECHO", b"x"],
]


def test_a_stream_of_multibulk_and_inline_requests_parses_in_one_read() -> None:
    assert parse_chunks([STREAM]) == STREAM_COMMANDS


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_a_stream_split_in_two_reads_anywhere_parses_the_same(cut: int) -> None:
    assert parse_chunks([STREAM[:cut], STREAM[cut:]]) == STREAM_COMMANDS


def test_a_stream_fed_one_byte_at_a_time_parses_the_same() -> None:
    assert parse_chunks([STREAM[i : i + 1] for i in range(len(STREAM))]) == STREAM_COMMANDS


def test_pipelined_commands_come_out_in_order() -> None:
    request = b"".join(b"*2\r\n$4\r\nINCR\r\n$%d\r\nk%d\r\n" % (len(b"k%d" % i), i) for i in range(1000))
    commands = parse_chunks([request[:9999], request[9999:]])
    assert commands == [[b"INCR", b"k%d" % i] for i in range(1000)]


@pytest.mark.parametrize(
    ("chunks", "error"),
    [
        ([b"*x\r\n"], "invalid multibulk length"),
        ([b"*1\r\n$x\r\n"], "invalid bulk length"),
        ([b"*1\r\n$-1\r\n"], "invalid bulk length"),
        ([b"*2\r\n$3\r\nGET\r\n:1\r\n"], "expected '$', got ':'"),
        ([b"*2\r\n$3\r\nGET\r\n", b":1\r\n"], "expected '$', got ':'"),
        ([b"*1\r\n*1\r\n$4\r\nPING\r\n"], "expected '$', got '*'"),
        ([b"*1048577\r\n"], "invalid multibulk length"),
        ([b"*2000000000\r\n"], "invalid multibulk length"),
        ([b"*20000", b"00000\r\n"], "invalid multibulk length"),
        ([b'SET "a\r\n'], "unbalanced quotes in request"),
        ([b"A" * (MAX_INLINE_BYTES + 1)], "too big inline request"),
        ([b"*1\r\n$" + b"1" * (MAX_INLINE_BYTES + 10)], "too big bulk count string"),
    ],
)
def test_malformed_requests_raise_redis_protocol_errors(chunks: list[bytes], error: str) -> None:
    _, message = parse_error(chunks)
    assert message == f"ERR Protocol error: {error}"


@pytest.mark.parametrize(
    ("read", "error"),
    [
        # A lone command's count of one digit, a nested huge one after it (refused as Redis does, at the '*').
        (b"*1\r\n*2000000000\r\n", "expected '$', got '*'"),
        (b"*12\r\n*1234567\r\n", "expected '$', got '*'"),
        # A '*' after the first byte, or a count of three digits: the byte screen runs.
        (b"*1\r\n$4\r\nPING\r\n*2000000000\r\n", "invalid multibulk length"),
        (b"*1\r\n$4\r\nECHO\r\n$3\r\nabc\r\n*2000000000\r\n", "invalid multibulk length"),
        (b"*100\r\n" + b"$1\r\na\r\n" * 100 + b"*2000000000\r\n", "invalid multibulk length"),
        (b"*1234567\r\n", "invalid multibulk length"),  # a count of seven digits at the start
    ],
)
def test_a_huge_count_anywhere_in_a_read_is_refused_before_hiredis_sees_it(read: bytes, error: str) -> None:
    # feed_parse skips the byte screen for a read with one '*' and a count of one or two digits: every
    # other read must still reach the header walker (hiredis would allocate the array a huge count asks for).
    _, message = parse_error([read])
    assert message == f"ERR Protocol error: {error}"


@pytest.mark.parametrize(
    ("read", "commands"),
    [
        (b"*0\r\n", []),
        (b"*1\r\n", []),  # incomplete (and under four bytes below): the careful way, then the rest
        (b"*1", []),
        (
            b"*21\r\n$4\r\nMSET\r\n" + b"$2\r\nk1\r\n$1\r\nv\r\n" * 10,
            [[b"MSET"] + [b"k1", b"v"] * 10],
        ),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9\r\n*12345678\r\n", [[b"SET", b"k", b"*12345678"]]),
    ],
)
def test_lone_commands_parse_whichever_way_the_screen_goes(read: bytes, commands: list[list[bytes]]) -> None:
    assert parse_chunks([read]) == commands


def test_commands_ahead_of_a_refused_one_are_still_returned() -> None:
    parser = RequestParser()
    out: list[list[bytes]] = []
    parser.feed(b"*1\r\n$4\r\nPING\r\n*2000000000\r\n")
    with pytest.raises(ProtocolError, match="invalid multibulk length"):
        parser.parse(out)
    assert out == [[b"PING"]]


def test_a_bulk_over_max_bulk_len_is_refused_when_its_header_arrives() -> None:
    _, message = parse_error([b"*2\r\n$4\r\nECHO\r\n$1048577\r\n"], max_bulk_len=1024 * 1024)
    assert message == "ERR Protocol error: invalid bulk length"
    assert parse_chunks([b"*2\r\n$4\r\nECHO\r\n$4\r\n", b"abcd\r\n"], max_bulk_len=4) == [[b"ECHO", b"abcd"]]
    _, message = parse_error([b"*2\r\n$4\r\nECHO\r\n$5\r\nabcde\r\n"], max_bulk_len=4)
    assert message == "ERR Protocol error: invalid bulk length"


def test_the_query_buffer_limit_counts_the_incomplete_request() -> None:
    parser = RequestParser(Limits(max_query_buffer=1000))
    out: list[list[bytes]] = []
    parser.feed(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2000\r\n" + b"x" * 500)
    parser.parse(out)
    assert out == [[b"PING"]]
    assert parser.pending_bytes() == len(b"*2\r\n$4\r\nECHO\r\n$2000\r\n") + 500
    parser.feed(b"x" * 600)
    with pytest.raises(ProtocolError, match="query buffer limit exceeded") as info:
        parser.parse(out)
    assert info.value.silent


def test_pending_bytes_is_zero_between_requests() -> None:
    parser = RequestParser()
    out: list[list[bytes]] = []
    parser.feed(b"*1\r\n$4\r\nPING\r\n")
    parser.parse(out)
    assert parser.pending_bytes() == 0
    parser.feed(b"PIN")
    parser.parse(out)
    assert parser.pending_bytes() == 3


def test_limits_follow_a_live_configuration() -> None:
    config = {"proto-max-bulk-len": 512 * 1024 * 1024, "client-query-buffer-limit": 1024**3}
    parser = RequestParser(config=config)
    out: list[list[bytes]] = []
    parser.feed(b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n")
    parser.parse(out)
    config["proto-max-bulk-len"] = 2
    parser.feed(b"*2\r\n$4\r\nECHO\r\n$3\r\n")
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        parser.parse(out)
    assert out == [[b"ECHO", b"abc"]]


def test_a_read_after_the_limit_was_lowered_is_checked_against_the_new_limit() -> None:
    config = {"proto-max-bulk-len": 512 * 1024 * 1024, "client-query-buffer-limit": 1024**3}
    parser = RequestParser(config=config)
    out: list[list[bytes]] = []
    parser.feed_parse(b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n", out)  # the fast path reads no limits
    config["proto-max-bulk-len"] = 1024 * 1024
    big = b"x" * (1024 * 1024 + 1)
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        parser.feed_parse(b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % len(big) + big + b"\r\n", out)
    assert out == [[b"ECHO", b"abc"]]


def _random_stream(rng: random.Random, count: int) -> tuple[bytes, list[list[bytes]]]:
    """Requests of every shape a client may send, and the commands they stand for."""
    alphabet = [b"a", b"\r\n", b"*1234567", b"$", b"\x00", b"\xff", b" ", b"*", b"+OK", b"9"]
    data, commands = b"", []
    for _ in range(count):
        shape = rng.random()
        if shape < 0.7:
            argv = [
                b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 6)))
                for _ in range(rng.randrange(1, 5))
            ]
            data += encode_command(argv)
            if argv:
                commands.append(argv)
        elif shape < 0.85:
            words = [b"w%d" % rng.randrange(100) for _ in range(rng.randrange(1, 4))]
            data += b" ".join(words) + rng.choice([b"\r\n", b"\n"])
            commands.append(words)
        elif shape < 0.9:
            data += rng.choice([b"*0\r\n", b"*-1\r\n", b"\r\n"])
        else:
            data += b"\"quoted arg\" 'x y'\r\n"
            commands.append([b"quoted arg", b"x y"])
    return data, commands


def test_random_streams_split_at_random_places_parse_like_one_read(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        data, commands = _random_stream(rng, rng.randrange(1, 30))
        cuts = (
            sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randrange(0, 8))))
            if len(data) > 1
            else []
        )
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert parse_chunks(chunks) == commands, (data, cuts)


def test_a_null_bulk_at_the_top_level_is_an_inline_request_as_in_redis() -> None:
    assert parse_chunks([b"*1\r\n$4\r\nPING\r\n$-1\r\n"]) == [[b"PING"], [b"$-1"]]
    assert parse_chunks([b"*1\r\n$4\r\nPING\r\n:1\r\n+x\r\n"]) == [[b"PING"], [b":1"], [b"+x"]]


def test_limits_default_to_redis_values() -> None:
    limits = Limits()
    assert limits.max_bulk_len == 512 * 1024 * 1024
    assert limits.max_multibulk_len == 1024 * 1024
    assert limits.max_inline_bytes == MAX_INLINE_BYTES == 64 * 1024
    assert limits.max_query_buffer == 1024 * 1024 * 1024


def test_the_inline_and_multibulk_limits_come_from_the_limits_object() -> None:
    _, message = parse_error([b"A" * 101], max_inline_bytes=100)
    assert message == "ERR Protocol error: too big inline request"
    assert parse_chunks([b"A" * 99 + b"\r\n"], max_inline_bytes=100) == [[b"A" * 99]]
    _, message = parse_error([b"*1\r\n$" + b"1" * 120], max_inline_bytes=100)
    assert message == "ERR Protocol error: too big bulk count string"
    _, message = parse_error([b"*1000001\r\n"], max_multibulk_len=1_000_000)
    assert message == "ERR Protocol error: invalid multibulk length"
    assert parse_chunks([b"*1000000\r\n"], max_multibulk_len=1_000_000) == []  # accepted: waits for arguments


def test_a_multibulk_limit_the_count_screen_cannot_enforce_is_refused() -> None:
    with pytest.raises(ValueError):
        Limits(max_multibulk_len=1000)


def test_split_inline_without_quotes_matches_the_quoting_parser() -> None:
    # Lines without quotes take a shortcut (bytes.split). Appending a quoted empty argument sends the same line
    # through the character-by-character parser, which must find the same arguments before it.
    seed = random.randrange(2**32)
    print("seed", seed)
    rng = random.Random(seed)
    alphabet = b"ab\\x01 \t\r\n\x0b\x0c\x00\xff" + bytes(range(0x21, 0x7F)).replace(b'"', b"").replace(
        b"'", b""
    )
    for _ in range(2000):
        line = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 24)))
        assert split_inline(line + b' ""') == [*split_inline(line), b""], line


def test_a_read_of_whole_unquoted_inline_lines_parses_as_line_by_line() -> None:
    # A read of whole inline lines without quotes is split in one pass (PING_INLINE's pipelines); it must give
    # what feeding the same bytes one line at a time gives (the line-by-line parser).
    seed = random.randrange(2**32)
    print("seed", seed)
    rng = random.Random(seed)
    words = [b"PING", b"get", b"k*", b"a\\b", b"\x00", b"\xff", b"", b" ", b"\t", b"\r", b"x" * 40]
    for _ in range(500):
        lines = [
            b" ".join(rng.choice(words) for _ in range(rng.randrange(0, 5)))
            for _ in range(rng.randrange(1, 8))
        ]
        data = b"".join(line + rng.choice((b"\r\n", b"\n")) for line in lines)
        whole: list[list[bytes]] = []
        RequestParser().feed_parse(data, whole)
        one_by_one: list[list[bytes]] = []
        parser = RequestParser()
        for line in data.splitlines(keepends=True):
            parser.feed_parse(line, one_by_one)
        assert whole == one_by_one, data
    # A multibulk request after the inline lines, and quotes, still take the careful way.
    out: list[list[bytes]] = []
    RequestParser().feed_parse(b"PING\r\nECHO 'a b'\r\n*1\r\n$4\r\nPING\r\n", out)
    assert out == [[b"PING"], [b"ECHO", b"a b"], [b"PING"]]


def test_arrays_of_bulk_strings_encode_alike_on_both_paths() -> None:
    # Arrays of 8+ bulk strings are laid out in C; shorter ones, mixed ones and items over 1024 bytes take
    # the per-item loop. Both must give the same bytes as the textbook encoding.
    seed = random.randrange(2**32)
    print("seed", seed)
    rng = random.Random(seed)
    for _ in range(300):
        items: list[object] = [
            bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
            for _ in range(rng.randrange(0, 40))
        ]
        if rng.random() < 0.3:  # items of one length: the one-join layout
            size = rng.choice((0, 1, 3, 17, 1024, 1025))
            items = [bytes(rng.randrange(256) for _ in range(size)) for _ in range(rng.randrange(0, 40))]
        if items and rng.random() < 0.2:
            items[rng.randrange(len(items))] = b"x" * rng.choice((1024, 1025, 3000))
        mixed = rng.random() < 0.2
        if items and mixed:
            # odd items of the others' length, as the one-join layout would meet them
            size = len(items[0]) if isinstance(items[0], bytes) else 0
            odd = rng.choice(
                (
                    None,
                    7,
                    "OK",
                    "x" * size,
                    [b"x"] * size,
                    bytearray(size),
                    memoryview(bytes(2 * size)).cast("H"),
                )
            )
            items[rng.randrange(len(items))] = odd
        expected = b"*%d\r\n" % len(items) + b"".join(encode(item) for item in items)
        assert encode(items) == expected
        assert encode(tuple(items)) == expected
    # One length each, but a memoryview of 2-byte items holds twice its len() in bytes: not the one-join layout.
    wide = [b"ab"] * 5 + [memoryview(b"abcd").cast("H")] + [b"ab"] * 4
    assert encode(wide) == b"*10\r\n" + b"$2\r\nab\r\n" * 5 + b"$4\r\nabcd\r\n" + b"$2\r\nab\r\n" * 4


def test_the_one_join_layout_checks_every_item_length() -> None:
    # The one-join layout is taken when the first and last items have one length; the others are checked by
    # the separators' '$' positions in the joined bytes (items without '$') or by their lengths. Items built of
    # the separators' own bytes, of nearly one length, with the total length right, must never fool it.
    seed = random.randrange(2**32)
    print("seed", seed)
    rng = random.Random(seed)
    for _ in range(3000):
        size = rng.choice((0, 1, 2, 3, 4, 9, 10))
        n = rng.randrange(8, 24)
        alphabet = rng.choice((b"x", b"$", b"$3\r\n", b"\r\n$" + str(size).encode(), b"ab$"))
        lengths = [size] * n
        for _ in range(rng.randrange(0, 3)):  # move bytes between two middle items: the total stays right
            i, j = rng.randrange(1, n - 1), rng.randrange(1, n - 1)
            shift = rng.randrange(1, 6)
            if lengths[i] >= shift:
                lengths[i] -= shift
                lengths[j] += shift
        items = [bytes(rng.choice(alphabet) for _ in range(length)) for length in lengths]
        expected = b"*%d\r\n" % n + b"".join(b"$%d\r\n%s\r\n" % (len(item), item) for item in items)
        assert encode(items) == expected, items
    # Items of one length holding '$': the length pass decides, and they are laid out as one join all the same.
    dollars = [b"a$c"] * 10
    assert encode(dollars) == b"*10\r\n" + b"$3\r\na$c\r\n" * 10
