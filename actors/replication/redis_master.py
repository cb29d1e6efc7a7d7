"""The link of a redactor replica to its master over RESP (bus thread side): how a redactor node tells a
redactor master from a redis-server, and how it replicates from a redis-server with Redis's own PSYNC.

Every link starts here: a TCP connection to the master's RESP port, PING, AUTH (masteruser/masterauth),
then ``REPLCONF redactor-probe 1`` (REPLCONF: a replication user may run it where INFO would be refused).
A redactor master answers ``+REDACTOR <bus port>``: the probe ends and the link goes on over the node bus at
that port (replica.py's DEALER; an older master answers without it: its port + 10000); so does a master
whose RESP port cannot be reached, for a short while (``PROBE_RETRY_S`` in replica.py), after which the probe
runs again. Any other master is a Redis: the handshake goes on as Redis's replica does it
(``REPLCONF listening-port``, ``REPLCONF capa eof capa psync2``, ``PSYNC <replid> <offset>``), and what comes
back is turned into the peer frames the replica's state machine already follows (replica.py), so full sync,
partial resync, loading while receiving, acks and reconnection are the same code for both kinds of master:

    +FULLRESYNC <id> <offset>      -> FullResync
    $<size> / $EOF:<mark> + RDB    -> SnapBegin, SnapChunk..., SnapEnd (stream db from the RDB's aux field)
    +CONTINUE [<id>]               -> Continue
    the command stream             -> Stream, at offsets counted from the FULLRESYNC / CONTINUE point
    -<error>                       -> Error

The other way, the state machine's Psync becomes ``PSYNC``, Ack ``REPLCONF ACK <offset>``. The PINGs and
``REPLCONF GETACK *`` a Redis master puts in its stream are applied by the loop like any command of the
stream (GETACK makes the replica ack at once: ``Replication.getack_in_stream``).

A thread per link does the blocking socket work and reports to the bus actor as ``RespMasterEvent``s.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import NamedTuple

import structlog

from protocol import peer

log = structlog.get_logger("redactor.replication")

CONNECT_TIMEOUT_S = 5.0
HANDSHAKE_TIMEOUT_S = 10.0
READ_BYTES = 256 * 1024
EOF_MARK_BYTES = 40
# A reply line of the handshake longer than this is not from a Redis master.
MAX_LINE_BYTES = 64 * 1024
# The probe: a REPLCONF option only redactor nodes know, and their answer to it.
PROBE_OPTION = b"redactor-probe"
PROBE_REPLY = b"+REDACTOR"


class RedactorMaster(NamedTuple):
    """The probe found a redactor node (or could not reach the RESP port): replicate over the bus instead."""

    unreachable: bool = False  # the RESP port refused or timed out: the bus is tried, briefly (replica.py)
    # The bus port the master gave in its probe reply (0: none given, an older node: its port + 10000).
    bus_port: int = 0


class RespMasterEvent(NamedTuple):
    """What a master link's thread saw (told to the bus actor): a frame, the probe's verdict, or a loss."""

    conn: RespMasterConn
    frame: peer.PeerFrame | RedactorMaster | None
    lost: str = ""  # why the link broke ("" while it works)


class _Lost(Exception):
    """The connection broke or the master said something a replica cannot follow."""


class RespMasterConn:
    """One connection to a master's RESP port: the probe, then (for a Redis master) the replication link."""

    def __init__(
        self,
        host: str,
        port: int,
        auth: str,
        user: str,
        listening_port: int,
        announce_ip: str,
        report: Callable[[RespMasterEvent], None],
    ) -> None:
        self.host, self.port = host, port
        self._auth, self._user = auth, user
        self._listening_port, self._announce_ip = listening_port, announce_ip
        self._report = report
        self._sock: socket.socket | None = None
        self._write_lock = threading.Lock()
        self._psync = threading.Event()
        self._psync_args: tuple[str, int] = ("?", -1)
        self._buf = bytearray()
        self.closed = False
        threading.Thread(target=self._run, name="replication-resp-master", daemon=True).start()

    # -- from the bus thread -----------------------------------------------------------------------------

    def send_frame(self, frame: peer.PeerFrame) -> None:
        """What the replica's state machine sends its master, in Redis's words."""
        if isinstance(frame, peer.Psync):
            self._psync_args = (frame.replid, frame.offset)
            self._psync.set()
        elif isinstance(frame, peer.Ack):
            if frame.offset >= 0:
                self._write(_command(b"REPLCONF", b"ACK", b"%d" % frame.offset))
        elif isinstance(frame, peer.Bye):
            self.close()
        # Hello (the probe did it) and SnapAck (Redis has no window) have no RESP counterpart.

    def close(self) -> None:
        self.closed = True
        self._psync.set()
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- the thread --------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            try:
                self._sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
            except OSError:
                # Nothing answers on the RESP port: a redactor node may still serve its bus (the link went
                # over the bus alone before this probe existed); replica.py gives that a short while.
                self._emit(RedactorMaster(unreachable=True))
                return
            if self.closed:
                raise _Lost("closed")
            self._sock.settimeout(HANDSHAKE_TIMEOUT_S)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            bus_port = self._handshake()
            if bus_port is not None:
                self._emit(RedactorMaster(bus_port=bus_port))
                return
            self._emit(peer.HelloOk("?"))
            self._psync.wait()
            if self.closed:
                raise _Lost("closed")
            self._sock.settimeout(None)  # repl-timeout is the state machine's, from the frames it gets
            replid, offset = self._psync_args
            self._write(_command(b"PSYNC", replid.encode(), b"%d" % offset))
            self._replicate()
        except (_Lost, OSError) as exc:
            if not self.closed:
                self._report(RespMasterEvent(self, None, str(exc) or type(exc).__name__))
        finally:
            self.closed = True
            if self._sock is not None:
                try:
                    self._sock.close()
                except OSError:
                    pass

    def _handshake(self) -> int | None:
        """PING, AUTH, the probe: a redactor master's bus port (0: not given), else None after REPLCONF as
        Redis's replica does."""
        self._write(_command(b"PING"))
        reply = self._line()
        # As Redis's replica: a master that wants AUTH first answers PING with NOAUTH or NOPERM, which is fine.
        if reply.startswith(b"-") and not reply.startswith((b"-NOAUTH", b"-NOPERM", b"-ERR operation")):
            raise _Lost(f"master answered PING with {reply.decode('utf-8', 'replace')}")
        if self._auth:
            user = [self._user.encode()] if self._user else []
            self._write(_command(b"AUTH", *user, self._auth.encode()))
            self._expect_ok("AUTH")
        # REPLCONF, which any user a replica logs in as may run: a redactor node answers +REDACTOR and its bus
        # port (bus-port / cluster-port may move it from port + 10000), a Redis node refuses the option it
        # does not know (-ERR Unrecognized REPLCONF option).
        self._write(_command(b"REPLCONF", PROBE_OPTION, b"1"))
        line = self._line()
        if line.startswith(PROBE_REPLY):
            given = line[len(PROBE_REPLY) :].strip()
            return int(given) if given.isdigit() and 0 < int(given) < 65536 else 0
        self._write(_command(b"REPLCONF", b"listening-port", b"%d" % self._listening_port))
        self._expect_ok("REPLCONF listening-port")
        if self._announce_ip:
            self._write(_command(b"REPLCONF", b"ip-address", self._announce_ip.encode()))
            self._expect_ok("REPLCONF ip-address")
        self._write(_command(b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"))
        self._line()  # a master that knows no capa answers an error: Redis's replica goes on regardless
        return None

    def _replicate(self) -> None:
        line = self._line(skip_newlines=True)
        if line.startswith(b"+FULLRESYNC"):
            parts = line.split()
            if len(parts) != 3:
                raise _Lost(f"bad FULLRESYNC reply: {line!r}")
            offset = int(parts[2])
            self._emit(peer.FullResync(parts[1].decode(), offset))
            self._receive_snapshot()
        elif line.startswith(b"+CONTINUE"):
            parts = line.split()
            new_id = parts[1].decode() if len(parts) > 1 else self._psync_args[0]
            offset = self._psync_args[1] - 1
            self._emit(peer.Continue(new_id, -1))
        elif line.startswith(b"-"):
            self._emit(peer.Error(line[1:].decode("utf-8", "replace")))
            return
        else:
            raise _Lost(f"unexpected PSYNC reply: {line[:80]!r}")
        pos = offset
        sock = self._sock
        assert sock is not None
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            self._emit(peer.Stream(pos, data))
            pos += len(data)
        while True:
            data = sock.recv(READ_BYTES)
            if not data:
                raise _Lost("master closed the connection")
            self._emit(peer.Stream(pos, data))
            pos += len(data)

    def _receive_snapshot(self) -> None:
        header = self._line(skip_newlines=True)
        if not header.startswith(b"$"):
            raise _Lost(f"bad snapshot header: {header[:80]!r}")
        received = 0
        if header.startswith(b"$EOF:"):
            mark = header[5:]
            if len(mark) != EOF_MARK_BYTES:
                raise _Lost("bad EOF mark")
            self._emit(peer.SnapBegin(-1))
            tail = bytes(self._buf)
            self._buf.clear()
            while True:
                found = tail.find(mark)
                if found >= 0:
                    if found:
                        self._emit(peer.SnapChunk(received, tail[:found]))
                        received += found
                    self._buf += tail[found + EOF_MARK_BYTES :]  # the stream, should the master not wait
                    break
                keep = EOF_MARK_BYTES - 1  # a mark may straddle two reads
                if len(tail) > keep:
                    self._emit(peer.SnapChunk(received, tail[:-keep]))
                    received += len(tail) - keep
                    tail = tail[-keep:]
                tail += self._recv()
        else:
            size = int(header[1:])
            self._emit(peer.SnapBegin(size))
            while received < size:
                if not self._buf:
                    self._buf += self._recv()
                piece = bytes(self._buf[: size - received])
                del self._buf[: len(piece)]
                self._emit(peer.SnapChunk(received, piece))
                received += len(piece)
        self._emit(peer.SnapEnd(received, -1))

    # -- socket helpers ------------------------------------------------------------------------------------

    def _emit(self, frame: peer.PeerFrame | RedactorMaster) -> None:
        if not self.closed:
            self._report(RespMasterEvent(self, frame))

    def _write(self, data: bytes) -> None:
        sock = self._sock
        if sock is None or self.closed:
            return
        with self._write_lock:
            try:
                sock.sendall(data)
            except OSError:
                pass  # the reader notices the broken connection

    def _recv(self) -> bytes:
        assert self._sock is not None
        data = self._sock.recv(READ_BYTES)
        if not data:
            raise _Lost("master closed the connection")
        return data

    def _line(self, skip_newlines: bool = False) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if skip_newlines:
                while self._buf[:1] == b"\n":  # keep-alive newlines before a reply
                    del self._buf[:1]
                    end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                return line
            if len(self._buf) > MAX_LINE_BYTES:
                raise _Lost("reply line too long")
            self._buf += self._recv()

    def _expect_ok(self, what: str) -> None:
        reply = self._line()
        if not reply.startswith(b"+"):
            raise _Lost(f"master refused {what}: {reply.decode('utf-8', 'replace')}")


def _command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
