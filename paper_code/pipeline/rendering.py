"""Frames of a one-step learner acting in its task: MuJoCo (headless) or the N-D cart-pole."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import torch

from paper_code.core.dataset import DistilledDataset
from paper_code.core.evaluation import learner_policy, trained_learners
from paper_code.envs import ND_CARTPOLE_ID


def render_frames(ds: DistilledDataset, *, frames: int = 6, every: int = 25, seed: int = 0,
                  size: tuple[int, int] = (240, 320), greedy: bool = True) -> list[np.ndarray]:
    """RGB frames of one one-step learner acting in the task (greedy, or sampled actions), every
    ``every`` steps; an episode that ends is followed by a fresh one.

    MuJoCo renders headless (``MUJOCO_GL=egl`` if unset) at ``size``; the N-D cart-pole draws one
    panel per axis (:func:`paper_code.envs.cartpole_gym.render_axes`)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    sized = {} if ds.env_id == ND_CARTPOLE_ID else {"height": size[0], "width": size[1]}
    env = gym.make(ds.env_id, render_mode="rgb_array", **sized, **ds.env_kwargs)
    g = torch.Generator().manual_seed(seed)
    continuous = isinstance(env.action_space, gym.spaces.Box)
    num_actions = env.action_space.shape[0] if continuous else int(env.action_space.n)
    params = trained_learners(ds, 1, observation_shape=env.observation_space.shape, num_actions=num_actions, generator=g)
    policy = learner_policy(params, 1, ds.learner.activation, greedy=greedy, generator=g, policy=ds.learner.policy,
                            normalize=lambda obs: ds.features(ds.normalize(obs)))
    obs, _ = env.reset(seed=seed)
    out = []
    for t in range(frames * every):
        if t % every == 0:
            out.append(env.render())
        a = policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
        obs, _, term, trunc, _ = env.step(np.clip(a, env.action_space.low, env.action_space.high) if continuous else int(a))
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    return out
