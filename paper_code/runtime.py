"""Process-wide runtime settings: torch threads."""

from __future__ import annotations

import os

import torch

THREADS_ENV = "PAPER_CODE_NUM_THREADS"


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
