"""Resumable runs of the pipeline: a preset at a scale of ``params.yaml``, to its dataset file.

A scale's section changes only counts (:data:`SCALE_KEYS`), so quick and paper scale distil with
the same settings (:func:`scale_config`); :func:`run_preset` continues a run from its checkpoint,
and a finished run costs nothing. The algorithm is in :mod:`paper_code.ppmo`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dataset import DistilledDataset
from .layout import dataset_path
from .presets import resolve
from .settings import PPMOConfig
from .training import PPMO, checkpoint_path, distill, log_path

#: what a scale section of params.yaml may change in a preset: seeds and counts (an Atari
#: section's ``max_episode_steps`` caps its episodes)
SCALE_KEYS = ("seed", "size", "eval_every", "eval_learners", "num_envs", "num_steps", "minibatch_size", "update_epochs")


def setting(section: dict[str, Any], key: str, name: Any, default: Any = None) -> Any:
    """``section[key]``: one value for every run, or a mapping (task, N, l, ...) -> value with an
    optional ``default`` entry; ``default`` if the key is absent or has no entry."""
    if key not in section:
        return default
    v = section[key]
    if isinstance(v, dict):
        return v.get(name, v.get(str(name), v.get("default", default)))
    return v


def scale_config(preset: str, section: dict[str, Any], **overrides: Any) -> PPMOConfig:
    """The preset's configuration with the counts a scale section sets (:data:`SCALE_KEYS`)."""
    counts: dict[str, Any] = {k: section[k] for k in SCALE_KEYS if k in section}
    if re.search(r"-b\d+$", preset):  # the preset's name fixes B
        counts.pop("size", None)
    base = resolve(preset)
    if "max_episode_steps" in section and "max_episode_steps" in base.env_kwargs:
        counts["env_kwargs"] = {**base.env_kwargs, "max_episode_steps": int(section["max_episode_steps"])}
    return resolve(preset, **{**counts, **overrides})


def stop_rule(section: dict[str, Any], name: Any) -> dict[str, Any]:
    """:func:`run_or_resume`'s early-stopping arguments for one run: stop once ``stop_patience``
    consecutive evaluations reach ``stop_at_return`` (both one value or per run; no rule without a target)."""
    stop = setting(section, "stop_at_return", name)
    patience = setting(section, "stop_patience", name, 1)
    return {"stop_at_return": None if stop is None else float(stop), "stop_patience": int(patience)}


@dataclass
class FinishedRun:
    """A finished distillation known from its files alone (dataset and log, no checkpoint): what
    the notebooks read of a :class:`~paper_code.ppmo.PPMO` run."""

    cfg: PPMOConfig
    meta_epoch: int
    env_steps: int
    wall_time: float
    evals: list[dict[str, float]]
    history: list[dict[str, float]]
    stopped_early: bool = False


def finished_run(cfg: PPMOConfig, out: Path, meta_epochs: int) -> FinishedRun | None:
    """The run behind ``out`` if it has no checkpoint but its dataset already has ``meta_epochs``
    meta-epochs (checkpoints too large for git are not committed, e.g. Atari's); None if there is
    a checkpoint or no dataset. A shorter dataset without a checkpoint cannot be continued: error."""
    out = Path(out)
    if checkpoint_path(out).exists() or not out.exists():
        return None
    ds = DistilledDataset.load(out)
    prov = ds.provenance
    if ds.env_id != cfg.env_id or ds.size != cfg.size:
        raise ValueError(f"{out} is a dataset for {ds.env_id} with B={ds.size}, not {cfg.env_id} with B={cfg.size}")
    if int(prov.get("meta_epochs", 0)) < meta_epochs:
        raise ValueError(f"{out} has {prov.get('meta_epochs')} meta-epochs, {meta_epochs} asked, and no checkpoint to "
                         f"continue from (delete the dataset to start over)")
    log = json.loads(log_path(out).read_text()) if log_path(out).exists() else {"evals": [], "history": []}
    return FinishedRun(cfg, int(prov["meta_epochs"]), int(prov["env_steps"]), float(prov.get("wall_time_s", "nan")),
                       log["evals"], log["history"])


def run_or_resume(cfg: PPMOConfig, out: Path, meta_epochs: int, *, stop_at_return: float | None = None,
                  stop_patience: int = 1, progress: bool = True, checkpoint_every_s: float = 120.0) -> PPMO:
    """Distil to ``out``, continuing from its checkpoint if there is one (a finished run costs nothing).

    ``stop_at_return`` ends the run once ``stop_patience`` consecutive evaluations reach it with
    sampled actions.
    """
    patience = int(stop_patience)

    def reached(evals: list[dict[str, float]]) -> bool:
        last = evals[-patience:]
        return len(last) == patience and all(e["sampled_return"] >= stop_at_return for e in last)

    rule = None if stop_at_return is None else f"sampled_return>={stop_at_return:g} in {patience} consecutive evaluations"
    finished = finished_run(cfg, out, int(meta_epochs))
    if finished is not None:
        return finished
    return distill(cfg, out, int(meta_epochs), resume=checkpoint_path(out).exists(), progress=progress,
                   checkpoint_every_s=checkpoint_every_s, stop_when=None if rule is None else reached, stop_rule=rule)


def run_preset(preset: str, section: dict[str, Any], out_root: Path, *, name: Any = None, progress: bool = False,
               **overrides: Any) -> PPMO | FinishedRun:
    """Distil ``preset`` at the scale of ``section`` into its :func:`~paper_code.layout.dataset_path`
    under ``out_root``: budget ``section["meta_epochs"]`` and the stop rule of :func:`stop_rule`
    (each one value or a mapping keyed by ``name``: the task, N or split). Resumable."""
    cfg = scale_config(preset, section, **overrides)
    budget = int(setting(section, "meta_epochs", name))
    return run_or_resume(cfg, dataset_path(out_root, preset, cfg.size), budget, progress=progress,
                         **stop_rule(section, name))


def minimal_sizes(dof: int) -> list[int]:
    """The dataset sizes of the minimal-dataset sweep for N-D cart-pole: B = 1 .. 2N + 1."""
    return list(range(1, 2 * int(dof) + 2))


def run_minimal_sweep(section: dict[str, Any], dof: int, out_root: Path, *, progress: bool = False) -> dict[int, Any]:
    """Distil N-D cart-pole at every size of :func:`minimal_sizes` (``cartpole-nd{N}-b{B}``,
    resumable, early stop at the cap); ``section["meta_epochs"]``: an int, or a mapping N -> int."""
    return {b: run_preset(f"cartpole-nd{dof}-b{b}", section, out_root, name=dof, progress=progress)
            for b in minimal_sizes(dof)}
