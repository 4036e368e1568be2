"""Proximal Policy Meta-Optimization (PPMO): distil an RL task into one synthetic batch.

Each meta-epoch:

1. draw K fresh learner initialisations theta0 (K = 1 is the paper's setting);
2. one differentiable SGD step on the synthetic batch, theta1 = theta0 - lr * grad MSE
   (:mod:`paper_code.inner`);
3. roll theta1 out in the real environment (``num_envs`` envs per learner x ``num_steps`` steps,
   sampled actions; episodes continue across meta-epochs, optionally truncated earlier than the
   task's limit); values from a separate critic;
4. GAE (bootstrap on truncation, not on termination);
5. ``update_epochs`` x minibatches: recompute theta1 from the current dataset (same theta0), PPO's
   clipped loss with an entropy bonus, back-propagate through the inner step into states, labels
   and the log learning rate; Adam on the dataset (gradient norm clipped), and separately on the
   critic (its own clipping), which is trained on the real returns.

Everything random comes from generators owned by :class:`PPMO`, whose state is checkpointed, so
an interrupted run resumed from a checkpoint gives the same dataset as an uninterrupted one.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from . import checks
from .checkpoints import CheckpointError, check_like, read_checkpoint, write_checkpoint
from .dataset import MAX_ABS, MAX_LR, DistilledDataset, git_revision
from .envs import make_env
from .evaluation import evaluate_dataset
from .files import OutputLock, atomic_path, check_writable, lock_path, remove_stale_temporaries
from .interrupts import RunInterrupted, deferred_interrupts
from .learners import (PAPER_LEARNER, LearnerSpec, batched_forward, cnn_forward, forward, init_encoder, init_params,
                       init_params_batch, learner_input)
from .meta_loss import DatasetTensors, Minibatch, meta_loss, one_step_learners
from .policies import NORM_CLIP, NORM_EPS, RunningMeanStd, head, normalize_obs, scale_rewards
from .rl import RLSettings, bootstrap_values, episode_stats, gae, rollout


@dataclass
class PPMOConfig(RLSettings):
    """Hyperparameters of a distillation run (defaults: the paper's cart-pole setting); the
    rollout, GAE and PPO settings are :class:`~paper_code.rl.RLSettings`."""

    size: int = 512  # B, synthetic instances
    learner: LearnerSpec = PAPER_LEARNER
    # beyond the paper: if not empty, each meta-epoch draws its learner's architecture from this
    # pool (uniformly; all K inits of a meta-epoch share it) instead of always using `learner`
    learner_pool: tuple[LearnerSpec, ...] = ()
    inits_per_epoch: int = 1  # K learner inits per meta-epoch (vmap); 1 is the paper's setting
    # beyond the paper: if set, training episodes end (truncated, bootstrapped by the critic) after
    # this many steps, so rollouts start from more initial states; evaluation keeps the task's limit
    train_max_episode_steps: int | None = None
    norm_adv: bool = True
    dataset_lr: float = 2.5e-4  # Adam on states, labels and log-lr (max_grad_norm clips it and,
    critic_lr: float = 2.5e-4  # separately, the critic)
    init_inner_lr: float = 0.02
    # synthetic states start as N(0, init_state_std^2): MLP learners, and a Nature-CNN's with
    # normalize_obs (its states then live in normalised pixels); raw frames start uniform in [0, 1]
    init_state_std: float = 1.0
    # beyond the standard normalisation: normalised observations (after the clip) are multiplied by
    # obs_scale for the learner and the critic (needs normalize_obs; frozen into the dataset). Below 1
    # a tanh learner's layers stay near-linear on real states, so its one-step policy depends less on
    # the init (InvertedDoublePendulum, benchmarks/idp_obs_scale.py)
    obs_scale: float = 1.0
    # beyond the paper: if set, the synthetic states are clamped to [-state_bound, state_bound] after
    # every dataset update (projected Adam), so they stay where the learner's tanh layers are
    # near-linear; with obs_scale < 1 a one-step learner is then nearly the same linear policy
    # whatever its init (InvertedDoublePendulum, benchmarks/idp_obs_scale.py)
    state_bound: float | None = None
    ratio_mode: str = "logprob"  # "raw_logits" reproduces the authors' PPO-ratio defect
    eval_every: int = 25  # meta-epochs between evaluations of the dataset (0: never)
    eval_learners: int = 10  # fresh learners x 1 episode, sampled and greedy

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("size", "inits_per_epoch", "eval_learners"):
            setattr(self, name, checks.integer(name, getattr(self, name)))
        if self.train_max_episode_steps is not None:
            try:
                self.train_max_episode_steps = checks.integer("train_max_episode_steps", self.train_max_episode_steps)
            except ValueError:
                raise ValueError(f"train_max_episode_steps must be None or a positive integer, got "
                                 f"{self.train_max_episode_steps!r}") from None
        self.eval_every = checks.integer("eval_every", self.eval_every, lo=0)
        if not isinstance(self.norm_adv, bool):
            raise ValueError(f"norm_adv must be true or false, got {self.norm_adv!r}")
        self.dataset_lr = checks.positive("dataset_lr", self.dataset_lr, hi=1e3)
        self.critic_lr = checks.positive("critic_lr", self.critic_lr, hi=1e3)
        self.init_inner_lr = checks.positive("init_inner_lr", self.init_inner_lr, hi=MAX_LR)
        self.init_state_std = checks.positive("init_state_std", self.init_state_std, hi=1e3)
        self.obs_scale = checks.positive("obs_scale", self.obs_scale, hi=1e3)
        if self.obs_scale != 1.0 and not self.normalize_obs:
            raise ValueError("obs_scale scales normalised observations: it needs normalize_obs")
        if self.state_bound is not None:
            self.state_bound = checks.positive("state_bound", self.state_bound, hi=MAX_ABS)
        if self.ratio_mode not in ("logprob", "raw_logits"):
            raise ValueError(f"ratio_mode must be 'logprob' or 'raw_logits', got {self.ratio_mode!r}")
        self.learner = LearnerSpec.coerce(self.learner, "learner")
        self.learner_pool = tuple(LearnerSpec.coerce(s, "learner_pool entry") for s in self.learner_pool)
        if any(s.policy != self.learner.policy for s in self.learner_pool):
            raise ValueError("every learner of learner_pool must have the learner's policy kind")
        if self.learner.policy != "categorical" and self.ratio_mode != "logprob":
            raise ValueError("ratio_mode='raw_logits' is an ablation for categorical policies only")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["learner"] = asdict(self.learner)
        d["learner"]["hidden"] = list(self.learner.hidden)
        d["learner_pool"] = [{**asdict(s), "hidden": list(s.hidden)} for s in self.learner_pool]
        d["critic_hidden"] = list(self.critic_hidden)
        return d


def _columns(rows: list[dict[str, float]]) -> dict[str, torch.Tensor]:
    """Rows of numbers as float64 columns (compact in a checkpoint)."""
    if not rows:
        return {}
    return {k: torch.tensor([float(r[k]) for r in rows], dtype=torch.float64) for k in rows[0]}


def _rows(columns: dict[str, torch.Tensor] | list[dict[str, float]]) -> list[dict[str, float]]:
    if isinstance(columns, list):  # checkpoints written before histories were stored as columns
        return list(columns)
    if not columns:
        return []
    lists = {k: v.tolist() for k, v in columns.items()}
    ints = {"meta_epoch", "env_steps"}
    return [{k: (int(v[i]) if k in ints else v[i]) for k, v in lists.items()} for i in range(len(next(iter(lists.values()))))]


def _with_spec_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A saved configuration with its learner specs completed by fields added to
    :class:`LearnerSpec` since it was saved (at their defaults)."""
    def full(spec: dict[str, Any]) -> dict[str, Any]:
        d = asdict(LearnerSpec(**spec))
        d["hidden"] = list(d["hidden"])
        return d

    out = dict(config)
    if isinstance(out.get("learner"), dict):
        out["learner"] = full(out["learner"])
    if "learner_pool" in out:
        out["learner_pool"] = [full(s) for s in out["learner_pool"]]
    return out


def _generator(seed: int, device: str) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


class PPMO:
    """One distillation run. ``run()`` trains; ``dataset()`` is the current distilled dataset."""

    def __init__(self, cfg: PPMOConfig) -> None:
        self.cfg = cfg
        dev = cfg.device
        K, E = cfg.inits_per_epoch, cfg.num_envs
        train_kwargs = dict(cfg.env_kwargs)
        if cfg.train_max_episode_steps is not None:
            train_kwargs["max_episode_steps"] = cfg.train_max_episode_steps
        if cfg.num_steps * K * E > checks.MAX_ELEMENTS:
            raise ValueError(f"num_steps x inits_per_epoch x num_envs = {cfg.num_steps * K * E:,}: too many to hold")
        self.env = make_env(cfg.env_id, K * E, device=dev, seed=cfg.seed, check_actions=False, **train_kwargs)
        self.obs_size, self.num_actions = self.env.observation_size, self.env.num_actions
        self.obs_shape = tuple(self.env.observation_shape)
        per_obs = math.prod(self.obs_shape)
        for what, n in (("size x observation", cfg.size * per_obs),
                        ("num_steps x inits_per_epoch x num_envs x observation", cfg.num_steps * K * E * per_obs)):
            if n > checks.MAX_ELEMENTS:
                raise ValueError(f"{what} = {n:,} values: more than the {checks.MAX_ELEMENTS:,} this code allows in memory")
        self.cnn = cfg.learner.kind == "nature_cnn"
        if self.cnn and not cfg.normalize_obs and cfg.init_state_std != 1.0:
            raise ValueError("init_state_std needs normalize_obs with a Nature-CNN (raw synthetic frames start "
                             "uniform in [0, 1])")
        if self.cnn and cfg.inits_per_epoch != 1:
            raise ValueError("the Nature-CNN learner supports inits_per_epoch = 1 only")
        self.in_size = learner_input(cfg.learner, self.obs_shape)
        self.gaussian = cfg.learner.policy == "gaussian"
        if self.gaussian != self.env.continuous:
            kind = "continuous" if self.env.continuous else "discrete"
            raise ValueError(f"{cfg.env_id} has {kind} actions: it needs a "
                             f"{'gaussian' if self.env.continuous else 'categorical'} learner, got {cfg.learner.policy}")
        self.head = head(cfg.learner.policy)
        # independent random streams: learner inits, actions, minibatch order, dataset init, critic init
        self.g_init = _generator(cfg.seed * 10 + 1, dev)
        self.g_act = _generator(cfg.seed * 10 + 2, dev)
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
        self.data_opt = torch.optim.Adam(self.data_params, lr=cfg.dataset_lr, eps=cfg.adam_eps,
                                         fused=self.env.device.type == "cpu")
        # observation statistics (identity until the first update) and reward scaling
        # per input element: per pixel for frames (what moves stands out from the static background)
        self.obs_rms = RunningMeanStd(self.obs_shape, dev) if cfg.normalize_obs else None
        self.ret_rms = RunningMeanStd((), dev) if cfg.normalize_reward else None
        self.ret_acc = torch.zeros(K * E, device=dev)
        if self.cnn:  # a separate Nature-CNN
            critic_spec = LearnerSpec(kind="nature_cnn", activation="relu", output_gain=1.0)
        else:
            critic_spec = LearnerSpec(hidden=tuple(cfg.critic_hidden), activation="tanh", output_gain=1.0)
        self.critic = {k: v.requires_grad_() for k, v in init_params(critic_spec, learner_input(critic_spec, self.obs_shape),
                                                                    1, g_critic, device=dev).items()}
        self.critic_opt = torch.optim.Adam(list(self.critic.values()), lr=cfg.critic_lr, eps=cfg.adam_eps,
                                           fused=self.env.device.type == "cpu")
        self.obs = self.env.reset(seed=cfg.seed)
        self.meta_epoch = 0
        self.env_steps = 0
        self.wall_time = 0.0  # seconds of training, summed over resumed runs
        self.history: list[dict[str, float]] = []  # one row per meta-epoch
        self.evals: list[dict[str, float]] = []  # one row per evaluation
        self.stopped_early = False  # stop_when ended the run; resuming does not train further
        self.revisions: list[str] = []  # git revisions of the code that trained this run, in order
        self.stop_rule: str | None = None  # the early-stopping rule the run was last trained under
        self.saved_at: int | None = None  # the meta-epoch of the checkpoint on disk (None: none written by/for it)
        self.health: dict[str, float] = {}  # largest magnitudes after the last meta-epoch (divergence checks)
        self.files_written = False  # set by distill(): whether it wrote the dataset

    # ------------------------------------------------------------------------------ pieces
    @property
    def lr(self) -> torch.Tensor:
        return self.log_lr.exp()

    def data_tensors(self) -> DatasetTensors:
        """The dataset's trainable tensors, as :func:`~paper_code.meta_loss.meta_loss` takes them."""
        return DatasetTensors(self.states, self.labels, self.log_lr, self.log_std_target, self.encoder or None)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The learner's input: the encoder's features of (normalised) observations, or ``x``."""
        return cnn_forward(self.encoder, x) if self.encoder else x

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations as the learner and the critic see them (raw without ``normalize_obs``;
        uint8 frames scaled to [0, 1])."""
        if obs.dtype == torch.uint8:
            obs = obs.float().div_(255)
        if self.obs_rms is None:
            return obs
        return normalize_obs(obs, self.obs_rms.mean, self.obs_rms.var, scale=self.cfg.obs_scale)

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

            def out_fn(obs: torch.Tensor) -> torch.Tensor:
                return forward(single, self.features(self.normalize(obs)), act_fn)
        else:
            if self.gaussian:
                log_std = theta1["log_std"].repeat_interleave(E, 0)  # [K * E, A]

            def out_fn(obs: torch.Tensor) -> torch.Tensor:
                return batched_forward(theta1, self.normalize(obs).view(K, E, D), act_fn).view(K * E, -1)

        roll = rollout(self.env, self.obs, out_fn, self.cfg.num_steps, self.g_act, self.head, log_std)
        self.obs = roll["last_obs"]
        return roll

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
            # observation statistics stay fixed until the end of the meta-epoch; observations are
            # normalised per minibatch below (Atari frames stay uint8 until then)
            values, next_values = bootstrap_values(lambda o: self.value(self.normalize(o)), roll)  # [T, KE]
            rewards = roll["rewards"]
            if self.ret_rms is not None:
                rewards, self.ret_acc = scale_rewards(rewards, roll["terminated"] | roll["truncated"], self.ret_acc,
                                                      self.ret_rms, cfg.gamma)
            adv, returns = gae(rewards, values, next_values, roll["terminated"], roll["truncated"],
                               cfg.gamma, cfg.gae_lambda)
            # per learner: [K, T*E, ...]
            def per_learner(x: torch.Tensor) -> torch.Tensor:
                return x.view(T, K, E, *x.shape[2:]).transpose(0, 1).reshape(K, T * E, *x.shape[2:])

            b_obs, b_act = per_learner(roll["obs"]), per_learner(roll["actions"])
            b_adv, b_ret = per_learner(adv), per_learner(returns)
            old_out = per_learner(roll["out"])  # the acting policy's outputs, kept from the rollout
            if self.gaussian:
                old_logp = self.head.log_prob(old_out, b_act, theta1["log_std"][:, None, :])
                old_taken = old_logp  # unused (raw_logits is categorical only)
            else:
                old_logp = F.log_softmax(old_out, -1).gather(-1, b_act.unsqueeze(-1)).squeeze(-1)
                old_taken = old_out.gather(-1, b_act.unsqueeze(-1)).squeeze(-1)

        n = T * E
        stats_sum: dict[str, torch.Tensor] = {}
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(n, generator=self.g_perm, device=cfg.device)
            # shuffle once per epoch; minibatches are then contiguous slices (views)
            shuffled = [t[:, perm] for t in (b_obs, b_act, old_logp, b_adv, b_ret, old_taken)]
            for start in range(0, n, cfg.minibatch_size):
                mb_obs, mb_act, mb_logp, mb_adv, mb_ret, mb_taken = (t[:, start:start + cfg.minibatch_size] for t in shuffled)
                mb_obs = self.normalize(mb_obs)
                loss, st = meta_loss(data, theta0, Minibatch(mb_obs, mb_act, mb_logp, mb_adv, mb_taken),
                                     activation=act_fn, policy=cfg.learner.policy, clip_coef=cfg.clip_coef,
                                     ent_coef=cfg.ent_coef, norm_adv=cfg.norm_adv, ratio_mode=cfg.ratio_mode)
                v_loss = cfg.vf_coef * (self.value(mb_obs) - mb_ret).pow(2).mean()
                # one backward for both graphs (they share no parameters), then each is clipped
                # and stepped on its own: the dataset by the PPO loss, the critic by its value loss
                self.data_opt.zero_grad(set_to_none=True)
                self.critic_opt.zero_grad(set_to_none=True)
                (loss + v_loss).backward()
                torch.nn.utils.clip_grad_norm_(self.data_params, cfg.max_grad_norm)
                torch.nn.utils.clip_grad_norm_(list(self.critic.values()), cfg.max_grad_norm)
                self.data_opt.step()
                if cfg.state_bound is not None:
                    with torch.no_grad():
                        self.states.clamp_(-cfg.state_bound, cfg.state_bound)
                self.critic_opt.step()
                st["v_loss"] = v_loss.detach()
                for k, v in st.items():
                    stats_sum[k] = stats_sum.get(k, 0) + v
        updates = cfg.update_epochs * math.ceil(n / cfg.minibatch_size)
        if self.obs_rms is not None:
            obs = roll["obs"].flatten(0, 1)
            self.obs_rms.update(obs.float().div_(255) if obs.dtype == torch.uint8 else obs)

        n_done, mean_return = episode_stats(roll)
        with torch.no_grad():  # the largest magnitudes (nan propagates): divergence shows here
            data_max = torch.stack([p.abs().amax() for p in self.data_params if p is not self.log_lr]).amax()
            critic_max = torch.stack([p.abs().amax() for p in self.critic.values()]).amax()
        row = torch.stack([
            data_max.to(torch.float32),
            critic_max.to(torch.float32),
            n_done.to(torch.float32),
            mean_return.to(torch.float32),
            self.lr.detach(),
            *[v / updates for v in stats_sum.values()],
        ]).tolist()  # the one host sync of the meta-epoch
        self.meta_epoch += 1
        self.env_steps += T * K * E
        self.health = {"dataset_max_abs": row[0], "critic_max_abs": row[1]}
        row = row[2:]
        out = {"meta_epoch": self.meta_epoch, "env_steps": self.env_steps, "episodes": row[0],
               "train_return": row[1] if row[0] > 0 else float("nan"), "lr": row[2]}
        out.update({k: v for k, v in zip(stats_sum.keys(), row[3:])})
        return out

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
        return row

    def _eval_env(self):
        """The evaluation environment, kept between evaluations if it is a gymnasium vector env
        (costly to build); tensor environments are built per evaluation (cheap)."""
        if self.env.__class__.__name__ != "GymVectorEnv":
            return None
        if getattr(self, "_eval_env_cache", None) is None:
            self._eval_env_cache = make_env(self.cfg.env_id, self.cfg.eval_learners, device=self.cfg.device,
                                            check_actions=False, **self.cfg.env_kwargs)
        return self._eval_env_cache

    # ------------------------------------------------------------------------------ checkpoints
    def _env_state(self) -> dict[str, Any]:
        """A tensor environment's exact state. A gymnasium (MuJoCo) env's simulator state is not
        saved: a resumed run starts fresh episodes (reset with a seed derived from the meta-epoch),
        so it continues the same training but is not bit-identical to an uninterrupted run."""
        env = self.env
        if not hasattr(env, "state"):
            return {}
        return {"state": env.state, "elapsed": env.elapsed, "returns": env.returns, "generator": env._generator.get_state()}

    def state_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.log_std_target is not None:
            extra["log_std_target"] = self.log_std_target.detach()
        if self.encoder:
            extra["encoder"] = {k: v.detach() for k, v in self.encoder.items()}
        if self.obs_rms is not None:
            extra["obs_rms"] = self.obs_rms.state_dict()
        if self.ret_rms is not None:
            extra["ret_rms"] = self.ret_rms.state_dict()
            extra["ret_acc"] = self.ret_acc
        return {
            "config": self.cfg.to_dict(), **extra,
            "states": self.states.detach(), "labels": self.labels.detach(), "log_lr": self.log_lr.detach(),
            "data_opt": self.data_opt.state_dict(),
            "critic": {k: v.detach() for k, v in self.critic.items()}, "critic_opt": self.critic_opt.state_dict(),
            "generators": {k: getattr(self, k).get_state() for k in ("g_init", "g_act", "g_perm")},
            "env": self._env_state(),
            "obs": self.obs, "meta_epoch": self.meta_epoch, "env_steps": self.env_steps, "wall_time": self.wall_time,
            "history": _columns(self.history), "evals": _columns(self.evals),
            "stopped_early": self.stopped_early, "revisions": list(self.revisions), "stop_rule": self.stop_rule or "",
        }

    def check_config(self, sd: dict[str, Any]) -> None:
        """Raise :class:`CheckpointError` unless checkpoint ``sd`` was made with this run's configuration."""
        try:
            saved = _with_spec_defaults(sd["config"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"its configuration is not one of this project's ({type(e).__name__}: {e})") from None
        current = self.cfg.to_dict()
        defaults = PPMOConfig(env_id=self.cfg.env_id, env_kwargs=self.cfg.env_kwargs, learner=self.cfg.learner).to_dict()
        # a setting the checkpoint predates counts as equal if it still has its default value
        diff = sorted(k for k in current if ((saved[k] != current[k]) if k in saved else (current[k] != defaults[k])))
        if diff:
            raise CheckpointError(f"checkpoint was made with a different configuration (differs in: {', '.join(diff)})")

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.check_config(sd)
        with torch.no_grad():
            self.states.copy_(sd["states"])
            self.labels.copy_(sd["labels"])
            self.log_lr.copy_(sd["log_lr"])
            if self.log_std_target is not None:
                self.log_std_target.copy_(sd["log_std_target"])
            for k, v in self.encoder.items():
                v.copy_(sd["encoder"][k])
            for k, v in self.critic.items():
                v.copy_(sd["critic"][k])
        if self.obs_rms is not None:
            self.obs_rms.load_state_dict(sd["obs_rms"])
        if self.ret_rms is not None:
            self.ret_rms.load_state_dict(sd["ret_rms"])
            self.ret_acc = sd["ret_acc"].clone()
        self.data_opt.load_state_dict(sd["data_opt"])
        self.critic_opt.load_state_dict(sd["critic_opt"])
        for k, state in sd["generators"].items():
            getattr(self, k).set_state(state)
        env = self.env
        self.meta_epoch, self.env_steps, self.wall_time = sd["meta_epoch"], sd["env_steps"], sd["wall_time"]
        if sd["env"]:
            env.state, env.elapsed, env.returns = sd["env"]["state"].clone(), sd["env"]["elapsed"].clone(), sd["env"]["returns"].clone()
            env._generator.set_state(sd["env"]["generator"])
            env._needs_reset = False
            self.obs = sd["obs"].clone()
        else:  # fresh episodes (see _env_state)
            self.obs = env.reset(seed=self.cfg.seed + 1_000_003 * self.meta_epoch)
            self.ret_acc = torch.zeros_like(self.ret_acc)
        self.history, self.evals = _rows(sd["history"]), _rows(sd["evals"])
        self.stopped_early = bool(sd.get("stopped_early", False))
        self.revisions = list(sd.get("revisions", []))
        self.stop_rule = sd.get("stop_rule") or None

    def save_checkpoint(self, path: str | Path) -> Path:
        """Atomic write (temporary file, fsync, rename): an interruption never corrupts the
        checkpoint; a state with non-finite values is refused (a good checkpoint is never replaced)."""
        return write_checkpoint(self.state_dict(), path)

    def load_checkpoint(self, path: str | Path) -> None:
        """Load a checkpoint of this configuration; :class:`~paper_code.checkpoints.CheckpointError`
        (one line) if it is not one, before anything of this run changes."""
        sd = read_checkpoint(path, self.cfg.device)
        try:
            self.check_config(sd)  # first: "another configuration" says more than the shapes that follow from it
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
        params = {"data_opt": self.data_params, "critic_opt": list(self.critic.values())}
        check_like(sd, self.state_dict(), params, str(path))
        try:
            self.load_state_dict(sd)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
            raise CheckpointError(f"{path}: not a checkpoint of this run ({type(e).__name__}: {e})") from None
        self.saved_at = self.meta_epoch

    # ------------------------------------------------------------------------------ the loop
    def run(self, meta_epochs: int, *, progress: bool = True, checkpoint: str | Path | None = None,
            checkpoint_every_s: float = 180.0, stop_when: Callable[[list[dict[str, float]]], bool] | None = None,
            stop_rule: str | None = None, on_checkpoint: Callable[["PPMO"], None] | None = None) -> "PPMO":
        """Train until ``meta_epochs`` meta-epochs in total (counting resumed ones).

        Writes ``checkpoint`` every ``checkpoint_every_s`` seconds (0: after every meta-epoch) and
        at the end, then calls ``on_checkpoint``. Ctrl-C (SIGINT) or ``kill`` (SIGTERM) stop the
        run at the next meta-epoch boundary, after writing the checkpoint there
        (:class:`~paper_code.interrupts.RunInterrupted`), so resuming gives the same result as an
        uninterrupted run. A meta-epoch whose dataset, critic, lr or losses are non-finite (or
        beyond what a dataset file may hold) stops the run with :class:`DivergenceError`; nothing
        is written after the last good checkpoint.
        ``stop_when(evaluations)`` may end the run early after an evaluation; such a run stays
        finished when resumed with the same ``stop_rule`` (a name for the rule). Resumed with a
        different rule it continues: training does not depend on the rule (evaluations use their
        own random streams), so the result equals an uninterrupted run under the new rule.
        """
        from tqdm.auto import tqdm

        cfg = self.cfg
        bar = tqdm(total=meta_epochs, initial=self.meta_epoch, disable=not progress, unit="meta-epoch",
                   dynamic_ncols=True, mininterval=1.0)
        last_ckpt = time.perf_counter()
        recent: list[float] = []

        def save() -> None:
            if checkpoint is None or (self.saved_at == self.meta_epoch and Path(checkpoint).exists()):
                return
            self.save_checkpoint(checkpoint)
            if on_checkpoint is not None:
                on_checkpoint(self)
            self.saved_at = self.meta_epoch

        def interrupted(signum: int) -> RunInterrupted:
            return RunInterrupted(signum, self.meta_epoch, None if checkpoint is None else str(checkpoint))

        if self.stopped_early and stop_rule != self.stop_rule:
            self.stopped_early = False
        self.stop_rule = stop_rule
        trained = False
        with deferred_interrupts() as interrupts:
            try:
                while True:
                    if interrupts.signal is not None:  # a meta-epoch boundary: the state is consistent
                        save()
                        raise interrupted(interrupts.signal)
                    if self.meta_epoch >= meta_epochs or self.stopped_early:
                        break
                    if not trained:  # the code revision that trains (part of) this dataset
                        rev = git_revision()
                        if not self.revisions or self.revisions[-1] != rev:
                            self.revisions.append(rev)
                        trained = True
                    t0 = time.perf_counter()
                    try:
                        row = self.meta_epoch_step()
                    except RuntimeError as e:  # e.g. sampling from nan probabilities
                        if not re.search(r"\b(nan|inf)\b", str(e)):
                            raise
                        problem = "non-finite action probabilities (the one-step learner overflowed)"
                        raise DivergenceError(self._diverged(self.meta_epoch + 1, problem, checkpoint)) from None
                    problem = self.divergence(row)
                    if problem is not None:
                        raise DivergenceError(self._diverged(self.meta_epoch, problem, checkpoint))
                    self.wall_time += time.perf_counter() - t0
                    row["wall_time_s"] = self.wall_time
                    self.history.append(row)
                    if not math.isnan(row["train_return"]):
                        recent = (recent + [row["train_return"]])[-20:]
                    stop = False
                    if cfg.eval_every and (self.meta_epoch % cfg.eval_every == 0 or self.meta_epoch == meta_epochs):
                        ev = self.evaluate()
                        self.evals.append(ev)
                        bar.set_postfix_str(f"eval sampled {ev['sampled_return']:.0f} greedy {ev['greedy_return']:.0f}",
                                            refresh=False)
                        stop = stop_when is not None and stop_when(self.evals)
                    bar.set_description(
                        f"{self.env_steps / max(self.wall_time, 1e-9):,.0f} env-steps/s, "
                        f"train return {sum(recent) / max(len(recent), 1):.1f}, lr {row['lr']:.3g}", refresh=False)
                    bar.update(1)
                    if checkpoint is not None and time.perf_counter() - last_ckpt >= checkpoint_every_s:
                        save()
                        last_ckpt = time.perf_counter()
                    if stop:
                        self.stopped_early = True
                if trained:  # a finished run that was only resumed is left as it is
                    save()
                if interrupts.signal is not None:  # arrived during the last save: the run is complete
                    raise interrupted(interrupts.signal)
            finally:
                bar.close()
        return self

    def _diverged(self, meta_epoch: int, problem: str, checkpoint: str | Path | None) -> str:
        kept = ("nothing was written" if checkpoint is None or self.saved_at is None
                else f"the checkpoint and dataset of meta-epoch {self.saved_at} are kept")
        return f"training diverged in meta-epoch {meta_epoch}: {problem}; {kept}"


class DivergenceError(RuntimeError):
    """Training produced non-finite (or absurdly large) values; nothing of it was written."""


def checkpoint_path(out: str | Path) -> Path:
    """Where :func:`distill` keeps the checkpoint of the run that writes ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".ckpt.pt")


def log_path(out: str | Path) -> Path:
    """Where :func:`distill` writes the run's per-meta-epoch history and evaluations (JSON)."""
    out = Path(out)
    return out.with_name(out.name + ".log.json")


def write_log(run: PPMO, out: str | Path) -> Path:
    """The run's configuration, per-meta-epoch history and evaluations as compact JSON."""
    import json

    path = log_path(out)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps({"config": run.cfg.to_dict(), "history": run.history, "evals": run.evals},
                                        separators=(",", ":")))
    return path


def _dataset_current(run: PPMO, out: Path) -> bool:
    """Whether ``out`` holds ``run``'s current dataset (same meta-epoch, states, labels and lr)."""
    try:
        ds = DistilledDataset.load(out)
    except (ValueError, OSError):
        return False
    return (ds.provenance.get("meta_epochs") == run.meta_epoch and torch.equal(ds.states, run.states.detach().cpu())
            and torch.equal(ds.labels, run.labels.detach().cpu()) and torch.equal(ds.lr, run.lr.detach().cpu().reshape(())))


def _log_current(run: PPMO, out: Path) -> bool:
    import json

    try:
        log = json.loads(log_path(out).read_text())
        return len(log["history"]) == len(run.history) and len(log["evals"]) == len(run.evals)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def distill(cfg: PPMOConfig, out: str | Path, meta_epochs: int, *, resume: bool = False, force: bool = False,
            progress: bool = True, checkpoint_every_s: float = 180.0,
            stop_when: Callable[[list[dict[str, float]]], bool] | None = None, stop_rule: str | None = None) -> PPMO:
    """Run PPMO and write the dataset to ``out`` (with its checkpoint and log beside it).

    Everything is checked before anything is written: the settings, the environment, that the
    output, its checkpoint and its log can be written, and the checkpoint to resume from. The run
    holds an exclusive lock on ``out`` (another run on the same output fails at once), deletes
    temporaries that a killed run left, and writes the checkpoint, then the dataset and the log,
    every ``checkpoint_every_s`` seconds and at the end (see :meth:`PPMO.run` for interrupts and
    divergence).

    ``resume`` continues from the checkpoint (the result equals an uninterrupted run on the same
    device). Without it, a checkpoint that already reached ``meta_epochs`` (a finished run) only
    has its dataset and log rewritten if they are missing or stale; any other existing checkpoint
    or output is an error unless ``force`` (start over). ``run.files_written`` tells whether this
    call wrote the dataset.
    """
    meta_epochs = checks.integer("meta_epochs", meta_epochs)
    checkpoint_every_s = checks.number("checkpoint_every_s", checkpoint_every_s, lo=0.0)
    if resume and force:
        raise ValueError("resume continues a run and force starts it over: pass one of them")
    out = Path(out)
    ckpt = checkpoint_path(out)
    for p in (out, ckpt, log_path(out), lock_path(out)):
        check_writable(p)
    OutputLock(out).check_free()
    if resume and not ckpt.is_file():
        raise FileNotFoundError(f"no checkpoint {ckpt} to resume from")
    if not (resume or force) and out.exists() and not ckpt.exists():
        raise FileExistsError(f"{out} exists and has no checkpoint: start over with --force (force=True)")
    run = PPMO(cfg)  # validates the environment and the sizes before anything is written
    with deferred_interrupts(), OutputLock(out):
        remove_stale_temporaries(out)
        if (resume or not force) and ckpt.exists():
            run.load_checkpoint(ckpt)  # a wrong or damaged checkpoint: one clear error, nothing written
            finished = run.meta_epoch >= meta_epochs or (run.stopped_early and run.stop_rule == stop_rule)
            if not resume and not finished:
                raise FileExistsError(f"{ckpt} holds an unfinished run (meta-epoch {run.meta_epoch} of {meta_epochs}): "
                                      f"continue it with --resume (resume=True) or start over with --force (force=True)")
        elif not force and out.exists():
            raise FileExistsError(f"{out} exists and has no checkpoint: start over with --force (force=True)")
        written = False

        def on_checkpoint(r: PPMO) -> None:
            nonlocal written
            r.dataset().save(out)
            write_log(r, out)
            written = True

        run.run(meta_epochs, progress=progress, checkpoint=ckpt, checkpoint_every_s=checkpoint_every_s,
                stop_when=stop_when, stop_rule=stop_rule, on_checkpoint=on_checkpoint)
        # a finished run's dataset and log: written if missing or older than the checkpoint (a run
        # killed between writing its checkpoint and its dataset, or a deleted file)
        if not _dataset_current(run, out):
            run.dataset().save(out)
            written = True
        if not _log_current(run, out):
            write_log(run, out)
    run.files_written = written
    return run
