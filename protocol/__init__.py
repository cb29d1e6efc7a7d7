"""Wire code for redactor: nothing here knows about nodes, actors or processes.

Layout:
    errors.py    the error tree; every error a client can see, with Redis's exact text
    resp.py      RESP2/RESP3 reply types and encoder; request parsing on top of hiredis
    envelope.py  the native protocol: a versioned msgpack envelope carried over ZeroMQ
    client.py    a ZeroMQ client for the native protocol (Lazy Pirate reconnects)

Imports run one way: launcher -> actors -> protocol. This package imports neither.
"""
