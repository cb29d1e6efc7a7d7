"""The node's ZeroMQ bus (port + 10000): native clients and other nodes.

Layout:
    bus.py        BusActor: sockets, the poll loop, frames in and out; extended by registration (peer-message
                  families, typed loop messages, control messages, ticks, bulk senders), control frames
                  before bulk sends
"""
