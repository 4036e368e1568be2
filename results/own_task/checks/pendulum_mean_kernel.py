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

Run from the project folder: python results/own_task/checks/pendulum_mean_kernel.py  (writes pendulum_mean_kernel.json)"""
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
th = init_params_batch(t.learner, 3, 1, INITS, torch.Generator().manual_seed(5))


def features(x: torch.Tensor) -> torch.Tensor:
    """[INITS, n, H]: each init's last hidden layer."""
    h = x[None].expand(INITS, -1, -1)
    for i in range(len(t.learner.hidden)):
        h = torch.tanh(h @ th[f"l{i}.weight"].transpose(1, 2) + th[f"l{i}.bias"][:, None, :])
    return h


z = s[torch.randperm(STATES, generator=torch.Generator().manual_seed(0))[:B]]
per_init = torch.einsum("knh,kbh->knb", features(s), features(z)) + 1  # [INITS, n, B]: each init's kernel
mean_k = per_init.mean(0)
rows = []
for ridge in (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0):
    c = torch.linalg.solve(mean_k.T @ mean_k + ridge * torch.eye(B), mean_k.T @ y)
    avg, each = mean_k @ c, per_init @ c
    rms = lambda v: round(float(v.pow(2).mean().sqrt()), 3)  # noqa: E731
    rows.append({"ridge": ridge, "bias": rms(avg - y), "spread_across_inits": rms(each - avg), "total": rms(each - y),
                 "max_abs_coefficient": round(float(c.abs().max()), 2)})
    print(rows[-1], flush=True)
out = {"inits": INITS, "states": STATES, "B": B, "teacher_means_clipped_std": round(float(y.std()), 3), "fits": rows}
(HERE / "pendulum_mean_kernel.json").write_text(json.dumps(out, indent=2) + "\n")
