"""Environments: the ND cart-pole (batched tensors and gymnasium) and a lookup by gymnasium id."""

from __future__ import annotations

import math
import numbers
from typing import Any

import gymnasium as gym

from paper_code import checks
from paper_code.envs.atari import ATARI_GAMES, action_names, atari_id, check_game, is_atari
from paper_code.envs.cartpole import MAX_EPISODE_STEPS, BatchedNDCartPole, BatchedStep, validate_dof
from paper_code.envs.cartpole_gym import NDCartPoleEnv, NDCartPoleVectorEnv
from paper_code.envs.gym_vector import MUJOCO_TASKS, GymVectorEnv, action_space_kind
from paper_code.envs.returns import Bounds, episode_return_bounds

ND_CARTPOLE_ID = "paper_code/NDCartPole-v0"

if ND_CARTPOLE_ID not in gym.registry:
    gym.register(
        id=ND_CARTPOLE_ID,
        entry_point="paper_code.envs.cartpole_gym:NDCartPoleEnv",
        vector_entry_point="paper_code.envs.cartpole_gym:NDCartPoleVectorEnv",
        reward_threshold=475.0,
        max_episode_steps=500,
        kwargs={"dof": 1},
    )

#: gymnasium ids that have a batched tensor face, and how to build it.
_BATCHED: dict[str, Any] = {
    ND_CARTPOLE_ID: lambda num_envs, **kw: BatchedNDCartPole(num_envs, **kw),
    "CartPole-v1": lambda num_envs, **kw: BatchedNDCartPole(num_envs, dof=1, **kw),
}


#: the largest N of the N-D cart-pole (4N observations, 2N actions) accepted from a file or the CLI
MAX_DOF = 256
#: keyword arguments the code passes itself: never taken from a configuration or a dataset file
RESERVED_KWARGS = frozenset({"num_envs", "device", "seed", "check_actions", "dtype", "force_torch", "constants",
                             "render_mode", "vector_kwargs", "vectorization_mode"})
#: what each batched tensor environment takes from ``env_kwargs``
_BATCHED_KWARGS: dict[str, frozenset[str]] = {
    ND_CARTPOLE_ID: frozenset({"dof", "max_episode_steps"}),
    "CartPole-v1": frozenset({"max_episode_steps"}),
}


def check_env_kwargs(env_id: str, env_kwargs: Any) -> dict[str, Any]:
    """``env_kwargs`` for ``env_id`` checked before anything is built (``ValueError``): a JSON-like
    object of scalars, no reserved names, sizes bounded; a batched environment's keys are known.
    Returns the same mapping as a plain dict (nothing added)."""
    if not isinstance(env_kwargs, dict):
        raise ValueError(f"env_kwargs must be an object of keyword arguments, got {type(env_kwargs).__name__}")
    for k, v in env_kwargs.items():
        if not isinstance(k, str):
            raise ValueError(f"env_kwargs keys must be strings, got {k!r}")
        if k in RESERVED_KWARGS:
            raise ValueError(f"env_kwargs may not set {k!r} (the code sets it)")
        if v is not None and not isinstance(v, (bool, numbers.Real, str)):
            raise ValueError(f"env_kwargs {k!r} must be a number, a string, true/false or null, got {type(v).__name__}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"env_kwargs {k!r} must be finite, got {v}")
    if env_id in _BATCHED_KWARGS:
        unknown = sorted(set(env_kwargs) - _BATCHED_KWARGS[env_id])
        if unknown:
            raise ValueError(f"{env_id} takes env_kwargs {sorted(_BATCHED_KWARGS[env_id])}, got {', '.join(unknown)}")
        if "dof" in env_kwargs and validate_dof(env_kwargs["dof"]) > MAX_DOF:
            raise ValueError(f"dof must be at most {MAX_DOF} (the number of cart-pole axes), got {env_kwargs['dof']}")
    if env_kwargs.get("max_episode_steps") is not None:
        checks.integer("max_episode_steps", env_kwargs["max_episode_steps"])
    return dict(env_kwargs)


def has_batched(env_id: str) -> bool:
    """Whether ``env_id`` can be stepped as a batched tensor environment."""
    return env_id in _BATCHED


def make_batched(env_id: str, num_envs: int, **kwargs: Any) -> BatchedNDCartPole:
    """Build the batched tensor face of ``env_id`` (clear error for unknown ids)."""
    if env_id not in _BATCHED:
        known = ", ".join(sorted(_BATCHED))
        raise ValueError(f"no batched tensor environment for {env_id!r}; known: {known}")
    return _BATCHED[env_id](num_envs, **kwargs)


def return_bounds(env_id: str, env_kwargs: dict[str, Any]) -> Bounds:
    """The range one episode's return can take (:func:`~paper_code.envs.returns.episode_return_bounds`)
    without building the environment: its step limit is the one asked for or the registered one."""
    if env_id in _BATCHED:
        return 0.0, return_cap(env_id, env_kwargs)
    steps = env_kwargs.get("max_episode_steps")
    if steps is None and not is_atari(env_id):
        try:
            steps = gym.spec(env_id).max_episode_steps
        except gym.error.Error:
            steps = None
    return episode_return_bounds(env_id, env_kwargs, steps)


def return_cap(env_id: str, env_kwargs: dict[str, Any]) -> float | None:
    """The most one episode of ``env_id`` can return, where the environment has such a cap (the
    batched N-D cart-pole: 1 per step up to its step limit), without building it; None otherwise."""
    if env_id in _BATCHED:
        return float(env_kwargs.get("max_episode_steps", MAX_EPISODE_STEPS))
    return None


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
    "action_names",
    "check_game",
    "return_cap",
    "return_bounds",
    "is_atari",
    "MUJOCO_TASKS",
    "GymVectorEnv",
    "make_env",
    "action_space_kind",
    "check_env_kwargs",
    "MAX_DOF",
    "ND_CARTPOLE_ID",
    "BatchedNDCartPole",
    "BatchedStep",
    "NDCartPoleEnv",
    "NDCartPoleVectorEnv",
    "has_batched",
    "make_batched",
    "validate_dof",
]
