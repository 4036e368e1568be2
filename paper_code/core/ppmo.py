"""Proximal Policy Meta-Optimization (PPMO): distil an RL task into one synthetic batch.

Each meta-epoch:

1. draw K fresh learner initialisations theta0 (K = 1 is the paper's setting);
2. one differentiable SGD step on the synthetic batch, theta1 = theta0 - lr * grad MSE
   (:mod:`paper_code.core.inner`);
3. roll theta1 out in the real environment (``num_envs`` envs per learner x ``num_steps`` steps,
   sampled actions; episodes continue across meta-epochs, optionally truncated earlier than the
   task's limit); values from a separate critic;
4. GAE (bootstrap on truncation, not on termination);
5. ``update_epochs`` x minibatches: recompute theta1 from the current dataset (same theta0), PPO's
   clipped loss with an entropy bonus, back-propagate through the inner step into states, labels
   and the log learning rate; Adam on the dataset (gradient norm clipped), and separately on the
   critic (its own clipping), which is trained on the real returns.

The objective of step 5 is :func:`paper_code.core.meta_loss.meta_loss`, a pure function (with the
critic's value loss: :func:`paper_code.core.meta_loss.minibatch_losses`), and one minibatch update
is :func:`eager_update`: ``backward()``, the gradients' mean over processes, clipped Adam steps.

How a run executes, never what it computes, is plugged in (:class:`Plugins`): the processes it runs
over (:class:`OneProcess` here; ``torchrun``'s ranks: :class:`paper_code.runs.distributed.World`,
which averages gradients and merges statistics), a compiled update and a fused rollout
(:mod:`paper_code.runs.compilation`). :func:`paper_code.runs.training.new_run` chooses them from the
settings; ``PPMO(cfg)`` alone is the plain eager one-process run. Everything random comes from
generators owned by :class:`PPMO`; its complete state is :func:`paper_code.runs.run_state.state_dict`,
so an interrupted run resumed from a checkpoint gives the same dataset as an uninterrupted one. The
loop that runs meta-epochs, checkpoints and stops is :mod:`paper_code.runs.training` (``distill()``);
the settings are :class:`~paper_code.core.settings.PPMOConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from paper_code import checks
from paper_code.core.dataset import MAX_ABS, MAX_LR, DistilledDataset, git_revision, movement
from paper_code.core.evaluation import evaluate_dataset
from paper_code.core.learners import (LearnerSpec, batched_forward, forward, init_encoder, init_params,
                                      init_params_batch, learner_input)
from paper_code.core.meta_loss import DatasetTensors, minibatch_losses, one_step_learners
from paper_code.core.observations import NORM_CLIP, NORM_EPS, RunningMeanStd, encode, prepare
from paper_code.core.policies import head, scale_rewards
from paper_code.core.rl import bootstrap_values, episode_stats, gae, rollout
from paper_code.core.settings import PPMOConfig
from paper_code.envs import GymVectorEnv, has_batched, make_env
from paper_code.project import project_root


def _generator(seed: int, device: str) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


@dataclass
class Metrics:
    """One meta-epoch's statistics, as tensors (no host sync until :meth:`values`)."""

    dataset_max_abs: torch.Tensor  # the largest magnitude in the dataset (lr aside): divergence shows here
    critic_max_abs: torch.Tensor  # the same for the critic
    episodes: torch.Tensor  # episodes the rollout finished
    train_return: torch.Tensor  # their mean return (nan: none finished)
    lr: torch.Tensor  # the inner learning rate
    losses: dict[str, torch.Tensor]  # the meta-loss's statistics and the value loss, means over the updates

    def stacked(self) -> torch.Tensor:
        """All of them in one float32 tensor: the fields in order, then the losses."""
        return torch.stack([t.to(torch.float32) for t in (self.dataset_max_abs, self.critic_max_abs, self.episodes,
                                                          self.train_return, self.lr, *self.losses.values())])

    @classmethod
    def from_stacked(cls, row: torch.Tensor, loss_names: list[str]) -> "Metrics":
        """The inverse of :meth:`stacked`."""
        return cls(*row[:5], losses=dict(zip(loss_names, row[5:])))

    def values(self) -> dict[str, float]:
        """The statistics as floats (the one host sync of a meta-epoch)."""
        names = ["dataset_max_abs", "critic_max_abs", "episodes", "train_return", "lr", *self.losses]
        return dict(zip(names, self.stacked().tolist()))


class Processes(Protocol):
    """The processes a run is spread over (``torchrun``): each has its own environments and learner
    inits and the same dataset and critic. :class:`OneProcess` is the plain run;
    :class:`paper_code.runs.distributed.World` the plug-in for several."""

    rank: int
    size: int
    main: bool  # whether this process writes files and shows progress

    def seed(self, seed: int) -> int:
        """This process's seed for its own random streams and environments."""

    def average_gradients(self, params: list[torch.Tensor]) -> None:
        """Each ``.grad`` replaced by its mean over the processes."""

    def merge(self, metrics: Metrics) -> Metrics:
        """A meta-epoch's statistics over all processes (episodes summed, returns weighted by them)."""

    def gather_moments(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        """Every process's batch moments, in one order on every process (running observation statistics)."""

    def provenance(self) -> dict[str, Any]:
        """What a dataset file records of them (its per-process seeds depend on it)."""


@dataclass(frozen=True)
class OneProcess:
    """A run in one process: nothing to reduce."""

    rank: int = 0
    size: int = 1
    main: bool = True

    def seed(self, seed: int) -> int:
        return int(seed)

    def average_gradients(self, params: list[torch.Tensor]) -> None:
        return None

    def merge(self, metrics: Metrics) -> Metrics:
        return metrics

    def gather_moments(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        return [(mean, var, n)]

    def provenance(self) -> dict[str, Any]:
        return {"world_size": 1}


def eager_update(run: "PPMO", theta0: dict[str, torch.Tensor], minibatch: tuple[torch.Tensor, ...],
                 settings: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One minibatch update of the dataset and the critic: ``backward()`` of the meta-loss plus the
    critic's value loss (:func:`~paper_code.core.meta_loss.minibatch_losses`; the two share no
    parameters, so each gets its own loss's gradient), the gradients' mean over the processes, then
    each optimiser's Adam step after its own gradient-norm clip (the states clamped to
    ``state_bound``). Returns (the value loss, the meta-loss's statistics)."""
    cfg = run.cfg
    leaves = run.leaves()
    loss, v_loss, st = minibatch_losses(*leaves[:5], theta0, run.critic, *minibatch, **settings)
    run.data_opt.zero_grad(set_to_none=True)
    run.critic_opt.zero_grad(set_to_none=True)
    (loss + v_loss).backward()
    run.processes.average_gradients([*run.data_params, *run.critic.values()])
    torch.nn.utils.clip_grad_norm_(run.data_params, cfg.max_grad_norm)
    torch.nn.utils.clip_grad_norm_(list(run.critic.values()), cfg.max_grad_norm)
    run.data_opt.step()
    if cfg.state_bound is not None:
        with torch.no_grad():
            run.states.clamp_(-cfg.state_bound, cfg.state_bound)
    run.critic_opt.step()
    return v_loss.detach(), st


def no_fused_rollout(env: Any, params: dict[str, torch.Tensor], activation: str) -> None:
    """The plain rollout: step by step (:func:`paper_code.core.rl.rollout`)."""
    return None


@dataclass
class Plugins:
    """How a run executes (the results do not depend on it beyond float round-off): its processes,
    its minibatch update (``update(run, theta0, minibatch, settings)``, :func:`eager_update`'s
    contract) and a fused rollout (``fused_rollout(env, params, activation)``: a ``steps_fn`` for
    :func:`~paper_code.core.rl.rollout`, or None)."""

    processes: Processes = field(default_factory=OneProcess)
    update: Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]] = eager_update
    fused_rollout: Callable[[Any, dict[str, torch.Tensor], str], Callable | None] = no_fused_rollout


class PPMO:
    """One distillation run's state: ``meta_epoch_step()`` trains one meta-epoch, ``dataset()`` is
    the current distilled dataset, ``evaluate()`` scores it (:func:`paper_code.runs.training.train` runs
    the loop). ``plugins``: how it executes (:class:`Plugins`; by default eager, in one process)."""

    def __init__(self, cfg: PPMOConfig, plugins: Plugins | None = None) -> None:
        self.cfg = cfg
        self.plugins = plugins or Plugins()
        self.processes = self.plugins.processes
        dev = cfg.device
        K, E = cfg.inits_per_epoch, cfg.num_envs
        train_kwargs = dict(cfg.env_kwargs)
        if cfg.train_max_episode_steps is not None:
            train_kwargs["max_episode_steps"] = cfg.train_max_episode_steps
        if cfg.num_steps * K * E > checks.MAX_ELEMENTS:
            raise ValueError(f"num_steps x inits_per_epoch x num_envs = {cfg.num_steps * K * E:,}: too many to hold")
        # each process its own envs and learner inits (several: torchrun), the same dataset and critic
        self.env = make_env(cfg.env_id, K * E, device=dev, seed=self.processes.seed(cfg.seed), check_actions=False,
                            **train_kwargs)
        self.obs_size, self.num_actions = self.env.observation_size, self.env.num_actions
        self.obs_shape = tuple(self.env.observation_shape)
        per_obs = math.prod(self.obs_shape)
        for what, n in (("size x observation", cfg.size * per_obs),
                        ("num_steps x inits_per_epoch x num_envs x observation", cfg.num_steps * K * E * per_obs)):
            if n > checks.MAX_ELEMENTS:
                raise ValueError(f"{what} = {n:,} values: more than the {checks.MAX_ELEMENTS:,} this code allows in memory")
        self.cnn = cfg.learner.kind == "nature_cnn"
        self.in_size = learner_input(cfg.learner, self.obs_shape)
        self.gaussian = cfg.learner.policy == "gaussian"
        if self.gaussian != self.env.continuous:
            kind = "continuous" if self.env.continuous else "discrete"
            raise ValueError(f"{cfg.env_id} has {kind} actions: it needs a "
                             f"{'gaussian' if self.env.continuous else 'categorical'} learner, got {cfg.learner.policy}")
        self.head = head(cfg.learner.policy)
        # independent random streams: learner inits, actions, minibatch order, dataset init, critic init
        self.g_init = _generator(self.processes.seed(cfg.seed * 10 + 1), dev)
        self.g_act = _generator(self.processes.seed(cfg.seed * 10 + 2), dev)
        self.g_perm = _generator(cfg.seed * 10 + 3, dev)
        g_data = _generator(cfg.seed * 10 + 4, dev)
        g_critic = _generator(cfg.seed * 10 + 5, dev)
        # the dataset: states from N(0, init_state_std^2) (raw frames: uniform in [0, 1], the scaled pixel
        # range), labels from N(0, 1), lr in log space (positive, no clamp)
        if self.cnn and not cfg.normalize_obs:
            states = torch.rand(cfg.size, *self.obs_shape, generator=g_data, device=dev)
        else:
            states = cfg.init_state_std * torch.randn(cfg.size, *self.obs_shape, generator=g_data, device=dev)
        self.states = states.requires_grad_()
        self.labels = torch.randn(cfg.size, self.num_actions, generator=g_data, device=dev).requires_grad_()
        self.log_lr = torch.tensor(math.log(cfg.init_inner_lr), device=dev).requires_grad_()
        self.data_params = [self.states, self.labels, self.log_lr]
        # a split Nature-CNN's persistent encoder: trained with the dataset, part of the artifact
        self.encoder = {k: v.requires_grad_() for k, v in init_encoder(cfg.learner, self.obs_shape, g_data, device=dev).items()}
        self.data_params += list(self.encoder.values())
        # a Gaussian learner's log-std target (starts at the learner's init: no change in one step)
        self.log_std_target = None
        if self.gaussian:
            self.log_std_target = torch.full((self.num_actions,), float(cfg.learner.init_log_std), device=dev).requires_grad_()
            self.data_params.append(self.log_std_target)
        # observation statistics (identity until the first update) and reward scaling
        # per input element: per pixel for frames (what moves stands out from the static background)
        gather = self.processes.gather_moments  # every process's observations count
        self.obs_rms = RunningMeanStd(self.obs_shape, dev, gather=gather) if cfg.normalize_obs else None
        if cfg.init_dataset is not None:
            path = Path(cfg.init_dataset)
            if not path.is_absolute() and not path.exists():  # a project-relative path (as the pipeline records it)
                try:
                    path = project_root() / path
                except (ValueError, OSError):
                    pass  # not in a project: the load below names the missing file
            self._warm_start(DistilledDataset.load(path))
        self.data_opt = torch.optim.Adam(self._data_groups(), lr=cfg.dataset_lr,
                                         eps=cfg.adam_eps if cfg.dataset_adam_eps is None else cfg.dataset_adam_eps,
                                         fused=self.env.device.type == "cpu")
        # what the dataset started from (a warm start's dataset): its movement is recorded in the file
        self.initial = {k: v.detach().clone() for k, v in self._movable().items()}
        self.ret_rms = RunningMeanStd((), dev, gather=gather) if cfg.normalize_reward else None
        self.ret_acc = torch.zeros(K * E, device=dev)
        if self.cnn:  # a separate Nature-CNN
            critic_spec = LearnerSpec(kind="nature_cnn", activation="relu", output_gain=1.0)
        else:
            critic_spec = LearnerSpec(hidden=tuple(cfg.critic_hidden), activation="tanh", output_gain=1.0)
        self.critic = {k: v.requires_grad_() for k, v in init_params(critic_spec, learner_input(critic_spec, self.obs_shape),
                                                                    1, g_critic, device=dev).items()}
        self.critic_opt = torch.optim.Adam(list(self.critic.values()), lr=cfg.critic_lr, eps=cfg.adam_eps,
                                           fused=self.env.device.type == "cpu")
        self.obs = self.env.reset(seed=self.processes.seed(cfg.seed))
        self.meta_epoch = 0
        self.env_steps = 0
        self.wall_time = 0.0  # seconds of training, summed over resumed runs
        self.history: list[dict[str, float]] = []  # one row per meta-epoch
        self.evals: list[dict[str, float]] = []  # one row per evaluation
        self.stopped_early = False  # stop_when ended the run; resuming does not train further
        self.revisions: list[str] = []  # git revisions of the code that trained this run, in order
        self.stop_rule: str | None = None  # the early-stopping rule the run was last trained under
        self.health: dict[str, float] = {}  # largest magnitudes after the last meta-epoch (divergence checks)
        self._eval_env_cache: GymVectorEnv | None = None

    def _data_groups(self) -> list[torch.Tensor] | list[dict[str, Any]]:
        """The dataset's Adam parameter groups: one (the paper's), or with ``states_lr``, ``labels_lr``
        or ``inner_lr_lr`` the states, the labels, the log lr and the rest (encoder, log-std target)
        each with its own step size, in :attr:`data_params` order."""
        cfg = self.cfg
        if not cfg.grouped_dataset_lr:
            return self.data_params
        own = [(self.states, cfg.states_lr), (self.labels, cfg.labels_lr), (self.log_lr, cfg.inner_lr_lr)]
        groups = [{"params": [p], "lr": cfg.dataset_lr if lr is None else lr} for p, lr in own]
        rest = [p for p in self.data_params if all(p is not q for q, _ in own)]
        return groups + ([{"params": rest, "lr": cfg.dataset_lr}] if rest else [])

    def _movable(self) -> dict[str, torch.Tensor]:
        out = {"states": self.states, "labels": self.labels, "log_lr": self.log_lr}
        out.update({f"encoder.{k}": v for k, v in self.encoder.items()})
        return out

    #: how many observations a warm start's frozen statistics count as in the running ones
    WARM_START_OBS_COUNT = 1e6

    def _warm_start(self, ds: DistilledDataset) -> None:
        """Start from ``ds`` (``cfg.init_dataset``): its states, labels, lr, log-std target and encoder; its
        observation statistics as the running ones, weighted as ``WARM_START_OBS_COUNT`` observations
        (so the coordinates the states live in move slowly)."""
        cfg = self.cfg
        where = f"init_dataset {cfg.init_dataset}"
        made = (ds.env_id, ds.env_kwargs, ds.size, ds.learner.to_json())
        want = (cfg.env_id, dict(cfg.env_kwargs), cfg.size, cfg.learner.to_json())
        if made != want:
            raise ValueError(f"{where} was made for {made}, this run is {want} (env, env_kwargs, B, learner)")
        if set(self.encoder) != set(ds.encoder):  # the same learner spec: cannot differ for a valid file
            raise ValueError(f"{where}: its encoder layers {sorted(ds.encoder)} are not this run's {sorted(self.encoder)}")
        norm = ds.normalization or {}
        if bool(norm) != cfg.normalize_obs or (norm and float(norm.get("scale", 1.0)) != cfg.obs_scale):
            raise ValueError(f"{where}: its observation normalisation ({norm or 'none'}) is not this run's "
                             f"(normalize_obs {cfg.normalize_obs}, obs_scale {cfg.obs_scale})")
        dev = self.states.device
        with torch.no_grad():
            self.states.copy_(ds.states.to(dev))
            self.labels.copy_(ds.labels.to(dev))
            self.log_lr.copy_(ds.lr.reshape(()).log().to(dev))
            if self.log_std_target is not None:
                self.log_std_target.copy_(ds.log_std.to(dev))
            for k, v in self.encoder.items():  # a split Nature-CNN's persistent encoder
                v.copy_(ds.encoder[k].to(dev))
        if self.obs_rms is not None:
            self.obs_rms.load_state_dict({"mean": ds.extra["obs_mean"].to(dev, torch.float64),
                                          "var": ds.extra["obs_var"].to(dev, torch.float64),
                                          "count": torch.tensor(self.WARM_START_OBS_COUNT, dtype=torch.float64, device=dev)})

    # ------------------------------------------------------------------------------ pieces
    @property
    def lr(self) -> torch.Tensor:
        return self.log_lr.exp()

    def data_tensors(self) -> DatasetTensors:
        """The dataset's trainable tensors, as :func:`~paper_code.core.meta_loss.meta_loss` takes them."""
        return DatasetTensors(self.states, self.labels, self.log_lr, self.log_std_target, self.encoder or None)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations as the learner and the critic see them (raw without ``normalize_obs``;
        uint8 frames scaled to [0, 1])."""
        if self.obs_rms is None:
            return prepare(obs)
        return prepare(obs, self.obs_rms.mean, self.obs_rms.var, scale=self.cfg.obs_scale)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """The critic on normalised observations."""
        return forward(self.critic, obs, "tanh").squeeze(-1)

    def dataset(self) -> DistilledDataset:
        cfg = self.cfg
        extra, normalization = {}, None
        if self.gaussian:
            extra["log_std"] = self.log_std_target.detach().clone()
        for k, v in self.encoder.items():
            extra[f"encoder.{k}"] = v.detach().clone()
        if self.obs_rms is not None:
            extra["obs_mean"] = self.obs_rms.mean.float().clone()
            extra["obs_var"] = self.obs_rms.var.float().clone()
            normalization = {"kind": "running_mean_std", "clip": NORM_CLIP, "eps": NORM_EPS}
            if cfg.obs_scale != 1.0:  # absent means 1 (files written before the option are unchanged)
                normalization["scale"] = cfg.obs_scale
        return DistilledDataset(
            states=self.states.detach().clone(), labels=self.labels.detach().clone(), lr=self.lr.detach().clone(),
            env_id=cfg.env_id, env_kwargs=dict(cfg.env_kwargs), learner=cfg.learner,
            label_kind="gaussian_mse" if self.gaussian else "logits_mse", extra=extra, normalization=normalization,
            provenance={
                "method": "ppmo", "meta_epochs": self.meta_epoch, "env_steps": self.env_steps,
                "wall_time_s": round(self.wall_time, 3), "seed": cfg.seed,
                "git_revision": self.revisions[-1] if self.revisions else git_revision(),
                "git_revisions": list(self.revisions),
                "config": cfg.to_dict(), "torch": torch.__version__,
                "movement": movement(self.initial, self._movable()),
                **self.processes.provenance(),
            },
        )

    def _draw_learner(self) -> LearnerSpec:
        """The architecture of this meta-epoch's learner(s)."""
        pool = self.cfg.learner_pool
        if not pool:
            return self.cfg.learner
        return pool[int(torch.randint(len(pool), (1,), generator=self.g_init, device=self.cfg.device))]

    def _rollout(self, theta1: dict[str, torch.Tensor], act_fn: str) -> dict[str, torch.Tensor]:
        K, E, D = self.cfg.inits_per_epoch, self.cfg.num_envs, self.obs_size
        log_std = None
        if K == 1:
            single = {k: v[0] for k, v in theta1.items()}
            log_std = single.get("log_std")

            def out_fn(x: torch.Tensor) -> torch.Tensor:  # x: the observations as the learner sees them
                return forward(single, encode(self.encoder, x), act_fn)
        else:
            if self.gaussian:
                log_std = theta1["log_std"].repeat_interleave(E, 0)  # [K * E, A]

            def out_fn(x: torch.Tensor) -> torch.Tensor:
                return batched_forward(theta1, x.view(K, E, D), act_fn).view(K * E, -1)

        steps_fn = None  # one categorical learner on raw observations: the environment may fuse its steps
        if K == 1 and self.obs_rms is None and not self.gaussian:
            steps_fn = self.plugins.fused_rollout(self.env, single, act_fn)
        roll = rollout(self.env, self.obs, out_fn, self.cfg.num_steps, self.g_act, self.head, log_std, steps_fn,
                       prepare=None if steps_fn is not None else self.normalize)
        self.obs = roll["last_obs"]
        return roll

    def leaves(self) -> tuple:
        """The update's trainable tensors: (states, labels, log_lr, log_std_target, encoder, critic),
        None where a run has none (:func:`~paper_code.core.meta_loss.minibatch_gradients`' order)."""
        return (self.states, self.labels, self.log_lr, self.log_std_target, self.encoder or None, self.critic)

    def meta_epoch_step(self) -> dict[str, float]:
        """One meta-epoch (rollout + PPO updates of the dataset and the critic)."""
        cfg = self.cfg
        K, E, T, A = cfg.inits_per_epoch, cfg.num_envs, cfg.num_steps, self.num_actions
        spec = self._draw_learner()
        act_fn = spec.activation
        theta0 = init_params_batch(spec, self.in_size, A, K, self.g_init, device=cfg.device)
        data = self.data_tensors()
        with torch.no_grad():
            theta1 = one_step_learners(data, theta0, act_fn)
        roll = self._rollout(theta1, act_fn)

        with torch.no_grad():
            # the rollout's observations as the learners and the critic see them, prepared once (during
            # the rollout) for the acting learner, the critic's values and every minibatch: the
            # statistics stay fixed until the end of the meta-epoch
            obs = roll["prepared"]
            values, next_values = bootstrap_values(lambda o: self.value(self.normalize(o)), roll,
                                                   self.value(obs))  # [T, KE]
            rewards = roll["rewards"]
            if self.ret_rms is not None:
                rewards, self.ret_acc = scale_rewards(rewards, roll["terminated"] | roll["truncated"], self.ret_acc,
                                                      self.ret_rms, cfg.gamma)
            adv, returns = gae(rewards, values, next_values, roll["terminated"], roll["truncated"],
                               cfg.gamma, cfg.gae_lambda)
            # per learner: [K, T*E, ...]
            def per_learner(x: torch.Tensor) -> torch.Tensor:
                return x.view(T, K, E, *x.shape[2:]).transpose(0, 1).reshape(K, T * E, *x.shape[2:])

            b_obs, b_act = per_learner(obs), per_learner(roll["actions"])
            b_adv, b_ret = per_learner(adv), per_learner(returns)
            old_out = per_learner(roll["out"])  # the acting policy's outputs, kept from the rollout
            old_logp = self.head.log_prob(old_out, b_act, theta1["log_std"][:, None, :] if self.gaussian else None)
            # the raw-logit ratio ablation's old logits of the taken actions (categorical only)
            old_taken = old_logp if self.gaussian else old_out.gather(-1, b_act.unsqueeze(-1)).squeeze(-1)

        n = T * E
        stats_sum: dict[str, torch.Tensor] = {}
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(n, generator=self.g_perm, device=cfg.device)
            # shuffle once per epoch; minibatches are then contiguous slices (views)
            shuffled = [t[:, perm] for t in (b_obs, b_act, old_logp, b_adv, b_ret, old_taken)]
            for start in range(0, n, cfg.minibatch_size):
                mb_obs, mb_act, mb_logp, mb_adv, mb_ret, mb_taken = (t[:, start:start + cfg.minibatch_size] for t in shuffled)
                minibatch = (mb_obs, mb_act, mb_logp, mb_adv, mb_taken, mb_ret)
                settings = dict(activation=act_fn, policy=cfg.learner.policy, clip_coef=cfg.clip_coef,
                                ent_coef=cfg.ent_coef, norm_adv=cfg.norm_adv, ratio_mode=cfg.ratio_mode, vf_coef=cfg.vf_coef)
                v_loss, st = self.plugins.update(self, theta0, minibatch, settings)
                st["v_loss"] = v_loss
                for k, v in st.items():
                    stats_sum[k] = stats_sum.get(k, 0) + v
        updates = cfg.update_epochs * math.ceil(n / cfg.minibatch_size)
        if self.obs_rms is not None:
            self.obs_rms.update(roll["obs"].flatten(0, 1))

        n_done, mean_return = episode_stats(roll)
        with torch.no_grad():  # the largest magnitudes (nan propagates): divergence shows here
            data_max = torch.stack([p.abs().amax() for p in self.data_params if p is not self.log_lr]).amax()
            critic_max = torch.stack([p.abs().amax() for p in self.critic.values()]).amax()
        metrics = Metrics(data_max, critic_max, n_done, mean_return, self.lr.detach(),
                          {k: v / updates for k, v in stats_sum.items()})
        m = self.processes.merge(metrics).values()  # every process's episodes count
        self.meta_epoch += 1
        self.env_steps += T * K * E * self.processes.size
        self.health = {"dataset_max_abs": m.pop("dataset_max_abs"), "critic_max_abs": m.pop("critic_max_abs")}
        if not m["episodes"] > 0:
            m["train_return"] = float("nan")
        return {"meta_epoch": self.meta_epoch, "env_steps": self.env_steps, **m}

    def divergence(self, row: dict[str, float]) -> str | None:
        """What went wrong in the meta-epoch that gave ``row`` (None: nothing): non-finite
        dataset, critic, lr or losses, or values beyond what a dataset file may hold."""
        h = self.health
        if not math.isfinite(h["dataset_max_abs"]):
            return "the dataset (states, labels or encoder) became non-finite"
        if h["dataset_max_abs"] > MAX_ABS:
            return f"the dataset grew to values of magnitude {h['dataset_max_abs']:.3g} (a dataset may hold {MAX_ABS:g})"
        if not math.isfinite(h["critic_max_abs"]):
            return "the critic became non-finite"
        if not math.isfinite(row["lr"]) or row["lr"] > MAX_LR:
            return f"the inner learning rate became {row['lr']:.3g} (a dataset may hold {MAX_LR:g})"
        if not row["lr"] > 0:  # exp of a log lr far below float32's range: a dataset's lr must be positive
            return (f"the inner learning rate underflowed to {row['lr']:.3g} (log lr {float(self.log_lr.detach()):.4g}; "
                    f"a dataset's lr must be positive)")
        bad = [k for k, v in row.items() if k not in ("train_return",) and not math.isfinite(v)]
        return f"non-finite {', '.join(bad)}" if bad else None

    # ------------------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, float]:
        """Fresh learners x 1 episode on the current dataset, sampled and greedy."""

        ds = self.dataset()
        row: dict[str, float] = {"meta_epoch": self.meta_epoch, "env_steps": self.env_steps, "wall_time_s": self.wall_time}
        seed = self.cfg.seed * 7919 + self.meta_epoch
        for greedy in (False, True):
            r = evaluate_dataset(ds, learners=self.cfg.eval_learners, episodes=1, greedy=greedy, seed=seed,
                                 device=self.cfg.device, env=self._eval_env())
            row["greedy_return" if greedy else "sampled_return"] = r.mean
            if not greedy:  # what a stop rule on the CI reads (distill --stop-at)
                row["sampled_ci_low"] = r.ci95[0]
        return row

    def _eval_env(self) -> GymVectorEnv | None:
        """The evaluation environment, kept between evaluations if it is a gymnasium vector env
        (costly to build); tensor environments are built per evaluation (cheap)."""
        if has_batched(self.cfg.env_id):
            return None
        if self._eval_env_cache is None:
            self._eval_env_cache = make_env(self.cfg.env_id, self.cfg.eval_learners, device=self.cfg.device,
                                            check_actions=False, **self.cfg.env_kwargs)
        return self._eval_env_cache
