"""Episode returns of a policy in a batched environment."""

from __future__ import annotations

from typing import Callable

import torch

from .envs import BatchedNDCartPole

Policy = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def first_episode_returns(env: BatchedNDCartPole, policy: Policy, *, seed: int | None = None,
                          check_every: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Run every environment of ``env`` until its first episode ends.

    Returns ``(returns, lengths)``, each ``[B]``: one episode per environment, all stepped
    together. The loop checks for completion only every ``check_every`` steps (one host sync).
    """
    obs = env.reset(seed=seed)
    B = env.num_envs
    returns = torch.zeros(B, device=env.device, dtype=env.dtype)
    lengths = torch.zeros(B, device=env.device, dtype=torch.long)
    finished = torch.zeros(B, device=env.device, dtype=torch.bool)
    for t in range(env.max_episode_steps):
        out = env.step(policy(obs))
        obs = out.obs
        ended = (out.terminated | out.truncated) & ~finished
        returns = torch.where(ended, out.episode_return, returns)
        lengths = torch.where(ended, out.episode_length, lengths)
        finished |= ended
        if (t + 1) % check_every == 0 and bool(finished.all()):
            break
    return returns, lengths


@torch.no_grad()
def record_episode(env: BatchedNDCartPole, policy: Policy, *, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One episode of the first environment of ``env``: states ``[T + 1, N, 4]`` and actions ``[T]``."""
    obs = env.reset(seed=seed)
    states, actions = [env.state[0].clone()], []
    for _ in range(env.max_episode_steps):
        a = policy(obs)
        out = env.step(a)
        actions.append(a[0])
        states.append(out.final_obs[0].reshape(env.dof, 4))
        if bool(out.terminated[0] | out.truncated[0]):
            break
        obs = out.obs
    return torch.stack(states), torch.stack(actions)
