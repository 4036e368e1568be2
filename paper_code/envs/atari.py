"""Atari 2600 games through ale-py (ROMs ship inside it) with the standard preprocessing.

``ALE/<Game>-v5`` with ``frameskip=1`` in the emulator, then gymnasium's ``AtariPreprocessing``
(up to 30 no-op actions at reset, frame skip 4 with max-pooling of the last two frames, 84x84
grayscale, uint8) and ``FrameStackObservation(4)``: observations are uint8 [4, 84, 84]; the
learners scale them to [0, 1]. Sticky actions: ALE v5's default, repeat_action_probability 0.25
(the previous action is repeated with probability 0.25 at every emulator frame); env_kwargs
``repeat_action_probability=0`` gives the older ``<Game>NoFrameskip-v4`` settings (no sticky actions),
under which the authors' published datasets were made. Full games, no
end of episode at a life loss. ``max_episode_steps`` (agent steps) caps an episode (ALE v5's own
cap is 108,000 frames = 27,000 agent steps: :func:`ale_step_cap`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

ATARI_GAMES = ("Pong", "Breakout", "SpaceInvaders", "MsPacman", "Centipede")
STICKY_ACTIONS = 0.25
FRAME_SKIP = 4  # emulator frames per agent step (AtariPreprocessing)


def atari_id(game: str) -> str:
    return f"ALE/{game}-v5"


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/")


def ale_step_cap(env_id: str, **kwargs: Any) -> int:
    """The most agent steps an episode can last without a ``max_episode_steps``: ALE ends it
    (truncated) after ``max_num_frames_per_episode`` emulator frames (v5: 108,000, i.e. 27,000
    agent steps of :data:`FRAME_SKIP` frames; the no-ops at reset count as frames, so it can end sooner)."""
    import ale_py

    gym.register_envs(ale_py)
    frames = kwargs.get("max_num_frames_per_episode") or gym.spec(env_id).kwargs.get("max_num_frames_per_episode")
    if not frames:
        raise ValueError(f"{env_id}: episodes have no frame limit; give max_episode_steps")
    return -(-int(frames) // FRAME_SKIP)


def check_game(game: str) -> str:
    """``game`` if it is one of :data:`ATARI_GAMES`, else a ``ValueError`` naming them."""
    if game not in ATARI_GAMES:
        raise ValueError(f"unknown game {game!r} (known: {', '.join(ATARI_GAMES)})")
    return game


def action_names(game: str) -> list[str]:
    """The game's action meanings (NOOP, FIRE, RIGHT, ...), in action order."""
    env = make_atari(atari_id(check_game(game)))
    names = list(env.unwrapped.get_action_meanings())
    env.close()
    return names


def _skip_discarded_screens(ale_env: gym.Env) -> None:
    """``AtariPreprocessing`` reads the two screens it max-pools from the emulator itself and
    discards the observation every emulator frame returns, which ale-py would still copy out of the
    emulator (a 210x160 screen per frame, 4 per agent step: ~10% of env time). The emulator's env
    returns a blank screen instead (a new one each time, as gymnasium's env checker asks); the
    preprocessed frames are unchanged (``tests/test_atari.py`` checks them against plain gymnasium).
    """
    shape, dtype = ale_env.observation_space.shape, ale_env.observation_space.dtype
    ale_env._get_obs = lambda: np.zeros(shape, dtype)  # ale_py.env.AtariEnv's per-frame observation


def make_atari(env_id: str, max_episode_steps: int | None = None, **kwargs: Any) -> gym.Env:
    """One preprocessed Atari env (see the module docstring)."""
    import ale_py

    from ..runtime import configure_allocator

    configure_allocator()  # frame batches are large temporaries: keep their memory (see there)
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TimeLimit

    gym.register_envs(ale_py)
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on stderr
    try:
        # obs_type grayscale: AtariPreprocessing reads the screens it needs itself and discards the
        # emulator's own per-frame observation (which _skip_discarded_screens then never copies);
        # the grayscale space gives its screen buffers their 2-D shape
        env = gym.make(env_id, frameskip=1, **{"repeat_action_probability": STICKY_ACTIONS, "obs_type": "grayscale",
                                               **kwargs})
    except gym.error.Error as e:
        raise ValueError(f"unknown environment {env_id!r} ({e})") from None
    _skip_discarded_screens(env.unwrapped)
    env = AtariPreprocessing(env, noop_max=30, frame_skip=FRAME_SKIP, screen_size=84, grayscale_obs=True, scale_obs=False)
    env = FrameStackObservation(env, 4)
    if max_episode_steps is not None:
        env = TimeLimit(env, max_episode_steps=int(max_episode_steps))
    return env
