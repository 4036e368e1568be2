"""How notebook 02's InvertedDoublePendulum datasets fail: by learner init, initial state or step size?

1. ``{task}_step_size``: the same 20 fresh learners x 3 episodes as notebook 02's protocol (its
   seed for the task: same inits, same initial states), trained one SGD step with the dataset's
   learned lr scaled by a factor. Per factor: the mean return, the share of full episodes (return
   > 9000, i.e. balanced for all 1000 steps) and, per learner, how many of its 3 episodes were full.
2. ``{task}_failures``: learner inits and initial states crossed. 20 learners x 1 episode, learner
   ``i`` always in env slot ``i``; the learners' seed and the envs' reset seed vary independently.
   A slot that fails under every learner seed points at its initial state, a learner that fails
   under every env seed at its init.

For notebook 02's current dataset (normalised observations x 0.3, synthetic states started from
N(0, 0.1^2) and kept in [-0.25, 0.25], ``benchmarks/idp_obs_scale.py``), its previous one (the same
without the scale and the bound, ``..._states0.1``), an earlier one (the ``ent0.01-k2-trunc200``
variant of ``benchmarks/mujoco_variants.py``: states from N(0, 1), 2 inits x 10 envs, training
episodes truncated at 200, stopped at its first evaluation >= 9300) and the earliest (``ent0.01``:
entropy bonus, K = 1, untruncated training episodes).
Writes ``results/mujoco/variants/InvertedDoublePendulum-v5_{step_size,failures}.{csv,md}``.

    python benchmarks/idp_step_size.py
"""

from __future__ import annotations

import pandas as pd
import torch

from paper_code.config import load_scale, project_root
from paper_code.dataset import DistilledDataset
from paper_code.envs import make_env
from paper_code.evaluation import evaluate_dataset, first_episode_returns, learner_policy, trained_learners
from paper_code.mujoco import mujoco_dataset_path, protocol_seeds
from paper_code.reporting import write_table

TASK = "InvertedDoublePendulum-v5"
FACTORS = (0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.5)
FULL = 9000.0  # a balanced 1000-step episode scores ~9330
SEEDS = (1, 2, 3)  # offsets of the learner / env seeds from the protocol's


def crossed(ds: DistilledDataset, learners: int, learner_seed: int, env_seed: int) -> torch.Tensor:
    """Returns [learners] of ``learners`` fresh learners (drawn from ``learner_seed``), learner i
    acting (sampled) in env slot i reset with ``env_seed``."""
    env = make_env(ds.env_id, learners, seed=env_seed, check_actions=False, **ds.env_kwargs)
    g = torch.Generator().manual_seed(learner_seed)
    params = trained_learners(ds, learners, observation_shape=env.observation_shape, num_actions=env.num_actions,
                              generator=g)
    policy = learner_policy(params, learners, ds.learner.activation, greedy=False, generator=g,
                            policy=ds.learner.policy, normalize=lambda obs: ds.features(ds.normalize(obs)))
    returns, _ = first_episode_returns(env, policy, seed=env_seed)
    env.close()
    return returns


def main() -> None:
    torch.set_num_threads(1)
    section = load_scale("paper")["mujoco"]
    results = project_root() / "results"
    size = int(section["size"])
    variants = results / "mujoco" / "variants"
    datasets = {"notebook 02": mujoco_dataset_path(results, TASK, size),
                "previous (states0.1)": variants / f"{TASK}_b{size}_states0.1.safetensors",
                "earlier (ent0.01-k2-trunc200)": variants / f"{TASK}_b{size}_ent0.01-k2-trunc200.safetensors",
                "earliest (ent0.01)": variants / f"{TASK}_b{size}_ent0.01.safetensors"}
    seed = protocol_seeds(section, TASK)["protocol"]
    learners, episodes = int(section["learners"]), int(section["episodes"])
    rows, cross = [], []
    for name, path in datasets.items():
        ds = DistilledDataset.load(path)
        for f in FACTORS:
            ev = evaluate_dataset(ds, learners=learners, episodes=episodes, seed=seed, lr=float(ds.lr) * f)
            is_full = ev.returns > FULL  # [learners, episodes]
            full = is_full.sum(1)  # [learners]
            rows.append({"dataset": name, "lr factor": f, "lr": float(ds.lr) * f, "mean return": ev.mean, "std": ev.std,
                         "full episodes": float(is_full.float().mean()),
                         "learners with 0 full episodes": int((full == 0).sum()),
                         "full episodes per learner": "".join(str(int(n)) for n in full.tolist())})
        pairs = [(seed + i, seed + j) for i in SEEDS for j in SEEDS]
        for ls, es in pairs:
            full = crossed(ds, learners, ls, es) > FULL
            cross.append({"dataset": name, "learner seed": ls, "env seed": es, "full episodes": float(full.float().mean()),
                          "full (#) or not (.) per slot": "".join("#" if x else "." for x in full.tolist())})
        block = pd.DataFrame(cross[-len(pairs):])
        slots = torch.tensor([[c == "#" for c in s] for s in block["full (#) or not (.) per slot"]])  # [pairs, L]
        by_env = {es: slots[torch.tensor((block["env seed"] == es).values)] for es in block["env seed"].unique()}
        by_learner = {ls: slots[torch.tensor((block["learner seed"] == ls).values)] for ls in block["learner seed"].unique()}
        cross.append({"dataset": name, "learner seed": "summary", "env seed": "",
                      "full episodes": float(slots.float().mean()),
                      "full (#) or not (.) per slot": (
                          f"slots failing under all {len(SEEDS)} learner seeds, per env seed: "
                          f"{[int((~v).all(0).sum()) for v in by_env.values()]}; learners failing under all "
                          f"{len(SEEDS)} env seeds, per learner seed: {[int((~v).all(0).sum()) for v in by_learner.values()]}")})
    out = results / "mujoco" / "variants"
    table = pd.DataFrame(rows)
    write_table(table, out / f"{TASK}_step_size")
    print(table.round(3).to_string(index=False))
    failures = pd.DataFrame(cross)
    write_table(failures, out / f"{TASK}_failures")
    print(failures.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
