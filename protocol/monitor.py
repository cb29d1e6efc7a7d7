"""libzmq socket monitors: opening one with a pipe that cannot fill, closing one without a deadlock.

libzmq reports a socket's events (connected, disconnected, ...) from its I/O thread by a *blocking* send
on an internal PAIR socket, under the socket's monitor mutex. Two ways that send never returns:
- the reading PAIR socket was closed first: a PAIR with no peer blocks every send; the I/O thread then
  holds the mutex for good, and the next ``disable_monitor`` (or close) waits on it. pyzmq makes that call
  holding the GIL, so the whole process stops answering (seen: a replica closing its link's monitor
  before its link when the master was killed);
- the pipe is full (by default 2,000 events: each side's 1,000-message limit) while the one thread that
  would read it is the thread calling ``disable_monitor``.
So the reader is opened with no receive limit (libzmq makes an inproc pipe unbounded when either side's
limit is 0; events are a few per connection and the bus drains them at every poll), and a monitor is
always stopped before its reader is closed.
"""

from __future__ import annotations

import itertools

import zmq

# Inproc endpoint names must be unique in the context while bound (a socket's fd may be reused).
_endpoint_numbers = itertools.count()


def open_monitor(sock: zmq.Socket[bytes], events: int) -> zmq.Socket[bytes]:
    """Start monitoring ``sock`` for ``events``; the connected PAIR socket that receives them."""
    endpoint = f"inproc://redactor-monitor-{next(_endpoint_numbers)}"
    sock.monitor(endpoint, events)
    reader: zmq.Socket[bytes] = sock.context.socket(zmq.PAIR)
    reader.setsockopt(zmq.RCVHWM, 0)
    reader.setsockopt(zmq.LINGER, 0)
    reader.connect(endpoint)
    return reader


def close_monitor(sock: zmq.Socket[bytes] | None, reader: zmq.Socket[bytes] | None) -> None:
    """Stop ``sock``'s monitor, then close ``reader`` (this order: see the module's docstring).

    ``sock`` may be None or closed already (closing a socket stops its monitor)."""
    if sock is not None and not sock.closed:
        try:
            sock.monitor(None, 0)
        except zmq.ZMQError:
            pass
    if reader is not None and not reader.closed:
        reader.close(0)


def event_number(frames: list[bytes]) -> int | None:
    """The event a monitor message carries (its first frame starts with the 16-bit event number)."""
    if frames and len(frames[0]) >= 2:
        return int.from_bytes(frames[0][:2], "little")
    return None
