"""Pub/sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH and PUBSUB, as Redis 7.0 does them.

Registries live on the server: ``server.pubsub_channels`` and ``server.pubsub_patterns`` map a channel (or
pattern) to its subscribers, a dict used as an ordered set so that messages go out in subscription order, as
Redis's per-channel lists do. Each client also keeps its own ``channels`` and ``patterns`` sets; the two views
change together here, and a client that disconnects or RESETs is dropped from the registries by a
``client_removed_hooks`` entry installed with the first subscription.

Replies: every (P)(UN)SUBSCRIBE confirms each channel apart, ``[kind, channel, subscriptions now]``, so the
commands answer a ``MultiReply`` of ``Push`` values: consecutive arrays in RESP2, push frames in RESP3, one list
for the native protocol. Messages reach subscribers through ``client.push`` (the transport encodes them: a
RESP2 array, a RESP3 push, or a native KIND_PUSH envelope).

In RESP2 a subscribed client may only run (P)SUBSCRIBE / (P)UNSUBSCRIBE / PING / QUIT / RESET: the commands
flagged ``pubsub-ok``; the dispatcher refuses the rest. RESP3 clients may run anything.

Sharded pub/sub (SSUBSCRIBE, SPUBLISH) lives in pubsub_shard.py; PUBSUB SHARDCHANNELS and SHARDNUMSUB read its
registry, ``server.pubsub_shard_channels``.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import compile_glob, glob_match
from protocol import errors
from protocol.errors import CommandError, echoed
from protocol.resp import MultiReply, Push

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server

# Servers whose client_removed_hooks already hold _forget_client.
_hooked: weakref.WeakSet[Server] = weakref.WeakSet()


def _count(client: Client) -> int:
    """The subscription count Redis puts in each confirmation: channels plus patterns."""
    return len(client.channels) + len(client.patterns)


def _ensure_hook(server: Server) -> None:
    if server not in _hooked:
        server.client_removed_hooks.append(_forget_client)
        _hooked.add(server)


def _drop(registry: dict[bytes, dict[Client, None]], name: bytes, client: Client) -> None:
    subscribers = registry.get(name)
    if subscribers is not None:
        subscribers.pop(client, None)
        if not subscribers:
            del registry[name]


def _forget_client(client: Client) -> None:
    """A client went away (or RESET): remove it from every channel and pattern."""
    if not (client.channels or client.patterns):
        return
    server = client.server
    for channel in client.channels:
        _drop(server.pubsub_channels, channel, client)
    for pattern in client.patterns:
        _drop(server.pubsub_patterns, pattern, client)
    client.channels.clear()
    client.patterns.clear()


def publish(server: Server, channel: bytes, message: bytes) -> int:
    """Deliver ``message`` to the subscribers of ``channel`` and of every matching pattern; returns how many.

    A client subscribed to the channel and to a matching pattern (or to two matching patterns) receives it
    once per subscription and is counted each time, as in Redis.
    """
    receivers = 0
    subscribers = server.pubsub_channels.get(channel)
    if subscribers:
        delivery = Push([b"message", channel, message])
        for client in list(subscribers):
            client.push(delivery)
            receivers += 1
    if server.pubsub_patterns:
        for pattern, clients in list(server.pubsub_patterns.items()):
            if not compile_glob(pattern)(channel):  # no lone-star shortcut here, as Redis
                continue
            delivery = Push([b"pmessage", pattern, channel, message])
            for client in list(clients):
                client.push(delivery)
                receivers += 1
    return receivers


# -- subscribing ---------------------------------------------------------------------------------------


def _subscribe(client: Client, names: list[bytes], patterns: bool) -> MultiReply:
    server = client.server
    _ensure_hook(server)
    registry = server.pubsub_patterns if patterns else server.pubsub_channels
    own = client.patterns if patterns else client.channels
    kind = b"psubscribe" if patterns else b"subscribe"
    replies = MultiReply()
    for name in names:
        if name not in own:
            own.add(name)
            subscribers = registry.get(name)
            if subscribers is None:
                subscribers = registry[name] = {}
            subscribers[client] = None
        replies.append(Push([kind, name, _count(client)]))
    return replies


def _unsubscribe(client: Client, names: list[bytes], patterns: bool) -> MultiReply:
    server = client.server
    registry = server.pubsub_patterns if patterns else server.pubsub_channels
    own = client.patterns if patterns else client.channels
    kind = b"punsubscribe" if patterns else b"unsubscribe"
    replies = MultiReply()
    if not names:
        names = list(own)
        if not names:
            # Nothing to leave: one confirmation with a nil channel (Redis's addReplyPubsubUnsubscribed(NULL)).
            replies.append(Push([kind, None, _count(client)]))
            return replies
    for name in names:
        if name in own:
            own.discard(name)
            _drop(registry, name, client)
        replies.append(Push([kind, name, _count(client)]))
    return replies


@command(
    "subscribe",
    -2,
    "pubsub noscript loading stale pubsub-ok",
    (0, 0, 0),
    "pubsub",
    "Listen for messages published to the given channels",
)
def cmd_subscribe(client: Client, argv: list[bytes]) -> Any:
    return _subscribe(client, argv[1:], patterns=False)


@command(
    "unsubscribe",
    -1,
    "pubsub noscript loading stale pubsub-ok",
    (0, 0, 0),
    "pubsub",
    "Stop listening for messages posted to the given channels",
)
def cmd_unsubscribe(client: Client, argv: list[bytes]) -> Any:
    return _unsubscribe(client, argv[1:], patterns=False)


@command(
    "psubscribe",
    -2,
    "pubsub noscript loading stale pubsub-ok",
    (0, 0, 0),
    "pubsub",
    "Listen for messages published to channels matching the given patterns",
)
def cmd_psubscribe(client: Client, argv: list[bytes]) -> Any:
    return _subscribe(client, argv[1:], patterns=True)


@command(
    "punsubscribe",
    -1,
    "pubsub noscript loading stale pubsub-ok",
    (0, 0, 0),
    "pubsub",
    "Stop listening for messages posted to channels matching the given patterns",
)
def cmd_punsubscribe(client: Client, argv: list[bytes]) -> Any:
    return _unsubscribe(client, argv[1:], patterns=True)


@command("publish", 3, "pubsub loading stale fast", (0, 0, 0), "pubsub", "Post a message to a channel")
def cmd_publish(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    if server.cluster is not None:
        server.cluster.publish(argv[1], argv[2])  # to every node of the cluster, over the bus (Redis too)
    else:
        # To the replicas (not the AOF), so their subscribers get it too, as Redis's forceCommandPropagation.
        server.propagate_to_replicas(client.db.id, argv)
    return publish(server, argv[1], argv[2])


# -- PUBSUB ----------------------------------------------------------------------------------------------

# Redis 7.0's arity of each PUBSUB subcommand (-n: at least n arguments, counting PUBSUB and the subcommand).
_SUBCOMMAND_ARITY = {
    b"channels": -2,
    b"numsub": -2,
    b"numpat": 2,
    b"shardchannels": -2,
    b"shardnumsub": -2,
    b"help": 2,
}

_PUBSUB_HELP = [
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
]


def _syntax_error(argv: list[bytes]) -> CommandError:
    return CommandError(
        f"ERR unknown subcommand or wrong number of arguments for '{echoed(argv[1])[:128]}'. Try PUBSUB HELP."
    )


@command(
    "pubsub",
    -2,
    "pubsub loading stale",
    (0, 0, 0),
    "pubsub",
    "A container for Pub/Sub commands",
    subcommands=("channels", "numsub", "numpat", "shardchannels", "shardnumsub", "help"),
)
def cmd_pubsub(client: Client, argv: list[bytes]) -> Any:
    sub = argv[1].lower()
    arity = _SUBCOMMAND_ARITY.get(sub)
    if arity is None:
        raise errors.unknown_subcommand(errors.echoed(argv[1]), "pubsub")
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        raise errors.wrong_arity(f"pubsub|{sub.decode()}")
    server = client.server
    if sub == b"help":
        return list(_PUBSUB_HELP)
    if sub == b"channels" or sub == b"shardchannels":
        if len(argv) > 3:
            raise _syntax_error(argv)
        registry = server.pubsub_shard_channels if sub == b"shardchannels" else server.pubsub_channels
        if len(argv) == 2:
            return list(registry)
        pattern = argv[2]
        return [channel for channel in registry if glob_match(pattern, channel)]
    if sub == b"numsub" or sub == b"shardnumsub":
        reply: list[Any] = []
        registry = server.pubsub_shard_channels if sub == b"shardnumsub" else server.pubsub_channels
        for channel in argv[2:]:
            subscribers = registry.get(channel)
            reply.append(channel)
            reply.append(len(subscribers) if subscribers else 0)
        return reply
    return len(server.pubsub_patterns)  # NUMPAT: distinct patterns with at least one subscriber
