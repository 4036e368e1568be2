"""Episode returns of a policy in a batched environment."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from paper_code import checks
from paper_code.core.dataset import DatasetError, DistilledDataset
from paper_code.core.inner import inner_step_batch
from paper_code.core.learners import LearnerSpec, batched_forward, init_params_batch, learner_input
from paper_code.core.policies import head, sample
from paper_code.envs import BatchedNDCartPole, GymVectorEnv, has_batched, make_env
from paper_code.envs.gym_vector import MAX_ENVS

Policy = Callable[[torch.Tensor], torch.Tensor]

#: the most episodes evaluated at once: tensor environments, and gymnasium vector environments
#: (one simulator each)
MAX_EPISODES_TENSOR = 1_000_000
MAX_EPISODES_GYM = MAX_ENVS


@torch.no_grad()
def first_episode_returns(env: BatchedNDCartPole | GymVectorEnv, policy: Policy, *, seed: int | None = None,
                          check_every: int = 32, on_step: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run every environment of ``env`` until its first episode ends.

    Returns ``(returns, lengths)``, each ``[B]``: one episode per environment, all stepped
    together. The loop checks for completion only every ``check_every`` steps (one host sync).
    ``on_step(step)`` (optional) sees every :class:`~paper_code.envs.BatchedStep`. Every episode
    must end within ``env.max_episode_steps`` steps (``RuntimeError`` otherwise: an unfinished
    episode has no return).
    """
    obs = env.reset(seed=seed)
    B = env.num_envs
    returns = torch.zeros(B, device=env.device, dtype=env.dtype)
    lengths = torch.zeros(B, device=env.device, dtype=torch.long)
    finished = torch.zeros(B, device=env.device, dtype=torch.bool)
    for t in range(env.max_episode_steps):
        out = env.step(policy(obs))
        if on_step is not None:
            on_step(out)
        obs = out.obs
        ended = (out.terminated | out.truncated) & ~finished
        returns = torch.where(ended, out.episode_return, returns)
        lengths = torch.where(ended, out.episode_length, lengths)
        finished |= ended
        if (t + 1) % check_every == 0 and bool(finished.all()):
            break
    if not bool(finished.all()):  # an env whose episodes outlast max_episode_steps: no return to report
        raise RuntimeError(f"{int((~finished).sum())} of {B} episodes did not end within the env's max_episode_steps "
                           f"({env.max_episode_steps} steps)")
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


def mean_ci95(values: Any, bounds: tuple[float | None, float | None] = (None, None)) -> tuple[float, float, float]:
    """The mean of independent values (learners' or episodes' returns) and its 95% CI: mean ± 1.96
    standard errors (zero width for one value), clipped to ``bounds``, the range one value can take
    (:func:`paper_code.envs.return_bounds`: cart-pole 0 to its cap, Acrobot -500 to 0, Pong -21 to 21, ...),
    so that no interval claims returns the task cannot give."""
    # a copy: values may be a read-only array (a table's column), which torch.as_tensor warns about
    v = (values.double() if isinstance(values, torch.Tensor) else torch.tensor(values, dtype=torch.float64)).flatten()
    mean = float(v.mean())
    half = 1.96 * float(v.std()) / math.sqrt(len(v)) if len(v) > 1 else 0.0
    lo, hi = mean - half, mean + half
    if bounds[0] is not None:
        lo = max(lo, float(bounds[0]))
    if bounds[1] is not None:
        hi = min(hi, float(bounds[1]))
    return mean, lo, hi


@dataclass
class DatasetEvaluation:
    """Returns of one-step learners trained on a dataset: ``returns`` is [learners, episodes]."""

    returns: torch.Tensor
    greedy: bool
    cap: float | None
    bounds: tuple[float | None, float | None] | None = None
    """the range one episode's return can take (None: 0 to ``cap`` where there is a cap, else unbounded)"""

    @property
    def per_learner(self) -> torch.Tensor:
        return self.returns.mean(1)

    @property
    def mean(self) -> float:
        return float(self.per_learner.mean())

    @property
    def std(self) -> float:
        return float(self.per_learner.std()) if self.returns.shape[0] > 1 else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        """95% CI of the mean over learners (:func:`mean_ci95`; within the returns the task can give)."""
        bounds = self.bounds if self.bounds is not None else (0.0, self.cap) if self.cap is not None else (None, None)
        _, lo, hi = mean_ci95(self.per_learner, bounds)
        return lo, hi

    @property
    def solved_fraction(self) -> float:
        return float((self.returns >= self.cap).float().mean()) if self.cap is not None else float("nan")

    def to_dict(self) -> dict:
        return {
            "mean": self.mean, "std": self.std, "ci95": list(self.ci95), "solved_fraction": self.solved_fraction,
            "learners": int(self.returns.shape[0]), "episodes": int(self.returns.shape[1]), "greedy": self.greedy,
            "returns": self.returns.tolist(),
        }


def learner_policy(params: dict[str, torch.Tensor], learners: int, activation: str, *, greedy: bool,
                   generator: torch.Generator | None, policy: str = "categorical",
                   normalize: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Policy:
    """A batched policy of ``learners`` stacked parameter sets over envs laid out [learners * episodes].

    ``policy`` is the learners' action distribution (``params["log_std"]`` [learners, A] for a
    Gaussian); ``normalize`` maps real observations to what the learners see. ``act.nonfinite()``
    tells afterwards whether any learner's output was ever non-finite (sampling from such outputs
    raises, see :func:`evaluate_dataset`)."""

    dist = head(policy)
    log_std = params["log_std"][:, None, :] if policy == "gaussian" else None
    finite: list[torch.Tensor] = []  # whether every output so far was finite (on the device: no sync)

    def act(obs: torch.Tensor) -> torch.Tensor:
        x = normalize(obs) if normalize is not None else obs
        out = batched_forward(params, x.view(learners, -1, *x.shape[1:]), activation)  # [L, E, A]
        ok = torch.isfinite(out).all()
        finite[:] = [ok if not finite else finite[0] & ok]
        a = dist.greedy(out) if greedy else sample(dist, out, generator, log_std)
        return a.reshape(obs.shape[0], *a.shape[2:])

    act.nonfinite = lambda: not bool(finite[0]) if finite else False  # type: ignore[attr-defined]
    return act


def trained_learners(dataset: DistilledDataset, learners: int, *, observation_shape: tuple[int, ...], num_actions: int,
                     generator: torch.Generator, device: str = "cpu", steps: int = 1, learner: LearnerSpec | None = None,
                     lr: float | None = None) -> dict[str, torch.Tensor]:
    """``learners`` fresh initialisations (stacked) trained ``steps`` SGD steps on the dataset."""

    steps = checks.integer("steps", steps, lo=0, hi=10_000)
    spec = learner or dataset.learner
    if learner is not None and learner.policy != dataset.learner.policy:
        raise ValueError(f"a {learner.policy} learner cannot be trained on a {dataset.learner.policy} dataset")
    if learner is not None and learner.kind != dataset.learner.kind:
        raise ValueError(f"a {learner.kind} learner cannot be trained on a {dataset.learner.kind} dataset")
    params = init_params_batch(spec, learner_input(spec, tuple(observation_shape)), num_actions, learners, generator,
                               device=device)
    x, y = dataset.features(dataset.states.to(device)), dataset.labels.to(device)
    log_std = dataset.log_std.to(device) if dataset.log_std is not None else None
    step_lr = torch.tensor(float(dataset.lr) if lr is None else lr, device=device)
    for _ in range(steps):
        params = inner_step_batch(params, x, y, step_lr, spec.activation, log_std)
    return params


@torch.no_grad()
def evaluate_dataset(dataset: DistilledDataset, *, learners: int = 50, episodes: int = 5, greedy: bool = False,
                     seed: int = 0, device: str = "cpu", steps: int = 1, learner: LearnerSpec | None = None,
                     lr: float | None = None, env=None) -> DatasetEvaluation:
    """Fresh learners, ``steps`` SGD steps on the dataset (its lr unless ``lr``), episodes in the real env.

    All ``learners x episodes`` episodes step together in one batched environment (``env``, if
    given, must have that many). ``steps = 0`` evaluates untrained learners; ``learner`` overrides
    the dataset's architecture. Observations are normalised with the dataset's frozen statistics.
    """

    learners, episodes = checks.integer("learners", learners), checks.integer("episodes", episodes)
    # derived seeds (a run's evaluation seeds) may exceed the CLI's seed range; torch takes < 2**63
    seed, device = checks.integer("seed", seed, lo=0, hi=2**62), checks.device("device", device)
    most = MAX_EPISODES_TENSOR if has_batched(dataset.env_id) else MAX_EPISODES_GYM
    if learners * episodes > most:
        raise ValueError(f"learners x episodes = {learners * episodes:,} episodes at once; at most {most:,} for "
                         f"{dataset.env_id}")
    spec = learner or dataset.learner
    if env is None or env.num_envs != learners * episodes:
        env = make_env(dataset.env_id, learners * episodes, device=device, seed=seed, check_actions=False,
                       **dataset.env_kwargs)
    dataset.check_env(env.observation_shape, env.num_actions, env.continuous)
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    params = trained_learners(dataset, learners, observation_shape=env.observation_shape, num_actions=env.num_actions,
                              generator=g, device=device, steps=steps, learner=learner, lr=lr)
    bad = [k for k, v in params.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise DatasetError(f"the learners' parameters ({', '.join(bad)}) are not finite after {steps} SGD step(s) on "
                           f"the dataset: its lr and values overflow float32")
    policy = learner_policy(params, learners, spec.activation, greedy=greedy, generator=g, policy=spec.policy,
                            normalize=lambda obs: dataset.features(dataset.normalize(obs)))
    try:
        returns, _ = first_episode_returns(env, policy, seed=seed)
    except RuntimeError:  # e.g. an environment refusing non-finite actions
        if not policy.nonfinite():  # type: ignore[attr-defined]
            raise
    if policy.nonfinite():  # type: ignore[attr-defined]
        raise DatasetError("the trained learners' outputs on real observations are not finite (the dataset's values "
                           "overflow float32 in the learners); no returns reported")
    return DatasetEvaluation(returns.view(learners, episodes).cpu(), greedy, env.return_cap, env.return_bounds)
