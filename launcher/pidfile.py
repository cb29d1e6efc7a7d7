"""The ``pidfile`` directive, for nodes and sentinels: the process id written where it says once the process
has read its configuration, removed at a clean shutdown, as Redis does (createPidFile, finishShutdown).

Best effort, as Redis's: a pid file that cannot be written does not stop the start (init scripts that need it
find it missing), and one already there is overwritten. A relative path is in ``dir``: the process has changed
into it by then, as Redis has.
"""

from __future__ import annotations

import os
from collections.abc import Callable


def create(path: str) -> None:
    """Write this process's id and a newline to ``path`` (nothing for an empty path)."""
    if not path:
        return
    try:
        with open(path, "w") as fh:
            fh.write(f"{os.getpid()}\n")
    except OSError:
        pass


def remove(path: str, log: Callable[[], None]) -> None:
    """At a clean shutdown: ``log()`` (Redis's "Removing the pid file.") and remove ``path`` if set."""
    if not path:
        return
    log()
    try:
        os.unlink(path)
    except OSError:
        pass
