"""Socket options of accepted client connections, shared by the node's and the sentinel's listeners.

``tcp-keepalive <seconds>`` as Redis's anetKeepAlive sets it: SO_KEEPALIVE, the first probe after that many
idle seconds, then a probe every third of it (at least one second), and the peer given up after 3 unanswered
probes. A client that vanished without closing (a cable pulled, a host powered off) is then found and its
connection closed, where it would otherwise hold a client slot forever. 0 leaves keepalive off.
"""

from __future__ import annotations

import socket
from typing import Any

KEEPALIVE_PROBES = 3


def set_keepalive(sock: Any, interval_s: int) -> None:
    """Turn TCP keepalive on for ``sock`` (a socket, or uvloop's socket-like) as tcp-keepalive says."""
    if interval_s <= 0:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(interval_s // 3, 1))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES)
    except OSError:
        pass  # (a connection already gone: nothing to keep alive)
