"""Keeping freed memory in the process, so that every training step does not page its buffers in again.

With glibc's default malloc, buffers above the mmap threshold (the logits of one batch are tens of MB) are
unmapped when freed and mapped again at the next step: the kernel zeroes and faults in every page anew.
With mmap off and trimming raised, the pages stay mapped: less system time and faster training, for more peak
memory; decoding gains alike, since its (poems, vocabulary) scores are such buffers at every step. The figures
are in docs/performance.md ("The allocator"). Every ``tangrnn`` verb run through Lightning's CLI applies them. Set ``TANGRNN_MALLOC_TUNING=0`` to keep glibc's
defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

DISABLE_ENV = "TANGRNN_MALLOC_TUNING"
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_applied = False


def keep_freed_memory() -> bool:
    """Tells glibc's malloc to serve large buffers from the heap and keep them; returns whether it did.

    Does nothing off Linux/glibc (another allocator, such as a preloaded tcmalloc or jemalloc, already keeps its
    memory) or when ``TANGRNN_MALLOC_TUNING=0``.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get(DISABLE_ENV, "1").strip() == "0" or platform.system() != "Linux":
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    except (OSError, AttributeError):
        return False
    _applied = ok
    return ok
