"""Why PPMO alone leaves an Atari dataset where it started, and what moves it (issue 39).

The committed CPU-scale sets (1,000 meta-epochs, 1 update epoch, one Adam at 2.5e-4 with eps 1e-5 on
states, labels and the log inner lr) moved their states by under 1% of their initial RMS and their lr
by about 1%, while the encoder moved by 15-30% (``analysis.dataset_movement``). The measurement here:
the gradient each group of the dataset receives (Adam's second moment, sqrt(v), after the run) against
Adam's epsilon. A per-pixel gradient far below eps makes Adam's step eps-bound, a small fraction of the
step size; the states then barely move whatever the step size. The variants, each trained from scratch
on today's environment with the same budget and seed, then evaluated alike (``--learners`` fresh
learners x 1 episode: sampled, greedy, replayed; seed 57000):

1. ``preset``: the Atari preset as it is;
2. ``own steps``: the dataset's Adam epsilon 1e-10 and step sizes of their own, 1e-2 for the states,
   the labels and the log inner lr (``PPMOConfig.dataset_adam_eps``, ``states_lr``, ``labels_lr``,
   ``inner_lr_lr``; the encoder keeps ``dataset_lr``).

    python studies/atari_dataset_optimizer.py [--game Pong] [--split 4] [--meta-epochs 300] [--learners 20]
    # stage study-atari-dataset-optimizer@<game>: Pong, SpaceInvaders, MsPacman at l = 4
    # -> results/atari/optimizer_study/{table.csv,table.md,curves.csv} (+ each run's dataset and log)
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from paper_code.core.dataset import DistilledDataset
from paper_code.envs import action_names, return_bounds
from paper_code.pipeline.config import load_scale
from paper_code.project import project_root
from paper_code.pipeline.experiments import run_or_resume, scale_config
from paper_code.pipeline.reporting import write_table
from paper_code.pipeline.state_dependence import one_step_actions, one_step_summary

VARIANTS = {
    "preset": {},
    "own steps": {"dataset_adam_eps": 1e-10, "states_lr": 1e-2, "labels_lr": 1e-2, "inner_lr_lr": 1e-2},
}
SEED = 57_000


def gradient_scale(run) -> dict[str, float]:
    """sqrt of Adam's bias-corrected second moment, averaged over each group's elements (the
    typical gradient size it has seen), for the states, the labels, the log lr and the encoder."""
    if not hasattr(run, "data_opt"):  # a finished run read from its files: no optimiser state
        return {}
    named = {"states": [run.states], "labels": [run.labels], "log lr": [run.log_lr], "encoder": list(run.encoder.values())}
    out = {}
    for name, params in named.items():
        vals = []
        for p in params:
            st = run.data_opt.state.get(p)
            if st:
                v = st["exp_avg_sq"] / (1 - 0.999 ** float(st["step"]))
                vals.append(v.sqrt().flatten())
        if vals:
            out[f"grad rms {name}"] = float(torch.cat(vals).mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", default="Pong")
    ap.add_argument("--split", type=int, default=4)
    ap.add_argument("--meta-epochs", type=int, default=300)
    ap.add_argument("--learners", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    section = load_scale("paper")["atari"]
    out = project_root() / "results" / "atari" / "optimizer_study"
    out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], []
    for name, overrides in VARIANTS.items():
        cfg = scale_config(f"atari-{args.game}-l{args.split}", section, **overrides)
        path = out / f"{args.game}_l{args.split}_b{cfg.size}_{name.replace(' ', '_')}.safetensors"
        run = run_or_resume(cfg, path, args.meta_epochs)
        ds = DistilledDataset.load(path)
        s = one_step_summary(one_step_actions(ds, learners=args.learners, seed=SEED), action_names(args.game),
                             return_bounds(ds.env_id, ds.env_kwargs))
        s.pop("greedy shares")
        rows.append({"game": args.game, "l": args.split, "variant": name, "meta-epochs": run.meta_epoch,
                     "env steps": run.env_steps, "wall time s": run.wall_time, "adam eps": cfg.dataset_adam_eps or cfg.adam_eps,
                     "states lr": cfg.states_lr or cfg.dataset_lr, "labels lr": cfg.labels_lr or cfg.dataset_lr,
                     "inner lr lr": cfg.inner_lr_lr or cfg.dataset_lr, "final inner lr": float(ds.lr),
                     **{f"moved {k}": v for k, v in ds.provenance.get("movement", {}).items()},
                     **gradient_scale(run), "learners x episodes": f"{args.learners} x 1", **s})
        curves.append(pd.DataFrame(run.evals).assign(variant=name, game=args.game, l=args.split))
    table = pd.DataFrame(rows)
    write_table(table, out / f"table_{args.game}_l{args.split}", floatfmt=".4g")
    pd.concat(curves, ignore_index=True).to_csv(out / f"curves_{args.game}_l{args.split}.csv", index=False)
    print(table.T.to_string())


if __name__ == "__main__":
    main()
