"""Do InvertedDoublePendulum's one-step learners depend less on their init when the synthetic states start small?

Notebook 02's InvertedDoublePendulum learners failed mostly by learner init (some inits fall in all
their episodes, ``benchmarks/idp_step_size.py``). Why the init matters: the learner's mean is
W3 tanh(W2 tanh(W1 x)) with orthogonal W1, W2 of gain sqrt 2 (so W1^T W1 = W2^T W2 = 2 I) and zero
biases, and the output layer starts at gain 0.01, so the one SGD step changes mostly W3 (the hidden
layers' gradients pass through W3): the one-step mean is about (2 lr / B) sum_i y_i h(x_i)^T h(s),
a kernel machine over the init's random features h. Where the tanh layers are linear (small
inputs) h(x_i)^T h(s) = 4 x_i^T s for *every* init; synthetic states drawn from N(0, 1) start where
the features are nonlinear and init-dependent. This script distils with the synthetic states
starting from N(0, std^2) for several std, everything else notebook 02's setting (entropy bonus
0.01, 2 inits x 10 envs, training episodes truncated at 200 steps, 1500 meta-epochs, no stop rule):

- std 1.0: notebook 02's previous setting (the ``b64`` run of ``benchmarks/idp_snapshots.py``);
- std 0.1: notebook 02's setting when this ran (its run, ``..._states0.1``, not repeated; notebook 02
  now also scales the observations and bounds the states, ``benchmarks/idp_obs_scale.py``);
- std 0.03, 0.01: run here.

Every final dataset is evaluated under notebook 02's protocol (20 learners x 3 episodes, its seed)
and with 200 fresh learners x 1 episode on a separate seed (a smaller error on the mean: the
protocol's 20 inits are a small sample of inits). Writes
``results/mujoco/variants/InvertedDoublePendulum-v5_state_scale.{csv,md}``; runs resume.

    python benchmarks/idp_state_scale.py
"""

from __future__ import annotations

import pandas as pd
import torch

from paper_code.config import load_scale, project_root
from paper_code.dataset import DistilledDataset
from paper_code.envs import make_env
from paper_code.evaluation import evaluate_dataset
from paper_code.experiment import run_or_resume
from paper_code.mujoco import (mujoco_config, protocol_seeds, state_dependence, stop_rule,
                               task_setting)
from paper_code.reporting import write_table

from idp_snapshots import run_variant

TASK = "InvertedDoublePendulum-v5"
BUDGET = 1500
STDS = (0.03, 0.01)  # run here
FULL = 9000.0  # a balanced 1000-step episode scores ~9330
MANY, MANY_SEED = 200, 60_006  # neither the protocol's seed (40006) nor idp_snapshots' validation seed (50006)


def protocol_and_many(ds: DistilledDataset, section: dict, env) -> dict[str, float]:
    """A dataset under notebook 02's protocol (its seed; per learner the mean of its episodes) and
    with ``MANY`` fresh learners x 1 episode in ``env`` (``MANY`` envs, seed ``MANY_SEED``)."""
    proto = state_dependence(ds, learners=int(section["learners"]), episodes=int(section["episodes"]),
                             seed=protocol_seeds(section, TASK)["protocol"])["return"]
    many = evaluate_dataset(ds, learners=MANY, episodes=1, seed=MANY_SEED, env=env).returns.flatten()
    return {"protocol mean": float(proto.mean()), "protocol std": float(proto.std()),
            "protocol learners above 9000": float((proto > FULL).mean()),
            f"{MANY} learners mean": float(many.mean()), f"{MANY} learners std error": float(many.std() / MANY ** 0.5),
            f"{MANY} learners full episodes": float((many > FULL).float().mean())}


def main() -> None:
    torch.set_num_threads(1)
    section = load_scale("paper")["mujoco"]
    results = project_root() / "results"
    out = results / "mujoco" / "variants"
    paper = mujoco_config(section, TASK)
    if int(task_setting(section, "meta_epochs", TASK)) != BUDGET or stop_rule(section, TASK)["stop_at_return"] is not None:
        raise SystemExit(f"notebook 02's {TASK} run is no longer {BUDGET} meta-epochs without a stop rule")
    paths = {1.0: out / "snapshots" / "b64" / "final.safetensors"}
    run_variant(section, "b64", out / "snapshots", BUDGET)  # resumes; a finished run costs nothing
    for std in (0.1, *STDS):  # 0.1: notebook 02's run when this ran (moved here)
        paths[std] = out / f"{TASK}_b{paper.size}_states{std:g}.safetensors"
        run_or_resume(mujoco_config(section, TASK, init_state_std=std, obs_scale=1.0, state_bound=None), paths[std], BUDGET)
    env = make_env(TASK, MANY, seed=MANY_SEED, check_actions=False)
    rows = []
    for std in sorted(paths, reverse=True):
        ds = DistilledDataset.load(paths[std])
        cfg = ds.provenance["config"]
        if (cfg.get("init_state_std", 1.0), cfg.get("obs_scale", 1.0), cfg.get("state_bound"),
                ds.provenance["meta_epochs"]) != (std, 1.0, None, BUDGET):
            raise SystemExit(f"{paths[std]} was not distilled with states from N(0, {std:g}^2), unscaled and unbounded, "
                             f"for {BUDGET} meta-epochs")
        rows.append({"task": TASK, "initial state std": std, "notebook 02": {1.0: "earlier", 0.1: "previous"}.get(std, ""),
                     "meta-epochs": ds.provenance["meta_epochs"],
                     "mean |state| (final)": float(ds.states.abs().mean()), "inner lr": float(ds.lr),
                     **protocol_and_many(ds, section, env)})
        print(rows[-1], flush=True)
    env.close()
    table = pd.DataFrame(rows)
    write_table(table, out / f"{TASK}_state_scale")
    print(table.round(2).to_string(index=False))


if __name__ == "__main__":
    main()
