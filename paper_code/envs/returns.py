"""The range one episode's return can take, where the task bounds it: the interval every 95% CI is
clipped to (:func:`paper_code.core.evaluation.mean_ci95`), so that no interval claims returns the task cannot give."""

from __future__ import annotations

import math
from typing import Any

#: per-step reward range of gymnasium tasks whose rewards are bounded (by name, any version): with the
#: episode's step limit it bounds the return. Pendulum: minus the largest cost pi^2 + 0.1 * 8^2 + 0.001 * 2^2
STEP_REWARD_RANGE: dict[str, tuple[float, float]] = {
    "CartPole": (0.0, 1.0),
    "Acrobot": (-1.0, 0.0),
    "MountainCar": (-1.0, 0.0),
    "Pendulum": (-(math.pi**2 + 0.1 * 8.0**2 + 0.001 * 2.0**2), 0.0),
}
#: an Atari game's score range (raw, unclipped): Pong is 21 points either way; the others only add points
ATARI_SCORE_RANGE: dict[str, tuple[float | None, float | None]] = {
    "Pong": (-21.0, 21.0),
    "Breakout": (0.0, None),
    "SpaceInvaders": (0.0, None),
    "MsPacman": (0.0, None),
    "Centipede": (0.0, None),
}
Bounds = tuple[float | None, float | None]
UNBOUNDED: Bounds = (None, None)


def task_name(env_id: str) -> str:
    """``Acrobot`` for ``Acrobot-v1``, ``Pong`` for ``ALE/Pong-v5``."""
    return env_id.rsplit("/", 1)[-1].split("-v")[0]


def episode_return_bounds(env_id: str, env_kwargs: dict[str, Any], max_episode_steps: int | None) -> Bounds:
    """(lowest, highest) return of one episode of ``env_id`` lasting at most ``max_episode_steps`` agent steps
    (None where a side is unbounded or unknown: :data:`UNBOUNDED` for tasks not listed above)."""
    name = task_name(env_id)
    if env_id.startswith("ALE/"):
        return ATARI_SCORE_RANGE.get(name, UNBOUNDED)
    steps = env_kwargs.get("max_episode_steps") or max_episode_steps
    if name in STEP_REWARD_RANGE and steps:
        lo, hi = STEP_REWARD_RANGE[name]
        return lo * int(steps), hi * int(steps)
    return UNBOUNDED
