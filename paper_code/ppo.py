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
from tqdm import tqdm

from .envs import make_env
from .evaluation import first_episode_returns
from .files import atomic_path
from .learners import LearnerSpec, forward, init_params
from .observations import RunningMeanStd, prepare
from .policies import head, sample, scale_rewards
from .rl import bootstrap_values, episode_stats, gae, policy_loss, rollout, value_loss
from .settings import PPOConfig


@dataclass
class PPOResult:
    actor: dict[str, torch.Tensor]
    history: list[dict[str, float]]  # per iteration: env_steps, wall_time_s, train_return
    obs_mean: torch.Tensor | None = None  # observation statistics (with normalize_obs)
    obs_var: torch.Tensor | None = None


def train_ppo(cfg: PPOConfig, total_env_steps: int, *, progress: bool = True) -> PPOResult:
    """Train for ``total_env_steps`` env steps; returns the actor and the learning curve.

    A Gaussian learner (continuous actions) has its ``log_std`` in the actor's parameters (as
    CleanRL's ``ppo_continuous_action.py``). With ``normalize_obs`` the actor's observation
    statistics are returned in ``PPOResult.obs_mean``/``obs_var``.
    """
    dev = cfg.device
    env = make_env(cfg.env_id, cfg.num_envs, device=dev, seed=cfg.seed, check_actions=False, **cfg.env_kwargs)
    g = torch.Generator(device=dev)
    g.manual_seed(cfg.seed)
    D, A = env.observation_size, env.num_actions
    dist = head(cfg.learner.policy)
    actor = {k: v.requires_grad_() for k, v in init_params(cfg.learner, D, A, g, device=dev).items()}
    critic_spec = LearnerSpec(hidden=tuple(cfg.critic_hidden), activation="tanh", output_gain=1.0)
    critic = {k: v.requires_grad_() for k, v in init_params(critic_spec, D, 1, g, device=dev).items()}
    params = [*actor.values(), *critic.values()]
    opt = torch.optim.Adam(params, lr=cfg.lr, eps=cfg.adam_eps)
    act_fn = cfg.learner.activation
    obs_rms = RunningMeanStd((D,), dev) if cfg.normalize_obs else None
    ret_rms = RunningMeanStd((), dev) if cfg.normalize_reward else None
    ret_acc = torch.zeros(cfg.num_envs, device=dev)

    def norm(obs: torch.Tensor) -> torch.Tensor:
        return prepare(obs) if obs_rms is None else prepare(obs, obs_rms.mean, obs_rms.var)

    def value(obs: torch.Tensor) -> torch.Tensor:  # on normalised observations
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
            log_std = actor.get("log_std")
            roll = rollout(env, obs, lambda x: forward(actor, x, act_fn), cfg.num_steps, g, dist, log_std, prepare=norm)
            obs = roll["last_obs"]
            prepared = roll["prepared"]  # the observations as the actor saw them
            values, next_values = bootstrap_values(lambda o: value(norm(o)), roll, value(prepared))
            rewards = roll["rewards"]
            if ret_rms is not None:
                rewards, ret_acc = scale_rewards(rewards, roll["terminated"] | roll["truncated"], ret_acc, ret_rms, cfg.gamma)
            adv, returns = gae(rewards, values, next_values, roll["terminated"], roll["truncated"],
                               cfg.gamma, cfg.gae_lambda)
            b_obs, b_act = prepared.flatten(0, 1), roll["actions"].flatten(0, 1)
            b_adv, b_ret = adv.flatten(), returns.flatten()
            b_logp = dist.log_prob(forward(actor, b_obs, act_fn), b_act, log_std)
        for _ in range(cfg.update_epochs):
            for idx in torch.randperm(b_obs.shape[0], generator=g, device=dev).split(cfg.minibatch_size):
                out = forward(actor, b_obs[idx], act_fn)
                pg, _ = policy_loss(cfg.learner.policy, out, b_act[idx], b_logp[idx], b_adv[idx], log_std=log_std,
                                    clip_coef=cfg.clip_coef, ent_coef=cfg.ent_coef)
                loss = pg + value_loss(value(b_obs[idx]), b_ret[idx], 0.5 * cfg.vf_coef)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                opt.step()
        if obs_rms is not None:
            obs_rms.update(roll["obs"].flatten(0, 1))
        env_steps += cfg.num_envs * cfg.num_steps
        wall += time.perf_counter() - t0
        n, mean_return = episode_stats(roll)
        history.append({"iteration": it + 1, "env_steps": env_steps, "wall_time_s": wall,
                        "episodes": float(n), "train_return": float(mean_return) if n > 0 else float("nan")})
    stats = {} if obs_rms is None else {"obs_mean": obs_rms.mean.float(), "obs_var": obs_rms.var.float()}
    return PPOResult({k: v.detach() for k, v in actor.items()}, history, **stats)


@torch.no_grad()
def evaluate_policy(actor: dict[str, torch.Tensor], cfg: PPOConfig, *, episodes: int, greedy: bool, seed: int = 0,
                    obs_mean: torch.Tensor | None = None, obs_var: torch.Tensor | None = None) -> torch.Tensor:
    """Returns of ``episodes`` episodes of a trained actor (all stepped together)."""

    env = make_env(cfg.env_id, episodes, device=cfg.device, seed=seed, check_actions=False, **cfg.env_kwargs)
    g = torch.Generator(device=cfg.device)
    g.manual_seed(seed)
    dist = head(cfg.learner.policy)

    def policy(obs: torch.Tensor) -> torch.Tensor:
        if obs_mean is not None:
            obs = prepare(obs, obs_mean, obs_var)
        out = forward(actor, obs, cfg.learner.activation)
        return dist.greedy(out) if greedy else sample(dist, out, g, actor.get("log_std"))

    returns, _ = first_episode_returns(env, policy, seed=seed)
    return returns.cpu()


def _cache_key(cfg: PPOConfig, total_env_steps: int) -> str:
    """What identifies a PPO run; settings added later are left out at their defaults, so files
    written before they existed stay valid."""
    import json

    d = {**asdict(cfg), "learner": asdict(cfg.learner)}
    for k, default in (("normalize_obs", False), ("normalize_reward", False)):
        if d[k] == default:
            d.pop(k)
    for k, default in (("policy", "categorical"), ("init_log_std", 0.0), ("split", 0)):
        if d["learner"][k] == default:
            d["learner"].pop(k)
    return json.dumps({"config": d, "total_env_steps": int(total_env_steps)}, sort_keys=True, default=list)


def train_ppo_cached(cfg: PPOConfig, total_env_steps: int, path: str | Path, *, progress: bool = True) -> PPOResult:
    """:func:`train_ppo`, or its saved result if ``path`` holds one for the same configuration
    and budget (a safetensors file: the actor's tensors, the config and the learning curve as
    metadata). Lets the notebooks re-run without retraining the baseline."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    path = Path(path)
    key = _cache_key(cfg, total_env_steps)
    stat_names = ("obs_mean", "obs_var")
    if path.exists():
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("key") == key:
                tensors = {k: f.get_tensor(k) for k in f.keys()}
                stats = {k: tensors.pop("__" + k) for k in stat_names if "__" + k in tensors}
                return PPOResult(tensors, json.loads(meta["history"]), **stats)
    result = train_ppo(cfg, total_env_steps, progress=progress)
    tensors = {k: v.contiguous() for k, v in result.actor.items()}
    tensors.update({"__" + k: getattr(result, k).contiguous() for k in stat_names if getattr(result, k) is not None})
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata={"key": key, "history": json.dumps(result.history, separators=(",", ":"))})
    return result


def ppo_baseline(cfg: PPOConfig, env_steps: int, path: str | Path, *, episodes: int, seed: int,
                 progress: bool = False) -> tuple[PPOResult, torch.Tensor]:
    """Plain PPO (cached in ``path``, :func:`train_ppo_cached`) and the sampled returns of its
    final policy over ``episodes`` episodes."""
    result = train_ppo_cached(cfg, env_steps, path, progress=progress)
    returns = evaluate_policy(result.actor, cfg, episodes=episodes, greedy=False, seed=seed,
                              obs_mean=result.obs_mean, obs_var=result.obs_var)
    return result, returns
