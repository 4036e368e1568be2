"""The gymnasium faces of the N-D cart-pole: one environment (:class:`NDCartPoleEnv`, registered
as ``paper_code/NDCartPole-v0``) with an ``rgb_array`` renderer, and a gymnasium ``VectorEnv`` on
the batched tensor face (:class:`NDCartPoleVectorEnv`, the registered vector entry point:
``gymnasium.make_vec("paper_code/NDCartPole-v0", num_envs=1024, dof=3)``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from paper_code.envs.cartpole import CONSTANTS, BatchedNDCartPole, CartPoleConstants, failed, integrate, observation_bounds, push, validate_dof

PANEL_HEIGHT, WIDTH = 100, 400


def _disk(img: np.ndarray, cy: np.ndarray, cx: np.ndarray, r: int, colour: tuple[int, int, int]) -> None:
    """Paint discs of radius ``r`` centred on the points (cy, cx) (clipped to the image)."""
    h, w = img.shape[:2]
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx <= r * r:
                y, x = (cy + dy).astype(int), (cx + dx).astype(int)
                ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
                img[y[ok], x[ok]] = colour


def render_axes(state: np.ndarray, c: CartPoleConstants = CONSTANTS) -> np.ndarray:
    """One panel per axis, as gymnasium's CartPole draws one: track, cart, pole (scaled to the
    track's +-2.4 x 1.2 width); panels separated by a grey line."""
    n = state.shape[0]
    img = np.full((n * PANEL_HEIGHT, WIDTH, 3), 255, dtype=np.uint8)
    scale = WIDTH / (2 * c.x_threshold * 1.2)
    for i, (x, _, theta, _) in enumerate(np.asarray(state, dtype=np.float64)):
        top = i * PANEL_HEIGHT
        track = top + int(PANEL_HEIGHT * 0.8)
        img[track, :] = (0, 0, 0)
        cx = int(x * scale + WIDTH / 2)
        img[max(track - 10, top):track + 5, max(cx - 20, 0):max(min(cx + 20, WIDTH), 0)] = (0, 0, 0)
        t = np.linspace(0.0, 1.0, 60)
        length = scale * 2 * c.length * 0.55  # drawn a little shorter than gymnasium's, to fit the panel
        _disk(img, track - 10 - t * length * np.cos(theta), cx + t * length * np.sin(theta), 3, (202, 152, 101))
        _disk(img, np.array([track - 10.0]), np.array([float(cx)]), 3, (129, 132, 203))
        if i:
            img[top, :] = (180, 180, 180)
    return img


class NDCartPoleEnv(gym.Env[np.ndarray, np.int64]):
    """Gymnasium face, registered as ``paper_code/NDCartPole-v0`` (TimeLimit 500 via ``make``).

    The state is float64 (as gymnasium's CartPole), observations float32 of size 4N.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, dof: int = 1, render_mode: str | None = None) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"NDCartPoleEnv renders rgb_array only, got render_mode={render_mode!r}")
        self.render_mode = render_mode
        self.dof = validate_dof(dof)
        self.c = CONSTANTS
        high = observation_bounds(self.dof, self.c)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space = spaces.Discrete(2 * self.dof)
        self.state: np.ndarray | None = None
        self._axis_ids = np.arange(self.dof)
        self._steps_beyond_terminated: int | None = None

    def _obs(self) -> np.ndarray:
        assert self.state is not None
        return self.state.reshape(-1).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        b = self.c.reset_bound
        self.state = self.np_random.uniform(low=-b, high=b, size=(self.dof, 4))
        self._steps_beyond_terminated = None
        return self._obs(), {}

    def set_state(self, state: np.ndarray) -> np.ndarray:
        """Put the environment in a given state ([N, 4] or [4N]); returns the observation."""
        state = np.asarray(state, dtype=np.float64)
        if state.size != 4 * self.dof:
            raise ValueError(f"state must have {4 * self.dof} elements for dof={self.dof}, got shape {state.shape}")
        self.state = state.reshape(self.dof, 4).copy()
        self._steps_beyond_terminated = None
        return self._obs()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(action)
        if a.ndim != 0 or not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"action must be an integer in [0, {2 * self.dof}), got {action!r}")
        if not 0 <= int(a) < 2 * self.dof:
            raise ValueError(f"action {int(a)} out of range: actions must be in [0, {2 * self.dof}) for dof={self.dof}")
        axis, direction = push(int(a))
        force = (self._axis_ids == axis) * float(direction * self.c.force_mag)
        self.state = integrate(self.state, force, np, self.c)
        terminated = bool(failed(self.state, self.c))
        if not terminated:
            reward = 1.0
        elif self._steps_beyond_terminated is None:
            self._steps_beyond_terminated = 0
            reward = 1.0
        else:  # stepping after termination, as gymnasium's CartPole: no reward
            self._steps_beyond_terminated += 1
            reward = 0.0
        return self._obs(), reward, terminated, False, {}

    def render(self) -> np.ndarray | None:
        """An RGB frame [N x 100, 400, 3] (``render_mode="rgb_array"``): one panel per axis."""
        if self.render_mode is None:
            gym.logger.warn("render() without render_mode: make the env with render_mode='rgb_array'")
            return None
        assert self.state is not None, "call reset() before render()"
        return render_axes(self.state, self.c)



class NDCartPoleVectorEnv(VectorEnv):
    """``num_envs`` N-D cart-poles as one gymnasium ``VectorEnv`` on the batched tensor face:
    numpy in and out, same-step autoreset (an ended episode's last observation is
    ``infos["final_obs"]``, marked by ``infos["_final_obs"]``), truncation after 500 steps."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, dof: int = 1, max_episode_steps: int = 500, **kwargs: Any) -> None:
        self.num_envs = int(num_envs)
        self.dof = validate_dof(dof)
        self.env = BatchedNDCartPole(self.num_envs, self.dof, max_episode_steps=max_episode_steps, check_actions=True,
                                     **kwargs)
        high = observation_bounds(self.dof, self.env.c)
        self.single_observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.single_action_space = spaces.Discrete(2 * self.dof)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if isinstance(seed, list):
            seed = seed[0]
        obs = self.env.reset(seed=seed)
        return obs.cpu().numpy().astype(np.float32), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        out = self.env.step(torch.as_tensor(np.asarray(actions), dtype=torch.long))
        done = (out.terminated | out.truncated).cpu().numpy()
        infos: dict[str, Any] = {}
        if done.any():
            infos = {"final_obs": out.final_obs.cpu().numpy().astype(np.float32), "_final_obs": done}
        return (out.obs.cpu().numpy().astype(np.float32), out.reward.cpu().numpy().astype(np.float64),
                out.terminated.cpu().numpy(), out.truncated.cpu().numpy(), infos)
