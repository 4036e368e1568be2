"""The paper's authors' published datasets, converted to this package's dataset format.

The authors published one distilled dataset per experiment with their code
(github.com/wconnorr/RL-to-SL_Distillation, ``distilled_envs/``, MIT licence). :func:`convert`
turns one of their files into a :class:`~paper_code.core.dataset.DistilledDataset` that evaluates as
the authors' own validation scripts did:

* **N-D cart-pole** ``ND_cartpole/distiller_sd_{N}dcp_b{B}.pt`` (tensors ``x`` [B, 4N], ``y``
  [B, 2N], ``inner_lr``): N = 1 on gymnasium's ``CartPole-v1``, N >= 2 on the N-D cart-pole
  (episodes end at a return of 500, as their ``RewardTerminationWrapper``); observations per axis
  (x, x_dot, theta, theta_dot) and action ``a`` pushing axis ``a // 2``: the layout of this package's
  N-D cart-pole, so nothing is permuted.
* **MuJoCo** ``MuJoCo/<task>_b64_state.ckpt`` (a Lightning Fabric dict; ``distiller`` holds ``x``,
  ``y_mean``, ``y_logstd`` [1, A], ``inner_lr``): the gymnasium **v4** task (their code's
  ``MUJOCO_ENV_VERSION``; v4 observation sizes differ from v5's), raw observations (their
  normaliser was a no-op), the Gaussian learner with a state-independent log-std fitted to
  ``y_logstd`` by MSE.
* **Atari** ``Atari/<Game>/<level>/distiller_sd*.pt`` (``x`` [B, 4, 84, 84] on the [0, 1] scale,
  ``y`` [B, actions], ``inner_lr``) with the persistent encoder ``encoder_sd.pt`` beside it for
  level l >= 1 (``fulldistill`` is l = 0): their ``<Game>NoFrameskip-v4``, i.e. ``ALE/<Game>-v5``
  with no sticky actions, AtariPreprocessing's defaults and a 4-frame stack, no time limit but
  ALE's 108,000 frames; the Nature-CNN learner split at l. Encoder keys come in two layouts,
  ``0.*``/``2.*`` (an ``nn.Sequential`` of conv, ReLU, ...) and ``convs.0/2/4.*`` (their
  ``Actor`` with its head removed); both become ``encoder.c{i}.*``. A level whose encoder was not
  published (Centipede, Pong, MsPacman and SpaceInvaders l4) cannot be evaluated as published and
  is refused.

Files load with ``torch.load(..., weights_only=True)`` only: no code in a file runs. The result's
provenance names the source file, its SHA-256, the licence and what the conversion assumed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from paper_code.core.dataset import DatasetError, DistilledDataset
from paper_code.core.learners import PAPER_LEARNER, LearnerSpec
from paper_code.envs import ND_CARTPOLE_ID, make_env
from paper_code.envs.atari import atari_id
from paper_code.project import project_root
from paper_code.pipeline.presets import GAUSSIAN_LEARNER, atari_learner
from paper_code.runs.checkpoints import load_weights

#: where the published files come from, and under which licence
SOURCE = "github.com/wconnorr/RL-to-SL_Distillation"
LICENCE = "MIT"
#: the authors' lower-case MuJoCo file names -> gymnasium task names (the v4 tasks they used)
MUJOCO_NAMES = {name.lower(): name for name in (
    "Ant", "HalfCheetah", "Hopper", "Humanoid", "HumanoidStandup", "InvertedPendulum", "InvertedDoublePendulum",
    "Pusher", "Reacher", "Swimmer", "Walker2d")}
#: the authors' Atari folder names -> ALE game names
ATARI_NAMES = {"Centipede": "Centipede", "MsPacMan": "MsPacman", "MsPacman": "MsPacman", "Pong": "Pong",
               "SpaceInvaders": "SpaceInvaders", "Breakout": "Breakout"}
#: the authors' Atari env settings: NoFrameskip-v4 = no sticky actions (the rest is AtariPreprocessing's
#: defaults and the frame stack, which every Atari env of this package has)
ATARI_ENV_KWARGS = {"repeat_action_probability": 0.0}
#: the layer indices of the authors' encoders (conv, ReLU, conv, ...) -> this package's layer numbers
_ENCODER_KEY = re.compile(r"^(?:convs\.)?(\d+)\.(weight|bias)$")


@dataclass(frozen=True)
class PublishedFile:
    """What a published file is: its family, environment, learner and (Atari) encoder file."""

    path: Path
    family: str  # cartpole | mujoco | atari
    env_id: str
    env_kwargs: dict[str, Any]
    learner: LearnerSpec
    encoder: Path | None = None

    @property
    def name(self) -> str:
        """The file's path from ``distilled_envs/`` on (its name alone if it is not under one)."""
        parts = self.path.parts
        if "distilled_envs" in parts:
            return "/".join(parts[parts.index("distilled_envs"):])
        return self.path.name


def _atari_level(folder: str) -> int | None:
    if folder == "fulldistill":
        return 0
    m = re.fullmatch(r"l([0-4])", folder)
    return int(m.group(1)) if m else None


def identify(src: str | Path, *, env: str | None = None, split: int | None = None,
             encoder: str | Path | None = None) -> PublishedFile:
    """Which experiment ``src`` is, from its path (``env``/``split`` name it when the path does
    not: a gymnasium id or the authors' ``<Game>NoFrameskip-v4``, and the Atari level)."""
    path = Path(src)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    m_cp = re.fullmatch(r"distiller_sd_(\d+)dcp_b(\d+)\.pt", path.name)
    m_mj = re.fullmatch(r"([a-z0-9]+)_b(\d+)_state\.ckpt", path.name)
    game = ATARI_NAMES.get(path.parent.parent.name) if _atari_level(path.parent.name) is not None else None
    if env is not None:
        env = str(env)
        m_nf = re.fullmatch(r"([A-Za-z]+)NoFrameskip-v4", env)
        if m_nf or env.startswith("ALE/"):
            name = m_nf.group(1) if m_nf else env[len("ALE/"):].rsplit("-", 1)[0]
            if name not in ATARI_NAMES:
                raise ValueError(f"`env` {env}: unknown Atari game (known: {', '.join(sorted(set(ATARI_NAMES.values())))})")
            game = ATARI_NAMES[name]
            m_cp = m_mj = None
        elif env in ("CartPole-v1", ND_CARTPOLE_ID):
            m_mj, game = None, None
            m_cp = m_cp or True
        elif env.endswith("-v4") and env[:-3].lower() in MUJOCO_NAMES:
            m_cp, game = None, None
            m_mj = m_mj or True
        else:
            raise ValueError(f"`env` {env}: not an environment the authors published datasets for (CartPole-v1, "
                             f"{ND_CARTPOLE_ID}, a MuJoCo v4 task such as Hopper-v4, or <Game>NoFrameskip-v4)")
    if game is not None:
        level = _atari_level(path.parent.name) if split is None else int(split)
        if level is None or not 0 <= level <= 4:
            raise ValueError(f"{path}: the Atari level is not in the path (.../<Game>/l1..l4 or fulldistill): "
                             f"give it with `split` (0..4)")
        enc = None
        if level > 0:
            enc = Path(encoder) if encoder is not None else path.with_name("encoder_sd.pt")
            if not enc.is_file():
                why = " (the authors published no l4 encoders)" if level == 4 else ""
                raise DatasetError(f"{path}: an Atari l{level} dataset needs its published encoder, and {enc} does not "
                                   f"exist: the dataset cannot be evaluated as published{why}")
        return PublishedFile(path, "atari", atari_id(game), dict(ATARI_ENV_KWARGS), atari_learner(level), enc)
    if m_mj:
        task = MUJOCO_NAMES.get(m_mj.group(1)) if not isinstance(m_mj, bool) else None
        if env is not None:
            task = MUJOCO_NAMES[env[:-3].lower()]
        if task is None:
            raise ValueError(f"{path}: unknown MuJoCo task {m_mj.group(1)!r} (give it with `env`: <Task>-v4)")
        return PublishedFile(path, "mujoco", f"{task}-v4", {}, GAUSSIAN_LEARNER)
    if m_cp:
        return PublishedFile(path, "cartpole", env or "", {}, PAPER_LEARNER)  # the env follows from N (convert)
    raise ValueError(f"{path}: not one of the authors' file names (ND_cartpole/distiller_sd_<N>dcp_b<B>.pt, "
                     f"MuJoCo/<task>_b64_state.ckpt, Atari/<Game>/<l1..l4|fulldistill>/distiller_sd*.pt); "
                     f"name the environment with `env`")


def _load(path: Path) -> dict[str, Any]:
    try:
        obj = load_weights(path)
    except Exception as e:  # noqa: BLE001 - unpickling refused, not a torch file, truncated, ...
        msg = " ".join(str(e).split())[:300]
        raise DatasetError(f"{path}: cannot be read with torch.load(weights_only=True) ({type(e).__name__}: {msg})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: holds a {type(obj).__name__}, not a dict of tensors")
    return obj


def _tensors(path: Path, obj: dict[str, Any], names: tuple[str, ...], where: str = "") -> list[torch.Tensor]:
    missing = [n for n in names if not isinstance(obj.get(n), torch.Tensor)]
    if missing:
        have = ", ".join(sorted(map(str, obj))) or "nothing"
        raise DatasetError(f"{path}: no tensor(s) {', '.join(where + n for n in missing)} (it holds {have})")
    return [obj[n].detach().clone() for n in names]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _encoder(path: Path, level: int) -> dict[str, torch.Tensor]:
    """The published encoder as ``encoder.c{i}.*`` tensors (either key layout)."""
    sd = _load(path)
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        m = _ENCODER_KEY.match(str(key))
        if m is None or not isinstance(value, torch.Tensor) or int(m.group(1)) % 2:
            raise DatasetError(f"{path}: unexpected encoder entry {key!r} (expected 0.*, 2.*, 4.* or convs.0/2/4.*)")
        out[f"encoder.c{int(m.group(1)) // 2}.{m.group(2)}"] = value.detach().clone()
    layers = {k.split(".")[1] for k in out}
    if layers != {f"c{i}" for i in range(level)}:
        raise DatasetError(f"{path}: an l{level} encoder has layers {sorted(layers)}, not the first {level} of the "
                           f"Nature-CNN")
    return out


def convert(src: str | Path, *, env: str | None = None, split: int | None = None,
            encoder: str | Path | None = None) -> DistilledDataset:
    """One published file as a dataset of this package (see the module docstring)."""
    info = identify(src, env=env, split=split, encoder=encoder)
    path = info.path
    obj = _load(path)
    provenance: dict[str, Any] = {
        "method": "PPMO, by the paper's authors (their published dataset, converted by python -m paper_code "
                  "import-reference)",
        "source": SOURCE, "file": info.name, "sha256": _sha256(path), "licence": LICENCE,
    }
    extra: dict[str, torch.Tensor] = {}
    env_id, env_kwargs, label_kind = info.env_id, dict(info.env_kwargs), "logits_mse"
    if info.family == "mujoco":
        d = obj.get("distiller")
        if not isinstance(d, dict):
            raise DatasetError(f"{path}: no 'distiller' state dict (a MuJoCo checkpoint holds one)")
        x, y, log_std, lr = _tensors(path, d, ("x", "y_mean", "y_logstd", "inner_lr"), "distiller.")
        if log_std.numel() != y.shape[-1]:
            raise DatasetError(f"{path}: y_logstd has {log_std.numel()} values for {y.shape[-1]} actions")
        extra["log_std"] = log_std.reshape(-1)
        label_kind = "gaussian_mse"
        if isinstance(obj.get("epoch"), int):
            provenance["meta_epochs_published"] = obj["epoch"]
        provenance["assumed"] = "gymnasium v4 task, raw observations, Gaussian learner with a state-independent log-std"
    else:
        x, y, lr = _tensors(path, obj, ("x", "y", "inner_lr"))
        if info.family == "cartpole":
            if x.ndim != 2 or x.shape[1] % 4 or y.shape[-1] != x.shape[1] // 2:
                raise DatasetError(f"{path}: an N-D cart-pole dataset has x [B, 4N] and y [B, 2N], got "
                                   f"{tuple(x.shape)} and {tuple(y.shape)}")
            n = x.shape[1] // 4
            if info.env_id == "CartPole-v1" and n != 1:
                raise DatasetError(f"{path}: CartPole-v1 has 4 observations, the file's x has {x.shape[1]}")
            if n == 1 and info.env_id != ND_CARTPOLE_ID:
                env_id = "CartPole-v1"
                provenance["assumed"] = "N = 1: gymnasium's CartPole-v1, as the authors' validation"
            else:
                env_id, env_kwargs = ND_CARTPOLE_ID, {"dof": n}
                provenance["assumed"] = f"N = {n}: the N-D cart-pole, episodes ending at a return of 500"
        else:  # atari
            level = info.learner.split
            if info.encoder is not None:
                extra.update(_encoder(info.encoder, level))
                provenance["encoder_file"] = PublishedFile(info.encoder, "", "", {}, info.learner).name
                provenance["encoder_sha256"] = _sha256(info.encoder)
            provenance["assumed"] = (f"{env_id[len('ALE/'):-len('-v5')]}NoFrameskip-v4: no sticky actions, "
                                     f"AtariPreprocessing defaults, 4 frames, [0, 1] scale; Nature-CNN split at l = {level}")
            notes = path.with_name("etc.txt")
            if notes.is_file():
                m = re.search(r"Epoch:\s*(\d+)", notes.read_text(errors="replace"))
                if m:
                    provenance["meta_epochs_published"] = int(m.group(1))
    try:
        ds = DistilledDataset(states=x, labels=y, lr=lr, env_id=env_id, env_kwargs=env_kwargs, learner=info.learner,
                              label_kind=label_kind, provenance=provenance, extra=extra)
        env = make_env(env_id, 1, **env_kwargs)  # the sizes must be the environment's
        try:
            ds.check_env(env.observation_shape, env.num_actions, getattr(env, "continuous", False))
        finally:
            if hasattr(env, "close"):  # gymnasium envs hold simulators; tensor envs nothing
                env.close()
    except DatasetError as e:
        raise DatasetError(f"{path}: {e}") from None
    return ds


def reference_name(ds: DistilledDataset) -> str:
    """Where a converted dataset goes under ``reference/``: ``cartpole/nd{N}_b{B}``,
    ``mujoco/{task}-v4_b{B}`` or ``atari/{Game}_l{l}_b{B}`` (``.safetensors``)."""
    if ds.learner.kind == "nature_cnn":
        game = ds.env_id[len("ALE/"):].rsplit("-", 1)[0]
        return f"atari/{game}_l{ds.learner.split}_b{ds.size}.safetensors"
    if ds.env_id in ("CartPole-v1", ND_CARTPOLE_ID):
        return f"cartpole/nd{ds.env_kwargs.get('dof', 1)}_b{ds.size}.safetensors"
    return f"mujoco/{ds.env_id}_b{ds.size}.safetensors"


def reference_dir() -> Path:
    """The project's ``reference/`` folder: the converted files, committed with their licence."""
    return project_root() / "reference"


def _committed(name: str) -> Path | None:
    path = reference_dir() / name
    return path if path.is_file() else None


def authors_cartpole(n: int, size: int) -> Path | None:
    """The authors' N-D cart-pole dataset of ``size`` instances in ``reference/`` (None if they published none)."""
    return _committed(f"cartpole/nd{int(n)}_b{int(size)}.safetensors")


def authors_mujoco(task: str) -> Path | None:
    """The authors' 64-instance dataset for a MuJoCo task (``Hopper-v5`` or ``Hopper-v4``: theirs is v4), or None."""
    return _committed(f"mujoco/{task.rsplit('-', 1)[0]}-v4_b64.safetensors")


def authors_atari(game: str, split: int) -> Path | None:
    """The authors' dataset for an Atari game at encoder level ``split`` (any size), or None."""
    found = sorted((reference_dir() / "atari").glob(f"{game}_l{int(split)}_b*.safetensors"))
    return found[0] if found else None


def published_files(folder: str | Path) -> list[Path]:
    """The dataset files under ``folder`` (the authors' ``distilled_envs/`` or a part of it), sorted."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and (
        re.fullmatch(r"distiller_sd.*\.pt", p.name) or re.fullmatch(r"[a-z0-9]+_b\d+_state\.ckpt", p.name)))


def not_evaluable(path: Path) -> str | None:
    """Why a published file cannot be evaluated as published (an Atari level without its encoder), or None."""
    try:
        identify(path)
    except DatasetError as e:
        if "cannot be evaluated as published" in str(e):
            return str(e)
        raise
    return None
