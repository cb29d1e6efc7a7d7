"""The node's ZeroMQ bus (port + 10000): native clients and other nodes.

Layout:
    bus.py        BusActor: sockets, the poll loop, frames in and out; extended by registration (peer-message
                  families, typed loop messages, control messages, ticks, bulk senders), control frames
                  before bulk sends
    admission.py  the door: connections seen through the router's monitor, limits before AUTH, idle and
                  unauthenticated peers dropped, protected mode, ZMQ_MAXMSGSIZE
    curve.py      CURVE keys on the bus: the router as CURVE server, a ZAP handler for trusted keys, outgoing
                  links as CURVE clients
"""
