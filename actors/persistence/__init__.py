"""Persistence: RDB snapshots, the append-only file, start-up loading and the persistence actor.

Layout (import full paths: this file re-exports nothing, so that importing rdb/helper.py, which the launcher
does before the node's imports, stays cheap: ~130 modules instead of ~330):
    persistence.py  Persistence, the loop-side facade (``server.persistence``): builds the pieces below and
                    registers the AOF sink, the cron job, INFO persistence and the config listeners
    aof_sink.py     AofSink (each tick's writes to the AOF, appendfsync, everysec), FsyncPolicy, Misconf
    jobs.py         SAVE, BGSAVE, BGREWRITEAOF (fork children via actors/fork.py), save points, the automatic
                    rewrite and its backoff, turning the AOF on and off
    loading.py      the start-up load (AOF or RDB, old-AOF upgrade, progress), DEBUG RELOAD, LoadError
    actor.py        PersistenceActor (fsync, fsync-and-close, unlink off the loop) and its messages
    rdb/            the RDB format: format.py (type/opcode numbers, errors, RdbData), reader.py (files and
                    streams), decode.py (lengths, strings, values), writer.py,
                    compact.py (listpack/intset/ziplist), native.py (CRC64, LZF), helper.py (the load helper)
    aof/            the multi-part AOF: manifest.py (the manifest, file names), replay.py (parse and apply a
                    file), file.py (the open AOF, AppendOnlyFile, and the base writer)
"""
