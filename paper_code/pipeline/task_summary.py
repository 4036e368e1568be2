"""One continuous-control task's numbers for notebook 02's table: the one-step learners beside
every reference (random policy, zero action, their own average action, the authors' published
dataset, plain PPO) and the learning curves of PPMO and PPO, under the pipeline's protocol.

The authors' dataset (``reference/mujoco/<Task>-v4_b64``) is evaluated with the same learners,
episodes and seed as ours, on the gymnasium **v4** task it was made for (ours are v5: the v4
observations of Ant, Humanoid and HumanoidStandup differ in size, and the dynamics and rewards of
the two versions differ in details, so the two columns are close but not identical tasks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from paper_code.core.dataset import DistilledDataset
from paper_code.core.evaluation import mean_ci95
from paper_code.core.ppo import ppo_baseline
from paper_code.envs import make_env
from paper_code.pipeline.analysis import first_reach
from paper_code.pipeline.authors_datasets import authors_mujoco
from paper_code.pipeline.experiments import evaluated_curve, run_ppo_evaluated, setting
from paper_code.pipeline.layout import dataset_path, ppo_baseline_path, ppo_evaluated_path
from paper_code.pipeline.presets import resolve_ppo
from paper_code.pipeline.protocol import protocol_seed
from paper_code.pipeline.reference_policies import continuous_reference_returns
from paper_code.pipeline.store import EvaluationStore


@dataclass
class TaskSummary:
    row: dict[str, Any]  # the task's row of the table
    dependence: pd.DataFrame  # per learner: return, its average action's return, action std
    curves: pd.DataFrame  # task, method, env_steps, wall_time_s, return (PPMO's and PPO's evaluations)
    ppo_evals: pd.DataFrame  # PPO's periodic evaluations (sampled and greedy, std over episodes), with the task


def summarize_task(task: str, section: dict[str, Any], out_root: Path, run: Any, *, scale: str) -> TaskSummary:
    """``task``'s row from its distillation ``run`` (a finished or resumed run) and ``section``
    (a ``mujoco`` scale of params.yaml: protocol sizes, PPO budget); ``scale`` labels the budget."""
    i = list(section["tasks"]).index(task)
    ds = DistilledDataset.load(dataset_path(out_root, f"mujoco-{task}", section["size"]))
    store = EvaluationStore(out_root)
    env = make_env(task, 1)
    obs_size, num_actions = env.observation_size, env.num_actions
    env.close()
    path = dataset_path(out_root, f"mujoco-{task}", section["size"])
    sd, evaluation = store.state_dependence(path, learners=section["learners"], episodes=section["episodes"],
                                            seed=protocol_seed("mujoco", i))
    sd.insert(0, "task", task)
    base = continuous_reference_returns(task, section["baseline_episodes"], seed=protocol_seed("mujoco_reference", i))
    ppo_seed = protocol_seed("ppo_mujoco", i)  # trains the baseline; its evaluation uses the next seed
    ppo_cfg, ppo_steps = resolve_ppo(f"mujoco-{task}", seed=ppo_seed), int(setting(section, "ppo_env_steps", task))
    ppo, ppo_returns = ppo_baseline(ppo_cfg, ppo_steps, ppo_baseline_path(out_root, task),
                                    episodes=section["learners"] * section["episodes"], seed=ppo_seed + 1)
    ppo_curve = pd.DataFrame(ppo.history)
    # the same training with its policy evaluated every ppo_eval_every iterations on eval_learners fresh episodes
    # (their own envs and seeds): the curve that compares with PPMO's evaluations of fresh one-step learners
    evaluated = run_ppo_evaluated(ppo_cfg, ppo_steps, ppo_evaluated_path(out_root, task),
                                  eval_every=int(setting(section, "ppo_eval_every", task)),
                                  eval_episodes=int(section["eval_learners"]))
    ppo_evals = evaluated_curve(evaluated)
    # the evaluations only watch the training: the evaluated run must end with the baseline's own policy
    same_policy = ppo.actor.keys() == evaluated.actor.keys() and all(
        torch.equal(ppo.actor[k], evaluated.actor[k]) for k in ppo.actor)
    one_step, one_step_lo, one_step_hi = mean_ci95(sd["return"].to_numpy())
    authors = {"authors' (v4) mean": float("nan"), "authors' (v4) CI low": float("nan"),
               "authors' (v4) CI high": float("nan"), "authors' (v4) evaluation": None}
    theirs = authors_mujoco(task)
    if theirs is not None:  # same learners, episodes and seed as ours
        a, name = store.dataset_returns(theirs, learners=section["learners"], episodes=section["episodes"],
                                        seed=protocol_seed("mujoco", i))
        authors = {"authors' (v4) mean": a.mean, "authors' (v4) CI low": a.ci95[0], "authors' (v4) CI high": a.ci95[1],
                   "authors' (v4) evaluation": name}
    reach = first_reach(ppo_evals, "sampled_return", one_step)  # PPO's evaluations, like the one-step learners'
    row = {
        "task": task, "obs": obs_size, "act": num_actions, "B": ds.size, "scale": scale,
        "meta-epochs": run.meta_epoch, "env steps": run.env_steps, "wall time s": run.wall_time,
        "learners x episodes": f"{section['learners']} x {section['episodes']}",
        "one-step mean": one_step, "one-step std": float(sd["return"].std()),
        "one-step CI low": one_step_lo, "one-step CI high": one_step_hi,
        "constant own action": float(sd["constant return"].mean()), "action std": float(sd["action std"].mean()),
        "random": float(base[base.policy == "random"]["return"].mean()),
        "zero action": float(base[base.policy == "zero action"]["return"].mean()),
        **{k: v for k, v in authors.items() if not k.endswith("evaluation")},
        "PPO return": float(ppo_returns.mean()), "PPO env steps": int(ppo_curve["env_steps"].iloc[-1]),
        "PPO wall time s": float(ppo_curve["wall_time_s"].iloc[-1]),
        "PPO evaluations": f"{len(ppo_evals)} x {int(section['eval_learners'])} episodes" + (
            f", every {int(ppo_evals['env_steps'].diff().median()):,} env steps" if len(ppo_evals) > 1 else ""),
        "PPO final evaluation (sampled)": float(ppo_evals["sampled_return"].iloc[-1]) if len(ppo_evals) else float("nan"),
        "PPO evaluated run is the baseline's": bool(same_policy),
        "PPO env steps to one-step return": reach["env_steps"], "PPO s to one-step return": reach["wall_time_s"],
        "lr": float(ds.lr), "evaluation": evaluation, **{k: v for k, v in authors.items() if k.endswith("evaluation")},
    }
    curves = []
    ev = pd.DataFrame(run.evals)
    if not ev.empty:
        curves.append(ev.assign(task=task, method="PPMO (one-step, sampled)").rename(columns={"sampled_return": "return"}))
    curves.append(ppo_evals.assign(task=task, method="PPO (evaluated, sampled)").rename(columns={"sampled_return": "return"}))
    curves = pd.concat(curves, ignore_index=True)[["task", "method", "env_steps", "wall_time_s", "return"]]
    return TaskSummary(row, sd, curves, ppo_evals.assign(task=task))
