"""MuJoCo through the teacher: the PPMO fine-tune's length, chosen on its own evaluations.

A fine-tune keeps the set of its last meta-epoch, and its one-step return goes up and down: the teacher route's
longer fine-tunes (``results/mujoco/checks/``) end below their own best. Every 25 meta-epochs a fine-tune evaluates
its set on 10 fresh learners x 1 episode (seed = the meta-epoch: never the final evaluation's seed 0); those
validation evaluations choose the length here:

1. for each (task, B, coordinates) with a longer fine-tune in ``checks`` (``<task>_b<B>_<coordinates>_dagger_ft<M>``),
   its longest: M* = the centre of the best three consecutive evaluations (their mean sampled return; the earliest
   on ties), read from the run's committed checkpoint;
2. the same command with ``--finetune M*`` (``compress TEACHER --size B ... --dagger-rounds 3 --finetune M*``), a fresh
   run: PPMO's path does not depend on its total length, so it ends at the long run's set of meta-epoch M*
   (``same path``: its own evaluations against the long run's, up to M*);
3. ``evaluate SET --learners 100 --episodes 1 --json``, beside the long run's last set on the same protocol.

The table (``<out>/table.{csv,md}``) gives both with their 95% CIs and shares of the teacher, M*, the validation
mean that chose it, and the re-run's minutes on one core. What the choice costs is the long run (in ``checks``, its
minutes there) plus the re-run.

    python studies/mujoco_finetune_length.py [--checks results/mujoco/checks] [--out results/mujoco/finetune_length]
        [--only Walker2d-v5_b64_preset ...]
    # stage study-mujoco-finetune-length: --only Walker2d's and HalfCheetah's (Hopper's long runs already end at
    # 0.94 and 0.96 of the teacher; their re-runs would take about 18 minutes each)
    # quick (tests): a folder of long runs made with small counts, --steps/--pool/--dagger-states as they were made
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd

from paper_code.pipeline.commands import Stages, ci, enter_project
from paper_code.pipeline.reporting import write_table
from paper_code.pipeline.teacher_route import (BARS, COORDINATES, DAGGER_ROUNDS, add_quick_counts, learner_log_std,
                                               quick_count_flags, teacher_path)
from paper_code.runs.run_state import checkpoint_evaluations

_LONG = re.compile(r"^(?P<task>[A-Za-z0-9]+-v\d+)_b(?P<B>\d+)_(?P<coordinates>[a-z]+)_dagger_ft(?P<M>\d+)\.safetensors$")
WINDOW = 3  # consecutive validation evaluations averaged to choose M*


def longest_runs(checks: Path) -> dict[str, tuple[Path, int]]:
    """``<task>_b<B>_<coordinates>`` -> its longest fine-tune in ``checks`` (file, M) among those with a checkpoint."""
    runs: dict[str, tuple[Path, int]] = {}
    for path in sorted(checks.glob("*_dagger_ft*.safetensors")):
        m = _LONG.match(path.name)
        if m is None or m["coordinates"] not in COORDINATES or not path.with_name(path.name + ".ckpt.pt").exists():
            continue
        key = f"{m['task']}_b{m['B']}_{m['coordinates']}"
        if key not in runs or int(m["M"]) > runs[key][1]:
            runs[key] = (path, int(m["M"]))
    return runs


def evaluations(dataset: Path) -> pd.DataFrame:
    """A PPMO run's evaluations during training (meta_epoch, sampled_return, ...) from its checkpoint."""
    return pd.DataFrame(checkpoint_evaluations(dataset.with_name(dataset.name + ".ckpt.pt")))


def choose(evals: pd.DataFrame, window: int = WINDOW) -> tuple[int, float]:
    """M*: the centre of the ``window`` consecutive evaluations with the best mean sampled return, and that mean."""
    s = evals["sampled_return"].to_numpy()
    if len(s) < window:
        i = int(np.argmax(s))
        return int(evals["meta_epoch"].iloc[i]), float(s[i])
    means = np.convolve(s, np.ones(window) / window, "valid")
    i = int(np.argmax(means))  # the first maximum: the earliest on ties
    return int(evals["meta_epoch"].iloc[i + window // 2]), float(means[i])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", type=Path, default=Path("results") / "mujoco" / "checks",
                    help="the long fine-tunes (relative: to the project folder)")
    ap.add_argument("--out", type=Path, default=Path("results") / "mujoco" / "finetune_length")
    ap.add_argument("--only", nargs="+", default=None, help="<task>_b<B>_<coordinates> keys (default: every one)")
    ap.add_argument("--learners", type=int, default=100)
    ap.add_argument("--episodes", type=int, default=1)
    add_quick_counts(ap)  # quick: as the long runs were made
    args = ap.parse_args()
    args.out = enter_project(args.out)
    checks = args.checks if args.checks.is_absolute() else Path.cwd() / args.checks
    runs = longest_runs(checks)
    if args.only:
        missing = sorted(set(args.only) - set(runs))
        if missing:
            raise SystemExit(f"error: no long fine-tune with a checkpoint in {checks} for {', '.join(missing)}")
        runs = {k: runs[k] for k in args.only}
    counts = quick_count_flags(args)
    rows = []
    for key, (long_file, long_m) in runs.items():
        task, size, coordinates = _LONG.match(long_file.name).group("task", "B", "coordinates")
        long_evals = evaluations(long_file)
        m_star, validation = choose(long_evals)
        stages = Stages(args.out / key)
        chosen = stages.folder / f"dagger_ft{m_star}.safetensors"
        stages.command("dagger + finetune M*", [
            "compress", str(teacher_path(task)), "--size", size, *COORDINATES[coordinates], "--eval-learners", "0",
            "--quiet", *counts, "--dagger-rounds", str(DAGGER_ROUNDS), "--finetune", str(m_star), "--out", str(chosen)])
        same = long_evals.merge(evaluations(chosen), on="meta_epoch", suffixes=("", " re-run"))
        gap = float((same["sampled_return"] - same["sampled_return re-run"]).abs().max()) if len(same) else float("nan")
        e = stages.evaluation("evaluate", chosen, args.learners, args.episodes)
        long_e = stages.evaluation("evaluate the long run", long_file, args.learners, args.episodes)
        teacher = e["references"]["teacher"]["mean"]
        rows.append({
            "task": task, "B": int(size), "coordinates": coordinates, "learners x episodes": f"{e['learners']} x {e['episodes']}",
            "long fine-tune": long_m, "long: one-step": ci(long_e), "long: share of teacher": round(long_e["mean"] / teacher, 3),
            "M*": m_star, f"validation mean at M* ({WINDOW} x 10 learners)": round(validation, 1),
            "chosen: one-step": ci(e), "chosen: share of teacher": round(e["mean"] / teacher, 3),
            "chosen: learner log-std": round(learner_log_std(chosen), 2),
            "bar": BARS.get(int(size), float("nan")), "teacher (PPO)": ci(e["references"]["teacher"]),
            "same path (max |diff| of the evaluations up to M*)": gap, "evaluations compared": len(same),
            "re-run min": round(stages["dagger + finetune M*"]["seconds"] / 60, 1),
            "verdict": e["verdict_line"],
        })
    table = pd.DataFrame(rows)
    _, md = write_table(table.drop(columns=["verdict"]), args.out / "table", floatfmt=".4g")
    table.to_csv(args.out / "table.csv", index=False)
    print(md.read_text())


if __name__ == "__main__":
    main()
