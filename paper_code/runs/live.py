"""A run's progress as DVCLive metrics, for ``dvc exp show``, ``dvc plots show`` and VS Code's DVC view.

:class:`LiveLog` mirrors a run's history into a DVCLive folder: one ``plots/metrics/<name>.tsv``
per quantity with the meta-epoch as the step (the training return, the inner lr, the PPO
losses every meta-epoch; the one-step learners' evaluated returns at each evaluation) and
``metrics.json`` with the last evaluation's sampled return. The folder always equals the run's own history: a
resumed run rewrites it from its checkpoint, so rows logged after the last checkpoint of an
interrupted run do not survive as duplicates. ``distill --live DIR`` and the ``distill`` stage of
``dvc.yaml`` (``dvc exp run distill -S distill.preset=...``) use it; the notebooks' learning curves
come from the runs' JSON logs, which hold the same rows.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from paper_code.files import atomic_path

#: per-meta-epoch quantities logged (the names of the history rows) and the evaluations' ones
TRAINING = ("train_return", "lr", "env_steps", "pg_loss", "v_loss", "entropy", "approx_kl", "clipfrac")
EVALUATION = ("sampled_return", "greedy_return")


class LiveLog:
    """DVCLive logging of one run into ``folder``: a curve's row as each meta-epoch ends,
    ``metrics.json`` at each evaluation."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._live: Any = None
        self._sampled: float | None = None  # the last evaluation's sampled return

    def start(self, history: list[dict[str, float]], evals: list[dict[str, float]]) -> None:
        """Start the folder afresh from a run's ``history`` and ``evals`` (empty for a new run)."""
        from dvclive import Live  # imported here: dvclive (and dvc) load only when a run asks for it

        logging.getLogger("dvclive").setLevel(logging.WARNING)  # no "Logging to experiment ..." lines
        # dvcyaml=False: dvc.yaml declares the folder's metrics and plots itself; save_dvc_exp=False:
        # an experiment is `dvc exp run`'s to record, not a library call's
        self._live = Live(str(self.folder), resume=False, report=None, save_dvc_exp=False, dvcyaml=False)
        at = {int(e["meta_epoch"]): e for e in evals}
        for row in history:
            self._log(row, at.get(int(row["meta_epoch"])))
        self._sync()

    def log(self, row: dict[str, float], evaluation: dict[str, float] | None = None) -> None:
        """Log one meta-epoch's ``row`` (and its evaluation, if one was made)."""
        self._log(row, evaluation)
        if evaluation is not None:
            self._sync()

    def close(self) -> None:
        """Write ``metrics.json`` (the last evaluation's sampled return) and stop logging."""
        if self._live is not None:
            self._sync()
            self._live = None

    def _log(self, row: dict[str, float], evaluation: dict[str, float] | None) -> None:
        live = self._live
        live.step = int(row["meta_epoch"])
        for name in TRAINING:
            value = row.get(name)
            if value is not None and not math.isnan(value):  # nan: no episode ended in this rollout
                live.log_metric(name, float(value))
        if evaluation is not None:
            for name in EVALUATION:
                live.log_metric(f"eval/{name}", float(evaluation[name]))
            self._sampled = float(evaluation["sampled_return"])

    def _sync(self) -> None:
        # metrics.json holds one key, the last evaluation's sampled return (every quantity's curve
        # is in plots/, with the meta-epoch as its step), so `dvc metrics show` stays narrow beside
        # the notebooks' headline metrics
        live = self._live
        summary = {} if self._sampled is None else {"sampled": round(self._sampled, 1)}
        path = Path(live.metrics_file)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(summary, indent=2) + "\n")
