"""Redis 7's multi-part append-only file: manifest, base and incr files, replay.

Layout:
    manifest.py   the manifest and the file names it lists
    replay.py     parse and apply an AOF file (RESP or an RDB preamble), torn tails
    file.py       the open AOF (AppendOnlyFile) and the base writer of a rewrite
"""
