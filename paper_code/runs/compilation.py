"""``torch.compile`` for PPMO's hot path (``PPMOConfig.compile``; eager is the default).

In the paper's cart-pole configuration most of a meta-epoch is 16 minibatch updates, each a
second-order gradient through the inner SGD step of a few small matrix products: eager PyTorch
spends more time dispatching its many small ops than computing them. :func:`minibatch_losses` is
the whole objective of one update (PPO's clipped loss of the one-step learners, and the critic's
value loss), written once: an eager run back-propagates it. A compiled run uses
:func:`minibatch_gradients`, the gradient itself as a pure function (``torch.func.grad``, the inner
step's own ``torch.func.grad`` nested inside): Dynamo traces both into one graph that computes the
meta-gradient forward, with no autograd tape to record and replay, and Inductor fuses it. On the
tensor cart-pole the rollout's steps — the learner's output, the sampled action and the
environment's transition — run as compiled calls of up to fifty steps each (:func:`fused_cartpole_steps`)
instead of some 40 small ops per step.

Compiled and eager give the same results to float round-off (``tests/test_compilation.py``); a
compiled run resumes an eager run's checkpoint and vice versa. The first call of each shape
compiles (seconds with the compiler's on-disk cache warm, up to a minute without).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.func import grad

from paper_code.core.learners import Params, forward
from paper_code.core.meta_loss import DatasetTensors, Minibatch, meta_loss
from paper_code.core.policies import Categorical
from paper_code.core.rl import value_loss
from paper_code.envs import BatchedNDCartPole
from paper_code.envs.cartpole import CartPoleConstants, transition


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


def minibatch_gradients(states: torch.Tensor, labels: torch.Tensor, log_lr: torch.Tensor,
                        log_std_target: torch.Tensor | None, encoder: Params | None, theta0: Params, critic: Params,
                        obs: torch.Tensor, actions: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                        old_taken: torch.Tensor, returns: torch.Tensor, **settings
                        ) -> tuple[tuple, tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """The gradient of :func:`minibatch_losses`' two losses summed, with respect to (states,
    labels, log_lr, log_std_target, encoder, critic) — the same structure, None where those are —
    by ``torch.func.grad``, and (the value loss, the meta-loss's statistics).

    What ``backward()`` on the summed losses gives, as a pure function: compiled, the meta-gradient
    (itself through the inner step's gradient) is one forward graph, with no autograd tape to
    record and replay (``settings``: :func:`minibatch_losses`' keywords)."""
    def total(s, y, lr, lst, enc, cr) -> tuple[torch.Tensor, tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        loss, v_loss, stats = minibatch_losses(s, y, lr, lst, enc, theta0, cr, obs, actions, old_logp, advantages,
                                               old_taken, returns, **settings)
        return loss + v_loss, (v_loss.detach(), stats)

    wrt = (states, labels, log_lr, log_std_target, encoder, critic)
    present = tuple(i for i, v in enumerate(wrt) if v is not None)
    grads, aux = grad(total, argnums=present, has_aux=True)(*wrt)
    full: list = [None] * len(wrt)
    for i, g in zip(present, grads):
        full[i] = g
    return tuple(full), aux


def clipped_adam_steps(groups: list[tuple[list[torch.Tensor], ...]], *, max_norm: float, lr: list[float],
                       beta1: float, beta2: float, eps: float) -> None:
    """Each group (params, grads, exp_avgs, exp_avg_sqs, steps) clipped to gradient norm
    ``max_norm`` (as ``torch.nn.utils.clip_grad_norm_``), then one Adam step with that group's
    ``lr`` (as ``torch.optim.Adam``: bias-corrected moments, no weight decay), all in place.

    What an update's two ``clip_grad_norm_`` and two ``Adam.step()`` calls do, as one function that
    compiles into one call; the moments and step counts are the optimisers' own state tensors, so
    a checkpoint holds the same optimiser state either way."""
    for (params, grads, exp_avgs, exp_avg_sqs, steps), group_lr in zip(groups, lr):
        total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for p, g, m, v, step in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
            g = g * coef
            step.add_(1)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            bias1 = 1 - beta1 ** step
            bias2_sqrt = (1 - beta2 ** step).sqrt()
            p.sub_((group_lr / bias1) * m / (v.sqrt() / bias2_sqrt + eps))


def minibatch_update(states: torch.Tensor, labels: torch.Tensor, log_lr: torch.Tensor,
                     log_std_target: torch.Tensor | None, encoder: Params | None, theta0: Params, critic: Params,
                     obs: torch.Tensor, actions: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                     old_taken: torch.Tensor, returns: torch.Tensor, moments: list[tuple[list[torch.Tensor], ...]], *,
                     max_norm: float, lr: list[float], beta1: float, beta2: float, eps: float,
                     state_bound: float | None, **settings) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One whole PPMO update of a one-process run, in place: :func:`minibatch_gradients`, then
    :func:`clipped_adam_steps` of the dataset (``moments[0]``) and of the critic (``moments[1]``),
    then the states clamped to ``state_bound``. ``moments``: each group's (exp_avgs, exp_avg_sqs,
    steps) in :func:`update_leaves` order. Returns (the value loss, the meta-loss's statistics).

    What a compiled one-process run calls once per minibatch (a run over several processes averages
    the gradients between the two halves, so it calls them separately)."""
    grads, aux = minibatch_gradients(states, labels, log_lr, log_std_target, encoder, theta0, critic, obs, actions,
                                     old_logp, advantages, old_taken, returns, **settings)
    data, critic_params = update_leaves((states, labels, log_lr, log_std_target, encoder, critic))
    data_grads, critic_grads = update_leaves(grads)
    clipped_adam_steps([(data, data_grads, *moments[0]), (critic_params, critic_grads, *moments[1])],
                       max_norm=max_norm, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    if state_bound is not None:
        states.clamp_(-state_bound, state_bound)
    return aux


def update_leaves(wrt: tuple) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(the dataset's tensors, the critic's) of :func:`minibatch_gradients`' ``wrt`` structure
    (or of its gradients), in one fixed order: states, labels, log_lr, log_std_target, the
    encoder's tensors; the critic's tensors. Absent ones (None) are left out."""
    states, labels, log_lr, log_std_target, encoder, critic = wrt
    data = [t for t in (states, labels, log_lr, log_std_target) if t is not None] + list((encoder or {}).values())
    return data, list(critic.values())


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


#: rollout steps per compiled call on the tensor cart-pole at most (the loop over them is unrolled in the
#: graph: longer chunks mean fewer calls and a longer first compile)
MAX_CHUNK_STEPS = 50


def chunk_steps(num_steps: int) -> int:
    """Steps per compiled rollout call: ``num_steps`` in equal chunks of at most
    :data:`MAX_CHUNK_STEPS` (200 -> 4 x 50; 128 -> 43, 43, 42: at most two shapes to compile)."""
    return -(-num_steps // -(-num_steps // MAX_CHUNK_STEPS))

#: what :func:`cartpole_steps` stacks per step, as :func:`paper_code.core.rl.rollout` names them
STEP_KEYS = ("obs", "out", "actions", "terminated", "truncated", "final_obs", "episode_returns")


def cartpole_steps(params: Params, obs: torch.Tensor, noise: torch.Tensor, fresh: torch.Tensor, state: torch.Tensor,
                   elapsed: torch.Tensor, returns: torch.Tensor, force_table: torch.Tensor, *, activation: str,
                   max_episode_steps: int, constants: CartPoleConstants
                   ) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """``len(noise)`` rollout steps on the tensor cart-pole as a pure function: per step an MLP
    learner's logits on the observation, the action sampled with that step's Gumbel ``noise``, and
    the environment's :func:`~paper_code.envs.cartpole.transition` (ended episodes restart at that
    step's ``fresh`` states). Returns the per-step tensors stacked ``[k, B, ...]`` in
    :data:`STEP_KEYS` order, and the environment's state after the last step."""
    B = obs.shape[0]
    bufs: list[list[torch.Tensor]] = [[] for _ in STEP_KEYS]
    for t in range(noise.shape[0]):
        out = forward(params, obs, activation)
        action = Categorical.sample(out, noise[t])
        state, elapsed, returns, reached, terminated, truncated, episode_return, _ = transition(
            state, elapsed, returns, force_table[action], fresh[t], max_episode_steps, torch, constants)
        for buf, v in zip(bufs, (obs, out, action, terminated, truncated, reached.reshape(B, -1), episode_return)):
            buf.append(v)
        obs = state.reshape(B, -1)
    return tuple(torch.stack(b) for b in bufs), (state, elapsed, returns)


_compiled_steps: dict[str, Callable] = {}  # per device type


def fused_cartpole_steps(env: BatchedNDCartPole, params: Params, activation: str
                         ) -> Callable[[torch.Tensor, torch.Tensor], tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """A ``steps_fn`` for :func:`paper_code.core.rl.rollout`: the rollout in compiled calls of
    :func:`chunk_steps` steps (:func:`cartpole_steps`). Each call's reset states are drawn from the
    environment's generator in one draw, which gives the numbers of one draw per step, and the
    environment continues from the state the last call reached — the same random streams and
    transitions as the unfused steps."""
    kind = env.device.type
    if kind not in _compiled_steps:
        _compiled_steps[kind] = compiled(cartpole_steps, env.device)
    steps = _compiled_steps[kind]

    def steps_fn(obs: torch.Tensor, noise: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        parts = []
        k = chunk_steps(noise.shape[0])
        for t0 in range(0, noise.shape[0], k):
            chunk = noise[t0:t0 + k]
            fresh = env.draw_fresh(chunk.shape[0])
            stacked, (env.state, env.elapsed, env.returns) = steps(
                params, obs, chunk, fresh, env.state, env.elapsed, env.returns, env.force_table, activation=activation,
                max_episode_steps=env.max_episode_steps, constants=env.c)
            parts.append(stacked)
            obs = env.state.reshape(obs.shape)
        roll = {k: torch.cat([p[i] for p in parts]) for i, k in enumerate(STEP_KEYS)}
        roll["rewards"] = env._ones.expand(noise.shape[0], -1).clone()  # 1 per step
        return roll, obs

    return steps_fn
