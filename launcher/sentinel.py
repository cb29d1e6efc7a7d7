"""One sentinel process: ``redactor sentinel sentinel.conf [--directive value ...]`` or ``redactor server
sentinel.conf --sentinel``. Refuses to start without a writable config file (Redis's messages), writes its
id into the file, logs events Redis-style (``<pid>:X <date> # +event ...``), exits 0 on SHUTDOWN or SIGTERM.
"""

from __future__ import annotations

import os
import secrets
import sys
import syslog
import threading
import time
from typing import TextIO

from actors.sentinel.config import SentinelConfig, SentinelConfigError, flush, load, writable
from actors.sentinel.system import SentinelSystem
from launcher import pidfile, supervised
from launcher.config import ConfigError, group_overrides
from launcher.logs import open_syslog


def _overrides(args: list[str]) -> list[list[str]]:
    try:
        lines = group_overrides(args)
    except ConfigError as exc:
        raise SentinelConfigError(str(exc)) from None
    # "--sentinel monitor m 127.0.0.1 7001 2" and "--sentinel" alone (the mode switch) both arrive here.
    return [line if line[0] != "sentinel" or len(line) > 1 else [] for line in lines if line]


# Redis's level marks in a log line, lowest first (debug, verbose, notice, warning), and ``loglevel``'s names.
LEVEL_MARKS = ".-*#"
LOGLEVELS = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3}
# A mark's syslog priority, as Redis maps its levels.
SYSLOG_PRIORITIES = {
    ".": syslog.LOG_DEBUG,
    "-": syslog.LOG_INFO,
    "*": syslog.LOG_NOTICE,
    "#": syslog.LOG_WARNING,
}


class RedisStyleLog:
    """Redis's log line: ``<pid>:X dd Mon yyyy hh:mm:ss.mmm <level> <text>``; lines under ``loglevel`` are
    dropped, and with ``syslog-enabled yes`` each line also goes to the system log (ident and facility as
    configured, the pid in each, Redis's priority for its level)."""

    def __init__(self, logfile: str, loglevel: str, syslog_to: tuple[str, str] | None = None) -> None:
        self.stream: TextIO = open(logfile, "a", buffering=1, encoding="utf-8") if logfile else sys.stdout
        self.threshold = LOGLEVELS.get(loglevel, LOGLEVELS["notice"])
        self.syslog = syslog_to is not None
        if syslog_to is not None:
            open_syslog(*syslog_to)
        self._lock = threading.Lock()  # the monitor's and listener's threads and the supervisor's all log

    def __call__(self, level: str, text: str) -> None:
        if LEVEL_MARKS.find(level) < self.threshold:
            return
        now = time.time()
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        with self._lock:
            self.stream.write(f"{os.getpid()}:X {stamp} {level} {text}\n")
            self.stream.flush()
        if self.syslog:
            syslog.syslog(SYSLOG_PRIORITIES.get(level, syslog.LOG_NOTICE), text)


def main(args: list[str]) -> int:
    config_file = ""
    if args and not args[0].startswith("--"):
        config_file, args = args[0], args[1:]
    if not config_file:
        print("Sentinel needs config file on disk to save state. Exiting...", file=sys.stderr)
        return 1
    config_file = os.path.abspath(config_file)
    reason = writable(config_file)
    if reason is not None:
        print(f"Sentinel config file {config_file} is not writable: {reason}. Exiting...", file=sys.stderr)
        return 1
    overrides = [o for o in _overrides(args) if o]
    try:
        config = load(config_file, overrides)
    except SentinelConfigError as exc:
        print(f"\n*** FATAL CONFIG FILE ERROR (Redis 7.0 compatible) ***\n{exc}", file=sys.stderr)
        return 1
    # A relative logfile is in `dir`, as Redis's (it chdirs into `dir` while reading the configuration).
    logfile = os.path.join(os.path.abspath(config.dir or "."), config.logfile) if config.logfile else ""
    syslog_to = (config.syslog_ident, config.syslog_facility) if config.syslog_enabled else None
    log = RedisStyleLog(logfile, config.loglevel, syslog_to)
    if config.dir:
        os.chdir(config.dir)
    if not config.state.myid:
        config.state.myid = secrets.token_hex(20)
    try:
        flush(config)
    except OSError as exc:
        print(
            f"Sentinel config file {config_file} is not writable: {exc.strerror}. Exiting...", file=sys.stderr
        )
        return 1
    return _serve(config, overrides, log)


def _serve(config: SentinelConfig, overrides: list[list[str]], log: RedisStyleLog) -> int:
    """Run the actor system (actors/sentinel/system.py) on this thread until SHUTDOWN or a signal."""
    log("*", f"Running mode=sentinel, port={config.port}.")
    log("#", f"Sentinel ID is {config.state.myid}")
    pidfile.create(config.pidfile)
    mode = supervised.resolve(config.supervised)
    status = SentinelSystem(
        config, overrides, log, on_ready=lambda: supervised.ready(mode, replica=False)
    ).run()
    supervised.stopping(mode)
    if status == 0:
        pidfile.remove(config.pidfile, lambda: log("*", "Removing the pid file."))
    return status
