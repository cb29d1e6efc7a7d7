"""How a configuration value is read, as Redis 7.0's config.c reads it: integers, memory sizes, percentages.

Why a module of its own: the rules are Redis's C parsers, odd corners included, and users' tools meet those
corners (a value CONFIG SET accepts on redis-server must be accepted here, and refused with the same words
otherwise); a few string checks of the same kind (an announced hostname's characters) sit here too.
``string2ll``: an optional '-', then digits with no leading zero, within a signed 64-bit integer; no '+', no
spaces, no '_' (Python's ``int()`` takes all of those). ``memtoull``: digits (none at all reads as
0) and a unit among b, k, kb, m, mb, g, gb in any case; a leading '-' is refused; the number saturates at
2**64 - 1 and the product with the unit wraps around, as in C. A memory directive of an unsigned C type
(size_t, unsigned long long) checks that unsigned value against its bounds; a signed one (long long, off_t)
checks the same 64 bits read as signed.

``actors/config.py`` owns the directives; this module owns only the reading of their values.
"""

from __future__ import annotations

import re
from collections.abc import Callable


class ConfigError(Exception):
    """A directive or value that cannot be used. ``str(self)`` reads like Redis's config errors."""


_U64 = 1 << 64
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_INTEGER = re.compile(r"-?[1-9][0-9]*|0")
_MEMORY = re.compile(r"([0-9]*)(.*)", re.S)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}

NOT_INTEGER = "argument couldn't be parsed into an integer"
NOT_MEMORY = "argument must be a memory value"
NOT_MEMORY_OR_PERCENT = "argument must be a memory or percent value"


def string2ll(text: str) -> int | None:
    """Redis's string2ll: the integer ``text`` spells exactly, or None."""
    if _INTEGER.fullmatch(text) is None:
        return None
    value = int(text)
    return value if _I64_MIN <= value <= _I64_MAX else None


def memtoull(text: str) -> int | None:
    """Redis's memtoull: the size ``text`` gives as an unsigned 64-bit value (wrapped as C wraps it), or None."""
    if text.startswith("-"):
        return None
    digits, unit = _MEMORY.fullmatch(text).groups()  # type: ignore[union-attr]  # (.* matches anything)
    multiplier = _UNITS.get(unit.lower())
    if multiplier is None:
        return None
    value = min(int(digits), _U64 - 1) if digits else 0  # strtoull saturates
    return value * multiplier % _U64


def parse_memory(text: str) -> int:
    """A memory size in bytes (``1gb`` = 2**30, ``1g`` = 10**9, plain numbers are bytes); ConfigError if none."""
    value = memtoull(text)
    if value is None:
        raise ConfigError(NOT_MEMORY)
    return value


def int_parser(
    low: int, high: int, memory: bool = False, unsigned: bool = False
) -> Callable[[list[str]], int]:
    """A numeric directive's parser: ``memory`` reads sizes (memtoull) and plain numbers otherwise (string2ll);
    ``unsigned`` for Redis's unsigned C types, whose bounds a wrapped size is checked against as it is."""

    def parse(args: list[str]) -> int:
        if memory:
            value = parse_memory(args[0])
            if not unsigned and value > _I64_MAX:
                value -= _U64  # the same 64 bits in a long long
        else:
            parsed = string2ll(args[0])
            if parsed is None:
                raise ConfigError(NOT_INTEGER)
            value = parsed
        if not low <= value <= high:
            raise ConfigError(f"argument must be between {low} and {high} inclusive")
        return value

    return parse


# Redis's NET_HOST_STR_LEN: a hostname and its terminating NUL.
_HOST_BYTES = 256
_HOSTNAME = re.compile(r"[A-Za-z0-9.-]*")


def announced_hostname(args: list[str]) -> str:
    """cluster-announce-hostname: a name peers and clients are given for this node (Redis's
    isValidAnnouncedHostname: shorter than 256 bytes, letters, digits, '-' and '.'); empty announces none."""
    text = args[0]
    if len(text.encode()) >= _HOST_BYTES:
        raise ConfigError(f"Hostnames must be less than {_HOST_BYTES} characters")
    if not _HOSTNAME.fullmatch(text):
        raise ConfigError("Hostnames may only contain alphanumeric characters, hyphens or dots")
    return text


def memory_or_percent(args: list[str]) -> int | str:
    """maxmemory-clients (ssize_t): a memory size, or a percentage of maxmemory (``7%``) kept as written, as
    CONFIG GET shows it. Redis stores a percentage as a negative number, so a size that wraps to a negative
    one reads back as a percentage, as there."""
    text = args[0]
    size = memtoull(text)
    if size is not None:
        value = size - _U64 if size > _I64_MAX else size
    elif (
        len(text) > 1
        and text.endswith("%")
        and (percent := string2ll(text[:-1])) is not None
        and percent >= 0
    ):
        value = -percent
    else:
        raise ConfigError(NOT_MEMORY_OR_PERCENT)
    if value < -100:
        raise ConfigError("percentage argument must be less or equal to 100")
    return value if value >= 0 else f"{-value}%"


# proc-title-template's variables (Redis's redisProcTitleGetVariable) and whether each can expand to nothing
# (the title checked against is "", as Redis validates with; the server mode of a plain node is "", and so are
# an unset unixsocket and a node started without a file).
_TITLE_VARIABLES = {
    "title": "",
    "listen-addr": "x",
    "server-mode": "",
    "port": "x",
    "tls-port": "x",
    "unixsocket": "",
    "config-file": "",
}
_BAD_TEMPLATE = "template format is invalid or contains unknown variables"


def parse_proc_title_template(args: list[str]) -> str:
    """proc-title-template: refused as Redis's validateProcTitleTemplate refuses it (an unknown {variable}, an
    unmatched brace, or nothing left once expanded and trimmed; "{{" and "}}" are literal braces). Checked,
    then kept: redactor sets no process title."""
    template = args[0]
    expanded = []
    pos = 0
    while pos < len(template):
        char = template[pos]
        if char in "{}" and template[pos + 1 : pos + 2] == char:
            expanded.append(char)
            pos += 2
        elif char == "{":
            end = template.find("}", pos)
            value = _TITLE_VARIABLES.get(template[pos + 1 : end]) if end >= 0 else None
            if value is None:
                raise ConfigError(_BAD_TEMPLATE)
            expanded.append(value)
            pos = end + 1
        elif char == "}":
            raise ConfigError(_BAD_TEMPLATE)
        else:
            expanded.append(char)
            pos += 1
    if not "".join(expanded).strip(" "):
        raise ConfigError(_BAD_TEMPLATE)
    return template
