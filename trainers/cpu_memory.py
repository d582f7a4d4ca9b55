"""Keeping freed memory in the process, so that a training step's large tensors do not fault in afresh each step.

glibc's malloc serves a block of 32 MB or more with its own mmap and hands it back to the operating system
when it is freed; smaller blocks come from the heap, whose free top is trimmed back to the system too. The
next step allocates the same sizes again, and the kernel then faults in and zeroes every page of them anew.
A training step frees and re-allocates the same large tensors every time: the word embeddings' dense
gradient alone is 47 MB for MiniLM's 30522 × 384 table, zero-filled afresh each step (`aten::fill_`, which
leaves the profile's top operators once memory is kept); what keeping it buys is measured by
`benchmarks/end_to_end.py` (docs/speed.md). PyTorch's CPU performance guides preload jemalloc or tcmalloc for
the same reason; glibc's `mallopt` does it without another library.

The cost: the process keeps the memory it has freed, so its resident size stays at its peak (a training
run's peak is reached again every step anyway).
"""
import ctypes
import logging
import sys

logger = logging.getLogger(__name__)

# glibc's <malloc.h> parameter numbers.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
NEVER_TRIM = 2**31 - 1  # mallopt takes an int: the largest free heap top glibc will keep (2 GiB)


def keep_freed_memory(libc=None) -> bool:
    """Ask glibc to serve every block from its heap (never its own mmap) and never trim the heap; True when it
    agreed. Elsewhere (not Linux, or another C library: musl, macOS, Windows) nothing changes and it returns False."""
    if libc is None:
        if not sys.platform.startswith("linux"):
            return False
        try:
            libc = ctypes.CDLL(None)  # the C library the interpreter itself runs on
        except OSError:
            return False
    if not (hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt")):
        return False
    kept = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM) == 1
    if kept:
        logger.info("glibc keeps freed memory in the process (mallopt): large tensors are reused, not re-faulted")
    return kept
