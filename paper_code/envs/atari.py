"""Atari 2600 games through ale-py's own vector environment (ROMs and preprocessing ship inside it).

``ALE/<Game>-v5`` stepped by :class:`ale_py.vector_env.AtariVectorEnv` (C++, threads): up to 30
no-op actions at reset, frame skip 4 with max-pooling of the last two frames, 84x84 grayscale
(``INTER_AREA``, as gymnasium's ``AtariPreprocessing``), uint8, a stack of the last 4 frames (filled
with the first frame at a reset); observations are uint8 [4, 84, 84] and the learners scale them to
[0, 1]. Sticky actions: ALE v5's default, repeat_action_probability 0.25 (the previous action is
repeated with probability 0.25 at every emulator frame); env_kwargs ``repeat_action_probability=0``
gives the older ``<Game>NoFrameskip-v4`` settings (no sticky actions), under which the authors'
published datasets were made. Full games: no end of episode at a life loss, no FIRE at reset, raw
(unclipped) rewards. ``max_episode_steps`` (agent steps) caps an episode; ALE v5's own cap is
108,000 frames = 27,000 agent steps (:func:`ale_step_cap`).

Against gymnasium's ``AtariPreprocessing`` + ``FrameStackObservation`` the frames are the same for
the same emulator frames (``tests/test_atari.py``); the random streams differ (ale-py draws the
no-ops and sticky actions from its own per-env generators), so the same seed gives other episodes.
"""

from __future__ import annotations

import os
import re
from typing import Any

import gymnasium as gym
import numpy as np

ATARI_GAMES = ("Pong", "Breakout", "SpaceInvaders", "MsPacman", "Centipede")
STICKY_ACTIONS = 0.25
FRAME_SKIP = 4  # emulator frames per agent step
NOOP_MAX = 30  # at most this many no-op actions after every reset
SCREEN_SIZE = 84
STACK = 4  # frames per observation
#: env_kwargs an Atari env takes (the rest of ``ALE/<Game>-v5``'s options are fixed by the preprocessing)
ATARI_KWARGS = frozenset({"repeat_action_probability", "max_num_frames_per_episode", "full_action_space",
                          "max_episode_steps"})


def atari_id(game: str) -> str:
    return f"ALE/{game}-v5"


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/")


def _spec(env_id: str) -> gym.envs.registration.EnvSpec:
    import ale_py

    gym.register_envs(ale_py)
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on stderr
    try:
        return gym.spec(env_id)
    except gym.error.Error as e:
        raise ValueError(f"unknown environment {env_id!r} ({e})") from None


def ale_step_cap(env_id: str, **kwargs: Any) -> int:
    """The most agent steps an episode can last without a ``max_episode_steps``: ALE ends it
    (truncated) after ``max_num_frames_per_episode`` emulator frames (v5: 108,000, i.e. 27,000
    agent steps of :data:`FRAME_SKIP` frames; the no-ops at reset count as frames, so it can end sooner)."""
    frames = kwargs.get("max_num_frames_per_episode") or _spec(env_id).kwargs.get("max_num_frames_per_episode")
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
    env = AtariVectorEnv(atari_id(check_game(game)), 1)
    names = env.action_meanings()
    env.close()
    return names


def env_threads(num_envs: int) -> int:
    """Threads that step the emulators: the cores this process may run on, at most one per env."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, num_envs))


def ale_settings(env_id: str, **kwargs: Any) -> dict[str, Any]:
    """The keyword arguments of :class:`ale_py.vector_env.AtariVectorEnv` for ``env_id`` with
    ``env_kwargs`` (without ``max_episode_steps``, which :class:`AtariVectorEnv` applies): the game,
    the v5 options given or registered, and the preprocessing of the module docstring."""
    spec = _spec(env_id)
    if spec.entry_point != "ale_py.env:AtariEnv":
        raise ValueError(f"{env_id} is not an ALE game")
    unknown = sorted(set(kwargs) - ATARI_KWARGS - {"max_episode_steps"})
    if unknown:
        raise ValueError(f"{env_id} takes env_kwargs {sorted(ATARI_KWARGS)}, got {', '.join(unknown)}")
    s = {"repeat_action_probability": STICKY_ACTIONS, **spec.kwargs, **kwargs}
    return dict(game=s["game"], repeat_action_probability=float(s["repeat_action_probability"]),
                max_num_frames_per_episode=int(s["max_num_frames_per_episode"]),
                full_action_space=bool(s["full_action_space"]), frameskip=FRAME_SKIP, maxpool=True, noop_max=NOOP_MAX,
                img_height=SCREEN_SIZE, img_width=SCREEN_SIZE, grayscale=True, stack_num=STACK, episodic_life=False,
                reward_clipping=False, use_fire_reset=False)


class AtariVectorEnv:
    """``num_envs`` preprocessed Atari games (see the module docstring): ale-py's vector env with
    same-step autoreset, plus ``max_episode_steps`` (gymnasium's ``TimeLimit``: an episode that
    reaches it is truncated and reset in the same step). ``step``/``reset`` return what gymnasium's
    ``SyncVectorEnv`` with same-step autoreset returns (``info`` holds ``final_obs``/``_final_obs``
    when an episode ended) and ``info["life_lost"]`` at every step: the envs that lost a life in it while
    their game goes on (what CleanRL's ``EpisodicLifeEnv`` ends an episode at; here only reported); a reset
    with ``seed`` seeds env i with seed + i."""

    def __init__(self, env_id: str, num_envs: int, max_episode_steps: int | None = None, **kwargs: Any) -> None:
        from ale_py.vector_env import AtariVectorEnv as ALEVectorEnv

        from paper_code.runtime import configure_allocator

        configure_allocator()  # frame batches are large temporaries: keep their memory (see there)
        self.spec = _spec(env_id)
        self.num_envs = num_envs
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.env = ALEVectorEnv(num_envs=num_envs, num_threads=env_threads(num_envs), autoreset_mode="SameStep",
                                **ale_settings(env_id, **kwargs))
        if self.action_meanings()[0] != "NOOP":
            raise ValueError(f"{env_id}: action 0 is not NOOP (the no-op resets need it)")
        self.single_observation_space = self.env.single_observation_space
        self.single_action_space = self.env.single_action_space
        self._elapsed = np.zeros(num_envs, dtype=np.int64)  # TimeLimit's
        self._lives = np.zeros(num_envs, dtype=np.int64)

    def action_meanings(self) -> list[str]:
        """The action meanings (NOOP, FIRE, RIGHT, ...), in action order."""
        return [a.name for a in self.env.ale.get_action_set()]

    def reset(self, *, seed: int | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed)
        self._elapsed[:] = 0
        self._lives[:] = info["lives"]
        return obs, {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, rewards, terminated, truncated, info = self.env.step(np.asarray(actions, dtype=np.int64))
        rewards = rewards.astype(np.float64)
        self._elapsed += 1
        final_obs = info.get("final_obs")
        done = terminated | truncated
        lives = np.asarray(info["lives"], dtype=np.int64)  # a new episode's where one ended
        life_lost = ~done & (lives < self._lives)
        if self.max_episode_steps is not None:
            capped = ~done & (self._elapsed >= self.max_episode_steps)
            if capped.any():  # TimeLimit: truncated here, and reset in the same step as an ended episode is
                final_obs = obs.copy() if final_obs is None else final_obs
                final_obs[capped] = obs[capped]
                truncated = truncated | capped
                obs, reset_info = self.env.reset(options={"reset_mask": capped})
                lives = np.where(capped, reset_info["lives"], lives)
                life_lost &= ~capped
                done = done | capped
        self._elapsed[done] = 0
        self._lives = lives
        if not done.any():
            return obs, rewards, terminated, truncated, {"life_lost": life_lost}
        return obs, rewards, terminated, truncated, {"final_obs": final_obs, "_final_obs": done, "life_lost": life_lost}

    def close(self) -> None:
        self.env.close()
