"""``torch.compile`` for PPMO's hot path (``PPMOConfig.compile``; eager is the default).

In the paper's cart-pole configuration most of a meta-epoch is 16 minibatch updates, each a
second-order gradient through the inner SGD step of a few small matrix products: eager PyTorch
spends more time dispatching its many small ops than computing them. :func:`minibatch_losses` is
the whole objective of one update (PPO's clipped loss of the one-step learners, and the critic's
value loss), written once and run either eagerly or compiled. Compiled, Dynamo traces through the
inner step's ``torch.func.grad``, so the inner gradient becomes explicit operations of one graph
and the meta-gradient is a first-order backward of that graph: Inductor fuses both directions.
On the tensor cart-pole a rollout step — the learner's output, the sampled action and the environment's
transition — is one compiled call (:func:`fused_cartpole_step`) instead of some 40 small ops.

The compiled and the eager function are the same code and give the same results to float
round-off (``tests/test_compilation.py``); a compiled run resumes an eager run's checkpoint and
vice versa. The first call of each minibatch shape compiles (tens of seconds).
"""

from __future__ import annotations

from typing import Callable

import torch

from .envs import BatchedNDCartPole, BatchedStep
from .envs.cartpole import CartPoleConstants, transition
from .learners import Params, forward
from .meta_loss import DatasetTensors, Minibatch, meta_loss
from .policies import Categorical
from .rl import value_loss


def minibatch_losses(states: torch.Tensor, labels: torch.Tensor, log_lr: torch.Tensor,
                     log_std_target: torch.Tensor | None, encoder: Params | None, theta0: Params, critic: Params,
                     obs: torch.Tensor, actions: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                     old_taken: torch.Tensor, returns: torch.Tensor, *, activation: str, policy: str, clip_coef: float,
                     ent_coef: float, norm_adv: bool, ratio_mode: str, vf_coef: float
                     ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """One PPMO update's objective on a minibatch: (PPO's meta-loss of the one-step learners,
    the critic's value loss on the same observations, the meta-loss's detached statistics).

    The two losses share no parameters: the caller back-propagates their sum once and steps the
    dataset and the critic separately. Flat tensors in (not the dataclasses), so that a compiled
    version guards on tensors only.
    """
    data = DatasetTensors(states, labels, log_lr, log_std_target, encoder)
    loss, stats = meta_loss(data, theta0, Minibatch(obs, actions, old_logp, advantages, old_taken),
                            activation=activation, policy=policy, clip_coef=clip_coef, ent_coef=ent_coef,
                            norm_adv=norm_adv, ratio_mode=ratio_mode)
    v_loss = value_loss(forward(critic, obs, "tanh").squeeze(-1), returns, vf_coef)
    return loss, v_loss, stats


#: graphs kept per compiled function: one per (observation size, minibatch size), so that a process
#: training many runs (a study, a notebook, a benchmark over N) never falls back to eager
RECOMPILE_LIMIT = 64


def _allow_recompiles() -> None:
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)


def maybe_compile(fn: Callable, enabled: bool) -> Callable:
    """``fn`` compiled (static shapes: one graph per input shape) if ``enabled``, else ``fn``."""
    if not enabled:
        return fn
    _allow_recompiles()
    return torch.compile(fn, dynamic=False)


def cartpole_act_and_step(params: Params, obs: torch.Tensor, noise: torch.Tensor, state: torch.Tensor,
                          elapsed: torch.Tensor, returns: torch.Tensor, force_table: torch.Tensor, fresh: torch.Tensor,
                          *, activation: str, max_episode_steps: int, constants: CartPoleConstants
                          ) -> tuple[torch.Tensor, ...]:
    """One rollout step on the tensor cart-pole as a pure function: an MLP learner's logits on
    ``obs``, the action sampled with Gumbel ``noise``, and the environment's
    :func:`~paper_code.envs.cartpole.transition` (restarting ended episodes at ``fresh``).
    Returns (logits, actions, *transition's tuple)."""
    out = forward(params, obs, activation)
    action = Categorical.sample(out, noise)
    return (out, action, *transition(state, elapsed, returns, force_table[action], fresh, max_episode_steps, torch, constants))


_compiled_act_and_step = None


def fused_cartpole_step(env: BatchedNDCartPole, params: Params, activation: str
                        ) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, BatchedStep]]:
    """A ``step_fn`` for :func:`paper_code.rl.rollout`: :func:`cartpole_act_and_step` compiled,
    with the reset draw (the environment's generator) before it and the environment's new state
    taken after it — the same random streams and the same transitions as the unfused steps."""
    global _compiled_act_and_step
    if _compiled_act_and_step is None:
        _compiled_act_and_step = maybe_compile(cartpole_act_and_step, True)

    def step_fn(obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, BatchedStep]:
        fresh = env.draw_fresh()
        out, action, *nxt = _compiled_act_and_step(params, obs, noise, env.state, env.elapsed, env.returns,
                                                   env._force_table, fresh, activation=activation,
                                                   max_episode_steps=env.max_episode_steps, constants=env.c)
        return out, action, env.advance(tuple(nxt))

    return step_fn
