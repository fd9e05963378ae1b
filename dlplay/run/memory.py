"""Keep freed memory in the process for reuse, so that training steps on the CPU stop page-faulting.

Every training step allocates and frees the same activations and gradients again. A small CNN's
are megabytes each (32 x 32 x 28 x 28 floats = 3.2 MB). With glibc's default malloc settings such
blocks are returned to the kernel when freed (mmap'd blocks are unmapped, the heap's free top is
trimmed) and every first touch of their replacement in the next step is a page fault: measured in
a training thread, about 1,300 minor faults per step of the small CNN preset at batch 32, and
12 % of its step time (bench/cnn_throughput.py).

:func:`keep_freed_memory` raises the two thresholds once per process (``mallopt``, the same as the
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` environment variables): blocks below
32 MB come from the heap, and up to 64 MB of free heap per arena stay mapped for the next step
(the same step then faults about 18 times). Memory a run frees is reused by the next step or run
rather than handed back; the process's peak memory is unchanged. Elsewhere than Linux with glibc
(macOS, Windows, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform
import threading

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling for its own dynamic threshold (64-bit)
TRIM_THRESHOLD = 64 * 1024 * 1024

_lock = threading.Lock()
_done: bool | None = None  # None: not tried yet; then whether glibc took the settings


def keep_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds (once per process); True when they are set."""
    global _done
    with _lock:
        if _done is None:
            _done = _set_thresholds()
        return _done


def _set_thresholds() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; setting either threshold switches off glibc's dynamic adjustment,
    # so both are set (the trim threshold alone would send every block above 128 KB to mmap)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
