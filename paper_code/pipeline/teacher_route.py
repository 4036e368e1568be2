"""MuJoCo through the teacher, one table per task: every method's one-step return beside the task's baselines.

Reads what is committed: the teacher-route study's table (``studies/mujoco_teacher_route.py``: fit, DAgger fit and
DAgger fit + PPMO fine-tune per B and student coordinates), the longer fine-tunes run by hand in
``results/mujoco/checks/`` (``<task>_b<B>_<coordinates>_dagger_ft<M>``: the study's command with ``--finetune M``)
and notebook 02's table (PPMO alone at B = 64, the PPO teacher's cost, the zero action, the authors' v4 set).
A task whose teacher is not notebook 02's baseline (Ant-v5: the teacher sees 27 of the 105 observation values)
takes its teacher's cost and PPMO alone from the study's own rows (``teacher min``, method ``PPMO alone``); notebook
02's PPMO alone, in the other observation, is then left out. Shares are of the teacher's return on the study's own
protocol (the same learners x episodes as the rows).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd

from paper_code.pipeline.layout import ppo_baseline_path
from paper_code.pipeline.protocol import ci_text

#: the teacher of a task whose notebook 02 baseline is not the teacher: Ant-v5's (PPO, 1 M steps, v5's default
#: observation of 105 values, 84 of them contact forces) scores below the zero action; the same PPO on the 27
#: values of Ant-v4's observation passes it (results/mujoco/teachers/README.md). Its sets live in the teacher's
#: observation, so notebook 02's PPMO alone (105 values) does not compare: the study runs PPMO alone there too.
TEACHERS = {"Ant-v5": Path("results") / "mujoco" / "teachers" / "ppo_Ant-v5_no_contact_forces_1M.safetensors"}


def teacher_path(task: str) -> Path:
    """The teacher of ``task``'s route (relative to the project folder): :data:`TEACHERS`' or notebook 02's PPO baseline."""
    return TEACHERS.get(task, ppo_baseline_path(Path("results"), task))


#: the student's coordinates (compress --obs-scale / --state-bound): the task's PPMO preset's, or
#: InvertedDoublePendulum's small inputs, where the one-step learners of all inits are nearly one linear policy
COORDINATES = {"preset": [], "linear": ["--obs-scale", "0.3", "--state-bound", "0.25"]}

#: the issue's bar: the share of the teacher's return a set of B instances is held to
BARS = {64: 0.8, 4: 0.5}
#: DAgger rounds of the route's fits (``compress --dagger-rounds``)
DAGGER_ROUNDS = 3
#: the compress counts a study's quick run shrinks (tests only: flags of the same names)
QUICK_COUNTS = ("steps", "pool", "dagger_states")


def add_quick_counts(ap: argparse.ArgumentParser) -> None:
    """The study's ``--steps``/``--pool``/``--dagger-states`` (quick only: passed to compress; default: the CLI's)."""
    for k in QUICK_COUNTS:
        ap.add_argument(f"--{k.replace('_', '-')}", type=int, default=None, help=f"quick only: compress --{k.replace('_', '-')}")


def quick_count_flags(args: argparse.Namespace) -> list[str]:
    """compress flags for the quick counts given to a study (none at paper scale)."""
    return [flag for k in QUICK_COUNTS if getattr(args, k) is not None
            for flag in (f"--{k.replace('_', '-')}", str(getattr(args, k)))]


#: the order of the route's methods in a task's table
METHODS = ("fit", "dagger", "dagger + finetune")
_CHECK = re.compile(r"^(?P<task>[A-Za-z0-9]+-v\d+)_b(?P<B>\d+)_(?P<coordinates>[a-z0-9.]+)_dagger_ft(?P<M>\d+)"
                    r"(?:_ent(?P<ent>[0-9.]+))?_evaluate_(?P<n>\d+x\d+)\.json$")  # _ent<c>: compress --finetune-ent-coef c
_ELAPSED = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)")
_SECONDS = re.compile(r"(\d+(?:\.\d+)?) s[,)]")  # the fit's and the fine-tune's seconds in compress's output


def learner_log_std(dataset: str | Path) -> float:
    """The mean over action dimensions of the log-std a fresh one-step learner of a Gaussian set acts with (it is the
    same for every init: the learner's log-std starts at its init value and takes the step towards the set's target),
    NaN for a categorical set. Beside the teacher's (``log_std`` of its policy file) it tells how noisy the sampled
    actions of the protocol are."""
    import torch

    from paper_code.core.dataset import DistilledDataset
    from paper_code.core.inner import inner_step
    from paper_code.core.learners import init_params

    ds = DistilledDataset.load(dataset)
    if ds.log_std is None:
        return float("nan")
    theta0 = init_params(ds.learner, ds.states.shape[1], ds.labels.shape[1], torch.Generator().manual_seed(0))
    return float(inner_step(theta0, ds.features(ds.states), ds.labels, ds.lr, ds.learner.activation, ds.log_std)["log_std"].mean())


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
                     "method": f"dagger + finetune {m['M']}" + (f", entropy bonus {m['ent']}" if m["ent"] else ""),
                     "learners x episodes": f"{e['learners']} x {e['episodes']}",
                     "one-step": ci_text(e["mean"], *e["ci95"]), "teacher (PPO)": ci_text(e["references"]["teacher"]["mean"],
                                                                                 *e["references"]["teacher"]["ci95"]),
                     "command min": round(seconds / 60, 1), "source": f"checks/{path.name}",
                     "learner log-std": round(learner_log_std(path.with_name(stem + ".safetensors")), 2)})
    return pd.DataFrame(rows)


#: a fine-tune whose length its own validation evaluations chose (``studies/mujoco_finetune_length.py``)
CHOSEN = "dagger + finetune {m} (length chosen)"
_TUNED = re.compile(r"^dagger \+ finetune (\d+)")


def _rank(method: str) -> float:
    """A route method's place in a task's table: PPMO alone, the study's methods, longer fine-tunes by length (without
    the entropy bonus after), the chosen lengths last."""
    if method in METHODS:
        return METHODS.index(method)
    if method == "PPMO alone":
        return -1
    if method == "dagger + finetune, length chosen":  # by_method's one column for them
        return 2e9
    tuned = _TUNED.match(method)
    return (len(METHODS) + int(tuned[1]) + (0.5 if "entropy bonus" in method else 0)
            + (1e9 if method.endswith("(length chosen)") else 0))


def length_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The fine-tune-length study's table as route rows: the set at M* (``CHOSEN``), with the re-run's minutes."""
    if table.empty:
        return pd.DataFrame()
    return pd.DataFrame({"task": table["task"], "B": table["B"], "coordinates": table["coordinates"],
                         "method": [CHOSEN.format(m=m) for m in table["M*"]],
                         "learners x episodes": table["learners x episodes"], "one-step": table["chosen: one-step"],
                         "teacher (PPO)": table["teacher (PPO)"], "command min": table["re-run min"],
                         "source": "finetune_length/table.csv", "learner log-std": table["chosen: learner log-std"]})


def task_tables(route: pd.DataFrame, summary: pd.DataFrame, checks: pd.DataFrame | None = None,
                lengths: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """One table per task of ``route`` (the study's ``table.csv``): the PPO teacher and PPMO alone, then every route
    set by B (large first), coordinates and method (with ``checks``' longer fine-tunes after the study's), then the
    authors' set, the zero action and the random policy; each with its share of the teacher, the log-std its
    learners act with (the teacher's on its row; :func:`learner_log_std`) and its minutes on one
    core (the DAgger fit and its fine-tune come from one command, whose minutes both rows show); ``lengths``
    (:func:`length_rows`): the fine-tunes whose length was chosen on their validation evaluations, last."""
    route = route.assign(source="teacher_route/table.csv")
    for more in (checks, lengths):  # a task's longer fine-tunes join its table once the study has run it
        if more is not None and len(more):
            route = pd.concat([route, more[more["task"].isin(route["task"])]], ignore_index=True)
    route = route.assign(_m=route["method"].map(_rank))
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
        own = rows["method"].eq("PPMO alone")  # the study's PPMO alone: the task has its own teacher
        teacher_min = study["teacher min"].iloc[0] if "teacher min" in study else float("nan")

        def log_std(r: pd.Series | None) -> float:  # the learners' (or the teacher's) log-std, where recorded
            return float(r["learner log-std"]) if r is not None and "learner log-std" in r else float("nan")

        def row(method: str, b: object, coordinates: str, one_step: str, mean: float, minutes: float, source: str,
                count: str = n, std: float = float("nan")) -> dict:
            return {"method": method, "B": b, "coordinates": coordinates, "one-step [95% CI]": one_step,
                    "learners x episodes": count,
                    "share of teacher": round(mean / teacher, 3) if teacher > 0 else float("nan"),
                    "log-std": std, "minutes": round(minutes, 1), "source": source}

        teacher_std = float(study["teacher log-std"].iloc[0]) if "teacher log-std" in study else float("nan")

        if own.any():
            table = [row(f"PPO teacher ({study['teacher env steps'].iloc[0] / 1e6:.2g} M steps)", "", "", teacher_text,
                         teacher, teacher_min, "teacher_route/table.csv; minutes: the teacher's file", std=teacher_std)]
            table += [row(f"PPMO alone ({int(r['meta-epochs'])} meta-epochs)", int(r["B"]), r["coordinates"], r["one-step"],
                          _mean(r["one-step"]), r["command min"], r["source"], r["learners x episodes"], log_std(r))
                      for _, r in rows[own].iterrows()]
            rows = rows[~own]
        else:
            table = [row(f"PPO teacher ({ref['PPO env steps'] / 1e6:.2g} M steps)", "", "", teacher_text, teacher,
                         ref["PPO wall time s"] / 60, "teacher_route/table.csv; minutes: notebook 02", std=teacher_std),
                     row(f"PPMO alone ({int(ref['meta-epochs'])} meta-epochs)", int(ref["B"]), "preset",
                         ci_text(ref["one-step mean"], ref["one-step CI low"], ref["one-step CI high"]), ref["one-step mean"],
                         ref["wall time s"] / 60, "notebook 02", ref["learners x episodes"])]
        if "finetune meta-epochs" in rows:  # the study's fine-tune says its length
            tuned = rows["method"].eq("dagger + finetune") & rows["finetune meta-epochs"].notna()
            rows.loc[tuned, "method"] = [f"dagger + finetune {int(m)}" for m in rows.loc[tuned, "finetune meta-epochs"]]
        for _, r in rows.sort_values(["B", "coordinates", "_m"], ascending=[False, False, True]).iterrows():
            table.append(row(r["method"], int(r["B"]), r["coordinates"], r["one-step"], _mean(r["one-step"]),
                             r["command min"], r["source"], r["learners x episodes"], log_std(r)))
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
    chosen = sets["method"].str.endswith("(length chosen)")  # one column, whatever M* each row chose
    cells = sets.assign(cell=[f"{one} ({share:.2f})" + (f" at {_TUNED.match(m)[1]}" if c else "") for one, share, m, c
                              in zip(sets["one-step [95% CI]"], sets["share of teacher"], sets["method"], chosen)],
                        method=sets["method"].where(~chosen, "dagger + finetune, length chosen"))
    wide = cells.pivot(index=["B", "coordinates"], columns="method", values="cell")
    wide = wide[sorted(dict.fromkeys(cells["method"]), key=_rank)].fillna("")
    order = list(dict.fromkeys(zip(cells["B"], cells["coordinates"])))
    return wide.loc[order].reset_index()
