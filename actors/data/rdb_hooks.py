"""RDB records that live outside the keyspace: function libraries (RDB_OPCODE_FUNCTION2).

The RDB writer puts ``function_records()`` before the databases and the reader hands every load's libraries'
code to ``functions_loaded``; the scripting engine installs both when it is created. Until then the writer
writes none and the reader drops what it read. Plain data wiring, no I/O: it sits here so the persistence
package and the scripting package meet without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable


def _no_records() -> bytes:
    return b""


def _ignore(codes: list[bytes]) -> None:
    return None


function_records: Callable[[], bytes] = _no_records
functions_loaded: Callable[[list[bytes]], object] = _ignore
