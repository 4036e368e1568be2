"""paper_code: reference implementation of "Distilling Reinforcement Learning into
Single-Batch Datasets" (Wilhelm & Ventura, ECAI 2025, arXiv 2508.09283).

Importing the package sets torch to one thread (``PAPER_CODE_NUM_THREADS`` overrides) and
registers ``paper_code/NDCartPole-v0`` with gymnasium.
"""

from __future__ import annotations

import sys

if sys.argv[:1] == ["-m"]:  # being imported by `python -m paper_code ...`: before torch's slow import
    from paper_code.runs.interrupts import stop_commands_at_once

    stop_commands_at_once()

from paper_code.runtime import configure_threads  # noqa: E402

configure_threads()

from paper_code import envs  # noqa: E402  (registers the gymnasium environments)

__version__ = "0.1.0"
__all__ = ["envs", "__version__"]
