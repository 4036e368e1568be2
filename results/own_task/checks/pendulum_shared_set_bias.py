"""Ad hoc check (not a pipeline stage): where a Pendulum set's one-step learners miss the teacher's means.

For each set, 32 fresh inits (seeds 100-131) each take the set's one SGD step; their action means on 2,000 states the
teacher visits are compared with the teacher's means. The error (RMS over states and inits) splits into the *bias*
of the learners' average function (RMS of average - teacher) and the *spread across inits* (RMS of each learner -
the average): total^2 = bias^2 + spread^2. The same with every mean clipped to the action bounds (+-2; the
environment clips actions). pendulum_feature_ceiling.py gives what one init's features allow (its own least-squares
last layer: RMS error 0.41 and 0.93-0.98 of the teacher's margin for the 64-64 learner); a set shared by every init
cannot adapt to each init's features.

Run from the project folder: python results/own_task/checks/pendulum_shared_set_bias.py  (writes
pendulum_shared_set_bias.json here)"""
import json
from pathlib import Path

import torch

from paper_code.core.compress import load_teacher, visited_states
from paper_code.core.dataset import DistilledDataset
from paper_code.core.inner import inner_step
from paper_code.core.learners import forward, init_params

HERE = Path(__file__).parent
SETS = ["../Pendulum-v1/set.safetensors", "Pendulum-v1_b64dag6s3k.safetensors", "Pendulum-v1_w256g4b64dag.safetensors",
        "Pendulum-v1_b64dag3s3kft2000.fit.safetensors", "Pendulum-v1_b64dag3s3kft2000.safetensors",
        "Pendulum-v1_b64dag3s3k_obs3.safetensors", "Pendulum-v1_b64dag3s3k_obs8.safetensors",
        "Pendulum-v1_og01b64dag.safetensors", "Pendulum-v1_og1b64dag.safetensors"]
INITS = 32

t = load_teacher("results/own_task/Pendulum-v1/teacher.safetensors")
raw = visited_states(t, 2000, seed=0, raw=True)
y = t.outputs(None, t.prepare(raw)[None])[0][:, 0]


def one_step_means(ds: DistilledDataset) -> torch.Tensor:
    """[INITS, states]: each fresh init's action mean after the set's step."""
    s = ds.features(ds.normalize(raw))
    out = []
    for k in range(INITS):
        th0 = init_params(ds.learner, ds.states.shape[1], ds.labels.shape[1], torch.Generator().manual_seed(100 + k))
        th = inner_step(th0, ds.features(ds.states), ds.labels, ds.lr, ds.learner.activation, ds.log_std)
        out.append(forward(th, s, ds.learner.activation)[:, 0])
    return torch.stack(out)


def split(o: torch.Tensor, target: torch.Tensor) -> dict:
    avg = o.mean(0)
    rms = lambda v: round(float(v.pow(2).mean().sqrt()), 3)  # noqa: E731
    return {"total": rms(o - target), "bias": rms(avg - target), "spread_across_inits": rms(o - avg)}


rows = []
with torch.no_grad():
    for name in SETS:
        ds = DistilledDataset.load(HERE / name)
        o = one_step_means(ds)
        rows.append({"set": name, "B": ds.states.shape[0], "lr": round(float(ds.lr), 3),
                     "obs_scale": ds.provenance.get("obs_scale", ds.provenance.get("config", {}).get("obs_scale")),
                     "means": split(o, y), "means_clipped_to_bounds": split(o.clamp(-2, 2), y.clamp(-2, 2))})
        print(rows[-1], flush=True)
out = {"states": len(y), "inits": INITS, "teacher_means_std": round(float(y.std()), 3),
       "teacher_means_clipped_std": round(float(y.clamp(-2, 2).std()), 3), "sets": rows}
(HERE / "pendulum_shared_set_bias.json").write_text(json.dumps(out, indent=2) + "\n")
