"""What a notebook evaluates, listed before it runs: one :class:`Planned` evaluation per row it shows.

The notebook reads its rows' evaluations from the plan (the same file, learners, seed and environment
settings), so ``python -m paper_code notebook NAME --evaluations-only --shard K/N`` can measure them into
the :class:`~paper_code.pipeline.store.EvaluationStore` ahead of the notebook, in N processes at once,
and the notebook then reads every one of them instead of evaluating it again. A paper-scale Atari
notebook holds some fifty evaluations of 50 learners each, hours on one core: sharded, they use every
core, and an interrupted fill keeps what it finished.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from paper_code.files import LockError, OutputLock
from paper_code.pipeline.store import EvaluationStore


@dataclass(frozen=True)
class Planned:
    """One evaluation a notebook shows."""

    what: str  # the row's method: "PPMO alone", "fit", "fit + fine-tune", "authors", "ours, authors' settings", "teacher"
    game: str
    split: int | None  # the encoder split l (None: a teacher's policy)
    path: Path  # the dataset or policy file
    count: int  # learners x 1 episode (a dataset's one-step learners) or episodes (a policy)
    seed: int
    env_kwargs: dict[str, Any] | None = None  # the environment's settings where not the file's own

    def measure(self, store: EvaluationStore) -> tuple[Any, str]:
        """The evaluation, read from ``store`` or measured into it: a dataset's
        :meth:`~EvaluationStore.one_step_actions` rows, a policy's :meth:`~EvaluationStore.policy_episodes`
        summary; and the entry's name."""
        if self.what == "teacher":
            return store.policy_episodes(self.path, episodes=self.count, seed=self.seed)
        return store.one_step_actions(self.path, learners=self.count, seed=self.seed, env_kwargs=self.env_kwargs)


def atari_plan(section: dict[str, Any], root: Path) -> list[Planned]:
    """Notebook 03's evaluations at the scale of its ``atari`` section, results under ``root``, in the
    notebook's order: PPMO alone per (game, l); per teacher-made (game, l) its fit and fine-tune (on PPMO
    alone's seed where that ran); the teachers; the authors' published sets and our teacher-made sets of the
    same (game, l) under the authors' settings (their seeds)."""
    from paper_code.core.dataset import DistilledDataset
    from paper_code.envs.atari import ATARI_GAMES
    from paper_code.pipeline.authors_datasets import authors_atari
    from paper_code.pipeline.experiments import atari_pairs
    from paper_code.pipeline.layout import atari_teacher_path, atari_teacher_set_path, dataset_path
    from paper_code.pipeline.presets import ATARI_SIZES
    from paper_code.pipeline.protocol import protocol_seed

    learners, root = int(section["learners"]), Path(root)
    pairs = atari_pairs(section)
    plan = [Planned("PPMO alone", g, l, dataset_path(root, f"atari-{g}-l{l}", ATARI_SIZES[g]), learners,
                    protocol_seed("atari", i)) for i, (g, l) in enumerate(pairs)]
    comp_pairs = atari_pairs(section["compression"]) if section.get("compression") else []
    for j, (g, l) in enumerate(comp_pairs):
        i = pairs.index((g, l)) if (g, l) in pairs else len(pairs) + j
        plan += [Planned(what, g, l, atari_teacher_set_path(root, kind, g, l, ATARI_SIZES[g]), learners,
                         protocol_seed("atari", i)) for what, kind in (("fit", "fit"), ("fit + fine-tune", "finetuned"))]
    plan += [Planned("teacher", g, None, atari_teacher_path(root, g), learners,
                     protocol_seed("atari_teacher", ATARI_GAMES.index(g)))
             for g in dict.fromkeys(g for g, _ in comp_pairs)]
    cap = section.get("authors_max_episode_steps")
    authors = [(g, l, p) for g in ATARI_GAMES for l in range(5) if (p := authors_atari(g, l)) is not None]
    for i, (g, l, path) in enumerate(authors):
        theirs = {**DistilledDataset.load(path).env_kwargs, **({"max_episode_steps": int(cap)} if cap is not None else {})}
        plan.append(Planned("authors", g, l, path, learners, protocol_seed("atari_authors", i), theirs))
        if (g, l) in comp_pairs:
            plan += [Planned(f"ours, authors' settings: {what}", g, l, atari_teacher_set_path(root, kind, g, l, ATARI_SIZES[g]),
                             learners, protocol_seed("atari_authors", i), theirs)
                     for what, kind in (("fit", "fit"), ("fit + fine-tune", "finetuned"))]
    return plan


#: the notebooks that list their evaluations: name -> (params.yaml's scale section -> the plan)
PLANS: dict[str, Callable[[dict[str, Any], Path], list[Planned]]] = {
    "03_atari": lambda params, root: atari_plan(params["atari"], root),
}


def plan_for(name: str, params: dict[str, Any], root: Path) -> list[Planned]:
    """The evaluations notebook ``name`` shows (``params``: a scale's section of params.yaml)."""
    if name not in PLANS:
        raise ValueError(f"notebook {name!r} does not list its evaluations ahead (those that do: {', '.join(PLANS)})")
    return PLANS[name](params, root)


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` (1 <= K <= N): the K-th of N shards."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes K/N, e.g. 1/2, not {text!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text}: K must be between 1 and N")
    return k, n


def fill(store: EvaluationStore, plan: list[Planned], shard: tuple[int, int] = (1, 1),
         say: Callable[[str], None] = print) -> dict[str, int]:
    """Measure the K-th of N shards of ``plan`` (every N-th evaluation, from the K-th) into ``store``.
    Skipped: a file that does not exist yet, or that a live run is writing (its output lock is held).
    Returns how many were measured, already stored, or skipped."""
    k, n = shard
    counts = {"measured": 0, "stored": 0, "skipped": 0}
    for p in plan[k - 1::n]:
        label = f"{p.what} {p.game}" + ("" if p.split is None else f" l={p.split}")
        if not p.path.is_file():
            say(f"skipped {label}: {p.path} does not exist yet")
            counts["skipped"] += 1
            continue
        try:
            OutputLock(p.path).check_free()
        except LockError:
            say(f"skipped {label}: a live run is writing {p.path}")
            counts["skipped"] += 1
            continue
        started, t0 = time.time(), time.perf_counter()
        _, name = p.measure(store)
        seconds = time.perf_counter() - t0
        fresh = (store.root / name).stat().st_mtime >= started  # written now, not read
        counts["measured" if fresh else "stored"] += 1
        say(f"{'measured' if fresh else 'stored  '} {label}: {name} ({seconds:.0f} s)")
    return counts
