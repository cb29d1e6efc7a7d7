"""Shared fixtures: node processes that are always stopped, and seeds that are always printed."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import NodeProcess, RedisServer, stop_all, stop_nodes


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    """Make (and start) nodes: ``node_factory("a", appendonly="yes")``. All are stopped after the test."""
    made: list[NodeProcess] = []

    def make(name: str = "node", start: bool = True, **directives: Any) -> NodeProcess:
        node = NodeProcess(tmp_path, name, **directives)
        made.append(node)
        if start:
            node.start()
        return node

    yield make
    stop_nodes(made)


@pytest.fixture
def node(node_factory: Callable[..., NodeProcess]) -> NodeProcess:
    return node_factory("node")


@pytest.fixture
def seed() -> int:
    """A seed for randomised tests, printed so a failure can be replayed with REDACTOR_SEED."""
    value = int(os.environ.get("REDACTOR_SEED") or random.randrange(2**32))
    print(f"seed={value} (replay with REDACTOR_SEED={value})")
    return value


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_all()


@pytest.fixture
def redis_servers() -> Iterator[Callable[..., RedisServer]]:
    """Start redis-servers (the reference) with ``redis_servers(directory, *args)``; all stop after the test."""
    started: list[RedisServer] = []

    def start(directory: Path, *args: str) -> RedisServer:
        started.append(RedisServer(directory, *args))
        return started[-1]

    yield start
    for server in started:
        server.stop()
