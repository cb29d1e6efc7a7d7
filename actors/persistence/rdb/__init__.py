"""The RDB file format (version 10, readable by Redis 7.0) and the process that helps load it."""
