"""Measurements read off finished runs and datasets: costs, first times to a return, k-shot learning."""

from __future__ import annotations

import time

import pandas as pd
import torch

from .dataset import DistilledDataset
from .evaluation import evaluate_dataset
from .inner import inner_step
from .learners import init_params
from .ppmo import PPMO
from .settings import PPMOConfig


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


def smallest_sufficient_size(returns: pd.DataFrame, bar: float) -> float:
    """Smallest B whose sampled return clears ``bar`` with the lower end of its 95% CI (not its
    mean); NaN if none does. ``returns`` has columns B and 'ci95 low'."""
    ok = returns[returns["ci95 low"] >= bar]
    return float(ok["B"].min()) if not ok.empty else float("nan")


def kshot_returns(ds: DistilledDataset, ks: list[int], *, learners: int, episodes: int, seed: int = 0) -> pd.DataFrame:
    """Return after k SGD steps on the same batch, with the learned lr and with lr / k (sampled
    actions; mean and 95% CI over learners)."""

    rows = []
    for k in ks:
        for mode, lr in (("learned lr", float(ds.lr)), ("lr / k", float(ds.lr) / k)):
            r = evaluate_dataset(ds, learners=learners, episodes=episodes, seed=seed, steps=k, lr=lr)
            rows.append({"k": k, "lr mode": mode, "lr": lr, "learners x episodes": f"{learners} x {episodes}",
                         "sampled mean": r.mean, "sampled std": r.std, "ci95 low": r.ci95[0], "ci95 high": r.ci95[1],
                         "% at 500": 100 * r.solved_fraction})
    return pd.DataFrame(rows)


def initial_states(ds: DistilledDataset) -> torch.Tensor:
    """The synthetic states a PPMO dataset started from: its run's initial dataset, rebuilt from
    the configuration and seed in its provenance (the dataset generator is seeded by the run)."""
    return PPMO(PPMOConfig(**ds.provenance["config"])).states.detach()
