"""Named settings for every run the paper's experiments make, and the one function that resolves them.

``resolve("mujoco-Hopper-v5")`` is the configuration notebook 02 distils Hopper with at paper scale;
the notebooks, the studies and ``python -m paper_code distill --preset NAME`` all go through
:func:`resolve`, and a scale of ``params.yaml`` changes only counts (budgets, evaluation sizes),
passed as overrides. ``python -m paper_code presets`` lists the names.

Families (``{N}``: cart-pole axes 1..5; ``{B}``, ``{K}``: any size / number of inits):

- ``cartpole-nd{N}``: Table 1, B = 512, the paper's cart-pole setting; ``cartpole-nd{N}-b{B}``:
  the minimal-size sweep; ``cartpole-nd{N}-k{K}``: K learner inits per meta-epoch;
  ``cartpole-nd{N}-pool``: a learner drawn from the architecture pool each meta-epoch (notebook 04).
- ``mujoco-{task}``: every gymnasium MuJoCo v5 task, B = 64, Gaussian learner, with the per-task
  settings below (notebook 02).
- ``atari-{game}-l{l}``: Nature-CNN learner split at level l = 0..4 (notebook 03), the paper's
  minimal B per game, the CPU-scale rollout.
- ``discrete`` / ``continuous``: any other gymnasium task (``--env``) with cart-pole's / MuJoCo's settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from paper_code.core.dataset import DistilledDataset
from paper_code.core.learners import LearnerSpec, atari_learner
from paper_code.core.settings import PPMOConfig, PPOConfig
from paper_code.envs import ATARI_GAMES, MUJOCO_TASKS, ND_CARTPOLE_ID, action_space_kind, atari_id
from paper_code.pipeline.architectures import POOL, named

CARTPOLE_DOFS = (1, 2, 3, 4, 5)

#: cart-pole's evaluation during training at paper scale: every 50 meta-epochs, 20 learners
CARTPOLE: dict[str, Any] = dict(env_id=ND_CARTPOLE_ID, eval_every=50, eval_learners=20)

#: the paper's learner for continuous actions: obs -> 64 -> 64 -> A means (tanh, orthogonal,
#: output gain 0.01) and a state-independent log-std (init 0)
GAUSSIAN_LEARNER = LearnerSpec(policy="gaussian")

#: PPMO settings for MuJoCo that differ from cart-pole's: the paper's clip 0.1; observation
#: normalisation (statistics frozen into the dataset) and reward scaling; no entropy bonus
#: (CleanRL's continuous-action PPO); Adam lr 1e-3 on the dataset instead of 2.5e-4 (faster on
#: InvertedPendulum, results/mujoco/tuning.csv: the inner lr, learned in log space, rises 4x faster)
MUJOCO: dict[str, Any] = dict(env_kwargs={}, size=64, learner=GAUSSIAN_LEARNER, clip_coef=0.1, normalize_obs=True,
                              normalize_reward=True, ent_coef=0.0, dataset_lr=1e-3, eval_every=25, eval_learners=10)

#: per-task settings on top of :data:`MUJOCO`
MUJOCO_TASK: dict[str, dict[str, Any]] = {
    # cart-pole's entropy bonus: better evaluations than without (results/mujoco/variants/)
    "Walker2d-v5": dict(ent_coef=0.01),
    # the meta-gradient averaged over 2 learner inits, training episodes truncated after 200 steps
    # (more initial states per rollout), synthetic states from N(0, 0.1^2) kept in [-0.25, 0.25] and
    # normalised observations x 0.3: the learner's tanh layers stay near-linear, so a one-step
    # learner is nearly the same policy whatever its init (results/mujoco/variants/)
    "InvertedDoublePendulum-v5": dict(ent_coef=0.01, inits_per_epoch=2, train_max_episode_steps=200,
                                      init_state_std=0.1, obs_scale=0.3, state_bound=0.25),
}

#: the paper's minimal dataset sizes (B) per game; Breakout has none in the paper: 4 here
ATARI_SIZES = {"Pong": 4, "Breakout": 4, "SpaceInvaders": 4, "MsPacman": 6, "Centipede": 10}

#: PPMO settings for Atari: CleanRL's ppo_atari.py rollout (8 envs x 128 steps, minibatches of 256,
#: clip 0.1, entropy 0.01) with one update epoch (the CPU-scale runs), episodes of at most 3000
#: agent steps, per-pixel observation normalisation (a random encoder's features of raw frames
#: barely vary with the state)
ATARI: dict[str, Any] = dict(num_envs=8, num_steps=128, update_epochs=1, minibatch_size=256, clip_coef=0.1,
                             ent_coef=0.01, normalize_obs=True, eval_every=25, eval_learners=5)
ATARI_EPISODE_STEPS = 3000


#: plain PPO on MuJoCo: CleanRL's ppo_continuous_action.py settings, the same network as the learner
MUJOCO_PPO: dict[str, Any] = dict(env_kwargs={}, learner=GAUSSIAN_LEARNER, num_envs=1, num_steps=2048, update_epochs=10,
                                  minibatch_size=64, lr=3e-4, anneal_lr=True, clip_coef=0.2, ent_coef=0.0,
                                  normalize_obs=True, normalize_reward=True)


#: plain PPO on Atari (the teacher): CleanRL's ppo_atari.py settings (8 envs x 128 steps, 4 epochs of 4
#: minibatches, lr 2.5e-4 annealed, clip 0.1, entropy 0.01, GAE 0.95, rewards clipped to their sign, the
#: value loss clipped, a lost life terminal for the advantages), the whole Nature-CNN with a value head on
#: its trunk, on the PPMO presets' episodes (at most 3000 agent steps, sticky actions) and raw frames in [0, 1]
ATARI_PPO: dict[str, Any] = dict(env_kwargs={"max_episode_steps": ATARI_EPISODE_STEPS}, num_envs=8, num_steps=128,
                                 update_epochs=4, minibatch_size=256, lr=2.5e-4, anneal_lr=True, clip_coef=0.1,
                                 ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, clip_rewards=True, clip_vloss=True,
                                 life_loss_terminal=True)


def _pool() -> tuple[LearnerSpec, ...]:
    return tuple(named(POOL).values())


@dataclass(frozen=True)
class Preset:
    """A preset's name parsed once (:func:`parse_preset`): its family and what the name fixes."""

    name: str
    family: str  # cartpole, cartpole-fast, mujoco, atari, discrete, continuous
    dof: int | None = None  # N of an N-D cart-pole
    size: int | None = None  # B, where the name fixes it (cartpole-nd{N}-b{B})
    inits: int | None = None  # K, where the name fixes it (cartpole-nd{N}-k{K})
    pool: bool = False  # learners drawn from the architecture pool (cartpole-nd{N}-pool)
    task: str | None = None  # a MuJoCo task's gymnasium id
    game: str | None = None  # an Atari game's name
    split: int | None = None  # the Nature-CNN's split l


def _cartpole(p: Preset) -> PPMOConfig:
    if p.dof not in CARTPOLE_DOFS:
        raise ValueError(f"cart-pole presets have N in {CARTPOLE_DOFS}, got {p.dof}")
    kw: dict[str, Any] = dict(CARTPOLE, env_kwargs={"dof": p.dof})
    if p.size is not None:
        kw["size"] = p.size
    if p.inits is not None:
        kw["inits_per_epoch"] = p.inits
    if p.pool:
        kw["learner_pool"] = _pool()
    return PPMOConfig(**kw)


#: beyond the paper, off by default: cart-pole settings that solve sooner (4x the dataset's Adam lr,
#: rollouts of 10 envs x 100 steps; benchmarks/bench_time_to_solve.py measures them)
CARTPOLE_FAST = {"dataset_lr": 1e-3, "num_steps": 100}


def _cartpole_fast(p: Preset) -> PPMOConfig:
    return PPMOConfig(**{**CARTPOLE, **CARTPOLE_FAST, "env_kwargs": {"dof": int(_cartpole(p).env_kwargs["dof"])}})


def _mujoco(p: Preset) -> PPMOConfig:
    return PPMOConfig(env_id=p.task, **{**MUJOCO, **MUJOCO_TASK.get(p.task, {})})


def _atari(p: Preset) -> PPMOConfig:
    return PPMOConfig(env_id=atari_id(p.game), env_kwargs={"max_episode_steps": ATARI_EPISODE_STEPS},
                      size=ATARI_SIZES[p.game], learner=atari_learner(p.split), **ATARI)


_TASKS = "|".join(re.escape(t) for t in MUJOCO_TASKS)
_GAMES = "|".join(ATARI_GAMES)
#: (name, pattern, builder, description); a pattern's groups are :class:`Preset`'s fields
FAMILIES: tuple[tuple[str, str, Callable[[Preset], PPMOConfig], str], ...] = (
    ("cartpole-nd{N}", r"cartpole-nd(?P<dof>\d+)", _cartpole, "N-D cart-pole, B = 512 (Table 1)"),
    ("cartpole-nd{N}-b{B}", r"cartpole-nd(?P<dof>\d+)-b(?P<size>\d+)", _cartpole, "N-D cart-pole at size B"),
    ("cartpole-nd{N}-k{K}", r"cartpole-nd(?P<dof>\d+)-k(?P<inits>\d+)", _cartpole, "K learner inits per meta-epoch"),
    ("cartpole-nd{N}-pool", r"cartpole-nd(?P<dof>\d+)-(?P<pool>pool)", _cartpole, "learners from the architecture pool"),
    ("cartpole-fast-nd{N}", r"cartpole-fast-nd(?P<dof>\d+)", _cartpole_fast,
     "beyond the paper: N-D cart-pole, B = 512, dataset lr 1e-3 and 10 x 100-step rollouts (solves sooner)"),
    ("mujoco-{task}", rf"mujoco-(?P<task>{_TASKS})", _mujoco, "a MuJoCo v5 task, B = 64, Gaussian learner"),
    ("atari-{game}-l{l}", rf"atari-(?P<game>{_GAMES})-l(?P<split>[0-4])", _atari, "an Atari game, Nature-CNN split at l"),
    ("discrete", r"discrete", lambda p: PPMOConfig(**CARTPOLE), "cart-pole's settings, for --env"),
    ("continuous", r"continuous", lambda p: PPMOConfig(env_id="Pendulum-v1", **MUJOCO), "MuJoCo's settings, for --env"),
)

_INT_FIELDS = ("dof", "size", "inits", "split")


def parse_preset(name: str) -> Preset:
    """``name`` parsed (the one place preset names are read); a ``ValueError`` naming the known
    families for an unknown name."""
    for family, pattern, _, _ in FAMILIES:
        m = re.fullmatch(pattern, name)
        if m:
            fields: dict[str, Any] = {k: v for k, v in m.groupdict().items() if v is not None}
            fields.update({k: int(fields[k]) for k in _INT_FIELDS if k in fields})
            if "pool" in fields:
                fields["pool"] = True
            return Preset(name, family.split("-nd")[0].split("-{")[0], **fields)  # the name before its values
    raise ValueError(f"unknown preset {name!r} (families: "
                     f"{', '.join(f for f, _, _, _ in FAMILIES)}; python -m paper_code presets lists them)")


#: the meta-epochs a preset's run takes unless told otherwise (``distill --meta-epochs``): per family,
#: the longest budget of its paper-scale runs (params.yaml ``paper``: cart-pole 6,000; MuJoCo up to
#: 3,000; Atari 1,000 at CPU scale) and 1,000 for a task of your own (``discrete``, ``continuous``:
#: minutes on one core for classic-control tasks); a stop rule (``--stop-at``) may end a run sooner
BUDGETS: dict[str, int] = {"cartpole": 6000, "cartpole-fast": 6000, "mujoco": 3000, "atari": 1000, "discrete": 1000,
                           "continuous": 1000}


def meta_epoch_budget(preset: str) -> int:
    """The meta-epochs a run of ``preset`` takes unless told otherwise (:data:`BUDGETS`, by family)."""
    resolve(preset)  # an unknown name or an impossible one: the one clear error
    return BUDGETS[parse_preset(preset).family]


def preset_names() -> list[str]:
    """Every preset the notebooks use, by family (families with {B} or {K} accept any value)."""
    names = [f"cartpole-nd{n}" for n in CARTPOLE_DOFS]
    names += [f"cartpole-nd{n}-b{b}" for n in CARTPOLE_DOFS for b in range(1, 2 * n + 2)]
    names += ["cartpole-nd1-k1", "cartpole-nd1-k4"] + [f"cartpole-nd{n}-pool" for n in CARTPOLE_DOFS]
    names += [f"mujoco-{t}" for t in MUJOCO_TASKS]
    names += [f"atari-{g}-l{l}" for g in ATARI_GAMES for l in range(5)]
    return names + ["discrete", "continuous"]


def resolve(name: str, **overrides: Any) -> PPMOConfig:
    """The configuration named ``name`` with ``overrides`` (field -> value) applied and checked;
    a ``ValueError`` naming the known families for an unknown name or field."""
    p = parse_preset(name)
    base = next(build for _, pattern, build, _ in FAMILIES if re.fullmatch(pattern, name))(p)
    unknown = sorted(set(overrides) - set(base.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)} for preset {name!r}")
    return replace(base, **overrides) if overrides else base


def preset_for_env(env_id: str, *, dof: int | None = None, split: int | None = None) -> str:
    """The preset an ``--env`` id without ``--preset`` starts from: N-D cart-pole's (``dof``), a
    MuJoCo task's, an Atari game's at ``split``, else ``discrete`` or ``continuous`` by the
    task's action space."""
    if env_id == ND_CARTPOLE_ID:
        return f"cartpole-nd{dof if dof in CARTPOLE_DOFS else 1}"  # other N: cartpole-nd1 with env_kwargs dof = N
    if env_id in MUJOCO_TASKS:
        return f"mujoco-{env_id}"
    game = env_id.removeprefix("ALE/").removesuffix("-v5")
    if env_id.startswith("ALE/") and game in ATARI_SIZES:
        return f"atari-{game}-l{split if split in range(5) else 4}"  # another split: refused by its learner
    if env_id.startswith("ALE/"):
        raise ValueError(f"unknown or unsupported Atari game {env_id!r} (supported: "
                         f"{', '.join(atari_id(g) for g in ATARI_SIZES)})")
    return "continuous" if action_space_kind(env_id) == "continuous" else "discrete"


def resolve_ppo(name: str, **overrides: Any) -> PPOConfig:
    """The plain PPO baseline (a teacher for ``compress``) beside a distillation preset:
    ``cartpole-nd{N}`` (CleanRL's ppo.py settings, the paper's network), ``mujoco-{task}``
    (ppo_continuous_action.py's) or ``atari-{game}`` (ppo_atari.py's, :data:`ATARI_PPO`)."""
    game = re.fullmatch(rf"atari-({_GAMES})", name)  # a game without a split: the teacher has none
    try:
        p = parse_preset(f"{name}-l0" if game else name)
    except ValueError:
        p = None
    if p is not None and p.family == "cartpole" and p.size is p.inits is None and not p.pool:
        return PPOConfig(**{"env_kwargs": {"dof": p.dof}, **overrides})
    if p is not None and p.family == "mujoco":
        return PPOConfig(**{"env_id": p.task, **MUJOCO_PPO, **overrides})
    if p is not None and p.family == "atari":
        return PPOConfig(**{"env_id": atari_id(p.game), **ATARI_PPO, "learner": atari_learner(0), **overrides})
    if name in ("discrete", "continuous") and "env_id" in overrides:  # any other task: by its action space
        base = {"env_kwargs": {}} if name == "discrete" else MUJOCO_PPO
        return PPOConfig(**{**base, **overrides})
    raise ValueError(f"no PPO baseline preset {name!r} (known: cartpole-nd{{N}}, mujoco-{{task}}, atari-{{game}}, "
                     f"and discrete / continuous with an env_id)")


def finetune_config(dataset: str | Path, seed: int, **overrides: Any) -> PPMOConfig:
    """The PPMO run that continues from a fitted dataset: the environment's preset with its B, the
    given seed and ``init_dataset`` (``overrides`` as in :func:`~paper_code.pipeline.presets.resolve`)."""
    ds = DistilledDataset.load(dataset)
    split = ds.learner.split if ds.learner.kind == "nature_cnn" else None
    preset = preset_for_env(ds.env_id, dof=ds.env_kwargs.get("dof"), split=split)
    kwargs: dict[str, Any] = {"size": ds.size, "seed": seed, "init_dataset": str(dataset)}
    base = resolve(preset)
    if ds.normalization is None and base.normalize_obs:  # e.g. a fit to a raw-frame Atari teacher
        kwargs["normalize_obs"] = False
    if ds.env_id == ND_CARTPOLE_ID or ds.env_kwargs != base.env_kwargs:
        kwargs["env_kwargs"] = dict(ds.env_kwargs)
    scale = float((ds.normalization or {}).get("scale", 1.0))
    if ds.normalization is not None and scale != base.obs_scale:  # a fit in its own coordinates
        kwargs["obs_scale"] = scale
    bound = ds.provenance.get("state_bound")
    if bound is not None and bound != base.state_bound:
        kwargs["state_bound"] = float(bound)
    if ds.learner != base.learner:  # a fit for another student (compress --student fourier) fine-tunes for it
        kwargs["learner"] = ds.learner
    return resolve(preset, **{**kwargs, **overrides})
