"""The notebooks' evaluation protocol: one seed per (measurement, index), and the paper's targets.

Every evaluation in the pipeline draws its learner inits, actions and environment resets from
``protocol_seed(measurement, i)``, so a table is the same each time it is computed and no two
measurements share random numbers. The authors' published datasets are evaluated with the same
seed as ours in the same measurement: the same learner-init stream and environment resets.
Headline numbers come from at least 100 fresh learners (``params.yaml``, paper scale) and are
reported with their 95% confidence interval over learners (:func:`ci_text`). The targets are the paper's numbers that the notebooks compare
against (a reference to beat, not a result of this code).
"""

from __future__ import annotations

import pandas as pd

#: the bar a cart-pole dataset must clear to count as solving the task (gymnasium's CartPole-v1
#: reward_threshold): a "minimal size reached" claim needs the lower end of the 95% CI to clear it
SOLVED_RETURN = 475.0

#: the first seed of each measurement; measurement i (an N, a task's index, ...) uses base + i
SEED_BASES = {
    "table1": 10_000,  # cart-pole one-step learners of any dataset of N (i = N): notebooks 01 and 05 and the k-shot
    # study share it, so a dataset both show is one evaluation (notebook 05 once used its own "minimal" and "kshot" bases)
    "ppo_cartpole": 20_000,  # notebook 01: plain PPO's final policy (i = N)
    "mujoco": 40_000,  # notebook 02: one-step learners (i = the task's index)
    "mujoco_reference": 41_000,  # notebook 02: random policy and zero action (i = the task's index)
    "ppo_mujoco": 42_000,  # notebook 02: plain PPO's final policy (i = the task's index)
    "architectures": 50_000,  # notebook 04: learner variants on a dataset of N, heatmap and pool comparison alike (i = N)
    "atari_reference": 50_000,  # notebook 03: constant actions and the random policy (i = the game's index)
    "atari": 51_000,  # notebook 03: one-step learners and their replayed actions (i = the game's index)
    "atari_authors": 54_000,  # notebook 03: one-step learners of the authors' datasets (i = the dataset's index)
    "atari_authors_reference": 55_000,  # notebook 03: constant actions and random under the authors' settings
    "atari_teacher": 56_000,  # notebook 03: the PPO teacher's own episodes (i = the game's index)
    "atari_power": 58_000,  # studies/atari_power.py: the larger evaluation of Centipede's sets below l = 4 (i = l)
    "logit_map": 61_000,  # notebook 05: real states the logit maps are read on (i = N)
}


def protocol_seed(measurement: str, i: int) -> int:
    """The seed of measurement ``measurement`` for index ``i`` (see :data:`SEED_BASES`)."""
    if measurement not in SEED_BASES:
        raise ValueError(f"unknown measurement {measurement!r} (known: {', '.join(SEED_BASES)})")
    return SEED_BASES[measurement] + int(i)


#: Table 1 of the paper as reported: the sampled one-step return of each N's 512-instance dataset
#: (shown beside ours; the targets below are computed by the pipeline instead)
PAPER_TABLE1 = {1: 500.0, 2: 344.0, 3: 252.0, 4: 127.0, 5: 86.0}
#: the greedy one-step return the project asks of N <= 3
GREEDY_TARGETS = {1: 475.0, 2: 475.0, 3: 475.0}


def table1_targets(table1: pd.DataFrame, authors: pd.DataFrame) -> pd.DataFrame:
    """Table 1 (columns N, sampled mean, greedy mean) against its targets: a sampled return at least
    the authors' published B = 512 dataset's under the same protocol (``authors``: columns N,
    sampled mean, computed by the notebook) and :data:`GREEDY_TARGETS`; the differences and ``met``.

    Where both tables have 95% CIs (``sampled CI low`` / ``high``), the sampled target counts as met unless
    ours is *below* the authors' beyond noise (our CI's upper end under theirs' lower end): two
    evaluations of sets at the 500 cap differ by a few ended episodes, which is no miss."""
    targets = pd.DataFrame([{"N": n, "target sampled": float(s), "target greedy": GREEDY_TARGETS.get(n, float("nan"))}
                            for n, s in zip(authors["N"], authors["sampled mean"])])
    with_ci = "sampled CI high" in table1.columns and "sampled CI low" in authors.columns
    cols = ["N", "sampled mean", "greedy mean"] + (["sampled CI high"] if with_ci else [])
    check = table1[cols].merge(targets, on="N")
    check["sampled - target"] = check["sampled mean"] - check["target sampled"]
    check["greedy - target"] = check["greedy mean"] - check["target greedy"]
    if with_ci:
        low = dict(zip(authors["N"], authors["sampled CI low"]))
        check["target CI low"] = check["N"].map(low)
        sampled_met = check["sampled CI high"] >= check["target CI low"]
    else:
        sampled_met = check["sampled - target"] >= 0
    check["met"] = sampled_met & ~(check["greedy - target"] < 0)
    return check


#: MuJoCo returns the issue that specified notebook 02 asked for
MUJOCO_TARGETS = {"InvertedPendulum-v5": 1000.0, "InvertedDoublePendulum-v5": 9000.0, "Hopper-v5": 1000.0}


def ci_text(mean: float, low: float, high: float) -> str:
    """A mean with its 95% CI, as the tables print it: ``498.5 [497.9, 499.1]``."""
    return f"{mean:.1f} [{low:.1f}, {high:.1f}]"
