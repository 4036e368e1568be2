"""The meta-gradient of the loss PPMO trains with (``paper_code.core.meta_loss.meta_loss``), against
float64 finite differences, for the three learner kinds: categorical MLP, Gaussian MLP
(normalised and scaled observations, states within a bound) and Nature-CNN with an encoder."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from paper_code.core.learners import LearnerSpec, batched_forward, init_encoder, init_params_batch, learner_input
from paper_code.core.meta_loss import DatasetTensors, Minibatch, meta_loss, one_step_learners
from paper_code.core.observations import encode, normalize_obs
from paper_code.core.policies import Gaussian

from gradcheck import assert_directional_derivatives, assert_matches_finite_differences

F64 = torch.float64
PPO = dict(clip_coef=0.2, ent_coef=0.01, norm_adv=True)


def _experience(data: DatasetTensors, theta0, obs: torch.Tensor, spec: LearnerSpec, g: torch.Generator) -> Minibatch:
    """Actions of the one-step learners on ``obs`` and old log-probs near the current ones (ratios
    inside the clip range, where the loss is smooth)."""
    with torch.no_grad():
        theta1 = one_step_learners(data, theta0, spec.activation)
        out = batched_forward(theta1, encode(data.encoder, obs), spec.activation)
        K, M = out.shape[:2]
        if spec.policy == "gaussian":
            log_std = theta1["log_std"][:, None, :]
            actions = out + log_std.exp() * torch.randn(out.shape, generator=g, dtype=F64)
            logp = Gaussian.log_prob(out, actions, log_std)
        else:
            actions = torch.randint(out.shape[-1], (K, M), generator=g)
            logp = F.log_softmax(out, -1).gather(-1, actions[..., None])[..., 0]
        old_logp = logp + 0.03 * torch.randn(K, M, generator=g, dtype=F64)
    return Minibatch(obs, actions, old_logp, torch.randn(K, M, generator=g, dtype=F64))


@pytest.mark.parametrize("K", [1, 3])
def test_meta_gradient_categorical_mlp(K):
    g = torch.Generator().manual_seed(1)
    spec = LearnerSpec(hidden=(8, 8))
    B, D, A, M = 6, 4, 3, 10
    data = DatasetTensors(torch.randn(B, D, generator=g, dtype=F64), torch.randn(B, A, generator=g, dtype=F64),
                          torch.tensor(math.log(0.3), dtype=F64))
    theta0 = init_params_batch(spec, D, A, K, g, dtype=F64)
    mb = _experience(data, theta0, torch.randn(K, M, D, generator=g, dtype=F64), spec, g)

    def loss(states, labels, log_lr):
        return meta_loss(DatasetTensors(states, labels, log_lr), theta0, mb, activation="tanh", policy="categorical",
                         **PPO)[0]

    assert_matches_finite_differences(loss, [data.states, data.labels, data.log_lr], ["states", "labels", "log_lr"])


def test_meta_gradient_gaussian_mlp_with_normalisation_scale_and_bounded_states():
    g = torch.Generator().manual_seed(2)
    spec = LearnerSpec(hidden=(8, 8), policy="gaussian")
    B, D, A, M, K, bound, scale = 5, 4, 2, 12, 2, 0.25, 0.3
    states = bound * torch.tanh(torch.randn(B, D, generator=g, dtype=F64))  # inside [-bound, bound]
    data = DatasetTensors(states, torch.randn(B, A, generator=g, dtype=F64), torch.tensor(math.log(0.5), dtype=F64),
                          log_std_target=torch.full((A,), -0.3, dtype=F64))
    raw = 3.0 + 2.0 * torch.randn(K, M, D, generator=g, dtype=F64)  # real observations, then as the learner sees them
    obs = normalize_obs(raw, torch.full((D,), 3.0, dtype=F64), torch.full((D,), 4.0, dtype=F64), scale=scale)
    theta0 = init_params_batch(spec, D, A, K, g, dtype=F64)
    mb = _experience(data, theta0, obs, spec, g)

    def loss(states, labels, log_lr, log_std_target):
        return meta_loss(DatasetTensors(states, labels, log_lr, log_std_target), theta0, mb, activation="tanh",
                         policy="gaussian", **PPO)[0]

    assert_matches_finite_differences(loss, [data.states, data.labels, data.log_lr, data.log_std_target],
                                      ["states", "labels", "log_lr", "log_std_target"])


def test_meta_gradient_nature_cnn_with_an_encoder():
    g = torch.Generator().manual_seed(3)
    spec = LearnerSpec(kind="nature_cnn", activation="relu", split=3)
    shape, B, A, M = (4, 36, 36), 2, 4, 3  # the smallest frames the Nature-CNN takes
    encoder = init_encoder(spec, shape, g, dtype=F64)
    data = DatasetTensors(torch.randn(B, *shape, generator=g, dtype=F64), torch.randn(B, A, generator=g, dtype=F64),
                          torch.tensor(math.log(0.05), dtype=F64), encoder=encoder)
    theta0 = init_params_batch(spec, learner_input(spec, shape), A, 1, g, dtype=F64)
    mb = _experience(data, theta0, torch.randn(1, M, *shape, generator=g, dtype=F64), spec, g)
    names = sorted(encoder)

    def loss(states, labels, log_lr, *enc):
        d = DatasetTensors(states, labels, log_lr, encoder=dict(zip(names, enc)))
        return meta_loss(d, theta0, mb, activation="relu", policy="categorical", **PPO)[0]

    assert_directional_derivatives(loss, [data.states, data.labels, data.log_lr, *(encoder[k] for k in names)],
                                   ["states", "labels", "log_lr", *names])
