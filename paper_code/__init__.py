"""paper_code: reference implementation of "Distilling Reinforcement Learning into
Single-Batch Datasets" (Wilhelm & Ventura, ECAI 2025, arXiv 2508.09283).

Importing the package sets torch to one thread (``PAPER_CODE_NUM_THREADS`` overrides) and
registers ``paper_code/NDCartPole-v0`` with gymnasium.
"""

from __future__ import annotations

from .runtime import configure_threads

configure_threads()

from . import envs  # noqa: E402  (registers the gymnasium environments)

__version__ = "0.1.0"
__all__ = ["envs", "__version__"]
