"""The run directory's shared facts: the state file (written atomically), which pids still run, log tails.

Used by the launcher that writes the state file (supervise.py) and by the commands that read it from
another process (status.py, cli.py).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from actors.files import write_bytes_atomically
from launcher.topology.spec import Topology


def pid_alive(pid: int | None) -> bool:
    """True if ``pid`` runs (a zombie, exited but not yet reaped by its parent, counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            status = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # no procfs (not Linux): trust kill(0)
    except (OSError, IndexError):
        return True
    return status not in ("Z", "X")


def pid_matches(pid: int, *markers: str) -> bool:
    """Whether ``pid``'s command line holds every marker: guards against a pid reused by another program."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = fh.read().decode(errors="replace").split("\0")
    except OSError:
        return True  # cannot tell (no procfs): trust the state file
    return all(marker in args for marker in markers)


def write_json_atomically(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON: temp file, fsync, rename, fsync the directory."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_bytes_atomically(os.fspath(path), text.encode("utf-8"))


def read_state(topology: Topology) -> dict[str, Any] | None:
    try:
        with open(topology.state_path, encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def exit_description(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


def tail_text(path: Path, lines: int | None) -> str:
    """The last ``lines`` lines of a file (all of it for None)."""
    try:
        with open(path, "rb") as fh:
            if lines is None:
                data = fh.read()
            else:
                size = fh.seek(0, os.SEEK_END)
                chunk = 64 * 1024
                data = b""
                while size > 0 and data.count(b"\n") <= lines:
                    step = min(chunk, size)
                    size -= step
                    fh.seek(size)
                    data = fh.read(step) + data
                data = b"".join(data.splitlines(keepends=True)[-lines:]) if lines else b""
    except OSError:
        return ""
    return data.decode("utf-8", "replace")
