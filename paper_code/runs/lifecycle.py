"""One lifecycle for everything that trains to a file: ``distill`` (PPMO), ``compress`` (a fit to a
teacher) and ``ppo`` (a teacher).

A :class:`Job` is what trains (one step at a time; its state, outputs and checks); :func:`run_to_file`
owns the rest, the same for all three:

* everything is checked before anything is written (settings, the output's folder, the checkpoint
  to resume from); an exclusive lock on the output, and temporaries a killed run left are removed;
* ``resume`` continues from the checkpoint (with none there is nothing to continue and the run
  starts); without it a finished run only has a missing or stale output rewritten, and an
  unfinished checkpoint or an output without one is an error unless ``force`` (start over);
* the checkpoint, then the output and its log, every ``checkpoint_every_s`` seconds and at the end;
* Ctrl-C or ``kill`` stop the run at the next step boundary after writing them
  (:class:`~paper_code.runs.interrupts.RunInterrupted`), so resuming gives the uninterrupted result;
* a step the job calls diverged stops the run with :class:`DivergenceError`: nothing is written after
  the last good checkpoint;
* evaluations on the job's schedule, and a stop rule on them;
* over several processes (``torchrun``) the ranks decide together and rank 0 writes.

The checkpoint and the log sit beside the output: ``OUT.ckpt.pt`` and ``OUT.log.json``.
"""

from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from tqdm import tqdm  # the plain bar: no widget warnings in notebooks without ipywidgets

from paper_code.files import OutputLock, check_writable, lock_path, remove_stale_temporaries
from paper_code.runs.distributed import any_rank, barrier
from paper_code.runs.interrupts import RunInterrupted, deferred_interrupts


class DivergenceError(RuntimeError):
    """Training produced non-finite (or absurdly large) values; nothing of it was written."""


class InvalidState(ValueError):
    """What a job raises when its current state cannot become its output (e.g. a dataset value the
    file's loader refuses): the run has diverged."""


def checkpoint_path(out: str | Path) -> Path:
    """Where the checkpoint of the run that writes ``out`` is kept."""
    out = Path(out)
    return out.with_name(out.name + ".ckpt.pt")


def log_path(out: str | Path) -> Path:
    """Where a run's per-step history and evaluations are written (JSON)."""
    out = Path(out)
    return out.with_name(out.name + ".log.json")


@dataclass
class FinishedFiles:
    """A finished run known from its output and log alone (no checkpoint: too large to commit, or not
    kept): what callers read of the run itself. Each kind adds its own counters."""

    cfg: Any  # the settings it ran with
    env_steps: int
    wall_time: float  # seconds of training
    history: list[dict[str, float]]
    evals: list[dict[str, float]]
    files_written: bool = field(default=False, kw_only=True)


class Job(Protocol):
    """What :func:`run_to_file` trains: PPMO, a compression fit, PPO (the adapters in
    :mod:`paper_code.runs.training`)."""

    unit: str  # what one step is called: "meta-epoch", "step", "iteration"
    output: str  # what the output file is: "dataset", "policy file"
    what: str  # what the whole is called in messages: "run", "fit"
    processes: Any  # paper_code.core.ppmo.Processes: rank 0 writes; every rank decides together
    device: str  # where the ranks' collective decisions are made
    stopped_early: bool  # a stop rule ended it (it stays finished under the same rule)
    stop_rule: str | None
    evals: list[dict[str, float]]

    @property
    def position(self) -> int:
        """Steps done (counting resumed ones)."""

    def step(self) -> dict[str, float]:
        """One step; its history row (not yet recorded)."""

    def divergence(self, row: dict[str, float]) -> str | None:
        """What went wrong in the step that gave ``row`` (None: nothing)."""

    def record(self, row: dict[str, float], seconds: float) -> None:
        """Keep a good step's row and its time."""

    def evaluation_due(self, total: int) -> bool:
        """Whether the job evaluates after this step."""

    def evaluate(self) -> dict[str, float]:
        """An evaluation of the current state (its row; the job keeps it); :class:`InvalidState` if
        the state cannot be evaluated."""

    def show(self, bar: tqdm, row: dict[str, float], evaluation: dict[str, float] | None) -> None:
        """The progress bar's text after a step."""

    def invalid(self) -> str | None:
        """Why the current state cannot be saved (None: it can), checked before each checkpoint."""

    def save(self, checkpoint: Path) -> None:
        """Write the checkpoint (a collective over processes; rank 0 writes)."""

    def load(self, checkpoint: Path) -> None:
        """Continue from a checkpoint (one clear ``CheckpointError`` if it is not one of this job)."""

    def write(self, out: Path) -> None:
        """Write the output and its log from the current state (rank 0)."""

    def refresh(self, out: Path) -> bool:
        """Rewrite whatever of the output and its log does not hold the current state (a missing file,
        or one older than the checkpoint); whether the output itself was written."""


def _diverged(job: Job, step: int, problem: str, saved_at: int | None) -> DivergenceError:
    kept = ("nothing was written" if saved_at is None
            else f"the checkpoint and {job.output} of {job.unit} {saved_at} are kept")
    return DivergenceError(f"training diverged in {job.unit} {step}: {problem}; {kept}")


class Loop:
    """The steps of one job until ``total``: checkpoints, interrupts, divergence, evaluations, stop
    rules, progress (what :func:`run_to_file` runs inside the output's lock; also on its own)."""

    def __init__(self, job: Job, checkpoint: str | Path | None, *, checkpoint_every_s: float = 180.0,
                 on_checkpoint: Callable[[], None] | None = None, saved_at: int | None = None) -> None:
        self.job, self.on_checkpoint = job, on_checkpoint
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.checkpoint_every_s = checkpoint_every_s
        self.saved_at = saved_at  # the step of the checkpoint on disk (None: none written by or for this run)

    def save(self) -> None:
        job = self.job
        if self.checkpoint is None or (self.saved_at == job.position and self.checkpoint.exists()):
            return
        problem = job.invalid()  # a checkpoint that the next resume can load, or none
        if problem is not None:
            raise _diverged(job, job.position, problem, self.saved_at)
        job.save(self.checkpoint)
        if self.on_checkpoint is not None:
            self.on_checkpoint()
        self.saved_at = job.position

    def _interrupted(self, signum: int | None) -> RunInterrupted:  # None: another rank received it
        job = self.job
        return RunInterrupted(signum or signal.SIGTERM, job.position, None if self.checkpoint is None else str(self.checkpoint),
                              unit=job.unit, output=job.output)

    def run(self, total: int, *, progress: bool = True, desc: str | None = None,
            stop_when: Callable[[list[dict[str, float]]], bool] | None = None, stop_rule: str | None = None,
            on_step: Callable[[dict[str, float], dict[str, float] | None], None] | None = None) -> None:
        """Train until ``total`` steps in all. ``stop_when(evaluations)`` may end the run after an
        evaluation; it then stays finished when resumed with the same ``stop_rule`` (a name for the
        rule); resumed with another rule it continues (the steps do not depend on the rule).
        ``on_step(row, evaluation)`` after each step (``evaluation``: None when none was made)."""
        job, w = self.job, self.job.processes
        bar = tqdm(total=total, initial=job.position, disable=not progress or not w.main, unit=job.unit,
                   desc=desc, dynamic_ncols=True, mininterval=1.0)
        if job.stopped_early and stop_rule != job.stop_rule:
            job.stopped_early = False
        job.stop_rule = stop_rule
        last = time.perf_counter()
        trained = False
        with deferred_interrupts() as interrupts:
            try:
                while True:
                    if any_rank(interrupts.signal is not None, job.device, w):  # a step boundary: consistent state
                        self.save()
                        raise self._interrupted(interrupts.signal)
                    if job.position >= total or job.stopped_early:
                        break
                    trained = True
                    t0 = time.perf_counter()
                    row = job.step()
                    problem = job.divergence(row)
                    if problem is not None:
                        raise _diverged(job, job.position, problem, self.saved_at)
                    job.record(row, time.perf_counter() - t0)
                    ev, stop = None, False
                    if job.evaluation_due(total):
                        try:
                            ev = job.evaluate()
                        except InvalidState as e:
                            raise _diverged(job, job.position, f"its {job.output} is not valid ({e})",
                                            self.saved_at) from None
                        stop = stop_when is not None and stop_when(job.evals)
                    if on_step is not None:
                        on_step(row, ev)
                    job.show(bar, row, ev)
                    bar.update(1)
                    if self.checkpoint is not None and any_rank(time.perf_counter() - last >= self.checkpoint_every_s,
                                                                job.device, w):
                        self.save()
                        last = time.perf_counter()
                    if stop:
                        job.stopped_early = True
                if trained:  # a finished run that was only resumed is left as it is
                    self.save()
                if any_rank(interrupts.signal is not None, job.device, w):  # arrived during the last save: complete
                    raise self._interrupted(interrupts.signal)
            finally:
                bar.close()


def run_to_file(start: Callable[[], Job], out: str | Path, total: int, *, resume: bool = False, force: bool = False,
                progress: bool = True, checkpoint_every_s: float = 180.0, desc: str | None = None,
                stop_when: Callable[[list[dict[str, float]]], bool] | None = None, stop_rule: str | None = None,
                on_step: Callable[[dict[str, float], dict[str, float] | None], None] | None = None,
                also_writes: tuple[Path, ...] = (), what: str = "run", main: bool = True,
                finished_without_checkpoint: Callable[[], Any] | None = None,
                finished_checkpoint: Callable[[Path], Any] | None = None,
                on_ready: Callable[[Any], None] | None = None) -> Any:
    """Train the job ``start()`` makes to ``total`` steps, writing ``out`` (see the module's lifecycle).

    ``finished_without_checkpoint()``: the finished job an output without a checkpoint shows (None:
    it shows none, an error unless ``force``); ``finished_checkpoint(ckpt)``: a finished job read from
    its checkpoint without building one (e.g. without collecting a teacher's states again), or None.
    ``main``: whether this process writes (rank 0); ``on_ready(job)``: called once the job is loaded,
    before its first step (e.g. a live log starting from the checkpoint's history). Returns the job,
    with ``files_written`` (whether this call wrote the output)."""
    if resume and force:
        raise ValueError(f"resume continues a {what} and force starts it over: pass one of them")
    out = Path(out)
    ckpt, log = checkpoint_path(out), log_path(out)
    for p in (out, ckpt, log, lock_path(out), *also_writes):
        check_writable(p)
    if main:
        OutputLock(out).check_free()
    if resume and not ckpt.is_file():  # nothing to continue (e.g. stopped during start-up): the run starts
        resume = False
    if not (resume or force) and out.exists() and not ckpt.exists():
        done = None if finished_without_checkpoint is None else finished_without_checkpoint()
        if done is not None:
            return done
        raise FileExistsError(f"{out} exists and has no checkpoint: start over with force=True")
    if finished_checkpoint is not None and not force and ckpt.is_file() and out.is_file() and log.is_file():
        done = finished_checkpoint(ckpt)
        if done is not None:  # nothing to do
            return done
    job = start()  # validates the settings and the environment before anything is written
    written = False

    def write() -> None:
        nonlocal written
        if main:
            job.write(out)
            written = True

    with deferred_interrupts(), (OutputLock(out) if main else contextlib.nullcontext()):
        if main:
            remove_stale_temporaries(out)
        saved_at = None
        if (resume or not force) and ckpt.exists():
            job.load(ckpt)  # a wrong or damaged checkpoint: one clear error, nothing written
            saved_at = job.position
            finished = job.position >= total or (job.stopped_early and job.stop_rule == stop_rule)
            if not resume and not finished:
                raise FileExistsError(f"{ckpt} holds an unfinished {what} ({job.unit} {job.position} of {total}): "
                                      f"continue it with resume=True or start over with force=True")
        if on_ready is not None:
            on_ready(job)
        loop = Loop(job, ckpt, checkpoint_every_s=checkpoint_every_s, on_checkpoint=write, saved_at=saved_at)
        loop.run(total, progress=progress, desc=desc, stop_when=stop_when, stop_rule=stop_rule, on_step=on_step)
        # a finished run's output and log: written if missing or older than the checkpoint (a run killed
        # between writing its checkpoint and its output, or a deleted file)
        if main and job.refresh(out):
            written = True
        barrier(job.processes)  # every rank returns once the files are written
    job.files_written = written  # type: ignore[attr-defined]
    return job
