"""Reference policies, the returns a distilled dataset is compared with: uniformly random, a
constant action, a hand-written cart-pole controller.

A policy maps observations ``[B, ...]`` to actions: integer actions ``[B]`` for discrete tasks,
``[B, A]`` for continuous ones. The ``*_reference_returns`` functions run them under the same
protocol as the one-step learners (:func:`~paper_code.core.evaluation.first_episode_returns`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from paper_code.core.evaluation import first_episode_returns
from paper_code.envs import BatchedNDCartPole, GymVectorEnv, atari_id, check_game, make_env


class RandomPolicy:
    """Uniformly random discrete actions."""

    def __init__(self, num_actions: int, generator: torch.Generator | None = None) -> None:
        self.num_actions = num_actions
        self.generator = generator

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.randint(self.num_actions, (obs.shape[0],), generator=self.generator, device=obs.device)


class UniformPolicy:
    """Uniformly random continuous actions within the action space's bounds."""

    def __init__(self, env: GymVectorEnv, generator: torch.Generator) -> None:
        self.low = torch.as_tensor(env.action_low, dtype=torch.float32)
        self.high = torch.as_tensor(env.action_high, dtype=torch.float32)
        self.generator = generator

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        u = torch.rand(obs.shape[0], self.low.shape[0], generator=self.generator)
        return self.low + u * (self.high - self.low)


class ConstantPolicy:
    """The same action in every state: a discrete action (an int), or a continuous one [A] or one per env [E, A]."""

    def __init__(self, action: int | torch.Tensor) -> None:
        self.action = action

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        if isinstance(self.action, int):
            return torch.full((obs.shape[0],), self.action, dtype=torch.long, device=obs.device)
        return self.action.to(obs).expand(obs.shape[0], -1)


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


def cartpole_reference_returns(dofs: list[int], episodes: int, seed: int = 0, device: str = "cpu") -> pd.DataFrame:
    """Returns of the random policy and of :class:`CartPoleController` on N-D cart-pole.

    One row per episode: ``dof``, ``policy``, ``episode``, ``return``. All ``episodes`` of one
    (N, policy) pair run together as one batch of environments.
    """
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


def continuous_reference_returns(task: str, episodes: int, seed: int = 0) -> pd.DataFrame:
    """Returns of the uniformly random policy and of the zero action on a continuous-action task:
    one row per (policy, episode)."""
    env = make_env(task, episodes, seed=seed)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for name, policy in (("random", UniformPolicy(env, g)), ("zero action", ConstantPolicy(torch.zeros(env.num_actions)))):
        returns, _ = first_episode_returns(env, policy, seed=seed)
        rows.append(pd.DataFrame({"task": task, "policy": name, "episode": range(episodes), "return": returns.numpy()}))
    env.close()
    return pd.concat(rows, ignore_index=True)


@torch.no_grad()
def atari_reference_returns(game: str, *, episodes: int, seed: int = 0, **env_kwargs: Any) -> pd.DataFrame:
    """Return of pressing one action all the time, for every action (``episodes`` each), and of a
    uniformly random policy, under ``env_kwargs`` (e.g. a dataset's: ``max_episode_steps``,
    ``repeat_action_probability``). One row per (policy, episode)."""
    env = make_env(atari_id(check_game(game)), episodes, seed=seed, **env_kwargs)
    names = env.env.action_meanings()
    policies = {"random": RandomPolicy(env.num_actions, torch.Generator().manual_seed(seed))}
    policies.update({name: ConstantPolicy(a) for a, name in enumerate(names)})
    rows = []
    for name, policy in policies.items():
        returns, _ = first_episode_returns(env, policy, seed=seed)
        rows += [{"game": game, "policy": name, "episode": e, "return": float(r)} for e, r in enumerate(returns)]
    env.close()
    return pd.DataFrame(rows)
