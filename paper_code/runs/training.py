"""What trains to a file: :func:`distill` (PPMO to a dataset), :func:`compress_file` (a fit to a
teacher, to a dataset) and :func:`ppo_file` (PPO, to a policy file).

Each is a :class:`~paper_code.runs.lifecycle.Job` — :class:`PPMOJob`, :class:`FitJob`, :class:`PPOJob`:
one step, its divergence check, its checkpoint and files — run by the one lifecycle of
:mod:`paper_code.runs.lifecycle` (lock, checkpoints, interrupts, logs, stop rules, rank 0, "up to
date"). The algorithms themselves are in the core (:meth:`paper_code.core.ppmo.PPMO.meta_epoch_step`,
:meth:`paper_code.core.compress.Compression.step`, :meth:`paper_code.core.ppo.PPO.step`); everything
here happens at step boundaries, where a run's state is consistent: a signal (Ctrl-C, ``kill``) is
honoured there after the checkpoint is written, so an interrupted run resumes to the same result as an
uninterrupted one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from paper_code import checks
from paper_code.core.compress import (Compression, FinishedFit, FrameCompression, Teacher, load_teacher)
from paper_code.core.dataset import DatasetError, DistilledDataset, git_revision
from paper_code.core.ppmo import PPMO, OneProcess, Plugins
from paper_code.core.ppo import EVAL_SEED_OFFSET, PPO, _cache_key, load_policy, save_policy
from paper_code.core.settings import CompressConfig, PPMOConfig, PPOConfig, fit_settings
from paper_code.files import atomic_path
from paper_code.runs.checkpoints import read_checkpoint, write_checkpoint
from paper_code.runs.compilation import CompiledUpdate, fused_rollout
from paper_code.runs.distributed import world
from paper_code.runs.lifecycle import (DivergenceError, FinishedFiles, InvalidState, Loop, checkpoint_path,  # noqa: F401
                                       log_path, run_to_file)
from paper_code.runs.live import LiveLog
from paper_code.runs.run_state import load_checkpoint, save_checkpoint


def _show_rates(bar: tqdm, run: Any, recent: list[float], evaluation: dict[str, float] | None, *, digits: int,
                extra: str = "") -> None:
    """A run's progress text: env steps per second, the recent training return, the last evaluation."""
    if evaluation is not None:
        bar.set_postfix_str(f"eval sampled {evaluation['sampled_return']:.{digits}f} greedy "
                            f"{evaluation['greedy_return']:.{digits}f}", refresh=False)
    bar.set_description(f"{run.env_steps / max(run.wall_time, 1e-9):,.0f} env-steps/s, train return "
                        f"{sum(recent) / max(len(recent), 1):.1f}{extra}", refresh=False)


# ============================================================================ PPMO
def plugins(cfg: PPMOConfig) -> Plugins:
    """How a run of ``cfg`` executes here: over this process's ``torchrun`` world (one process
    without it), with ``cfg.compile`` compiled updates and fused cart-pole rollouts."""
    w = world()
    if not cfg.compile:
        return Plugins(processes=w)
    return Plugins(processes=w, update=CompiledUpdate(cfg.device, w), fused_rollout=fused_rollout)


def new_run(cfg: PPMOConfig) -> PPMO:
    """A fresh PPMO run of ``cfg`` with its :func:`plugins` (what ``distill`` trains)."""
    return PPMO(cfg, plugins(cfg))


def _log_text(run: PPMO) -> str:
    return json.dumps({"config": run.cfg.to_dict(), "history": run.history, "evals": run.evals}, separators=(",", ":"))


def write_log(run: PPMO, out: str | Path) -> Path:
    """The run's configuration, per-meta-epoch history and evaluations as compact JSON."""
    path = log_path(out)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(_log_text(run))
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
    """Whether the log beside ``out`` holds exactly what :func:`write_log` would write (content, not row counts)."""
    try:
        return log_path(out).read_text() == _log_text(run)
    except (OSError, UnicodeDecodeError):
        return False


class PPMOJob:
    """PPMO as a lifecycle job: meta-epochs, evaluations every ``eval_every``, the dataset and its log;
    the git revision of the code that trains it is recorded in the run."""

    unit, output, what = "meta-epoch", "dataset", "run"

    def __init__(self, run: PPMO) -> None:
        self.run, self.processes, self.device = run, run.processes, run.cfg.device
        self.noted_revision = False
        self.recent: list[float] = []
        self.log_written = False

    # the loop's state that the checkpoint keeps lives in the run
    @property
    def position(self) -> int:
        return self.run.meta_epoch

    @property
    def stopped_early(self) -> bool:
        return self.run.stopped_early

    @stopped_early.setter
    def stopped_early(self, value: bool) -> None:
        self.run.stopped_early = value

    @property
    def stop_rule(self) -> str | None:
        return self.run.stop_rule

    @stop_rule.setter
    def stop_rule(self, value: str | None) -> None:
        self.run.stop_rule = value

    @property
    def evals(self) -> list[dict[str, float]]:
        return self.run.evals

    def step(self) -> dict[str, float]:
        run = self.run
        if not self.noted_revision:  # the code revision that trains (part of) this dataset
            rev = git_revision()
            if not run.revisions or run.revisions[-1] != rev:
                run.revisions.append(rev)
            self.noted_revision = True
        return run.meta_epoch_step()

    def divergence(self, row: dict[str, float]) -> str | None:
        return self.run.divergence(row)

    def record(self, row: dict[str, float], seconds: float) -> None:
        run = self.run
        run.wall_time += seconds
        row["wall_time_s"] = run.wall_time
        run.history.append(row)
        if not math.isnan(row["train_return"]):
            self.recent = (self.recent + [row["train_return"]])[-20:]

    def evaluation_due(self, total: int) -> bool:
        every = self.run.cfg.eval_every
        return bool(every) and (self.run.meta_epoch % every == 0 or self.run.meta_epoch == total)

    def evaluate(self) -> dict[str, float]:
        try:
            ev = self.run.evaluate()  # builds the dataset: checked as its loader will check it
        except DatasetError as e:
            raise InvalidState(str(e)) from None
        self.run.evals.append(ev)
        return ev

    def show(self, bar: tqdm, row: dict[str, float], evaluation: dict[str, float] | None) -> None:
        _show_rates(bar, self.run, self.recent, evaluation, digits=0, extra=f", lr {row['lr']:.3g}")

    def invalid(self) -> str | None:
        try:  # a checkpoint that --resume can load: its dataset as the file's loader checks it
            self.run.dataset()
        except DatasetError as e:
            return f"its dataset is not valid ({e})"
        return None

    def save(self, checkpoint: Path) -> None:
        save_checkpoint(self.run, checkpoint)

    def load(self, checkpoint: Path) -> None:
        load_checkpoint(self.run, checkpoint)

    def write(self, out: Path) -> None:
        self.run.dataset().save(out)
        write_log(self.run, out)

    def refresh(self, out: Path) -> bool:
        written = not _dataset_current(self.run, out)
        if written:
            self.run.dataset().save(out)
        if not _log_current(self.run, out):
            write_log(self.run, out)
            self.log_written = True
        return written


def train(run: PPMO, meta_epochs: int, *, progress: bool = True, checkpoint: str | Path | None = None,
          checkpoint_every_s: float = 180.0, stop_when: Callable[[list[dict[str, float]]], bool] | None = None,
          stop_rule: str | None = None, on_checkpoint: Callable[[PPMO], None] | None = None,
          on_meta_epoch: Callable[[dict[str, float], dict[str, float] | None], None] | None = None) -> PPMO:
    """Train ``run`` until ``meta_epochs`` meta-epochs in total (counting resumed ones), without the
    output file's lifecycle (:func:`distill` has it): the same loop (:class:`~paper_code.runs.lifecycle.Loop`),
    writing ``checkpoint`` every ``checkpoint_every_s`` seconds and at the end and then calling
    ``on_checkpoint(run)``; interrupts, divergence (:class:`DivergenceError`) and the stop rule as there.
    ``on_meta_epoch(row, evaluation)`` after each meta-epoch (e.g. :class:`~paper_code.runs.live.LiveLog`)."""
    job = PPMOJob(run)
    loop = Loop(job, checkpoint, checkpoint_every_s=checkpoint_every_s,
                on_checkpoint=None if on_checkpoint is None else (lambda: on_checkpoint(run)))
    loop.run(meta_epochs, progress=progress, stop_when=stop_when, stop_rule=stop_rule, on_step=on_meta_epoch)
    return run


@dataclass
class FinishedRun(FinishedFiles):
    """A finished distillation known from its files alone (dataset and log, no checkpoint): what
    the notebooks and the command line read of a :class:`~paper_code.core.ppmo.PPMO` run."""

    meta_epoch: int = 0
    stopped_early: bool = False
    lr: torch.Tensor | None = None  # the dataset's inner lr
    log_written: bool = False


def finished_dataset(cfg: PPMOConfig, out: str | Path, meta_epochs: int) -> FinishedRun | None:
    """The run behind dataset ``out`` when its provenance and its log show it finished with exactly ``cfg``
    and ``meta_epochs`` (a committed run whose checkpoint was not kept, e.g. on a fresh clone); None
    otherwise. A warm-started run (``init_dataset``) is not read this way: its start file may have changed."""
    if cfg.init_dataset:
        return None
    try:
        ds = DistilledDataset.load(out)
        prov = ds.provenance
        config = json.loads(json.dumps(cfg.to_dict()))
        if prov.get("config") != config or int(prov.get("meta_epochs", -1)) != meta_epochs:
            return None
        log = json.loads(log_path(Path(out)).read_text())
        if log.get("config") != config or len(log["history"]) != meta_epochs:  # a log of another run
            return None
        return FinishedRun(cfg, int(prov["env_steps"]), float(prov.get("wall_time_s", "nan")), log["history"],
                           log.get("evals", []), meta_epoch=meta_epochs, lr=ds.lr.reshape(()))
    except (DatasetError, OSError, ValueError, KeyError, TypeError):
        return None


def distill(cfg: PPMOConfig, out: str | Path, meta_epochs: int, *, resume: bool = False, force: bool = False,
            progress: bool = True, checkpoint_every_s: float = 180.0,
            stop_when: Callable[[list[dict[str, float]]], bool] | None = None, stop_rule: str | None = None,
            live: str | Path | None = None) -> PPMO:
    """Run PPMO and write the dataset to ``out`` (its checkpoint and log beside it), with the lifecycle
    of :func:`~paper_code.runs.lifecycle.run_to_file`: checked first, locked, checkpointed, interruptible,
    resumable; a finished run only has a missing or stale dataset or log rewritten.

    ``stop_when(evaluations)`` may end the run early after an evaluation (it stays finished when
    resumed with the same ``stop_rule``); ``live``: a folder for DVCLive metrics and plots of the run's
    progress (rewritten from the checkpoint's history on resume). Over several processes (``torchrun``)
    rank 0 locks and writes and every rank reads the checkpoint. Returns the run; ``run.files_written``
    tells whether this call wrote the dataset, ``run.log_written`` whether it wrote the log."""
    meta_epochs = checks.integer("meta_epochs", meta_epochs)
    checkpoint_every_s = checks.number("checkpoint_every_s", checkpoint_every_s, lo=0.0)
    live_files = () if live is None else (Path(live) / "metrics.json", Path(live) / "plots" / "metrics" / "lr.tsv")
    main = world().main  # rank 0 locks and writes
    live_log = LiveLog(live) if live is not None and main else None

    def ready(job: PPMOJob) -> None:  # the history so far first (a resumed run's, from its checkpoint)
        if live_log is not None:
            live_log.start(job.run.history, job.run.evals)

    try:
        job = run_to_file(lambda: PPMOJob(new_run(cfg)), out, meta_epochs, resume=resume, force=force,
                          progress=progress, checkpoint_every_s=checkpoint_every_s, stop_when=stop_when,
                          stop_rule=stop_rule, on_step=None if live_log is None else live_log.log,
                          also_writes=live_files, main=main, on_ready=ready,
                          finished_without_checkpoint=lambda: finished_dataset(cfg, out, meta_epochs))
    finally:
        if live_log is not None:
            live_log.close()
    if isinstance(job, FinishedRun):
        return job  # type: ignore[return-value]
    run = job.run
    run.files_written = job.files_written  # type: ignore[attr-defined]
    run.log_written = job.log_written  # type: ignore[attr-defined]
    return run


class _SelfSaving:
    """What a job whose algorithm saves itself (``state_dict()`` / ``load_state_dict(sd, where)``: a
    fit, PPO) shares: one process, no stop rule, its checkpoint, and its files rewritten when missing."""

    stopped_early, stop_rule = False, None
    state: Any  # the object that saves itself

    def write_output(self, out: Path) -> None:
        raise NotImplementedError

    def write_log(self, out: Path) -> None:
        raise NotImplementedError

    def write(self, out: Path) -> None:
        self.write_output(out)
        self.write_log(out)

    def invalid(self) -> str | None:
        return None

    def save(self, checkpoint: Path) -> None:
        write_checkpoint(self.state.state_dict(), checkpoint)

    def load(self, checkpoint: Path) -> None:
        self.state.load_state_dict(read_checkpoint(checkpoint), str(checkpoint))

    def refresh(self, out: Path) -> bool:
        """A missing output is written with its log; a missing log alone is written without touching the output
        (a clone of the project without the logs keeps its committed files and says it wrote none)."""
        if not out.exists():
            self.write(out)
            return True
        if not log_path(out).exists():
            self.write_log(out)
        return False


# ============================================================================ compress
class FitJob(_SelfSaving):
    """A compression fit as a lifecycle job: Adam steps on the KL to the teacher; the dataset and a
    JSON log of the KL per step."""

    unit, output, what = "step", "dataset", "fit"

    def __init__(self, comp: Compression) -> None:
        self.comp = self.state = comp
        self.processes, self.device, self.evals = OneProcess(), "cpu", []

    @property
    def position(self) -> int:
        return self.comp.step_count

    def step(self) -> dict[str, float]:
        return self.comp.step()  # (keeps its row and its time)

    def divergence(self, row: dict[str, float]) -> str | None:
        if math.isfinite(row["kl"]):
            return None
        return f"the KL became {row['kl']} (try a smaller `adam_lr` or `init_lr`)"

    def record(self, row: dict[str, float], seconds: float) -> None:
        return None

    def evaluation_due(self, total: int) -> bool:
        return False

    def evaluate(self) -> dict[str, float]:
        raise NotImplementedError("a fit is evaluated by `evaluate` on its dataset")

    def show(self, bar: tqdm, row: dict[str, float], evaluation: dict[str, float] | None) -> None:
        bar.set_postfix_str(f"KL {row['kl']:.4f}, lr {row['lr']:.3g}", refresh=False)

    def write_output(self, out: Path) -> None:
        self.comp.dataset().save(out)

    def write_log(self, out: Path) -> None:
        comp = self.comp
        with atomic_path(log_path(out)) as tmp:
            Path(tmp).write_text(json.dumps({"settings": comp.cfg.to_dict(), "teacher": comp.teacher.source,
                                             "history": comp.history}) + "\n")


def _finished_checkpoint(sd: dict[str, Any], teacher: Teacher, cfg: CompressConfig) -> FinishedFit | None:
    """Checkpoint ``sd`` as a :class:`FinishedFit` if it is a finished fit of ``cfg`` on ``teacher`` (else
    None: the full check and load decide)."""
    try:
        ok = (sd.get("kind") == "compression" and isinstance(sd.get("config"), dict)
              and fit_settings(sd["config"]) == fit_settings(cfg.to_dict()) and sd.get("teacher_sha256") == teacher.sha256
              and int(sd["step"]) >= cfg.steps and len(sd["history"]) == int(sd["step"]))
        if not ok:
            return None
        return FinishedFit(teacher, cfg, int(sd["step"]), float(sd["wall_time"]), float(sd["collect_s"]),
                           [dict(r) for r in sd["history"]], sd["params"][2].detach().clone())
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def _finished_files(out: Path, teacher: Teacher, cfg: CompressConfig) -> FinishedFit | None:
    """A finished fit of ``cfg`` on ``teacher`` known from its dataset and log alone (no checkpoint:
    too large to commit for a Nature-CNN student's encoder); None if they do not show one."""
    try:
        ds = DistilledDataset.load(out)
        prov = ds.provenance
        if (prov.get("teacher_sha256") != teacher.sha256 or fit_settings(prov.get("settings")) != fit_settings(cfg.to_dict())
                or int(prov.get("steps", -1)) < cfg.steps):
            return None
        history = json.loads(log_path(out).read_text())["history"]
        collect = float(prov["collect_s"])
        return FinishedFit(teacher, cfg, int(prov["steps"]), float(prov["wall_time_s"]) - collect, collect, history,
                           ds.lr.reshape(()).log())
    except (DatasetError, OSError, ValueError, KeyError, TypeError):
        return None


def fit_path(out: str | Path) -> Path:
    """With a fine-tune, where the fitted dataset (the warm start) goes: ``X.fit.safetensors`` beside ``X``."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".safetensors") + ".fit.safetensors")


def compress_file(teacher_path: str | Path, out: str | Path, cfg: CompressConfig, *, resume: bool = False,
                  force: bool = False, progress: bool = True, checkpoint_every_s: float = 180.0
                  ) -> Compression | FinishedFit:
    """Fit ``cfg.size`` instances to the teacher and write the dataset to ``out`` (its checkpoint and a
    JSON log of the KL per step beside it), with the lifecycle of
    :func:`~paper_code.runs.lifecycle.run_to_file`. A finished fit (known from its checkpoint, or from
    its dataset and log when no checkpoint was kept) is returned without collecting the teacher's
    states again; ``.files_written`` tells whether this call wrote the dataset."""
    checkpoint_every_s = checks.number("checkpoint_every_s", checkpoint_every_s, lo=0.0)
    out = Path(out)
    teachers: list[Teacher] = []

    def teacher() -> Teacher:  # loaded once the output's checks have passed
        if not teachers:
            teachers.append(load_teacher(teacher_path))
        return teachers[0]

    def start() -> FitJob:
        t = teacher()
        if t.learner.kind != "nature_cnn" and cfg.split is not None:
            raise ValueError(f"split applies to Nature-CNN (Atari) teachers; {t.source} has an "
                             f"{t.learner.kind} learner")
        return FitJob((FrameCompression if t.learner.kind == "nature_cnn" else Compression)(t, cfg))

    job = run_to_file(start, out, cfg.steps, resume=resume, force=force, progress=progress,
                      checkpoint_every_s=checkpoint_every_s, desc=f"compress B={cfg.size}", what="fit",
                      finished_without_checkpoint=lambda: _finished_files(out, teacher(), cfg),
                      finished_checkpoint=lambda ckpt: _finished_checkpoint(read_checkpoint(ckpt), teacher(), cfg))
    if isinstance(job, FinishedFit):
        return job
    job.comp.files_written = job.files_written  # type: ignore[attr-defined]
    return job.comp


# ============================================================================ ppo
@dataclass
class FinishedPPO(FinishedFiles):
    """A finished PPO run known from its policy file alone (what callers read of a :class:`PPO`)."""

    iteration: int = 0
    iterations: int = 0


def finished_policy(cfg: PPOConfig, total_env_steps: int, path: str | Path) -> FinishedPPO | None:
    """The run behind policy file ``path`` if the file shows it finished with ``cfg`` and this budget
    (its key, and env steps = the budget's whole iterations); None otherwise."""
    try:
        result, meta = load_policy(path)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):  # (safetensors raises its own errors too)
        return None
    iterations = max(1, int(total_env_steps) // (cfg.num_envs * cfg.num_steps))
    steps = iterations * cfg.num_envs * cfg.num_steps
    if meta.get("key") != _cache_key(cfg, total_env_steps) or int(meta.get("env_steps", -1)) != steps:
        return None
    return FinishedPPO(cfg, steps, float(meta.get("wall_time_s", "nan")), result.history, result.evals or [],
                       iteration=len(result.history), iterations=iterations)


class PPOJob(_SelfSaving):
    """PPO as a lifecycle job: iterations, evaluations every ``eval_every`` (and at the end) on fresh
    episodes with their own seeds, the policy file and a JSON log."""

    unit, output, what = "iteration", "policy file", "run"

    def __init__(self, run: PPO, total_env_steps: int, eval_every: int, eval_episodes: int) -> None:
        self.run = self.state = run
        self.processes, self.device = OneProcess(), run.cfg.device
        self.total_env_steps, self.eval_every, self.eval_episodes = total_env_steps, eval_every, eval_episodes
        self.eval_seed = run.cfg.seed + EVAL_SEED_OFFSET
        self.recent: list[float] = []

    @property
    def position(self) -> int:
        return self.run.iteration

    @property
    def evals(self) -> list[dict[str, float]]:
        return self.run.evals

    def step(self) -> dict[str, float]:
        return self.run.step()  # (keeps its row and its time)

    def divergence(self, row: dict[str, float]) -> str | None:
        if all(math.isfinite(float(v.detach().sum())) for v in self.run.params):
            return None
        return "non-finite parameters"

    def record(self, row: dict[str, float], seconds: float) -> None:
        if not math.isnan(row["train_return"]):
            self.recent = (self.recent + [row["train_return"]])[-20:]

    def evaluation_due(self, total: int) -> bool:
        it = self.run.iteration
        return bool(self.eval_every and it % self.eval_every == 0) or it == self.run.iterations

    def evaluate(self) -> dict[str, float]:
        ev = self.run.evaluate(self.eval_episodes, self.eval_seed)
        self.run.evals.append(ev)
        return ev

    def show(self, bar: tqdm, row: dict[str, float], evaluation: dict[str, float] | None) -> None:
        _show_rates(bar, self.run, self.recent, evaluation, digits=1)

    def write_output(self, out: Path) -> None:
        run, cfg = self.run, self.run.cfg
        extra = {"evals": json.dumps(run.evals, separators=(",", ":")), "wall_time_s": f"{run.wall_time:.3f}",
                 "env_steps": str(run.env_steps), "git_revision": git_revision()}
        save_policy(run.result(), cfg, self.total_env_steps, out, extra)

    def write_log(self, out: Path) -> None:
        run, cfg = self.run, self.run.cfg
        with atomic_path(log_path(out)) as tmp:
            Path(tmp).write_text(json.dumps({"config": json.loads(_cache_key(cfg, self.total_env_steps)),
                                             "history": run.history, "evals": run.evals}, separators=(",", ":")))


def ppo_file(cfg: PPOConfig, out: str | Path, total_env_steps: int, *, resume: bool = False, force: bool = False,
             progress: bool = True, checkpoint_every_s: float = 180.0, eval_every: int = 0,
             eval_episodes: int = 8) -> PPO | FinishedPPO:
    """Train PPO for ``total_env_steps`` env steps and write the policy file ``out`` (its checkpoint
    ``out.ckpt.pt`` and a JSON log ``out.log.json`` of every iteration and evaluation beside it), with
    the lifecycle of :func:`~paper_code.runs.lifecycle.run_to_file` (a resumed run starts fresh
    episodes: see :class:`~paper_code.core.ppo.PPO`). ``eval_every`` iterations (and at the end) the
    policy plays ``eval_episodes`` fresh episodes sampled and as many greedy (the same seeds each time).
    A finished run whose checkpoint was not kept is known from its policy file. ``.files_written``
    tells whether this call wrote."""
    total_env_steps = checks.integer("total_env_steps", total_env_steps)
    eval_every = checks.integer("eval_every", eval_every, lo=0)
    eval_episodes = checks.integer("eval_episodes", eval_episodes)
    checkpoint_every_s = checks.number("checkpoint_every_s", checkpoint_every_s, lo=0.0)
    iterations = max(1, total_env_steps // (cfg.num_envs * cfg.num_steps))
    job = run_to_file(lambda: PPOJob(PPO(cfg, total_env_steps), total_env_steps, eval_every, eval_episodes), out,
                      iterations, resume=resume, force=force, progress=progress, checkpoint_every_s=checkpoint_every_s,
                      desc=f"ppo {cfg.env_id}",
                      finished_without_checkpoint=lambda: finished_policy(cfg, total_env_steps, out))
    if isinstance(job, FinishedPPO):
        return job
    job.run.files_written = job.files_written  # type: ignore[attr-defined]
    return job.run
