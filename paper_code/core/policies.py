"""Action distributions on top of a learner's outputs, and reward scaling.

A learner network maps observations to ``out`` [..., A]: logits for a :class:`Categorical`
policy (discrete actions, cart-pole, Atari) or the means for a :class:`Gaussian` policy
(continuous actions, MuJoCo) whose state-independent ``log_std`` [A] is a learner parameter.
Both heads have the same methods, so rollouts, PPO losses and evaluation are written once.
Log-probabilities and entropies of a Gaussian are summed over the action dimensions (standard
PPO): the ratio is that of the joint action, not one per dimension.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from paper_code.core.observations import NORM_EPS, RunningMeanStd

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Categorical:
    """Softmax over ``out`` (logits). Sampling is Gumbel-max: argmax(logits + g) with standard
    Gumbel noise g is a sample of softmax(logits); a rollout draws the noise of all its steps at
    once, an evaluation step by step (:func:`sample`)."""

    name = "categorical"

    @staticmethod
    def noise(shape: tuple[int, ...], generator: torch.Generator | None, device, dtype) -> torch.Tensor:
        g = torch.empty(shape, device=device, dtype=dtype)
        return g.exponential_(generator=generator).log_().neg_()

    @staticmethod
    def sample(out: torch.Tensor, noise: torch.Tensor, log_std: torch.Tensor | None = None) -> torch.Tensor:
        return (out + noise).argmax(-1)

    @staticmethod
    def greedy(out: torch.Tensor) -> torch.Tensor:
        return out.argmax(-1)

    @staticmethod
    def log_prob(out: torch.Tensor, actions: torch.Tensor, log_std: torch.Tensor | None = None) -> torch.Tensor:
        return F.log_softmax(out, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def entropy(out: torch.Tensor, log_std: torch.Tensor | None = None) -> torch.Tensor:
        logp = F.log_softmax(out, -1)
        return -(logp.exp() * logp).sum(-1)


class Gaussian:
    """Diagonal Gaussian N(out, exp(log_std)^2); ``log_std`` broadcasts against ``out``.

    Actions are the unclipped samples (environments clip them to their bounds when stepping)."""

    name = "gaussian"

    @staticmethod
    def noise(shape: tuple[int, ...], generator: torch.Generator | None, device, dtype) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)

    @staticmethod
    def sample(out: torch.Tensor, noise: torch.Tensor, log_std: torch.Tensor | None = None) -> torch.Tensor:
        return torch.addcmul(out, log_std.exp(), noise)

    @staticmethod
    def greedy(out: torch.Tensor) -> torch.Tensor:
        return out

    @staticmethod
    def log_prob(out: torch.Tensor, actions: torch.Tensor, log_std: torch.Tensor | None = None) -> torch.Tensor:
        z = (actions - out) * (-log_std).exp()
        return (-0.5 * z.pow(2) - log_std - _LOG_SQRT_2PI).sum(-1)

    @staticmethod
    def entropy(out: torch.Tensor, log_std: torch.Tensor | None = None) -> torch.Tensor:
        return (log_std + 0.5 + _LOG_SQRT_2PI).expand_as(out).sum(-1)


HEADS = {"categorical": Categorical, "gaussian": Gaussian}


def sample(dist: type[Categorical] | type[Gaussian], out: torch.Tensor, generator: torch.Generator | None,
           log_std: torch.Tensor | None = None) -> torch.Tensor:
    """One sample of the policy ``dist`` on ``out`` with fresh noise: the sampling path of every
    evaluation and reference policy (rollouts use the same two methods, their noise drawn at once)."""
    return dist.sample(out, dist.noise(out.shape, generator, out.device, out.dtype), log_std)


def head(policy: str) -> type[Categorical] | type[Gaussian]:
    if policy not in HEADS:
        raise ValueError(f"unknown policy {policy!r} (known: {', '.join(HEADS)})")
    return HEADS[policy]


def scale_rewards(rewards: torch.Tensor, done: torch.Tensor, acc: torch.Tensor, rms: RunningMeanStd,
                  gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards [T, E] divided by the running std of the discounted return (gymnasium's
    ``NormalizeReward``, updated once per rollout); ``acc`` [E] is the discounted return carried
    across rollouts, reset where an episode ended. Returns (scaled rewards, new ``acc``)."""
    accs = []
    keep = (~done).to(rewards.dtype)
    for t in range(rewards.shape[0]):
        acc = acc * gamma + rewards[t]
        accs.append(acc)
        acc = acc * keep[t]
    rms.update(torch.stack(accs))
    return rewards * torch.rsqrt(rms.var.to(rewards.dtype) + NORM_EPS), acc
