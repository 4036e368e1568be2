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

from paper_code.core.inner import inner_step_batch
from paper_code.core.learners import Params, batched_forward
from paper_code.core.observations import encode
from paper_code.core.rl import policy_loss


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
