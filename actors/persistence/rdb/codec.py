"""The RDB codec the commands see (actors/server/ports.py SnapshotCodec): DUMP and RESTORE payloads (values and
function libraries) and DEBUG RELOAD's synchronous load, gathered from the reader, the writer and the format's errors. The master actor
installs this module as ``server.rdb_codec``, so command modules never import the persistence package."""

from actors.persistence.rdb.decode import read_string
from actors.persistence.rdb.format import DumpPayloadError, RdbError
from actors.persistence.rdb.native import crc64
from actors.persistence.rdb.reader import load_file, load_value, sanitized_blobs
from actors.persistence.rdb.writer import dump_value

__all__ = [
    "DumpPayloadError",
    "RdbError",
    "crc64",
    "dump_value",
    "load_file",
    "load_value",
    "read_string",
    "sanitized_blobs",
]
