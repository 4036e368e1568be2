"""Where each run's files live under a scale's output folder (``results/`` or ``results-quick/``).

One function per kind of file; the dataset of a preset run is ``dataset_path(root, preset, B)``
(the checkpoint and log go beside it, :mod:`paper_code.runs.training`).
"""

from __future__ import annotations

from pathlib import Path

from paper_code.pipeline.presets import parse_preset


def dataset_path(out_root: str | Path, preset: str, size: int) -> Path:
    """The dataset file of the run of ``preset`` at size B:

    - ``cartpole-nd{N}`` -> ``cartpole/datasets/nd{N}_b{B}.safetensors`` (the published layout),
      ``-k{K}`` / ``-pool`` runs add ``_k{K}`` / ``_pool``; the minimal-size sweep's PPMO runs
      ``cartpole-nd{N}-b{B}`` (B != 512) -> ``cartpole/datasets/ppmo/nd{N}_b{B}.safetensors``
      (``cartpole/datasets/nd{N}_b{N+1}`` is the published minimal set, :func:`minimal_dataset_path`);
    - ``mujoco-{task}`` -> ``mujoco/datasets/{task}_b{B}.safetensors``;
    - ``atari-{game}-l{l}`` -> ``atari/datasets/{game}_l{l}_b{B}.safetensors``.
    """
    root, b = Path(out_root), int(size)
    p = parse_preset(preset)
    if p.family == "cartpole":
        folder = root / "cartpole" / "datasets"
        if p.size is not None and b != 512:  # the minimal-size sweep's PPMO runs
            folder = folder / "ppmo"
        variant = f"_k{p.inits}" if p.inits is not None else "_pool" if p.pool else ""
        return folder / f"nd{p.dof}_b{b}{variant}.safetensors"
    if p.family == "mujoco":
        return root / "mujoco" / "datasets" / f"{p.task}_b{b}.safetensors"
    if p.family == "atari":
        return root / "atari" / "datasets" / f"{p.game}_l{p.split}_b{b}.safetensors"
    raise ValueError(f"the pipeline has no dataset location for preset {preset!r}")


def ppo_baseline_path(out_root: str | Path, env_name: str) -> Path:
    """The plain PPO baseline's actor (``cartpole/baselines/ppo_nd{N}`` or ``mujoco/baselines/ppo_{task}``)."""
    family = "cartpole" if env_name.startswith("nd") else "mujoco"
    return Path(out_root) / family / "baselines" / f"ppo_{env_name}.safetensors"


def ppo_evaluated_path(out_root: str | Path, env_name: str) -> Path:
    """The plain PPO baseline trained again with periodic evaluations of its policy (the same
    settings and seed: the same training), for curves that compare evaluations with evaluations:
    ``<family>/baselines/ppo_{env_name}_evaluated.safetensors``."""
    base = ppo_baseline_path(out_root, env_name)
    return base.with_name(base.stem + "_evaluated.safetensors")


def compressed_path(out_root: str | Path, teacher: str, env_name: str, size: int) -> Path:
    """A dataset fitted to a teacher (:mod:`paper_code.core.compress`): ``teacher`` is ``ppo`` (the PPO
    baseline) or ``b512`` (the B = 512 dataset); ``env_name`` ``nd{N}`` or a MuJoCo task ->
    ``cartpole/datasets/compressed/{teacher}/nd{N}_b{B}.safetensors`` or
    ``mujoco/datasets/compressed/{teacher}/{task}_b{B}.safetensors`` (not stage outputs: kept, they resume)."""
    family = "cartpole" if env_name.startswith("nd") else "mujoco"
    return Path(out_root) / family / "datasets" / "compressed" / teacher / f"{env_name}_b{int(size)}.safetensors"


def warm_start_path(out_root: str | Path, task: str, size: int) -> Path:
    """PPMO continued from a compressed dataset: ``mujoco/datasets/warm_start/{task}_b{B}.safetensors``."""
    return Path(out_root) / "mujoco" / "datasets" / "warm_start" / f"{task}_b{int(size)}.safetensors"


def minimal_dataset_path(out_root: str | Path, dof: int) -> Path:
    """The published minimal dataset of N-D cart-pole, B = N + 1: ``cartpole/datasets/nd{N}_b{N+1}.safetensors``
    (a copy of the compressed set notebook 05 selects)."""
    return Path(out_root) / "cartpole" / "datasets" / f"nd{int(dof)}_b{int(dof) + 1}.safetensors"


def atari_teacher_path(out_root: str | Path, game: str) -> Path:
    """The PPO teacher of an Atari game (``python -m paper_code ppo --preset atari-{game}``):
    ``atari/teachers/ppo_{game}.safetensors``."""
    return Path(out_root) / "atari" / "teachers" / f"ppo_{game}.safetensors"


def atari_teacher_set_path(out_root: str | Path, kind: str, game: str, split: int, size: int) -> Path:
    """An Atari dataset made from the game's teacher: ``kind`` ``fit`` (``compress`` through the encoder
    split) or ``finetuned`` (PPMO continued from the fit) ->
    ``atari/datasets/{kind}/{game}_l{l}_b{B}.safetensors``."""
    if kind not in ("fit", "finetuned"):
        raise ValueError(f"unknown kind {kind!r} (fit or finetuned)")
    return Path(out_root) / "atari" / "datasets" / kind / f"{game}_l{int(split)}_b{int(size)}.safetensors"
