"""The AOF manifest: which files make up the append-only file, in Redis 7's multi-part layout.

Layout, in ``appenddirname`` under ``dir`` (names from ``appendfilename``, here the default)::

    appendonly.aof.manifest        which files make up the AOF, in order (replaced atomically)
    appendonly.aof.3.base.rdb      a snapshot: RDB format (aof-use-rdb-preamble yes) or .base.aof (commands)
    appendonly.aof.5.incr.aof      every write since that snapshot, as RESP commands (several after a failed
    appendonly.aof.6.incr.aof      rewrite, or while a rewrite runs); only the last one is appended to

The manifest has one line per file, exactly as Redis's aof.c writes it (``aofInfoFormat``)::

    file appendonly.aof.3.base.rdb seq 3 type b
    file appendonly.aof.5.incr.aof seq 5 type i

(``type h`` marks history files: replaced files not yet deleted.) Loading reads the base, then each incr in
order. A rewrite opens a new incr file and lists it in the manifest *before* it forks, so the snapshot the
child writes is exactly the old base plus the old incrs; when the child succeeds the manifest is replaced by
"new base + new incr" and the old files are deleted. At every instant the manifest on disk names a complete
dataset: it is only ever replaced whole (actors/files.py). Pure code, loop thread.
"""

from __future__ import annotations

import os
from enum import Enum
from typing import TYPE_CHECKING

from actors.files import write_bytes_atomically
from protocol.resp_parse import split_inline

if TYPE_CHECKING:
    pass

BASE_SUFFIX = ".base"
INCR_SUFFIX = ".incr"
RDB_FORMAT_SUFFIX = ".rdb"
AOF_FORMAT_SUFFIX = ".aof"
MANIFEST_SUFFIX = ".manifest"
TEMP_PREFIX = "temp-"
# Redis's MANIFEST_MAX_LINE.
MANIFEST_MAX_LINE_BYTES = 1024


class AofFileType(Enum):
    BASE = "b"  # the snapshot every load starts from; at most one
    HISTORY = "h"  # replaced by a rewrite, waiting to be deleted; never loaded
    INCR = "i"  # writes after the base, loaded in sequence order


class ManifestError(Exception):
    """The manifest cannot be read or is malformed (start-up stops, as in Redis)."""


class AofInfo:
    def __init__(self, name: str, seq: int, type: AofFileType) -> None:
        self.name: str = name
        self.seq: int = seq
        self.type: AofFileType = type


def _quote_name(name: str) -> str:
    """Redis's sdscatrepr when the name needs it (spaces, quotes, control bytes), else the name itself."""
    if name and all(c.isprintable() and c not in " \"'\\" for c in name):
        return name
    out = []
    for c in name:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c.isprintable():
            out.append(c)
        else:
            out.append("".join(f"\\x{b:02x}" for b in c.encode()))
    return '"' + "".join(out) + '"'


class Manifest:
    """The files that make up the AOF, as ``aofManifest`` in aof.c."""

    def __init__(
        self,
        base: AofInfo | None = None,
        history: list[AofInfo] | None = None,
        incrs: list[AofInfo] | None = None,
        curr_base_seq: int = 0,
        curr_incr_seq: int = 0,
    ) -> None:
        self.base: AofInfo | None = base
        self.history: list[AofInfo] = [] if history is None else history
        self.incrs: list[AofInfo] = [] if incrs is None else incrs
        # Highest sequence numbers used so far, so a new file never reuses a name.
        self.curr_base_seq: int = curr_base_seq
        self.curr_incr_seq: int = curr_incr_seq

    def copy(self) -> Manifest:
        def dup(info: AofInfo) -> AofInfo:
            return AofInfo(info.name, info.seq, info.type)

        return Manifest(
            dup(self.base) if self.base else None,
            [dup(i) for i in self.history],
            [dup(i) for i in self.incrs],
            self.curr_base_seq,
            self.curr_incr_seq,
        )

    def render(self) -> str:
        lines = []
        for info in ([self.base] if self.base else []) + self.history + self.incrs:
            lines.append(f"file {_quote_name(info.name)} seq {info.seq} type {info.type.value}\n")
        return "".join(lines)

    @classmethod
    def parse(cls, text: str, path: str) -> Manifest:
        """Parse a manifest with aofLoadManifestFromFile's rules; ManifestError names the line."""
        manifest = cls()
        max_seq = 0
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        if not lines or text == "":
            raise ManifestError(f"Found an empty AOF manifest ({path})")
        for number, raw in enumerate(lines, 1):
            if raw.startswith("#"):
                continue
            if len(raw) > MANIFEST_MAX_LINE_BYTES:
                raise ManifestError(f"The AOF manifest file contains too long line: {path} line {number}")
            line = raw.strip(" \t\r\n")
            try:
                argv = [a.decode() for a in split_inline(line.encode())] if line else []
            except Exception:
                argv = []
            if len(argv) < 6 or len(argv) % 2:
                raise ManifestError(f"Invalid AOF manifest file format: {path} line {number}: '{line}'")
            name, seq, kind = None, 0, ""
            for i in range(0, len(argv), 2):
                key, value = argv[i].lower(), argv[i + 1]
                if key == "file":
                    name = value
                    if "/" in name:
                        raise ManifestError(f"File can't be a path, just a filename: {path} line {number}")
                elif key == "seq":
                    seq = int(value) if value.lstrip("-").isdigit() else 0
                elif key == "type":
                    kind = value[:1]
            if not name or not seq or not kind:
                raise ManifestError(f"Invalid AOF manifest file format: {path} line {number}: '{line}'")
            try:
                file_type = AofFileType(kind)
            except ValueError:
                raise ManifestError(f"Unknown AOF file type '{kind}': {path} line {number}") from None
            info = AofInfo(name, seq, file_type)
            if file_type is AofFileType.BASE:
                if manifest.base is not None:
                    raise ManifestError(f"Found duplicate base file information: {path} line {number}")
                manifest.base = info
                manifest.curr_base_seq = seq
            elif file_type is AofFileType.HISTORY:
                manifest.history.append(info)
            else:
                if seq <= max_seq:
                    raise ManifestError(f"Found a non-monotonic sequence number: {path} line {number}")
                manifest.incrs.append(info)
                manifest.curr_incr_seq = max_seq = seq
        return manifest

    def new_base(self, filename: str, rdb_preamble: bool) -> str:
        """Name a new base file, turning the current base into history (getNewBaseFileNameAndMarkPreAsHistory)."""
        if self.base is not None:
            self.base.type = AofFileType.HISTORY
            self.history.insert(0, self.base)
        self.curr_base_seq += 1
        suffix = RDB_FORMAT_SUFFIX if rdb_preamble else AOF_FORMAT_SUFFIX
        self.base = AofInfo(
            f"{filename}.{self.curr_base_seq}{BASE_SUFFIX}{suffix}", self.curr_base_seq, AofFileType.BASE
        )
        return self.base.name

    def new_incr(self, filename: str) -> str:
        self.curr_incr_seq += 1
        info = AofInfo(
            f"{filename}.{self.curr_incr_seq}{INCR_SUFFIX}{AOF_FORMAT_SUFFIX}",
            self.curr_incr_seq,
            AofFileType.INCR,
        )
        self.incrs.append(info)
        return info.name

    def mark_incrs_history(self, keep_last: bool) -> None:
        """After a rewrite: the incrs the new base covers become history (the open one stays if ``keep_last``)."""
        covered = self.incrs[:-1] if keep_last else self.incrs
        self.incrs = self.incrs[-1:] if keep_last else []
        for info in reversed(covered):
            info.type = AofFileType.HISTORY
            self.history.insert(0, info)

    def loadable(self) -> list[AofInfo]:
        return ([self.base] if self.base else []) + self.incrs


def manifest_name(filename: str) -> str:
    return filename + MANIFEST_SUFFIX


def temp_incr_name(filename: str) -> str:
    """The incr file written while ``CONFIG SET appendonly yes`` waits for its first base (getTempIncrAofName)."""
    return f"{TEMP_PREFIX}{filename}{INCR_SUFFIX}"


def read_manifest(dirname: str, filename: str) -> Manifest | None:
    """The manifest in ``dirname``, or None if the directory or the manifest does not exist."""
    path = os.path.join(dirname, manifest_name(filename))
    if not os.path.isdir(dirname) or not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ManifestError(
            f"Fatal error: can't open the AOF manifest file {path} for reading: {exc.strerror}"
        ) from None
    return Manifest.parse(raw.decode("utf-8", "replace"), path)


def write_manifest(dirname: str, filename: str, manifest: Manifest) -> None:
    """Replace the manifest atomically (actors/files.py): temp file, fsync, rename, fsync the directory."""
    final = os.path.join(dirname, manifest_name(filename))
    temp = os.path.join(dirname, TEMP_PREFIX + manifest_name(filename))
    write_bytes_atomically(final, manifest.render().encode(), temp)
