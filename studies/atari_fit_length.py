"""Are the Atari fits below the top of the encoder too short? (issue 39)

Notebook 03 fits every (game, l) with 800 Adam steps (params.yaml ``atari.compression.steps``). At l = 4
the fits' KL to the teacher levels off (Centipede 0.26 -> 0.015, greedy agreement 0.85); at l <= 3 it is
still falling at step 800 (Centipede l = 3: 0.19 at steps 350-450, 0.145 over the last 100) and the
one-step learners come out near-constant (Centipede l = 3..0: greedy actions 93-100% one action, sampled
not separated from their own actions replayed state-blind). This study continues the same fit (same
settings and seed, so its first 800 steps are notebook 03's fit) to ``--steps`` and evaluates it on the
protocol and seed notebook 03 used for that fit (``--learners`` fresh learners x 1 episode: greedy,
sampled, replayed), against the same baselines (notebook 03's random and constant-action episodes) and
issue 39's test (:func:`~paper_code.pipeline.state_dependence.teacher_bar`, with the teacher's sampled
return from notebook 03).

    python studies/atari_fit_length.py --game Centipede --split 3 [--steps 3000] [--learners 50]
    # stage study-atari-fit-length@<game>-<l>
    # -> results/atari/fit_length/table_<game>_l<l>.{csv,md}, fit_<game>_l<l>.{png,pdf}
    #    (+ the fit, its log and its evaluation)
"""

from __future__ import annotations

import argparse
import dataclasses
import json

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


def history(path) -> list[dict[str, float]]:
    return json.loads(path.with_name(path.name + ".log.json").read_text())["history"]


def fit_summary(path, hist: list[dict[str, float]]) -> dict[str, float]:
    """The fit's last-100-step KL and greedy agreement with the teacher, and its final inner lr."""
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", default="Centipede")
    ap.add_argument("--split", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--learners", type=int, default=None, help="(default: notebook 03's, params.yaml atari.learners)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = project_root() / "results"
    section = load_scale("paper")["atari"]
    out = root / "atari" / "fit_length"
    out.mkdir(parents=True, exist_ok=True)

    # notebook 03's fit of this (game, l), its evaluation (read from the notebook's store) and its seed
    planned = next(p for p in atari_plan(section, root) if p.what == "fit" and (p.game, p.split) == (args.game, args.split))
    learners = args.learners or planned.count
    short_actions, short_entry = planned.measure(EvaluationStore(root))
    if learners != planned.count:
        raise SystemExit(f"error: --learners {learners}: notebook 03 evaluated its fit with {planned.count}")

    cfg = dataclasses.replace(atari_fit_config(args.game, args.split, section), steps=args.steps)
    path = out / f"{args.game}_l{args.split}_b{cfg.size}_s{args.steps}.safetensors"
    run_compression(atari_teacher_path(root, args.game), path, cfg)
    long_actions, long_entry = EvaluationStore(out).one_step_actions(path, learners=learners, seed=planned.seed)

    # the same fit: its first steps are notebook 03's (same settings and seed)
    short_hist, long_hist = history(planned.path), history(path)
    n = len(short_hist)
    same = float(np.max(np.abs(np.array([r["kl"] for r in short_hist]) - np.array([r["kl"] for r in long_hist[:n]]))))

    baselines = pd.read_csv(root / "atari" / "report" / "constant_actions.csv")
    base = baselines[baselines.game == args.game]
    teachers = pd.read_csv(root / "atari" / "report" / "teachers.csv").set_index("game")
    rows = []
    for label, p, hist, actions, entry in ((f"fit, {n} steps (notebook 03)", planned.path, short_hist, short_actions, short_entry),
                                           (f"fit, {args.steps} steps", path, long_hist, long_actions, long_entry)):
        row, shares = atari_row(DistilledDataset.load(p), learners=learners, seed=planned.seed, names=action_names(args.game),
                                baselines=base, actions=actions)
        rows.append({"game": args.game, "l": args.split, "method": label, "learners x episodes": f"{learners} x 1",
                     **fit_summary(p, hist), **row, "evaluation": entry})
    teacher = float(teachers.loc[args.game, "sampled mean"])
    for r in rows:
        verdict = teacher_bar([r], teacher)
        r.update({"teacher sampled": teacher, "test": verdict["rule"], "test met": verdict["met"], "test margin": verdict["margin"]})
    rows[1]["first steps' KL max abs diff from notebook 03's fit"] = same
    plot_fit(long_hist, n, f"{args.game}, l = {args.split}, B = {cfg.size}: the fit continued to {args.steps} steps",
             out / f"fit_{args.game}_l{args.split}.png")
    table = pd.DataFrame(rows)
    write_table(table, out / f"table_{args.game}_l{args.split}", floatfmt=".4g")
    print(table.T.to_string())


if __name__ == "__main__":
    main()
