"""The node's ZeroMQ bus (port + 10000): native clients and other nodes.

Layout:
    bus.py        BusActor: sockets, the poll loop, frames in and out
"""
