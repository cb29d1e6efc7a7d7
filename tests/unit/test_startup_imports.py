"""What an empty node's start-up imports: the parts a plain node does not use stay unloaded until used.

Start-up time is mostly import time (``python -X importtime -m launcher.main server``), and every node the
suite starts pays it. The Lua engine (lupa, greenlet, the sandbox) is made on first use (``Server.scripting``)
the cluster package is imported only with ``cluster-enabled yes`` (launcher/node.py) and MIGRATE's RESP client
when MIGRATE runs; these tests keep it so. The node's code is imported in a fresh interpreter, as ``launcher.main`` does, since this process has
imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.harness import REPO

# Loaded by a node only when it needs them: the Lua engine and its runtime, the cluster package, MIGRATE's client.
DEFERRED = (
    "lupa",
    "actors.scripting.engine",
    "actors.scripting.runtime",
    "actors.cluster.facade",
    "actors.cluster.gossip",
    "protocol.clusterbus",
    "protocol.resp_client",
    # structlog is imported, without the rich it would pull in (launcher/main.py's _hide_rich_from_structlog).
    "rich",
    # Command modules imported on their first call (actors/commands/lazy.py), and what they import.
    "actors.commands.geo",
    "actors.commands.sort",
    "actors.commands.streams",
    "actors.commands.functions",
    "actors.commands.geo_areas",
    "actors.scripting.functions",
    "decimal",
)

_PROBE = """
import json, sys
import launcher.main
launcher.main._hide_rich_from_structlog()  # as `redactor server` does before anything imports structlog
import launcher.node
from launcher.config import load_config
from actors.server.server import Server
server = Server(load_config(None, ["--port", "0"]))
before = sorted(name for name in %r if name in sys.modules)
lua_client_id = server.lua_client.id
engine = server.scripting
print(json.dumps({
    "loaded_at_start": before,
    "engine_loaded_on_use": "actors.scripting.engine" in sys.modules,
    "engine_runs_as_the_start_up_lua_client": engine.client is server.lua_client
    and engine.client.id == lua_client_id,
    "same_engine_twice": server.scripting is engine,
}))
"""


def _probe() -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE % (DEFERRED,)],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_an_empty_node_imports_neither_the_lua_engine_nor_the_cluster_until_it_needs_them() -> None:
    result = _probe()
    assert result["loaded_at_start"] == []
    assert result["engine_loaded_on_use"] is True
    assert result["engine_runs_as_the_start_up_lua_client"] is True
    assert result["same_engine_twice"] is True
