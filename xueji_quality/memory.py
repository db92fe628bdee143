"""Handing freed memory back to the system between the large steps of one process.

Arrow's memory pool and glibc's heap keep freed memory for reuse, so a process that works
through a province step by step (pieces of a generated roster, linkage's passes) would otherwise
carry each step's peak into the next one.
"""

from __future__ import annotations

import contextlib
import ctypes

import pyarrow as pa


def release_unused() -> None:
    """Return what Arrow's pool and the C heap hold free to the system (a no-op off glibc)."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL(None).malloc_trim(0)
