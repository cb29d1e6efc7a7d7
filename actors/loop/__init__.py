"""The master actor: the event-loop thread that owns the keyspace and serves RESP.

Layout:
    master.py     MasterActor: the loop, the tick (stream sinks, then replies), native requests, the cron
    connection.py RespConnection: one client socket; commands run where they are parsed, replies per tick
    fastlane.py   plain GET and SET run straight off the parser, with the general path's effects
    preauth.py    requests Redis 7 refuses before authentication: run the ones before, reply, log, close
    listeners.py  CONFIG SET port: the RESP listeners move to the new port (or stay, and CONFIG SET fails)
"""
