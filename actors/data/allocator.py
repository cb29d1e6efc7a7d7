"""Handing freed heap memory back to the system: glibc's ``malloc_trim``, Redis's MEMORY PURGE for jemalloc.

CPython's small objects live in pymalloc arenas (1 MiB each, unmapped as soon as the last object in them goes);
everything else (objects over 512 bytes, dict tables below glibc's mmap threshold, buffers of C libraries:
hiredis, zmq, OpenSSL) comes from glibc's heap, which returns memory only from its top, so free chunks in the
middle of the heap stay resident after a burst (a pipelined bulk load leaves ~3 MiB that way).
``malloc_trim(0)`` releases every whole free page of every malloc arena (madvise), not only the top. It walks
the free lists once: milliseconds for a heap of tens of MiB, so it runs on request (MEMORY PURGE), never per
command. Elsewhere than glibc (musl, macOS) there is nothing to call and ``trim_heap`` does nothing. Imported
when first needed (ctypes is not part of a node's start-up).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _load_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``int malloc_trim(size_t pad)`` from the process's own symbols, or None where there is none."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # dlopen(NULL): libc is already loaded, no library search
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def trim_heap() -> bool:
    """Give the malloc heap's free pages back to the system. True if memory was released."""
    if _MALLOC_TRIM is None:
        return False
    return bool(_MALLOC_TRIM(0))
