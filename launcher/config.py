"""Reading configuration: redis.conf syntax from files and ``--directive value`` from the command line.

Errors stop start-up with Redis's message shape, naming the file, the line and the directive::

    *** FATAL CONFIG FILE ERROR (redactor 0.1.0) ***
    Reading the configuration file redis.conf, at line 3
    >>> 'port "abc"'
    argument couldn't be parsed into an integer
"""

from __future__ import annotations

import os

from actors.config import Config, ConfigError
from actors.version import VERSION
from protocol.errors import ProtocolError
from protocol.resp_parse import split_inline


class ConfigFileError(Exception):
    def __init__(self, source: str, lineno: int, line: str, reason: str) -> None:
        self.source, self.lineno, self.line, self.reason = source, lineno, line, reason
        super().__init__(
            f"\n*** FATAL CONFIG FILE ERROR (redactor {VERSION}) ***\n"
            f"Reading the configuration file {source}, at line {lineno}\n>>> '{line}'\n{reason}"
        )


def split_line(line: str) -> list[str]:
    try:
        return [
            a.decode("utf-8", "surrogateescape")
            for a in split_inline(line.encode("utf-8", "surrogateescape"))
        ]
    except ProtocolError:
        raise ConfigError("Unbalanced quotes in configuration line") from None


# Directives Redis 7.0 skips in a file when given one value (its deprecated_configs): they had no effect since
# Redis 3.2 / 7.0, and old redis.conf files still carry them.
DEPRECATED_SKIPPED = frozenset(
    ("list-max-ziplist-entries", "list-max-ziplist-value", "lua-replicate-commands")
)
# redis.conf directives the node refuses for a feature it does not have, each with its reason.
REFUSED_FEATURES = {
    "loadmodule": "loadmodule is not supported: redactor has no module API",
    "sentinel": "sentinel directive while not in sentinel mode",  # (Redis's words; `redactor sentinel` reads them)
}


def apply_text(config: Config, text: str, source: str, depth: int = 0) -> None:
    """Apply every directive in ``text`` (redis.conf syntax) to ``config``."""
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            argv = split_line(line)
            if not argv:
                continue
            name, args = argv[0].lower(), argv[1:]
            if name == "include":
                if len(args) != 1 or depth > 8:
                    raise ConfigError("Bad directive or wrong number of arguments")
                load_file(config, args[0], depth + 1)
                continue
            if name in DEPRECATED_SKIPPED and len(args) == 1:
                continue
            if name in REFUSED_FEATURES:
                raise ConfigError(REFUSED_FEATURES[name])
            if name == "rename-command":
                _rename_command(config, args)
                continue
            config.apply(name, args, from_file=True)
        except ConfigError as exc:
            raise ConfigFileError(source, lineno, line, str(exc)) from None


def _rename_command(config: Config, args: list[str]) -> None:
    """A `rename-command OLD NEW` line, checked as Redis's loader applies it (in order, on the table the lines
    before it left): OLD must name a command there, NEW ("" hides it) must not."""
    if len(args) != 2:
        raise ConfigError("Bad directive or wrong number of arguments")
    from actors.commands import apply_renames, load_all

    renames = [*config["rename-command"], (args[0], args[1])]
    apply_renames(load_all(), renames)  # raises ConfigError with Redis's words
    config.values["rename-command"] = renames


def load_file(config: Config, path: str, depth: int = 0) -> None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigFileError(
            path, 0, "", f"Fatal error, can't open config file '{path}': {exc.strerror}"
        ) from None
    apply_text(config, text, path, depth)


def group_overrides(args: list[str]) -> list[list[str]]:
    """``--port 7001 --save ""`` -> ``[["port", "7001"], ["save", ""]]``: one directive and its arguments each
    (the node's and the sentinel's command lines alike). Raises ConfigError for an argument before any ``--``."""
    lines: list[list[str]] = []
    for arg in args:
        if arg.startswith("--") and len(arg) > 2:
            lines.append([arg[2:]])
        elif lines:
            lines[-1].append(arg)
        else:
            raise ConfigError(f"Invalid argument '{arg}': directives start with --")
    return lines


def overrides_to_text(args: list[str]) -> str:
    """``--port 7001 --save "" --replicaof "127.0.0.1 7001"`` -> one directive per line, as redis-server does."""
    return "\n".join(" ".join(_quote(p) for p in line) for line in group_overrides(args))


def _quote(text: str) -> str:
    if text and all(c.isalnum() or c in "-_./:*@,+" for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load_config(path: str | None, overrides: list[str]) -> Config:
    """The node's configuration: defaults, then the file, then the command line."""
    config = Config()
    if path:
        load_file(config, path)
    if overrides:
        try:
            text = overrides_to_text(overrides)
        except ConfigError as exc:
            raise ConfigFileError("(command line)", 0, " ".join(overrides), str(exc)) from None
        apply_text(config, text, "(command line)")
    return config


def absolute_dir(config: Config) -> str:
    return os.path.abspath(config["dir"])
