"""Gymnasium environments without a tensor face (MuJoCo, Atari), stepped as one ``SyncVectorEnv``
(Atari: ale-py's vector env, :class:`~paper_code.envs.atari.AtariVectorEnv`) behind the
interface of :class:`~paper_code.envs.cartpole.BatchedNDCartPole`.

Torch tensors in and out, same-step auto-reset (``final_obs`` holds the last observation of an
episode that just ended), episode returns and lengths tracked here. Continuous actions are
clipped to the action space's bounds when sent to the environment, and only then: the policy's
own (unclipped) samples are what PPO's log-probabilities are computed on.
``SyncVectorEnv``, not ``AsyncVectorEnv``: on 2 cores the subprocesses cost more than they save.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from paper_code.envs.atari import AtariVectorEnv, ale_step_cap, is_atari
from paper_code.envs.cartpole import BatchedStep
from paper_code.envs.returns import episode_return_bounds

#: the gymnasium MuJoCo v5 tasks (notebook 02)
MUJOCO_TASKS = (
    "Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Humanoid-v5", "HumanoidStandup-v5", "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5", "Pusher-v5", "Reacher-v5", "Swimmer-v5", "Walker2d-v5",
)


#: the most copies of a gymnasium environment stepped together
MAX_ENVS = 10_000

#: MuJoCo warnings not passed on: gymnasium's HalfCheetah model still uses a compiler attribute
#: that MuJoCo 3.3+ deprecates (nothing a user of this package can act on)
SILENCED_MUJOCO_WARNINGS = ("compiler attribute 'settotalmass' is deprecated",)


def _mujoco_warning(message: str) -> None:
    """MuJoCo's warning handler: the silenced deprecations dropped, any other warning printed to
    stderr as MuJoCo's own handler prints it (which also appends it to ./MUJOCO_LOG.TXT)."""
    if not any(s in message for s in SILENCED_MUJOCO_WARNINGS):
        sys.stderr.write(f"WARNING: {message}\n")


def _install_mujoco_warning_handler() -> None:
    try:
        import mujoco
    except ImportError:  # MuJoCo tasks are then unavailable anyway
        return
    mujoco.set_mju_user_warning(_mujoco_warning)


_install_mujoco_warning_handler()


class GymVectorEnv:
    """``num_envs`` copies of a gymnasium environment.

    ``num_actions`` is the number of discrete actions or, for a continuous (Box) action space,
    the action dimension; ``continuous`` tells which. ``return_cap`` is None (no single maximum return);
    ``return_bounds`` the range one episode's return can take where the task bounds it (:mod:`.returns`).
    Observations keep their dtype if it is uint8 (Atari frames: 4x less memory in rollouts),
    else become ``dtype``. ``observation_shape`` is the shape of one observation;
    ``observation_size`` its first dimension (the size of 1-D observations).
    Atari ids (``ALE/<Game>-v5``) get the standard preprocessing (:mod:`paper_code.envs.atari`).
    """

    return_cap = None

    def __init__(self, env_id: str, num_envs: int, *, device: torch.device | str = "cpu", seed: int | None = None,
                 check_actions: bool = False, dtype: torch.dtype = torch.float32, **env_kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or not 1 <= num_envs <= MAX_ENVS:
            raise ValueError(f"num_envs must be an integer in 1..{MAX_ENVS} (one simulator each), got {num_envs!r}")
        try:
            if is_atari(env_id):
                self.env = AtariVectorEnv(env_id, num_envs, **env_kwargs)  # ale-py's C++ vector env
                spec = self.env.spec
            else:
                try:
                    spec = gym.spec(env_id)
                except gym.error.Error as e:
                    raise ValueError(f"unknown environment {env_id!r} ({e})") from None
                with warnings.catch_warnings():  # MuJoCo v4 on purpose: the authors' datasets were made on it
                    warnings.filterwarnings("ignore", message=r".*is out of date\. You should consider upgrading",
                                            category=DeprecationWarning)
                    self.env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                                            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
                                            **env_kwargs)
        except (TypeError, gym.error.Error) as e:  # keyword arguments the environment does not take
            msg = " ".join(str(e).split())
            raise ValueError(f"cannot build {env_id} with env_kwargs {env_kwargs}: {msg}") from None
        except ImportError as e:  # an optional dependency (MuJoCo v2/v3, shimmy, jax, ...) not installed here
            msg = " ".join(str(e).split())
            raise ValueError(f"{env_id} needs a package that is not installed here ({type(e).__name__}: {msg})") from None
        self.env_id = env_id
        obs_space, act_space = self.env.single_observation_space, self.env.single_action_space
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) < 1:
            self.env.close()
            raise ValueError(f"{env_id}: unsupported observation space {obs_space} (a Box of one or more "
                             f"dimensions is needed)")
        self.observation_shape = tuple(int(s) for s in obs_space.shape)
        self.obs_dtype = torch.uint8 if obs_space.dtype == np.uint8 else dtype
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dtype = dtype
        self.observation_size = self.observation_shape[0]
        if isinstance(act_space, gym.spaces.Box):
            self.continuous = True
            self.num_actions = int(act_space.shape[0])
            self.action_low = act_space.low.astype(np.float64)
            self.action_high = act_space.high.astype(np.float64)
        elif isinstance(act_space, gym.spaces.Discrete):
            self.continuous = False
            self.num_actions = int(act_space.n)
        else:
            self.env.close()
            raise ValueError(f"{env_id}: unsupported action space {act_space} (Discrete or Box are supported)")
        # the most agent steps an episode lasts (evaluation loops run this long): the cap asked for, the
        # registered one, else ALE's own frame limit for Atari (1,000 for anything else without one)
        self.max_episode_steps = int(env_kwargs.get("max_episode_steps") or spec.max_episode_steps
                                     or (ale_step_cap(env_id, **env_kwargs) if is_atari(env_id) else 1000))
        self.return_bounds = episode_return_bounds(env_id, env_kwargs, self.max_episode_steps)
        self.check_actions = check_actions
        self._seed = seed
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, dtype=np.int64)

    def _tensor(self, x: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.as_tensor(x, dtype=dtype or self.dtype, device=self.device)

    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset every env (``seed``, else the constructor's, seeds env i with seed + i)."""
        obs, _ = self.env.reset(seed=self._seed if seed is None else seed)
        self.returns[:] = 0
        self.lengths[:] = 0
        return self._tensor(obs, self.obs_dtype)

    def step(self, actions: torch.Tensor) -> BatchedStep:
        a = actions.detach().cpu().numpy()
        if self.continuous:
            if self.check_actions and a.shape != (self.num_envs, self.num_actions):
                raise ValueError(f"actions must have shape {(self.num_envs, self.num_actions)}, got {a.shape}")
            a = np.clip(a, self.action_low, self.action_high)
        elif self.check_actions and (a.shape != (self.num_envs,) or a.min() < 0 or a.max() >= self.num_actions):
            raise ValueError(f"actions must be [{self.num_envs}] integers in [0, {self.num_actions})")
        obs, reward, terminated, truncated, info = self.env.step(a)
        self.returns += reward
        self.lengths += 1
        done = terminated | truncated
        final_obs = obs
        ep_return, ep_length = self.returns.copy(), self.lengths.copy()
        if done.any():
            final_obs = obs.copy()
            idx = np.flatnonzero(info["_final_obs"])
            final_obs[idx] = np.stack(info["final_obs"][idx])
            self.returns[done] = 0
            self.lengths[done] = 0
        return BatchedStep(
            obs=self._tensor(obs, self.obs_dtype), reward=self._tensor(reward), terminated=self._tensor(terminated, torch.bool),
            truncated=self._tensor(truncated, torch.bool), final_obs=self._tensor(final_obs, self.obs_dtype),
            episode_return=self._tensor(ep_return), episode_length=self._tensor(ep_length, torch.long),
            life_lost=self._tensor(info["life_lost"], torch.bool) if "life_lost" in info else None,
        )

    def close(self) -> None:
        self.env.close()

    def __del__(self) -> None:
        try:
            self.env.close()
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass


def action_space_kind(env_id: str, **env_kwargs: Any) -> str:
    """``"discrete"`` or ``"continuous"``: the action space of one ``env_id`` (built and closed);
    ``ValueError`` for an unknown id or spaces this code does not support."""
    env = GymVectorEnv(env_id, 1, **env_kwargs)
    env.close()
    return "continuous" if env.continuous else "discrete"

