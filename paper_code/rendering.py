"""Frames of a one-step learner acting in a MuJoCo task (headless rendering)."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import torch

from .dataset import DistilledDataset
from .evaluation import learner_policy, trained_learners


def render_frames(ds: DistilledDataset, *, frames: int = 6, every: int = 25, seed: int = 0,
                  size: tuple[int, int] = (240, 320)) -> list[np.ndarray]:
    """RGB frames of one one-step learner acting (greedy) in the task, every ``every`` steps.

    Rendering is headless (``MUJOCO_GL=egl`` if unset)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    env = gym.make(ds.env_id, render_mode="rgb_array", height=size[0], width=size[1], **ds.env_kwargs)
    g = torch.Generator().manual_seed(seed)
    obs_size, num_actions = env.observation_space.shape[0], env.action_space.shape[0]
    params = trained_learners(ds, 1, observation_shape=(obs_size,), num_actions=num_actions, generator=g)
    policy = learner_policy(params, 1, ds.learner.activation, greedy=True, generator=None, policy=ds.learner.policy,
                            normalize=ds.normalize)
    obs, _ = env.reset(seed=seed)
    out = []
    for t in range(frames * every):
        if t % every == 0:
            out.append(env.render())
        a = policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
        obs, _, term, trunc, _ = env.step(np.clip(a, env.action_space.low, env.action_space.high))
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    return out
