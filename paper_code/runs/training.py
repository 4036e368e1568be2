"""Running PPMO: the training loop (signals, divergence, stop rules, progress, checkpoints) and
:func:`distill`, which trains to a dataset file with its checkpoint and log beside it.

The algorithm of one meta-epoch is :meth:`paper_code.core.ppmo.PPMO.meta_epoch_step`; this module
decides when it runs and what is written. Everything here happens at meta-epoch boundaries,
where the run's state is consistent: a signal (Ctrl-C, ``kill``) is honoured there after the
checkpoint is written, so an interrupted run resumes to the same dataset as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import signal
import time
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm  # the plain bar: no widget warnings in notebooks without ipywidgets

from paper_code import checks
from paper_code.core.dataset import DatasetError, DistilledDataset, git_revision
from paper_code.core.ppmo import PPMO, Plugins
from paper_code.core.settings import PPMOConfig
from paper_code.runs.compilation import CompiledUpdate, fused_rollout
from paper_code.runs.distributed import any_rank, barrier, world
from paper_code.files import OutputLock, atomic_path, check_writable, lock_path, remove_stale_temporaries
from paper_code.runs.interrupts import RunInterrupted, deferred_interrupts
from paper_code.runs.live import LiveLog
from paper_code.runs.run_state import load_checkpoint, save_checkpoint


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


def train(run: PPMO, meta_epochs: int, *, progress: bool = True, checkpoint: str | Path | None = None,
          checkpoint_every_s: float = 180.0, stop_when: Callable[[list[dict[str, float]]], bool] | None = None,
          stop_rule: str | None = None, on_checkpoint: Callable[[PPMO], None] | None = None,
          on_meta_epoch: Callable[[dict[str, float], dict[str, float] | None], None] | None = None) -> PPMO:
    """Train until ``meta_epochs`` meta-epochs in total (counting resumed ones).

    Writes ``checkpoint`` every ``checkpoint_every_s`` seconds (0: after every meta-epoch) and
    at the end, then calls ``on_checkpoint``. Ctrl-C (SIGINT) or ``kill`` (SIGTERM) stop the
    run at the next meta-epoch boundary, after writing the checkpoint there
    (:class:`~paper_code.runs.interrupts.RunInterrupted`), so resuming gives the same result as an
    uninterrupted run. A meta-epoch whose dataset, critic, lr or losses are non-finite (or
    beyond what a dataset file may hold) stops the run with :class:`DivergenceError`; nothing
    is written after the last good checkpoint.
    ``stop_when(evaluations)`` may end the run early after an evaluation; such a run stays
    finished when resumed with the same ``stop_rule`` (a name for the rule). Resumed with a
    different rule it continues: training does not depend on the rule (evaluations use their
    own random streams), so the result equals an uninterrupted run under the new rule.
    ``on_meta_epoch(row, evaluation)`` is called after each meta-epoch with its history row and
    its evaluation (``None`` when none was made), e.g. by :class:`~paper_code.runs.live.LiveLog`.
    """
    cfg = run.cfg
    w = run.processes  # a multi-process run decides together (signals, checkpoint times); rank 0 shows progress
    bar = tqdm(total=meta_epochs, initial=run.meta_epoch, disable=not progress or not w.main, unit="meta-epoch",
               dynamic_ncols=True, mininterval=1.0)
    last_ckpt = time.perf_counter()
    recent: list[float] = []

    def invalid(e: DatasetError) -> DivergenceError:  # a value a dataset file's loader refuses (e.g. an lr of 0)
        return DivergenceError(_diverged(run, run.meta_epoch, f"its dataset is not valid ({e})", checkpoint))

    def check_dataset() -> None:  # before a checkpoint is written: one that --resume can load
        try:
            run.dataset()
        except DatasetError as e:
            raise invalid(e) from None

    def save() -> None:
        if checkpoint is None or (run.saved_at == run.meta_epoch and Path(checkpoint).exists()):
            return
        check_dataset()
        save_checkpoint(run, checkpoint)
        if on_checkpoint is not None:
            on_checkpoint(run)
        run.saved_at = run.meta_epoch

    def interrupted(signum: int | None) -> RunInterrupted:  # None: another rank received it
        return RunInterrupted(signum or signal.SIGTERM, run.meta_epoch, None if checkpoint is None else str(checkpoint))

    if run.stopped_early and stop_rule != run.stop_rule:
        run.stopped_early = False
    run.stop_rule = stop_rule
    trained = False
    with deferred_interrupts() as interrupts:
        try:
            while True:
                if any_rank(interrupts.signal is not None, cfg.device, w):  # a meta-epoch boundary: consistent state
                    save()
                    raise interrupted(interrupts.signal)
                if run.meta_epoch >= meta_epochs or run.stopped_early:
                    break
                if not trained:  # the code revision that trains (part of) this dataset
                    rev = git_revision()
                    if not run.revisions or run.revisions[-1] != rev:
                        run.revisions.append(rev)
                    trained = True
                t0 = time.perf_counter()
                try:
                    row = run.meta_epoch_step()
                except RuntimeError as e:  # e.g. sampling from nan probabilities
                    if not re.search(r"\b(nan|inf)\b", str(e)):
                        raise
                    problem = "non-finite action probabilities (the one-step learner overflowed)"
                    raise DivergenceError(_diverged(run, run.meta_epoch + 1, problem, checkpoint)) from None
                problem = run.divergence(row)
                if problem is not None:
                    raise DivergenceError(_diverged(run, run.meta_epoch, problem, checkpoint))
                run.wall_time += time.perf_counter() - t0
                row["wall_time_s"] = run.wall_time
                run.history.append(row)
                if not math.isnan(row["train_return"]):
                    recent = (recent + [row["train_return"]])[-20:]
                stop = False
                ev = None
                if cfg.eval_every and (run.meta_epoch % cfg.eval_every == 0 or run.meta_epoch == meta_epochs):
                    try:
                        ev = run.evaluate()  # builds the dataset: checked as its loader will check it
                    except DatasetError as e:
                        raise invalid(e) from None
                    run.evals.append(ev)
                    bar.set_postfix_str(f"eval sampled {ev['sampled_return']:.0f} greedy {ev['greedy_return']:.0f}",
                                        refresh=False)
                    stop = stop_when is not None and stop_when(run.evals)
                if on_meta_epoch is not None:
                    on_meta_epoch(row, ev)
                bar.set_description(
                    f"{run.env_steps / max(run.wall_time, 1e-9):,.0f} env-steps/s, "
                    f"train return {sum(recent) / max(len(recent), 1):.1f}, lr {row['lr']:.3g}", refresh=False)
                bar.update(1)
                if checkpoint is not None and any_rank(time.perf_counter() - last_ckpt >= checkpoint_every_s, cfg.device, w):
                    save()
                    last_ckpt = time.perf_counter()
                if stop:
                    run.stopped_early = True
            if trained:  # a finished run that was only resumed is left as it is
                save()
            if any_rank(interrupts.signal is not None, cfg.device, w):  # arrived during the last save: the run is complete
                raise interrupted(interrupts.signal)
        finally:
            bar.close()
    return run

def _diverged(run: PPMO, meta_epoch: int, problem: str, checkpoint: str | Path | None) -> str:
    kept = ("nothing was written" if checkpoint is None or run.saved_at is None
            else f"the checkpoint and dataset of meta-epoch {run.saved_at} are kept")
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


def distill(cfg: PPMOConfig, out: str | Path, meta_epochs: int, *, resume: bool = False, force: bool = False,
            progress: bool = True, checkpoint_every_s: float = 180.0,
            stop_when: Callable[[list[dict[str, float]]], bool] | None = None, stop_rule: str | None = None,
            live: str | Path | None = None) -> PPMO:
    """Run PPMO and write the dataset to ``out`` (with its checkpoint and log beside it).

    ``live``: a folder for DVCLive metrics and plots of the run's progress
    (:class:`~paper_code.runs.live.LiveLog`; rewritten from the checkpoint's history on resume).

    Everything is checked before anything is written: the settings, the environment, that the
    output, its checkpoint and its log can be written, and the checkpoint to resume from. The run
    holds an exclusive lock on ``out`` (another run on the same output fails at once), deletes
    temporaries that a killed run left, and writes the checkpoint, then the dataset and the log,
    every ``checkpoint_every_s`` seconds and at the end (see :func:`train` for interrupts and
    divergence).

    ``resume`` continues from the checkpoint (the result equals an uninterrupted run on the same
    device); with no checkpoint there is nothing to continue and the run starts. Without it, a checkpoint that already reached ``meta_epochs`` (a finished run) only
    has its dataset and log rewritten if they are missing or stale; any other existing checkpoint
    or output is an error unless ``force`` (start over). ``run.files_written`` tells whether this
    call wrote the dataset, ``run.log_written`` whether it wrote the log.
    """
    meta_epochs = checks.integer("meta_epochs", meta_epochs)
    checkpoint_every_s = checks.number("checkpoint_every_s", checkpoint_every_s, lo=0.0)
    if resume and force:
        raise ValueError("resume continues a run and force starts it over: pass one of them")
    out = Path(out)
    ckpt = checkpoint_path(out)
    live_files = [] if live is None else [Path(live) / "metrics.json", Path(live) / "plots" / "metrics" / "lr.tsv"]
    for p in (out, ckpt, log_path(out), lock_path(out), *live_files):
        check_writable(p)
    main = world().main  # a multi-process run: rank 0 locks and writes, every rank reads the checkpoint
    if main:
        OutputLock(out).check_free()
    if resume and not ckpt.is_file():  # nothing to continue (e.g. stopped during start-up): the run starts
        resume = False
    if not (resume or force) and out.exists() and not ckpt.exists():
        raise FileExistsError(f"{out} exists and has no checkpoint: start over with force=True")
    run = new_run(cfg)  # validates the environment and the sizes before anything is written
    with deferred_interrupts(), (OutputLock(out) if main else contextlib.nullcontext()):
        if main:
            remove_stale_temporaries(out)
        if (resume or not force) and ckpt.exists():
            load_checkpoint(run, ckpt)  # a wrong or damaged checkpoint: one clear error, nothing written
            finished = run.meta_epoch >= meta_epochs or (run.stopped_early and run.stop_rule == stop_rule)
            if not resume and not finished:
                raise FileExistsError(f"{ckpt} holds an unfinished run (meta-epoch {run.meta_epoch} of {meta_epochs}): "
                                      f"continue it with resume=True or start over with force=True")
        elif not force and out.exists():
            raise FileExistsError(f"{out} exists and has no checkpoint: start over with force=True")
        written = False

        def on_checkpoint(r: PPMO) -> None:
            nonlocal written
            if not main:
                return
            r.dataset().save(out)
            write_log(r, out)
            written = True

        live_log = None
        if live is not None and main:
            live_log = LiveLog(live)
            live_log.start(run.history, run.evals)
        try:
            train(run, meta_epochs, progress=progress, checkpoint=ckpt, checkpoint_every_s=checkpoint_every_s,
                  stop_when=stop_when, stop_rule=stop_rule, on_checkpoint=on_checkpoint,
                  on_meta_epoch=None if live_log is None else live_log.log)
        finally:
            if live_log is not None:
                live_log.close()
        # a finished run's dataset and log: written if missing or older than the checkpoint (a run
        # killed between writing its checkpoint and its dataset, or a deleted file)
        if main and not _dataset_current(run, out):
            run.dataset().save(out)
            written = True
        log_written = main and not _log_current(run, out)
        if log_written:
            write_log(run, out)
        barrier(run.processes)  # every rank returns once the files are written
    run.files_written = written
    run.log_written = log_written  # type: ignore[attr-defined]
    return run
