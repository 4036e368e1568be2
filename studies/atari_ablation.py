"""Why were the raw-pixel Atari datasets degenerate? Breakout l = 4, three runs evaluated alike.

1. raw pixels, CleanRL's entropy bonus (ent_coef 0.01): the first CPU-scale run (679 meta-epochs,
   kept in ``results/atari/ablation/raw_pixels``). Its one-step policy reached the uniform
   distribution (rollout entropy ln 4) within ~40 meta-epochs and stayed there with zero
   approximate KL: the one SGD step did nothing.
2. raw pixels, no entropy bonus: degenerate too (greedy 100% NOOP), so the bonus is not the cause.
3. per-pixel observation normalisation (notebook 03's paper-scale run; ``params.yaml``): a random
   encoder's features of raw frames barely vary with the state (the static background dominates),
   so a one-step learner's policy is the same in every state; normalised frames make the
   state-dependent part most of the features.

For each: rollout entropy and KL over the last 50 meta-epochs, the synthetic frames' feature size,
the inner lr, and 20 fresh learners x 1 episode (greedy action shares; sampled, greedy and
replayed returns: :func:`paper_code.pipeline.state_dependence.one_step_actions`) -> ``results/atari/ablation/ablation.{csv,md}``
and the per-meta-epoch curves ``curves.csv``. Runs 1 and 3 are the committed datasets (nothing to
train); run 2 resumes or trains (about an hour on a core; its dataset and checkpoint are not
committed, its log is).

    python studies/atari_ablation.py [--meta-epochs 700]  # -> results/atari/ablation/
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import pandas as pd
import torch

from paper_code.core.dataset import DistilledDataset
from paper_code.envs import action_names, return_bounds
from paper_code.pipeline.config import load_scale
from paper_code.project import project_root
from paper_code.pipeline.experiments import run_or_resume, scale_config, setting
from paper_code.pipeline.layout import dataset_path
from paper_code.pipeline.reporting import write_table
from paper_code.pipeline.state_dependence import one_step_actions, one_step_summary

GAME, SPLIT = "Breakout", 4
RAW_BUDGET = 679  # where the first raw-pixel run was stopped


def summary(name: str, cfg, ds: DistilledDataset, history: pd.DataFrame, learners: int, seed: int) -> dict:
    tail = history.tail(50)
    with torch.no_grad():
        feats = ds.features(ds.states)
    s = one_step_summary(one_step_actions(ds, learners=learners, seed=seed), action_names(GAME),
                         return_bounds(ds.env_id, ds.env_kwargs))
    s.pop("greedy shares")
    return {
        "variant": name, "pixels": "normalised" if cfg.normalize_obs else "raw", "ent_coef": cfg.ent_coef,
        "meta-epochs": int(history["meta_epoch"].iloc[-1]), "env steps": int(history["env_steps"].iloc[-1]),
        "rollout entropy (last 50)": float(tail["entropy"].mean()), "approx KL (last 50)": float(tail["approx_kl"].mean()),
        "|synthetic features|": float(feats.abs().mean()), "synthetic features > 0": float((feats > 0).float().mean()),
        "inner lr": float(ds.lr), **s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meta-epochs", type=int, default=700, help="budget of the raw-pixel run without entropy bonus")
    ap.add_argument("--learners", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    section = load_scale("paper")["atari"]
    results = project_root() / "results"
    out = results / "atari" / "ablation"
    out.mkdir(parents=True, exist_ok=True)

    runs = []
    raw = scale_config(f"atari-{GAME}-l{SPLIT}", section, normalize_obs=False, eval_every=50)  # as the raw-pixel runs were
    raw_path = out / "raw_pixels" / f"{GAME}_l{SPLIT}_b{raw.size}.safetensors"
    runs.append(("raw pixels, ent_coef 0.01 (first CPU-scale run)", raw, raw_path,
                 run_or_resume(raw, raw_path, RAW_BUDGET)))
    ent0 = replace(raw, ent_coef=0.0)
    ent0_path = out / f"{GAME}_l{SPLIT}_b{raw.size}_ent0.safetensors"
    runs.append(("raw pixels, no entropy bonus", ent0, ent0_path, run_or_resume(ent0, ent0_path, args.meta_epochs)))
    norm = scale_config(f"atari-{GAME}-l{SPLIT}", section)
    norm_path = dataset_path(results, f"atari-{GAME}-l{SPLIT}", norm.size)
    runs.append(("per-pixel normalisation (notebook 03)", norm, norm_path,
                 run_or_resume(norm, norm_path, int(setting(section, "meta_epochs", f"{GAME}-l{SPLIT}")))))

    table = pd.DataFrame([summary(name, cfg, DistilledDataset.load(path), pd.DataFrame(run.history), args.learners,
                                  seed=52_000) for name, cfg, path, run in runs])
    write_table(table, out / "ablation")
    curves = pd.concat([pd.DataFrame(run.history).assign(variant=name) for name, _, _, run in runs], ignore_index=True)
    curves[["variant", "meta_epoch", "env_steps", "train_return", "entropy", "approx_kl", "lr"]].to_csv(
        out / "curves.csv", index=False)
    print(table.round(4).T)


if __name__ == "__main__":
    main()
