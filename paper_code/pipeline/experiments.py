"""Resumable runs of the pipeline: a preset at a scale of ``params.yaml``, to its dataset file.

A scale's section changes only counts (:data:`SCALE_KEYS`), so quick and paper scale distil with
the same settings (:func:`scale_config`); :func:`run_preset` continues a run from its checkpoint,
and a finished run costs nothing. The algorithm is in :mod:`paper_code.core.ppmo`.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from paper_code.core.dataset import DistilledDataset
from paper_code.project import relative
from paper_code.pipeline.layout import (atari_teacher_path, atari_teacher_set_path, compressed_path, dataset_path, ppo_baseline_path,
                                        warm_start_path)
from paper_code.core.settings import PPMOConfig
from paper_code.files import check_writable
from paper_code.pipeline.presets import finetune_config, parse_preset, resolve
from paper_code.runs.training import FinishedRun  # noqa: F401  (re-exported: the notebooks read it from here)
from paper_code.runs.training import PPMO, checkpoint_path, compress_file, distill, fit_path, log_path

#: what a scale section of params.yaml may change in a preset: seeds and counts (an Atari
#: section's ``max_episode_steps`` caps its episodes)
SCALE_KEYS = ("seed", "size", "eval_every", "eval_learners", "num_envs", "num_steps", "minibatch_size", "update_epochs")


def setting(section: dict[str, Any], key: str, name: Any, default: Any = None) -> Any:
    """``section[key]``: one value for every run, or a mapping (task, N, l, ...) -> value with an
    optional ``default`` entry; ``default`` if the key is absent or has no entry."""
    if key not in section:
        return default
    v = section[key]
    if isinstance(v, dict):
        return v.get(name, v.get(str(name), v.get("default", default)))
    return v


def scale_config(preset: str, section: dict[str, Any], **overrides: Any) -> PPMOConfig:
    """The preset's configuration with the counts a scale section sets (:data:`SCALE_KEYS`)."""
    counts: dict[str, Any] = {k: section[k] for k in SCALE_KEYS if k in section}
    if parse_preset(preset).size is not None:  # the preset's name fixes B
        counts.pop("size", None)
    base = resolve(preset)
    if "max_episode_steps" in section and "max_episode_steps" in base.env_kwargs:
        counts["env_kwargs"] = {**base.env_kwargs, "max_episode_steps": int(section["max_episode_steps"])}
    return resolve(preset, **{**counts, **overrides})


def stop_rule(section: dict[str, Any], name: Any) -> dict[str, Any]:
    """:func:`run_or_resume`'s early-stopping arguments for one run: stop once ``stop_patience``
    consecutive evaluations reach ``stop_at_return`` (both one value or per run; no rule without a target)."""
    stop = setting(section, "stop_at_return", name)
    patience = setting(section, "stop_patience", name, 1)
    return {"stop_at_return": None if stop is None else float(stop), "stop_patience": int(patience)}


def finished_run(cfg: PPMOConfig, out: Path, meta_epochs: int) -> FinishedRun | None:
    """The run behind ``out`` if it has no checkpoint but its dataset already has ``meta_epochs``
    meta-epochs (checkpoints too large for git are not committed, e.g. Atari's); None if there is
    a checkpoint or no dataset. A shorter dataset without a checkpoint cannot be continued: error."""
    out = Path(out)
    if checkpoint_path(out).exists() or not out.exists():
        return None
    ds = DistilledDataset.load(out)
    prov = ds.provenance
    if ds.env_id != cfg.env_id or ds.size != cfg.size:
        raise ValueError(f"{out} is a dataset for {ds.env_id} with B={ds.size}, not {cfg.env_id} with B={cfg.size}")
    if int(prov.get("meta_epochs", 0)) < meta_epochs:
        raise ValueError(f"{out} has {prov.get('meta_epochs')} meta-epochs, {meta_epochs} asked, and no checkpoint to "
                         f"continue from (delete the dataset to start over)")
    log = json.loads(log_path(out).read_text()) if log_path(out).exists() else {"evals": [], "history": []}
    return FinishedRun(cfg, int(prov["env_steps"]), float(prov.get("wall_time_s", "nan")), log["history"], log["evals"],
                       meta_epoch=int(prov["meta_epochs"]))


def stop_at(target: float, patience: int = 1, key: str = "sampled_return"
            ) -> tuple[Callable[[list[dict[str, float]]], bool], str]:
    """An early-stopping rule for :func:`~paper_code.runs.training.distill`: ``stop_when`` (true once the
    last ``patience`` evaluations all have ``key`` >= ``target``) and the rule's name, which a
    checkpoint records (a run stopped by it stays finished when resumed under the same rule)."""
    patience, target = int(patience), float(target)
    if patience < 1:
        raise ValueError(f"the stop rule's patience must be at least 1, got {patience}")

    def reached(evals: list[dict[str, float]]) -> bool:
        last = evals[-patience:]
        return len(last) == patience and all(e.get(key, -math.inf) >= target for e in last)

    return reached, f"{key}>={target:g} in {patience} consecutive evaluations"


def run_or_resume(cfg: PPMOConfig, out: Path, meta_epochs: int, *, stop_at_return: float | None = None,
                  stop_patience: int = 1, progress: bool = True, checkpoint_every_s: float = 120.0) -> PPMO:
    """Distil to ``out``, continuing from its checkpoint if there is one (a finished run costs nothing).

    ``stop_at_return`` ends the run once ``stop_patience`` consecutive evaluations reach it with
    sampled actions.
    """
    reached, rule = (None, None) if stop_at_return is None else stop_at(stop_at_return, stop_patience)
    finished = finished_run(cfg, out, int(meta_epochs))
    if finished is not None:
        return finished
    return distill(cfg, out, int(meta_epochs), resume=checkpoint_path(out).exists(), progress=progress,
                   checkpoint_every_s=checkpoint_every_s, stop_when=reached, stop_rule=rule)


def atari_pairs(section: dict[str, Any]) -> list[tuple[str, int]]:
    """The (game, l) runs of a scale's ``atari`` section: ``runs`` (game -> its splits) where set,
    else every game of ``games`` at every split of ``splits``."""
    if section.get("runs"):
        return [(str(game), int(l)) for game, splits in section["runs"].items() for l in splits]
    return [(str(game), int(l)) for game in section["games"] for l in section["splits"]]


def run_preset(preset: str, section: dict[str, Any], out_root: Path, *, name: Any = None, progress: bool = False,
               **overrides: Any) -> PPMO | FinishedRun:
    """Distil ``preset`` at the scale of ``section`` into its :func:`~paper_code.pipeline.layout.dataset_path`
    under ``out_root``: budget ``section["meta_epochs"]`` and the stop rule of :func:`stop_rule`
    (each one value or a mapping keyed by ``name``: the task, N or split). Resumable."""
    cfg = scale_config(preset, section, **overrides)
    budget = int(setting(section, "meta_epochs", name))
    return run_or_resume(cfg, dataset_path(out_root, preset, cfg.size), budget, progress=progress,
                         **stop_rule(section, name))


def minimal_sizes(dof: int) -> list[int]:
    """The dataset sizes of the minimal-dataset sweep for N-D cart-pole: B = 1 .. 2N + 1."""
    return list(range(1, 2 * int(dof) + 2))


def run_minimal_sweep(section: dict[str, Any], dof: int, out_root: Path, *, progress: bool = False) -> dict[int, Any]:
    """Distil N-D cart-pole at every size of :func:`minimal_sizes` (``cartpole-nd{N}-b{B}``,
    resumable, early stop at the cap); ``section["meta_epochs"]``: an int, or a mapping N -> int."""
    return {b: run_preset(f"cartpole-nd{dof}-b{b}", section, out_root, name=dof, progress=progress)
            for b in minimal_sizes(dof)}


# ------------------------------------------------------------------------- distillation from a teacher
#: the teachers of the compression sweep: the plain PPO policy, and notebook 01's B = 512 dataset
COMPRESSION_TEACHERS = {"ppo": "PPO policy", "b512": "B = 512 dataset"}


def compression_config(section: dict[str, Any], size: int, **overrides: Any) -> "CompressConfig":
    """The :class:`~paper_code.core.settings.CompressConfig` of a scale's ``compression`` section at size B."""
    from paper_code.core.settings import CompressConfig

    keys = ("steps", "inits", "batch_states", "pool", "adam_lr", "init_lr", "seed")
    return CompressConfig(size=size, **{**{k: section[k] for k in keys if k in section}, **overrides})


def teacher_path(out_root: Path, teacher: str, env_name: str, size_ref: int = 512) -> Path:
    """The teacher file: ``ppo`` -> the PPO baseline of ``env_name`` (``nd{N}`` or a MuJoCo task);
    ``b512`` -> notebook 01's B = ``size_ref`` cart-pole dataset."""
    if teacher == "ppo":
        return ppo_baseline_path(out_root, env_name)
    if teacher == "b512" and env_name.startswith("nd"):
        return dataset_path(out_root, f"cartpole-{env_name}", size_ref)
    raise ValueError(f"unknown teacher {teacher!r} for {env_name} (one of {', '.join(COMPRESSION_TEACHERS)})")


def run_compression(teacher_file: Path, out: Path, cfg: Any, *, progress: bool = False) -> Any:
    """:func:`~paper_code.runs.training.compress_file`, resumed from its checkpoint when there is one
    (a finished fit costs nothing)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return compress_file(teacher_file, out, cfg, resume=checkpoint_path(out).exists(), progress=progress)


def run_compression_sweep(section: dict[str, Any], dof: int, teacher: str, out_root: Path, *, size_ref: int = 512,
                          progress: bool = False) -> dict[int, Any]:
    """Fit N-D cart-pole datasets of every size of :func:`minimal_sizes` to ``teacher``
    (:data:`COMPRESSION_TEACHERS`) into :func:`~paper_code.pipeline.layout.compressed_path`; resumable."""
    src = teacher_path(out_root, teacher, f"nd{dof}", size_ref)
    return {b: run_compression(src, compressed_path(out_root, teacher, f"nd{dof}", b), compression_config(section, b),
                               progress=progress)
            for b in minimal_sizes(dof)}


def run_warm_start(section: dict[str, Any], mujoco_section: dict[str, Any], task: str, out_root: Path, *,
                   progress: bool = False) -> tuple[Any, PPMO | FinishedRun]:
    """MuJoCo: fit the task's B = 64 dataset to its PPO baseline, then PPMO from it (the task's
    preset at the scale of ``mujoco_section``, ``section["warm_start_meta_epochs"]`` meta-epochs)."""
    preset = f"mujoco-{task}"
    size = scale_config(preset, mujoco_section).size
    fit_out = compressed_path(out_root, "ppo", task, size)
    comp = run_compression(ppo_baseline_path(out_root, task), fit_out,
                           compression_config(section, size, steps=int(section["mujoco_steps"])), progress=progress)
    cfg = scale_config(preset, mujoco_section, init_dataset=relative(fit_out))  # a path inside the project: portable
    run = run_or_resume(cfg, warm_start_path(out_root, task, size), int(section["warm_start_meta_epochs"]),
                        progress=progress, stop_at_return=None, stop_patience=1)
    return comp, run


def publish_minimal(out_root: Path, dof: int, teacher: str) -> Path:
    """Publish ``teacher``'s B = N + 1 fit as the minimal dataset ``cartpole/datasets/nd{N}_b{N+1}``
    (a byte copy, written only when it differs)."""
    from paper_code.files import atomic_path
    from paper_code.pipeline.layout import minimal_dataset_path

    src, dst = compressed_path(out_root, teacher, f"nd{dof}", dof + 1), minimal_dataset_path(out_root, dof)
    data = src.read_bytes()
    if not dst.exists() or dst.read_bytes() != data:
        with atomic_path(dst) as tmp:
            Path(tmp).write_bytes(data)
    return dst


def eval_curve(dataset: Path) -> "pd.DataFrame":
    """A PPMO run's evaluations during training (meta-epoch, env steps, wall time, sampled and
    greedy return) from the log beside its dataset."""
    import pandas as pd

    return pd.DataFrame(json.loads(log_path(dataset).read_text())["evals"])


def run_ppo_evaluated(cfg: "PPOConfig", total_env_steps: int, path: Path, *, eval_every: int, eval_episodes: int,
                      progress: bool = False) -> Any:
    """Plain PPO with its policy evaluated every ``eval_every`` iterations on ``eval_episodes`` fresh
    episodes (sampled and greedy; their own envs and random stream, so the training is the baseline's
    with the same settings and seed), written to ``path``; resumable, a finished file is read. Returns
    the run; its ``evals`` hold the curve, with each iteration's wall time joined from the history."""
    from paper_code.runs.training import ppo_file

    path.parent.mkdir(parents=True, exist_ok=True)
    return ppo_file(cfg, path, int(total_env_steps), resume=checkpoint_path(path).exists(), progress=progress,
                    eval_every=int(eval_every), eval_episodes=int(eval_episodes))


def evaluated_curve(run: Any) -> "pd.DataFrame":
    """A PPO run's evaluations (iteration, env steps, sampled and greedy return, std over episodes) with
    the wall time of training up to each (from its history)."""
    import pandas as pd

    ev = pd.DataFrame(run.evals)
    hist = pd.DataFrame(run.history)
    if "iteration" not in hist.columns:
        hist = hist.assign(iteration=range(1, len(hist) + 1))
    return ev.merge(hist[["iteration", "wall_time_s"]], on="iteration", how="left")


# ------------------------------------------------------------------------- Atari: teacher-first distillation
def atari_teacher_config(game: str, section: dict[str, Any]) -> "PPOConfig":
    """The game's PPO teacher (``atari-{game}``, CleanRL's ppo_atari settings) at the scale of an
    ``atari`` section: its ``teacher`` counts (seed, rollout, epochs) and the section's episode cap."""
    from paper_code.pipeline.presets import resolve_ppo

    t = section["teacher"]
    counts = {k: t[k] for k in ("seed", "num_envs", "num_steps", "minibatch_size", "update_epochs") if k in t}
    base = resolve_ppo(f"atari-{game}")
    env_kwargs = {**base.env_kwargs, "max_episode_steps": int(section["max_episode_steps"])}
    return resolve_ppo(f"atari-{game}", env_kwargs=env_kwargs, **counts)


def run_atari_teacher(game: str, section: dict[str, Any], out_root: Path, *, progress: bool = False) -> Any:
    """Train (or resume, or read the finished file of) the game's PPO teacher into
    :func:`~paper_code.pipeline.layout.atari_teacher_path`: ``section["teacher"]["total_env_steps"]`` agent steps,
    evaluated every ``eval_every`` iterations on ``eval_episodes`` episodes."""
    from paper_code.runs.training import ppo_file

    t = section["teacher"]
    path = atari_teacher_path(out_root, game)
    path.parent.mkdir(parents=True, exist_ok=True)
    return ppo_file(atari_teacher_config(game, section), path, int(t["total_env_steps"]),
                    resume=checkpoint_path(path).exists(), progress=progress, eval_every=int(t["eval_every"]),
                    eval_episodes=int(t["eval_episodes"]))


def atari_fit_config(game: str, split: int, section: dict[str, Any]) -> "CompressConfig":
    """``compress`` of the game's teacher into the paper's B for the game at split l (the section's
    ``compression`` settings)."""
    from paper_code.pipeline.presets import ATARI_SIZES

    c = section["compression"]
    extra = {k: c[k] for k in ("encoder_lr",) if k in c}
    return compression_config(c, ATARI_SIZES[game], split=int(split), **extra)


def run_atari_fit(game: str, split: int, section: dict[str, Any], out_root: Path, *, progress: bool = False) -> Any:
    """Fit the game's set at split l to its teacher (:func:`atari_fit_config`); resumable, and a
    finished fit is read from its files."""
    cfg = atari_fit_config(game, split, section)
    out = atari_teacher_set_path(out_root, "fit", game, split, cfg.size)
    return run_compression(atari_teacher_path(out_root, game), out, cfg, progress=progress)


def run_atari_finetune(game: str, split: int, section: dict[str, Any], out_root: Path, *,
                       progress: bool = False) -> PPMO | FinishedRun:
    """PPMO from the fitted set (``section["compression"]["finetune"]`` meta-epochs, the game's preset at
    this split with the section's counts, raw frames and the fit's encoder)."""
    size = atari_fit_config(game, split, section).size
    fit = atari_teacher_set_path(out_root, "fit", game, split, size)
    counts = {k: section[k] for k in SCALE_KEYS if k in section and k not in ("size", "seed")}
    cfg = finetune_config(fit, int(section.get("seed", 0)), **counts)
    cfg = replace(cfg, init_dataset=relative(fit))  # a path inside the project: portable provenance
    return run_or_resume(cfg, atari_teacher_set_path(out_root, "finetuned", game, split, size),
                         int(section["compression"]["finetune"]), progress=progress)


def compress_run(teacher_path: str | Path, out: str | Path, cfg: CompressConfig, *, resume: bool = False,
                 force: bool = False, progress: bool = True, checkpoint_every_s: float = 180.0) -> dict[str, Any]:
    """``compress`` from the command line: the fit (to ``out``, or with ``cfg.finetune`` to
    :func:`~paper_code.runs.training.fit_path` ``(out)``), then ``cfg.finetune`` PPMO meta-epochs from it to ``out``."""
    fit_out = fit_path(out) if cfg.finetune else Path(out)
    if cfg.finetune:
        check_writable(out)
    comp = compress_file(teacher_path, fit_out, cfg, resume=resume and checkpoint_path(fit_out).exists(),
                         force=force, progress=progress, checkpoint_every_s=checkpoint_every_s)
    done: dict[str, Any] = {"fit": comp, "fit_out": fit_out, "run": None}
    if cfg.finetune:
        ppmo_cfg = finetune_config(fit_out, cfg.seed, **({} if cfg.finetune_ent_coef is None else
                                                         {"ent_coef": cfg.finetune_ent_coef}))
        done["run"] = distill(ppmo_cfg, out, cfg.finetune, resume=resume and checkpoint_path(out).exists(),
                              force=force, progress=progress, checkpoint_every_s=checkpoint_every_s)
    return done
