"""Centipede below the top of the encoder, evaluated with 200 learners: do the sets use the state? (issue 39)

Issue 39's Centipede test (the teacher itself, 3,242.4, is below the best constant action): the best set's
sampled one-step mean at least 80% of the teacher's and its 95% CI lower end above the same learners' own
actions replayed state-blind. Notebook 03 and the fit-length study evaluate with 50 learners x 1 episode.
There a Centipede episode's return has a std of ~1,600 and the replayed control of one set moves by ~900
between fits (2,738.9 - 3,623.1 at l = 3): the teacher itself is only 934.2 above its own replay (2.9 s.e.
with 50 episodes, results/atari/checks/), so a set carrying most of the teacher's state dependence is
detected about half the time. This study repeats the measurement with 4x the learners.

The plan, fixed before any of its evaluations ran:

* sets, per l = 3, 2, 1, 0: notebook 03's fit (800 Adam steps) and the fit-length study's continuations
  (3,000 and 6,000 steps at l = 3 and 2, 3,000 at l = 1 and 0), all already committed; nothing is refitted;
* 200 fresh learners x 1 episode per set (greedy, sampled, replayed; notebook 03's settings: sticky actions,
  3,000 agent steps at most), on a seed no earlier evaluation used (``protocol_seed("atari_power", l)``: the
  same learner inits and resets for every set of an l);
* the test per set: issue 39's Centipede rule (:func:`~paper_code.pipeline.state_dependence.teacher_bar`)
  against notebook 03's teacher return; an l counts as passing only if its **primary** set passes: the longest
  fit (the lowest KL to the teacher, chosen by the fit, not by any return). The other sets are reported, not
  used to pass. Each set is evaluated once; the 50-learner results stay in the table beside the new ones.

    python studies/atari_power.py --game Centipede --split 3 [--learners 200]
    # stage study-atari-power@<game>-<l>
    # -> results/atari/power/table_<game>_l<l>.{csv,md}, power_<game>_l<l>.{png,pdf}
    #    (the evaluations in results/evaluations/)
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd
import torch

from paper_code.core.dataset import DistilledDataset
from paper_code.envs import action_names
from paper_code.pipeline.config import load_scale
from paper_code.pipeline.plans import atari_plan
from paper_code.pipeline.protocol import protocol_seed
from paper_code.pipeline.reporting import save_figure, write_table
from paper_code.pipeline.state_dependence import atari_row, teacher_bar
from paper_code.pipeline.store import EvaluationStore
from paper_code.project import project_root, relative


def fit_steps(path: Path) -> int:
    """The Adam steps of a fit-length study's set (its file name ``<game>_l<l>_b<B>_s<steps>``)."""
    return int(re.search(r"_s(\d+)\.safetensors$", path.name).group(1))


def plot(table: pd.DataFrame, counts: tuple[int, int], title: str, path: Path) -> None:
    """Sampled mean (95% CI) and the replayed control per set, the earlier and this study's learner counts side
    by side, with 80% of the teacher."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4), constrained_layout=True)
    sets = list(dict.fromkeys(table["set"]))
    for j, (n, marker) in enumerate(zip(counts, ("o", "s"))):
        sub = table[table["learners"] == n].set_index("set").loc[sets]
        x = [i + (j - 0.5) * 0.3 for i in range(len(sets))]
        ax.errorbar(x, sub["sampled mean"], yerr=[sub["sampled mean"] - sub["sampled CI low"],
                                                   sub["sampled CI high"] - sub["sampled mean"]],
                    fmt=marker, color=f"C{j}", capsize=3, label=f"sampled, {n} learners (95% CI)")
        ax.scatter(x, sub["replayed mean"], marker="x", color=f"C{j}", s=50, label=f"replayed, {n} learners")
    teacher = float(table["teacher sampled"].iloc[0])
    ax.axhline(0.8 * teacher, color="0.3", ls="--", lw=1, label=f"80% of the teacher ({0.8 * teacher:,.0f})")
    ax.set_xticks(range(len(sets)))
    ax.set_xticklabels(sets)
    ax.set_ylabel("return (1 episode per learner)")
    ax.xaxis.grid(False)
    ax.yaxis.grid(True, alpha=0.3)
    ax.legend(frameon=False, fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_title(title, fontsize=11)
    save_figure(fig, path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", default="Centipede")
    ap.add_argument("--split", type=int, default=3)
    ap.add_argument("--learners", type=int, default=200, help="fresh learners x 1 episode per set (default 200)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = project_root() / "results"
    section = load_scale("paper")["atari"]
    planned = next((p for p in atari_plan(section, root) if p.what == "fit" and (p.game, p.split) == (args.game, args.split)),
                   None)
    if planned is None:
        raise SystemExit(f"error: notebook 03 fits no {args.game} at l = {args.split} (params.yaml atari.compression.runs)")
    longer = sorted((root / "atari" / "fit_length").glob(f"{args.game}_l{args.split}_b*_s*.safetensors"), key=fit_steps)
    if not longer:
        raise SystemExit(f"error: no fit-length study sets for {args.game} l = {args.split} in results/atari/fit_length/")
    sets = [(f"{DistilledDataset.load(planned.path).provenance['steps']} steps (nb 03)", planned.path, planned.seed)]
    # the 50-learner evaluations: notebook 03's seed for its fit, and the fit-length study used the same
    sets += [(f"{fit_steps(p)} steps", p, planned.seed) for p in longer]
    primary = sets[-1][0]

    store = EvaluationStore(root)  # the project's store: every table names its evaluation there
    base = pd.read_csv(root / "atari" / "report" / "constant_actions.csv")
    base = base[base.game == args.game]
    teacher = float(pd.read_csv(root / "atari" / "report" / "teachers.csv").set_index("game").loc[args.game, "sampled mean"])
    names = action_names(args.game)
    seed = protocol_seed("atari_power", args.split)
    rows = []
    for n, which in ((planned.count, "earlier"), (args.learners, "this study")):
        for label, path, old_seed in sets:
            s = old_seed if which == "earlier" else seed
            actions, entry = store.one_step_actions(path, learners=n, seed=s)
            row, _ = atari_row(DistilledDataset.load(path), learners=n, seed=s, names=names, baselines=base, actions=actions)
            r = {"game": args.game, "l": args.split, "set": label, "method": f"fit, {label}", "primary": label == primary, "learners": n,
                 "learners x episodes": f"{n} x 1", "seed": s, "evaluated by": which, "dataset": relative(path),
                 **row, "evaluation": entry, "teacher sampled": teacher}
            verdict = teacher_bar([r], teacher)
            rows.append({**r, "test met": verdict["met"], "test margin": verdict["margin"]})
            print(f"{label}, {n} learners: sampled {r['sampled mean']:.1f} [{r['sampled CI low']:.1f}, "
                  f"{r['sampled CI high']:.1f}], replayed {r['replayed mean']:.1f}: test {'met' if verdict['met'] else 'missed'} "
                  f"({verdict['margin']:+.1f})", flush=True)
    table = pd.DataFrame(rows)
    out = root / "atari" / "power"
    write_table(table, out / f"table_{args.game}_l{args.split}", floatfmt=".4g")
    plot(table, (planned.count, args.learners), f"{args.game}, l = {args.split}: the sets at 50 and {args.learners} learners (primary: the {primary} fit)",
         out / f"power_{args.game}_l{args.split}.png")


if __name__ == "__main__":
    main()
