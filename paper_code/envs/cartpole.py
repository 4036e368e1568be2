"""N-dimensional cart-pole: N independent classic cart-poles driven by one discrete action.

One implementation, two faces:

* :class:`BatchedNDCartPole` steps ``B`` environments x ``N`` axes as one torch tensor
  ``[B, N, 4]`` on any device, with same-step auto-reset (no phantom transitions);
* :class:`~paper_code.envs.cartpole_gym.NDCartPoleEnv` is a gymnasium ``Env`` on a numpy
  ``[N, 4]`` array, registered as ``paper_code/NDCartPole-v0`` (keyword ``dof``), with a vector
  entry point on the batched face (:mod:`paper_code.envs.cartpole_gym`).

Both faces call the same physics (:func:`integrate`, :func:`failed`, :func:`push`), written once
for numpy arrays and torch tensors alike. For ``N = 1`` they reproduce gymnasium's
``CartPole-v1`` (Euler integration, reward 1 per step including the terminal one, reset uniform
in +-0.05, truncation after 500 steps).

Action ``a`` of ``Discrete(2N)`` pushes axis ``a // 2`` with ``+force_mag`` if ``a`` is odd and
``-force_mag`` if even; every other axis gets zero force that step and keeps evolving.
An episode terminates when any axis leaves ``|x| <= 2.4`` or ``|theta| <= 12 degrees``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np
import torch


@dataclass(frozen=True)
class CartPoleConstants:
    """Physical constants of one axis; the defaults are gymnasium's ``CartPole-v1``."""

    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5  # half the pole's length
    force_mag: float = 10.0
    tau: float = 0.02  # seconds between state updates
    x_threshold: float = 2.4
    theta_threshold: float = 12 * 2 * math.pi / 360
    reset_bound: float = 0.05

    @property
    def total_mass(self) -> float:
        return self.masspole + self.masscart

    @property
    def polemass_length(self) -> float:
        return self.masspole * self.length


CONSTANTS = CartPoleConstants()
MAX_EPISODE_STEPS = 500


# --------------------------------------------------------------------------------------------
# The physics, shared by both faces. ``state`` is [..., N, 4] with columns x, x_dot, theta,
# theta_dot; ``force`` is [..., N]. ``xp`` is the numpy or torch module.
# --------------------------------------------------------------------------------------------
def integrate(state: Any, force: Any, xp: Any, c: CartPoleConstants = CONSTANTS) -> Any:
    """One Euler step of every axis (gymnasium's equations; results agree to round-off)."""
    x_dot, theta, theta_dot = state[..., 1], state[..., 2], state[..., 3]
    costheta = xp.cos(theta)
    sintheta = xp.sin(theta)
    temp = (force + c.polemass_length * theta_dot**2 * sintheta) / c.total_mass
    thetaacc = (c.gravity * sintheta - costheta * temp) / (
        c.length * (4.0 / 3.0 - c.masspole * costheta**2 / c.total_mass)
    )
    xacc = temp - c.polemass_length * thetaacc * costheta / c.total_mass
    return state + c.tau * xp.stack((x_dot, xacc, theta_dot, thetaacc), -1)


def failed(state: Any, c: CartPoleConstants = CONSTANTS) -> Any:
    """True where any axis is out of bounds (|x| > 2.4 or |theta| > 12 deg); shape [...]."""
    return ((abs(state[..., 0]) > c.x_threshold) | (abs(state[..., 2]) > c.theta_threshold)).any(-1)


def push(action: Any) -> tuple[Any, Any]:
    """Decode an action into (axis index, direction +1/-1)."""
    return action // 2, (action % 2) * 2 - 1


def validate_dof(dof: Any) -> int:
    """Return ``dof`` as an int or raise a clear error."""
    if isinstance(dof, bool) or not isinstance(dof, numbers.Integral) or int(dof) < 1:
        raise ValueError(f"dof must be a positive integer (the number of cart-pole axes), got {dof!r}")
    return int(dof)


def observation_bounds(dof: int, c: CartPoleConstants = CONSTANTS) -> np.ndarray:
    """Observation-space bound per element, as gymnasium's CartPole (2x the thresholds)."""
    one = np.array(
        [c.x_threshold * 2, np.finfo(np.float32).max, c.theta_threshold * 2, np.finfo(np.float32).max],
        dtype=np.float32,
    )
    return np.tile(one, dof)


# --------------------------------------------------------------------------------------------
# Face 1: batched tensors.
# --------------------------------------------------------------------------------------------
class BatchedStep(NamedTuple):
    """What :meth:`BatchedNDCartPole.step` returns; every field has leading size B.

    ``obs`` is the observation to act on next: for environments whose episode just ended it is
    already the first observation of the new episode (same-step auto-reset), and ``final_obs``
    holds the last observation of the ended episode (for bootstrapping on truncation).
    ``episode_return``/``episode_length`` are those of the episode that just ended and are
    only meaningful where ``terminated | truncated``.
    """

    obs: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    final_obs: torch.Tensor
    episode_return: torch.Tensor
    episode_length: torch.Tensor
    life_lost: torch.Tensor | None = None  # Atari: a life was lost in this step and the game goes on (else None)


class BatchedNDCartPole:
    """``num_envs`` N-D cart-poles stepped together as one ``[B, N, 4]`` tensor.

    No Python loop over environments. ``dtype`` is the state's dtype (float64 reproduces
    gymnasium to round-off). ``check_actions`` validates the range of actions, which costs a
    host sync on accelerators; hot loops that produce valid actions can switch it off.
    """

    def __init__(
        self,
        num_envs: int,
        dof: int = 1,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        max_episode_steps: int = MAX_EPISODE_STEPS,
        seed: int | None = None,
        check_actions: bool = True,
        constants: CartPoleConstants = CONSTANTS,
        force_torch: bool = False,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, numbers.Integral) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, numbers.Integral) or max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be a positive integer, got {max_episode_steps!r}")
        self.num_envs = int(num_envs)
        self.dof = validate_dof(dof)
        self.device = torch.device(device)
        self.dtype = dtype
        self.max_episode_steps = int(max_episode_steps)
        self.check_actions = check_actions
        self._numpy = self.device.type == "cpu" and not force_torch
        self.c = constants
        self.observation_size = 4 * self.dof
        self.num_actions = 2 * self.dof
        self.observation_shape = (self.observation_size,)
        self.continuous = False
        self.return_cap = float(self.max_episode_steps)  # reward 1 per step
        self.return_bounds = (0.0, self.return_cap)
        # force_table[a]: action a's force on each axis (+force_mag on axis a // 2 if a is odd, -force_mag if
        # even)
        axis, direction = push(torch.arange(self.num_actions, device=self.device))
        self.force_table = (torch.arange(self.dof, device=self.device) == axis[:, None]) * (
            direction * self.c.force_mag
        ).to(dtype)[:, None]
        self._ones = torch.ones(self.num_envs, device=self.device, dtype=dtype)  # reward: 1 per step
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(int(seed) if seed is not None else int(torch.seed() % 2**63))
        self.state = torch.zeros(self.num_envs, self.dof, 4, device=self.device, dtype=dtype)
        self.elapsed = torch.zeros(self.num_envs, device=self.device, dtype=torch.long)
        self.returns = torch.zeros(self.num_envs, device=self.device, dtype=dtype)
        self._needs_reset = True

    # ------------------------------------------------------------------ state handling
    def _fresh_states(self) -> torch.Tensor:
        state = torch.empty(self.num_envs, self.dof, 4, device=self.device, dtype=self.dtype)
        return state.uniform_(-self.c.reset_bound, self.c.reset_bound, generator=self._generator)

    def _obs(self, state: torch.Tensor) -> torch.Tensor:
        return state.reshape(state.shape[0], self.observation_size)

    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Start a new episode in every environment; returns observations [B, 4N]."""
        if seed is not None:
            self._generator.manual_seed(int(seed))
        self.state = self._fresh_states()
        self.elapsed.zero_()
        self.returns.zero_()
        self._needs_reset = False
        return self._obs(self.state)

    def set_state(self, state: torch.Tensor | np.ndarray, elapsed: torch.Tensor | int | None = None) -> torch.Tensor:
        """Put every environment in a given state ([B, N, 4] or [B, 4N]); returns observations."""
        state = torch.as_tensor(state, device=self.device, dtype=self.dtype)
        if state.shape == (self.num_envs, self.observation_size):
            state = state.reshape(self.num_envs, self.dof, 4)
        if state.shape != (self.num_envs, self.dof, 4):
            raise ValueError(
                f"state must have shape ({self.num_envs}, {self.dof}, 4) or "
                f"({self.num_envs}, {self.observation_size}), got {tuple(state.shape)}"
            )
        self.state = state.clone()
        self.elapsed = torch.zeros_like(self.elapsed) if elapsed is None else (
            torch.as_tensor(elapsed, device=self.device, dtype=torch.long).expand(self.num_envs).clone()
        )
        self.returns.zero_()
        self._needs_reset = False
        return self._obs(self.state)

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """Everything that determines the following steps (states, step counts, returns so far,
        the reset generator): saved in a run's checkpoint so a resumed run continues exactly."""
        return {"state": self.state, "elapsed": self.elapsed, "returns": self.returns, "generator": self._generator.get_state()}

    def restore_state(self, sd: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`checkpoint_state`'s result."""
        self.state, self.elapsed, self.returns = sd["state"].clone(), sd["elapsed"].clone(), sd["returns"].clone()
        self._generator.set_state(sd["generator"])
        self._needs_reset = False

    # ------------------------------------------------------------------ stepping
    def _validate(self, actions: torch.Tensor) -> torch.Tensor:
        actions = torch.as_tensor(actions, device=self.device)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {tuple(actions.shape)}")
        if actions.dtype.is_floating_point or actions.dtype.is_complex or actions.dtype == torch.bool:
            raise TypeError(f"actions must be integers in [0, {self.num_actions}), got dtype {actions.dtype}")
        if self.check_actions and bool(((actions < 0) | (actions >= self.num_actions)).any()):
            bad = actions[(actions < 0) | (actions >= self.num_actions)][0]
            raise ValueError(f"action {int(bad)} out of range: actions must be in [0, {self.num_actions}) for dof={self.dof}")
        return actions

    def step(self, actions: torch.Tensor) -> BatchedStep:
        """Advance every environment one step; ended episodes restart in the same call."""
        if self._needs_reset:
            raise RuntimeError("call reset() (or set_state()) before step()")
        actions = self._validate(actions)
        # on the CPU the arithmetic runs on numpy views of the same memory: the same physics with
        # a fifth of torch's per-op overhead, which dominates for the small batches of a rollout
        fresh = self.draw_fresh()
        if self._numpy:
            out = transition(self.state.numpy(), self.elapsed.numpy(), self.returns.numpy(),
                             self.force_table.numpy()[actions.numpy()], fresh.numpy(), self.max_episode_steps, np, self.c)
            out = tuple(map(torch.from_numpy, out))
        else:
            out = transition(self.state, self.elapsed, self.returns, self.force_table[actions], fresh,
                             self.max_episode_steps, torch, self.c)
        return self.advance(out)

    def draw_fresh(self, steps: int | None = None) -> torch.Tensor:
        """The states that environments ending their episode this step restart from (one draw
        for every environment, every step: the reset stream does not depend on which ended);
        ``steps``: those of that many steps at once, ``[steps, B, N, 4]`` (the same numbers as
        ``steps`` draws one after another: the generator fills elements in order)."""
        shape = self.state.shape if steps is None else (steps, *self.state.shape)
        fresh = torch.empty(shape, device=self.device, dtype=self.dtype)
        return fresh.uniform_(-self.c.reset_bound, self.c.reset_bound, generator=self._generator)

    def advance(self, out: tuple[torch.Tensor, ...]) -> BatchedStep:
        """Take :func:`transition`'s result as the new state; the step's :class:`BatchedStep`."""
        self.state, self.elapsed, self.returns, state, terminated, truncated, episode_return, elapsed = out
        return BatchedStep(self._obs(self.state), self._ones, terminated, truncated, self._obs(state), episode_return, elapsed)


    def fused_steps(self, policy: Callable, params: Any, activation: str, compile: Callable[[Callable, torch.device], Callable]
                    ) -> Callable[[torch.Tensor, torch.Tensor], tuple[dict[str, torch.Tensor], torch.Tensor]]:
        """A ``steps_fn`` for :func:`paper_code.core.rl.rollout`: the rollout in compiled calls of
        :func:`chunk_steps` steps of :func:`policy_steps` (``policy(params, obs, noise, activation)``
        -> (outputs, actions), then :func:`transition`), ``compile(fn, device)`` making the compiled
        function. Each call's reset states are drawn in one draw, which gives the numbers of one draw
        per step, and the environment continues from the state the last call reached: the same random
        streams and transitions as :meth:`step` one step at a time."""
        steps = compile(policy_steps, self.device)

        def steps_fn(obs: torch.Tensor, noise: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
            parts = []
            k = chunk_steps(noise.shape[0])
            for t0 in range(0, noise.shape[0], k):
                chunk = noise[t0:t0 + k]
                fresh = self.draw_fresh(chunk.shape[0])
                stacked, (self.state, self.elapsed, self.returns) = steps(
                    policy, params, obs, chunk, fresh, self.state, self.elapsed, self.returns, self.force_table,
                    activation=activation, max_episode_steps=self.max_episode_steps, constants=self.c)
                parts.append(stacked)
                obs = self._obs(self.state)
            roll = {k: torch.cat([p[i] for p in parts]) for i, k in enumerate(STEP_KEYS)}
            roll["rewards"] = self._ones.expand(noise.shape[0], -1).clone()  # 1 per step
            return roll, obs

        return steps_fn

def transition(state: Any, elapsed: Any, returns: Any, force: Any, fresh: Any, max_episode_steps: int, xp: Any,
               c: CartPoleConstants = CONSTANTS) -> tuple[Any, ...]:
    """One step of ``B`` environments as a pure function (numpy or torch, ``xp``): the physics,
    termination, truncation after ``max_episode_steps`` and same-step auto-reset to ``fresh``.

    Returns (next state, next step counts, next returns so far, the state reached, terminated,
    truncated, the return and length of the episode that ended) — the last four are the step's
    (its final observation and what ended), the first three what the next step starts from."""
    new = integrate(state, force, xp, c)
    terminated = failed(new, c)
    elapsed = elapsed + 1
    truncated = elapsed >= max_episode_steps  # as gymnasium's TimeLimit
    done = terminated | truncated
    episode_return = returns + 1.0
    return (xp.where(done[:, None, None], fresh, new), xp.where(done, 0, elapsed), xp.where(done, 0.0, episode_return),
            new, terminated, truncated, episode_return, elapsed)


#: rollout steps per compiled call at most (the loop over them is unrolled in the graph: longer
#: chunks mean fewer calls and a longer first compile)
MAX_CHUNK_STEPS = 50


def chunk_steps(num_steps: int) -> int:
    """Steps per compiled rollout call: ``num_steps`` in equal chunks of at most
    :data:`MAX_CHUNK_STEPS` (200 -> 4 x 50; 128 -> 43, 43, 42: at most two shapes to compile)."""
    return -(-num_steps // -(-num_steps // MAX_CHUNK_STEPS))


#: what :func:`policy_steps` stacks per step, as :func:`paper_code.core.rl.rollout` names them
STEP_KEYS = ("obs", "out", "actions", "terminated", "truncated", "final_obs", "episode_returns")


def policy_steps(policy: Callable, params: Any, obs: torch.Tensor, noise: torch.Tensor, fresh: torch.Tensor,
                 state: torch.Tensor, elapsed: torch.Tensor, returns: torch.Tensor, force_table: torch.Tensor, *,
                 activation: str, max_episode_steps: int, constants: CartPoleConstants
                 ) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """``len(noise)`` rollout steps as a pure function: per step ``policy(params, obs, noise[t],
    activation)`` gives the outputs and the sampled actions, then :func:`transition` (ended episodes
    restart at that step's ``fresh`` states). Returns the per-step tensors stacked ``[k, B, ...]`` in
    :data:`STEP_KEYS` order, and the environment's state after the last step."""
    B = obs.shape[0]
    bufs: list[list[torch.Tensor]] = [[] for _ in STEP_KEYS]
    for t in range(noise.shape[0]):
        out, action = policy(params, obs, noise[t], activation)
        state, elapsed, returns, reached, terminated, truncated, episode_return, _ = transition(
            state, elapsed, returns, force_table[action], fresh[t], max_episode_steps, torch, constants)
        for buf, v in zip(bufs, (obs, out, action, terminated, truncated, reached.reshape(B, -1), episode_return)):
            buf.append(v)
        obs = state.reshape(B, -1)
    return tuple(torch.stack(b) for b in bufs), (state, elapsed, returns)


# --------------------------------------------------------------------------------------------
# Face 2: gymnasium.
# --------------------------------------------------------------------------------------------
