"""Helpers shared by the persistence tests: a dataset with every type, exact RESP calls, fork-child lookup."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from actors.data.digest import dataset_digest
from actors.data.keyspace import Keyspace
from actors.data.types import ZSet
from actors.persistence.rdb import reader as rdb_reader
from actors.persistence.rdb import writer as rdb_writer
from protocol.resp_client import BlockingRespClient, ReplyError

DAY_MS = 86_400_000


def all_types_keyspace() -> Keyspace:
    """Every value type redactor has, in small and large shapes, with TTLs, in three databases."""
    keyspace = Keyspace(16)
    deadline = int(time.time() * 1000) + DAY_MS
    db0, db5, db15 = keyspace.dbs[0], keyspace.dbs[5], keyspace.dbs[15]
    db0.data.update(
        {
            b"str": b"hello",
            b"int": b"12345",
            b"negative": b"-7",
            b"binary": bytes(range(256)),
            b"compressible": b"abc" * 10_000,
            b"empty": b"",
            b"list": deque([b"a", b"1", b"x" * 10_000, b"", b"-3"]),
            b"biglist": deque(b"item:%d" % i for i in range(2000)),
            b"hash": {b"f1": b"v1", b"n": b"3", b"": b"empty field"},
            b"bighash": {b"field:%d" % i: b"v" * (i % 70) for i in range(600)},
            b"intset": {b"1", b"2", b"300000", b"-40"},
            b"set": {b"a", b"b", b"\x00\xff"},
            b"bigset": {b"member:%d" % i for i in range(600)},
            b"zset": ZSet(
                [(b"a", 1.0), (b"b", -2.5), (b"c", float("inf")), (b"d", float("-inf")), (b"e", 0.1)]
            ),
            b"bigzset": ZSet((b"m:%d" % i, i / 7) for i in range(300)),
        }
    )
    db0.expires.update({b"str": deadline, b"biglist": deadline + 1, b"zset": deadline + 2})
    db5.data.update({b"str": b"db5", b"h": {b"a": b"b"}})
    db5.expires[b"h"] = deadline
    db15.data[b"last"] = deque([b"z"])
    return keyspace


def write_rdb(path: Path, keyspace: Keyspace) -> bytes:
    """Write ``keyspace`` as an RDB file; returns its DEBUG DIGEST."""
    rdb_writer.save_file(str(path), keyspace.dbs, rdb_writer.default_aux(None, None, None))
    return dataset_digest(keyspace)


def rdb_file_digest(path: Path) -> bytes:
    """DEBUG DIGEST of the dataset in an RDB file (expired keys kept, as a snapshot holds them)."""
    data = rdb_reader.load_file(str(path), 16)
    keyspace = Keyspace(16)
    keyspace.replace_all(data.dbs)
    return dataset_digest(keyspace)


class Raw:
    """A RESP connection with exact replies (status as bytes, errors as ``ReplyError`` values, which are
    hiredis.ReplyError too), on protocol/resp_client.py's blocking client."""

    def __init__(self, port: int, timeout_s: float = 15.0) -> None:
        self.timeout_s = timeout_s
        self.client = BlockingRespClient.connect("127.0.0.1", port, timeout_s=timeout_s)

    def send(self, *argv: Any) -> None:
        """Write a command without waiting for its reply (SHUTDOWN: then ``closed_by_peer``)."""
        self.client.send(*argv)

    def call(self, *argv: Any) -> Any:
        (reply,) = self.client.pipeline([argv], raise_on_error=False)
        return reply

    def pipeline(self, *commands: list[Any]) -> list[Any]:
        return self.client.pipeline(commands, raise_on_error=False)

    def closed_by_peer(self) -> bool:
        """True once the server closed the connection (SHUTDOWN sends no reply), within the timeout."""
        return self.client.wait_closed(self.timeout_s)

    def close(self) -> None:
        self.client.close()


def error_text(reply: Any) -> str:
    assert isinstance(reply, ReplyError), f"expected an error reply, got {reply!r}"
    return str(reply)


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (the node's fork children)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def persistence_info(client: Any) -> dict[str, Any]:
    return dict(client.info("persistence"))


@contextmanager
def background_writes(
    node: Any, key_prefix: str, key_count: int, counter_prefix: str, counters: int
) -> Iterator[list[int]]:
    """A thread that keeps writing to ``node`` while the block runs: INCR ``<counter_prefix><n % counters>``
    and SET ``<key_prefix><n % key_count>``. Yields a one-element list holding how many rounds were acknowledged."""
    stop = threading.Event()
    acked = [0]

    def writer() -> None:
        w = node.client()
        n = 0
        while not stop.is_set():
            w.incr(f"{counter_prefix}{n % counters}")
            w.set(f"{key_prefix}{n % key_count}", f"w:{n}")
            n += 1
            acked[0] = n

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        yield acked
    finally:
        stop.set()
        thread.join(10)


RawFactory = Callable[[int], "Raw"]


def raw_connections_fixture() -> Any:
    """A ``raw`` fixture: ``raw(port)`` opens a bare RESP connection (exact replies), closed after the test."""

    @pytest.fixture(name="raw")
    def raw() -> Iterator[RawFactory]:
        made: list[Raw] = []

        def make(port: int) -> Raw:
            made.append(Raw(port))
            return made[-1]

        yield make
        for conn in made:
            conn.close()

    return raw


def dataset_digest_of(client: Any) -> bytes:
    """DEBUG DIGEST of a running node (Redis's algorithm: comparable with redis-server's)."""
    return bytes(client.execute_command("DEBUG", "DIGEST"))
