"""Environments: the ND cart-pole (batched tensors and gymnasium) and a lookup by gymnasium id."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from .cartpole import BatchedNDCartPole, BatchedStep, NDCartPoleEnv, validate_dof
from .atari import ATARI_GAMES, atari_id, is_atari
from .gym_vector import MUJOCO_TASKS, GymVectorEnv

ND_CARTPOLE_ID = "paper_code/NDCartPole-v0"

if ND_CARTPOLE_ID not in gym.registry:
    gym.register(
        id=ND_CARTPOLE_ID,
        entry_point="paper_code.envs.cartpole:NDCartPoleEnv",
        max_episode_steps=500,
        kwargs={"dof": 1},
    )

#: gymnasium ids that have a batched tensor face, and how to build it.
_BATCHED: dict[str, Any] = {
    ND_CARTPOLE_ID: lambda num_envs, **kw: BatchedNDCartPole(num_envs, **kw),
    "CartPole-v1": lambda num_envs, **kw: BatchedNDCartPole(num_envs, dof=1, **kw),
}


def has_batched(env_id: str) -> bool:
    """Whether ``env_id`` can be stepped as a batched tensor environment."""
    return env_id in _BATCHED


def make_batched(env_id: str, num_envs: int, **kwargs: Any) -> BatchedNDCartPole:
    """Build the batched tensor face of ``env_id`` (clear error for unknown ids)."""
    if env_id not in _BATCHED:
        known = ", ".join(sorted(_BATCHED))
        raise ValueError(f"no batched tensor environment for {env_id!r}; known: {known}")
    return _BATCHED[env_id](num_envs, **kwargs)


def make_env(env_id: str, num_envs: int, **kwargs: Any) -> BatchedNDCartPole | GymVectorEnv:
    """``num_envs`` copies of ``env_id`` behind the batched interface: the tensor environment if
    there is one, else a gymnasium ``SyncVectorEnv`` (:class:`GymVectorEnv`; MuJoCo)."""
    if has_batched(env_id):
        return make_batched(env_id, num_envs, **kwargs)
    kwargs.pop("force_torch", None)
    return GymVectorEnv(env_id, num_envs, **kwargs)


__all__ = [
    "ATARI_GAMES",
    "atari_id",
    "is_atari",
    "MUJOCO_TASKS",
    "GymVectorEnv",
    "make_env",
    "ND_CARTPOLE_ID",
    "BatchedNDCartPole",
    "BatchedStep",
    "NDCartPoleEnv",
    "has_batched",
    "make_batched",
    "validate_dof",
]
