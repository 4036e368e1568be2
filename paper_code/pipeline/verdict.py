"""A dataset's score judged against what it must beat: the uniformly random policy, the same
learners untrained (no step on the dataset), and the teacher a ``compress`` set was fitted to.

Each reference is an estimate with a 95% CI (over learners for learners, over episodes for the
random policy and a PPO teacher), on the same environment, episodes and seed as the set's own
evaluation. Two estimates are *separated* when their CIs do not overlap; the verdict line says, per
reference, whether the set is above it, below it, or not distinguishable from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from paper_code.core.dataset import DistilledDataset
from paper_code.core.evaluation import DatasetEvaluation, evaluate_dataset, first_episode_returns, mean_ci95
from paper_code.envs import make_env
from paper_code.project import project_root
from paper_code.pipeline.reference_policies import RandomPolicy, UniformPolicy

#: the random policy's own seed stream, apart from the learners' (the same episodes for every set of a task)
RANDOM_SEED_OFFSET = 7_919


@dataclass(frozen=True)
class Estimate:
    """A mean return with its 95% CI over ``n`` independent units (learners or episodes)."""

    mean: float
    low: float
    high: float
    n: int
    unit: str

    @classmethod
    def of(cls, values: torch.Tensor, unit: str, bounds: tuple[float | None, float | None] = (None, None)) -> "Estimate":
        """The mean and 95% CI of ``values`` (:func:`~paper_code.core.evaluation.mean_ci95`; within ``bounds``,
        the range one episode's return can take: :func:`~paper_code.envs.return_bounds`)."""
        mean, lo, hi = mean_ci95(values, bounds)
        return cls(mean, lo, hi, values.numel(), unit)

    @classmethod
    def of_evaluation(cls, ev: DatasetEvaluation) -> "Estimate":
        lo, hi = ev.ci95
        return cls(ev.mean, lo, hi, int(ev.returns.shape[0]), "learners")

    def compare(self, other: "Estimate") -> str:
        """'above', 'below' (CI-separated) or 'level' (the CIs overlap)."""
        return "above" if self.low > other.high else "below" if self.high < other.low else "level"

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "ci95": [self.low, self.high], "n": self.n, "unit": self.unit}

    def __str__(self) -> str:
        return f"{self.mean:.1f} [{self.low:.1f}, {self.high:.1f}]"


@torch.no_grad()
def random_policy(ds: DistilledDataset, *, episodes: int, seed: int) -> Estimate:
    """The uniformly random policy's return on the dataset's environment, ``episodes`` episodes."""
    env = make_env(ds.env_id, episodes, seed=seed + RANDOM_SEED_OFFSET, check_actions=False, **ds.env_kwargs)
    g = torch.Generator().manual_seed(seed + RANDOM_SEED_OFFSET)
    policy = UniformPolicy(env, g) if env.continuous else RandomPolicy(env.num_actions, g)
    returns, _ = first_episode_returns(env, policy, seed=seed + RANDOM_SEED_OFFSET)
    if hasattr(env, "close"):
        env.close()
    return Estimate.of(returns, "episodes", env.return_bounds)


def _candidates(path: str, near: str | Path | None) -> list[Path]:
    """A recorded file: as written (relative to where the command runs), then in the project folder
    that holds ``near`` (the dataset's file) or the current folder."""
    out = [Path(path)]
    for start in ([Path(near).resolve().parent] if near is not None else []) + [None]:
        try:
            out.append(project_root(start) / path)
        except ValueError:  # not inside a project
            pass
    return out


def teacher_of(ds: DistilledDataset, near: str | Path | None = None) -> tuple[str, str] | None:
    """``(kind, path)`` of the teacher a ``compress`` set (or a PPMO fine-tune of one) was fitted to,
    where its file is still there (``near``: the set's own file, whose project is searched too);
    None for a set without a teacher."""
    prov = ds.provenance
    if "teacher" not in prov:  # a fine-tune: its start is the fitted set
        start = (prov.get("config") or {}).get("init_dataset")
        if not start:
            return None
        found = next((p for p in _candidates(start, near) if p.is_file()), None)
        if found is None:
            return None
        prov = DistilledDataset.load(found).provenance
    path, kind = prov.get("teacher"), prov.get("teacher_kind")
    found = next((p for p in _candidates(path, near) if p.is_file()), None) if path else None
    return None if found is None else (str(kind), str(found))


def teacher_estimate(ds: DistilledDataset, *, learners: int, episodes: int, greedy: bool, seed: int,
                     device: str = "cpu", near: str | Path | None = None) -> tuple[Estimate, str] | None:
    """The teacher's return (a PPO policy: ``learners x episodes`` episodes; a dataset: its own
    one-step learners, as many as the set's) and its file; None where the set names none."""
    found = teacher_of(ds, near)
    if found is None:
        return None
    kind, path = found
    if kind == "dataset":
        ev = evaluate_dataset(DistilledDataset.load(path), learners=learners, episodes=episodes, greedy=greedy,
                              seed=seed, device=device)
        return Estimate.of_evaluation(ev), path
    from paper_code.core.ppo import evaluate_policy_file

    out = evaluate_policy_file(path, episodes=learners * episodes, seed=seed)
    mode = "greedy" if greedy else "sampled"
    return Estimate(out[f"{mode} mean"], out[f"{mode} CI low"], out[f"{mode} CI high"], learners * episodes,
                    "episodes"), path


def judge(ds: DistilledDataset, result: DatasetEvaluation, *, seed: int, steps: int = 1, device: str = "cpu",
          teacher: bool = True, near: str | Path | None = None) -> dict[str, Any]:
    """The set's evaluation ``result`` beside the random policy, its learners untrained and (where
    recorded, see :func:`teacher_of`) its teacher, on the same protocol; ``verdict`` is one line."""
    learners, episodes = (int(n) for n in result.returns.shape)
    own = Estimate.of_evaluation(result)
    refs: dict[str, Estimate] = {"random": random_policy(ds, episodes=learners * episodes, seed=seed)}
    refs["untrained"] = Estimate.of_evaluation(
        evaluate_dataset(ds, learners=learners, episodes=episodes, greedy=result.greedy, seed=seed, device=device,
                         steps=0))
    teacher_file = None
    if teacher:
        t = teacher_estimate(ds, learners=learners, episodes=episodes, greedy=result.greedy, seed=seed, device=device,
                             near=near)
        if t is not None:
            refs["teacher"], teacher_file = t
    return {"set": own, "references": refs, "teacher_file": teacher_file, "verdict": verdict(own, refs, steps=steps)}


#: how the verdict line names each reference
NAMES = {"random": "the random policy", "untrained": "the untrained learners", "teacher": "the teacher"}


def verdict(own: Estimate, refs: dict[str, Estimate], *, steps: int = 1) -> str:
    """One line: per reference, above / below / level (95% CIs), and the share of the teacher's
    margin over random the set reaches."""
    words = {"above": "above", "below": "BELOW", "level": "not distinguishable from"}
    parts = [f"{words[own.compare(r)]} {NAMES[name]} ({r})" for name, r in refs.items()]
    what = "the one-step learners" if steps == 1 else f"the {steps}-step learners"
    head = "verdict: " + ("NO BETTER THAN RANDOM: " if own.compare(refs["random"]) != "above" else "")
    line = f"{head}{what} ({own}) are " + ", ".join(parts)
    if "teacher" in refs and refs["teacher"].compare(refs["random"]) == "above":  # a margin worth sharing
        share = (own.mean - refs["random"].mean) / (refs["teacher"].mean - refs["random"].mean)
        line += f"; {100 * share:.0f}% of the teacher's margin over random"
    return line
