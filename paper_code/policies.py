"""Action distributions on top of a learner's outputs, and observation normalisation.

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

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Categorical:
    """Softmax over ``out`` (logits). Sampling is Gumbel-max: argmax(logits + g) with standard
    Gumbel noise g is a sample of softmax(logits), and the noise of a whole rollout is drawn at once."""

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


def head(policy: str) -> type[Categorical] | type[Gaussian]:
    if policy not in HEADS:
        raise ValueError(f"unknown policy {policy!r} (known: {', '.join(HEADS)})")
    return HEADS[policy]


# ---------------------------------------------------------------------------------- normalisation
NORM_CLIP = 10.0
NORM_EPS = 1e-8


def normalize_obs(obs: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, clip: float = NORM_CLIP,
                  eps: float = NORM_EPS, scale: float = 1.0) -> torch.Tensor:
    """``scale * clip((obs - mean) / sqrt(var + eps), -clip, clip)`` in ``obs``'s dtype (gymnasium's
    ``NormalizeObservation`` followed by CleanRL's clip; ``scale`` 1 is the standard setting)."""
    out = ((obs - mean.to(obs.dtype)) * torch.rsqrt(var.to(obs.dtype) + eps)).clamp(-clip, clip)
    return out if scale == 1.0 else out * scale


class RunningMeanStd:
    """Mean and variance of a stream of batches (the parallel algorithm; float64 accumulators)."""

    def __init__(self, shape: tuple[int, ...] = (), device: torch.device | str = "cpu") -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        self.count = torch.tensor(1e-4, dtype=torch.float64, device=device)

    def update(self, x: torch.Tensor) -> None:
        """Add a batch ``x`` [n, *shape]."""
        x = x.reshape(-1, *self.mean.shape).to(torch.float64)
        b_mean, b_var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta, total = b_mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + b_var * n + delta.pow(2) * self.count * n / total) / total
        self.count = total

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        self.mean, self.var, self.count = sd["mean"].clone(), sd["var"].clone(), sd["count"].clone()


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
