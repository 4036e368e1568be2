"""One evaluation per (file content, protocol): measured once, then read by every table, figure and text.

An evaluation's **key** is the SHA-256 of the evaluated file's bytes (a dataset or a policy file: the
same content under any name or path is the same key) and its **protocol**: what was measured
(``kind``), with how many learners and episodes, which seed stream, which modes (sampled, greedy,
replayed) and the environment's settings. The store keeps one JSON file per key under a scale's
output folder, ``<root>/evaluations/<kind>/<sha256[:16]>_<protocol hash>.json``, holding the raw
per-learner (or per-episode) results, the protocol, the file it was made from and what it cost. A
second request of the same key reads that file instead of evaluating again, so a table that a
notebook re-makes, and every other table on the same key, shows the same numbers.

A table row made from a stored evaluation names it in its ``evaluation`` column (the entry's path
relative to the output folder; a row showing a second one, e.g. greedy beside sampled, in ``greedy
evaluation``); ``tests/test_store.py`` checks every committed table's rows against the entries they name:
the means they show against the entries' (:func:`_expected`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

from paper_code.core.dataset import DistilledDataset, git_revision
from paper_code.files import atomic_path
from paper_code.project import relative

if TYPE_CHECKING:
    from paper_code.core.evaluation import DatasetEvaluation
    from paper_code.core.learners import LearnerSpec

#: the store's folder under a scale's output folder (``results/`` or ``results-quick/``)
FOLDER = "evaluations"


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def protocol_hash(kind: str, protocol: dict[str, Any]) -> str:
    """A short, stable hash of what is measured and how."""
    text = json.dumps({"kind": kind, **protocol}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class EvaluationStore:
    """The evaluations of one output folder (``root``: a scale's ``results/`` or ``results-quick/``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.folder = self.root / FOLDER

    def entry_path(self, sha256: str, kind: str, protocol: dict[str, Any]) -> Path:
        return self.folder / kind / f"{sha256[:16]}_{protocol_hash(kind, protocol)}.json"

    def name(self, entry: Path) -> str:
        """How a table names an entry: its path relative to the output folder."""
        return entry.relative_to(self.root).as_posix()

    def measure(self, path: str | Path, kind: str, protocol: dict[str, Any],
                compute: Callable[[], list[dict[str, Any]]]) -> tuple[pd.DataFrame, str]:
        """The rows of evaluation (``path``'s content, ``kind``, ``protocol``): read from the store, or
        ``compute()``-d and written there once. Returns (the rows, the entry's name for tables)."""
        sha = file_sha256(path)
        entry = self.entry_path(sha, kind, protocol)
        if entry.is_file():
            stored = json.loads(entry.read_text())
            if stored.get("sha256") == sha and stored.get("protocol") == json.loads(json.dumps(protocol, default=str)):
                return pd.DataFrame(stored["rows"]), self.name(entry)
        t0 = time.perf_counter()
        rows = compute()
        record = {"kind": kind, "sha256": sha, "file": relative(path), "protocol": protocol,
                  "seconds": round(time.perf_counter() - t0, 1), "git_revision": git_revision(), "rows": rows}
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(entry) as tmp:
            Path(tmp).write_text(json.dumps(record, default=str, separators=(",", ":")) + "\n")
        return pd.DataFrame(rows), self.name(entry)

    def read(self, name: str) -> dict[str, Any]:
        """A stored entry (``name`` as a table's ``evaluation`` column gives it)."""
        return json.loads((self.root / name).read_text())

    # ------------------------------------------------------------------------------ what is measured
    def one_step_actions(self, path: str | Path, *, learners: int, seed: int,
                         env_kwargs: dict[str, Any] | None = None) -> tuple[pd.DataFrame, str]:
        """:func:`~paper_code.pipeline.state_dependence.one_step_actions` of the dataset file ``path``
        (``learners`` fresh one-step learners x 1 episode, greedy, sampled and replayed, on ``seed``;
        ``env_kwargs``: the environment's settings if not the file's own), stored."""
        from paper_code.pipeline.state_dependence import one_step_actions

        ds = DistilledDataset.load(path)
        if env_kwargs is not None:
            ds = dataclasses.replace(ds, env_kwargs=dict(env_kwargs))
        protocol = {"learners": int(learners), "episodes": 1, "seed": int(seed), "modes": ["greedy", "sampled", "replayed"],
                    "env_id": ds.env_id, "env_kwargs": dict(ds.env_kwargs)}
        return self.measure(path, "one_step_actions", protocol,
                            lambda: one_step_actions(ds, learners=learners, seed=seed).to_dict("records"))

    def dataset_returns(self, path: str | Path, *, learners: int, episodes: int, seed: int, greedy: bool = False,
                        steps: int = 1, lr: float | None = None, env_kwargs: dict[str, Any] | None = None,
                        learner: "LearnerSpec | None" = None) -> tuple["DatasetEvaluation", str]:
        """:func:`~paper_code.core.evaluation.evaluate_dataset` of the dataset file ``path``: ``learners``
        fresh learners (the dataset's architecture, or ``learner``), ``steps`` SGD steps on it (its own lr, or
        ``lr``), ``episodes`` each, sampled or ``greedy``, on ``seed`` (``env_kwargs``: the environment's
        settings if not the file's own), stored.
        Returns the evaluation (mean, CI within the task's bounds, per-learner returns) and the entry's name."""
        import torch

        from paper_code.core.evaluation import DatasetEvaluation, evaluate_dataset

        ds = DistilledDataset.load(path)
        if env_kwargs is not None:
            ds = dataclasses.replace(ds, env_kwargs=dict(env_kwargs))
        if lr is not None and float(lr) == float(ds.lr):
            lr = None  # the dataset's own lr: the same evaluation as without one
        if learner is not None and learner == ds.learner:
            learner = None  # likewise its own architecture
        protocol = {"learners": int(learners), "episodes": int(episodes), "seed": int(seed),
                    "mode": "greedy" if greedy else "sampled", "steps": int(steps),
                    "lr": None if lr is None else float(lr), "env_id": ds.env_id, "env_kwargs": dict(ds.env_kwargs)}
        if learner is not None:  # (absent for the dataset's own: entries made before this key stay valid)
            protocol["learner"] = json.loads(learner.to_json())

        def compute() -> list[dict[str, Any]]:
            e = evaluate_dataset(ds, learners=learners, episodes=episodes, greedy=greedy, seed=seed, steps=steps, lr=lr,
                                 learner=learner)
            return [{"returns": e.returns.tolist(), "cap": e.cap, "bounds": None if e.bounds is None else list(e.bounds)}]

        rows, name = self.measure(path, "dataset_returns", protocol, compute)
        r = rows.iloc[0]
        cap = None if r["cap"] is None or r["cap"] != r["cap"] else float(r["cap"])
        bounds = None if r["bounds"] is None else tuple(None if b is None else float(b) for b in r["bounds"])
        return DatasetEvaluation(torch.tensor(r["returns"], dtype=torch.float64), greedy, cap, bounds), name

    def state_dependence(self, path: str | Path, *, learners: int, episodes: int, seed: int) -> tuple[pd.DataFrame, str]:
        """:func:`~paper_code.pipeline.state_dependence.state_dependence` of the (continuous-action) dataset
        file ``path``: per learner its sampled return, its own average action's return and its action std, stored."""
        from paper_code.pipeline.state_dependence import state_dependence

        ds = DistilledDataset.load(path)
        protocol = {"learners": int(learners), "episodes": int(episodes), "seed": int(seed),
                    "modes": ["sampled", "constant own action"], "env_id": ds.env_id, "env_kwargs": dict(ds.env_kwargs)}
        return self.measure(path, "state_dependence", protocol,
                            lambda: state_dependence(ds, learners=learners, episodes=episodes, seed=seed).to_dict("records"))

    def policy_episodes(self, path: str | Path, *, episodes: int, seed: int) -> tuple[dict[str, Any], str]:
        """:func:`~paper_code.core.ppo.evaluate_policy_file` of the policy file ``path`` (``episodes``
        sampled and as many greedy, on ``seed``), stored; its summary as that function gives it."""
        from paper_code.core.ppo import evaluate_policy_file

        protocol = {"episodes": int(episodes), "seed": int(seed), "modes": ["sampled", "greedy"]}
        rows, name = self.measure(path, "policy_episodes", protocol,
                                  lambda: [evaluate_policy_file(path, episodes=episodes, seed=seed)])
        return rows.iloc[0].to_dict(), name


def _expected(entry: dict[str, Any], column: str) -> dict[str, float]:
    """What a table row naming ``entry`` in its column ``column`` must show, by column name: a one-step
    evaluation's ``sampled``, ``greedy`` and ``replayed mean``; a dataset's returns, their mean in ``<mode> mean``
    (named in ``evaluation``) or ``<what> mean`` (named in ``<what> evaluation``, e.g. ``untrained``)."""
    if entry["kind"] == "one_step_actions":
        rows = pd.DataFrame(entry["rows"])
        return {f"{m} mean": float(rows[rows["mode"] == m]["return"].mean()) for m in ("sampled", "greedy", "replayed")}
    if entry["kind"] == "state_dependence":  # notebook 02's one-step learners
        returns = [r["return"] for r in entry["rows"]]
        return {"one-step mean": sum(returns) / len(returns)}
    if entry["kind"] == "dataset_returns":
        per_learner = [sum(r) / len(r) for r in entry["rows"][0]["returns"]]
        what = entry["protocol"]["mode"] if column == "evaluation" else column.removesuffix(" evaluation")
        return {f"{what} mean": sum(per_learner) / len(per_learner)}
    return {}


def disagreements(root: str | Path, tables: list[Path] | None = None, *, tolerance: float = 1e-6) -> list[str]:
    """Every row of the tables under ``root`` (CSV files with an ``evaluation`` column; or ``tables``)
    whose numbers differ from the stored evaluation it names, or that names a missing entry: what
    would let two tables disagree on one (file, protocol). Empty when all agree."""
    root = Path(root)
    store = EvaluationStore(root)
    tables = sorted(p for p in root.rglob("*.csv") if FOLDER not in p.parts) if tables is None else tables
    problems, cache = [], {}
    for table in tables:
        try:
            df = pd.read_csv(table)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            continue
        named = [c for c in df.columns if c == "evaluation" or str(c).endswith(" evaluation")]
        for i, row in df.iterrows():
            for column in named:
                name = row[column]
                if not isinstance(name, str):
                    continue
                if name not in cache:
                    try:
                        cache[name] = store.read(name)
                    except (OSError, ValueError):
                        problems.append(f"{table.name} row {i}: {column} names {name}, which the store does not hold")
                        continue
                for col, expected in _expected(cache[name], column).items():
                    if col in df.columns and abs(float(row[col]) - expected) > tolerance * max(1.0, abs(expected)):
                        problems.append(f"{table.name} row {i}: {col} {row[col]} but {name} gives {expected}")
    return problems
