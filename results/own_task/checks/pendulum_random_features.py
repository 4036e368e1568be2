"""Ad hoc check (not a pipeline stage): how well can the one-step learner's random features represent
the Pendulum teacher's means? Least squares of the teacher's action means on 4,000 states it visits,
onto the 64 last-hidden-layer features (+ bias) of a freshly initialised learner, per init (4 inits); and the same
for pendulum_students.py's wider student (256-256, hidden gain 4: 256 features).
Run from the project folder: python results/own_task/checks/pendulum_random_features.py"""
import dataclasses
import json

import torch

from paper_code.core.compress import load_teacher, visited_states
from paper_code.core.learners import init_params_batch

t = load_teacher("results/own_task/Pendulum-v1/teacher.safetensors")
s = visited_states(t, 4000, seed=0)
y = t.outputs(None, s[None])[0][:, 0]


def fits(learner):
    th = init_params_batch(learner, 3, 1, 4, torch.Generator().manual_seed(1))
    rows = []
    for k in range(4):
        h = torch.tanh(torch.tanh(s @ th["l0.weight"][k].T + th["l0.bias"][k]) @ th["l1.weight"][k].T + th["l1.bias"][k])
        X = torch.cat([h, torch.ones(len(h), 1)], 1)
        r = y - (X @ torch.linalg.lstsq(X, y[:, None]).solution)[:, 0]
        rows.append({"init": k, "r2": round(float(1 - r.var() / y.var()), 3), "residual_std": round(float(r.std()), 3)})
    return rows


wide = dataclasses.replace(t.learner, hidden=(256, 256), hidden_gain=4.0)
out = {"teacher_means_std": round(float(y.std()), 3), "teacher_log_std": round(float(t.log_std(None)), 4),
       "fits": fits(t.learner), "fits_w256g4": fits(wide)}
print(json.dumps(out, indent=2))
