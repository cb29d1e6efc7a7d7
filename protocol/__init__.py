"""Wire code for redactor: nothing here knows about nodes, actors or processes.

Layout:
    errors.py       the error tree; every error a client can see, with Redis's exact text
    resp.py         RESP2/RESP3 reply types and their encoder (every command module imports these names)
    resp_parse.py   request parsing on top of hiredis: RequestParser, inline requests, Limits
    resp_preauth.py Redis 7's limits before authentication (10 arguments, 16 KiB per bulk): a header walker
    bus_preauth.py  the same limits for msgpack frames on the bus: a header walker that builds nothing
    resp_client.py  an asyncio RESP client on hiredis (calls, pipelines, pub/sub, bounded buffers) and a
                    blocking wrapper: the launcher, the tests, next the sentinel and MIGRATE
    envelope.py     the native protocol: a versioned msgpack envelope carried over ZeroMQ
    client.py       a ZeroMQ client for the native protocol (Lazy Pirate reconnects)
    monitor.py      libzmq socket monitors opened and closed so that their events cannot block libzmq
    peer.py         node <-> node frames (replication now, cluster gossip next): one frozen dataclass per verb
    clusterbus.py   node <-> node frames of cluster gossip (family C): one frozen dataclass per verb
    slots.py        Redis Cluster's hash slots: SLOTS, hashtag(), keyslot() (CRC16/XMODEM)
    curve.py        ZeroMQ CURVE key files (redactor keygen), the trusted-keys file, client socket options
    ports.py        the bus-port rule (RESP port + 10000 unless configured): bus_port_for()

Imports run one way: launcher -> actors -> protocol. This package imports neither.
"""
