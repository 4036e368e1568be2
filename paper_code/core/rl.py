"""Pieces of PPO shared by PPMO (distillation) and the plain PPO baseline."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from paper_code.core.policies import Categorical, Gaussian, head


@torch.no_grad()
def rollout(env, obs: torch.Tensor, out_fn: Callable[[torch.Tensor], torch.Tensor], num_steps: int,
            generator: torch.Generator, policy: type[Categorical] | type[Gaussian] = Categorical,
            log_std: torch.Tensor | None = None, steps_fn: Callable | None = None,
            prepare: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """``num_steps`` steps of a batched env with actions sampled from ``policy`` on
    ``out_fn(prepare(obs))`` (logits, or Gaussian means with ``log_std`` broadcastable to them).

    Returns stacked ``[T, B, ...]`` tensors: obs (acted on), prepared (``prepare(obs)``, as the policy
    saw them: :func:`~paper_code.core.observations.prepare`'s frames and normalised observations are
    computed once, here; ``obs`` itself without ``prepare``), out (the acting policy's outputs),
    actions (as sampled: unclipped for a Gaussian), rewards, terminated, truncated, final_obs (last
    observation of an episode that ended at t) and episode_returns (of episodes that ended at t),
    plus ``last_obs`` [B, ...], the observation to continue from. The sampling noise of the whole
    rollout is drawn at once; ``life_lost`` [T, B] where the environment reports lives (Atari).
    ``steps_fn(obs, noise) -> (those tensors, last_obs)``, if given,
    runs all the steps instead (a compiled run's fused steps,
    :func:`paper_code.runs.compilation.fused_rollout`; no ``prepare``); the noise is then drawn
    before the first step, the same draw.
    """
    if steps_fn is not None:
        if prepare is not None:
            raise ValueError("rollout: steps_fn acts on raw observations (no prepare)")
        noise = policy.noise((num_steps, obs.shape[0], env.num_actions), generator, obs.device, torch.float32)
        roll, last_obs = steps_fn(obs, noise)
        return {**roll, "prepared": roll["obs"], "last_obs": last_obs}
    noise = None
    keys = ("obs", "out", "actions", "rewards", "terminated", "truncated", "final_obs", "episode_returns")
    bufs: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
    lost: list[torch.Tensor] = []  # Atari: a life lost at t while the game goes on
    prepared: torch.Tensor | None = None  # [T * B, ...]: every step's prepared observations, in their layout
    for t in range(num_steps):
        x = obs if prepare is None else prepare(obs)
        if x is not obs:
            if prepared is None:
                layout = (torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
                          else torch.contiguous_format)  # frames: the layout the convolutions run in
                prepared = torch.empty((num_steps * x.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device,
                                       memory_format=layout)
            prepared[t * x.shape[0]:(t + 1) * x.shape[0]] = x
        out = out_fn(x)
        if noise is None:
            noise = policy.noise((num_steps, *out.shape), generator, out.device, out.dtype)
        action = policy.sample(out, noise[t], log_std)
        step = env.step(action)
        for k, v in zip(keys, (obs, out, action, step.reward, step.terminated, step.truncated, step.final_obs,
                               step.episode_return)):
            bufs[k].append(v)
        if step.life_lost is not None:
            lost.append(step.life_lost)
        obs = step.obs
    roll = {k: torch.stack(v) for k, v in bufs.items()}
    if lost:
        roll["life_lost"] = torch.stack(lost)
    roll["prepared"] = roll["obs"] if prepared is None else prepared.view(num_steps, -1, *prepared.shape[1:])
    roll["last_obs"] = obs
    return roll


def bootstrap_values(value_fn: Callable[[torch.Tensor], torch.Tensor], roll: dict[str, torch.Tensor],
                     values: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """V(s_t) and the value of the state after each step, for :func:`gae` (truncation bootstraps
    from the ended episode's final observation). ``values``: V(s_t) if the caller has them.

    Within an episode the state after step t is the next observation, whose value is already
    known; only truncated steps need the critic on their final observation (one host sync per
    rollout to find them)."""
    values = value_fn(roll["obs"]) if values is None else values
    next_values = torch.cat([values[1:], value_fn(roll["last_obs"])[None]])
    trunc = roll["truncated"].nonzero(as_tuple=True)
    if trunc[0].numel():
        next_values = next_values.index_put(trunc, value_fn(roll["final_obs"][trunc]))
    return values, next_values


def episode_stats(roll: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(number of episodes that ended in the rollout, their mean return) as 0-d tensors (no sync)."""
    done = roll["terminated"] | roll["truncated"]
    n = done.sum()
    return n, torch.where(done, roll["episode_returns"], 0).sum() / n.clamp(min=1)


def gae(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, terminated: torch.Tensor,
        truncated: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over a rollout of shape ``[T, E]``.

    ``values[t]`` is V(s_t). ``next_values[t]`` is the value of the state after step t: V(s_{t+1})
    within an episode, V(final observation) where the episode was truncated at t (bootstrap on
    truncation); it is ignored where the episode terminated at t (no bootstrap on termination).
    An episode ending at t (either way) stops the advantage trace there, so no transition of a new
    episode leaks into the old one. Returns ``(advantages, returns)`` with returns = adv + values.
    """
    not_term = (~terminated).to(values.dtype)
    not_done = (~(terminated | truncated)).to(values.dtype)
    deltas = (rewards + gamma * next_values * not_term - values).unbind(0)
    decay = (gamma * lam * not_done).unbind(0)
    last = torch.zeros_like(values[0])
    out = []
    for t in range(values.shape[0] - 1, -1, -1):
        last = torch.addcmul(deltas[t], decay[t], last)
        out.append(last)
    adv = torch.stack(out[::-1])
    return adv, adv + values


def clipped_surrogate(log_ratio: torch.Tensor, advantages: torch.Tensor, entropy: torch.Tensor, *,
                      clip_coef: float, ent_coef: float, norm_adv: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate with an entropy bonus, from log pi(a|s) - log pi_old(a|s).

    Shapes ``[..., M]``; the advantage is normalised over M. Returns the loss (mean over
    everything) and detached statistics."""
    ratio = log_ratio.exp()
    if norm_adv:
        advantages = (advantages - advantages.mean(-1, keepdim=True)) / (advantages.std(-1, keepdim=True) + 1e-8)
    pg_loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip_coef, 1 + clip_coef)).mean()
    entropy = entropy.mean()
    loss = pg_loss - ent_coef * entropy
    with torch.no_grad():
        stats = {
            "pg_loss": pg_loss.detach(),
            "entropy": entropy.detach(),
            "approx_kl": ((ratio - 1) - log_ratio).mean(),
            "clipfrac": ((ratio - 1).abs() > clip_coef).float().mean(),
        }
    return loss, stats


def ppo_policy_loss(logits: torch.Tensor, actions: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                    *, clip_coef: float, ent_coef: float, norm_adv: bool = True, ratio_mode: str = "logprob",
                    old_taken_logits: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`clipped_surrogate` for categorical policies.

    Shapes: ``logits`` [..., M, A], the rest [..., M]. ``ratio_mode="logprob"`` (default) uses
    exp(log pi(a|s) - log pi_old(a|s)); ``"raw_logits"`` reproduces the authors' defect,
    exp(logit(a) - old logit(a)), for an ablation.
    """
    logp_all = F.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    if ratio_mode == "logprob":
        log_ratio = logp - old_logp
    elif ratio_mode == "raw_logits":
        if old_taken_logits is None:
            raise ValueError("ratio_mode='raw_logits' needs old_taken_logits")
        log_ratio = logits.gather(-1, actions.unsqueeze(-1)).squeeze(-1) - old_taken_logits
    else:
        raise ValueError(f"unknown ratio_mode {ratio_mode!r} (known: logprob, raw_logits)")
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return clipped_surrogate(log_ratio, advantages, entropy, clip_coef=clip_coef, ent_coef=ent_coef, norm_adv=norm_adv)


def policy_loss(policy: str, out: torch.Tensor, actions: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                *, log_std: torch.Tensor | None = None, clip_coef: float, ent_coef: float, norm_adv: bool = True,
                ratio_mode: str = "logprob", old_taken_logits: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped policy loss (minus the entropy bonus) of outputs ``out`` [..., M, A]: the one
    loss of PPMO's meta-objective and of the PPO baseline. ``policy`` is ``categorical`` (logits;
    :func:`ppo_policy_loss`) or ``gaussian`` (means, with ``log_std`` broadcastable to them)."""
    if policy == "categorical":
        return ppo_policy_loss(out, actions, old_logp, advantages, clip_coef=clip_coef, ent_coef=ent_coef,
                               norm_adv=norm_adv, ratio_mode=ratio_mode, old_taken_logits=old_taken_logits)
    dist = head(policy)
    return clipped_surrogate(dist.log_prob(out, actions, log_std) - old_logp, advantages, dist.entropy(out, log_std),
                             clip_coef=clip_coef, ent_coef=ent_coef, norm_adv=norm_adv)


def value_loss(values: torch.Tensor, returns: torch.Tensor, weight: float) -> torch.Tensor:
    """``weight`` x the critic's mean squared error. The PPO baseline adds it to the policy loss
    with weight vf_coef / 2 (CleanRL's); PPMO's critic is a separate network with its own Adam and
    gradient clip, trained with weight vf_coef (as the committed datasets were)."""
    return weight * (values - returns).pow(2).mean()
