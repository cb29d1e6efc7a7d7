"""What a RESP connection does with a request Redis 7 refuses before authentication.

``RespConnection.data_received`` walks an unauthenticated client's reads with protocol/resp_preauth.py's
``PreAuthGuard``; when the guard refuses a request, ``refuse`` runs the requests before it (an ``AUTH`` among
them may authenticate the client), then either goes on without the guard (now authenticated) or replies with
Redis's error, logs Redis's line (rate-limited: actors/ratelog.py) and closes the connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.ratelog import remote_errors
from protocol.resp_preauth import PreAuthGuard, PreAuthRefusal

if TYPE_CHECKING:
    from actors.loop.connection import RespConnection

# How much of the query buffer Redis's log line shows.
LOGGED_QUERY_BYTES = 128


def refuse(conn: RespConnection, data: bytes, refusal: PreAuthRefusal) -> None:
    """Handle a read whose request at ``refusal.offset`` is over the unauthenticated limits."""
    client = conn.client
    assert client is not None
    conn.guard = None  # the head was walked already: parse it without walking it again
    if refusal.offset:
        conn.data_received(data[: refusal.offset])
    if conn.closed or client.close_requested:
        conn.guard = PreAuthGuard()
        return
    conn.guard = PreAuthGuard()  # from a request boundary: the refused request starts one
    if client.authenticated:
        conn.data_received(data[refusal.offset :])
        return
    conn.out.append(b"-" + refusal.reply.encode() + b"\r\n")
    query = data[refusal.offset : refusal.offset + LOGGED_QUERY_BYTES]
    # Redis: "Protocol error (unauth mbulk count) from client: <CLIENT LIST line>. Query buffer ...: '...'"
    remote_errors.info(
        "client_protocol_error",
        reason=refusal.reason,
        client=client.describe(),
        query=repr(query)[2:-1],
    )
    client.close_requested = True
    conn.master.schedule_flush(conn)
