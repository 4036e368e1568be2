"""What a learner sees of an observation, written once for every user: training rollouts, the
critic, the meta-loss, evaluation, the PPO baseline and dataset files.

1. uint8 frames (Atari) become floats in [0, 1] (:func:`to_float`);
2. with normalisation, ``scale * clip((obs - mean) / sqrt(var + eps), -clip, clip)`` per input
   element, the statistics running during training (:class:`RunningMeanStd`) and frozen into the
   dataset file (:func:`prepare` does 1 and 2);
3. a split Nature-CNN's persistent encoder, part of the dataset (:func:`encode`).
"""

from __future__ import annotations

import torch

from .learners import Params, cnn_forward

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

    def __init__(self, shape: tuple[int, ...] = (), device: torch.device | str = "cpu", *, synced: bool = False) -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        self.count = torch.tensor(1e-4, dtype=torch.float64, device=device)
        self.synced = synced  # a multi-process run: every update merges all ranks' batches (rank order)

    def update(self, x: torch.Tensor) -> None:
        """Add a batch ``x`` [n, *shape] (``synced``: every rank's batch, the same result on each)."""
        x = x.reshape(-1, *self.mean.shape).to(torch.float64)
        if self.synced:
            from .distributed import gather_moments

            for b_mean, b_var, n in gather_moments(x.mean(0), x.var(0, unbiased=False), x.shape[0]):
                self._add(b_mean, b_var, n)
            return
        self._add(x.mean(0), x.var(0, unbiased=False), x.shape[0])

    def _add(self, b_mean: torch.Tensor, b_var: torch.Tensor, n: int) -> None:
        delta, total = b_mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + b_var * n + delta.pow(2) * self.count * n / total) / total
        self.count = total

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        self.mean, self.var, self.count = sd["mean"].clone(), sd["var"].clone(), sd["count"].clone()


def to_float(obs: torch.Tensor) -> torch.Tensor:
    """uint8 frames as floats in [0, 1]; other observations unchanged."""
    return obs.float().div_(255) if obs.dtype == torch.uint8 else obs


def prepare(obs: torch.Tensor, mean: torch.Tensor | None = None, var: torch.Tensor | None = None, *,
            clip: float = NORM_CLIP, eps: float = NORM_EPS, scale: float = 1.0) -> torch.Tensor:
    """Real observations as a learner sees them before the encoder: :func:`to_float`, then
    :func:`normalize_obs` with ``mean``/``var`` (none: not normalised)."""
    obs = to_float(obs)
    return obs if mean is None else normalize_obs(obs, mean, var, clip, eps, scale)


def encode(encoder: Params | None, x: torch.Tensor) -> torch.Tensor:
    """The learner's input: a split Nature-CNN encoder's features of (prepared) inputs, or ``x``."""
    return cnn_forward(encoder, x) if encoder else x
