"""Ad hoc check (not a pipeline stage): a random-Fourier-feature student for the Pendulum teacher route.

`pendulum_mean_kernel.py` found the limit of one shared set: the average one-step learner is a regression on the
learner's *mean* kernel over inits, and the tanh learners' mean kernel is too smooth (best total error 0.90 on B = 64
teacher states). A student whose mean kernel is local by construction: one wide hidden layer of cos units with the
first layer's weights N(0, sigma^2) and biases uniform in +-pi (`LearnerSpec(init="fourier", activation="cos")`,
Rahimi & Recht 2007), so that E phi(x) . phi(s) is (W / 2) exp(-sigma^2 |x - s|^2 / 2), a Gaussian kernel,
and the spread across inits shrinks with the width.

    python results/own_task/checks/pendulum_fourier_student.py kernel      # kernel arithmetic -> pendulum_fourier_kernel.json
    python results/own_task/checks/pendulum_fourier_student.py f1024b256   # a fit -> Pendulum-v1_<name>.safetensors

`kernel`: as `pendulum_mean_kernel.py`, but with the features' inner product scaled by 2 / W (so the output bias's
+1 weighs W / 2 times more than in the learner's own one-step kernel) (ridge least squares of the teacher's clipped means on the mean kernel, the
error of the average function, the spread across inits and their total, RMS over 3,000 teacher states), here with
the set's states B = 64 or 256 teacher states, 64 inits, widths 1,024 and 4,096 and sigma 0.5, 1, 2 (on the
teacher's normalised observations); the best ridge per row.

Each fit: `compress`'s loss and loop (`Compression`) with the student replaced, B = 256, 3,000 Adam steps, K = 4 inits
and 512 teacher states per step (a wide student costs ~0.1 s per step at the defaults' 8 x 2048), starting lr 0.01
(the features' inner products are ~W/2, so the CLI's starting lr 1 overshoots); evaluate each with
`python -m paper_code evaluate <file> --learners 30 --episodes 3 --json`.
"""
import dataclasses
import json
import sys
from pathlib import Path

import torch

from paper_code.core.compress import Compression, load_teacher, visited_states
from paper_code.core.learners import init_params_batch
from paper_code.core.settings import CompressConfig

HERE = Path(__file__).parent
TEACHER = "results/own_task/Pendulum-v1/teacher.safetensors"
FIT = {"size": 256, "steps": 3000, "inits": 4, "batch_states": 512, "init_lr": 0.01}
VARIANTS = {  # name: (width, sigma, DAgger rounds)
    "f1024b256": (1024, 1.0, 0),
    "f1024b256dag": (1024, 1.0, 3),
    "f2048b256dag": (2048, 1.0, 3),
    "f4096b256dag": (4096, 1.0, 3),
}


def student(width: int, sigma: float):
    t = load_teacher(TEACHER)
    return dataclasses.replace(t, learner=dataclasses.replace(t.learner, hidden=(width,), activation="cos",
                                                               init="fourier", hidden_gain=sigma))


def kernel() -> None:
    inits, states = 64, 3000
    t = load_teacher(TEACHER)
    s = visited_states(t, states, seed=0)
    y = t.outputs(None, s[None])[0][:, 0].clamp(-2, 2)
    rows = []
    for b in (64, 256):
        z = s[torch.randperm(states, generator=torch.Generator().manual_seed(0))[:b]]
        for width in (1024, 4096):
            for sigma in (0.5, 1.0, 2.0):
                spec = student(width, sigma).learner
                th = init_params_batch(spec, 3, 1, inits, torch.Generator().manual_seed(1))
                feats = [torch.cos(v @ th["l0.weight"].transpose(1, 2) + th["l0.bias"][:, None, :]) for v in (s, z)]
                per = torch.einsum("knh,kbh->knb", *feats) * (2 / width) + 1  # [inits, states, B]
                mean_k = per.mean(0)
                best = None
                for ridge in (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0):
                    c = torch.linalg.solve(mean_k.T @ mean_k + ridge * torch.eye(b), mean_k.T @ y)
                    avg, each = mean_k @ c, per @ c
                    rms = lambda v: round(float(v.pow(2).mean().sqrt()), 3)  # noqa: E731
                    row = {"B": b, "width": width, "sigma": sigma, "ridge": ridge, "bias": rms(avg - y),
                           "spread_across_inits": rms(each - avg), "total": rms(each - y)}
                    best = row if best is None or row["total"] < best["total"] else best
                print(best, flush=True)
                rows.append(best)
    out = {"inits": inits, "states": states, "teacher_means_clipped_std": round(float(y.std()), 3), "rows": rows}
    (HERE / "pendulum_fourier_kernel.json").write_text(json.dumps(out, indent=2) + "\n")


def fit(name: str) -> None:
    width, sigma, rounds = VARIANTS[name]
    c = Compression(student(width, sigma), CompressConfig(**FIT, dagger_rounds=rounds))
    for _ in range(FIT["steps"]):
        row = c.step()
    c.dataset().save(HERE / f"Pendulum-v1_{name}.safetensors")
    last = c.history[-100:]
    print(name, {"kl_last_100": round(sum(r["kl"] for r in last) / len(last), 3), "lr": round(row["lr"], 4),
                 "fit_s": round(row["wall_time_s"] + c.collect_s, 1)}, flush=True)


for arg in sys.argv[1:]:
    kernel() if arg == "kernel" else fit(arg)
