"""DEBUG and its subcommands: DIGEST, DIGEST-VALUE, OBJECT, SLEEP, SET-ACTIVE-EXPIRE, ERROR,
QUICKLIST-PACKED-THRESHOLD, SET-DISABLE-DENY-SCRIPTS, CRASH-ACTOR, KILL-NODE, and those other families register in ``DEBUG_HANDLERS``
(persistence: RELOAD, LOADAOF, SET-SAVE-DELAY, SET-LOAD-DELAY;
populate.py: POPULATE). CRASH-ACTOR reaches the supervisor through ``server.supervisor`` (a SupervisorPort)."""

from __future__ import annotations

import os
import re
import signal
import time
from typing import TYPE_CHECKING, Any

import structlog

from actors.commands import command
from actors.commands._util import parse_int
from actors.commands.keys import SHARED_REFCOUNT, is_shared_integer, object_encoding
from actors.commands.memory import object_access
from actors.data.digest import dataset_digest, object_digest
from actors.server.client import ClientKind
from actors.server.ports import SupervisorError
from protocol.errors import CommandError, echoed, wrong_arity
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client

log = structlog.get_logger("redactor.supervisor")
node_log = structlog.get_logger("redactor.node")


# -- DEBUG -----------------------------------------------------------------------------------------------

DEBUG_REFUSED = (
    'ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", you can run it '
    "from a local connection, otherwise you need to set this option in the configuration file, and then "
    "restart the server."
)

# DEBUG subcommands beyond cmd_debug's own: CRASH-ACTOR and KILL-NODE below, and those other modules add
# (persistence.py: RELOAD, LOADAOF, SET-SAVE-DELAY, SET-LOAD-DELAY; populate.py: POPULATE).
DEBUG_HANDLERS: dict[bytes, Any] = {}


def debug_allowed(client: Client) -> bool:
    return protected_action_allowed(client, "enable-debug-command")


def protected_action_allowed(client: Client, directive: str) -> bool:
    """allowProtectedAction: the directive (enable-debug-command, enable-module-command) is yes, or local
    and the client is on a loopback address."""
    mode = client.server.config[directive]
    if mode == "yes":
        return True
    if mode == "local":
        if client.unix_socket:  # (unixsocket: local by nature, as Redis's connIsLocal)
            return True
        # A bus client's addr is "zmq:<ip>:<port>" (the bus learns it from the socket): local means loopback
        # there too. Internal clients (the master link, scripts) have no remote end.
        if client.kind is ClientKind.NATIVE:
            host = client.addr.removeprefix("zmq:").rsplit(":", 1)[0].strip("[]")
        elif client.kind is ClientKind.RESP:
            host = client.addr.rsplit(":", 1)[0]
        else:
            return True
        return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
    return False


@command(
    "debug",
    -2,
    "admin noscript loading stale",
    (0, 0, 0),
    "server",
    "A container for debugging commands",
    subcommands=(
        "digest",
        "digest-value",
        "sleep",
        "set-active-expire",
        "error",
        "quicklist-packed-threshold",
        "set-disable-deny-scripts",
        "drop-cluster-packet-filter",
        "replicate",
        "crash-actor",
        "kill-node",
        "reload",
        "loadaof",
        "help",
    ),
)
def cmd_debug(client: Client, argv: list[bytes]) -> Any:
    if not debug_allowed(client):
        raise CommandError(DEBUG_REFUSED)
    server = client.server
    sub = argv[1].lower()
    if sub == b"digest" and len(argv) == 2:
        return dataset_digest(server.keyspace).decode()  # a status reply, as in Redis
    if sub == b"digest-value":
        out = []
        for key in argv[2:]:
            # As in Redis: the value's digest without the key name, and logically expired keys still count.
            value = client.db.data.get(key)
            out.append("0" * 40 if value is None else bytes(object_digest(client.db, key, value)).hex())
        return out
    if sub == b"object" and len(argv) == 3:
        return _debug_object(client, argv[2])
    if sub == b"sleep" and len(argv) == 3:
        # As in Redis, this blocks the whole node: it exists to test what clients and replicas do then.
        time.sleep(max(_strtod(argv[2]), 0.0))
        return OK
    if sub == b"set-active-expire" and len(argv) == 3:
        server.active_expire_enabled = argv[2] != b"0"
        return OK
    if sub == b"set-disable-deny-scripts" and len(argv) == 3:
        server.script_disable_deny_script = _atoi(argv[2]) != 0
        return OK
    if sub == b"drop-cluster-packet-filter" and len(argv) == 3:
        # Redis's test hook: cluster bus messages of this type (its CLUSTERMSG_TYPE_* number) are dropped as
        # they arrive (actors/cluster/facade.py), -1 for none.
        server.cluster_drop_packet_filter = parse_int(argv[2])
        return OK
    if sub == b"quicklist-packed-threshold" and len(argv) == 3:
        server.quicklist_packed_threshold_bytes = _packed_threshold(argv[2])
        return OK
    if sub == b"replicate" and len(argv) >= 3:
        # Redis's test hook: the arguments go to the replicas as a command of the stream, run nowhere else
        # (its tests make replicas fail on purpose with it: propagation-error-behavior).
        server.propagate_to_replicas(max(server.stream.db, 0), list(argv[2:]))
        return OK
    if sub == b"log" and len(argv) == 3:
        # A line in the log, as Redis's serverLog(LL_WARNING, "DEBUG LOG: %s"): tests mark their steps in it.
        node_log.warning("debug_log", message="DEBUG LOG: " + argv[2].decode("utf-8", "replace"))
        return OK
    if sub == b"error" and len(argv) == 3:
        # The argument as an error reply, verbatim (clients' tests provoke -LOADING, -OOM ... with it).
        text = argv[2].decode("utf-8", "replace").replace("\r", " ").replace("\n", " ")
        return CommandError(text)
    handler = DEBUG_HANDLERS.get(sub)
    if handler is not None:
        return handler(client, argv)
    if sub == b"help":
        return [
            b"DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"DIGEST",
            b"DIGEST-VALUE <key> ...",
            b"OBJECT <key>",
            b"SLEEP <seconds>",
            b"SET-ACTIVE-EXPIRE <0|1>",
            b"ERROR <string>",
            b"LOG <message>",
            b"REPLICATE <command> [<arg> ...]",
            b"QUICKLIST-PACKED-THRESHOLD <size>",
            b"SET-DISABLE-DENY-SCRIPTS <0|1>",
            b"DROP-CLUSTER-PACKET-FILTER <packet-type>",
            *[n.upper() for n in DEBUG_HANDLERS],
            b"HELP",
        ]
    raise CommandError(
        f"ERR unknown subcommand or wrong number of arguments for '{echoed(argv[1])[:128]}'. Try DEBUG HELP."
    )


def _atoi(raw: bytes) -> int:
    """C's atoi, as Redis reads DEBUG's 0/1 switches: the leading digits, 0 when there are none."""
    digits = raw.lstrip()
    sign = -1 if digits[:1] == b"-" else 1
    digits = digits[1:] if digits[:1] in (b"-", b"+") else digits
    end = 0
    while end < len(digits) and 48 <= digits[end] <= 57:
        end += 1
    return sign * int(digits[:end]) if end else 0


# DEBUG QUICKLIST-PACKED-THRESHOLD: Redis 7.0's default packed_threshold (1 GiB; 0 restores it) and the
# largest it accepts (4 GiB - 1 MiB: a plain node's size must fit a listpack's 32-bit lengths).
QUICKLIST_PACKED_THRESHOLD_DEFAULT_BYTES = 1 << 30
_QUICKLIST_PACKED_THRESHOLD_MAX_BYTES = (1 << 32) - (1 << 20)
# Redis's memtoull: digits, then an optional unit (k/m/g are powers of 1000, kb/mb/gb of 1024); no sign, no
# spaces.
_MEMTOULL = re.compile(rb"([0-9]*)(|[bB]|[kKmMgG][bB]?)")
_MEMTOULL_UNITS = {
    b"": 1,
    b"b": 1,
    b"k": 1000,
    b"kb": 1024,
    b"m": 1000**2,
    b"mb": 1024**2,
    b"g": 1000**3,
    b"gb": 1024**3,
}
_PACKED_THRESHOLD_ERROR = "ERR argument must be a memory value bigger than 1 and smaller than 4gb"


def _packed_threshold(raw: bytes) -> int:
    """DEBUG QUICKLIST-PACKED-THRESHOLD's argument as Redis 7.0 takes it (memtoull, then
    quicklistisSetPackedThreshold). The element size from which Redis keeps a list element in a node of its
    own (a "plain" node); this node's lists are not made of quicklist nodes, so the value changes no layout
    here, and the command exists so that clients and tests that set it get Redis's reply."""
    match = _MEMTOULL.fullmatch(raw)
    if match is None:
        raise CommandError(_PACKED_THRESHOLD_ERROR)
    digits, unit = match.groups()
    # memtoull: no digits reads as 0 (strtoull of an empty string), which restores the default.
    size = int(digits or b"0") * _MEMTOULL_UNITS[unit.lower()]
    if size > _QUICKLIST_PACKED_THRESHOLD_MAX_BYTES:
        raise CommandError(_PACKED_THRESHOLD_ERROR)
    return size or QUICKLIST_PACKED_THRESHOLD_DEFAULT_BYTES


# Redis's LRU clock: seconds, 24 bits (LRU_CLOCK_MAX).
_LRU_CLOCK_MASK = (1 << 24) - 1
# A DUMP payload's bytes around the value's RDB body: the type byte, the RDB version (2), the CRC64 (8).
_DUMP_FRAMING_BYTES = 11


def _debug_object(client: Client, key: bytes) -> str:
    """DEBUG OBJECT key: Redis's status line (the value's identity, refcount, encoding, RDB length, LRU).

    As in Redis, the key is found without expiring it. ``at`` is the value object's identity here, and
    serializedlength the length of its RDB serialization (DUMP's payload without its framing). Redis adds
    quicklist node figures for lists; this node keeps no such nodes and prints none.
    """
    value = client.db.data.get(key)
    if value is None:
        raise CommandError("ERR no such key")
    server = client.server
    refcount = SHARED_REFCOUNT if is_shared_integer(value, server.config) else 1
    codec = server.rdb_codec
    serialized = 0
    if codec is not None:
        dump = codec.dump_value(value, compress=bool(server.config["rdbcompression"]))
        serialized = len(dump) - _DUMP_FRAMING_BYTES
    try:
        idle_s = object_access(client, key, False)
    except CommandError:  # an LFU policy keeps frequencies, not access times
        idle_s = 0
    lru = (int(time.time()) - idle_s) & _LRU_CLOCK_MASK
    return (
        f"Value at:0x{id(value):x} refcount:{refcount} encoding:{object_encoding(value, server.config)} "
        f"serializedlength:{serialized} lru:{lru} lru_seconds_idle:{idle_s}"
    )


_STRTOD_PREFIX = re.compile(rb"\s*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")


def _strtod(raw: bytes) -> float:
    """C's strtod as DEBUG SLEEP uses it: the longest numeric prefix, 0 when there is none."""
    match = _STRTOD_PREFIX.match(raw)
    return float(match.group(0)) if match else 0.0


# -- the supervisor's subcommands ------------------------------------------------------------------------


def debug_crash_actor(client: Client, argv: list[bytes]) -> Any:
    """DEBUG CRASH-ACTOR <name>: the actor raises in its own thread; the supervisor restarts it."""
    if len(argv) != 3:
        raise wrong_arity("debug|crash-actor")
    supervisor = client.server.supervisor
    if supervisor is None:
        raise CommandError("ERR no supervisor is running")
    try:
        supervisor.crash(argv[2].decode("utf-8", "replace"))
    except SupervisorError as exc:
        raise CommandError(f"ERR {exc}") from None
    return OK


def debug_kill_node(client: Client, argv: list[bytes]) -> Any:
    """DEBUG KILL-NODE: SIGKILL this node's process (no reply: the connection just closes)."""
    if len(argv) != 2:
        raise wrong_arity("debug|kill-node")
    log.warning("node_kill_requested", pid=os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)
    return OK  # not reached


def _unknown(argv: list[bytes]) -> CommandError:
    return CommandError(
        f"ERR unknown subcommand or wrong number of arguments for '{echoed(argv[1])[:128]}'. Try DEBUG HELP."
    )


def debug_pause_cron(client: Client, argv: list[bytes]) -> Any:
    """DEBUG PAUSE-CRON <0|1>: stop (1) or resume (0) the cron (active expiry, client and eviction checks)."""
    if len(argv) != 3:
        raise _unknown(argv)
    client.server.cron_paused = _atoi(argv[2]) != 0
    return OK


def debug_replybuffer(client: Client, argv: list[bytes]) -> Any:
    """DEBUG REPLYBUFFER PEAK-RESET-TIME <never|reset|ms> / RESIZING <0|1>: Redis's tuning of its per-client
    reply buffer. Replies here are gathered per tick and handed to the transport, so there is no such buffer
    to resize: the arguments are checked as Redis checks them and the reply is OK."""
    if len(argv) != 4:
        raise _unknown(argv)
    what = argv[2].lower()
    if what == b"peak-reset-time":
        if argv[3].lower() not in (b"never", b"reset"):
            try:
                int(argv[3])
            except ValueError:
                raise CommandError("ERR value is not an integer or out of range") from None
        return OK
    if what == b"resizing":
        return OK
    raise _unknown(argv)


DEBUG_HANDLERS[b"crash-actor"] = debug_crash_actor
DEBUG_HANDLERS[b"kill-node"] = debug_kill_node
DEBUG_HANDLERS[b"pause-cron"] = debug_pause_cron
DEBUG_HANDLERS[b"replybuffer"] = debug_replybuffer
