"""Why notebook 02 uses Adam lr 1e-3 on the dataset: PPMO on InvertedPendulum-v5 for 200
meta-epochs with the cart-pole settings (dataset lr 2.5e-4, initial inner lr 0.02) and two
variants, evaluated every 25 meta-epochs (5 fresh learners x 1 episode). One seed.

    python studies/tune_mujoco_lr.py [--meta-epochs 200]   # -> results/mujoco/tuning.csv
"""

from __future__ import annotations

import argparse

import pandas as pd

from paper_code.core.ppmo import PPMO
from paper_code.project import project_root
from paper_code.pipeline.experiments import scale_config
from paper_code.files import atomic_path
from paper_code.runs.training import train

VARIANTS = {
    "cart-pole settings": {"dataset_lr": 2.5e-4, "init_inner_lr": 0.02},
    "init_inner_lr 0.1": {"dataset_lr": 2.5e-4, "init_inner_lr": 0.1},
    "dataset_lr 1e-3": {"dataset_lr": 1e-3, "init_inner_lr": 0.02},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meta-epochs", type=int, default=200)
    ap.add_argument("--task", default="InvertedPendulum-v5")
    args = ap.parse_args()
    rows = []
    for name, setting in VARIANTS.items():
        cfg = scale_config(f"mujoco-{args.task}", {"seed": 0, "size": 64, "eval_every": 25, "eval_learners": 5}, **setting)
        run = train(PPMO(cfg), args.meta_epochs, progress=True)
        rows += [{"task": args.task, "variant": name, **setting, **ev} for ev in run.evals]
    out = project_root() / "results" / "mujoco" / "tuning.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    print(pd.DataFrame(rows).pivot(index="meta_epoch", columns="variant", values="sampled_return").round(1))


if __name__ == "__main__":
    main()
