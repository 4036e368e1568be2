"""Every setting of a run, in one place: documented dataclasses, validated when built.

:class:`RLSettings` (environment, rollout, GAE, PPO) is shared by :class:`PPMOConfig` (a
distillation run) and :class:`PPOConfig` (the plain PPO baseline); :class:`EvalProtocol` is how a
dataset is scored. Each field's docstring is its documentation: ``python -m paper_code distill
--help`` prints it (:func:`field_docs`), and named settings for every paper run are in
:mod:`paper_code.pipeline.presets`. Defaults are the paper's cart-pole setting.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from typing import Any

from paper_code import checks
from paper_code.core.dataset import MAX_ABS, MAX_LR
from paper_code.core.learners import PAPER_LEARNER, LearnerSpec
from paper_code.envs import check_env_kwargs


@dataclass
class RLSettings:
    """What PPMO and plain PPO share: environment, rollout, GAE and PPO settings (CleanRL names)."""

    env_id: str = "paper_code/NDCartPole-v0"
    """gymnasium id (or this package's paper_code/NDCartPole-v0)."""
    env_kwargs: dict[str, Any] = field(default_factory=lambda: {"dof": 1})
    """keyword arguments of the environment (e.g. {"dof": N} for N-D cart-pole, {"max_episode_steps": T})."""
    seed: int = 0
    """seed of every random stream of the run (learner inits, actions, minibatches, dataset, critic, envs)."""
    num_envs: int = 10
    """environments stepped together (per learner init, in PPMO)."""
    num_steps: int = 200
    """rollout steps per environment per iteration (PPMO: per meta-epoch)."""
    update_epochs: int = 4
    """passes over each rollout."""
    minibatch_size: int = 512
    """transitions per PPO minibatch."""
    gamma: float = 0.99
    """discount factor."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    clip_coef: float = 0.2
    """PPO's ratio clip."""
    ent_coef: float = 0.01
    """entropy bonus."""
    vf_coef: float = 0.5
    """weight of the critic's loss: PPO adds vf_coef / 2 x its mean squared error to the policy loss (CleanRL's); PPMO's separate critic is trained on vf_coef x its mean squared error."""
    adam_eps: float = 1e-5
    """Adam's epsilon (every optimiser of the run)."""
    max_grad_norm: float = 0.5
    """gradient-norm clip (PPMO: of the dataset and of the critic, separately)."""
    critic_hidden: tuple[int, ...] = (64, 64)
    """hidden widths of the critic MLP (a Nature-CNN critic for Atari ignores it)."""
    normalize_obs: bool = False
    """normalise observations by running mean/std (frozen into the dataset file)."""
    normalize_reward: bool = False
    """scale rewards by the running std of the discounted return (critic and advantages only)."""
    device: str = "cpu"
    """torch device (cpu, cuda, cuda:N)."""

    def __post_init__(self) -> None:
        """Every setting checked up front (one clear ``ValueError``), before anything is built."""

        if not isinstance(self.env_id, str) or not self.env_id:
            raise ValueError(f"env_id must be a gymnasium id, got {self.env_id!r}")
        self.env_kwargs = check_env_kwargs(self.env_id, self.env_kwargs)
        self.seed = checks.seed("seed", self.seed)
        for name in ("num_envs", "num_steps", "update_epochs", "minibatch_size"):
            setattr(self, name, checks.integer(name, getattr(self, name)))
        self.gamma = checks.number("gamma", self.gamma, lo=0.0, hi=1.0)
        self.gae_lambda = checks.number("gae_lambda", self.gae_lambda, lo=0.0, hi=1.0)
        self.clip_coef = checks.positive("clip_coef", self.clip_coef, hi=1e3)
        self.ent_coef = checks.number("ent_coef", self.ent_coef, lo=0.0, hi=1e3)
        self.vf_coef = checks.number("vf_coef", self.vf_coef, lo=0.0, hi=1e3)
        self.adam_eps = checks.positive("adam_eps", self.adam_eps, hi=1.0)
        self.max_grad_norm = checks.positive("max_grad_norm", self.max_grad_norm, hi=1e6)
        if isinstance(self.critic_hidden, (str, bytes)) or not hasattr(self.critic_hidden, "__iter__"):
            raise ValueError(f"critic_hidden must be a list of layer widths, got {self.critic_hidden!r}")
        self.critic_hidden = tuple(checks.integer("critic_hidden width", h, hi=checks.MAX_WIDTH) for h in self.critic_hidden)
        for name in ("normalize_obs", "normalize_reward"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        self.device = checks.device("device", self.device)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (lists for tuples, dicts for learner specs): what files record."""
        d = asdict(self)
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, LearnerSpec):
                d[f.name] = v.to_dict()
            elif isinstance(v, tuple):
                d[f.name] = [s.to_dict() if isinstance(s, LearnerSpec) else s for s in v]
        return d


#: PPMOConfig fields added after datasets were committed: left out of ``to_dict`` at these defaults
#: (what the files record stays what it was; --print-config shows them)
PPMO_LATER = {"states_lr": None, "labels_lr": None, "inner_lr_lr": None, "dataset_adam_eps": None}


@dataclass
class PPMOConfig(RLSettings):
    """A distillation run (PPMO): the shared RL settings plus the dataset, its optimiser and the
    learner it is distilled for. Defaults: the paper's cart-pole setting."""

    size: int = 512
    """B, synthetic instances in the dataset."""
    learner: LearnerSpec = PAPER_LEARNER
    """the learner trained one step on the dataset (JSON: {"kind", "hidden", "activation", "policy", "split", ...})."""
    learner_pool: tuple[LearnerSpec, ...] = ()
    """beyond the paper: if not empty, each meta-epoch draws its learner's architecture from this pool (uniformly)."""
    inits_per_epoch: int = 1
    """K learner inits per meta-epoch, their meta-gradients averaged (vmap); 1 is the paper's setting."""
    train_max_episode_steps: int | None = None
    """beyond the paper: truncate training episodes (bootstrapped) after this many steps; evaluation keeps the task's limit."""
    norm_adv: bool = True
    """normalise advantages per minibatch."""
    dataset_lr: float = 2.5e-4
    """Adam's learning rate on states, labels and the log inner lr (gradient norm clipped by max_grad_norm)."""
    states_lr: float | None = None
    """beyond the paper: Adam's learning rate on the states alone (None: dataset_lr)."""
    labels_lr: float | None = None
    """beyond the paper: Adam's learning rate on the labels alone (None: dataset_lr)."""
    inner_lr_lr: float | None = None
    """beyond the paper: Adam's learning rate on the log inner lr alone (None: dataset_lr)."""
    dataset_adam_eps: float | None = None
    """beyond the paper: Adam's epsilon for the dataset (None: adam_eps). Atari's per-pixel gradients (about 5e-6) are below the default 1e-5, which then all but stops the states."""
    critic_lr: float = 2.5e-4
    """Adam's learning rate on the critic (its own gradient-norm clip)."""
    init_inner_lr: float = 0.02
    """the inner SGD step's learning rate at the start (learned in log space)."""
    init_state_std: float = 1.0
    """synthetic states start as N(0, std^2) (raw Atari frames start uniform in [0, 1] and need 1)."""
    init_dataset: str | None = None
    """beyond the paper: a warm start. A dataset file (e.g. from `compress`) whose states, labels, lr and log-std target the run starts from instead of random ones; its frozen observation statistics seed the running ones. It must be made for this env, B, learner and obs_scale."""
    obs_scale: float = 1.0
    """beyond the paper: normalised observations are multiplied by this for learner and critic (needs normalize_obs)."""
    state_bound: float | None = None
    """beyond the paper: clamp synthetic states to [-bound, bound] after every dataset update."""
    ratio_mode: str = "logprob"
    """PPO ratio from log-probabilities; raw_logits reproduces the authors' defect (categorical ablation)."""
    compile: bool = False
    """compute each update's gradients (and, on the tensor cart-pole, the rollout's steps) with torch.compile: the same results to float round-off, about 2x the meta-epochs/s of the paper's cart-pole on one CPU core (results/benchmarks/ppmo.md); the first meta-epoch compiles (seconds to a minute). MLP learners only."""
    eval_every: int = 25
    """meta-epochs between evaluations of the dataset during training (0: never)."""
    eval_learners: int = 10
    """fresh learners x 1 episode per evaluation during training (sampled and greedy)."""

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
        for name in ("norm_adv", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        self.dataset_lr = checks.positive("dataset_lr", self.dataset_lr, hi=1e3)
        self.critic_lr = checks.positive("critic_lr", self.critic_lr, hi=1e3)
        for name in ("states_lr", "labels_lr", "inner_lr_lr", "dataset_adam_eps"):
            if getattr(self, name) is not None:
                setattr(self, name, checks.positive(name, getattr(self, name), hi=1e3))
        if self.compile and (self.grouped_dataset_lr or self.dataset_adam_eps is not None):
            raise ValueError("compile supports one dataset_lr and adam_eps: not states_lr, labels_lr, inner_lr_lr or "
                             "dataset_adam_eps")
        self.init_inner_lr = checks.positive("init_inner_lr", self.init_inner_lr, hi=MAX_LR)
        self.init_state_std = checks.positive("init_state_std", self.init_state_std, hi=1e3)
        if self.init_dataset is not None and (not isinstance(self.init_dataset, str) or not self.init_dataset.strip()):
            raise ValueError(f"init_dataset must be a dataset file's path or None, got {self.init_dataset!r}")
        self.obs_scale = checks.positive("obs_scale", self.obs_scale, hi=1e3)
        if self.obs_scale != 1.0 and not self.normalize_obs:
            raise ValueError("obs_scale scales normalised observations: it needs normalize_obs")
        if self.state_bound is not None:
            self.state_bound = checks.positive("state_bound", self.state_bound, hi=MAX_ABS)
        if self.ratio_mode not in ("logprob", "raw_logits"):
            raise ValueError(f"ratio_mode must be 'logprob' or 'raw_logits', got {self.ratio_mode!r}")
        self.learner = LearnerSpec.coerce(self.learner, "learner")
        if isinstance(self.learner_pool, (str, bytes, dict)) or not hasattr(self.learner_pool, "__iter__"):
            raise ValueError(f"learner_pool must be a list of learner specs, got {self.learner_pool!r}")
        self.learner_pool = tuple(LearnerSpec.coerce(s, "learner_pool entry") for s in self.learner_pool)
        if any(s.policy != self.learner.policy for s in self.learner_pool):
            raise ValueError("every learner of learner_pool must have the learner's policy kind")
        if self.learner.policy != "categorical" and self.ratio_mode != "logprob":
            raise ValueError("ratio_mode='raw_logits' is an ablation for categorical policies only")
        if self.learner.kind == "nature_cnn":
            if not self.normalize_obs and self.init_state_std != 1.0:
                raise ValueError("init_state_std needs normalize_obs with a Nature-CNN (raw synthetic frames start "
                                 "uniform in [0, 1])")
            if self.inits_per_epoch != 1:
                raise ValueError("the Nature-CNN learner supports inits_per_epoch = 1 only")
            if self.compile:
                raise ValueError("compile supports MLP learners only (a Nature-CNN's meta-epoch is convolution "
                                 "arithmetic, which compiling does not shorten)")

    @property
    def grouped_dataset_lr(self) -> bool:
        """Whether states, labels or the inner lr have their own Adam learning rate."""
        return any(getattr(self, k) is not None for k in ("states_lr", "labels_lr", "inner_lr_lr"))

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        return {k: v for k, v in d.items() if not (k in PPMO_LATER and v == PPMO_LATER[k])}


@dataclass
class PPOConfig(RLSettings):
    """Plain PPO (the baseline): the shared RL settings plus the actor and its optimiser."""

    learner: LearnerSpec = PAPER_LEARNER
    """the actor: the same network as PPMO's learner."""
    lr: float = 2.5e-4
    """Adam's learning rate (actor and critic, one optimiser)."""
    anneal_lr: bool = False
    """decay the learning rate linearly to 0 over the run."""
    clip_rewards: bool = False
    """train on the sign of each reward (CleanRL's Atari ClipRewardEnv); returns are reported unclipped."""
    clip_vloss: bool = False
    """clip the value function's change per update to clip_coef around its rollout value (CleanRL's clip_vloss)."""
    life_loss_terminal: bool = False
    """Atari: a lost life ends the advantage trace and the value's bootstrap as a terminal state does (CleanRL's EpisodicLifeEnv, without resetting the game: episodes and their returns stay whole games)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.learner = LearnerSpec.coerce(self.learner, "learner")
        self.lr = checks.positive("lr", self.lr, hi=1e3)
        for name in ("anneal_lr", "clip_rewards", "clip_vloss", "life_loss_terminal"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")


#: the one-step learners a compress fit can target (CompressConfig.student)
STUDENTS = ("teacher", "fourier")


@dataclass
class CompressConfig:
    """Distillation from a teacher (``python -m paper_code compress``, :mod:`paper_code.core.compress`):
    fit B instances so that one-step learners match the teacher's action distribution."""

    size: int = 2
    """B, synthetic instances in the dataset."""
    steps: int = 800
    """Adam steps of the fit (no environment interaction during them)."""
    inits: int = 8
    """K fresh learner inits per step (vmap); the KL is averaged over them."""
    batch_states: int = 2048
    """real states per step, drawn from the pool."""
    pool: int = 20_000
    """real states collected once, before the fit, from episodes of the teacher acting (sampled actions)."""
    adam_lr: float = 1e-2
    """Adam's learning rate on states, labels and the log inner lr."""
    init_lr: float | None = None
    """the inner lr the fit starts from (None: a dataset teacher's lr; 1 for an MLP policy teacher, where 0.02 stalls; 0.01 for a Fourier student; the Atari preset's 0.02 for a Nature-CNN teacher)."""
    seed: int = 0
    """seed of the teacher's episodes, the initial states, the learner inits and the state batches."""
    finetune: int = 0
    """beyond the fit: PPMO meta-epochs from the fitted dataset (a warm start, the env's preset with this B and seed; 0: none)."""
    finetune_ent_coef: float | None = None
    """the fine-tune's entropy bonus (None: the preset's). A Gaussian learner's log-std after its step is proportional
    to the inner lr, so the bonus's gradient on the set's log-std grows with the lr the fine-tune learns: with the
    preset's 0.01 (Walker2d) the learners' actions become noise; 0 keeps the std near the teacher's."""
    split: int | None = None
    """Atari (a Nature-CNN teacher): the student's split l in 0..4; its encoder starts as the teacher's first l layers (None: 4)."""
    encoder_lr: float = 1e-3
    """Atari: Adam's learning rate on the student's encoder, fitted with the dataset (0: the teacher's layers, frozen)."""
    dagger_rounds: int = 0
    """beyond the teacher's states (DAgger-style): rounds, evenly spaced through the fit, each adding to the pool
    the states that fresh one-step learners trained on the current set visit (labelled by the teacher like the
    rest); 0: the teacher's states only. MLP students (cart-pole, MuJoCo, your own task)."""
    dagger_states: int = 5_000
    """states each DAgger round adds to the pool (one-step learners acting, sampled actions)."""
    obs_scale: float | None = None
    """MLP policy teacher that normalises: the factor on the student's normalised observations and states (None: the
    environment's PPMO preset's). Small factors (0.3) keep the tanh layers near-linear, so that the one-step learners
    of different inits are nearly one linear policy (notebook 02, InvertedDoublePendulum). The fine-tune uses it too."""
    state_bound: float | None = None
    """MLP policy teacher: the student's states are kept in [-state_bound, state_bound] (None: the environment's PPMO
    preset's). The fine-tune uses it too."""
    student: str = "teacher"
    """MLP policy teacher: the one-step learner the set is fitted for: teacher (the teacher's own network, freshly
    initialised) or fourier (beyond the paper: one wide hidden layer of cos units with random Fourier features,
    whose one-step functions can be local where the tanh learner's are too smooth, e.g. Pendulum; the set's file
    records it, so evaluate and the fine-tune use it)."""
    student_width: int = 4096
    """student fourier: its hidden width W (wider: the one-step learners of different inits agree more; the fit's
    cost grows with W)."""
    student_sigma: float = 1.0
    """student fourier: the std of its first layer's weights on the (normalised, scaled) observations, the
    inverse length scale of its kernel."""

    def __post_init__(self) -> None:
        self.size = checks.integer("size", self.size, hi=100_000)
        self.steps = checks.integer("steps", self.steps, lo=0)
        self.inits = checks.integer("inits", self.inits, hi=1024)
        self.batch_states = checks.integer("batch_states", self.batch_states, hi=1_000_000)
        self.pool = checks.integer("pool", self.pool, hi=10_000_000)
        self.adam_lr = checks.positive("adam_lr", self.adam_lr, hi=1e3)
        if self.init_lr is not None:
            self.init_lr = checks.positive("init_lr", self.init_lr, hi=MAX_LR)
        self.seed = checks.seed("seed", self.seed)
        self.finetune = checks.integer("finetune", self.finetune, lo=0)
        if self.finetune_ent_coef is not None:
            self.finetune_ent_coef = checks.number("finetune_ent_coef", self.finetune_ent_coef, lo=0.0, hi=1e3)
        if self.split is not None:
            self.split = checks.integer("split", self.split, lo=0, hi=4)
        self.encoder_lr = checks.number("encoder_lr", self.encoder_lr, lo=0.0, hi=1e3)
        self.dagger_rounds = checks.integer("dagger_rounds", self.dagger_rounds, lo=0, hi=1000)
        self.dagger_states = checks.integer("dagger_states", self.dagger_states, hi=10_000_000)
        if self.obs_scale is not None:
            self.obs_scale = checks.positive("obs_scale", self.obs_scale, hi=1e3)
        if self.state_bound is not None:
            self.state_bound = checks.positive("state_bound", self.state_bound, hi=MAX_ABS)
        if self.student not in STUDENTS:
            raise ValueError(f"unknown `student` {self.student!r} (known: {', '.join(STUDENTS)})")
        self.student_width = checks.integer("student_width", self.student_width, hi=1_000_000)
        self.student_sigma = checks.positive("student_sigma", self.student_sigma, hi=1e3)
        if self.student == "teacher" and (self.student_width != 4096 or self.student_sigma != 1.0):
            raise ValueError("`student_width` and `student_sigma` apply to `student` fourier")

    #: fields added after fits were committed: left out of to_dict at their defaults (their checkpoints stay valid)
    _LATER = {"split": None, "encoder_lr": 1e-3, "dagger_rounds": 0, "dagger_states": 5_000, "obs_scale": None,
              "state_bound": None, "finetune_ent_coef": None, "student": "teacher", "student_width": 4096,
              "student_sigma": 1.0}
    #: settings that do not change the fit itself: a fit made with other values continues (a longer fit, another fine-tune)
    NOT_THE_FIT = ("steps", "finetune", "finetune_ent_coef")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not (k in self._LATER and v == self._LATER[k])}


def fit_settings(config: dict[str, Any] | None) -> dict[str, Any]:
    """A fit's settings (:meth:`CompressConfig.to_dict`) that must match to continue it."""
    return {k: v for k, v in (config or {}).items() if k not in CompressConfig.NOT_THE_FIT}


@dataclass
class EvalProtocol:
    """How a dataset is scored: fresh learners, each trained on it and run for some episodes."""

    learners: int = 100
    """fresh learner initialisations."""
    episodes: int = 5
    """episodes per learner."""
    seed: int = 0
    """seed of the learner inits, the action sampling and the environments."""
    greedy: bool = False
    """argmax / mean actions instead of sampled ones (the paper's protocol samples)."""
    steps: int = 1
    """SGD steps on the dataset (the paper's: one)."""

    def __post_init__(self) -> None:
        self.learners = checks.integer("learners", self.learners)
        self.episodes = checks.integer("episodes", self.episodes)
        self.seed = checks.seed("seed", self.seed)
        self.steps = checks.integer("steps", self.steps)
        if not isinstance(self.greedy, bool):
            raise ValueError(f"greedy must be true or false, got {self.greedy!r}")


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Each dataclass field's docstring (the string literal under it), base classes included."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not hasattr(klass, "__dataclass_fields__"):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs
