"""Plain PPO (CleanRL-style) with the same network as the learner, on a batched environment.

The baseline that distillation is compared against, and the **teacher** that ``compress`` fits a
small dataset to. An MLP learner (cart-pole, MuJoCo, any Box-observation task) has a separate MLP
critic (CleanRL's ``ppo.py`` / ``ppo_continuous_action.py``); the Nature-CNN (Atari) shares its
trunk (layers c0..c3) between the actor's head c4 and a value head ``v`` (CleanRL's
``ppo_atari.py``). One Adam trains both on ``pg_loss - ent_coef * entropy + vf_coef * value_loss``
with the same GAE and clipped loss as PPMO (:mod:`paper_code.core.rl`).

:class:`PPO` is one run's complete state and one iteration (:meth:`PPO.step`); :func:`train_ppo`
runs it in memory; :func:`paper_code.runs.training.ppo_file` runs it to a policy file with the
lifecycle every training run has (``python -m paper_code ppo``: progress, periodic evaluations of the
policy, checkpoints, resume, interrupts).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from paper_code.core.evaluation import first_episode_returns, mean_ci95
from paper_code.core.learners import LearnerSpec, cnn_forward, forward, init_params, learner_input
from paper_code.core.observations import RunningMeanStd, prepare
from paper_code.core.policies import head, sample, scale_rewards
from paper_code.core.rl import bootstrap_values, episode_stats, gae, policy_loss, rollout, value_loss
from paper_code.core.settings import PPOConfig
from paper_code.envs import make_env, return_bounds
from paper_code.files import CheckpointError, atomic_path

Params = dict[str, torch.Tensor]
#: the Nature-CNN's output layer: the actor's head on the shared trunk
CNN_HEAD = "c4"


@dataclass
class PPOResult:
    actor: dict[str, torch.Tensor]
    history: list[dict[str, float]]  # per iteration: env_steps, wall_time_s, train_return
    obs_mean: torch.Tensor | None = None  # observation statistics (with normalize_obs)
    obs_var: torch.Tensor | None = None
    critic: dict[str, torch.Tensor] | None = None
    evals: list[dict[str, float]] | None = None  # periodic evaluations of the policy (runs.training.ppo_file)


def _trunk(actor: Params) -> Params:
    return {k: v for k, v in actor.items() if not k.startswith(CNN_HEAD + ".")}


class PPO:
    """One PPO run: environments, actor, critic, Adam, random stream, counters and history.

    ``step()`` is one iteration (a rollout of ``num_envs x num_steps`` steps, then ``update_epochs``
    passes of minibatches); the learning rate anneals over ``iterations`` with ``anneal_lr``.
    ``state_dict()`` holds everything a resumed run needs except a gymnasium environment's
    simulator state: a resumed run starts fresh episodes (reset with a seed derived from the
    iteration), as a resumed PPMO run does.
    """

    def __init__(self, cfg: PPOConfig, total_env_steps: int) -> None:
        self.cfg = cfg
        dev = cfg.device
        self.iterations = max(1, int(total_env_steps) // (cfg.num_envs * cfg.num_steps))
        self.env = make_env(cfg.env_id, cfg.num_envs, device=dev, seed=cfg.seed, check_actions=False, **cfg.env_kwargs)
        env = self.env
        self.g = torch.Generator(device=dev)
        self.g.manual_seed(cfg.seed)
        self.dist = head(cfg.learner.policy)
        self.shared = cfg.learner.kind == "nature_cnn"  # CleanRL's Atari agent: one trunk, two heads
        in_size = learner_input(cfg.learner, env.observation_shape)
        self.actor = {k: v.requires_grad_() for k, v in init_params(cfg.learner, in_size, env.num_actions, self.g,
                                                                     device=dev).items()}
        if self.shared:
            w = torch.empty(1, self.actor[f"{CNN_HEAD}.weight"].shape[1], device=dev)
            torch.nn.init.orthogonal_(w, gain=1.0, generator=self.g)
            self.critic = {"v.weight": w.requires_grad_(), "v.bias": torch.zeros(1, device=dev, requires_grad=True)}
        else:
            critic_spec = LearnerSpec(hidden=tuple(cfg.critic_hidden), activation="tanh", output_gain=1.0)
            self.critic = {k: v.requires_grad_() for k, v in init_params(critic_spec, in_size, 1, self.g, device=dev).items()}
        self.params = [*self.actor.values(), *self.critic.values()]
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr, eps=cfg.adam_eps)
        D = env.observation_size
        self.obs_rms = RunningMeanStd((D,), dev) if cfg.normalize_obs else None
        self.ret_rms = RunningMeanStd((), dev) if cfg.normalize_reward else None
        self.ret_acc = torch.zeros(cfg.num_envs, device=dev)
        self.obs = env.reset(seed=cfg.seed)
        self.iteration, self.env_steps, self.wall_time = 0, 0, 0.0
        self.history: list[dict[str, float]] = []
        self.evals: list[dict[str, float]] = []

    # ----------------------------------------------------------------------------- the network
    def norm(self, obs: torch.Tensor) -> torch.Tensor:
        rms = self.obs_rms
        return prepare(obs) if rms is None else prepare(obs, rms.mean, rms.var)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(actor outputs, values) on prepared observations ``x``."""
        if self.shared:
            h = cnn_forward(_trunk(self.actor), x)
            out = F.linear(h, self.actor[f"{CNN_HEAD}.weight"], self.actor[f"{CNN_HEAD}.bias"])
            return out, F.linear(h, self.critic["v.weight"], self.critic["v.bias"]).squeeze(-1)
        return forward(self.actor, x, self.cfg.learner.activation), self.value(x)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """V of prepared observations ``x``."""
        if self.shared:
            h = cnn_forward(_trunk(self.actor), x)
            return F.linear(h, self.critic["v.weight"], self.critic["v.bias"]).squeeze(-1)
        return forward(self.critic, x, "tanh").squeeze(-1)

    # ----------------------------------------------------------------------------- one iteration
    def step(self) -> dict[str, float]:
        cfg, actor, dist, g = self.cfg, self.actor, self.dist, self.g
        t0 = time.perf_counter()
        it = self.iteration
        if cfg.anneal_lr:
            self.opt.param_groups[0]["lr"] = cfg.lr * (1 - it / self.iterations)
        act_fn = cfg.learner.activation
        with torch.no_grad():
            log_std = actor.get("log_std")
            if self.shared:  # the trunk once per step: its values are kept for GAE
                acted: list[torch.Tensor] = []

                def act(x: torch.Tensor) -> torch.Tensor:
                    out, v = self.heads(x)
                    acted.append(v)
                    return out
                roll = rollout(self.env, self.obs, act, cfg.num_steps, g, dist, log_std, prepare=self.norm)
                v_t = torch.stack(acted)
            else:
                roll = rollout(self.env, self.obs, lambda x: forward(actor, x, act_fn), cfg.num_steps, g, dist, log_std,
                               prepare=self.norm)
                v_t = None
            self.obs = roll["last_obs"]
            prepared = roll["prepared"]  # the observations as the actor saw them
            values, next_values = bootstrap_values(lambda o: self.value(self.norm(o)), roll,
                                                   self.value(prepared) if v_t is None else v_t)
            rewards = roll["rewards"]
            if cfg.clip_rewards:
                rewards = rewards.sign()
            if self.ret_rms is not None:
                rewards, self.ret_acc = scale_rewards(rewards, roll["terminated"] | roll["truncated"], self.ret_acc,
                                                      self.ret_rms, cfg.gamma)
            terminal = roll["terminated"]
            if cfg.life_loss_terminal and "life_lost" in roll:
                terminal = terminal | roll["life_lost"]
            adv, returns = gae(rewards, values, next_values, terminal, roll["truncated"], cfg.gamma, cfg.gae_lambda)
            b_obs, b_act = prepared.flatten(0, 1), roll["actions"].flatten(0, 1)
            b_adv, b_ret, b_val = adv.flatten(), returns.flatten(), values.flatten()
            b_logp = dist.log_prob(roll["out"].flatten(0, 1) if self.shared else forward(actor, b_obs, act_fn),
                                   b_act, log_std)
        stats: dict[str, float] = {}
        for _ in range(cfg.update_epochs):
            for idx in torch.randperm(b_obs.shape[0], generator=g, device=b_obs.device).split(cfg.minibatch_size):
                out, v = self.heads(b_obs[idx])
                pg, st = policy_loss(cfg.learner.policy, out, b_act[idx], b_logp[idx], b_adv[idx], log_std=log_std,
                                     clip_coef=cfg.clip_coef, ent_coef=cfg.ent_coef)
                if cfg.clip_vloss:  # CleanRL's: the larger of the plain and the clipped squared error
                    v_clip = b_val[idx] + (v - b_val[idx]).clamp(-cfg.clip_coef, cfg.clip_coef)
                    v_loss = 0.5 * cfg.vf_coef * torch.max((v - b_ret[idx]).pow(2), (v_clip - b_ret[idx]).pow(2)).mean()
                else:
                    v_loss = value_loss(v, b_ret[idx], 0.5 * cfg.vf_coef)
                loss = pg + v_loss
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.opt.step()
        if self.obs_rms is not None:
            self.obs_rms.update(roll["obs"].flatten(0, 1))
        self.env_steps += cfg.num_envs * cfg.num_steps
        self.wall_time += time.perf_counter() - t0
        self.iteration += 1
        n, mean_return = episode_stats(roll)
        row = {"iteration": self.iteration, "env_steps": self.env_steps, "wall_time_s": self.wall_time,
               "episodes": float(n), "train_return": float(mean_return) if n > 0 else float("nan")}
        if self.shared:  # the last minibatch's losses: a diverging run shows here first
            row.update({"loss": float(loss.detach()), "approx_kl": float(st["approx_kl"]), "entropy": float(st["entropy"])})
        self.history.append(row)
        return row

    def result(self) -> PPOResult:
        stats = {} if self.obs_rms is None else {"obs_mean": self.obs_rms.mean.float(), "obs_var": self.obs_rms.var.float()}
        return PPOResult({k: v.detach() for k, v in self.actor.items()}, self.history, **stats,
                         critic={k: v.detach() for k, v in self.critic.items()}, evals=self.evals)

    def evaluate(self, episodes: int, seed: int) -> dict[str, float]:
        """The current policy on ``episodes`` fresh episodes each sampled and greedy (their own envs
        and random stream: training is unaffected)."""
        r = self.result()
        row: dict[str, float] = {"iteration": self.iteration, "env_steps": self.env_steps}
        for mode, greedy in (("sampled", False), ("greedy", True)):
            ret = evaluate_policy(r.actor, self.cfg, episodes=episodes, greedy=greedy, seed=seed,
                                  obs_mean=r.obs_mean, obs_var=r.obs_var)
            row[f"{mode}_return"] = float(ret.mean())
            row[f"{mode}_std"] = float(ret.std()) if len(ret) > 1 else 0.0
        row["episodes"] = episodes
        return row

    # ----------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        sd: dict[str, Any] = {
            "kind": "ppo", "config": _cache_key(self.cfg, self.iterations * self.cfg.num_envs * self.cfg.num_steps),
            "iteration": self.iteration, "env_steps": self.env_steps, "wall_time": self.wall_time,
            "actor": {k: v.detach().clone() for k, v in self.actor.items()},
            "critic": {k: v.detach().clone() for k, v in self.critic.items()},
            "opt": self.opt.state_dict(), "rng": self.g.get_state(), "ret_acc": self.ret_acc.clone(),
            "history": list(self.history), "evals": list(self.evals),
        }
        for name in ("obs_rms", "ret_rms"):
            if getattr(self, name) is not None:
                sd[name] = getattr(self, name).state_dict()
        return sd

    def load_state_dict(self, sd: dict[str, Any], where: str) -> None:
        if sd.get("kind") != "ppo":
            raise CheckpointError(f"{where}: not a PPO checkpoint")
        if sd.get("config") != self.state_dict()["config"]:
            raise CheckpointError(f"{where}: made with other settings or another budget; start over with force=True")
        try:
            with torch.no_grad():
                for own, saved in ((self.actor, sd["actor"]), (self.critic, sd["critic"])):
                    if set(own) != set(saved) or any(own[k].shape != saved[k].shape for k in own):
                        raise CheckpointError(f"{where}: damaged (the networks do not match the settings)")
                    if any(not torch.isfinite(saved[k]).all() for k in own):
                        raise CheckpointError(f"{where}: damaged (non-finite parameters)")
                    for k in own:
                        own[k].copy_(saved[k])
            self.opt.load_state_dict(sd["opt"])
            self.g.set_state(sd["rng"])
            self.iteration, self.env_steps, self.wall_time = int(sd["iteration"]), int(sd["env_steps"]), float(sd["wall_time"])
            self.ret_acc = sd["ret_acc"].clone()
            for name in ("obs_rms", "ret_rms"):
                if getattr(self, name) is not None:
                    getattr(self, name).load_state_dict(sd[name])
            self.history = [dict(r) for r in sd["history"]]
            self.evals = [dict(r) for r in sd["evals"]]
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{where}: damaged ({type(e).__name__}: {e})") from None
        if len(self.history) != self.iteration:
            raise CheckpointError(f"{where}: damaged (history of {len(self.history)} iterations at {self.iteration})")
        self.obs = self.env.reset(seed=self.cfg.seed + 1_000_003 * self.iteration)  # fresh episodes (see the class)
        self.ret_acc = torch.zeros_like(self.ret_acc)


def train_ppo(cfg: PPOConfig, total_env_steps: int, *, progress: bool = True) -> PPOResult:
    """Train for ``total_env_steps`` env steps; returns the actor and the learning curve.

    A Gaussian learner (continuous actions) has its ``log_std`` in the actor's parameters (as
    CleanRL's ``ppo_continuous_action.py``). With ``normalize_obs`` the actor's observation
    statistics are returned in ``PPOResult.obs_mean``/``obs_var``.
    """
    run = PPO(cfg, total_env_steps)
    for _ in tqdm(range(run.iterations), disable=not progress, unit="iter", mininterval=1.0):
        run.step()
    return run.result()


@torch.no_grad()
def evaluate_policy(actor: dict[str, torch.Tensor], cfg: PPOConfig, *, episodes: int, greedy: bool, seed: int = 0,
                    obs_mean: torch.Tensor | None = None, obs_var: torch.Tensor | None = None) -> torch.Tensor:
    """Returns of ``episodes`` episodes of a trained actor (all stepped together)."""

    env = make_env(cfg.env_id, episodes, device=cfg.device, seed=seed, check_actions=False, **cfg.env_kwargs)
    g = torch.Generator(device=cfg.device)
    g.manual_seed(seed)
    dist = head(cfg.learner.policy)

    def policy(obs: torch.Tensor) -> torch.Tensor:
        obs = prepare(obs, obs_mean, obs_var)
        out = forward(actor, obs, cfg.learner.activation)
        return dist.greedy(out) if greedy else sample(dist, out, g, actor.get("log_std"))

    returns, _ = first_episode_returns(env, policy, seed=seed)
    if hasattr(env, "close"):
        env.close()
    return returns.cpu()


def _cache_key(cfg: PPOConfig, total_env_steps: int) -> str:
    """What identifies a PPO run; settings added later are left out at their defaults, so files
    written before they existed stay valid."""
    d = {**asdict(cfg), "learner": asdict(cfg.learner)}
    for k, default in (("normalize_obs", False), ("normalize_reward", False), ("clip_rewards", False),
                       ("clip_vloss", False), ("life_loss_terminal", False)):
        if d[k] == default:
            d.pop(k)
    for k, default in (("policy", "categorical"), ("init_log_std", 0.0), ("split", 0)):
        if d["learner"][k] == default:
            d["learner"].pop(k)
    return json.dumps({"config": d, "total_env_steps": int(total_env_steps)}, sort_keys=True, default=list)


STAT_NAMES = ("obs_mean", "obs_var")


def save_policy(result: PPOResult, cfg: PPOConfig, total_env_steps: int, path: str | Path,
                extra: dict[str, str] | None = None) -> None:
    """The policy file ``compress`` and the notebooks read: the actor's tensors, ``__obs_mean``/
    ``__obs_var`` with normalisation, ``__critic.*`` (the value function), and as metadata the
    run's key (configuration and budget), its learning curve and ``extra``."""
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in result.actor.items()}
    tensors.update({"__" + k: getattr(result, k).contiguous() for k in STAT_NAMES if getattr(result, k) is not None})
    tensors.update({f"__critic.{k}": v.contiguous() for k, v in (result.critic or {}).items()})
    meta = {"key": _cache_key(cfg, total_env_steps), "history": json.dumps(result.history, separators=(",", ":")),
            **(extra or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


def train_ppo_cached(cfg: PPOConfig, total_env_steps: int, path: str | Path, *, progress: bool = True) -> PPOResult:
    """:func:`train_ppo`, or its saved result if ``path`` holds one for the same configuration
    and budget (a safetensors file: the actor's tensors, the config and the learning curve as
    metadata). Lets the notebooks re-run without retraining the baseline."""
    path = Path(path)
    if path.exists():
        cached, meta = load_policy(path)
        if meta.get("key") == _cache_key(cfg, total_env_steps):
            return cached
    result = train_ppo(cfg, total_env_steps, progress=progress)
    save_policy(result, cfg, total_env_steps, path)
    return result


def ppo_baseline(cfg: PPOConfig, env_steps: int, path: str | Path, *, episodes: int, seed: int,
                 progress: bool = False) -> tuple[PPOResult, torch.Tensor]:
    """Plain PPO (cached in ``path``, :func:`train_ppo_cached`) and the sampled returns of its
    final policy over ``episodes`` episodes."""
    result = train_ppo_cached(cfg, env_steps, path, progress=progress)
    returns = evaluate_policy(result.actor, cfg, episodes=episodes, greedy=False, seed=seed,
                              obs_mean=result.obs_mean, obs_var=result.obs_var)
    return result, returns


def load_policy(path: str | Path) -> tuple[PPOResult, dict[str, str]]:
    """A policy file (:func:`save_policy`) as a :class:`PPOResult` and its metadata."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    stats = {k: tensors.pop("__" + k) for k in STAT_NAMES if "__" + k in tensors}
    critic = {k.removeprefix("__critic."): tensors.pop(k) for k in list(tensors) if k.startswith("__critic.")}
    history = json.loads(meta["history"]) if "history" in meta else []
    evals = json.loads(meta["evals"]) if "evals" in meta else None
    return PPOResult(tensors, history, **stats, critic=critic or None, evals=evals), meta


def policy_config(meta: dict[str, str]) -> PPOConfig:
    """The :class:`PPOConfig` a policy file was trained with (its ``key`` metadata)."""
    cfg = dict(json.loads(meta["key"])["config"])
    cfg["learner"] = LearnerSpec.coerce(cfg["learner"])
    cfg["critic_hidden"] = tuple(cfg.get("critic_hidden", (64, 64)))
    return PPOConfig(**cfg)


def evaluate_policy_file(path: str | Path, *, episodes: int, seed: int) -> dict[str, Any]:
    """A policy file's actor on ``episodes`` fresh episodes sampled and as many greedy (the same
    seed): means, 95% CIs over episodes, the returns, and what the file says training cost."""
    result, meta = load_policy(path)
    cfg = policy_config(meta)
    out: dict[str, Any] = {"episodes": episodes, "env_steps": int(meta.get("env_steps", 0)),
                           "wall_time_s": float(meta.get("wall_time_s", "nan"))}
    bounds = return_bounds(cfg.env_id, cfg.env_kwargs)
    for mode in ("sampled", "greedy"):
        r = evaluate_policy(result.actor, cfg, episodes=episodes, greedy=mode == "greedy", seed=seed,
                            obs_mean=result.obs_mean, obs_var=result.obs_var).double()
        mean, lo, hi = mean_ci95(r, bounds)
        out.update({f"{mode} mean": mean, f"{mode} CI low": lo, f"{mode} CI high": hi, f"{mode} returns": r.tolist()})
    return out


#: the evaluation episodes' seeds (their own stream: the same episodes at every evaluation of a run)
EVAL_SEED_OFFSET = 10_000
