"""The RDB file format (version 10, readable by Redis 7.0) and the process that helps load it.

Layout:
    format.py     type and opcode numbers, errors (RdbError, DumpPayloadError), RdbData
    decode.py     lengths, strings and every value type, shared with the load helper
    reader.py     loading files and streams (a replica's full sync), the helper's runs merged
    writer.py     dumping databases, AUX fields, DUMP payloads
    codec.py      what the commands see of it (DUMP / RESTORE / DEBUG RELOAD / FUNCTION DUMP), as a port
    stream_codec.py  streams in RDB types 15/19/21 and in the AOF rewrite's command form
    compact.py    listpack, intset and ziplist encodings
    native.py     CRC64 and LZF at native speed (pure-Python fallbacks)
    helper.py     the load-helper process: parses runs of string keys on the second core
"""
