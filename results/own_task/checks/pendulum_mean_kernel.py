"""Ad hoc check (not a pipeline stage): why one set for every init misses Pendulum's teacher, in the learner's kernel.

With a small output layer, a one-step learner's action mean after the step is (up to its init's tiny output)
f(s) = sum_i c_i (phi(x_i) . phi(s) + 1), phi its init's last-hidden-layer features, x_i the set's states and c_i
(lr x the labels' pull) shared by all inits. Averaged over inits that is a regression on the *mean* kernel
K(x, s) = E phi(x) . phi(s) + 1; each init adds its own deviation, which grows with the coefficients. Here the set's
states are B = 64 states the teacher visits, the coefficients the ridge least-squares fit of the teacher's means
(clipped to the action bounds +-2) on the mean kernel (512 inits), for a range of ridge penalties: the error of the
average function (bias), the spread across inits, and their total (RMS over 3,000 teacher states and the 512 inits).
A small penalty fits the average better but with large, cancelling coefficients that each init's features do not
cancel the same way; the best total is where the committed sets already are (pendulum_shared_set_bias.json).
The same for two students whose first layer is made steep (weights x4 / x8) with biases spread over the normalised
input range (uniform in +-3), so that their mean kernel is local: what a change of the learner's init could buy
(kernel arithmetic only: no set is fitted or played here).

Run from the project folder: python results/own_task/checks/pendulum_mean_kernel.py  (writes pendulum_mean_kernel.json)"""
import dataclasses
import json
from pathlib import Path

import torch

from paper_code.core.compress import load_teacher, visited_states
from paper_code.core.learners import init_params_batch

HERE = Path(__file__).parent
INITS, STATES, B = 512, 3000, 64
t = load_teacher("results/own_task/Pendulum-v1/teacher.safetensors")
s = visited_states(t, STATES, seed=0)
y = t.outputs(None, s[None])[0][:, 0].clamp(-2, 2)
z = s[torch.randperm(STATES, generator=torch.Generator().manual_seed(0))[:B]]


def features(th: dict, x: torch.Tensor) -> torch.Tensor:
    """[INITS, n, H]: each init's last hidden layer."""
    h = x[None].expand(INITS, -1, -1)
    for i in range(sum(1 for k in th if k.endswith(".weight")) - 1):
        h = torch.tanh(h @ th[f"l{i}.weight"].transpose(1, 2) + th[f"l{i}.bias"][:, None, :])
    return h


def local(learner, scale: float, spread: float) -> dict:
    """``learner``'s inits with the first layer's weights times ``scale`` and its biases uniform in +-``spread``: each
    first-layer unit a steep step somewhere in the (normalised) input range, so that the mean kernel is local."""
    th = init_params_batch(learner, 3, 1, INITS, torch.Generator().manual_seed(5))
    th["l0.weight"] = th["l0.weight"] * scale
    th["l0.bias"] = (torch.rand(th["l0.bias"].shape, generator=torch.Generator().manual_seed(6)) * 2 - 1) * spread
    return th


def trade_off(th: dict) -> list[dict]:
    per_init = torch.einsum("knh,kbh->knb", features(th, s), features(th, z)) + 1  # [INITS, n, B]: each init's kernel
    mean_k = per_init.mean(0)
    rows = []
    for ridge in (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6):
        c = torch.linalg.solve(mean_k.T @ mean_k + ridge * torch.eye(B), mean_k.T @ y)
        avg, each = mean_k @ c, per_init @ c
        rms = lambda v: round(float(v.pow(2).mean().sqrt()), 3)  # noqa: E731
        rows.append({"ridge": ridge, "bias": rms(avg - y), "spread_across_inits": rms(each - avg),
                     "total": rms(each - y), "max_abs_coefficient": round(float(c.abs().max()), 2)})
    return rows


students = {"64-64 (own-task learner)": init_params_batch(t.learner, 3, 1, INITS, torch.Generator().manual_seed(5)),
            "64-64, first layer x4, biases in +-3": local(t.learner, 4.0, 3.0),
            "256-256, first layer x8, biases in +-3": local(dataclasses.replace(t.learner, hidden=(256, 256)), 8.0, 3.0)}
fits = {}
for name, th in students.items():
    fits[name] = trade_off(th)
    best = min(fits[name], key=lambda r: r["total"])
    print(name, "best total", best, flush=True)
out = {"inits": INITS, "states": STATES, "B": B, "teacher_means_clipped_std": round(float(y.std()), 3),
       "students": fits}
(HERE / "pendulum_mean_kernel.json").write_text(json.dumps(out, indent=2) + "\n")
