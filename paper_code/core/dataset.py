"""Distilled datasets and their file format (a public contract: later tools read it).

A dataset file is a **safetensors** file with tensors

* ``states`` [B, ...] synthetic observations,
* ``labels`` [B, A] soft labels (targets for the learner's outputs, fitted with MSE),
* ``lr`` (0-d) the inner learning rate: theta1 = theta0 - lr * grad MSE(f(theta0, states), labels)
  with the MSE averaged over all B x A elements (``torch.nn.MSELoss``'s mean),

plus optional extra tensors, and string metadata: ``format`` (``paper_code/distilled-dataset``),
``format_version``, ``env`` (gymnasium id), ``env_kwargs`` (JSON), ``learner`` (JSON
:class:`~paper_code.core.learners.LearnerSpec`), ``label_kind`` and ``provenance`` (JSON: meta-epochs,
env steps, seed, git revision, ...). Missing learner metadata means the paper's default learner.
Loading never unpickles.

Gaussian learners (``label_kind`` ``gaussian_mse``, continuous actions): ``labels`` are the target
means [B, A] and the tensor ``log_std`` [A] is the one target log-std; the inner loss is
MSE(means) + MSE(log_std). Observation normalisation (optional): metadata ``normalization``
(JSON ``{"kind": "running_mean_std", "clip": c, "eps": e}``, optionally ``"scale": s``, 1 if
absent) and tensors ``obs_mean``/``obs_var`` [obs]; the states are then in normalised space and a
policy sees ``s * clip((obs - obs_mean) / sqrt(obs_var + eps), -c, c)``: the statistics are frozen
into the file, so a dataset works on its own.

Bounds (checked on load and on save): every value of ``states``, ``labels``, ``log_std``, encoder
tensors and ``obs_mean`` is within +-1e6, ``obs_var`` within [0, 1e12], ``lr`` in (0, 1e4];
tensors of another floating dtype (float16, bfloat16, float64) are held as float32.

Nature-CNN learners (Atari): ``states`` are frames [B, 4, 84, 84] on the learners' [0, 1] scale
(observations are uint8 and divided by 255); a learner split at level l > 0 comes with its
persistent encoder, tensors ``encoder.c0.weight`` .. ``encoder.c{l-1}.bias``: a learner sees
``encoder(x)`` for the states and for real observations alike.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from paper_code.core.learners import PAPER_LEARNER, LearnerSpec
from paper_code.core.observations import encode, prepare
from paper_code.envs import check_env_kwargs
from paper_code.project import package_root
from paper_code.files import atomic_path, not_a_file

FORMAT = "paper_code/distilled-dataset"
FORMAT_VERSION = 1
LABEL_KINDS = ("logits_mse", "gaussian_mse")
#: the largest magnitude of any value in a dataset (states, labels, log-std, encoder, obs_mean),
#: far beyond every dataset made here; larger values overflow float32 in a learner's first step
MAX_ABS = 1e6
MAX_OBS_VAR = 1e12
#: the largest inner learning rate a dataset may have
MAX_LR = 1e4
NORMALIZATION_KEYS = frozenset({"kind", "clip", "eps", "scale"})


class DatasetError(ValueError):
    """A dataset file that cannot be used (corrupt, inconsistent, or not for this env)."""


@dataclass
class DistilledDataset:
    states: torch.Tensor
    labels: torch.Tensor
    lr: torch.Tensor
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    learner: LearnerSpec = PAPER_LEARNER
    label_kind: str = "logits_mse"
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    normalization: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # float16 / bfloat16 / float64 tensors are held as float32, the learners' precision (a value
        # beyond float32's range becomes inf and is refused below)
        def f32(t: torch.Tensor) -> torch.Tensor:
            return t.float() if isinstance(t, torch.Tensor) and t.dtype.is_floating_point else t

        lr = self.lr if isinstance(self.lr, torch.Tensor) else torch.as_tensor(self.lr, dtype=torch.float32)
        self.lr = f32(lr).reshape(()) if lr.numel() == 1 else lr
        self.states, self.labels = f32(self.states), f32(self.labels)
        self.extra = {k: f32(v) for k, v in self.extra.items()}
        self.validate()

    @property
    def size(self) -> int:
        return int(self.states.shape[0])

    def validate(self) -> None:
        """Shapes, kinds and values that every dataset must satisfy (checked before anything is built)."""
        if not isinstance(self.env_id, str) or not self.env_id:
            raise DatasetError(f"env must be a gymnasium id, got {self.env_id!r}")
        try:
            check_env_kwargs(self.env_id, self.env_kwargs)
        except ValueError as e:
            raise DatasetError(str(e)) from None
        if not isinstance(self.learner, LearnerSpec):
            raise DatasetError(f"learner must be a LearnerSpec, got {type(self.learner).__name__}")
        if not isinstance(self.provenance, dict):
            raise DatasetError(f"provenance must be an object, got {type(self.provenance).__name__}")
        tensors = [("states", self.states), ("labels", self.labels), ("lr", self.lr), *self.extra.items()]
        for name, t in tensors:
            if not isinstance(t, torch.Tensor):
                raise DatasetError(f"{name} must be a tensor, got {type(t).__name__}")
        if self.lr.numel() != 1:
            raise DatasetError(f"lr must be a scalar, got shape {tuple(self.lr.shape)}")
        if self.states.ndim < 2 or self.states.shape[0] < 1:
            raise DatasetError(f"states must be [B, ...] with B >= 1, got shape {tuple(self.states.shape)}")
        if self.labels.ndim != 2 or self.labels.shape[0] != self.states.shape[0]:
            raise DatasetError(
                f"labels must be [B, A] with the states' B={self.states.shape[0]}, got shape {tuple(self.labels.shape)}"
            )
        if self.labels.shape[1] < 1:
            raise DatasetError("labels must have at least one output per instance")
        want_ndim = 4 if self.learner.kind == "nature_cnn" else 2
        if self.states.ndim != want_ndim:
            raise DatasetError(f"a {self.learner.kind} learner needs states of {want_ndim} dimensions "
                               f"({'[B, C, H, W]' if want_ndim == 4 else '[B, obs]'}), got shape {tuple(self.states.shape)}")
        for name, t in tensors:
            if not t.dtype.is_floating_point:
                raise DatasetError(f"{name} must be floating point, got {t.dtype}")
            if not bool(torch.isfinite(t).all()):
                raise DatasetError(f"{name} contains non-finite values (nan or inf)")
            bound = MAX_OBS_VAR if name == "obs_var" else MAX_LR if name == "lr" else MAX_ABS
            if t.numel() and float(t.abs().max()) > bound:
                raise DatasetError(f"{name} has values of magnitude {float(t.abs().max()):.3g}, beyond the "
                                   f"{bound:g} a dataset may hold")
        if float(self.lr) <= 0:
            raise DatasetError(f"lr must be positive, got {float(self.lr)}")
        if self.label_kind not in LABEL_KINDS:
            raise DatasetError(f"unknown label kind {self.label_kind!r} (known: {', '.join(LABEL_KINDS)})")
        gaussian = self.label_kind == "gaussian_mse"
        if gaussian != (self.learner.policy == "gaussian"):
            raise DatasetError(f"label kind {self.label_kind} does not fit a {self.learner.policy} learner")
        if gaussian:
            ls = self.extra.get("log_std")
            if ls is None or tuple(ls.shape) != (self.labels.shape[1],):
                raise DatasetError(f"a gaussian_mse dataset needs a log_std tensor of shape ({self.labels.shape[1]},), "
                                   f"got {None if ls is None else tuple(ls.shape)}")
        if self.learner.kind == "nature_cnn":
            want = {f"c{i}.{p}" for i in range(self.learner.split) for p in ("weight", "bias")}
            if set(self.encoder) != want:
                raise DatasetError(f"a Nature-CNN learner split at {self.learner.split} needs encoder tensors "
                                   f"{sorted('encoder.' + k for k in want)}, got {sorted('encoder.' + k for k in self.encoder)}")
        if self.normalization is not None:
            if not isinstance(self.normalization, dict) or self.normalization.get("kind") != "running_mean_std":
                raise DatasetError(f"unknown normalization {self.normalization!r}")
            unknown = sorted(set(self.normalization) - NORMALIZATION_KEYS)
            if unknown:
                raise DatasetError(f"normalization has unknown key(s) {', '.join(unknown)}")
            for key in ("clip", "eps"):
                v = self.normalization.get(key)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and 0 < v <= MAX_ABS):
                    raise DatasetError(f"normalization needs a positive finite {key!r}, got {v!r}")
            for name in ("obs_mean", "obs_var"):
                t = self.extra.get(name)
                if t is None or tuple(t.shape) != tuple(self.states.shape[1:]):
                    raise DatasetError(f"normalization needs {name} of shape {tuple(self.states.shape[1:])}, "
                                       f"got {None if t is None else tuple(t.shape)}")
            if not bool((self.extra["obs_var"] >= 0).all()):
                raise DatasetError("obs_var must be non-negative")
            scale = self.normalization.get("scale", 1.0)
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
                raise DatasetError(f"normalization scale must be a positive number, got {scale!r}")

    @property
    def encoder(self) -> dict[str, torch.Tensor]:
        """The persistent encoder of a split Nature-CNN learner (empty otherwise)."""
        return {k[len("encoder."):]: v for k, v in self.extra.items() if k.startswith("encoder.")}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the learner sees of (normalised) inputs ``x``: the encoder's output, or ``x``."""
        enc = self.encoder
        return encode({k: v.to(x.device) for k, v in enc.items()} if enc else None, x)

    @property
    def log_std(self) -> torch.Tensor | None:
        """The target log-std of a Gaussian learner (None for categorical datasets)."""
        return self.extra.get("log_std")

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """Real observations as the learners trained on this dataset see them (before the encoder)."""
        if self.normalization is None:
            return prepare(obs)
        return prepare(obs, self.extra["obs_mean"].to(obs.device), self.extra["obs_var"].to(obs.device),
                       clip=float(self.normalization["clip"]), eps=float(self.normalization["eps"]),
                       scale=float(self.normalization.get("scale", 1.0)))

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised inputs (e.g. the synthetic states) back on the observation scale, to look at
        (clipping is not undone; identity without normalisation; frames on the [0, 1] scale)."""
        if self.normalization is None:
            return x
        eps = float(self.normalization["eps"])
        x = x / float(self.normalization.get("scale", 1.0))
        return x * (self.extra["obs_var"].to(x.device, x.dtype) + eps).sqrt() + self.extra["obs_mean"].to(x.device, x.dtype)

    def check_env(self, observation_shape: tuple[int, ...], num_outputs: int, continuous: bool | None = None) -> None:
        """Raise :class:`DatasetError` if the dataset does not fit an environment's sizes (and,
        given ``continuous``, its kind of actions)."""
        if continuous is not None and continuous != (self.label_kind == "gaussian_mse"):
            raise DatasetError(
                f"{self.env_id} has {'continuous' if continuous else 'discrete'} actions but the dataset's labels are "
                f"{self.label_kind} (for {'discrete' if continuous else 'continuous'} actions)")
        if tuple(self.states.shape[1:]) != tuple(observation_shape):
            raise DatasetError(
                f"dataset states have shape {tuple(self.states.shape[1:])} per instance but {self.env_id} "
                f"{self.env_kwargs or ''} observations have shape {tuple(observation_shape)}"
            )
        if self.labels.shape[1] != num_outputs:
            raise DatasetError(
                f"dataset labels have {self.labels.shape[1]} outputs but {self.env_id} {self.env_kwargs or ''} "
                f"needs {num_outputs}"
            )

    # ------------------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write atomically (a temporary file renamed into place): an interruption never leaves half a file."""
        path = Path(path)
        tensors = {
            "states": self.states.detach().cpu().contiguous(),
            "labels": self.labels.detach().cpu().contiguous(),
            "lr": self.lr.detach().cpu().reshape(()).contiguous(),
            **{k: v.detach().cpu().contiguous() for k, v in self.extra.items()},
        }
        metadata = {
            "format": FORMAT,
            "format_version": str(FORMAT_VERSION),
            "env": self.env_id,
            "env_kwargs": json.dumps(self.env_kwargs, sort_keys=True),
            "learner": self.learner.to_json(),
            "label_kind": self.label_kind,
            "provenance": json.dumps(self.provenance, sort_keys=True),
        }
        if self.normalization is not None:
            metadata["normalization"] = json.dumps(self.normalization, sort_keys=True)
        with atomic_path(path) as tmp:
            save_file(tensors, tmp, metadata=metadata)
            _canonical_header(tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "DistilledDataset":
        """Read a dataset file; :class:`DatasetError` with a clear message if it is unusable."""
        path = Path(path)
        why = not_a_file(path)
        if why is not None:
            raise DatasetError(why)
        return cls.from_contents(path, *read_safetensors(path))

    @classmethod
    def from_contents(cls, path: str | Path, metadata: dict[str, str], tensors: dict[str, torch.Tensor]
                      ) -> "DistilledDataset":
        """The dataset in a file's already read contents (:func:`read_safetensors`); ``path`` names it in errors."""
        if metadata.get("format", FORMAT) != FORMAT:
            raise DatasetError(f"{path}: format {metadata.get('format')!r} is not {FORMAT!r}")
        version = metadata.get("format_version", str(FORMAT_VERSION))
        if not (version.isascii() and version.isdigit()) or int(version) < 1:
            raise DatasetError(f"{path}: format version {version!r} is not a version number (this code writes {FORMAT_VERSION})")
        if int(version) > FORMAT_VERSION:
            raise DatasetError(f"{path}: format version {version!r} is newer than this code understands ({FORMAT_VERSION})")
        missing = [k for k in ("states", "labels", "lr") if k not in tensors]
        if missing:
            raise DatasetError(f"{path}: missing tensor(s) {', '.join(missing)}")
        if "env" not in metadata:
            raise DatasetError(f"{path}: metadata has no 'env' (the gymnasium id the dataset is for)")
        try:
            env_kwargs = json.loads(metadata.get("env_kwargs", "{}"))
            learner = LearnerSpec.from_json(metadata["learner"]) if "learner" in metadata else PAPER_LEARNER
            provenance = json.loads(metadata.get("provenance", "{}"))
            normalization = json.loads(metadata["normalization"]) if "normalization" in metadata else None
        except (ValueError, TypeError, RecursionError) as e:
            raise DatasetError(f"{path}: bad metadata ({e})") from None
        extra = {k: v for k, v in tensors.items() if k not in ("states", "labels", "lr")}
        try:
            return cls(
                states=tensors["states"], labels=tensors["labels"], lr=tensors["lr"], env_id=metadata["env"],
                env_kwargs=env_kwargs, learner=learner, label_kind=metadata.get("label_kind", "logits_mse"),
                provenance=provenance, extra=extra, normalization=normalization,
            )
        except DatasetError as e:
            raise DatasetError(f"{path}: {e}") from None


def read_safetensors(path: str | Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """A safetensors file's metadata and tensors; :class:`DatasetError` (one line) if it cannot be read."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise DatasetError(f"{path}: not a readable safetensors file ({e})") from None


def _canonical_header(path: str | Path) -> None:
    """Rewrite a safetensors file's JSON header with sorted keys: safetensors writes its entries in
    hash-map order, so the same dataset would give different bytes on each save. The tensor data
    (laid out deterministically, offsets relative to its start) is kept as it is."""
    path = Path(path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the data stays 8-byte aligned, as safetensors pads it
    path.write_bytes(len(header).to_bytes(8, "little") + header + raw[8 + n:])


def git_revision() -> str:
    """The code's git commit (``+dirty`` if the tree has changes), or ``unknown``."""

    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package_root(), capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=package_root(),
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def movement(initial: dict[str, torch.Tensor], now: dict[str, torch.Tensor]) -> dict[str, float]:
    """How far a dataset moved from where it started, from tensors named ``states``, ``labels``,
    ``log_lr`` and ``encoder.*`` (the same names in both): the RMS change of the states and of the
    labels, each also relative to its initial RMS (where that is not 0); the inner lr's ratio to its start; the encoder's
    change relative to its initial norm (all its tensors together). What a file's provenance records."""
    def rms(t: torch.Tensor) -> float:
        return float(t.detach().double().pow(2).mean().sqrt())

    out: dict[str, float] = {}
    for k in ("states", "labels"):
        change = rms(now[k] - initial[k])
        out[f"{k}_rms_change"] = change
        if rms(initial[k]) > 1e-9:  # (labels that start at 0 have no relative change)
            out[f"{k}_rel_change"] = change / rms(initial[k])
    out["lr_ratio"] = float((now["log_lr"].detach().double() - initial["log_lr"].double()).exp())
    enc = sorted(k for k in initial if k.startswith("encoder."))
    if enc:
        diff = sum(float((now[k].detach().double() - initial[k].double()).pow(2).sum()) for k in enc)
        base = sum(float(initial[k].double().pow(2).sum()) for k in enc)
        out["encoder_rel_change"] = (diff / max(base, 1e-24)) ** 0.5
    return {k: float(f"{v:.6g}") for k, v in out.items()}
