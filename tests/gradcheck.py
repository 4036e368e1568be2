"""Shared by the meta-gradient tests: autograd against central finite differences (float64)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch


def assert_matches_finite_differences(loss_fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor],
                                      names: Sequence[str], eps: float = 1e-6, rtol: float = 1e-4) -> None:
    """d loss_fn(*inputs) / d input by autograd equals central differences (relative error < rtol)
    for every input, and no input's gradient is degenerate (zero)."""
    leaves = [t.clone().requires_grad_() for t in inputs]
    loss_fn(*leaves).backward()
    for i, name in enumerate(names):
        analytic = leaves[i].grad
        numeric = torch.zeros_like(inputs[i])
        flat = numeric.view(-1)
        for j in range(flat.numel()):
            plus = [t.clone() for t in inputs]
            minus = [t.clone() for t in inputs]
            plus[i].view(-1)[j] += eps
            minus[i].view(-1)[j] -= eps
            with torch.no_grad():
                flat[j] = (loss_fn(*plus) - loss_fn(*minus)) / (2 * eps)
        rel = (analytic - numeric).norm() / numeric.norm().clamp(min=1e-12)
        assert numeric.norm() > 1e-6, f"{name}: degenerate problem"
        assert rel < rtol, f"{name}: relative error {rel:.2e}"


def assert_directional_derivatives(loss_fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor],
                                   names: Sequence[str], directions: int = 2, eps: float = 1e-6, rtol: float = 1e-5,
                                   seed: int = 0) -> None:
    """For inputs too large to perturb one element at a time: the autograd gradient's projection
    on random unit directions v equals (loss(x + eps v) - loss(x - eps v)) / (2 eps)."""
    g = torch.Generator().manual_seed(seed)
    leaves = [t.clone().requires_grad_() for t in inputs]
    loss_fn(*leaves).backward()
    for i, name in enumerate(names):
        for _ in range(directions):
            v = torch.randn(inputs[i].shape, generator=g, dtype=inputs[i].dtype)
            v /= v.norm()
            plus = [t.clone() for t in inputs]
            minus = [t.clone() for t in inputs]
            plus[i] += eps * v
            minus[i] -= eps * v
            with torch.no_grad():
                numeric = float((loss_fn(*plus) - loss_fn(*minus)) / (2 * eps))
            analytic = float((leaves[i].grad * v).sum())
            assert abs(numeric) > 1e-9, f"{name}: degenerate direction"
            assert abs(analytic - numeric) <= rtol * abs(numeric) + 1e-10, f"{name}: {analytic} vs {numeric}"
