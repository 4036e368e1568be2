"""How much of the teacher's action distribution depends on the state? (issue 39, Centipede)

A one-step learner that acts the same in every state can at best match the teacher's *average* action
distribution pi_bar over the states it visits; its KL to the teacher is then E_s KL(pi(s) || pi_bar), the
mutual information I(S; A) of the teacher's state and action (the least KL any state-blind policy reaches).
A fit whose KL to the teacher sits at that floor carries none of the teacher's state dependence; the gap
below it is what the fit learned about the state. States: the teacher's own sampled episodes
(``--envs`` envs x ``--steps`` agent steps, episodes reset as they end), as a fit's pool is collected.
Ad hoc check, not a notebook table.

    python results/atari/checks/teacher_information.py Centipede [--envs 16] [--steps 500] [--seed 0]
    # -> teacher_information_<game>_<envs>x<steps>.json beside this script
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from paper_code.core.learners import forward
from paper_code.core.observations import prepare
from paper_code.core.policies import head, sample
from paper_code.core.ppo import load_policy, policy_config
from paper_code.envs import action_names, make_env
from paper_code.project import project_root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("game")
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    path = project_root() / "results" / "atari" / "teachers" / f"ppo_{args.game}.safetensors"
    result, meta = load_policy(path)
    cfg = policy_config(meta)
    env = make_env(cfg.env_id, args.envs, seed=args.seed, check_actions=False, **cfg.env_kwargs)
    dist, g = head(cfg.learner.policy), torch.Generator().manual_seed(args.seed)
    obs, probs = env.reset(seed=args.seed), []
    with torch.no_grad():
        for _ in range(args.steps):
            logits = forward(result.actor, prepare(obs, result.obs_mean, result.obs_var), cfg.learner.activation)
            probs.append(torch.softmax(logits.double(), -1))
            obs = env.step(sample(dist, logits, g)).obs
    env.close()
    p = torch.cat(probs)  # [states, A]
    p_bar = p.mean(0)
    kl = (p * (p.clamp_min(1e-30).log() - p_bar.log())).sum(-1)
    entropy = -(p * p.clamp_min(1e-30).log()).sum(-1)
    names = action_names(args.game)
    out = {"teacher": str(path.relative_to(project_root())), "env_id": cfg.env_id, "env_kwargs": cfg.env_kwargs,
           "states": len(p), "envs": args.envs, "steps": args.steps, "seed": args.seed,
           "state-blind KL floor I(S;A)": float(kl.mean()),
           "mean entropy of pi(s)": float(entropy.mean()),
           "entropy of pi_bar": float(-(p_bar * p_bar.log()).sum()),
           "pi_bar": {names[i]: round(float(v), 4) for i, v in enumerate(p_bar)},
           "teacher's greedy action = pi_bar's top action, share of states": float((p.argmax(-1) == p_bar.argmax()).double().mean())}
    dst = Path(__file__).with_name(f"teacher_information_{args.game}_{args.envs}x{args.steps}.json")
    dst.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
