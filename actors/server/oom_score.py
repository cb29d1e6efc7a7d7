"""oom-score-adj / oom-score-adj-values: the node tells the kernel's OOM killer whom to kill first, as Redis's
setOOMScoreAdj does through /proc/self/oom_score_adj.

Three process classes get their own value: a master, a replica, a background child (BGSAVE, AOF rewrite,
full-sync snapshot: set in the child right after the fork). ``yes`` (or ``relative``) adds the value to the
score the process had before the node first changed it, clamped to -1000..1000; ``absolute`` writes it as
is; ``no`` puts back the score from before, if the node had changed it. A score the kernel refuses (lowering
it needs CAP_SYS_RESOURCE) fails CONFIG SET with Redis's "Failed to set current oom_score_adj. Check server
logs." and the value is rolled back. Runs on the master actor's loop thread (and in fork children).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from actors.config import ConfigError

if TYPE_CHECKING:
    from actors.server.server import Server

log = structlog.get_logger("redactor.server")

PROC_FILE = "/proc/self/oom_score_adj"
# Process classes, the index into oom-score-adj-values (Redis's CONFIG_OOM_MASTER / REPLICA / BGCHILD).
MASTER, REPLICA, BGCHILD = 0, 1, 2
SET_FAILED = "Failed to set current oom_score_adj. Check server logs."


class OomScore:
    """The node's OOM score: the value from before the node touched it, and whether it has."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.adjusted = False  # the node has written the score (``base`` holds the one it found)
        self.base = 0
        server.config.on_change("oom-score-adj", self._config_changed)
        server.config.on_change("oom-score-adj-values", self._config_changed)
        if server.config["oom-score-adj"] != "no" and not self.apply(None):
            log.warning("oom_score_adj_not_set", detail=SET_FAILED)

    def _config_changed(self, _value: Any) -> None:
        if not self.apply(None):
            raise ConfigError(SET_FAILED)

    def role_changed(self) -> None:
        """A master turned replica or back: its class's value applies now."""
        if self.server.config["oom-score-adj"] != "no":
            self.apply(None)

    def in_child(self) -> None:
        """In a fork child, before its work: the background-child value (no logging there). The persistence
        jobs install it in actors/fork.py's CHILD_START_HOOKS (this package does not import fork)."""
        if self.server.config["oom-score-adj"] != "no":
            self.apply(BGCHILD, quiet=True)

    def apply(self, process_class: int | None, quiet: bool = False) -> bool:
        """Write the score of ``process_class`` (None: this node's role's). False if the kernel refused."""
        config = self.server.config
        mode = config["oom-score-adj"]
        if process_class is None:
            process_class = REPLICA if self.server.is_replica else MASTER
        if mode != "no":
            if not self.adjusted:
                try:
                    with open(PROC_FILE) as f:
                        self.base = int(f.read().strip() or 0)
                except (OSError, ValueError) as exc:
                    if not quiet:
                        log.warning("oom_score_adj_unreadable", reason=str(exc))
                    return False
                self.adjusted = True
            value = int(config["oom-score-adj-values"][process_class])
            if mode == "yes":
                value += self.base
            value = max(-1000, min(1000, value))
        elif self.adjusted:
            self.adjusted = False
            value = self.base
        else:
            return True
        try:
            with open(PROC_FILE, "w") as f:
                f.write(f"{value}\n")
        except OSError as exc:
            if not quiet:
                log.warning("oom_score_adj_unwritable", value=value, reason=exc.strerror or str(exc))
            return False
        return True
