"""Wrappers around ``Server.execute`` for features that act before or after every command only while they
are in use (CLIENT REPLY OFF, client-side caching): zero cost otherwise.

A wrapper is installed as an instance attribute over the method (``server.execute``), which the connections
look up once per batch of commands, so while none is registered the dispatcher runs exactly as before. Several
features compose: the chain is rebuilt, in registration order, whenever one is added or removed.

Runs on the master actor's event-loop thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server

ExecuteFn = Callable[["Client", list[bytes]], Any]
Wrapper = Callable[[ExecuteFn], ExecuteFn]


def set_wrapper(server: Server, name: str, wrapper: Wrapper | None) -> None:
    """Register (or, with None, remove) the execute wrapper ``name`` and rebuild the chain."""
    chain: dict[str, Wrapper] = server.__dict__.setdefault("_execute_wrappers", {})
    if wrapper is None:
        if chain.pop(name, None) is None:
            return
    else:
        if name in chain:
            return
        chain[name] = wrapper
    if not chain:
        server.__dict__.pop("execute", None)
        return
    fn: ExecuteFn = type(server).execute.__get__(server)
    for wrap in chain.values():
        fn = wrap(fn)
    server.__dict__["execute"] = fn
