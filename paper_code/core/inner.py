"""The differentiable inner step: one SGD step of a learner on the synthetic batch.

theta1 = theta0 - lr * grad_theta MSE(f(theta0, x), y), the MSE averaged over all B x A
elements (as ``torch.nn.MSELoss``). A Gaussian learner (``policy="gaussian"``) also fits its
state-independent ``log_std`` [A] to the dataset's one target log-std: the loss is
MSE(means) + MSE(log_std, target). Written with ``torch.func.grad`` so that gradients flow from
theta1 back into ``x``, ``y``, the log-std target and ``lr`` through ordinary autograd, and
``torch.func.vmap`` can batch it over several initialisations theta0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import grad, vmap

from paper_code.core.learners import Params, forward


def inner_loss(params: Params, x: torch.Tensor, y: torch.Tensor, activation: str = "tanh",
               log_std_target: torch.Tensor | None = None) -> torch.Tensor:
    """MSE between the learner's outputs on ``x`` and the labels ``y`` (mean over all elements),
    plus MSE(log_std, ``log_std_target``) for a Gaussian learner."""
    loss = F.mse_loss(forward(params, x, activation), y)
    if log_std_target is not None:
        loss = loss + F.mse_loss(params["log_std"], log_std_target)
    return loss


def inner_step(params0: Params, x: torch.Tensor, y: torch.Tensor, lr: torch.Tensor, activation: str = "tanh",
               log_std_target: torch.Tensor | None = None) -> Params:
    """One differentiable SGD step: ``{k: p - lr * g[k]}``; ``params0`` itself is not modified."""
    if ("log_std" in params0) != (log_std_target is not None):
        raise ValueError("a Gaussian learner (params with 'log_std') needs log_std_target, and only it")
    g = grad(inner_loss)(params0, x, y, activation, log_std_target)
    return {k: p - lr * g[k] for k, p in params0.items()}


def inner_step_batch(params0: Params, x: torch.Tensor, y: torch.Tensor, lr: torch.Tensor, activation: str = "tanh",
                     log_std_target: torch.Tensor | None = None) -> Params:
    """:func:`inner_step` for K stacked initialisations (leading dim K), the same dataset for all.

    K = 1 skips ``vmap`` (same result, less overhead: about 30% of a meta-gradient step).
    """
    if next(iter(params0.values())).shape[0] == 1:
        one = inner_step({k: v[0] for k, v in params0.items()}, x, y, lr, activation, log_std_target)
        return {k: v.unsqueeze(0) for k, v in one.items()}
    return vmap(inner_step, in_dims=(0, None, None, None, None, None))(params0, x, y, lr, activation, log_std_target)
