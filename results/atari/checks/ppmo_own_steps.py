"""Ad hoc check (not a pipeline stage): PPMO alone for the full CPU-scale budget with the dataset's own Adam steps.

The optimizer study (`studies/atari_dataset_optimizer.py`, 300 meta-epochs, l = 4) found that the preset's one Adam
(2.5e-4, eps 1e-5) leaves the states where they started and that their own steps (states, labels and the log inner
lr at 1e-2, eps 1e-10) move them, scoring lower or level. Here one (game, l) runs notebook 03's whole PPMO-alone budget
(the preset's 1,000 meta-epochs) with those steps, on ale-py's vector environment:

    python -m paper_code distill --preset atari-Pong-l3 --states-lr 0.01 --labels-lr 0.01 --inner-lr-lr 0.01 \\
        --dataset-adam-eps 1e-10 --out results/atari/checks/Pong_l3_own_steps.safetensors

and this script evaluates it as notebook 03 evaluates its PPMO-alone set of that (game, l) — the same 50 learners x 1
episode on the same seed, sampled, greedy and replayed state-blind, against the same random and constant-action
returns — beside that committed row, with how far each set moved from its start.

    python results/atari/checks/ppmo_own_steps.py Pong 3      # -> ppmo_own_steps_Pong_l3.json
"""
import json
import sys
from pathlib import Path

import pandas as pd
import torch

from paper_code.core.dataset import DistilledDataset
from paper_code.envs import action_names
from paper_code.pipeline.analysis import dataset_movement
from paper_code.pipeline.config import load_scale
from paper_code.pipeline.plans import atari_plan
from paper_code.pipeline.state_dependence import atari_row
from paper_code.pipeline.store import EvaluationStore
from paper_code.project import project_root, relative

torch.set_num_threads(1)
game, split = sys.argv[1], int(sys.argv[2])
root = project_root() / "results"
here = Path(__file__).parent
planned = next(p for p in atari_plan(load_scale("paper")["atari"], root)
               if p.what == "PPMO alone" and (p.game, p.split) == (game, split))
base = pd.read_csv(root / "atari" / "report" / "constant_actions.csv")
base = base[base.game == game]
store = EvaluationStore(root)
out = {"game": game, "l": split, "learners x episodes": f"{planned.count} x 1", "seed": planned.seed, "rows": []}
for label, path in (("preset (notebook 03)", planned.path), ("own steps", here / f"{game}_l{split}_own_steps.safetensors")):
    ds = DistilledDataset.load(path)
    actions, entry = store.one_step_actions(path, learners=planned.count, seed=planned.seed)
    row, _ = atari_row(ds, learners=planned.count, seed=planned.seed, names=action_names(game), baselines=base, actions=actions,
                     movement=dataset_movement(ds))
    row = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
    out["rows"].append({"set": label, "dataset": relative(path), "evaluation": entry,
                        "meta-epochs": ds.provenance.get("meta_epochs"), **row})
    print(label, {k: v for k, v in row.items() if k.startswith(("sampled", "replayed", "moved"))}, flush=True)
(here / f"ppmo_own_steps_{game}_l{split}.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
