"""Ad hoc check (not a pipeline stage): does Pendulum's teacher need more than the sign of its mean action?

The Pendulum teacher (results/own_task/Pendulum-v1/teacher.safetensors) played 64 episodes (seed 5) with: its
sampled actions, its mean, 2 * sign(mean) (bang-bang), and the mean or 2 * sign(mean) plus Gaussian noise of std
0.3, 1 and 2. Then, for two sets fitted with the bang-bang target (pendulum_bang_bang_fit.py), their one-step
learners' sign agreement with the teacher's mean on 2,000 teacher states (16 inits, seeds 100-115), beside the
committed sets'.

Run from the project folder: python results/own_task/checks/pendulum_bang_bang.py  (writes pendulum_bang_bang.json)"""
import json
from pathlib import Path

import torch

from paper_code.core.compress import load_teacher, visited_states
from paper_code.core.dataset import DistilledDataset
from paper_code.core.evaluation import first_episode_returns
from paper_code.core.inner import inner_step
from paper_code.core.learners import forward, init_params
from paper_code.envs import make_env

HERE = Path(__file__).parent
SETS = ["../Pendulum-v1/set.safetensors", "Pendulum-v1_b64dag6s3k.safetensors", "Pendulum-v1_w256g4b64dag.safetensors",
        "Pendulum-v1_bang8s3k.safetensors", "Pendulum-v1_bang64dag3s3k.safetensors"]
torch.set_num_threads(1)
t = load_teacher("results/own_task/Pendulum-v1/teacher.safetensors")
std = float(t.log_std(None)[0, 0].exp())


def mean(obs: torch.Tensor) -> torch.Tensor:
    return t.outputs(None, t.prepare(obs)[None])[0]


def play(policy) -> float:
    env = make_env(t.env_id, 64, seed=5, check_actions=False, **t.env_kwargs)
    returns, _ = first_episode_returns(env, policy, seed=5)
    return round(float(returns.mean()), 1)


g = torch.Generator().manual_seed(1)
noise = lambda m, s: m + s * torch.randn(m.shape, generator=g)  # noqa: E731
teacher = {"sampled": play(lambda o: noise(mean(o), std)), "mean": play(mean),
           "2 sign(mean)": play(lambda o: 2 * torch.sign(mean(o)))}
for s in (0.3, 1.0, 2.0):
    teacher[f"mean + noise std {s}"] = play(lambda o: noise(mean(o), s))
    teacher[f"2 sign(mean) + noise std {s}"] = play(lambda o: noise(2 * torch.sign(mean(o)), s))
print(teacher, flush=True)

raw = visited_states(t, 2000, seed=0, raw=True)
y = mean(raw)[:, 0]
sets = []
with torch.no_grad():
    for name in SETS:
        ds = DistilledDataset.load(HERE / name)
        s = ds.features(ds.normalize(raw))
        agree = []
        for k in range(16):
            th0 = init_params(ds.learner, ds.states.shape[1], ds.labels.shape[1], torch.Generator().manual_seed(100 + k))
            th = inner_step(th0, ds.features(ds.states), ds.labels, ds.lr, ds.learner.activation, ds.log_std)
            agree.append(float((torch.sign(forward(th, s, ds.learner.activation)[:, 0]) == torch.sign(y)).float().mean()))
        sets.append({"set": name, "B": ds.states.shape[0], "sign agreement": round(sum(agree) / len(agree), 3)})
        print(sets[-1], flush=True)
out = {"teacher std": round(std, 3), "teacher, 64 episodes (seed 5)": teacher,
       "teacher means: share with |mean| > 2": round(float((y.abs() > 2).float().mean()), 3),
       "teacher means: share with |mean| < 1": round(float((y.abs() < 1).float().mean()), 3),
       "one-step learners' sign agreement with the teacher's mean (2,000 teacher states, 16 inits)": sets}
(HERE / "pendulum_bang_bang.json").write_text(json.dumps(out, indent=2) + "\n")
