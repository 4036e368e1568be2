"""How notebook 02's InvertedDoublePendulum dataset fails: by learner init or by step size?

The same 20 fresh learners x 3 episodes as notebook 02's protocol (its seed for the task: same
inits, same initial states), trained one SGD step with the dataset's learned lr scaled by a
factor. Writes ``results/mujoco/variants/InvertedDoublePendulum-v5_step_size.{csv,md}``: per factor
the mean return, the share of full episodes (return > 9000, i.e. balanced for all 1000 steps) and,
per learner, how many of its 3 episodes were full.

    python benchmarks/idp_step_size.py
"""

from __future__ import annotations

import pandas as pd
import torch

from paper_code.config import load_scale, repo_root
from paper_code.dataset import DistilledDataset
from paper_code.evaluation import evaluate_dataset
from paper_code.mujoco import mujoco_dataset_path, protocol_seeds
from paper_code.reporting import write_table

TASK = "InvertedDoublePendulum-v5"
FACTORS = (0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.5)
FULL = 9000.0  # a balanced 1000-step episode scores ~9330


def main() -> None:
    torch.set_num_threads(1)
    section = load_scale("paper")["mujoco"]
    results = repo_root() / "results"
    ds = DistilledDataset.load(mujoco_dataset_path(results, TASK, int(section["size"])))
    seed = protocol_seeds(section, TASK)["protocol"]
    learners, episodes = int(section["learners"]), int(section["episodes"])
    rows = []
    for f in FACTORS:
        ev = evaluate_dataset(ds, learners=learners, episodes=episodes, seed=seed, lr=float(ds.lr) * f)
        is_full = ev.returns > FULL  # [learners, episodes]
        full = is_full.sum(1)  # [learners]
        rows.append({"lr factor": f, "lr": float(ds.lr) * f, "mean return": ev.mean, "std": ev.std,
                     "full episodes": float(is_full.float().mean()),
                     "learners with 0 full episodes": int((full == 0).sum()),
                     "full episodes per learner": "".join(str(int(n)) for n in full.tolist())})
    table = pd.DataFrame(rows)
    write_table(table, results / "mujoco" / "variants" / f"{TASK}_step_size")
    print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
