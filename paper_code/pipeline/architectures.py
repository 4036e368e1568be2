"""Learner architectures that differ from the one used during distillation (notebook 04).

Each family changes one thing of the paper's learner (MLP obs -> 64 -> 64 -> A, tanh, orthogonal
init with gain sqrt(2) on hidden layers and 0.01 on the output layer): initialisation, hidden width,
depth (number of hidden layers, each followed by the activation) or activation.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from paper_code.core.learners import PAPER_LEARNER, LearnerSpec

if TYPE_CHECKING:
    from paper_code.pipeline.store import EvaluationStore


def variants(base: LearnerSpec = PAPER_LEARNER) -> dict[tuple[str, str], LearnerSpec]:
    """``{(family, variant name): spec}``; the base learner appears once in every family."""
    out: dict[tuple[str, str], LearnerSpec] = {}
    out[("init", "orthogonal √2 (training)")] = base
    out[("init", "orthogonal 1")] = replace(base, hidden_gain=1.0, output_gain=1.0)
    out[("init", "xavier normal")] = replace(base, init="xavier_normal")
    out[("init", "pytorch default")] = replace(base, init="torch_default")
    for w in (16, 32, 64, 128, 256):
        out[("width", f"{w}")] = replace(base, hidden=(w,) * len(base.hidden))
    for d in range(0, 5):
        out[("depth", f"{d} hidden")] = replace(base, hidden=(base.hidden[0],) * d)
    for a in ("tanh", "relu", "gelu"):
        out[("activation", a)] = replace(base, activation=a)
    return out


def evaluate_architectures(path: str | Path, specs: dict[tuple[str, str], LearnerSpec], *, learners: int,
                           episodes: int, seed: int, store: EvaluationStore) -> pd.DataFrame:
    """One-step returns (sampled and greedy) of every architecture in ``specs`` on the dataset file
    ``path``, each read from ``store`` or measured into it (a variant and seed that two tables show is
    one evaluation)."""
    rows = []
    for (family, name), spec in specs.items():
        row = {"family": family, "variant": name, "learner": spec.to_json(), "learners x episodes": f"{learners} x {episodes}"}
        for greedy in (False, True):
            r, entry = store.dataset_returns(path, learners=learners, episodes=episodes, greedy=greedy, seed=seed,
                                             learner=spec)
            key = "greedy" if greedy else "sampled"
            row[f"{key} mean"], row[f"{key} std"] = r.mean, r.std
            row[f"{key} CI low"], row[f"{key} CI high"] = r.ci95  # over learners, within the task's returns
            row["evaluation" if key == "sampled" else "greedy evaluation"] = entry
        rows.append(row)
    return pd.DataFrame(rows)


#: variants a learner-pool distillation trains with (notebook 04, beyond the paper) ...
POOL = ("orthogonal √2 (training)", "xavier normal", "32", "128", "1 hidden", "3 hidden", "relu")
#: ... and the held-out variants both kinds of dataset are tested on
HELD_OUT = ("orthogonal 1", "pytorch default", "16", "256", "0 hidden", "4 hidden", "gelu")


def named(names: tuple[str, ...]) -> dict[tuple[str, str], LearnerSpec]:
    """The variants with these names (names are unique across families)."""
    every = variants()
    picked = {key: spec for key, spec in every.items() if key[1] in names}
    missing = set(names) - {key[1] for key in picked}
    if missing:
        raise ValueError(f"unknown variant(s): {', '.join(sorted(missing))}")
    return dict(sorted(picked.items(), key=lambda kv: names.index(kv[0][1])))


def pool_dataset_path(out_root: Path, dof: int, size: int) -> Path:
    """Where the learner-pool distillation of N-D cart-pole is written."""
    return Path(out_root) / "cartpole" / "datasets" / f"nd{dof}_b{size}_pool.safetensors"
