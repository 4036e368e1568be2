"""Distillation from a teacher: fit a small dataset so that its one-step learners act like a teacher.

For fresh learner inits θ0 (K per step, vmapped), the one-step learner θ1 = θ0 − lr ∇MSE(f(θ0, x), y)
is compared with a teacher on real states the teacher visits: the loss is KL(teacher ‖ student)
averaged over states and inits, differentiated through the one SGD step into the states ``x``, the
labels ``y`` and log lr (Adam). No environment interaction happens during the fit; the teacher's
states are collected once, before it.

A teacher is either a **dataset file** — its own one-step learner for the *same* θ0 is the teacher,
so a large dataset is compressed into a small one — or a **policy file** in the PPO baselines'
format (``results/*/baselines/ppo_*.safetensors``: the actor's tensors, ``__obs_mean``/``__obs_var``
when it normalised observations, and its configuration as metadata). A Gaussian teacher's frozen
observation statistics become the student dataset's (its states then live in normalised space).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import checks
from .dataset import DatasetError, DistilledDataset
from .envs import make_env
from .inner import inner_step_batch
from .learners import LearnerSpec, batched_forward, forward, init_params_batch
from .observations import NORM_CLIP, NORM_EPS, prepare
from .policies import Categorical, Gaussian, head, sample

Params = dict[str, torch.Tensor]


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
    source: str = ""

    @property
    def gaussian(self) -> bool:
        return self.learner.policy == "gaussian"

    def prepare(self, obs: torch.Tensor) -> torch.Tensor:
        """Real observations as the student's learners (and the teacher) see them."""
        return prepare(obs, self.obs_mean, self.obs_var)


def load_teacher(path: str | Path) -> Teacher:
    """A dataset file or a PPO policy file as a :class:`Teacher` (``DatasetError``: neither)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise DatasetError(f"{path}: not a readable safetensors file ({e})") from None
    if "key" in meta and "states" not in tensors:
        return _policy_teacher(path, meta, tensors)
    ds = DistilledDataset.load(path)
    if ds.learner.kind != "mlp":
        raise DatasetError(f"{path}: compression supports MLP learners (cart-pole, MuJoCo), not {ds.learner.kind}")
    x, y, t_lr = ds.features(ds.states), ds.labels, ds.lr.reshape(())
    t_log_std = ds.log_std

    def outputs(theta0: Params | None, s: torch.Tensor) -> torch.Tensor:
        theta1 = inner_step_batch(theta0, x, y, t_lr, ds.learner.activation, t_log_std)
        return batched_forward(theta1, s.expand(theta0_count(theta0), *s.shape[1:]), ds.learner.activation)

    def log_std(theta0: Params | None) -> torch.Tensor | None:
        if t_log_std is None:
            return None
        return inner_step_batch(theta0, x, y, t_lr, ds.learner.activation, t_log_std)["log_std"]

    norm = ds.normalization or {}
    if norm and (norm.get("clip", NORM_CLIP) != NORM_CLIP or norm.get("eps", NORM_EPS) != NORM_EPS or norm.get("scale", 1.0) != 1.0):
        raise DatasetError(f"{path}: compression keeps the default normalisation (clip {NORM_CLIP}, eps {NORM_EPS}, scale 1)")
    return Teacher("dataset", ds.env_id, dict(ds.env_kwargs), ds.learner, outputs, log_std, float(ds.lr),
                   ds.extra.get("obs_mean"), ds.extra.get("obs_var"), source=str(path))


def _policy_teacher(path: Path, meta: dict[str, str], tensors: dict[str, torch.Tensor]) -> Teacher:
    try:
        cfg = json.loads(meta["key"])["config"]
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

    return Teacher("policy", env_id, env_kwargs, learner, outputs, log_std, 1.0,
                   obs_mean, obs_var, source=str(path))


def theta0_count(theta0: Params | None) -> int:
    return 1 if theta0 is None else next(iter(theta0.values())).shape[0]


@torch.no_grad()
def visited_states(teacher: Teacher, count: int, *, seed: int, num_envs: int = 64) -> torch.Tensor:
    """``count`` real observations (prepared) from episodes of the teacher acting with sampled actions
    (a dataset teacher acts as one fresh one-step learner per env)."""
    env = make_env(teacher.env_id, num_envs, seed=seed, check_actions=False, **teacher.env_kwargs)
    g = torch.Generator().manual_seed(seed)
    theta0 = init_params_batch(teacher.learner, env.observation_size, env.num_actions, num_envs, g) \
        if teacher.kind == "dataset" else None
    dist = head(teacher.learner.policy)
    obs = env.reset(seed=seed)
    out: list[torch.Tensor] = []
    steps = math.ceil(count / num_envs)
    for _ in range(steps):
        s = teacher.prepare(obs)
        out.append(s)
        o = teacher.outputs(theta0, s[:, None, :] if theta0 is not None else s[None])  # env i acts with learner i
        o = o[:, 0] if theta0 is not None else o[0]
        ls = teacher.log_std(theta0)
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


@dataclass
class CompressResult:
    dataset: DistilledDataset
    history: list[dict[str, float]]


def compress(teacher: Teacher, size: int, *, steps: int = 800, inits: int = 8, batch_states: int = 2048,
             pool: int = 20_000, lr: float = 1e-2, init_lr: float | None = None, seed: int = 0,
             progress: bool = True) -> CompressResult:
    """Fit a dataset of ``size`` instances to ``teacher`` (see the module docstring)."""
    size = checks.integer("size", size, lo=1, hi=100_000)
    steps = checks.integer("steps", steps, lo=0)
    inits = checks.integer("inits", inits, lo=1, hi=1024)
    g = torch.Generator().manual_seed(seed)
    states = visited_states(teacher, pool, seed=seed)
    obs_size = states.shape[1]
    probe = make_env(teacher.env_id, 1, **teacher.env_kwargs)
    num_actions = probe.num_actions
    if hasattr(probe, "close"):
        probe.close()
    x = states[torch.randperm(len(states), generator=g)[:size]].clone().requires_grad_(True)
    y = torch.zeros(size, num_actions, requires_grad=True)
    log_lr = torch.tensor(math.log(teacher.lr if init_lr is None else checks.number("init_lr", init_lr, lo=1e-8)),
                          requires_grad=True)
    params = [x, y, log_lr]
    target_log_std = None
    if teacher.gaussian:
        target_log_std = torch.zeros(num_actions, requires_grad=True)
        params.append(target_log_std)
    opt = torch.optim.Adam(params, lr=lr)
    spec, history = teacher.learner, []
    bar = tqdm(range(steps), disable=not progress, unit="step", mininterval=1.0)
    for step in bar:
        theta0 = init_params_batch(spec, obs_size, num_actions, inits, g)
        s = states[torch.randint(len(states), (batch_states,), generator=g)]
        theta1 = inner_step_batch(theta0, x, y, log_lr.exp(), spec.activation, target_log_std)
        student = batched_forward(theta1, s.expand(inits, *s.shape), spec.activation)
        with torch.no_grad():
            t_out = teacher.outputs(theta0, s[None])
            t_ls = teacher.log_std(theta0)
        if t_out.shape[0] == 1 and inits > 1:
            t_out = t_out.expand(inits, *t_out.shape[1:])
            t_ls = None if t_ls is None else t_ls.expand(inits, -1)
        loss = kl_divergence(t_out, student, t_ls, theta1.get("log_std"))
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append({"step": step + 1, "kl": float(loss.detach()), "lr": float(log_lr.detach().exp())})
        bar.set_postfix_str(f"KL {history[-1]['kl']:.4f}, lr {history[-1]['lr']:.3g}", refresh=False)
    bar.close()
    extra: dict[str, torch.Tensor] = {}
    normalization = None
    if target_log_std is not None:
        extra["log_std"] = target_log_std.detach().clone()
    if teacher.obs_mean is not None:
        extra["obs_mean"], extra["obs_var"] = teacher.obs_mean.clone(), teacher.obs_var.clone()
        normalization = {"kind": "running_mean_std", "clip": NORM_CLIP, "eps": NORM_EPS}
    provenance = {"method": "compression: KL(teacher || one-step learner) on the teacher's visited states",
                  "teacher": teacher.source, "teacher_kind": teacher.kind,
                  "settings": {"size": size, "steps": steps, "inits": inits, "batch_states": batch_states, "pool": pool,
                               "adam_lr": lr, "seed": seed},
                  "final_kl": history[-1]["kl"] if history else None, "meta_epochs": 0, "env_steps": len(states)}
    ds = DistilledDataset(states=x.detach().clone(), labels=y.detach().clone(), lr=log_lr.detach().exp(),
                          env_id=teacher.env_id, env_kwargs=teacher.env_kwargs, learner=spec,
                          label_kind="gaussian_mse" if teacher.gaussian else "logits_mse", provenance=provenance,
                          extra=extra, normalization=normalization)
    return CompressResult(ds, history)
