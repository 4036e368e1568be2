"""What a learner sees of an observation, written once for every user: training rollouts, the
critic, the meta-loss, evaluation, the PPO baseline and dataset files.

1. uint8 frames (Atari) become floats in [0, 1] (:func:`to_float`);
2. with normalisation, ``scale * clip((obs - mean) / sqrt(var + eps), -clip, clip)`` per input
   element, the statistics running during training (:class:`RunningMeanStd`) and frozen into the
   dataset file (:func:`prepare` does 1 and 2);
3. a split Nature-CNN's persistent encoder, part of the dataset (:func:`encode`).
"""

from __future__ import annotations

from typing import Callable

import torch

from paper_code.core.learners import Params, cnn_forward

NORM_CLIP = 10.0
NORM_EPS = 1e-8


def normalize_obs(obs: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, clip: float = NORM_CLIP,
                  eps: float = NORM_EPS, scale: float = 1.0, *, inplace: bool = False) -> torch.Tensor:
    """``scale * clip((obs - mean) / sqrt(var + eps), -clip, clip)`` in ``obs``'s dtype (gymnasium's
    ``NormalizeObservation`` followed by CleanRL's clip; ``scale`` 1 is the standard setting).
    ``inplace``: ``obs`` is a temporary the caller owns and is overwritten (the same values, no new
    buffers: for a batch of frames each buffer is tens of MB)."""
    out = obs.sub_(mean.to(obs.dtype)) if inplace else obs - mean.to(obs.dtype)
    out.mul_(torch.rsqrt(var.to(obs.dtype) + eps)).clamp_(-clip, clip)
    return out if scale == 1.0 else out.mul_(scale)


def _alone(mean: torch.Tensor, var: torch.Tensor, n: int) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    return [(mean, var, n)]


class RunningMeanStd:
    """Mean and variance of a stream of batches (the parallel algorithm; float64 accumulators)."""

    def __init__(self, shape: tuple[int, ...] = (), device: torch.device | str = "cpu", *,
                 gather: Callable[[torch.Tensor, torch.Tensor, int], list[tuple[torch.Tensor, torch.Tensor, int]]]
                 | None = None) -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        self.count = torch.tensor(1e-4, dtype=torch.float64, device=device)
        # a run over several processes: every update merges all processes' batch moments, in one order
        self.gather = gather or _alone

    def update(self, x: torch.Tensor) -> None:
        """Add a batch ``x`` [n, *shape] (with ``gather``: every process's batch, the same result on each).
        uint8 frames count as :func:`to_float`'s [0, 1] values; their batch moments are taken in
        float32 (a float64 copy of every pixel of a rollout cost ~0.2 s per Atari meta-epoch) and
        merged in float64 like any other batch's."""
        x = x.reshape(-1, *self.mean.shape)
        if x.dtype == torch.uint8:
            f = x.float().div_(255)
            b_mean = f.mean(0)
            b_var = f.sub_(b_mean).square_().mean(0)  # two passes, in place (var_mean's was ~3x slower)
            b_mean, b_var = b_mean.double(), b_var.double()
        else:
            x = x.to(torch.float64)
            b_mean, b_var = x.mean(0), x.var(0, unbiased=False)
        for b_mean, b_var, n in self.gather(b_mean, b_var, x.shape[0]):
            self._add(b_mean, b_var, n)

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
    """uint8 frames as floats in [0, 1]; other observations unchanged. Batches of frames
    ``[..., C, H, W]`` come back in channels-last memory (the same values; the layout in which
    the CNN's convolutions run fastest on CPU)."""
    if obs.dtype != torch.uint8:
        return obs
    if obs.dim() >= 4:
        return _float_frames(obs)
    return obs.float().div_(255)


def _float_frames(obs: torch.Tensor, mean: torch.Tensor | None = None, var: torch.Tensor | None = None,
                  **norm: float) -> torch.Tensor:
    """uint8 frames ``[..., C, H, W]`` as floats, normalised in place with ``mean``/``var`` if
    given, computed as one channels-last ``[n, C, H, W]`` batch (the statistics in that layout too,
    so the elementwise ops run on matching strides) and returned with the leading dims."""
    lead = obs.shape[:-3]
    x = obs.reshape(-1, *obs.shape[-3:]).contiguous(memory_format=torch.channels_last).float().div_(255)
    if mean is not None:
        def cl(t: torch.Tensor) -> torch.Tensor:
            return t.to(x.dtype).unsqueeze(0).contiguous(memory_format=torch.channels_last)

        x = normalize_obs(x, cl(mean), cl(var), **norm, inplace=True)
    return x.view(*lead, *x.shape[1:])


def prepare(obs: torch.Tensor, mean: torch.Tensor | None = None, var: torch.Tensor | None = None, *,
            clip: float = NORM_CLIP, eps: float = NORM_EPS, scale: float = 1.0) -> torch.Tensor:
    """Real observations as a learner sees them before the encoder: :func:`to_float`, then
    :func:`normalize_obs` with ``mean``/``var`` (none: not normalised)."""
    if obs.dtype == torch.uint8 and obs.dim() >= 4:
        return _float_frames(obs, mean, var, clip=clip, eps=eps, scale=scale)
    frames = obs.dtype == torch.uint8
    obs = to_float(obs)
    return obs if mean is None else normalize_obs(obs, mean, var, clip, eps, scale, inplace=frames)


def encode(encoder: Params | None, x: torch.Tensor) -> torch.Tensor:
    """The learner's input: a split Nature-CNN encoder's features of (prepared) inputs, or ``x``."""
    return cnn_forward(encoder, x) if encoder else x
