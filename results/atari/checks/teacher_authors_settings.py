"""The SpaceInvaders PPO teacher under the authors' settings (no sticky actions, ALE's own 27,000-agent-step cap):
the ceiling of what a set fitted to it can be expected to score there. Run from the repository root:
``python results/atari/checks/teacher_authors_settings.py`` -> ``teacher_SpaceInvaders_authors_settings_50.json``."""
import dataclasses
import json
import sys
import time
from pathlib import Path

from paper_code.core.ppo import evaluate_policy, load_policy, policy_config
from paper_code.core.evaluation import mean_ci95
from paper_code.pipeline.authors_datasets import ATARI_ENV_KWARGS

game = sys.argv[1] if len(sys.argv) > 1 else "SpaceInvaders"
episodes = 50
result, meta = load_policy(f"results/atari/teachers/ppo_{game}.safetensors")
cfg = policy_config(meta)
ours = dict(cfg.env_kwargs)
authors = {k: v for k, v in ours.items() if k not in ("repeat_action_probability", "max_episode_steps")}
authors.update(ATARI_ENV_KWARGS)
out = {"teacher": f"results/atari/teachers/ppo_{game}.safetensors", "episodes": episodes, "seed": 0,
       "our_env_kwargs": ours, "authors_env_kwargs": authors}
for mode in ("sampled", "greedy"):
    t0 = time.time()
    r = evaluate_policy(result.actor, dataclasses.replace(cfg, env_kwargs=authors), episodes=episodes,
                        greedy=mode == "greedy", seed=0, obs_mean=result.obs_mean, obs_var=result.obs_var).double()
    mean, lo, hi = mean_ci95(r)
    out[mode] = {"mean": mean, "ci95": [lo, hi], "returns": r.tolist(), "wall_s": round(time.time() - t0, 1)}
    print(mode, round(mean, 1), [round(lo, 1), round(hi, 1)], out[mode]["wall_s"], "s", flush=True)
Path(f"results/atari/checks/teacher_{game}_authors_settings_{episodes}.json").write_text(json.dumps(out, indent=1))
