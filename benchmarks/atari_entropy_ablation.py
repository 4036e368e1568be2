"""Is the entropy bonus why the CPU-scale Atari datasets are degenerate? Breakout l = 4 with
CleanRL's Atari bonus (ent_coef 0.01, the committed paper-scale run) against no bonus, everything
else as the paper scale's ``atari`` section.

With the bonus, the committed run's one-step policy reached the uniform distribution (rollout
entropy ln 4) within ~40 meta-epochs and stayed there with zero approximate KL per update: the
one SGD step did nothing (the synthetic frames' encoder features had shrunk, most ReLUs dead).
This script distils the same (game, l) without the bonus (resumable; a finished run costs
nothing) and compares both datasets: rollout entropy and KL over the last 50 meta-epochs, the
synthetic frames' feature size, the learned inner lr, and 20 fresh learners x 1 episode (greedy
action shares, sampled and greedy returns) -> ``results/atari/ablation/entropy.{csv,md}`` and the
per-meta-epoch curves ``entropy_curves.csv``. The ablation's dataset (7 MB) and
checkpoint (42 MB) are not committed, its log is.

    python benchmarks/atari_entropy_ablation.py [--meta-epochs 1000]  # -> results/atari/ablation/
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

from paper_code.atari import action_names, atari_config, atari_dataset_path, one_step_actions
from paper_code.config import load_scale, repo_root
from paper_code.dataset import DistilledDataset
from paper_code.experiment import run_or_resume
from paper_code.reporting import write_table

GAME, SPLIT = "Breakout", 4


def summary(name: str, ent_coef: float, ds: DistilledDataset, history: pd.DataFrame, learners: int, seed: int) -> dict:
    tail = history.tail(50)
    with torch.no_grad():
        feats = ds.features(ds.states)
    ev = one_step_actions(ds, learners=learners, seed=seed)
    counts = np.sum(list(ev[ev["mode"] == "greedy"]["action_counts"]), axis=0)
    share = counts / max(counts.sum(), 1)
    names = action_names(GAME)
    sampled = ev[ev["mode"] == "sampled"]["return"]
    return {
        "variant": name, "ent_coef": ent_coef, "meta-epochs": int(history["meta_epoch"].iloc[-1]),
        "env steps": int(history["env_steps"].iloc[-1]),
        "rollout entropy (last 50)": float(tail["entropy"].mean()), "approx KL (last 50)": float(tail["approx_kl"].mean()),
        "|synthetic features|": float(feats.abs().mean()), "synthetic features > 0": float((feats > 0).float().mean()),
        "inner lr": float(ds.lr), "sampled mean": float(sampled.mean()), "sampled std": float(sampled.std()),
        "greedy mean": float(ev[ev["mode"] == "greedy"]["return"].mean()),
        "top greedy action": names[int(np.argmax(share))], "top action share": float(share.max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meta-epochs", type=int, default=1000)
    ap.add_argument("--learners", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    section = load_scale("paper")["atari"]
    results = repo_root() / "results"
    out = results / "atari" / "ablation"
    out.mkdir(parents=True, exist_ok=True)

    base_cfg = atari_config(section, GAME, SPLIT)
    base_budget = section["meta_epochs"][SPLIT] if isinstance(section["meta_epochs"], dict) else section["meta_epochs"]
    base_path = atari_dataset_path(results, GAME, SPLIT, base_cfg.size)
    base = run_or_resume(base_cfg, base_path, int(base_budget))  # the committed run: nothing to train
    cfg = atari_config(section, GAME, SPLIT, ent_coef=0.0)
    path = out / f"{GAME}_l{SPLIT}_b{cfg.size}_ent0.safetensors"
    run = run_or_resume(cfg, path, args.meta_epochs)

    rows = [summary("paper scale (ent_coef 0.01)", base_cfg.ent_coef, DistilledDataset.load(base_path),
                    pd.DataFrame(base.history), args.learners, seed=52_000),
            summary("no entropy bonus", cfg.ent_coef, DistilledDataset.load(path), pd.DataFrame(run.history),
                    args.learners, seed=52_000)]
    table = pd.DataFrame(rows)
    write_table(table, out / "entropy")
    curves = pd.concat([pd.DataFrame(base.history).assign(variant="ent_coef 0.01"),
                        pd.DataFrame(run.history).assign(variant="ent_coef 0")], ignore_index=True)
    curves[["variant", "meta_epoch", "env_steps", "train_return", "entropy", "approx_kl", "lr"]].to_csv(
        out / "entropy_curves.csv", index=False)
    print(table.round(4).T)


if __name__ == "__main__":
    main()
