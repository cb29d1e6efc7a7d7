"""What writes propagate (to the AOF, and so to replicas), compared with redis-server 7.0's AOF, command by
command, for the commands Redis rewrites before propagating: GETSET as SET, INCRBYFLOAT as SET KEEPTTL, relative
expiries as absolute ones (options kept), GETEX / GETDEL, SPOP, the blocking and moving list commands, the
*STORE commands, SWAPDB, FLUSHDB, and so on.

Absolute times differ between the two servers by the moment each ran the command, so the number after PXAT /
EXAT / PEXPIREAT / EXPIREAT is blanked; SELECTs are dropped (each server's own choice of when to send one).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import NodeProcess, RedisServer, wait_for
from tests.integration.test_streams import call
from tests.integration.test_streams_propagation import _aof_commands, aof_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

# One command per line; every reply is compared too.
SCRIPT = """
set s foo
getset s bar
set s vaz get
getset missing v
set n 1.5
incrbyfloat n 2
set e v ex 100
set e2 v px 100000 get
set e3 v keepttl
setex e4 100 v
psetex e5 100000 v
getex e ex 50
getex e persist
getex e
getdel e2
getdel nothing
expire e3 100
pexpire e4 100000
expireat e5 99999999999
persist e5
incr counter
incrby counter 5
decrby counter 2
append s tail
setrange s 1 XX
msetnx m1 a m2 b
setnx s other
setnx fresh v
rpush l a b c d
lpop l
rpoplpush l l2
lmove l l2 left right
lpos l c
linsert l before c x
rpush src 1 2 3
blpop src 1
brpoplpush src dst 1
blmove src dst left left 1
blmpop 1 1 dst left count 2
lmpop 1 dst right
sadd set a
spop set
sadd set2 a b c
smove set2 set3 a
hset h f 1 g 2
hincrbyfloat h f 0.5
hdel h g
hsetnx h g 3
zadd z 1 a 2 b 3 c
zincrby z 2 a
zpopmin z
bzpopmax z 1
zmpop 1 z min
bzmpop 1 1 z max
zadd z2 1 a
zrem z2 a
del nothing
unlink s
copy fresh copied
rename copied renamed
renamenx renamed renamed2
pfadd hll a b c
setbit bits 7 1
bitfield bf set u8 0 255 incrby u8 0 1
bitfield_ro bf get u8 0
lset l 0 y
ltrim l 0 1
object encoding l
spop set2 2
srandmember set3
sadd a 1 2 3
sadd b 2 3 4
sinterstore c a b
sunionstore c a b
sdiffstore c a b
zadd za 1 x 2 y
zadd zb 1 y 3 z
zunionstore zc 2 za zb
zinterstore zc 2 za zb weights 2 3
zrangestore zd za 0 -1
zadd za gt ch 5 x
zadd za incr 1 x
sort l alpha store sorted
geoadd g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
geosearchstore gs g fromlonlat 15 37 byradius 200 km
expire renamed2 100 nx
expire renamed2 200 gt
expire renamed2 -1
set past v exat 1
getex fresh pxat 99999999999999
getex fresh exat 9999999999
hincrbyfloat hf x 1.25
incrbyfloat hfl 1e3
lrem l2 0 a
del m1 m2 nothing
move sorted 2
swapdb 0 3
swapdb 0 3
pfcount hll
pfmerge hll2 hll
flushdb
"""
TIMED = {b"PXAT", b"EXAT"}


def _normalised(commands: list[list[bytes]]) -> list[list[bytes]]:
    out = []
    for argv in commands:
        argv = list(argv)
        if argv[0] in (b"PEXPIREAT", b"EXPIREAT") and len(argv) > 2:
            argv[2] = b"<time>"
        for i in range(len(argv) - 1):
            if argv[i].upper() in TIMED:
                argv[i + 1] = b"<time>"
        out.append(argv)
    return out


def test_writes_propagate_as_redis_server_propagates_them(
    node_factory: Callable[..., NodeProcess], redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    _, node, clients = aof_pair(node_factory, redis_servers, tmp_path)
    for line in SCRIPT.strip().splitlines():
        replies = [call(client, *line.split()) for client in clients]
        if line.startswith("spop"):  # (which members a random pop took differs; the SREM then follows it)
            replies = [sorted(reply) for reply in replies]
        assert replies[0] == replies[1], line
    for client in clients:
        wait_for(
            lambda c=client: c.info("persistence")["aof_rewrite_in_progress"] == 0, 10, what="no rewrite"
        )
    expected = _normalised(_aof_commands(tmp_path / "redis"))
    # (the node's AOF is written before each reply leaves: nothing is still on its way)
    assert _normalised(_aof_commands(node.dir)) == expected
