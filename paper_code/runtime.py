"""Process-wide runtime settings: torch threads and (glibc) how large CPU buffers are allocated."""

from __future__ import annotations

import ctypes
import os
import sys

import torch

THREADS_ENV = "PAPER_CODE_NUM_THREADS"
ALLOCATOR_ENV = "PAPER_CODE_KEEP_MEMORY"
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op threads; default 1 (``PAPER_CODE_NUM_THREADS`` overrides).

    On a shared 2-core machine, small-tensor torch work ran 10-100x slower with 2 threads than
    with one, so one thread is the default.
    """
    if num_threads is None:
        num_threads = int(os.environ.get(THREADS_ENV, "1"))
    if num_threads < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive integer, got {num_threads}")
    torch.set_num_threads(num_threads)
    return num_threads


def configure_allocator() -> bool:
    """On glibc (Linux), serve large CPU buffers from the heap and keep freed memory for reuse.

    glibc gives every allocation above 32 MB its own ``mmap`` and returns it on ``free``, so each
    large temporary (an Atari meta-epoch's 1,024 frames as floats are 116 MB) pays fresh page
    faults: ~0.3 s of a ~3 s meta-epoch. No mmap and a high trim threshold keep that memory in the
    process (as jemalloc or tcmalloc would, which PyTorch's CPU tuning guide suggests); numbers are
    unchanged. Applied by the first Atari environment of a process (cart-pole's small tensors ran
    no faster with it); ``PAPER_CODE_KEEP_MEMORY=0`` leaves glibc's defaults. Returns whether it applied.
    """
    if os.environ.get(ALLOCATOR_ENV, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
