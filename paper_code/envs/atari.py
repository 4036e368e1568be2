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

:func:`make_atari` builds one such env from gymnasium's wrappers; :class:`AtariVectorEnv` steps
several with exactly their arithmetic (same frames, rewards, episode ends and random streams:
``tests/test_atari.py`` compares the two) without their per-frame Python layers.
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


def _emulator(env_id: str, **kwargs: Any) -> gym.Env:
    """The ALE env (one emulator frame per step) under the preprocessing: gymnasium's
    ``OrderEnforcing(PassiveEnvChecker(AtariEnv))``."""
    import ale_py

    from ..runtime import configure_allocator

    configure_allocator()  # frame batches are large temporaries: keep their memory (see there)
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
    return env


def make_atari(env_id: str, max_episode_steps: int | None = None, **kwargs: Any) -> gym.Env:
    """One preprocessed Atari env (see the module docstring)."""
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TimeLimit

    env = _emulator(env_id, **kwargs)
    env = AtariPreprocessing(env, noop_max=30, frame_skip=FRAME_SKIP, screen_size=84, grayscale_obs=True, scale_obs=False)
    env = FrameStackObservation(env, 4)
    if max_episode_steps is not None:
        env = TimeLimit(env, max_episode_steps=int(max_episode_steps))
    return env


NOOP_MAX = 30  # AtariPreprocessing's noop_max: 1..30 no-op actions after every reset
SCREEN_SIZE = 84
STACK = 4  # FrameStackObservation's stack size


class AtariVectorEnv:
    """``num_envs`` preprocessed Atari games, as gymnasium's ``SyncVectorEnv`` of :func:`make_atari`
    envs with same-step autoreset would step them, computed in one loop.

    Per env and agent step this is ``AtariPreprocessing``'s frame skip (4 emulator frames, the
    reward summed, the last two screens max-pooled, the episode's end checked after every frame),
    its 84x84 ``INTER_AREA`` resize, ``FrameStackObservation``'s stack of 4 (filled with the first
    frame at a reset), ``TimeLimit``'s ``max_episode_steps`` and the vector env's reset of an env
    whose episode ended, with ``final_obs`` kept; a reset is ALE's, seeded as the vector env seeds
    (env i with seed + i), followed by 1..30 no-ops drawn from the env's own generator. The ALE
    calls are the wrappers' calls in their order, so frames, rewards, episode ends and every random
    stream (sticky actions, no-ops) are theirs; only the Python layers between them are gone (~12%
    of an 8-env rollout's env time). ``step``/``reset`` return what ``SyncVectorEnv``'s do (``info``
    holds ``final_obs``/``_final_obs`` when an episode ended). ``envs`` are the emulators' envs
    (``gym.make``'s, one emulator frame per step): their spaces, spec and action meanings.
    """

    def __init__(self, env_id: str, num_envs: int, max_episode_steps: int | None = None, **kwargs: Any) -> None:
        self.envs = [_emulator(env_id, **kwargs) for _ in range(num_envs)]
        self.num_envs = num_envs
        self._ale = [env.unwrapped.ale for env in self.envs]
        self._actions = [env.unwrapped._action_set for env in self.envs]  # action index -> ALE action
        if self.envs[0].unwrapped.get_action_meanings()[0] != "NOOP":
            raise ValueError(f"{env_id}: action 0 is not NOOP (the no-op resets need it)")
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.single_observation_space = gym.spaces.Box(0, 255, (STACK, SCREEN_SIZE, SCREEN_SIZE), np.uint8)
        self.single_action_space = self.envs[0].action_space
        shape = self.envs[0].observation_space.shape[:2]
        self._screens = np.zeros((num_envs, 2, *shape), np.uint8)  # AtariPreprocessing's obs_buffer, per env
        self._stack = np.zeros((num_envs, STACK, SCREEN_SIZE, SCREEN_SIZE), np.uint8)
        self._elapsed = np.zeros(num_envs, dtype=np.int64)  # TimeLimit's

    def _frame(self, i: int) -> np.ndarray:
        """AtariPreprocessing's observation: the max of the two screens (into the first), resized."""
        import cv2

        a, b = self._screens[i]
        np.maximum(a, b, out=a)
        return cv2.resize(a, (SCREEN_SIZE, SCREEN_SIZE), interpolation=cv2.INTER_AREA)

    def _reset(self, i: int, seed: int | None) -> None:
        env = self.envs[i].unwrapped
        env.reset(seed=seed)
        for _ in range(env.np_random.integers(1, NOOP_MAX + 1)):  # the no-op reset
            _, _, terminated, truncated, _ = env.step(0)
            if terminated or truncated:
                env.reset(seed=seed)
        self._ale[i].getScreenGrayscale(self._screens[i, 0])
        self._screens[i, 1].fill(0)
        self._stack[i] = self._frame(i)  # the stack starts as the first frame, 4 times
        self._elapsed[i] = 0

    def reset(self, *, seed: int | None = None) -> tuple[np.ndarray, dict]:
        for i in range(self.num_envs):
            self._reset(i, None if seed is None else seed + i)
        return self._stack.copy(), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        E = self.num_envs
        rewards = np.zeros(E)
        terminated, truncated = np.zeros(E, dtype=bool), np.zeros(E, dtype=bool)
        final = None
        self._stack[:, :-1] = self._stack[:, 1:]  # every stack moves on by one frame (the newest goes last)
        for i in range(E):
            ale, screens = self._ale[i], self._screens[i]
            action = self._actions[i][int(actions[i])]
            total, term, trunc = 0.0, False, False
            for t in range(FRAME_SKIP):
                total += 0.0 + ale.act(action, 1.0)  # AtariEnv.step's reward (a float), summed
                term, trunc = ale.game_over(with_truncation=False), ale.game_truncated()
                if term or trunc:
                    break
                if t == FRAME_SKIP - 2:
                    ale.getScreenGrayscale(screens[1])
                elif t == FRAME_SKIP - 1:
                    ale.getScreenGrayscale(screens[0])
            self._stack[i, -1] = self._frame(i)
            self._elapsed[i] += 1
            if self.max_episode_steps is not None and self._elapsed[i] >= self.max_episode_steps:
                trunc = True
            rewards[i], terminated[i], truncated[i] = total, term, trunc
            if term or trunc:  # same-step autoreset: the episode's last observation is kept
                if final is None:
                    final = {"final_obs": np.full(E, None, dtype=object), "_final_obs": np.zeros(E, dtype=bool)}
                final["final_obs"][i], final["_final_obs"][i] = self._stack[i].copy(), True
                self._reset(i, None)
        return self._stack.copy(), rewards, terminated, truncated, final or {}

    def close(self) -> None:
        for env in self.envs:
            env.close()
