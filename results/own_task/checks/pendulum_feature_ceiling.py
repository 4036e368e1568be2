"""Ad hoc check (not a pipeline stage): the best a one-step learner's last layer can do on Pendulum, per init.

A learner with a small output layer (gain 0.01) changes, in its one SGD step, essentially only its last layer: its
policy after the step is a linear function of its initial last-hidden-layer features (+ bias). The best such
function for one init is the least-squares fit of the teacher's action means onto that init's features, on the
states where it is used; no dataset shared by all inits can do better than every init's own fit. Here, for each of
`INITS` fresh inits of a student, that per-init fit ("oracle") is made on states the teacher visits, then refitted
`ROUNDS` times on the teacher's states plus states the oracles themselves visit (DAgger-style, labelled by the
teacher), and played: one episode per init and seed, greedy (the fitted mean) and sampled (the mean with the
teacher's std). Students: the own-task learner (64-64, hidden gain sqrt 2), pendulum_students.py's wide one
(256-256, gain 4), and 1024-1024 (gain sqrt 2). The share of the teacher's margin over random uses the own-task
table's references (`../table.md`, 100 x 5).

Run from the project folder: python results/own_task/checks/pendulum_feature_ceiling.py  (writes
pendulum_feature_ceiling.json here)"""
import dataclasses
import json
import math
from pathlib import Path

import torch

from paper_code.core.compress import load_teacher, visited_states
from paper_code.core.evaluation import first_episode_returns
from paper_code.core.learners import init_params_batch
from paper_code.envs import make_env

HERE = Path(__file__).parent
INITS, EPISODES, ROUNDS, STATES = 16, 4, 2, 4000
RANDOM, TEACHER = -1247.6, -160.5  # the own-task table's references (100 x 5)
torch.manual_seed(0)

t = load_teacher("results/own_task/Pendulum-v1/teacher.safetensors")
teacher_std = float(t.log_std(None).exp().mean())


def features(th: dict, s: torch.Tensor) -> torch.Tensor:
    """[K, n, H + 1]: each init's last hidden layer (tanh MLP) on states s [K, n, obs] (+ a bias column)."""
    h = s
    layers = sum(1 for k in th if k.endswith(".weight"))
    for i in range(layers - 1):
        h = torch.tanh(h @ th[f"l{i}.weight"].transpose(1, 2) + th[f"l{i}.bias"][:, None, :])
    return torch.cat([h, torch.ones(*h.shape[:2], 1)], -1)


def teacher_means(s: torch.Tensor) -> torch.Tensor:
    return t.outputs(None, s.reshape(1, -1, s.shape[-1]))[0].reshape(*s.shape[:-1], -1)


def play(th: dict, w: torch.Tensor, *, greedy: bool, seed: int, collect: list | None = None) -> torch.Tensor:
    """One episode per init (env k acts with init k's fitted policy): returns [K]."""
    env = make_env(t.env_id, INITS, seed=seed, **t.env_kwargs)
    g = torch.Generator().manual_seed(seed)

    def policy(obs: torch.Tensor) -> torch.Tensor:
        s = t.prepare(obs)[:, None, :]  # [K, 1, obs]: as the learner sees it
        if collect is not None:
            collect.append(s[:, 0])
        mean = (features(th, s) @ w)[:, 0]  # [K, A]
        return mean if greedy else mean + teacher_std * torch.randn(mean.shape, generator=g)

    returns, _ = first_episode_returns(env, policy, seed=seed)
    env.close()
    return returns


def ceiling(name: str, learner) -> dict:
    th = init_params_batch(learner, 3, 1, INITS, torch.Generator().manual_seed(1))
    pool = visited_states(t, STATES, seed=0)[None].expand(INITS, -1, -1)  # [K, n, obs]
    rows = []
    for r in range(ROUNDS + 1):
        X, y = features(th, pool), teacher_means(pool)
        w = torch.linalg.lstsq(X, y).solution  # [K, H + 1, A]
        resid = (y - X @ w).pow(2).mean().sqrt()
        visited: list = []
        greedy = torch.cat([play(th, w, greedy=True, seed=100 * r + e, collect=visited if e == 0 else None)
                            for e in range(EPISODES)])
        sampled = torch.cat([play(th, w, greedy=False, seed=100 * r + e) for e in range(EPISODES)])
        share = lambda v: round((float(v.mean()) - RANDOM) / (TEACHER - RANDOM), 3)  # noqa: E731
        ci = lambda v: round(1.96 * float(v.std()) / math.sqrt(len(v)), 1)  # noqa: E731
        rows.append({"round": r, "states": pool.shape[1], "residual_rms_on_pool": round(float(resid), 3),
                     "greedy": round(float(greedy.mean()), 1), "greedy_ci95": ci(greedy), "greedy_share": share(greedy),
                     "sampled": round(float(sampled.mean()), 1), "sampled_ci95": ci(sampled),
                     "sampled_share": share(sampled)})
        print(name, rows[-1], flush=True)
        new = torch.stack(visited, 1)  # [K, steps, obs]: each init's own states
        pool = torch.cat([pool, new[:, :: max(1, new.shape[1] // 1000)]], 1)
    return {"student": name, "hidden": list(learner.hidden), "hidden_gain": learner.hidden_gain, "rounds": rows}


students = {"64-64 (own-task learner)": t.learner,
            "256-256, gain 4": dataclasses.replace(t.learner, hidden=(256, 256), hidden_gain=4.0),
            "1024-1024": dataclasses.replace(t.learner, hidden=(1024, 1024))}
out = {"inits": INITS, "episodes_per_init": EPISODES, "teacher_std": round(teacher_std, 4),
       "references": {"random": RANDOM, "teacher": TEACHER}, "students": [ceiling(n, s) for n, s in students.items()]}
(HERE / "pendulum_feature_ceiling.json").write_text(json.dumps(out, indent=2) + "\n")
