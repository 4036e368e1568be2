"""Distillation from a teacher: fit a small dataset so that its one-step learners act like a teacher.

For fresh learner inits θ0 (K per step, vmapped), the one-step learner θ1 = θ0 − lr ∇MSE(f(θ0, x), y)
is compared with a teacher on real states the teacher visits: the loss is KL(teacher ‖ student)
averaged over states and inits, differentiated through the one SGD step into the states ``x``, the
labels ``y`` and log lr (Adam). No environment interaction happens during the fit; the teacher's
states are collected once, before it.

A teacher is either a **dataset file** — its own one-step learner for the *same* θ0 is the teacher,
so a large dataset is compressed into a small one — or a **policy file** in the PPO baselines'
format (``results/*/baselines/ppo_*.safetensors``: the actor's tensors, ``__obs_mean``/``__obs_var``
when it normalised observations, and its configuration as metadata). A normalising teacher's frozen
observation statistics become the student dataset's; the student's states live in the coordinates of
the environment's PPMO preset (its ``obs_scale``, and ``state_bound`` clamps them), so that PPMO can
continue from the fitted dataset (``finetune``: :func:`paper_code.pipeline.experiments.compress_run`,
``PPMOConfig.init_dataset``).

:class:`Compression` is one fit's complete state (checkpointed; a resumed fit equals an
uninterrupted one); :func:`paper_code.runs.training.compress_file` runs it to a file with the
lifecycle every training run has (:mod:`paper_code.runs.lifecycle`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from paper_code.core.dataset import DatasetError, DistilledDataset, git_revision, movement, read_safetensors
from paper_code.core.inner import inner_step_batch
from paper_code.core.learners import (LearnerSpec, atari_learner, batched_forward, cnn_forward, forward, fourier_learner,
                                     init_params_batch)
from paper_code.core.observations import NORM_CLIP, NORM_EPS, prepare
from paper_code.core.policies import head, sample
from paper_code.core.settings import CompressConfig, PPMOConfig, fit_settings
from paper_code.envs import make_env
from paper_code.files import CheckpointError, not_a_file
from paper_code.pipeline.presets import preset_for_env, resolve  # a student's coordinates: its PPMO preset's
from paper_code.project import relative

Params = dict[str, torch.Tensor]
#: a Fourier student's starting inner lr (its features' inner products are ~W / 2: the MLP students' 1 overshoots)
FOURIER_INIT_LR = 0.01
METHOD = "compression: KL(teacher || one-step learner) on the teacher's visited states"


@dataclass
class Teacher:
    """What the student learns from: the environment, the student's learner, and the teacher's
    outputs on real observations for a stack of learner inits."""

    kind: str  # "dataset" | "policy"
    env_id: str
    env_kwargs: dict[str, Any]
    learner: LearnerSpec  # the student's learner (and a dataset teacher's)
    outputs: Callable[[Params | None, torch.Tensor], torch.Tensor]  # (θ0 stack or None, obs [K or 1, n, obs]) -> [K or 1, n, A]
    log_std: Callable[[Params | None], torch.Tensor | None]  # Gaussian teachers: [K or 1, A]
    lr: float  # the student's initial inner lr
    obs_mean: torch.Tensor | None = None
    obs_var: torch.Tensor | None = None
    scale: float = 1.0  # the teacher's normalised-observation scale (a dataset teacher's normalization scale)
    source: str = ""
    sha256: str = ""
    cost: dict[str, Any] | None = None  # what making the teacher cost (env steps, wall time), where recorded
    params: Params | None = None  # a policy teacher's actor (a Nature-CNN teacher's layers start the student's encoder)
    one_step: Callable[[Params], Params] | None = None  # a dataset teacher's one-step learners θ0 -> θ1 (outputs and
    # log_std step them on every call; an episode of fixed learners steps them once with this)

    @property
    def gaussian(self) -> bool:
        return self.learner.policy == "gaussian"

    def prepare(self, obs: torch.Tensor) -> torch.Tensor:
        """Real observations as the teacher sees them."""
        return prepare(obs, self.obs_mean, self.obs_var, scale=self.scale)


def _shown(path: Path) -> str:
    """``path`` relative to the project when inside one (portable provenance), else as given."""
    try:
        return relative(path)
    except (ValueError, OSError):  # outside any project
        return str(path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_teacher(path: str | Path) -> Teacher:
    """A dataset file or a PPO policy file as a :class:`Teacher` (``DatasetError``: neither)."""
    path = Path(path)
    why = not_a_file(path)
    if why is not None:
        raise (FileNotFoundError if not path.exists() else DatasetError)(why)
    meta, tensors = read_safetensors(path)  # read once: a policy file, else a dataset file
    if "key" in meta and "states" not in tensors:
        return _policy_teacher(path, meta, tensors)
    ds = DistilledDataset.from_contents(path, meta, tensors)
    if ds.learner.kind != "mlp":
        raise DatasetError(f"{path}: a dataset teacher must have an MLP learner (cart-pole, MuJoCo), not "
                           f"{ds.learner.kind}; an Atari set is compressed from its PPO teacher (python -m paper_code ppo)")
    x, y, t_lr = ds.features(ds.states), ds.labels, ds.lr.reshape(())
    t_log_std = ds.log_std

    def one_step(theta0: Params) -> Params:
        return inner_step_batch(theta0, x, y, t_lr, ds.learner.activation, t_log_std)

    def outputs(theta0: Params | None, s: torch.Tensor) -> torch.Tensor:
        return batched_forward(one_step(theta0), s.expand(theta0_count(theta0), *s.shape[1:]), ds.learner.activation)

    def log_std(theta0: Params | None) -> torch.Tensor | None:
        return None if t_log_std is None else one_step(theta0)["log_std"]

    norm = ds.normalization or {}
    if norm and (norm.get("clip", NORM_CLIP) != NORM_CLIP or norm.get("eps", NORM_EPS) != NORM_EPS):
        raise DatasetError(f"{path}: compression keeps the default normalisation (clip {NORM_CLIP}, eps {NORM_EPS})")
    cost = {k: ds.provenance[k] for k in ("env_steps", "wall_time_s", "meta_epochs") if k in ds.provenance}
    return Teacher("dataset", ds.env_id, dict(ds.env_kwargs), ds.learner, outputs, log_std, float(ds.lr),
                   ds.extra.get("obs_mean"), ds.extra.get("obs_var"), float(norm.get("scale", 1.0)),
                   source=_shown(path), sha256=_sha256(path), cost=cost, one_step=one_step)


def _policy_teacher(path: Path, meta: dict[str, str], tensors: dict[str, torch.Tensor]) -> Teacher:
    try:
        key = json.loads(meta["key"])
        cfg = key["config"]
        learner = LearnerSpec(**{k: tuple(v) if k == "hidden" else v for k, v in cfg["learner"].items()})
        env_id, env_kwargs = cfg["env_id"], dict(cfg.get("env_kwargs") or {})
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{path}: a policy file without a readable configuration ({e})") from None
    obs_mean, obs_var = tensors.pop("__obs_mean", None), tensors.pop("__obs_var", None)
    actor = {k: v.float() for k, v in tensors.items() if not k.startswith("__")}
    if "log_std" in actor and learner.policy != "gaussian":  # files written before the policy field: by the params
        learner = LearnerSpec(**{**learner.__dict__, "policy": "gaussian"})
    if any(not torch.isfinite(v).all() for v in actor.values()):
        raise DatasetError(f"{path}: the policy's parameters are not finite")

    def outputs(theta0: Params | None, s: torch.Tensor) -> torch.Tensor:
        return forward({k: v for k, v in actor.items() if k != "log_std"}, s, learner.activation)

    def log_std(theta0: Params | None) -> torch.Tensor | None:
        ls = actor.get("log_std")
        return None if ls is None else ls.reshape(1, -1)

    cost = {"env_steps": key["total_env_steps"]} if "total_env_steps" in key else None
    if cost is not None and "wall_time_s" in meta:  # written by `python -m paper_code ppo`
        cost = {**cost, "env_steps": int(meta.get("env_steps", cost["env_steps"])), "wall_time_s": float(meta["wall_time_s"])}
    return Teacher("policy", env_id, env_kwargs, learner, outputs, log_std, 1.0,
                   obs_mean, obs_var, source=_shown(path), sha256=_sha256(path), cost=cost, params=actor)


def theta0_count(theta0: Params | None) -> int:
    return 1 if theta0 is None else next(iter(theta0.values())).shape[0]


@torch.no_grad()
def visited_states(teacher: Teacher, count: int, *, seed: int, num_envs: int = 64, raw: bool = False) -> torch.Tensor:
    """``count`` real observations (as the teacher sees them; ``raw``: as the environment gives them,
    e.g. uint8 frames, 4x smaller) from episodes of the teacher acting with sampled actions (a dataset
    teacher acts as one fresh one-step learner per env)."""
    env = make_env(teacher.env_id, num_envs, seed=seed, check_actions=False, **teacher.env_kwargs)
    g = torch.Generator().manual_seed(seed)
    theta0 = init_params_batch(teacher.learner, env.observation_size, env.num_actions, num_envs, g) \
        if teacher.kind == "dataset" else None
    theta1: Params | None = None  # a dataset teacher's learners after their step, taken once (they stay fixed)
    act = teacher.learner.activation
    dist = head(teacher.learner.policy)
    obs = env.reset(seed=seed)
    out: list[torch.Tensor] = []
    for i in range(math.ceil(count / num_envs)):
        try:  # the first step also checks that the teacher fits its environment's observations and actions
            s = teacher.prepare(obs)
            if theta0 is not None and teacher.one_step is not None:  # env i acts with learner i
                theta1 = teacher.one_step(theta0) if theta1 is None else theta1
                o = batched_forward(theta1, s[:, None, :], act)
            else:
                o = teacher.outputs(theta0, s[:, None, :] if theta0 is not None else s[None])
            o = o[:, 0] if theta0 is not None else o[0]
            if o.shape[-1] != env.num_actions:
                raise IndexError(f"{o.shape[-1]} outputs per state")
        except (RuntimeError, IndexError) as e:
            if i:
                raise
            raise DatasetError(f"{teacher.source}: the teacher does not fit {teacher.env_id} (observations of shape "
                               f"{tuple(env.observation_shape)}, {env.num_actions} actions): "
                               f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        out.append(obs.clone() if raw else s)
        ls = theta1.get("log_std") if theta1 is not None else teacher.log_std(theta0)
        action = sample(dist, o, g, None if ls is None else (ls if theta0 is not None else ls[0]))
        obs = env.step(action).obs
    if hasattr(env, "close"):
        env.close()
    return torch.cat(out)[:count]


def kl_divergence(teacher: torch.Tensor, student: torch.Tensor, t_log_std: torch.Tensor | None = None,
                  s_log_std: torch.Tensor | None = None) -> torch.Tensor:
    """Mean KL(teacher ‖ student): categorical over logits [..., A], or diagonal Gaussians with
    means [K, n, A] and log-stds [K, A] (summed over action dimensions)."""
    if t_log_std is None:
        return (F.softmax(teacher, -1) * (F.log_softmax(teacher, -1) - F.log_softmax(student, -1))).sum(-1).mean()
    tl, sl = t_log_std[:, None, :], s_log_std[:, None, :]
    kl = sl - tl + (torch.exp(2 * tl) + (teacher - student) ** 2) / (2 * torch.exp(2 * sl)) - 0.5
    return kl.sum(-1).mean()


def student_coordinates(teacher: Teacher, cfg: CompressConfig | None = None) -> tuple[float, float | None]:
    """The student's ``(obs_scale, state_bound)``: for a policy teacher the environment's PPMO preset's
    unless ``cfg`` sets them (the fine-tune follows the fitted set), the teacher's own scale for a dataset
    teacher."""
    preset = resolve(preset_for_env(teacher.env_id, dof=teacher.env_kwargs.get("dof")))
    scale_set = cfg is not None and cfg.obs_scale is not None
    bound = preset.state_bound if cfg is None or cfg.state_bound is None else cfg.state_bound
    if teacher.kind == "dataset":
        if scale_set or (cfg is not None and cfg.state_bound is not None):
            raise ValueError("obs_scale and state_bound apply to a policy teacher; a dataset teacher's student keeps "
                             "the teacher's coordinates")
        return teacher.scale, preset.state_bound
    if teacher.obs_mean is None:
        if scale_set:
            raise ValueError(f"obs_scale scales normalised observations: the teacher {teacher.source} does not normalise")
        return 1.0, bound
    return (cfg.obs_scale if scale_set else preset.obs_scale), bound


class Compression:
    """One fit's complete state: the dataset tensors, Adam, the random stream, the step count and
    the history. ``step()`` is one Adam step; ``dataset()`` the current dataset."""

    def __init__(self, teacher: Teacher, cfg: CompressConfig) -> None:
        if cfg.student == "fourier":  # the student's learner replaces the teacher's (a policy's outputs do not use θ0)
            if teacher.kind != "policy":
                raise ValueError("`student` fourier needs a policy teacher (a dataset teacher's learner is the student's)")
            teacher = replace(teacher, learner=fourier_learner(teacher.learner, cfg.student_width, cfg.student_sigma),
                              lr=FOURIER_INIT_LR)
        self.teacher, self.cfg = teacher, cfg
        self.obs_scale, self.state_bound = student_coordinates(teacher, cfg)
        t0 = time.perf_counter()
        self.pool = visited_states(teacher, cfg.pool, seed=cfg.seed) * (self.obs_scale / teacher.scale)
        self.collect_s = time.perf_counter() - t0
        probe = make_env(teacher.env_id, 1, **teacher.env_kwargs)
        self.num_actions = probe.num_actions
        if hasattr(probe, "close"):
            probe.close()
        self.g = torch.Generator().manual_seed(cfg.seed)
        x = self.pool[torch.randperm(len(self.pool), generator=self.g)[:cfg.size]].clone()
        if len(x) < cfg.size:  # a pool smaller than B: repeat it
            x = x.repeat(math.ceil(cfg.size / len(x)), 1)[:cfg.size].clone()
        if self.state_bound is not None:
            x.clamp_(-self.state_bound, self.state_bound)
        self.x = x.requires_grad_(True)
        self.y = torch.zeros(cfg.size, self.num_actions, requires_grad=True)
        self.log_lr = torch.tensor(math.log(teacher.lr if cfg.init_lr is None else cfg.init_lr), requires_grad=True)
        self.params = [self.x, self.y, self.log_lr]
        self.log_std_target = None
        if teacher.gaussian:
            self.log_std_target = torch.full((self.num_actions,), float(teacher.learner.init_log_std), requires_grad=True)
            self.params.append(self.log_std_target)
        self.opt = torch.optim.Adam(self.params, lr=cfg.adam_lr)
        self.initial = {k: v.detach().clone() for k, v in self._movable().items()}
        self.step_count = 0
        self.wall_time = 0.0
        self.history: list[dict[str, float]] = []
        self.dagger: list[torch.Tensor] = []  # the states each DAgger round added to the pool

    # ------------------------------------------------------------------------------ DAgger-style states
    def _student(self) -> Teacher:
        """The current set as a dataset teacher (fresh one-step learners acting on the student's
        observations), to collect the states the learners themselves visit."""
        x, y, lr = self.x.detach().clone(), self.y.detach().clone(), self.log_lr.detach().exp()
        ls = None if self.log_std_target is None else self.log_std_target.detach().clone()
        act = self.teacher.learner.activation

        def one_step(theta0: Params) -> Params:
            return inner_step_batch(theta0, x, y, lr, act, ls)

        def outputs(theta0: Params | None, s: torch.Tensor) -> torch.Tensor:
            return batched_forward(one_step(theta0), s.expand(theta0_count(theta0), *s.shape[1:]), act)

        def log_std(theta0: Params | None) -> torch.Tensor | None:
            return None if ls is None else one_step(theta0)["log_std"]

        return replace(self.teacher, kind="dataset", outputs=outputs, log_std=log_std, scale=self.obs_scale,
                       one_step=one_step)

    def _dagger_due(self) -> bool:
        """Round k of ``cfg.dagger_rounds`` runs once the fit has made k / (rounds + 1) of its steps."""
        k = len(self.dagger) + 1
        return k <= self.cfg.dagger_rounds and self.step_count >= k * self.cfg.steps / (self.cfg.dagger_rounds + 1)

    def _dagger_round(self) -> None:
        t0 = time.perf_counter()
        seed = self.cfg.seed + 1_000_003 * (len(self.dagger) + 1)  # its own episodes and learner inits per round
        added = visited_states(self._student(), self.cfg.dagger_states, seed=seed)  # the student's coordinates
        self.dagger.append(added)
        self.pool = torch.cat([self.pool, added])
        self.collect_s += time.perf_counter() - t0

    def step(self) -> dict[str, float]:
        cfg, spec, teacher = self.cfg, self.teacher.learner, self.teacher
        if self._dagger_due():
            self._dagger_round()
        t0 = time.perf_counter()
        theta0 = init_params_batch(spec, self.pool.shape[1], self.num_actions, cfg.inits, self.g)
        s = self.pool[torch.randint(len(self.pool), (cfg.batch_states,), generator=self.g)]
        theta1 = inner_step_batch(theta0, self.x, self.y, self.log_lr.exp(), spec.activation, self.log_std_target)
        student = batched_forward(theta1, s.expand(cfg.inits, *s.shape), spec.activation)
        with torch.no_grad():
            t_out = teacher.outputs(theta0, s[None] * (teacher.scale / self.obs_scale))
            t_ls = teacher.log_std(theta0)
        if t_out.shape[0] == 1 and cfg.inits > 1:
            t_out = t_out.expand(cfg.inits, *t_out.shape[1:])
            t_ls = None if t_ls is None else t_ls.expand(cfg.inits, -1)
        loss = kl_divergence(t_out, student, t_ls, theta1.get("log_std"))
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        if self.state_bound is not None:
            with torch.no_grad():
                self.x.clamp_(-self.state_bound, self.state_bound)
        self.step_count += 1
        self.wall_time += time.perf_counter() - t0
        row = {"step": self.step_count, "kl": float(loss.detach()), "lr": float(self.log_lr.detach().exp()),
               "wall_time_s": self.wall_time}
        self.history.append(row)
        return row

    def _movable(self) -> dict[str, torch.Tensor]:
        out = {"states": self.x, "labels": self.y, "log_lr": self.log_lr}
        out.update({f"encoder.{k}": v for k, v in getattr(self, "encoder", {}).items()})
        return out

    def dataset(self) -> DistilledDataset:
        teacher, cfg = self.teacher, self.cfg
        extra: dict[str, torch.Tensor] = {}
        normalization = None
        if self.log_std_target is not None:
            extra["log_std"] = self.log_std_target.detach().clone()
        if teacher.obs_mean is not None:
            extra["obs_mean"], extra["obs_var"] = teacher.obs_mean.float().clone(), teacher.obs_var.float().clone()
            normalization = {"kind": "running_mean_std", "clip": NORM_CLIP, "eps": NORM_EPS}
            if self.obs_scale != 1.0:
                normalization["scale"] = self.obs_scale
        provenance = {"method": METHOD, "teacher": teacher.source, "teacher_kind": teacher.kind,
                      "teacher_sha256": teacher.sha256, "teacher_cost": teacher.cost, "settings": cfg.to_dict(),
                      "obs_scale": self.obs_scale, "state_bound": self.state_bound, "steps": self.step_count,
                      "final_kl": self.history[-1]["kl"] if self.history else None, "meta_epochs": 0,
                      "env_steps": len(self.pool), "collect_s": round(self.collect_s, 3),
                      **({"dagger_states_added": sum(len(d) for d in self.dagger)} if self.dagger else {}),
                      "wall_time_s": round(self.wall_time + self.collect_s, 3), "git_revision": git_revision(),
                      "torch": torch.__version__, "movement": movement(self.initial, self._movable())}
        return DistilledDataset(states=self.x.detach().clone(), labels=self.y.detach().clone(),
                                lr=self.log_lr.detach().exp(), env_id=teacher.env_id, env_kwargs=dict(teacher.env_kwargs),
                                learner=teacher.learner, label_kind="gaussian_mse" if teacher.gaussian else "logits_mse",
                                provenance=provenance, extra=extra, normalization=normalization)

    # ------------------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"kind": "compression", "config": self.cfg.to_dict(), "teacher_sha256": self.teacher.sha256,
                "step": self.step_count, "wall_time": self.wall_time, "collect_s": self.collect_s,
                "params": [p.detach().clone() for p in self.params], "opt": self.opt.state_dict(),
                "rng": self.g.get_state(), "history": list(self.history),
                **({"dagger": [d.clone() for d in self.dagger]} if self.dagger else {})}

    def load_state_dict(self, sd: dict[str, Any], where: str) -> None:
        if sd.get("kind") != "compression":
            raise CheckpointError(f"{where}: not a compression checkpoint")
        if not isinstance(sd.get("config"), dict) or fit_settings(sd["config"]) != fit_settings(self.cfg.to_dict()):
            raise CheckpointError(f"{where}: made with other settings ({sd.get('config')}); start over with force=True")
        if sd.get("teacher_sha256") != self.teacher.sha256:
            raise CheckpointError(f"{where}: made with another teacher file (its contents changed); start over with force=True")
        params = sd.get("params")
        if not isinstance(params, list) or len(params) != len(self.params) or any(
                not isinstance(a, torch.Tensor) or a.shape != b.shape or not torch.isfinite(a).all()
                for a, b in zip(params, self.params)):
            raise CheckpointError(f"{where}: damaged (the dataset tensors do not match the settings)")
        try:
            with torch.no_grad():
                for p, v in zip(self.params, params):
                    p.copy_(v)
            self.opt.load_state_dict(sd["opt"])
            self.g.set_state(sd["rng"])
            self.step_count, self.wall_time = int(sd["step"]), float(sd["wall_time"])
            self.collect_s = float(sd["collect_s"])
            self.history = [dict(r) for r in sd["history"]]
            dagger = sd.get("dagger", [])
            if not isinstance(dagger, list) or len(dagger) > self.cfg.dagger_rounds or any(
                    not isinstance(d, torch.Tensor) or d.shape[1:] != self.pool.shape[1:] for d in dagger):
                raise ValueError("dagger")
            self.dagger = [d.clone() for d in dagger]
            self.pool = torch.cat([self.pool, *self.dagger])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{where}: damaged ({type(e).__name__})") from None
        if len(self.history) != self.step_count:
            raise CheckpointError(f"{where}: damaged (history of {len(self.history)} steps at step {self.step_count})")


class FrameCompression(Compression):
    """:class:`Compression` for a Nature-CNN policy teacher (Atari): image-space instances ``x`` [B, 4,
    84, 84] (frames on the [0, 1] scale, kept there), labels, the inner lr and the student's persistent
    encoder (layers c0 .. c{l-1}, started from the teacher's and fitted with the dataset at
    ``cfg.encoder_lr``; 0 keeps the teacher's). Fresh learners of layers l..4 take one step on
    ``encoder(x)``; the KL to the teacher's policy is taken on the teacher's visited frames, whose
    teacher outputs are computed once."""

    def __init__(self, teacher: Teacher, cfg: CompressConfig) -> None:
        if teacher.kind != "policy" or teacher.params is None or teacher.obs_mean is not None:
            raise DatasetError(f"{teacher.source}: a Nature-CNN student needs a PPO policy teacher on raw frames")
        if cfg.dagger_rounds:
            raise ValueError("dagger_rounds applies to MLP students (cart-pole, MuJoCo, your own task), not to Atari")
        if cfg.student != "teacher":
            raise ValueError(f"`student` {cfg.student} applies to MLP policy teachers, not to Atari")
        self.teacher, self.cfg = teacher, cfg
        self.split = 4 if cfg.split is None else cfg.split
        self.spec = atari_learner(self.split)  # the Atari presets' learner at this split
        if cfg.obs_scale is not None or cfg.state_bound is not None:
            raise ValueError("obs_scale and state_bound apply to MLP students, not to Atari")
        self.obs_scale, self.state_bound = 1.0, None
        t0 = time.perf_counter()
        self.pool = visited_states(teacher, cfg.pool, seed=cfg.seed, num_envs=8, raw=True)  # uint8 frames
        self.obs_shape = tuple(self.pool.shape[1:])
        with torch.no_grad():
            self.targets = torch.cat([teacher.outputs(None, prepare(chunk)[None])[0] for chunk in self.pool.split(512)])
        self.collect_s = time.perf_counter() - t0
        self.num_actions = self.targets.shape[1]
        self.g = torch.Generator().manual_seed(cfg.seed)
        idx = torch.randperm(len(self.pool), generator=self.g)[:cfg.size]
        x = prepare(self.pool[idx]).contiguous()
        if len(x) < cfg.size:
            x = x.repeat(math.ceil(cfg.size / len(x)), 1, 1, 1)[:cfg.size].contiguous()
        self.x = x.requires_grad_(True)
        self.y = torch.zeros(cfg.size, self.num_actions, requires_grad=True)
        init_lr = cfg.init_lr if cfg.init_lr is not None else PPMOConfig().init_inner_lr  # as the Atari presets start
        self.log_lr = torch.tensor(math.log(init_lr), requires_grad=True)
        self.encoder = {f"c{i}.{p}": teacher.params[f"c{i}.{p}"].detach().clone().requires_grad_(cfg.encoder_lr > 0)
                        for i in range(self.split) for p in ("weight", "bias")}
        self.params = [self.x, self.y, self.log_lr, *self.encoder.values()]
        groups = [{"params": [self.x, self.y, self.log_lr], "lr": cfg.adam_lr}]
        if cfg.encoder_lr > 0 and self.encoder:
            groups.append({"params": list(self.encoder.values()), "lr": cfg.encoder_lr})
        self.opt = torch.optim.Adam(groups)
        self.initial = {k: v.detach().clone() for k, v in self._movable().items()}
        self.log_std_target = None
        self.step_count = 0
        self.wall_time = 0.0
        self.history = []
        self.dagger = []

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return cnn_forward(self.encoder, x) if self.encoder else x

    def step(self) -> dict[str, float]:
        cfg = self.cfg
        t0 = time.perf_counter()
        theta0 = init_params_batch(self.spec, self.obs_shape, self.num_actions, cfg.inits, self.g)
        idx = torch.randint(len(self.pool), (cfg.batch_states,), generator=self.g)
        s = self.features(prepare(self.pool[idx]))
        theta1 = inner_step_batch(theta0, self.features(self.x), self.y, self.log_lr.exp(), "relu")
        student = batched_forward(theta1, s.expand(cfg.inits, *s.shape), "relu")
        t_out = self.targets[idx]
        loss = kl_divergence(t_out.expand(cfg.inits, *t_out.shape), student)
        with torch.no_grad():
            agree = (student.argmax(-1) == t_out.argmax(-1)).float().mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.x.clamp_(0.0, 1.0)  # images: the pixel range
        self.step_count += 1
        self.wall_time += time.perf_counter() - t0
        row = {"step": self.step_count, "kl": float(loss.detach()), "lr": float(self.log_lr.detach().exp()),
               "agreement": float(agree), "wall_time_s": self.wall_time}
        self.history.append(row)
        return row

    def dataset(self) -> DistilledDataset:
        ds = super().dataset()
        ds.learner = self.spec
        ds.extra = {f"encoder.{k}": v.detach().clone() for k, v in self.encoder.items()}
        ds.provenance = {**ds.provenance, "split": self.split}
        ds.validate()
        return ds


@dataclass
class FinishedFit:
    """A finished fit as its checkpoint records it (what :func:`compress_file` returns when there is
    nothing to do; the attributes callers read of a :class:`Compression`)."""

    teacher: Teacher
    cfg: CompressConfig
    step_count: int
    wall_time: float
    collect_s: float
    history: list[dict[str, float]]
    log_lr: torch.Tensor
    files_written: bool = False
