"""Plain data of a node: databases, values, expiry, the sorted set and the dataset digest. No I/O, no threads.

Layout:
    keyspace.py   databases, values, expiry
    types.py      the sorted set (and its range bounds)
    digest.py     DEBUG DIGEST's algorithm, as Redis's
    stream.py     the stream: entries by ID, Redis's listpack nodes (for ~ trimming), consumer groups, PELs
"""
