"""Command modules imported on first call (actors/commands/lazy.py): the catalog matches the modules, those
modules do nothing at import beyond ``@command``, and a catalogued command runs, with the same table entry,
before and after its module is imported. Probes run in fresh interpreters: this process imported everything."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from actors.commands.lazy import LAZY_MODULES
from tests.harness import REPO


def test_the_catalog_matches_the_modules_registrations() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "ops" / "gen-command-catalog"), "--check"],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_lazy_modules_do_nothing_at_import_but_register_commands() -> None:
    # Anything else (a DEBUG handler, a hook) would be missing until the module's first command ran.
    allowed = (ast.Import, ast.ImportFrom, ast.ClassDef, ast.Assign, ast.AnnAssign)
    found = []
    for module in LAZY_MODULES:
        tree = ast.parse((REPO / "actors" / "commands" / f"{module}.py").read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found += [
                    f"{module}: {ast.unparse(d)}"
                    for d in node.decorator_list
                    if not (isinstance(d, ast.Call) and getattr(d.func, "id", "") == "command")
                ]
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                # A subscript or attribute target writes into something else's state (DEBUG_HANDLERS[...] = ...).
                found += [
                    f"{module}: {ast.unparse(t)} ="
                    for target in targets
                    for t in (target.elts if isinstance(target, ast.Tuple) else [target])
                    if not isinstance(t, ast.Name)
                ]
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # the docstring
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            elif not isinstance(node, allowed):
                found.append(f"{module}: {ast.unparse(node)[:60]}")
    assert found == []


_PROBE = """
import json, sys
from launcher.config import load_config
from actors.server.server import Server
from actors.server.client import Client
from actors.commands.lazy import LAZY_MODULES, LazyCommandFn

server = Server(load_config(None, ["--port", "0"]))
client = Client(server)
run = lambda *args: server.execute(client, [a.encode() for a in args])
before = {"imported": sorted(m for m in LAZY_MODULES if "actors.commands." + m in sys.modules),
          "stub": isinstance(server.commands[b"geoadd"].fn, LazyCommandFn),
          "info": repr(run("COMMAND", "INFO", "geoadd", "geodist", "sort", "pfadd"))}
replies = [run("GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
           run("GEODIST", "g", "Palermo", "Catania", "km"), run("RPUSH", "l", "3", "1", "2"), run("SORT", "l"),
           run("PFADD", "h", "a", "b"), run("PFCOUNT", "h")]
after = {"imported": sorted(m for m in ("geo", "sort", "hyperloglog") if "actors.commands." + m in sys.modules),
         "stub": isinstance(server.commands[b"geoadd"].fn, LazyCommandFn),
         "info": repr(run("COMMAND", "INFO", "geoadd", "geodist", "sort", "pfadd"))}
print(json.dumps({"before": before, "after": after, "replies": repr(replies)}))
"""


def test_a_catalogued_command_runs_and_its_module_is_imported_on_first_call() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=str(REPO), capture_output=True, text=True, timeout=60, check=True
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["before"]["imported"] == []
    assert result["before"]["stub"] is True
    assert result["after"] == {**result["before"], "imported": ["geo", "hyperloglog", "sort"], "stub": False}
    assert result["replies"] == repr([2, b"166.2742", 3, [b"1", b"2", b"3"], 1, 2])
