"""``torch.compile`` for PPMO's hot path (``PPMOConfig.compile``; eager is the default): a plug-in.

In the paper's cart-pole configuration most of a meta-epoch is 16 minibatch updates, each a
second-order gradient through the inner SGD step of a few small matrix products: eager PyTorch
spends more time dispatching its many small ops than computing them. The core writes one update
as pure functions (:mod:`paper_code.core.meta_loss`): the objective
(:func:`~paper_code.core.meta_loss.minibatch_losses`, which an eager run back-propagates), its
gradient as ``torch.func.grad`` (:func:`~paper_code.core.meta_loss.minibatch_gradients`) and the
whole update with its clipped Adam steps (:func:`~paper_code.core.meta_loss.minibatch_update`).
:class:`CompiledUpdate` is PPMO's update with those compiled: Dynamo traces the meta-gradient into
one forward graph, with no autograd tape to record and replay, and Inductor fuses it. On the tensor
cart-pole the rollout's steps — the learner's output, the sampled action and the environment's
transition — run as compiled calls of up to fifty steps each (:func:`fused_rollout`, through the
environment's ``fused_steps``) instead of some 40 small ops per step.

Compiled and eager give the same results to float round-off (``tests/test_compilation.py``); a
compiled run resumes an eager run's checkpoint and vice versa. The first call of each shape
compiles (seconds with the compiler's on-disk cache warm, up to a minute without).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.utils._pytree import tree_leaves, tree_map_only

from paper_code.core.learners import Params, forward
from paper_code.core.meta_loss import clipped_adam_steps, minibatch_gradients, minibatch_update, update_leaves
from paper_code.core.policies import Categorical


def adam_state(opt: torch.optim.Adam, params: list[torch.Tensor] | None = None) -> tuple[list[torch.Tensor], ...]:
    """(params, grads, exp_avgs, exp_avg_sqs, steps) of ``opt``'s one parameter group (or of
    ``params`` of it, in that order), its state created as ``torch.optim.Adam`` (fused) creates it
    on a first step."""
    params = opt.param_groups[0]["params"] if params is None else params
    for p in params:
        if not opt.state[p]:
            opt.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                            "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                            "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
    return (params, [p.grad for p in params], [opt.state[p]["exp_avg"] for p in params],
            [opt.state[p]["exp_avg_sq"] for p in params], [opt.state[p]["step"] for p in params])


#: graphs kept per compiled function: one per (observation size, minibatch size), so that a process
#: training many runs (a study, a notebook, a benchmark over N) never falls back to eager
RECOMPILE_LIMIT = 64


def _allow_recompiles() -> None:
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)


#: Inductor's options on the CPU: a C++ wrapper calls the generated kernels (the default Python wrapper's
#: per-kernel overhead is a large share of graphs this small; compiling takes longer, once per shape).
#: Other devices keep Inductor's defaults.
CPU_INDUCTOR_OPTIONS = {"cpp_wrapper": True}


def compiled(fn: Callable, device: str | torch.device = "cpu") -> Callable:
    """``fn`` compiled with static shapes (one graph per input shape) for tensors on ``device``; the
    caller decides whether to compile (``PPMOConfig.compile``) and keeps ``fn`` itself as the eager path."""
    _allow_recompiles()
    options = CPU_INDUCTOR_OPTIONS if torch.device(device).type == "cpu" else {}
    return torch.compile(fn, dynamic=False, options=options)


_compiled: dict[tuple[Callable, str], Callable] = {}  # per (function, device type): compiled once per process


def compiled_once(fn: Callable, device: str | torch.device = "cpu") -> Callable:
    """:func:`compiled` ``fn``, the same compiled function for every caller in this process."""
    key = (fn, torch.device(device).type)
    if key not in _compiled:
        _compiled[key] = compiled(fn, device)
    return _compiled[key]


def categorical_step(params: Params, obs: torch.Tensor, noise: torch.Tensor, activation: str
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """An MLP learner's logits on ``obs`` and the action sampled with Gumbel ``noise`` (one rollout step's policy)."""
    out = forward(params, obs, activation)
    return out, Categorical.sample(out, noise)


def fused_rollout(env: Any, params: Params, activation: str) -> Callable | None:
    """The rollout steps of one categorical MLP learner as compiled calls, where the environment
    offers them (``env.fused_steps``: the tensor cart-pole); None elsewhere."""
    fused = getattr(env, "fused_steps", None)
    return None if fused is None else fused(categorical_step, params, activation, compile=compiled_once)


class CompiledUpdate:
    """PPMO's minibatch update (:meth:`paper_code.core.ppmo.PPMO.update`'s role) as compiled pure
    functions: in one process the whole update — gradients, clips, Adam steps, the states' bound — in
    one call (:func:`~paper_code.core.meta_loss.minibatch_update`); over several processes the
    gradients, then the ranks' mean, then the clipped steps, two calls. The dataset and the critic
    are stepped in place on the optimisers' own state, so a checkpoint is the same either way."""

    def __init__(self, device: str | torch.device, processes: Any) -> None:
        self.processes = processes
        alone = processes.size == 1
        self.fused = compiled(minibatch_update, device) if alone else None
        self.gradients = None if alone else compiled(minibatch_gradients, device)
        self.steps = None if alone else compiled(clipped_adam_steps, device)

    def __call__(self, run: Any, theta0: Params, minibatch: tuple[torch.Tensor, ...], settings: dict[str, Any]
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = run.cfg
        leaves = run.leaves()
        opts = (run.data_opt, run.critic_opt)
        beta1, beta2 = run.data_opt.param_groups[0]["betas"]
        lrs = [o.param_groups[0]["lr"] for o in opts]
        detached = tree_map_only(torch.Tensor, torch.Tensor.detach, leaves)  # the same storage, stepped in place
        if self.fused is not None:
            moments = [adam_state(o, ps)[2:] for o, ps in zip(opts, update_leaves(leaves))]
            with torch.no_grad():
                return self.fused(*detached[:5], theta0, detached[5], *minibatch, moments, max_norm=cfg.max_grad_norm,
                                  lr=lrs, beta1=beta1, beta2=beta2, eps=cfg.adam_eps, state_bound=cfg.state_bound,
                                  **settings)
        with torch.no_grad():
            grads, (v_loss, st) = self.gradients(*detached[:5], theta0, detached[5], *minibatch, **settings)
        for p, g in zip(tree_leaves(leaves), tree_leaves(grads)):
            if p is not None:  # (no log-std target or encoder: None, and None for a gradient)
                p.grad = g
        self.processes.average_gradients([*run.data_params, *run.critic.values()])
        with torch.no_grad():
            self.steps([adam_state(o) for o in opts], max_norm=cfg.max_grad_norm, lr=lrs, beta1=beta1, beta2=beta2,
                       eps=cfg.adam_eps)
            if cfg.state_bound is not None:
                run.states.clamp_(-cfg.state_bound, cfg.state_bound)
        return v_loss, st
