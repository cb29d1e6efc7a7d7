"""Plain data of a node: databases, values, expiry, the sorted set and the dataset digest. No I/O, no threads.

Layout:
    keyspace.py   databases, values, expiry
    kvstore.py    one database's storage: the only writer of key data (per-slot index in cluster mode)
    types.py      the sorted set (and its range bounds)
    stream.py     the stream: entries by ID, Redis's listpack nodes (for ~ trimming), consumer groups, PELs
    digest.py     DEBUG DIGEST's algorithm, as Redis's
    rdb_hooks.py  RDB records outside the keyspace (function libraries): where persistence and scripting meet
    memory.py     what a key costs (used_memory's estimate, MEMORY USAGE) and the running total maxmemory reads
    evict.py      eviction policies, LRU/LFU access stamps, the eviction pool that picks victims
    events.py     keyspace event classes (notify-keyspace-events): flag bits and letters
    encodings.py  sets Redis would keep as a hashtable though their members fit an intset (OBJECT ENCODING)
    allocator.py  malloc_trim: the malloc heap's free pages back to the system (MEMORY PURGE)
    integers.py   shared integer strings 0..9999 (Redis's shared.integers): one bytes object per value
    longdouble.py INCRBYFLOAT / HINCRBYFLOAT arithmetic in Redis's C long double (x87 80-bit), exactly
"""
