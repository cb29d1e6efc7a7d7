"""List commands against a real node through redis-py: exact replies and error strings (Redis 7.0).

The blocking forms that wait are in test_blocking.py; here they are only served at once.
"""

from __future__ import annotations

import redis

from tests.harness import NodeProcess
from tests.integration.shared import error_of, module_node_fixture, raw, resp2_client_fixture

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "value is not an integer or out of range"
SYNTAX = "syntax error"


node = module_node_fixture()
r = resp2_client_fixture()


def test_pushes_build_the_list_from_either_end(r: redis.Redis) -> None:
    assert r.rpush("l", "b", "c") == 2
    assert r.lpush("l", "a", "z") == 4
    assert r.lrange("l", 0, -1) == [b"z", b"a", b"b", b"c"]
    assert r.llen("l") == 4
    assert r.llen("missing") == 0
    assert r.type("l") == b"list"


def test_pushx_only_touches_existing_lists(r: redis.Redis) -> None:
    assert r.lpushx("l", "a") == 0
    assert r.rpushx("l", "a") == 0
    assert r.exists("l") == 0
    r.rpush("l", "m")
    assert r.lpushx("l", "a", "b") == 3
    assert r.rpushx("l", "z") == 4
    assert r.lrange("l", 0, -1) == [b"b", b"a", b"m", b"z"]


def test_lrange_and_lindex_normalise_indexes(r: redis.Redis) -> None:
    r.rpush("l", *"abcdefg")
    assert r.lrange("l", -3, -1) == [b"e", b"f", b"g"]
    assert r.lrange("l", -100, 1) == [b"a", b"b"]
    assert r.lrange("l", 5, 100) == [b"f", b"g"]
    assert r.lrange("l", 4, 2) == []
    assert r.lrange("missing", 0, -1) == []
    assert r.lindex("l", 0) == b"a"
    assert r.lindex("l", -1) == b"g"
    assert r.lindex("l", 7) is None
    assert r.lindex("l", -8) is None
    assert r.lindex("missing", 0) is None
    assert error_of(r.lindex, "l", "x") == NOT_INTEGER
    assert error_of(r.lrange, "l", "a", 1) == NOT_INTEGER


def test_lset_and_its_errors(r: redis.Redis) -> None:
    r.rpush("l", "a", "b")
    assert r.lset("l", -1, "B") is True
    assert r.lrange("l", 0, -1) == [b"a", b"B"]
    assert error_of(r.lset, "l", 5, "x") == "index out of range"
    assert error_of(r.lset, "missing", 0, "x") == "no such key"


def test_linsert_before_and_after_a_pivot(r: redis.Redis) -> None:
    r.rpush("l", "a", "c")
    assert r.linsert("l", "BEFORE", "c", "b") == 3
    assert r.linsert("l", "after", "c", "d") == 4
    assert r.linsert("l", "before", "zz", "x") == -1
    assert r.linsert("missing", "before", "a", "x") == 0
    assert r.lrange("l", 0, -1) == [b"a", b"b", b"c", b"d"]
    assert error_of(raw, r, "LINSERT", "l", "middle", "a", "x") == SYNTAX


def test_lrem_by_direction_and_count(r: redis.Redis) -> None:
    r.rpush("l", "x", "a", "x", "b", "x")
    assert r.lrem("l", 1, "x") == 1
    assert r.lrange("l", 0, -1) == [b"a", b"x", b"b", b"x"]
    assert r.lrem("l", -1, "x") == 1
    assert r.lrange("l", 0, -1) == [b"a", b"x", b"b"]
    assert r.lrem("l", 0, "x") == 1
    assert r.lrem("l", 0, "nope") == 0
    assert r.lrem("l", 0, "a") == 1
    assert r.lrem("l", 0, "b") == 1
    assert r.exists("l") == 0
    assert error_of(raw, r, "LREM", "l", "x", "a") == NOT_INTEGER


def test_ltrim_keeps_a_range_and_deletes_an_emptied_list(r: redis.Redis) -> None:
    r.rpush("l", *"abcde")
    assert r.ltrim("l", 1, -2) is True
    assert r.lrange("l", 0, -1) == [b"b", b"c", b"d"]
    assert r.ltrim("l", -1, 100) is True
    assert r.lrange("l", 0, -1) == [b"d"]
    assert r.ltrim("l", 2, 1) is True
    assert r.exists("l") == 0
    assert r.ltrim("missing", 0, 1) is True


def test_pops_with_and_without_count(r: redis.Redis) -> None:
    r.rpush("l", *"abcde")
    assert r.lpop("l") == b"a"
    assert r.rpop("l") == b"e"
    assert raw(r, "LPOP", "l", "2") == [b"b", b"c"]
    assert raw(r, "LPOP", "l", "0") == []
    assert raw(r, "RPOP", "l", "5") == [b"d"]
    assert r.exists("l") == 0
    assert r.lpop("l") is None
    assert raw(r, "LPOP", "missing", "2") is None
    assert error_of(raw, r, "LPOP", "l", "-1") == "value is out of range, must be positive"
    assert error_of(raw, r, "RPOP", "l", "abc") == "value is out of range, must be positive"
    assert error_of(raw, r, "LPOP", "l", "1", "2") == "wrong number of arguments for 'lpop' command"


def test_count_pop_of_a_missing_key_is_a_null_array_on_the_wire(node: NodeProcess) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
        s.sendall(b"*3\r\n$4\r\nLPOP\r\n$7\r\nmissing\r\n$1\r\n2\r\n*2\r\n$4\r\nLPOP\r\n$7\r\nmissing\r\n")
        data = b""
        while data.count(b"\r\n") < 2:
            data += s.recv(100)
    assert data == b"*-1\r\n$-1\r\n"


def test_lpos_options(r: redis.Redis) -> None:
    r.rpush("l", "a", "b", "c", "a", "b", "a")
    assert r.lpos("l", "a") == 0
    assert r.lpos("l", "a", rank=2) == 3
    assert r.lpos("l", "a", rank=-1) == 5
    assert r.lpos("l", "a", count=0) == [0, 3, 5]
    assert r.lpos("l", "a", rank=-1, count=2) == [5, 3]
    assert r.lpos("l", "a", count=0, maxlen=4) == [0, 3]
    assert r.lpos("l", "a", rank=4) is None
    assert r.lpos("l", "zz") is None
    assert r.lpos("missing", "a") is None
    assert r.lpos("missing", "a", count=1) == []
    assert error_of(raw, r, "LPOS", "l", "a", "RANK", "0") == (
        "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start "
        "from the end of the list"
    )
    assert error_of(raw, r, "LPOS", "l", "a", "COUNT", "-1") == "COUNT can't be negative"
    assert error_of(raw, r, "LPOS", "l", "a", "MAXLEN", "-1") == "MAXLEN can't be negative"
    assert error_of(raw, r, "LPOS", "l", "a", "RANK") == SYNTAX
    assert error_of(raw, r, "LPOS", "l", "a", "FOO", "1") == SYNTAX


def test_lmove_and_rpoplpush_between_and_within_lists(r: redis.Redis) -> None:
    r.rpush("src", "a", "b", "c")
    assert r.lmove("src", "dst", "LEFT", "RIGHT") == b"a"
    assert r.lmove("src", "dst", "RIGHT", "LEFT") == b"c"
    assert r.lrange("dst", 0, -1) == [b"c", b"a"]
    assert r.rpoplpush("src", "dst") == b"b"
    assert r.exists("src") == 0
    assert r.lrange("dst", 0, -1) == [b"b", b"c", b"a"]
    assert r.lmove("dst", "dst", "LEFT", "RIGHT") == b"b"  # rotation
    assert r.lrange("dst", 0, -1) == [b"c", b"a", b"b"]
    assert r.rpoplpush("missing", "dst") is None
    assert r.lmove("missing", "dst", "LEFT", "LEFT") is None
    assert error_of(raw, r, "LMOVE", "dst", "x", "UP", "LEFT") == SYNTAX


def test_single_element_rotation_keeps_the_list(r: redis.Redis) -> None:
    r.rpush("one", "x")
    assert r.lmove("one", "one", "LEFT", "RIGHT") == b"x"
    assert r.lrange("one", 0, -1) == [b"x"]


def test_lmpop_picks_the_first_non_empty_list(r: redis.Redis) -> None:
    r.rpush("b", "1", "2", "3")
    assert raw(r, "LMPOP", "2", "a", "b", "RIGHT", "COUNT", "2") == [b"b", [b"3", b"2"]]
    assert raw(r, "LMPOP", "2", "a", "b", "LEFT") == [b"b", [b"1"]]
    assert r.exists("b") == 0
    assert raw(r, "LMPOP", "2", "a", "b", "LEFT") is None
    assert error_of(raw, r, "LMPOP", "0", "a", "LEFT") == "numkeys should be greater than 0"
    assert error_of(raw, r, "LMPOP", "abc", "a", "LEFT") == "numkeys should be greater than 0"
    assert error_of(raw, r, "LMPOP", "5", "a", "LEFT") == SYNTAX
    assert error_of(raw, r, "LMPOP", "1", "a", "UP") == SYNTAX
    assert error_of(raw, r, "LMPOP", "1", "a", "LEFT", "COUNT", "0") == "count should be greater than 0"
    assert error_of(raw, r, "LMPOP", "1", "a", "LEFT", "COUNT", "1", "COUNT", "2") == SYNTAX


def test_blocking_forms_are_served_at_once_when_data_is_there(r: redis.Redis) -> None:
    r.rpush("l", "a", "b", "c")
    assert r.blpop(["missing", "l"], 1) == (b"l", b"a")
    assert r.brpop(["l"], 1) == (b"l", b"c")
    assert r.blmove("l", "d", 1, "LEFT", "LEFT") == b"b"
    assert r.exists("l") == 0
    assert r.brpoplpush("d", "e", 1) == b"b"
    r.rpush("m", "1", "2")
    assert raw(r, "BLMPOP", "1", "1", "m", "LEFT", "COUNT", "5") == [b"m", [b"1", b"2"]]


def test_blocking_argument_errors(r: redis.Redis) -> None:
    assert error_of(raw, r, "BLPOP", "l", "-1") == "timeout is negative"
    assert error_of(raw, r, "BLPOP", "l", "abc") == "timeout is not a float or out of range"
    assert error_of(raw, r, "BLMOVE", "l", "d", "LEFT", "LEFT", "-1") == "timeout is negative"
    assert error_of(raw, r, "BLMPOP", "0", "0", "l", "LEFT") == "numkeys should be greater than 0"
    assert error_of(raw, r, "BLPOP", "l") == "wrong number of arguments for 'blpop' command"


def test_wrong_type_is_refused_everywhere(r: redis.Redis) -> None:
    r.set("s", "x")
    r.rpush("l", "a")
    for args in (
        ("LPUSH", "s", "a"),
        ("RPUSHX", "s", "a"),
        ("LRANGE", "s", "0", "-1"),
        ("LLEN", "s"),
        ("LPOP", "s"),
        ("LINDEX", "s", "0"),
        ("LSET", "s", "0", "a"),
        ("LREM", "s", "0", "a"),
        ("LTRIM", "s", "0", "1"),
        ("LPOS", "s", "a"),
        ("LINSERT", "s", "BEFORE", "a", "b"),
        ("LMOVE", "s", "l", "LEFT", "LEFT"),
        ("LMOVE", "l", "s", "LEFT", "LEFT"),
        ("LMPOP", "1", "s", "LEFT"),
        ("BLPOP", "missing", "s", "0"),
        ("BRPOPLPUSH", "s", "l", "0"),
    ):
        assert error_of(raw, r, *args) == WRONGTYPE, args
    assert r.lrange("l", 0, -1) == [b"a"]  # LMOVE into a string moved nothing


def test_generic_key_commands_work_on_lists(node: NodeProcess, r: redis.Redis) -> None:
    r.rpush("l", *[str(i) for i in range(300)])
    assert r.object("encoding", "l") == b"quicklist"
    assert r.rename("l", "l2") is True
    assert r.copy("l2", "l3") is True
    r.lpop("l3")
    assert r.llen("l2") == 300 and r.llen("l3") == 299
    assert r.move("l3", 1) is True
    db1 = node.client(protocol=2, db=1)
    assert db1.llen("l3") == 299
    db1.close()
    assert r.scan(0, _type="list", count=1000) == (0, [b"l2"])
    assert r.pexpire("l2", 50) is True
    assert r.memory_usage("l2") > 300
    assert r.unlink("l2") == 1


def test_resp3_replies_have_the_same_shape(node: NodeProcess) -> None:
    r3 = node.client(protocol=3)
    r3.flushall()
    r3.rpush("l", "a", "b")
    assert r3.execute_command("LPOP", "l", "5") == [b"a", b"b"]
    assert r3.execute_command("LPOP", "l", "5") is None
    assert r3.execute_command("BLPOP", "l", "0.01") is None
    r3.close()
