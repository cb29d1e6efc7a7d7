"""Persistence: RDB snapshots, the append-only file, start-up loading and the persistence actor.

Layout:
    persistence.py  Persistence (the loop-side facade: AOF sink, BGSAVE/BGREWRITEAOF, loading) and its actor
    rdb/            the RDB format: rdb.py (reader and writer), compact.py (listpack/intset/ziplist),
                    native.py (CRC64, LZF), helper.py (the load-helper process), stream_codec.py (streams
                    in RDB type 19 and in the AOF rewrite's command form)
    aof/            the multi-part AOF: aof.py (manifest, files, replay, base writer)
"""
