"""Sharded pub/sub: SSUBSCRIBE, SUNSUBSCRIBE and SPUBLISH, as Redis 7.0 runs them on a standalone node.

Shard channels are a namespace of their own: ``server.pubsub_shard_channels`` maps a channel to its
subscribers (a dict used as an ordered set: messages go out in subscription order) and ``client.shard_channels``
is each client's side. A shard message is ``smessage``, patterns never see it, and the count in each
(un)subscribe confirmation is the client's shard subscriptions alone (Redis's clientShardSubscriptionsCount).
A RESP2 client holding any subscription is in pub/sub mode, so while the registry is not empty the
dispatcher's fast path is off (``Server.shard_subscriptions_changed``) and its slow path holds such a client to
the pub/sub commands. SPUBLISH goes to the replicas (not the AOF), as PUBLISH, outside cluster mode. In
cluster mode a slot that leaves the node's shard takes its channels' subscribers with it (``unsubscribe_slot``).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from actors.commands import command
from protocol.resp import MultiReply, Push
from protocol.slots import keyslot

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server

# Servers whose client_removed_hooks already hold _forget_client.
_hooked: weakref.WeakSet[Server] = weakref.WeakSet()


def _forget_client(client: Client) -> None:
    """A client went away (or RESET): out of every shard channel."""
    if not client.shard_channels:
        return
    server = client.server
    registry = server.pubsub_shard_channels
    was_empty = not registry
    for channel in client.shard_channels:
        _drop(registry, channel, client)
    client.shard_channels.clear()
    if not registry and not was_empty:
        server.shard_subscriptions_changed()


def _drop(registry: dict[bytes, dict[Client, None]], channel: bytes, client: Client) -> None:
    subscribers = registry.get(channel)
    if subscribers is not None:
        subscribers.pop(client, None)
        if not subscribers:
            del registry[channel]


def unsubscribe_slot(server: Server, slot: int) -> None:
    """Cluster mode: ``slot`` left this node's shard (Redis's removeChannelsInSlot). Every subscriber of a
    shard channel in it is unsubscribed, told so by a sunsubscribe message, as if it had sent SUNSUBSCRIBE:
    it resubscribes where the slot went."""
    registry = server.pubsub_shard_channels
    for channel in [c for c in registry if keyslot(c) == slot]:
        for subscriber in registry.pop(channel):
            subscriber.shard_channels.discard(channel)
            subscriber.push(Push([b"sunsubscribe", channel, len(subscriber.shard_channels)]))
    if not registry:
        server.shard_subscriptions_changed()


@command(
    "ssubscribe",
    -2,
    "pubsub noscript loading stale pubsub-ok",
    (1, -1, 1),
    "pubsub",
    "Listen for messages published to the given shard channels",
)
def cmd_ssubscribe(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    if server not in _hooked:
        server.client_removed_hooks.append(_forget_client)
        _hooked.add(server)
    registry = server.pubsub_shard_channels
    was_empty = not registry
    replies = MultiReply()
    for channel in argv[1:]:
        if channel not in client.shard_channels:
            client.shard_channels.add(channel)
            registry.setdefault(channel, {})[client] = None
        replies.append(Push([b"ssubscribe", channel, len(client.shard_channels)]))
    if was_empty and registry:
        server.shard_subscriptions_changed()
    return replies


@command(
    "sunsubscribe",
    -1,
    "pubsub noscript loading stale pubsub-ok",
    (1, -1, 1),
    "pubsub",
    "Stop listening for messages posted to the given shard channels",
)
def cmd_sunsubscribe(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    registry = server.pubsub_shard_channels
    was_empty = not registry
    replies = MultiReply()
    channels = argv[1:] or list(client.shard_channels)
    if not channels:
        # Nothing to leave: one confirmation with a nil channel, as Redis.
        replies.append(Push([b"sunsubscribe", None, 0]))
        return replies
    for channel in channels:
        if channel in client.shard_channels:
            client.shard_channels.discard(channel)
            _drop(registry, channel, client)
        replies.append(Push([b"sunsubscribe", channel, len(client.shard_channels)]))
    if not registry and not was_empty:
        server.shard_subscriptions_changed()
    return replies


@command("spublish", 3, "pubsub loading stale fast", (1, 1, 1), "pubsub", "Post a message to a shard channel")
def cmd_spublish(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    server.propagate_to_replicas(client.db.id, argv)
    subscribers = server.pubsub_shard_channels.get(argv[1])
    if not subscribers:
        return 0
    delivery = Push([b"smessage", argv[1], argv[2]])
    for subscriber in list(subscribers):
        subscriber.push(delivery)
    return len(subscribers)
