"""Measurements read off finished runs and datasets: costs, first times to a return, k-shot learning."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from paper_code.core.dataset import DistilledDataset, movement
from paper_code.core.inner import inner_step
from paper_code.core.learners import init_params
from paper_code.core.ppmo import PPMO
from paper_code.core.settings import PPMOConfig

if TYPE_CHECKING:
    from paper_code.pipeline.store import EvaluationStore


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


def kshot_returns(path: str | Path, ks: list[int], *, learners: int, episodes: int, seed: int,
                  store: EvaluationStore) -> pd.DataFrame:
    """Return after k SGD steps on the same batch (the dataset file ``path``), with the learned lr and
    with lr / k (sampled actions; mean and 95% CI over learners), each read from ``store`` or measured
    into it (k = 1 with the learned lr is the one-step evaluation of the same learners, episodes and seed:
    the same entry)."""
    ds = DistilledDataset.load(path)
    rows = []
    for k in ks:
        for mode, lr in (("learned lr", float(ds.lr)), ("lr / k", float(ds.lr) / k)):
            r, name = store.dataset_returns(path, learners=learners, episodes=episodes, seed=seed, steps=k, lr=lr)
            rows.append({"k": k, "lr mode": mode, "lr": lr, "learners x episodes": f"{learners} x {episodes}",
                         "sampled mean": r.mean, "sampled std": r.std, "ci95 low": r.ci95[0], "ci95 high": r.ci95[1],
                         "% at 500": 100 * r.solved_fraction, "evaluation": name})
    return pd.DataFrame(rows)


def dataset_movement(ds: DistilledDataset) -> dict[str, float]:
    """How far ``ds`` moved from where it started (:func:`~paper_code.core.dataset.movement`): its
    provenance's record, or for a PPMO dataset made before runs recorded it, against its run's initial
    dataset rebuilt from the configuration and seed in its provenance; ``{}`` for anything else."""
    if "movement" in ds.provenance:
        return dict(ds.provenance["movement"])
    if ds.provenance.get("method") != "ppmo":
        return {}
    start = PPMO(PPMOConfig(**ds.provenance["config"])).initial
    now = {"states": ds.states, "labels": ds.labels, "log_lr": ds.lr.reshape(()).log(),
           **{f"encoder.{k}": v for k, v in ds.encoder.items()}}
    return movement(start, now)


def initial_states(ds: DistilledDataset) -> torch.Tensor:
    """The synthetic states a PPMO dataset started from: its run's initial dataset, rebuilt from
    the configuration and seed in its provenance (the dataset generator is seeded by the run)."""
    return PPMO(PPMOConfig(**ds.provenance["config"])).states.detach()


@torch.no_grad()
def logit_map(ds: DistilledDataset | None, states: torch.Tensor, *, learners: int = 32, seed: int = 0,
              rel_tol: float = 0.05, policy: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """The one-step learner's action preferences on real ``states`` [n, D], read as a linear map.

    The softmax is shift-invariant (adding one number to every logit of a state changes nothing),
    so the logits are centred over actions first: P [n, A]. Per fresh learner, the least-squares
    affine fit P ≈ (S − mean S) W + b gives ``r2`` (the variance of P it explains, mean over
    learners) and ``rank``: the number of singular values of W above ``rel_tol`` × the largest
    (median over learners), i.e. how many independent state directions the policy's preferences
    follow; ``bias``: the size of the state-independent part of P (its mean over states) against
    the spread of its state-dependent part (both root-mean-square over actions; mean over learners),
    a preference for some actions whatever the state. ``policy``: a fixed actor's parameters (e.g.
    the PPO teacher) instead of a dataset.
    """
    from paper_code.core.inner import inner_step_batch
    from paper_code.core.learners import batched_forward, forward, init_params_batch

    s = states.float()
    if policy is not None:
        logits = forward({k: v for k, v in policy.items() if k != "log_std"}, s, "tanh")[None]
    else:
        g = torch.Generator().manual_seed(seed)
        theta0 = init_params_batch(ds.learner, s.shape[1], ds.labels.shape[1], learners, g)
        theta1 = inner_step_batch(theta0, ds.features(ds.states), ds.labels, ds.lr.reshape(()), ds.learner.activation,
                                  ds.log_std)
        logits = batched_forward(theta1, s.expand(learners, *s.shape), ds.learner.activation)
    p = logits - logits.mean(-1, keepdim=True)  # [K, n, A]
    x = s - s.mean(0)
    w = torch.linalg.lstsq(x.expand(len(p), *x.shape), p - p.mean(1, keepdim=True)).solution  # [K, D, A]
    resid = p - p.mean(1, keepdim=True) - x @ w
    total = (p - p.mean(1, keepdim=True)).pow(2).sum((1, 2)).clamp_min(1e-30)
    r2 = 1 - resid.pow(2).sum((1, 2)) / total
    sv = torch.linalg.svdvals(w)  # [K, min(D, A)]
    rank = (sv >= rel_tol * sv[:, :1]).sum(-1).float()
    bias = p.mean(1).pow(2).mean(-1).sqrt() / (total / (p.shape[1] * p.shape[2])).sqrt()
    return {"r2": float(r2.mean()), "rank": float(rank.median()), "bias": float(bias.mean()),
            "sv": [float(v) for v in (sv / sv[:, :1]).mean(0)]}
