"""A second core for loading a large RDB file: a helper process turns its string keys into pickle frames.

Owns both sides of that split: the helper process (``main``, started as a fresh interpreter with the file on
its stdin) and the node's end of the pipe (``LoadHelper``), which ``rdb_reader.load_file`` reads while it parses.

Why: a load of a million small string keys is ~0.40 s of one core in CPython, nearly all of it Python-level
work per key (read two lengths, slice two strings, insert). Only the insert has to happen in the node's
process. The helper does the reading and slicing on the other core and sends each run of string keys as a
pickle stream (SHORT_BINBYTES operands are the very length byte + bytes of the RDB string), which the node
turns into a dict in C (``pickle.loads``) and merges with ``dict.update``: ~0.21 s per million keys instead
of ~0.40 s. The helper is started before the node imports most of its code (launcher/main.py), so its
start-up and first runs overlap the node's own start-up as well.

Division of work: the node parses the file exactly as it would alone (``rdb_reader._load_body``: header, AUX,
SELECTDB, every non-string key, EOF and checksum, and every error message); when its position reaches the
start of the next run the helper sent, it merges the run and jumps to the run's end. Runs hold only plain
string keys (optionally with EXPIRETIME_MS), begin and end at whole records, and never start between an
expire opcode and its key. The helper stops (closes the pipe) at the first thing it does not handle or does
not trust: a truncated or corrupt record (the node then reaches it itself and reports it with its offset),
an opcode it does not know, or a file that is mostly other types (skipping them costs it as much as the
node's own parse, so it would only be in the way). A helper that dies, or sends a malformed frame, is the
same as one that stopped: the node just goes on by itself. No run is applied unless its start is exactly
the node's position, so a disagreement can cost speed but never data.

Trust: the frames come from our own code over a pipe, built only from fixed opcodes and length-prefixed
operands whose lengths the helper checked against the file (a run whose last record runs past the end of the
data is never sent), so no byte of the RDB can become a pickle opcode.

Shared integers: a key whose value is one of the shared integer strings 0..9999 (the RDB holds them
integer-encoded; actors/data/integers.py) goes into a dict of its own in the run, key -> the number (BININT2,
computed by the helper), and the node stores the shared objects for them (``map`` over the tuple, in C), as
its own parse does: a dataset of counters costs as little after a load through the helper as after INCRs.
Those keys enter the database after the run's other keys (dict order is no promise of Redis's either).
"""

from __future__ import annotations

import fcntl
import gc
import os
import pickle
import select
import struct
import subprocess
import sys
from typing import Any

from actors.data.integers import SHARED_INTEGER_BYTES, SHARED_INTEGERS
from actors.persistence.rdb import decode as rdb_decode
from actors.persistence.rdb import reader as rdb_reader
from actors.persistence.rdb.format import (
    OPCODE_AUX,
    OPCODE_EOF,
    OPCODE_EXPIRETIME,
    OPCODE_EXPIRETIME_MS,
    OPCODE_FREQ,
    OPCODE_FUNCTION2,
    OPCODE_IDLE,
    OPCODE_RESIZEDB,
    OPCODE_SELECTDB,
    TYPE_STRING,
)

# A run is at most this many keys: a frame of ~0.5 MiB for small keys, so the node starts merging early.
RUN_KEYS = 16384
# Files smaller than this load in-process: the helper's own start-up (~40 ms) would outweigh the gain.
MIN_FILE_BYTES = 4 << 20
# The helper gives up once the items it skipped (non-string keys it cannot turn into runs) outweigh a
# quarter of the bytes it did turn into runs, plus this allowance for the AUX fields and a few stray keys.
GAP_ALLOWANCE_BYTES = 1 << 20
# A helper that sends nothing for this long is given up on (stopped by a signal, stuck, starved of CPU):
# even its first frame, which includes its start-up, arrives within ~0.1 s on an idle machine.
STALL_TIMEOUT_S = 3.0
# Pipe buffer asked for (Linux F_SETPIPE_SZ; 1 MiB is the default unprivileged limit): the helper can work
# a couple of runs ahead while the node is busy starting up.
PIPE_BYTES = 1 << 20
F_SETPIPE_SZ = 1031

# Frame header: run start, run end (file offsets), keys in the run, expired keys dropped, pickle length.
_FRAME = struct.Struct("<qqIII")
_UNPACK_I64 = struct.Struct("<q").unpack_from
_NO_RUN = sys.maxsize

# Pickle opcodes (Lib/pickle.py) the helper writes.
_EMPTY_DICT_MARK = b"}("  # EMPTY_DICT, MARK
_SETITEMS_EMPTY_DICT_MARK = b"u}("  # SETITEMS (the data dict), EMPTY_DICT, MARK (the expires dict)
_SETITEMS_TUPLE2_STOP = b"u\x86."  # SETITEMS, TUPLE2 (data, expires), STOP
_SHORT_BINBYTES = b"C"  # + 1-byte length + bytes
_LONG_BINPUT = b"r"  # + 4-byte memo number: keep the key just pushed (the expires dict refers to it)
_LONG_BINGET = b"j"  # + 4-byte memo index
_LONG1_8 = b"\x8a\x08"  # LONG1 with 8 bytes: a little-endian signed int64, as the RDB stores it
_SHARED_PAIRS_HEAD = b"u}(C"  # SETITEMS (the data dict), EMPTY_DICT, MARK (the shared integers' dict), C
_BININT2 = b"M"  # + 2-byte unsigned: a shared integer string's number
_SETITEMS_TUPLE3_STOP = b"u\x87."  # SETITEMS, TUPLE3 (data, shared integers, expires), STOP
# Digits of the largest shared integer (9999): every canonical number that short is shared.
_SHARED_DIGITS = len(b"%d" % (SHARED_INTEGERS - 1))


def _shared_number(value: bytes) -> int | None:
    """The number of a shared integer string (canonical, 0..9999), or None. A check, not a table: the node
    imports this module at start-up, and a 10,000-entry dict would cost every node ~0.6 MiB."""
    if len(value) <= _SHARED_DIGITS and value.isdigit() and (len(value) == 1 or value[0] != 48):  # 48: '0'
        return int(value)
    return None


def _operand(s: bytes) -> bytes:
    """``s`` as what follows a SHORT_BINBYTES opcode in a run (see _build_run): its length byte and bytes, or,
    for a string of 256 bytes or more, an empty string that is popped again, then BINBYTES(8) with ``s``."""
    n = len(s)
    if n < 256:
        return bytes((n,)) + s
    if n < 1 << 32:
        return b"\x000B" + n.to_bytes(4, "little") + s  # (C) b"" POP BINBYTES
    return b"\x000\x8e" + n.to_bytes(8, "little") + s  # (C) b"" POP BINBYTES8


class _GiveUp(Exception):
    """The helper met something it does not handle: it stops and the node parses the rest alone."""


def _build_run(data: bytes, pos: int, drop_before_ms: int | None) -> tuple[int, bytes, int, int]:
    """One run of string records from ``pos``: (end, pickle, keys, expired keys dropped).

    Every key and value becomes one operand of a SHORT_BINBYTES opcode, and ``b"C".join`` puts the opcodes
    in: for a short raw string the operand is the RDB's own length byte and bytes, one slice of the file.
    Raises IndexError (or rdb's errors) if a record is cut short or corrupt: then nothing of the run is sent.
    """
    operands: list[bytes] = []
    add = operands.append
    expires: list[bytes] = []
    shared: list[bytes] = []  # key operand + BININT2 number, for values that are shared integer strings
    shared_index = _shared_number
    read_string = rdb_decode.read_string
    records = expired = memo = 0  # records: keys stored plus keys dropped as expired
    while records < RUN_KEYS:
        rtype = data[pos]
        if rtype == 0:  # TYPE_STRING (a literal: this loop is the helper's whole cost)
            b = data[pos + 1]
            if b < 64:
                key_end = pos + 2 + b
                c = data[key_end]
                if c < 64:  # the common case, inlined: short raw key and value
                    end = key_end + 1 + c
                    add(data[pos + 1 : key_end])
                    add(data[key_end:end])
                    pos = end
                    records += 1
                    continue
            key, pos = read_string(data, pos + 1)
            value, pos = read_string(data, pos)
            index = shared_index(value)
            if index is None:
                add(_operand(key))
                add(_operand(value))
            else:
                shared.append(_operand(key) + _BININT2 + index.to_bytes(2, "little"))
            records += 1
            continue
        if rtype == OPCODE_EXPIRETIME_MS and data[pos + 9] == TYPE_STRING:
            expire_ms = _UNPACK_I64(data, pos + 1)[0]
            key, pos = read_string(data, pos + 10)
            value, pos = read_string(data, pos)
            records += 1
            if drop_before_ms is not None and expire_ms < drop_before_ms:
                expired += 1  # as the node's own parse: a master drops keys that expired while it was down
                continue
            # The expires dict below refers to this very key object, by an explicit memo number: the key may
            # go to the shared integers' dict, which comes later in the stream.
            key_op = _operand(key) + _LONG_BINPUT + memo.to_bytes(4, "little")
            index = shared_index(value)
            if index is None:
                add(key_op)
                add(_operand(value))
            else:
                shared.append(key_op + _BININT2 + index.to_bytes(2, "little"))
            expires += (
                _LONG_BINGET,
                memo.to_bytes(4, "little"),
                _LONG1_8,
                expire_ms.to_bytes(8, "little", signed=True),
            )
            memo += 1
            continue
        break  # anything else ends the run: the node parses it
    if pos > len(data):
        raise IndexError  # the last record ran past the end of the data (slices do not raise)
    head = _EMPTY_DICT_MARK + _SHORT_BINBYTES if operands else _EMPTY_DICT_MARK
    if shared:  # (data, shared integers, expires)
        middle = b"".join((_SHARED_PAIRS_HEAD, _SHORT_BINBYTES.join(shared), _SETITEMS_EMPTY_DICT_MARK))
        tail = _SETITEMS_TUPLE3_STOP
    else:  # (data, expires)
        middle, tail = _SETITEMS_EMPTY_DICT_MARK, _SETITEMS_TUPLE2_STOP
    blob = b"".join((head, _SHORT_BINBYTES.join(operands), middle, *expires, tail))
    return pos, blob, records - expired, expired


def _skip_item(data: bytes, pos: int) -> int:
    """The position after the item at ``pos`` (an opcode, or a key with any prefix opcodes), which the node
    parses itself. Raises _GiveUp for what the helper does not walk past (EOF, module data, unknown bytes)."""
    rtype = data[pos]
    pos += 1
    # Prefixes belong to the key after them: skip them with it, so a run never starts in between.
    while rtype in (OPCODE_EXPIRETIME_MS, OPCODE_EXPIRETIME, OPCODE_IDLE, OPCODE_FREQ):
        if rtype == OPCODE_EXPIRETIME_MS:
            pos += 8
        elif rtype == OPCODE_EXPIRETIME:
            pos += 4
        elif rtype == OPCODE_IDLE:
            _, pos = rdb_decode.read_len(data, pos)
        else:
            pos += 1
        rtype = data[pos]
        pos += 1
    if rtype in rdb_decode.OBJECT_TYPES:
        _, pos = rdb_decode.read_string(data, pos)
        _, pos = rdb_decode.read_value(data, pos, rtype)
    elif rtype == OPCODE_AUX:
        _, pos = rdb_decode.read_string(data, pos)
        _, pos = rdb_decode.read_string(data, pos)
    elif rtype == OPCODE_SELECTDB:
        _, pos = rdb_decode.read_len(data, pos)
    elif rtype == OPCODE_RESIZEDB:
        _, pos = rdb_decode.read_len(data, pos)
        _, pos = rdb_decode.read_len(data, pos)
    elif rtype == OPCODE_FUNCTION2:
        _, pos = rdb_decode.read_string(data, pos)
    else:
        raise _GiveUp
    if pos > len(data):
        raise IndexError
    return pos


def scan(data: bytes, drop_before_ms: int | None, send: Any) -> None:
    """The helper's work: ``send(frame)`` for each run of string keys in ``data``, in file order, up to the
    EOF opcode. Raises _GiveUp, or what rdb's readers raise, where it stops early."""
    rdb_reader._parse_header(data)
    pos = 9
    run_bytes = gap_bytes = 0
    while True:
        end, blob, keys, expired = _build_run(data, pos, drop_before_ms)
        if keys or expired:
            send(_FRAME.pack(pos, end, keys, expired, len(blob)) + blob)
            run_bytes += end - pos
        pos = end
        if keys + expired == RUN_KEYS:
            continue  # a full run: the next one starts right here
        if data[pos] == OPCODE_EOF:
            return  # the node checks the checksum
        after = _skip_item(data, pos)
        gap_bytes += after - pos
        if gap_bytes > (run_bytes >> 2) + GAP_ALLOWANCE_BYTES:
            raise _GiveUp  # mostly other types: the node is better off parsing alone
        pos = after


def main() -> int:
    """Entry point of the helper process: the RDB on stdin, drop-before deadline (ms, or '-') in argv[1]."""
    gc.disable()  # builds and drops millions of small objects, none cyclic
    drop_before_ms = None if sys.argv[1] == "-" else int(sys.argv[1])
    with open(0, "rb", closefd=False) as f:
        data = f.read()
    out = 1

    def send(frame: bytes) -> None:
        view = memoryview(frame)
        while view:
            view = view[os.write(out, view) :]

    try:
        scan(data, drop_before_ms, send)
    except Exception:
        # Stopping is all it does about anything: a closed pipe (the node is done, or gone), or a record it
        # cannot read (the node reaches that record itself and reports it with its offset).
        pass
    return 0


class LoadHelper:
    """The node's end: a started helper process and the next run it sent. Not thread-safe (one loader)."""

    def __init__(self, proc: subprocess.Popen[bytes], path: str, drop_before_ms: int | None) -> None:
        self.proc = proc
        self.path = path
        self.drop_before_ms = drop_before_ms
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        self._poller = select.poll()
        self._poller.register(self._fd, select.POLLIN)
        self.start = _NO_RUN  # file offset of the next run, _NO_RUN when no more will come
        self._header: tuple[int, int, int, int, int] | None = None
        self._primed = False
        # Set by whoever takes charge of the helper (the load that reads it closes it from its own thread).
        self.taken = False
        self.stall_timeout_s = STALL_TIMEOUT_S
        self.runs_applied = 0
        self.keys_applied = 0

    @classmethod
    def spawn(
        cls, path: str, drop_before_ms: int | None, min_bytes: int = MIN_FILE_BYTES, min_cpus: int = 2
    ) -> LoadHelper | None:
        """Start a helper on ``path``, or None when it would not pay (a file under ``min_bytes``, fewer than
        ``min_cpus`` CPUs to run on: the helper would only take turns with the node) or cannot start."""
        try:
            if os.path.getsize(path) < min_bytes or len(os.sched_getaffinity(0)) < min_cpus:
                return None
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            code = f"import sys; sys.path.insert(0, {root!r}); from actors.persistence.rdb.helper import main; sys.exit(main())"
            with open(path, "rb") as f:  # its own open file: the same file even if renamed meanwhile
                proc = subprocess.Popen(
                    [sys.executable, "-c", code, "-" if drop_before_ms is None else str(drop_before_ms)],
                    stdin=f,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    close_fds=True,
                )
        except OSError:
            return None
        assert proc.stdout is not None
        try:
            fcntl.fcntl(proc.stdout.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # the default 64 KiB pipe works too, just with more hand-offs
        return cls(proc, os.path.abspath(path), drop_before_ms)

    def _read_exact(self, n: int) -> bytes | None:
        """``n`` bytes from the helper, or None if it stopped, or sent nothing for ``stall_timeout_s`` (a
        stopped or stuck helper must not hold the load up: the node goes on by itself)."""
        chunks = []
        while n:
            try:
                # poll, not select: a node with thousands of clients has descriptors past select's limit.
                if not self._poller.poll(self.stall_timeout_s * 1000):
                    return None
                chunk = os.read(self._fd, min(n, PIPE_BYTES))
            except OSError:
                return None
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _next(self) -> None:
        """Read the next frame's header: sets ``start`` (blocks until the helper sent it or stopped)."""
        raw = self._read_exact(_FRAME.size)
        if raw is None:
            self.start, self._header = _NO_RUN, None
            return
        header = _FRAME.unpack(raw)
        if header[0] < 0 or header[1] <= header[0]:
            self.start, self._header = _NO_RUN, None  # malformed: stop using the helper
            return
        self.start, self._header = header[0], header
        # The first frame arrives when the loader asks for it; later ones only as they are needed.

    def prime(self) -> int:
        """The first run's start (blocking). Called once by the loader before its loop."""
        if not self._primed:
            self._primed = True
            self._next()
        return self.start

    def take(
        self, pos: int, data_dict: dict[bytes, Any], expires: dict[bytes, int], at_record: bool = True
    ) -> tuple[int, int, int]:
        """The loader reached ``pos`` >= ``start``: merge the run if it starts exactly here, at a record.

        Returns (position to go on from, keys merged, expired keys dropped). A run that starts before ``pos``,
        or where the loader is not at a record start (``at_record`` false: an expire opcode is pending), means
        the helper and the node disagree (it cannot happen with a sound helper): the run is read and dropped.
        """
        header = self._header
        if header is None:
            return pos, 0, 0
        start, end, keys, expired, blob_len = header
        blob = self._read_exact(blob_len)
        if blob is None:
            self.start, self._header = _NO_RUN, None
            return pos, 0, 0
        if start != pos or not at_record:
            self._next()
            return pos, 0, 0
        try:
            run = pickle.loads(blob)
            if len(run) == 3:  # shared integer strings came as their numbers (a bad one raises IndexError)
                run_data, numbers, run_expires = run
                shared = dict(
                    zip(numbers, map(SHARED_INTEGER_BYTES.__getitem__, numbers.values()), strict=True)
                )
            else:
                run_data, run_expires = run
                shared = None
        except Exception:  # a garbled frame: go on without the helper
            self.start, self._header = _NO_RUN, None
            return pos, 0, 0
        data_dict.update(run_data)
        if shared:
            data_dict.update(shared)
        if run_expires:
            expires.update(run_expires)
        self.runs_applied += 1
        self.keys_applied += keys
        self._next()
        return end, keys, expired

    def close(self) -> None:
        """Stop the helper (if still running) and reap it. Safe to call more than once."""
        proc = self.proc
        if proc.stdout is not None and not proc.stdout.closed:
            proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self.start, self._header = _NO_RUN, None
