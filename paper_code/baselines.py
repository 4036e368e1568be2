"""Reference policies for batched environments: uniform random and a hand-written controller.

A policy maps observations ``[B, obs]`` to integer actions ``[B]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from .envs import BatchedNDCartPole
from .evaluation import first_episode_returns

if TYPE_CHECKING:
    import pandas as pd


class RandomPolicy:
    """Uniformly random discrete actions."""

    def __init__(self, num_actions: int, generator: torch.Generator | None = None) -> None:
        self.num_actions = num_actions
        self.generator = generator

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.randint(self.num_actions, (obs.shape[0],), generator=self.generator, device=obs.device)


class CartPoleController:
    """A hand-written linear controller for N-D cart-pole.

    Per axis it computes the push that a linear state-feedback rule wants,
    ``u = k_x x + k_v x_dot + k_theta theta + k_omega theta_dot``, and then pushes the axis whose
    ``|u|`` is largest in the direction of ``u`` (only one axis can be pushed per step).
    """

    def __init__(self, dof: int, gains: tuple[float, float, float, float] = (0.1, 0.5, 10.0, 2.0)) -> None:
        self.dof = dof
        self.gains = torch.tensor(gains)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        state = obs.reshape(obs.shape[0], self.dof, 4)
        u = state @ self.gains.to(state)
        axis = u.abs().argmax(dim=1)
        positive = u.gather(1, axis[:, None]).squeeze(1) > 0
        return 2 * axis + positive.long()


def baseline_returns(dofs: list[int], episodes: int, seed: int = 0, device: str = "cpu") -> pd.DataFrame:
    """Returns of the random policy and of :class:`CartPoleController` on N-D cart-pole.

    One row per episode: ``dof``, ``policy``, ``episode``, ``return``. All ``episodes`` of one
    (N, policy) pair run together as one batch of environments.
    """
    import pandas as pd

    rows = []
    for dof in dofs:
        policies = {
            "random": RandomPolicy(2 * dof, torch.Generator(device=device).manual_seed(seed + 1000 * dof)),
            "controller": CartPoleController(dof),
        }
        for i, (name, policy) in enumerate(policies.items()):
            env = BatchedNDCartPole(episodes, dof, device=device, seed=seed + 1000 * dof + i + 1)
            returns, _ = first_episode_returns(env, policy)
            rows.append(pd.DataFrame({"dof": dof, "policy": name, "episode": range(episodes), "return": returns.cpu().numpy()}))
    return pd.concat(rows, ignore_index=True)
