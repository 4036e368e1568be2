"""The committed result tables: no interval leaves the returns its task can give, and the tables that show
one-step returns name the stored evaluation they come from."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from paper_code.project import project_root

RESULTS = project_root() / "results"
#: the range of one episode's return where a table's rows are all one bounded task family
BOUNDED = {"cartpole": (0.0, 500.0)}
#: Atari games with bounded returns, by the ``game`` column
GAME_BOUNDS = {"Pong": (-21.0, 21.0)}


def _tables() -> list:
    return sorted(p for p in RESULTS.rglob("*.csv") if "evaluations" not in p.parts)


def _interval_columns(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    low = [c for c in df.columns if re.search(r"(ci low|ci95 low|ci_low)$", str(c), re.I)]
    high = [c for c in df.columns if re.search(r"(ci high|ci95 high|ci_high)$", str(c), re.I)]
    return low, high


def _outside(df: pd.DataFrame, bounds: tuple[float, float]) -> int:
    low, high = _interval_columns(df)
    lo = sum(int((pd.to_numeric(df[c], errors="coerce") < bounds[0] - 1e-9).sum()) for c in low)
    hi = sum(int((pd.to_numeric(df[c], errors="coerce") > bounds[1] + 1e-9).sum()) for c in high)
    return lo + hi


def test_no_committed_interval_leaves_its_tasks_range():
    problems = []
    for path in _tables():
        df = pd.read_csv(path)
        family = path.relative_to(RESULTS).parts[0]
        if family in BOUNDED and "task" not in df.columns:  # (a "task" column: MuJoCo rows shown beside cart-pole)
            n = _outside(df, BOUNDED[family])
        elif "game" in df.columns:
            n = sum(_outside(df[df.game == g], b) for g, b in GAME_BOUNDS.items())
        else:
            continue
        if n:
            problems.append(f"{path.relative_to(RESULTS)}: {n} interval ends outside the task's returns")
    assert problems == []


@pytest.mark.parametrize("table", ["cartpole/table1/table1.csv", "cartpole/table1/ours_vs_authors.csv",
                                   "cartpole/minimal/return_by_size.csv", "cartpole/minimal/authors.csv",
                                   "cartpole/minimal/kshot.csv", "cartpole/architectures/architectures.csv",
                                   "cartpole/architectures/pool_vs_single.csv", "mujoco/report/table.csv",
                                   "atari/report/table.csv", "atari/report/methods.csv", "atari/report/authors.csv",
                                   "atari/report/authors_vs_ours.csv"])
def test_tables_of_one_step_returns_name_their_stored_evaluations(table):
    df = pd.read_csv(RESULTS / table)
    assert "evaluation" in df.columns and df["evaluation"].notna().all()


def test_executed_notebooks_hold_no_path_of_the_machine_they_ran_on():
    absolute = re.compile(r"(?<![\w.])/(?:[\w.-]+/)+(?:paper_code|notebooks|results)/")
    for nb in sorted((RESULTS / "notebooks").glob("*.ipynb")):
        found = absolute.findall(nb.read_text())
        assert not found, f"{nb.name}: {found[:3]}"


def test_the_mujoco_ppo_curves_are_the_baselines_own_training():
    # each task's PPO curve comes from a run with periodic evaluations; it must end with the committed baseline's
    # policy (a run resumed across sessions starts fresh episodes and leaves the baseline's trajectory)
    table = pd.read_csv(RESULTS / "mujoco" / "report" / "table.csv")
    assert len(table) == 11 and table["PPO evaluated run is the baseline's"].all()
