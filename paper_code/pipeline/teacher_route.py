"""MuJoCo through the teacher, one table per task: every method's one-step return beside the task's baselines.

Reads what is committed: the teacher-route study's table (``studies/mujoco_teacher_route.py``: fit, DAgger fit and
DAgger fit + PPMO fine-tune per B and student coordinates), the longer fine-tunes run by hand in
``results/mujoco/checks/`` (``<task>_b<B>_<coordinates>_dagger_ft<M>``: the study's command with ``--finetune M``)
and notebook 02's table (PPMO alone at B = 64, the PPO teacher's cost, the zero action, the authors' v4 set).
Shares are of the teacher's return on the study's own protocol (the same learners x episodes as the rows).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from paper_code.pipeline.protocol import ci_text

#: the order of the route's methods in a task's table
METHODS = ("fit", "dagger", "dagger + finetune")
_CHECK = re.compile(r"^(?P<task>[A-Za-z0-9]+-v\d+)_b(?P<B>\d+)_(?P<coordinates>[a-z0-9.]+)_dagger_ft(?P<M>\d+)"
                    r"_evaluate_(?P<n>\d+x\d+)\.json$")
_ELAPSED = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)")
_SECONDS = re.compile(r"(\d+(?:\.\d+)?) s[,)]")  # the fit's and the fine-tune's seconds in compress's output


def _mean(cell: str) -> float:
    """The mean of a ``mean [low, high]`` cell."""
    return float(cell.split(" [")[0])


def check_rows(checks: Path) -> pd.DataFrame:
    """The longer fine-tunes in ``checks``: one row per ``<task>_b<B>_<coordinates>_dagger_ft<M>`` evaluation, with
    the minutes of its command: its wall time where ``/usr/bin/time -v`` recorded it (``_time.txt``), else the fit's
    and the fine-tune's seconds as compress printed them (``_compress.txt``; without start-up and DAgger rollouts)."""
    rows = []
    for path in sorted(checks.glob("*_dagger_ft*_evaluate_*.json")):
        m = _CHECK.match(path.name)
        if m is None:
            continue
        e = json.loads(path.read_text())
        stem = path.name.split("_evaluate_")[0]
        log, timed = path.with_name(stem + "_compress.txt"), path.with_name(stem + "_time.txt")
        wall = _ELAPSED.search(timed.read_text()) if timed.exists() else None
        if wall is not None:  # the command's wall time (/usr/bin/time -v)
            seconds = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall[1].split(":"))))
        else:  # older checks: the fit's and the fine-tune's own seconds as compress printed them
            seconds = sum(float(s) for s in _SECONDS.findall(log.read_text())) if log.exists() else float("nan")
        rows.append({"task": m["task"], "B": int(m["B"]), "coordinates": m["coordinates"],
                     "method": f"dagger + finetune {m['M']}", "learners x episodes": f"{e['learners']} x {e['episodes']}",
                     "one-step": ci_text(e["mean"], *e["ci95"]), "teacher (PPO)": ci_text(e["references"]["teacher"]["mean"],
                                                                                 *e["references"]["teacher"]["ci95"]),
                     "command min": round(seconds / 60, 1), "source": f"checks/{path.name}"})
    return pd.DataFrame(rows)


def task_tables(route: pd.DataFrame, summary: pd.DataFrame, checks: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """One table per task of ``route`` (the study's ``table.csv``): the PPO teacher and PPMO alone, then every route
    set by B (large first), coordinates and method (with ``checks``' longer fine-tunes after the study's), then the
    authors' set, the zero action and the random policy; each with its share of the teacher and its minutes on one
    core (the DAgger fit and its fine-tune come from one command, whose minutes both rows show)."""
    route = route.assign(source="teacher_route/table.csv")
    if checks is not None and len(checks):  # a task's longer fine-tunes join its table once the study has run it
        route = pd.concat([route, checks[checks["task"].isin(route["task"])]], ignore_index=True)
    order = {m: i for i, m in enumerate(METHODS)}
    route = route.assign(_m=route["method"].map(lambda m: order[m] if m in order else len(order) + int(m.rsplit(" ", 1)[-1])))
    out = {}
    for task, rows in route.groupby("task", sort=False):
        ref = summary[summary["task"] == task]
        if ref.empty:  # a task this scale of notebook 02 did not run
            continue
        ref, rows = ref.iloc[0], rows.copy()
        study = rows[rows["source"] == "teacher_route/table.csv"]
        teacher_text = study["teacher (PPO)"].iloc[0]
        teacher = _mean(teacher_text)
        n = study["learners x episodes"].iloc[0]

        def row(method: str, b: object, coordinates: str, one_step: str, mean: float, minutes: float, source: str,
                count: str = n) -> dict:
            return {"method": method, "B": b, "coordinates": coordinates, "one-step [95% CI]": one_step,
                    "learners x episodes": count,
                    "share of teacher": round(mean / teacher, 3) if teacher > 0 else float("nan"),
                    "minutes": round(minutes, 1), "source": source}

        table = [row(f"PPO teacher ({ref['PPO env steps'] / 1e6:.2g} M steps)", "", "", teacher_text, teacher, ref["PPO wall time s"] / 60,
                     "teacher_route/table.csv; minutes: notebook 02"),
                 row(f"PPMO alone ({int(ref['meta-epochs'])} meta-epochs)", int(ref["B"]), "preset",
                     ci_text(ref["one-step mean"], ref["one-step CI low"], ref["one-step CI high"]), ref["one-step mean"],
                     ref["wall time s"] / 60, "notebook 02", ref["learners x episodes"])]
        if "finetune meta-epochs" in rows:  # the study's fine-tune says its length
            tuned = rows["method"].eq("dagger + finetune") & rows["finetune meta-epochs"].notna()
            rows.loc[tuned, "method"] = [f"dagger + finetune {int(m)}" for m in rows.loc[tuned, "finetune meta-epochs"]]
        for _, r in rows.sort_values(["B", "coordinates", "_m"], ascending=[False, False, True]).iterrows():
            table.append(row(r["method"], int(r["B"]), r["coordinates"], r["one-step"], _mean(r["one-step"]),
                             r["command min"], r["source"], r["learners x episodes"]))
        if pd.notna(ref["authors' (v4) mean"]):
            table.append(row("the authors' set (PPMO, v4 env)", 64, "theirs",
                             ci_text(ref["authors' (v4) mean"], ref["authors' (v4) CI low"], ref["authors' (v4) CI high"]),
                             ref["authors' (v4) mean"], float("nan"), "notebook 02", ref["learners x episodes"]))
        table.append(row("zero action", "", "", f"{ref['zero action']:.1f}", ref["zero action"], float("nan"),
                         "notebook 02", "its references'"))
        random_text = study["random"].iloc[0]
        table.append(row("random policy", "", "", random_text, _mean(random_text), float("nan"), "teacher_route/table.csv"))
        out[task] = pd.DataFrame(table)
    return out


def by_method(table: pd.DataFrame) -> pd.DataFrame:
    """A task's table (:func:`task_tables`) with one row per B and coordinates and one column per method:
    ``mean [low, high] (share)``, methods in the table's order (the references are left out)."""
    sets = table[table["coordinates"].isin(["preset", "linear"]) & ~table["method"].str.startswith("PPMO alone")]
    cells = sets.assign(cell=[f"{one} ({share:.2f})" for one, share in zip(sets["one-step [95% CI]"], sets["share of teacher"])])
    wide = cells.pivot(index=["B", "coordinates"], columns="method", values="cell")
    wide = wide[list(dict.fromkeys(cells["method"]))].fillna("")
    order = list(dict.fromkeys(zip(cells["B"], cells["coordinates"])))
    return wide.loc[order].reset_index()
