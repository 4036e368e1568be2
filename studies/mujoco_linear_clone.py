"""How far can a linear policy cloned from the PPO teacher go? The ceiling of imitation for small-input students.

In the ``linear`` coordinates of ``studies/mujoco_teacher_route.py`` (observations normalised and scaled by 0.3)
the tanh layers of a fresh learner stay near-linear and its one SGD step changes mostly the output layer, so the
one-step learners of every init are nearly one linear policy of the normalised observation; a set fitted to a
teacher there can at best be the linear policy that imitates the teacher. This study measures that policy
directly, with no dataset and no one-step learner in between: for each task, from its committed PPO teacher
(``results/mujoco/baselines/ppo_<task>.safetensors``, or for a task outside notebook 02 the own-task study's
``results/own_task/<task>/teacher.safetensors``: Pendulum-v1),

1. ``--pool`` states of the teacher's own episodes (sampled actions; ``paper_code.core.compress.visited_states``,
   as ``compress`` collects them), labelled with the teacher's mean action;
2. the linear policy ``a = W s + c`` on the teacher's normalised observation, by ridge regression (``--ridge``),
   with its R² on those states;
3. evaluated on ``--episodes`` fresh episodes (one per env, seed ``--seed``): greedy (``W s + c``) and sampled
   (plus the teacher's own Gaussian noise, as the teacher acts), beside the teacher itself on the same episodes'
   seeds (sampled) and the uniformly random policy -- the share of the teacher's return, and of its margin over
   random, that the linear clone reaches;
4. ``--rounds`` DAgger rounds: the states the linear clone visits (sampled) join the regression, labelled by the
   teacher, and the clone is re-fitted and re-evaluated (round 0: the teacher's states only).

Cheap (a minute or two per task on one core). The table (``<out>/table.{csv,md}``): one row per task and round.

    python studies/mujoco_linear_clone.py [--tasks Hopper-v5 Walker2d-v5 HalfCheetah-v5 Ant-v5 Pendulum-v1]
        [--out results/mujoco/linear_clone]
    # quick (tests): only counts shrink
    python studies/mujoco_linear_clone.py --tasks Hopper-v5 --pool 256 --episodes 2 --rounds 1 --out /tmp/clone
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from paper_code.core.compress import Teacher, load_teacher, visited_states
from paper_code.core.evaluation import first_episode_returns, mean_ci95
from paper_code.envs import make_env, return_bounds
from paper_code.pipeline.commands import enter_project
from paper_code.pipeline.layout import ppo_baseline_path
from paper_code.pipeline.protocol import ci_text
from paper_code.pipeline.reference_policies import UniformPolicy
from paper_code.pipeline.reporting import write_table

TASKS = ("Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Pendulum-v1")


def ridge(states: torch.Tensor, targets: torch.Tensor, lam: float) -> torch.Tensor:
    """``[obs + 1, A]``: the least-squares linear map (with a bias row) from states to targets, ridge ``lam``."""
    x = torch.cat([states, torch.ones(len(states), 1)], 1).double()
    return torch.linalg.solve(x.T @ x + lam * torch.eye(x.shape[1], dtype=x.dtype), x.T @ targets.double()).float()


def episodes(teacher: Teacher, act, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` fresh episodes, one per env, acting by ``act(prepared obs, generator)``: (returns, visited states)."""
    env = make_env(teacher.env_id, count, seed=seed, **teacher.env_kwargs)
    g = torch.Generator().manual_seed(seed)
    seen: list[torch.Tensor] = []

    def policy(obs: torch.Tensor) -> torch.Tensor:
        s = teacher.prepare(obs)
        seen.append(s)
        return act(s, g)

    returns, _ = first_episode_returns(env, policy, seed=seed)
    if hasattr(env, "close"):
        env.close()
    return returns, torch.cat(seen)


def teacher_path(task: str) -> Path:
    """The task's PPO teacher: notebook 02's baseline, else the own-task study's."""
    path = ppo_baseline_path(Path("results"), task)
    return path if path.exists() else Path("results") / "own_task" / task / "teacher.safetensors"


def run_task(task: str, args: argparse.Namespace) -> list[dict]:
    teacher = load_teacher(teacher_path(task))
    t0 = time.perf_counter()
    with torch.no_grad():
        std = teacher.log_std(None).reshape(-1).exp()
        mean = lambda s: teacher.outputs(None, s[None])[0]  # noqa: E731 -- the teacher's mean action
        states = visited_states(teacher, args.pool, seed=0)
        targets = mean(states)
        bounds = return_bounds(teacher.env_id, teacher.env_kwargs)
        noisy = lambda m, g: m + std * torch.randn(m.shape, generator=g)  # noqa: E731
        t_ret, _ = episodes(teacher, lambda s, g: noisy(mean(s), g), args.episodes, args.seed)
        t_mean = mean_ci95(t_ret, bounds)
        probe = make_env(teacher.env_id, 1, **teacher.env_kwargs)
        uniform = UniformPolicy(probe, torch.Generator().manual_seed(args.seed))
        r_mean = float(episodes(teacher, lambda s, g: uniform(s), args.episodes, args.seed)[0].mean())
        margin = lambda m: round((m - r_mean) / (t_mean[0] - r_mean), 3)  # noqa: E731
        rows = []
        for k in range(args.rounds + 1):
            w = ridge(states, targets, args.ridge)
            linear = lambda s: torch.cat([s, torch.ones(len(s), 1)], 1) @ w  # noqa: E731,B023
            pred = linear(states)
            r2 = 1 - float(((pred - targets) ** 2).sum() / ((targets - targets.mean(0)) ** 2).sum())
            greedy, _ = episodes(teacher, lambda s, g: linear(s), args.episodes, args.seed)
            sampled, seen = episodes(teacher, lambda s, g: noisy(linear(s), g), args.episodes, args.seed)
            g_ci, s_ci = mean_ci95(greedy, bounds), mean_ci95(sampled, bounds)
            rows.append({"task": task, "DAgger round": k, "states": len(states), "R2 on its states": round(r2, 3),
                         "episodes": args.episodes, "linear clone, greedy": ci_text(*g_ci),
                         "linear clone, sampled": ci_text(*s_ci), "teacher, sampled": ci_text(*t_mean),
                         "share of teacher (sampled)": round(s_ci[0] / t_mean[0], 3) if t_mean[0] > 0 else float("nan"),
                         "share of teacher (greedy)": round(g_ci[0] / t_mean[0], 3) if t_mean[0] > 0 else float("nan"),
                         "random": round(r_mean, 1), "share of margin (sampled)": margin(s_ci[0]),
                         "share of margin (greedy)": margin(g_ci[0]),
                         "cumulative s": round(time.perf_counter() - t0, 1)})
            print(f"{task} round {k}: R2 {r2:.3f}, greedy {rows[-1]['linear clone, greedy']}, sampled "
                  f"{rows[-1]['linear clone, sampled']}, teacher {rows[-1]['teacher, sampled']}", flush=True)
            states = torch.cat([states, seen])
            targets = torch.cat([targets, mean(seen)])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--out", type=Path, default=Path("results") / "mujoco" / "linear_clone",
                    help="the study's folder (relative: to the project folder)")
    ap.add_argument("--pool", type=int, default=20_000, help="teacher states (compress's --pool)")
    ap.add_argument("--episodes", type=int, default=100, help="fresh episodes per evaluation")
    ap.add_argument("--rounds", type=int, default=3, help="DAgger rounds after the teacher's states")
    ap.add_argument("--ridge", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1, help="the evaluation episodes' seed (the pool's is 0, as compress's)")
    args = ap.parse_args()
    args.out = enter_project(args.out)
    torch.manual_seed(0)
    table = pd.DataFrame([r for task in args.tasks for r in run_task(task, args)])
    args.out.mkdir(parents=True, exist_ok=True)
    _, md = write_table(table, args.out / "table", floatfmt=".3g")
    print(md.read_text())


if __name__ == "__main__":
    main()
