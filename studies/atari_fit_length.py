"""Are the Atari fits below the top of the encoder too short? (issue 39)

Notebook 03 fits every (game, l) with 800 Adam steps (params.yaml ``atari.compression.steps``). At l = 4
the fits' KL to the teacher levels off (Centipede 0.26 -> 0.015, greedy agreement 0.85); at l <= 3 it is
still falling at step 800 (Centipede l = 3: 0.19 at steps 350-450, 0.145 over the last 100) and the
one-step learners come out near-constant (Centipede l = 3..0: greedy actions 93-100% one action, sampled
not separated from their own actions replayed state-blind). This study continues the same fit (same
settings and seed, so its first 800 steps are notebook 03's fit) to ``--steps`` and evaluates it on the
protocol and seed notebook 03 used for that fit (the same learners x 1 episode: greedy,
sampled, replayed), against the same baselines (notebook 03's random and constant-action episodes) and
issue 39's test (:func:`~paper_code.pipeline.state_dependence.teacher_bar`, with the teacher's sampled
return from notebook 03).

    python studies/atari_fit_length.py --game Centipede --split 3 [--steps 3000 [6000 ...]]
    # stage study-atari-fit-length@<game>-<l>
    # -> results/atari/fit_length/table_<game>_l<l>.{csv,md}, fit_<game>_l<l>.{png,pdf}
    #    (+ the fits and their logs; their evaluations in results/evaluations/)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from paper_code.core.dataset import DistilledDataset
from paper_code.envs import action_names
from paper_code.pipeline.config import load_scale
from paper_code.pipeline.experiments import atari_fit_config, run_compression
from paper_code.pipeline.layout import atari_teacher_path
from paper_code.pipeline.plans import atari_plan
from paper_code.pipeline.reporting import save_figure, write_table
from paper_code.pipeline.state_dependence import atari_row, teacher_bar
from paper_code.pipeline.store import EvaluationStore
from paper_code.project import project_root, relative
from paper_code.runs.lifecycle import checkpoint_path, log_path


def history(path: Path) -> list[dict[str, float]]:
    """A fit's KL, greedy agreement and lr per Adam step (its JSON log)."""
    return json.loads(log_path(path).read_text())["history"]


def fit_summary(path: Path, hist: list[dict[str, float]]) -> dict[str, Any]:
    """The fit's length, its KL and greedy agreement with the teacher over its last 100 steps, its wall time
    and its file."""
    tail = hist[-100:]
    return {"fit steps": len(hist), "KL last 100": float(np.mean([r["kl"] for r in tail])),
            "agreement last 100": float(np.mean([r["agreement"] for r in tail])),
            "fit wall time s": hist[-1]["wall_time_s"], "dataset": relative(path)}


def plot_fit(hist: list[dict[str, float]], stop: int, title: str, path) -> None:
    """The fit's KL to the teacher and its greedy agreement per Adam step (rolling mean over 50 steps),
    with the step where notebook 03's fit stops."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.DataFrame(hist).set_index("step")[["kl", "agreement"]].rolling(50, min_periods=1).mean()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    for ax, col, label in zip(axes, ("kl", "agreement"), ("KL(teacher || one-step learner)", "greedy agreement with the teacher")):
        ax.plot(df.index, df[col], color="C0")
        ax.axvline(stop, color="0.4", ls="--", lw=1, label=f"notebook 03 stops ({stop} steps)")
        ax.set_xlabel("Adam step of the fit")
        ax.set_ylabel("mean of 50 steps")
        ax.set_title(label, fontsize=11)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].legend(frameon=False)
    fig.suptitle(title, fontsize=12)
    save_figure(fig, path)
    plt.close(fig)


def continue_from(shorter: Path, path: Path) -> None:
    """Start the fit at ``path`` from the shorter fit's checkpoint (the fit's settings, its steps aside, are
    the same: the longer fit continues the shorter one, as one run to the longer length would)."""
    if path.exists() or not checkpoint_path(shorter).is_file():
        return  # already started (or finished), or nothing to continue: a run from step 0
    # the dataset last: a copy interrupted before it leaves no dataset, and the next call copies again
    for src, dst in ((checkpoint_path(shorter), checkpoint_path(path)), (log_path(shorter), log_path(path)), (shorter, path)):
        shutil.copyfile(src, dst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", default="Centipede")
    ap.add_argument("--split", type=int, default=3)
    ap.add_argument("--steps", type=int, nargs="+", default=[3000],
                    help="fit lengths; each longer one continues the shorter one's checkpoint")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = project_root() / "results"
    section = load_scale("paper")["atari"]
    out = root / "atari" / "fit_length"
    out.mkdir(parents=True, exist_ok=True)

    # notebook 03's fit of this (game, l), its evaluation (read from the notebook's store) and its seed
    planned = next((p for p in atari_plan(section, root) if p.what == "fit" and (p.game, p.split) == (args.game, args.split)),
                   None)
    if planned is None:
        raise SystemExit(f"error: notebook 03 fits no {args.game} at l = {args.split} (params.yaml atari.compression.runs)")
    learners = planned.count  # notebook 03's protocol for this fit (params.yaml atari.learners)
    store = EvaluationStore(root)  # the project's store: every table names its evaluation there
    short_actions, short_entry = planned.measure(store)
    short_hist = history(planned.path)
    n = len(short_hist)
    if any(s <= n for s in args.steps):
        raise SystemExit(f"error: --steps {' '.join(map(str, args.steps))}: each must be above notebook 03's {n}")
    fits = [(f"fit, {n} steps (notebook 03)", planned.path, short_hist, short_actions, short_entry)]
    shorter = None
    for steps in sorted(args.steps):
        cfg = dataclasses.replace(atari_fit_config(args.game, args.split, section), steps=steps)
        path = out / f"{args.game}_l{args.split}_b{cfg.size}_s{steps}.safetensors"
        if shorter is not None:
            continue_from(shorter, path)
        run_compression(atari_teacher_path(root, args.game), path, cfg)
        actions, entry = store.one_step_actions(path, learners=learners, seed=planned.seed)
        fits.append((f"fit, {steps} steps", path, history(path), actions, entry))
        shorter = path
    longest = fits[-1][2]
    # the same fit: its first steps are notebook 03's (same settings and seed)
    same = float(np.max(np.abs(np.array([r["kl"] for r in short_hist]) - np.array([r["kl"] for r in longest[:n]]))))

    baselines = pd.read_csv(root / "atari" / "report" / "constant_actions.csv")
    base = baselines[baselines.game == args.game]
    teachers = pd.read_csv(root / "atari" / "report" / "teachers.csv").set_index("game")
    teacher = float(teachers.loc[args.game, "sampled mean"])
    rows = []
    for label, p, hist, actions, entry in fits:
        row, _ = atari_row(DistilledDataset.load(p), learners=learners, seed=planned.seed, names=action_names(args.game),
                           baselines=base, actions=actions)
        r = {"game": args.game, "l": args.split, "method": label, "learners x episodes": f"{learners} x 1",
             **fit_summary(p, hist), **row, "evaluation": entry, "teacher sampled": teacher}
        verdict = teacher_bar([r], teacher)
        rows.append({**r, "test": verdict["rule"], "test met": verdict["met"], "test margin": verdict["margin"]})
    rows[-1]["first steps' KL max abs diff from notebook 03's fit"] = same
    size = atari_fit_config(args.game, args.split, section).size
    plot_fit(longest, n, f"{args.game}, l = {args.split}, B = {size}: the fit continued to {len(longest)} steps",
             out / f"fit_{args.game}_l{args.split}.png")
    table = pd.DataFrame(rows)
    write_table(table, out / f"table_{args.game}_l{args.split}", floatfmt=".4g")
    print(table.T.to_string())


if __name__ == "__main__":
    main()
