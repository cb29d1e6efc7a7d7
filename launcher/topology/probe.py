"""The launcher's RESP requests to its nodes: PING for readiness, SHUTDOWN SAVE, INFO for status.

Each request opens a connection of its own (protocol/resp_client.py's blocking client), authenticates with
the node's ``requirepass`` when it has one, and gives up after a short timeout: a node that does not answer
is reported as such, never waited on.
"""

from __future__ import annotations

from typing import Any

from protocol.resp_client import BlockingRespClient, ReplyError

# Timeout of the launcher's own RESP requests (PING, INFO); SHUTDOWN waits longer (it may save).
REQUEST_TIMEOUT_S = 1.0
# After SHUTDOWN SAVE a node may be writing a large snapshot; then SIGTERM, then SIGKILL.
SHUTDOWN_TIMEOUT_S = 60.0
# INFO's reply is a few KiB, PING's and SHUTDOWN's a line: anything much bigger is not a node of ours.
MAX_INFO_REPLY_BYTES = 1024 * 1024
MAX_PING_REPLY_BYTES = 64 * 1024


def _request(port: int, password: str, command: list[str], timeout_s: float, max_reply_bytes: int) -> Any:
    """One command on a connection of its own (AUTH first when ``password``); its reply.

    Raises ``ReplyError`` for an error reply (a refused AUTH too), OSError when the node does not answer,
    ``ConnectionError`` when it closes the connection first.
    """
    options: dict[str, Any] = {"timeout_s": timeout_s, "max_reply_bytes": max_reply_bytes}
    with BlockingRespClient.connect("127.0.0.1", port, password=password or None, **options) as client:
        return client.call(*command)


def ping(port: int, password: str = "", timeout_s: float = REQUEST_TIMEOUT_S) -> bool:
    try:
        reply = _request(port, password, ["PING"], timeout_s, MAX_PING_REPLY_BYTES)
    except (OSError, ReplyError):
        return False
    return reply == b"PONG"


def shutdown_node(port: int, password: str = "") -> str | None:
    """SHUTDOWN SAVE. None when the node closed the connection (it is stopping); else why it did not take it
    (refused, or not listening: still starting, or already stopping), and the caller sends SIGTERM instead."""
    try:
        reply = _request(port, password, ["SHUTDOWN", "SAVE"], SHUTDOWN_TIMEOUT_S, MAX_PING_REPLY_BYTES)
    except ConnectionRefusedError:
        return "not listening"
    except ConnectionError:
        return None  # closed without a reply: what SHUTDOWN does (ConnectionLost)
    except OSError as exc:
        return f"no answer to SHUTDOWN SAVE: {exc}"
    except ReplyError as exc:
        return f"SHUTDOWN SAVE refused: {exc}"
    return f"SHUTDOWN SAVE refused: {reply}"


def parse_info(text: bytes | str) -> dict[str, str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value
    return fields


def node_info(
    port: int, password: str = "", sections: tuple[str, ...] = ("server", "replication", "keyspace")
) -> dict[str, str] | None:
    command = ["INFO", *sections]
    try:
        reply = _request(port, password, command, REQUEST_TIMEOUT_S, MAX_INFO_REPLY_BYTES)
    except (OSError, ReplyError):
        return None
    if not isinstance(reply, bytes):
        return None
    return parse_info(reply)


def sentinel_master(port: int, master_name: str) -> tuple[str, int] | None:
    """What a sentinel names as ``master_name``'s address (SENTINEL GET-MASTER-ADDR-BY-NAME); None if it
    does not answer or does not know the name."""
    try:
        reply = _request(
            port,
            "",
            ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name],
            REQUEST_TIMEOUT_S,
            MAX_PING_REPLY_BYTES,
        )
    except (OSError, ReplyError):
        return None
    if isinstance(reply, list) and len(reply) == 2 and all(isinstance(x, bytes) for x in reply):
        return reply[0].decode(), int(reply[1])
    return None
