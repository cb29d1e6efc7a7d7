"""ACL users compared with redis-server 7.0: seeded ACL SETUSER sequences (replies, ACL LIST lines, ACL GETUSER
maps), ACL DRYRUN and real commands run as those users (NOPERM texts, ACL LOG entries), ACL CAT.

One thing may differ and is normalised: the order of the single-command rules at the end of a command
description (``+get -hget +config|get``). Redis emits them in its command dict's hash order, which is seeded
at random each run; the set of rules is the same (each names one command that differs from the categories).
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

USERS = ["u1", "u2", "u3", "u4"]
FLAG_RULES = [
    "on", "off", "nopass", "resetpass", ">pw1", ">pw2", "<pw1", "<nothere", "sanitize-payload",
    "skip-sanitize-payload", "#" + "a" * 64, "!" + "a" * 64, "#abc", "reset",
]  # fmt: skip
KEY_RULES = [
    "~k*", "~a?", "%R~r*", "%W~w*", "%RW~x*", "allkeys", "resetkeys", "~*", "%R~*", "%X~y", "%~z", "~k*",
]  # fmt: skip
CHANNEL_RULES = ["&c*", "&news.*", "allchannels", "resetchannels", "&*", "&c1"]
COMMAND_RULES = [
    "+get", "-get", "+set", "+@read", "-@write", "+@hash", "-@dangerous", "+config|get", "-config", "+client",
    "+select|0", "+select|1", "-select", "+@all", "-@all", "allcommands", "nocommands", "+acl|whoami",
    "-acl|log", "+@pubsub", "+@string", "-@fast", "+foo", "+@nope", "+config|get|x", "+get|", "-client|kill",
    "+@keyspace", "-@slow", "+@scripting", "+eval", "+multi", "+exec", "-@hash", "+hget", "+debug|object",
]  # fmt: skip
SELECTOR_RULES = ["clearselectors"]

# Commands run through ACL DRYRUN and for real: their keys and channels meet the patterns above.
PROBES = [
    ["get", "k1"], ["get", "r1"], ["get", "w1"], ["get", "x1"], ["get", "ab"], ["set", "k1", "v"],
    ["set", "r1", "v"], ["set", "w1", "v"], ["set", "x1", "v"], ["hget", "k1", "f"], ["hset", "w1", "f", "v"],
    ["mget", "k1", "r1", "w1"], ["copy", "r1", "w1"], ["lmove", "r1", "w1", "LEFT", "RIGHT"],
    ["config", "get", "maxmemory"], ["client", "id"], ["select", "0"], ["select", "1"], ["ping"],
    ["publish", "c1", "m"], ["publish", "news.x", "m"], ["publish", "zz", "m"], ["acl", "whoami"],
    ["object", "encoding", "k1"], ["exists", "k1", "zz"], ["del", "r1"], ["eval", "return 1", "1", "k1"],
    ["debug", "object", "k1"], ["sort", "k1", "by", "w*"], ["incr", "x2"], ["type", "a1"],
]  # fmt: skip


def canonical(description: bytes | str) -> str:
    """A command description (or a whole ACL LIST line) with each run of single-command rules sorted."""
    text = description.decode() if isinstance(description, bytes) else description
    out = []
    for part in re.split(r"(\([^)]*\))", text):
        if part.startswith("("):
            out.append("(" + _sort_singles(part[1:-1]) + ")")
        else:
            out.append(_sort_singles(part))
    return "".join(out)


def _sort_singles(text: str) -> str:
    tokens = text.split(" ")
    result: list[str] = []
    run: list[str] = []
    for token in tokens:
        if token[:1] in ("+", "-") and not token.startswith(("+@", "-@")):
            run.append(token)
        else:
            result.extend(sorted(run))
            run = []
            result.append(token)
    result.extend(sorted(run))
    return " ".join(result)


def connect(port: int, **kwargs: Any) -> redis.Redis:
    """A RESP2 redis-py client (redis-py's stubs do not know ``protocol``)."""
    return redis.Redis(port=port, socket_timeout=10, protocol=2, **kwargs)


def reply_of(r: redis.Redis, *args: str) -> Any:
    try:
        return r.execute_command(*args)
    except (redis.ResponseError, redis.AuthenticationError) as exc:
        return f"{type(exc).__name__}: {exc}"


def canonical_getuser(reply: Any) -> Any:
    if not isinstance(reply, list):
        return reply
    fields = dict(zip(reply[::2], reply[1::2], strict=True))
    fields[b"commands"] = canonical(fields[b"commands"])
    fields[b"selectors"] = [
        {k: canonical(v) if k == b"commands" else v for k, v in zip(s[::2], s[1::2], strict=True)}
        for s in fields[b"selectors"]
    ]
    return fields


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[redis.Redis, redis.Redis, int, int]]:
    node = NodeProcess(tmp_path_factory.mktemp("acl_compat")).start()
    reference = RedisServer(tmp_path_factory.mktemp("redis_acl_compat"))
    ours = node.client(protocol=2)
    theirs = connect(reference.port)
    yield ours, theirs, node.port, reference.port
    ours.close()
    theirs.close()
    node.stop()
    reference.stop()


def _reset(ours: redis.Redis, theirs: redis.Redis) -> None:
    for r in (ours, theirs):
        for name in r.execute_command("ACL", "USERS"):
            if name != b"default":
                r.execute_command("ACL", "DELUSER", name)
        r.execute_command("ACL", "LOG", "RESET")
        r.flushall()


def _random_rules(rng: random.Random) -> list[str]:
    rules = []
    for _ in range(rng.randint(1, 6)):
        pool = rng.choice(
            [FLAG_RULES, KEY_RULES, CHANNEL_RULES, COMMAND_RULES, COMMAND_RULES, SELECTOR_RULES]
        )
        if rng.random() < 0.15:
            inner = [rng.choice(rng.choice([KEY_RULES, CHANNEL_RULES, COMMAND_RULES])) for _ in range(3)]
            rules.append("(" + " ".join(inner) + ")")
        else:
            rules.append(rng.choice(pool))
    return rules


def test_seeded_setuser_sequences_list_and_getuser_match_redis(
    pair: tuple[redis.Redis, redis.Redis, int, int], seed: int
) -> None:
    ours, theirs, _, _ = pair
    _reset(ours, theirs)
    rng = random.Random(seed)
    for step in range(120):
        user = rng.choice(USERS)
        rules = _random_rules(rng)
        args = ["ACL", "SETUSER", user, *rules]
        assert reply_of(ours, *args) == reply_of(theirs, *args), (step, args)
        mine = [canonical(line) for line in ours.execute_command("ACL", "LIST")]
        reference = [canonical(line) for line in theirs.execute_command("ACL", "LIST")]
        assert mine == reference, (step, args)
        getuser = ["ACL", "GETUSER", user]
        assert canonical_getuser(reply_of(ours, *getuser)) == canonical_getuser(reply_of(theirs, *getuser)), (
            step,
            args,
        )
        for probe in rng.sample(PROBES, 4):
            dryrun = ["ACL", "DRYRUN", user, *probe]
            assert reply_of(ours, *dryrun) == reply_of(theirs, *dryrun), (step, args, probe)


def test_commands_run_as_a_user_get_redis_errors_and_log_entries(
    pair: tuple[redis.Redis, redis.Redis, int, int], seed: int
) -> None:
    ours, theirs, our_port, their_port = pair
    _reset(ours, theirs)
    rules = [
        "on", ">pw", "~k*", "%R~r*", "%W~w*", "&c*", "+@read", "+@string", "-incr", "+publish", "+subscribe",
        "+multi", "+exec", "+eval", "+select|0", "(~x* +@write)",
    ]  # fmt: skip
    for r in (ours, theirs):
        assert r.execute_command("ACL", "SETUSER", "app", *rules) == b"OK"
    as_ours = connect(our_port, username="app", password="pw")
    as_theirs = connect(their_port, username="app", password="pw")
    rng = random.Random(seed)
    for probe in [*PROBES, ["subscribe", "c1", "zz"], ["psubscribe", "c*"]] + rng.sample(PROBES, 5):
        if probe[0] in ("subscribe", "psubscribe"):
            continue  # redis-py turns subscribed connections into pub/sub ones: see the next test
        assert reply_of(as_ours, *probe) == reply_of(as_theirs, *probe), probe
    for script in ("return redis.call('get','k1')", "return redis.call('hset','w1','f','v')",
                   "return redis.call('get','zz')", "return redis.pcall('publish','zz','m')"):  # fmt: skip
        assert reply_of(as_ours, "eval", script, "0") == reply_of(as_theirs, "eval", script, "0"), script
    outcomes = []
    for r in (as_ours, as_theirs):
        pipe = r.pipeline(transaction=True)
        pipe.get("k1")
        pipe.hset("zz", "f", "v")  # refused when queued: EXEC aborts
        with pytest.raises(redis.ResponseError) as info:
            pipe.execute()
        outcomes.append(f"{type(info.value).__name__}: {info.value}")
    assert outcomes[0] == outcomes[1]
    for bad in (("app", "nope"), ("ghost", "pw")):
        for port in (our_port, their_port):
            with pytest.raises(redis.AuthenticationError):
                connect(port, username=bad[0], password=bad[1]).ping()
    log_ours = ours.execute_command("ACL", "LOG")
    log_theirs = theirs.execute_command("ACL", "LOG")

    def shape(log: list[Any]) -> list[dict[bytes, Any]]:
        entries = []
        for entry in log:
            fields = dict(zip(entry[::2], entry[1::2], strict=True))
            assert set(fields) == {
                b"count", b"reason", b"context", b"object", b"username", b"age-seconds", b"client-info"
            }  # fmt: skip
            assert b" user=" in fields[b"client-info"]
            entries.append({k: fields[k] for k in (b"count", b"reason", b"context", b"object", b"username")})
        return entries

    assert shape(log_ours) == shape(log_theirs)
    assert list(log_ours[0][::2]) == list(log_theirs[0][::2])  # the same fields, in the same order
    as_ours.close()
    as_theirs.close()


def test_channel_permissions_for_subscribers_match_redis(
    pair: tuple[redis.Redis, redis.Redis, int, int],
) -> None:
    ours, theirs, our_port, their_port = pair
    _reset(ours, theirs)
    for r in (ours, theirs):
        r.execute_command("ACL", "SETUSER", "sub", "on", ">pw", "&news.*", "&lit*", "+@pubsub")
    replies = []
    for port in (our_port, their_port):
        conn = connect(port, username="sub", password="pw")
        seen = [
            reply_of(conn, "subscribe", "other"),
            reply_of(conn, "psubscribe", "news.*x"),  # a pattern must equal one of the user's patterns
            reply_of(conn, "psubscribe", "lit*"),
            reply_of(conn, "publish", "news.1", "m"),
        ]
        replies.append(seen)
        conn.close()
    assert replies[0] == replies[1]


def test_acl_cat_matches_redis(pair: tuple[redis.Redis, redis.Redis, int, int]) -> None:
    ours, theirs, _, _ = pair
    categories = ours.execute_command("ACL", "CAT")
    assert categories == theirs.execute_command("ACL", "CAT")
    for category in categories:
        assert sorted(ours.execute_command("ACL", "CAT", category)) == sorted(
            theirs.execute_command("ACL", "CAT", category)
        ), category
    assert reply_of(ours, "ACL", "CAT", "nope") == reply_of(theirs, "ACL", "CAT", "nope")


@pytest.mark.parametrize(
    "args",
    [
        ["ACL", "GENPASS", "0"],
        ["ACL", "GENPASS", "4097"],
        ["ACL", "GENPASS", "x"],
        ["ACL", "LOG", "x"],
        ["ACL", "LOG", "-1"],
        ["ACL", "DELUSER", "default"],
        ["ACL", "SETUSER", "a b"],
        ["ACL", "SETUSER", "p", "(+get", "~x"],
        ["ACL", "SETUSER", "p", "(+get", "~x)", "(on)"],
        ["ACL", "GETUSER", "missing"],
        ["ACL", "DRYRUN", "missing", "get", "x"],
        ["ACL", "DRYRUN", "default", "nocmd"],
        ["ACL", "DRYRUN", "default", "get"],
        ["ACL", "LOAD"],
        ["ACL", "SAVE"],
        ["ACL", "FOO"],
        ["ACL", "HELP"],
        ["ACL", "WHOAMI"],
        ["ACL", "WHOAMI", "x"],
        ["AUTH", "x"],
        ["AUTH", "ghost", "x"],
    ],
)
def test_acl_errors_and_fixed_replies_match_redis(
    pair: tuple[redis.Redis, redis.Redis, int, int], args: list[str]
) -> None:
    ours, theirs, _, _ = pair
    assert reply_of(ours, *args) == reply_of(theirs, *args)


def test_acl_pubsub_default_sets_what_new_users_selectors_and_reset_start_with(
    pair: tuple[redis.Redis, redis.Redis, int, int],
) -> None:
    """acl-pubsub-default allchannels: a new user, a new selector and `reset` start with every channel; a user
    made before keeps its channels; back to resetchannels, new users start with none again."""
    ours, theirs, _, _ = pair
    _reset(ours, theirs)
    steps = [
        ["ACL", "SETUSER", "before", "on", "nopass", "+publish"],
        ["CONFIG", "SET", "acl-pubsub-default", "allchannels"],
        ["CONFIG", "GET", "acl-pubsub-default"],
        ["ACL", "SETUSER", "u1", "on", "nopass", "+publish"],
        ["ACL", "SETUSER", "u2", "on", "(+get ~k*)", "(+set &c*)"],
        ["ACL", "SETUSER", "u1", "reset"],
        ["ACL", "SETUSER", "before", "resetchannels", "&x"],
        ["ACL", "DRYRUN", "u2", "publish", "any", "m"],
        ["CONFIG", "SET", "acl-pubsub-default", "resetchannels"],
        ["ACL", "SETUSER", "u3", "on", "nopass", "(+get)"],
        ["ACL", "SETUSER", "u2", "reset"],
        ["CONFIG", "SET", "acl-pubsub-default", "somechannels"],
    ]
    for step in steps:
        assert reply_of(ours, *step) == reply_of(theirs, *step), step
        mine = [canonical(line) for line in ours.execute_command("ACL", "LIST")]
        reference = [canonical(line) for line in theirs.execute_command("ACL", "LIST")]
        assert mine == reference, step
    for r in (ours, theirs):
        r.config_set("acl-pubsub-default", "resetchannels")
