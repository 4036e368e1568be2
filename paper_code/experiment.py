"""Experiment helpers shared by the notebooks: configurations from params.yaml, resumable runs,
costs read off learning curves. No algorithm here: it lives in ppmo, ppo and evaluation."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .dataset import DistilledDataset
from .envs import ND_CARTPOLE_ID
from .evaluation import evaluate_dataset
from .inner import inner_step
from .learners import init_params
from .ppmo import PPMO, PPMOConfig, checkpoint_path, distill, log_path


def cartpole_dataset_path(out_root: Path, dof: int, size: int) -> Path:
    """``<out_root>/cartpole/datasets/nd{N}_b{B}.safetensors`` (the published layout)."""
    return Path(out_root) / "cartpole" / "datasets" / f"nd{dof}_b{size}.safetensors"


def cartpole_config(section: dict[str, Any], dof: int, **overrides: Any) -> PPMOConfig:
    """The PPMO configuration of one N-D cart-pole run from a ``cartpole`` params section."""
    kw: dict[str, Any] = dict(
        env_id=ND_CARTPOLE_ID, env_kwargs={"dof": int(dof)}, seed=int(section["seed"]),
        eval_every=int(section["eval_every"]), eval_learners=int(section["eval_learners"]),
    )
    if "size" in section:
        kw["size"] = int(section["size"])
    kw.update(overrides)
    return PPMOConfig(**kw)


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
    import json

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


def one_step_training_seconds(ds: DistilledDataset, repeats: int = 50) -> float:
    """Median wall time to draw a fresh learner and train it one SGD step on the dataset."""
    D, A = int(ds.states.shape[1]), int(ds.labels.shape[1])
    g = torch.Generator().manual_seed(0)
    times = []
    for _ in range(repeats + 3):
        t = time.perf_counter()
        with torch.no_grad():
            inner_step(init_params(ds.learner, D, A, g), ds.states, ds.labels, ds.lr, ds.learner.activation)
        times.append(time.perf_counter() - t)
    return float(pd.Series(times[3:]).median())


def first_reach(curve: pd.DataFrame, column: str, target: float, *, window: int = 1) -> dict[str, float]:
    """Env steps and wall time at which ``column`` (rolling mean over ``window`` rows) first
    reaches ``target``; NaN if it never does."""
    smooth = curve[column].rolling(window, min_periods=1).mean()
    hit = curve[smooth >= target]
    if hit.empty:
        return {"env_steps": float("nan"), "wall_time_s": float("nan")}
    row = hit.iloc[0]
    return {"env_steps": float(row["env_steps"]), "wall_time_s": float(row["wall_time_s"])}


def minimal_sizes(dof: int) -> list[int]:
    """The dataset sizes of the minimal-dataset sweep for N-D cart-pole: B = 1 .. 2N + 1."""
    return list(range(1, 2 * int(dof) + 2))


def run_minimal_sweep(section: dict[str, Any], dof: int, out_root: Path, *, progress: bool = False) -> dict[int, PPMO]:
    """Distil N-D cart-pole at every size of :func:`minimal_sizes` (resumable, early stop at the cap).

    ``section["meta_epochs"]`` is the budget of every run: an int, or a mapping N -> int."""
    budget = section["meta_epochs"]
    budget = int(budget[dof]) if isinstance(budget, dict) else int(budget)
    runs = {}
    for size in minimal_sizes(dof):
        cfg = cartpole_config(section, dof, size=size)
        runs[size] = run_or_resume(cfg, cartpole_dataset_path(out_root, dof, size), budget,
                                   stop_at_return=section["stop_at_return"],
                                   stop_patience=section.get("stop_patience", 1), progress=progress)
    return runs


def smallest_sufficient_size(returns: pd.DataFrame, reference_ci_low: float) -> float:
    """Smallest B whose sampled mean return reaches ``reference_ci_low`` (the lower end of the
    B = 512 dataset's 95% CI); NaN if none does. ``returns`` has columns B and 'sampled mean'."""
    ok = returns[returns["sampled mean"] >= reference_ci_low]
    return float(ok["B"].min()) if not ok.empty else float("nan")


def kshot_returns(ds: DistilledDataset, ks: list[int], *, learners: int, episodes: int, seed: int = 0) -> pd.DataFrame:
    """Return after k SGD steps on the same batch, with the learned lr and with lr / k (sampled actions)."""

    rows = []
    for k in ks:
        for mode, lr in (("learned lr", float(ds.lr)), ("lr / k", float(ds.lr) / k)):
            r = evaluate_dataset(ds, learners=learners, episodes=episodes, seed=seed, steps=k, lr=lr)
            rows.append({"k": k, "lr mode": mode, "lr": lr, "sampled mean": r.mean, "sampled std": r.std,
                         "% at 500": 100 * r.solved_fraction})
    return pd.DataFrame(rows)
