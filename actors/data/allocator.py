"""Handing freed heap memory back to the system: glibc's ``malloc_trim``, as Redis's jemalloc purges dirty pages.

CPython's small objects live in pymalloc arenas (1 MiB each, unmapped as soon as the last object in them goes);
everything else (objects over 512 bytes, dict tables below glibc's mmap threshold, reply and read buffers, the
buffers of C libraries: hiredis, zmq, OpenSSL) comes from glibc's heap, which returns memory by itself only
from its top. Free chunks in the middle of the heap stay resident: after 1,000,000 pipelined INCRs (redis-cli
--pipe) the node's heap held ~24 MiB of free chunks, 151 MiB RSS where 127 MiB was in use.

``malloc_trim(0)`` releases every whole free page of every malloc arena (madvise), which takes time in
proportion to what it releases (~15 ms for 36 MiB here), so it never runs per command:

- MEMORY PURGE runs it at once (Redis: jemalloc's purge);
- ``trim_before_fork`` runs it before a fork child starts, if the heap holds free chunks (actors/fork.py);
- ``HeapTrimmer.cron`` (a master cron job, launcher/node.py) runs it when the node turns idle (no request read
  for ``TRIM_IDLE_S``) after being busy, if the heap holds ``TRIM_MIN_FREE_BYTES`` free: a burst's free
  chunks go back soon after the burst, and the pause it costs falls where no client waits (Redis purges
  from jemalloc's background thread).

glibc's counters come from ``mallinfo2`` (glibc 2.33+); without it, or on another C library (musl, macOS),
nothing is trimmed automatically and ``trim_heap`` does nothing. ctypes is imported on first use, not at
start-up (~3 ms).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# How many free bytes the malloc heap must hold before an idle node (or one about to fork) trims it: below
# this, the pause and the madvise calls are not worth it.
TRIM_MIN_FREE_BYTES = 2 << 20
# How long the node must have read no request before the trimmer runs (also how often it looks at the heap).
TRIM_IDLE_S = 1.0


class _Libc:
    """glibc's ``malloc_trim`` and ``mallinfo2`` through ctypes (either may be None)."""

    def __init__(self) -> None:
        import ctypes

        self.malloc_trim: Callable[[int], int] | None = None
        self.mallinfo2: Callable[[], Any] | None = None
        try:
            libc = ctypes.CDLL(None)  # dlopen(NULL): the C library is already loaded, no library search
        except OSError:
            return
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim.argtypes = [ctypes.c_size_t]
            trim.restype = ctypes.c_int
            self.malloc_trim = trim
        info = getattr(libc, "mallinfo2", None)
        if info is not None:

            class Mallinfo2(ctypes.Structure):
                # glibc's struct mallinfo2: ten size_t fields; fordblks is the free bytes of every arena.
                _fields_ = [
                    (name, ctypes.c_size_t)
                    for name in (
                        "arena", "ordblks", "smblks", "hblks", "hblkhd",
                        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
                    )
                ]  # fmt: skip

            info.argtypes = []
            info.restype = Mallinfo2
            self.mallinfo2 = info


_LIBC: _Libc | None = None


def _libc() -> _Libc:
    global _LIBC
    if _LIBC is None:
        _LIBC = _Libc()
    return _LIBC


def trim_heap() -> bool:
    """Give the malloc heap's free pages back to the system. True if memory was released."""
    trim = _libc().malloc_trim
    return bool(trim(0)) if trim is not None else False


def free_heap_bytes() -> int | None:
    """Free bytes held in the malloc arenas (mallinfo2's fordblks), or None where it cannot be read."""
    info = _libc().mallinfo2
    return int(info().fordblks) if info is not None else None


def trim_before_fork(min_free_bytes: int = TRIM_MIN_FREE_BYTES) -> bool:
    """Trim before a fork (BGSAVE, AOF rewrite, replica snapshot) when the heap holds ``min_free_bytes`` free:
    the child inherits every resident page, so free chunks would be resident twice while it runs (a BGSAVE
    just after 1,000,000 pipelined INCRBYs: peak RSS of node + child 307 -> 274 MiB). True if it trimmed."""
    free = free_heap_bytes()
    if free is None or free < min_free_bytes:
        return False
    return trim_heap()


class HeapTrimmer:
    """A cron job: trims the malloc heap when the node turns idle after a burst that left free chunks behind.

    It looks once per ``idle_s``: a look that finds the activity counter moved only notes it (nothing is read
    from malloc while the node is busy: ``mallinfo2`` walks every free chunk, ~3 ms with 50,000 of them); the
    first look that finds it still (busy, then a whole ``idle_s`` without a request) reads the free bytes and
    trims if they reach ``min_free_bytes``. A trim that released nothing is not repeated until the free bytes
    have grown by ``min_free_bytes`` (free chunks between live objects hold no whole page to give back).
    """

    def __init__(
        self,
        activity: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
        min_free_bytes: int = TRIM_MIN_FREE_BYTES,
        idle_s: float = TRIM_IDLE_S,
    ) -> None:
        # A counter that moves whenever the node reads a request (the bytes read from clients).
        self.activity = activity
        self.clock = clock
        self.min_free_bytes = min_free_bytes
        self.idle_s = idle_s
        # When the last look was, and what the activity counter said then.
        self._looked_at_s = clock()
        self._last_activity = activity()
        # True when the node was busy since the last time the heap was read: the heap may hold new free chunks.
        # False at first: a node no client has used yet has nothing to give back (and does not import ctypes).
        self._busy_since_read = False
        # The free bytes at the last trim, and whether that trim released anything.
        self._free_at_trim = 0
        self._last_trim_released = True
        # False once the C library turned out to have no mallinfo2/malloc_trim: the job then does nothing.
        self.enabled = True
        # Trims made (for tests and the log).
        self.trims = 0

    def cron(self) -> None:
        now = self.clock()
        if not self.enabled or now - self._looked_at_s < self.idle_s:
            return
        self._looked_at_s = now
        seen = self.activity()
        if seen != self._last_activity:
            self._last_activity = seen
            self._busy_since_read = True
            return
        if not self._busy_since_read:
            return
        self._busy_since_read = False
        free = free_heap_bytes()
        if free is None or _libc().malloc_trim is None:
            self.enabled = False
            return
        if free < self.min_free_bytes:
            return
        if not self._last_trim_released and free - self._free_at_trim < self.min_free_bytes:
            return
        self._last_trim_released = trim_heap()
        self._free_at_trim = free
        self.trims += 1
