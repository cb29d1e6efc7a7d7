"""Redis 7's multi-part append-only file: manifest, base and incr files, replay."""
