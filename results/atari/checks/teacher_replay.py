"""Does the PPO teacher itself beat its own actions replayed state-blind? (issue 39, Centipede)

The test notebook 03 holds a distilled Atari set to (its sampled one-step return against the same learners'
sampled-action frequencies replayed in every state) applied to the teacher a set is fitted to: N episodes of the
teacher's sampled actions (counting each episode's actions until it ends), then each episode's action
frequencies replayed as a state-independent policy on the same reset seed. Ad hoc check, not a notebook table.

    python results/atari/checks/teacher_replay.py Centipede [--episodes 50] [--seed 0]
    # -> teacher_replay_<game>_<episodes>.json beside this script
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from paper_code.core.evaluation import first_episode_returns, mean_ci95
from paper_code.core.learners import forward
from paper_code.core.policies import Categorical, head, sample
from paper_code.core.observations import prepare
from paper_code.core.ppo import load_policy, policy_config
from paper_code.envs import make_env, return_bounds
from paper_code.project import project_root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("game")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    path = project_root() / "results" / "atari" / "teachers" / f"ppo_{args.game}.safetensors"
    result, meta = load_policy(path)
    cfg = policy_config(meta)
    env = make_env(cfg.env_id, args.episodes, seed=args.seed, check_actions=False, **cfg.env_kwargs)
    dist, n = head(cfg.learner.policy), args.episodes
    out = {"teacher": str(path.relative_to(project_root())), "env_id": cfg.env_id, "env_kwargs": cfg.env_kwargs,
           "episodes": n, "seed": args.seed}
    counts = torch.zeros(n, env.num_actions, dtype=torch.long)
    active = torch.ones(n, dtype=torch.bool)

    def stop_counting(step) -> None:  # an env's first episode has ended
        active.logical_and_(~(step.terminated | step.truncated))

    for mode in ("sampled", "replayed"):
        g = torch.Generator().manual_seed(args.seed)
        if mode == "sampled":
            def act(obs: torch.Tensor) -> torch.Tensor:
                a = sample(dist, forward(result.actor, prepare(obs, result.obs_mean, result.obs_var), cfg.learner.activation), g)
                counts[torch.arange(n)[active], a[active]] += 1
                return a
        else:
            freq = (counts.double() + 1e-12) / (counts.sum(-1, keepdim=True) + 1e-12)

            def act(obs: torch.Tensor) -> torch.Tensor:
                return sample(Categorical, freq.log(), g)
        t0 = time.perf_counter()
        returns, _ = first_episode_returns(env, act, seed=args.seed, on_step=stop_counting if mode == "sampled" else None)
        r = returns.double().numpy()
        mean, lo, hi = mean_ci95(r, return_bounds(cfg.env_id, cfg.env_kwargs))
        out[mode] = {"mean": mean, "CI low": lo, "CI high": hi, "returns": r.tolist(),
                     "seconds": round(time.perf_counter() - t0, 1)}
    diff = np.array(out["sampled"]["returns"]) - np.array(out["replayed"]["returns"])
    out["sampled - replayed"] = float(diff.mean())
    out["diff s.e."] = float(diff.std(ddof=1) / np.sqrt(n))
    share = counts.sum(0).double() / counts.sum()
    out["top sampled action share"] = float(share.max())
    env.close()
    dst = Path(__file__).with_name(f"teacher_replay_{args.game}_{n}.json")
    dst.write_text(json.dumps(out, indent=1) + "\n")
    print({k: (v if not isinstance(v, dict) else {kk: vv for kk, vv in v.items() if kk != "returns"}) for k, v in out.items()})


if __name__ == "__main__":
    main()
