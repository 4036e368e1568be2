"""Where each run's files live under a scale's output folder (``results/`` or ``results-quick/``).

One function per kind of file; the dataset of a preset run is ``dataset_path(root, preset, B)``
(the checkpoint and log go beside it, :mod:`paper_code.training`).
"""

from __future__ import annotations

import re
from pathlib import Path


def dataset_path(out_root: str | Path, preset: str, size: int) -> Path:
    """The dataset file of the run of ``preset`` at size B:

    - ``cartpole-nd{N}[-b{B}]`` -> ``cartpole/datasets/nd{N}_b{B}.safetensors`` (the published layout),
      ``-k{K}`` / ``-pool`` runs add ``_k{K}`` / ``_pool``;
    - ``mujoco-{task}`` -> ``mujoco/datasets/{task}_b{B}.safetensors``;
    - ``atari-{game}-l{l}`` -> ``atari/datasets/{game}_l{l}_b{B}.safetensors``.
    """
    root, b = Path(out_root), int(size)
    m = re.fullmatch(r"cartpole-nd(\d+)(?:-b\d+)?(-k\d+|-pool)?", preset)
    if m:
        return root / "cartpole" / "datasets" / f"nd{m[1]}_b{b}{(m[2] or '').replace('-', '_')}.safetensors"
    m = re.fullmatch(r"mujoco-(.+)", preset)
    if m:
        return root / "mujoco" / "datasets" / f"{m[1]}_b{b}.safetensors"
    m = re.fullmatch(r"atari-(\w+)-l(\d)", preset)
    if m:
        return root / "atari" / "datasets" / f"{m[1]}_l{m[2]}_b{b}.safetensors"
    raise ValueError(f"the pipeline has no dataset location for preset {preset!r}")


def ppo_baseline_path(out_root: str | Path, env_name: str) -> Path:
    """The plain PPO baseline's actor (``cartpole/baselines/ppo_nd{N}`` or ``mujoco/baselines/ppo_{task}``)."""
    family = "cartpole" if env_name.startswith("nd") else "mujoco"
    return Path(out_root) / family / "baselines" / f"ppo_{env_name}.safetensors"
