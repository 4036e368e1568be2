"""Plain PPO (CleanRL-style) with the same network as the learner, on a batched environment.

The baseline that distillation is compared against: what does it cost to train the policy
directly? Actor and critic are separate MLPs trained by one Adam on
``pg_loss - ent_coef * entropy + vf_coef * value_loss`` (CleanRL's ``ppo.py``), with the same GAE
and clipped loss as PPMO (:mod:`paper_code.rl`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .envs import make_batched
from .learners import PAPER_LEARNER, LearnerSpec, forward, init_params
from .reporting import atomic_path
from .rl import RLSettings, bootstrap_values, episode_stats, gae, ppo_policy_loss, rollout


@dataclass
class PPOConfig(RLSettings):
    """Plain PPO: the shared :class:`~paper_code.rl.RLSettings` plus the actor and its optimiser."""

    learner: LearnerSpec = PAPER_LEARNER
    lr: float = 2.5e-4
    anneal_lr: bool = False


@dataclass
class PPOResult:
    actor: dict[str, torch.Tensor]
    history: list[dict[str, float]]  # per iteration: env_steps, wall_time_s, train_return


def train_ppo(cfg: PPOConfig, total_env_steps: int, *, progress: bool = True) -> PPOResult:
    """Train for ``total_env_steps`` env steps; returns the actor and the learning curve."""
    from tqdm.auto import tqdm

    dev = cfg.device
    env = make_batched(cfg.env_id, cfg.num_envs, device=dev, seed=cfg.seed, check_actions=False, **cfg.env_kwargs)
    g = torch.Generator(device=dev)
    g.manual_seed(cfg.seed)
    D, A = env.observation_size, env.num_actions
    actor = {k: v.requires_grad_() for k, v in init_params(cfg.learner, D, A, g, device=dev).items()}
    critic_spec = LearnerSpec(hidden=tuple(cfg.critic_hidden), activation="tanh", output_gain=1.0)
    critic = {k: v.requires_grad_() for k, v in init_params(critic_spec, D, 1, g, device=dev).items()}
    params = [*actor.values(), *critic.values()]
    opt = torch.optim.Adam(params, lr=cfg.lr, eps=cfg.adam_eps)
    act_fn = cfg.learner.activation

    def value(obs: torch.Tensor) -> torch.Tensor:
        return forward(critic, obs, "tanh").squeeze(-1)

    iterations = max(1, total_env_steps // (cfg.num_envs * cfg.num_steps))
    obs = env.reset(seed=cfg.seed)
    history: list[dict[str, float]] = []
    env_steps, wall = 0, 0.0
    for it in tqdm(range(iterations), disable=not progress, unit="iter", mininterval=1.0):
        t0 = time.perf_counter()
        if cfg.anneal_lr:
            opt.param_groups[0]["lr"] = cfg.lr * (1 - it / iterations)
        with torch.no_grad():
            roll = rollout(env, obs, lambda o: forward(actor, o, act_fn), cfg.num_steps, g)
            obs = roll["last_obs"]
            values, next_values = bootstrap_values(value, roll)
            adv, returns = gae(roll["rewards"], values, next_values, roll["terminated"], roll["truncated"],
                               cfg.gamma, cfg.gae_lambda)
            b_obs, b_act = roll["obs"].flatten(0, 1), roll["actions"].flatten()
            b_adv, b_ret = adv.flatten(), returns.flatten()
            b_logp = torch.log_softmax(forward(actor, b_obs, act_fn), -1).gather(-1, b_act[:, None]).squeeze(-1)
        for _ in range(cfg.update_epochs):
            for idx in torch.randperm(b_obs.shape[0], generator=g, device=dev).split(cfg.minibatch_size):
                pg, _ = ppo_policy_loss(forward(actor, b_obs[idx], act_fn), b_act[idx], b_logp[idx], b_adv[idx],
                                        clip_coef=cfg.clip_coef, ent_coef=cfg.ent_coef)
                v_loss = 0.5 * (value(b_obs[idx]) - b_ret[idx]).pow(2).mean()
                loss = pg + cfg.vf_coef * v_loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                opt.step()
        env_steps += cfg.num_envs * cfg.num_steps
        wall += time.perf_counter() - t0
        n, mean_return = episode_stats(roll)
        history.append({"iteration": it + 1, "env_steps": env_steps, "wall_time_s": wall,
                        "episodes": float(n), "train_return": float(mean_return) if n > 0 else float("nan")})
    return PPOResult({k: v.detach() for k, v in actor.items()}, history)


@torch.no_grad()
def evaluate_policy(actor: dict[str, torch.Tensor], cfg: PPOConfig, *, episodes: int, greedy: bool, seed: int = 0) -> torch.Tensor:
    """Returns of ``episodes`` episodes of a trained actor (all stepped together)."""
    from .evaluation import first_episode_returns

    env = make_batched(cfg.env_id, episodes, device=cfg.device, seed=seed, check_actions=False, **cfg.env_kwargs)
    g = torch.Generator(device=cfg.device)
    g.manual_seed(seed)

    def policy(obs: torch.Tensor) -> torch.Tensor:
        logits = forward(actor, obs, cfg.learner.activation)
        return logits.argmax(-1) if greedy else torch.multinomial(logits.softmax(-1), 1, generator=g).squeeze(-1)

    returns, _ = first_episode_returns(env, policy, seed=seed)
    return returns.cpu()


def train_ppo_cached(cfg: PPOConfig, total_env_steps: int, path: str | Path, *, progress: bool = True) -> PPOResult:
    """:func:`train_ppo`, or its saved result if ``path`` holds one for the same configuration
    and budget (a safetensors file: the actor's tensors, the config and the learning curve as
    metadata). Lets the notebooks re-run without retraining the baseline."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    path = Path(path)
    key = json.dumps({"config": {**asdict(cfg), "learner": asdict(cfg.learner)}, "total_env_steps": int(total_env_steps)},
                     sort_keys=True, default=list)
    if path.exists():
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("key") == key:
                return PPOResult({k: f.get_tensor(k) for k in f.keys()}, json.loads(meta["history"]))
    result = train_ppo(cfg, total_env_steps, progress=progress)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in result.actor.items()}, tmp,
                  metadata={"key": key, "history": json.dumps(result.history, separators=(",", ":"))})
    return result
