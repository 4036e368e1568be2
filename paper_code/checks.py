"""Checks of user-supplied values with one clear message each (``ValueError``), shared by the
configurations, the dataset loader and the command line.

Bounds are sanity limits, far beyond every setting this project uses, that keep a typo (or a
hostile file) from allocating terabytes or overflowing float32 before anything is checked.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

#: seeds: numpy's and torch's generators take non-negative seeds below 2**32 (derived seeds stay in range)
MAX_SEED = 2**32 - 1
#: sizes: instances, envs, steps, hidden widths, learners x episodes, ...
MAX_COUNT = 10**7
#: a layer's width, and a network's depth
MAX_WIDTH = 16_384
MAX_DEPTH = 64
#: values held in memory at once by one tensor of a run (states, a rollout's observations): 4 GB of float32
MAX_ELEMENTS = 10**9


def integer(name: str, v: Any, *, lo: int | None = 1, hi: int | None = MAX_COUNT) -> int:
    """``v`` as an int in [lo, hi] (bools and non-integral numbers are refused)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        if isinstance(v, float) and v.is_integer() and math.isfinite(v):  # 64.0 from JSON or YAML
            v = int(v)
        else:
            raise ValueError(f"{name} must be an integer, got {v!r}")
    v = int(v)
    if lo is not None and v < lo:
        raise ValueError(f"{name} must be {'a positive integer' if lo == 1 else f'an integer >= {lo}'}, got {v}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be at most {hi}, got {v}")
    return v


def number(name: str, v: Any, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           hi_open: bool = False) -> float:
    """``v`` as a finite float in the interval given by ``lo``/``hi`` (open ends if asked)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ValueError(f"{name} must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo:g}, got {v:g}")
    if hi is not None and (v >= hi if hi_open else v > hi):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi:g}, got {v:g}")
    return v


def positive(name: str, v: Any, *, hi: float | None = None) -> float:
    """``v`` as a finite float > 0 (and <= ``hi``)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be positive and finite, got {v!r}")
    return number(name, v, hi=hi)


def seed(name: str, v: Any) -> int:
    return integer(name, v, lo=0, hi=MAX_SEED)


def device(name: str, v: Any) -> str:
    """A torch device string that exists on this machine (``cpu``, ``cuda``, ``cuda:1``, ...)."""
    import torch

    if isinstance(v, torch.device):
        v = str(v)
    if not isinstance(v, str):
        raise ValueError(f"{name} must be a device name such as 'cpu' or 'cuda', got {v!r}")
    try:
        dev = torch.device(v)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name} {v!r} is not a device name (try 'cpu' or 'cuda')") from None
    if dev.type == "cpu":
        return v
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {v!r}: CUDA is not available on this machine (use 'cpu')")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {v!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return v
    raise ValueError(f"{name} {v!r}: only 'cpu' and 'cuda' devices are supported")
