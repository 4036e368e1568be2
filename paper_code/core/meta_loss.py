"""PPMO's meta-objective as a pure function of the dataset: PPO's clipped loss of one-step learners.

Given the dataset's trainable tensors (:class:`DatasetTensors`: states, labels, log inner lr,
a Gaussian learner's log-std target and a split Nature-CNN's persistent encoder), fresh learner
initialisations theta0 ``[K, ...]`` and a minibatch of real experience gathered by the same
one-step learners (:class:`Minibatch`, per learner ``[K, M, ...]``):

1. theta1 = theta0 - lr * grad MSE(f(theta0, encoder(states)), labels)  (:mod:`paper_code.core.inner`);
2. the learners' outputs on the minibatch's (normalised) observations, through the same encoder;
3. PPO's clipped surrogate of the ratio pi_theta1(a|s) / pi_old(a|s) with an entropy bonus:
   logits of a categorical policy, or the means and the state-independent log-std of a Gaussian.

Everything is differentiable in the dataset's tensors: ``loss.backward()`` is the meta-gradient
that PPMO's Adam step follows. :class:`~paper_code.core.ppmo.PPMO` calls exactly this function, and
``tests/test_meta_loss.py`` checks its gradients against float64 finite differences for the
categorical MLP, the Gaussian MLP (normalised, scaled observations; bounded states) and the
Nature-CNN with an encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import grad

from paper_code.core.inner import inner_step_batch
from paper_code.core.learners import Params, batched_forward, forward
from paper_code.core.observations import encode
from paper_code.core.rl import policy_loss, value_loss


@dataclass
class DatasetTensors:
    """The dataset's trainable tensors (the leaves of the meta-gradient)."""

    states: torch.Tensor  # [B, ...] synthetic observations (normalised space if the run normalises)
    labels: torch.Tensor  # [B, A] targets of the learner's outputs (logits, or Gaussian means)
    log_lr: torch.Tensor  # 0-d, the inner learning rate's log
    log_std_target: torch.Tensor | None = None  # [A], a Gaussian learner's log-std target
    encoder: dict[str, torch.Tensor] | None = None  # a split Nature-CNN's first layers (c0 .. c{l-1})


@dataclass
class Minibatch:
    """Real experience of K one-step learners, ``[K, M, ...]`` each."""

    obs: torch.Tensor  # observations as the learners see them before the encoder (normalised)
    actions: torch.Tensor  # as sampled (unclipped for a Gaussian)
    old_logp: torch.Tensor  # log pi_old(a|s) of the acting learners
    advantages: torch.Tensor
    old_taken_logits: torch.Tensor | None = None  # the raw-logit ratio ablation only


def one_step_learners(data: DatasetTensors, theta0: Params, activation: str) -> Params:
    """theta1: K initialisations ``theta0`` after one SGD step on the dataset."""
    return inner_step_batch(theta0, encode(data.encoder, data.states), data.labels, data.log_lr.exp(), activation,
                            data.log_std_target)


def meta_loss(data: DatasetTensors, theta0: Params, mb: Minibatch, *, activation: str, policy: str, clip_coef: float,
              ent_coef: float, norm_adv: bool = True, ratio_mode: str = "logprob"
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped loss (minus the entropy bonus) of the one-step learners on ``mb``, and
    detached statistics (pg_loss, entropy, approx_kl, clipfrac)."""
    theta1 = one_step_learners(data, theta0, activation)
    out = batched_forward(theta1, encode(data.encoder, mb.obs), activation)
    log_std = theta1["log_std"][:, None, :] if policy == "gaussian" else None
    return policy_loss(policy, out, mb.actions, mb.old_logp, mb.advantages, log_std=log_std, clip_coef=clip_coef,
                       ent_coef=ent_coef, norm_adv=norm_adv, ratio_mode=ratio_mode, old_taken_logits=mb.old_taken_logits)


# ------------------------------------------------------------------ one minibatch update, as pure functions

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
