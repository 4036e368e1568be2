"""MuJoCo through the teacher: how close do one-step learners get to the PPO teacher, by method and size?

For each task (default: Hopper-v5, Walker2d-v5, HalfCheetah-v5, Ant-v5) and each B (default 64, 16, 4; Ant-v5: see
``GRID``), from the task's committed PPO teacher (``results/mujoco/baselines/ppo_<task>.safetensors``, notebook 02's
baseline; Ant-v5's: ``results/mujoco/teachers/ppo_Ant-v5_no_contact_forces_1M.safetensors``, PPO on the 27
observation values of Ant-v4, since with v5's 105 it stays below the zero action), with the CLI's own commands, each
a new process on one core and timed:

1. ``fit``: ``compress TEACHER --size B`` -- the set fitted on the states the teacher visits;
2. ``dagger``: ``compress TEACHER --size B --dagger-rounds R --finetune M``, whose fit (``X.fit.safetensors``)
   also learns on the states that its own one-step learners visit (R rounds, labelled by the teacher), and
3. ``dagger + finetune``: that fit continued by M meta-epochs of PPMO (the task's preset, its critic from scratch);

all three in two coordinates of the student (``--coordinates``): ``preset``, the task's PPMO preset's (notebook 02),
and ``linear``, ``--obs-scale 0.3 --state-bound 0.25`` (InvertedDoublePendulum's small inputs: the tanh layers stay
near-linear, so the one-step learners of all inits are nearly one linear policy of the normalised observation);
for a task whose teacher is not notebook 02's (Ant-v5), also 4. ``PPMO alone`` at B = 64 in the teacher's
observation (``distill --preset mujoco-<task> --env-kwargs ...``: the preset's budget); each set evaluated by
``evaluate SET --learners 100 --episodes 1 --json``: fresh learners, one SGD step each, sampled actions, beside the
random policy, the untrained learners and the teacher on the same protocol. The table (``<out>/table.{csv,md}``) gives each mean with its 95% CI, its share of the teacher's return (the bar:
0.8 at B = 64, 0.5 at B = 4), its share of the teacher's margin over random, the minutes of its command, and the
log-std its one-step learners act with beside the teacher's (mean over action dimensions).

    python studies/mujoco_teacher_route.py [--tasks Hopper-v5 ...] [--sizes 4 16 64] [--coordinates preset linear]
        [--out results/mujoco/teacher_route]
    # quick (tests): only counts shrink
    python studies/mujoco_teacher_route.py --tasks Hopper-v5 --sizes 4 --coordinates linear --out /tmp/route --steps 5 \\
        --pool 512 --dagger-states 256 --finetune 1 --learners 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from paper_code.core.compress import load_teacher
from paper_code.core.dataset import DistilledDataset
from paper_code.pipeline.commands import Stages, ci, enter_project
from paper_code.pipeline.teacher_route import (BARS, COORDINATES, DAGGER_ROUNDS, TEACHERS, add_quick_counts,
                                               learner_log_std, quick_count_flags, teacher_path)
from paper_code.pipeline.reporting import write_table

TASKS = ("Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5")
SIZES = (64, 16, 4)
#: a task's (B, coordinates) where not every B in both (the default): Ant-v5, whose own teacher and PPMO alone make
#: each B = 64 row dearer, below B = 64 in the small-input coordinates only (those did better at B = 64)
GRID = {"Ant-v5": ((64, "preset"), (64, "linear"), (4, "linear"))}


def run_task(task: str, size: int, coordinates: str, out: Path, args: argparse.Namespace) -> list[dict]:
    stages = Stages(out / task / (f"b{size}" if coordinates == "preset" else f"b{size}_{coordinates}"))
    folder = stages.folder
    teacher = teacher_path(task)
    loaded = load_teacher(teacher)
    cost, teacher_log_std = loaded.cost or {}, float(loaded.log_std(None).mean())
    fit, tuned = folder / "fit.safetensors", folder / "dagger_finetuned.safetensors"
    common = ["--size", str(size), *COORDINATES[coordinates], "--eval-learners", "0", "--quiet", *quick_count_flags(args)]
    stages.command("fit", ["compress", str(teacher), *common, "--out", str(fit)])
    stages.command("dagger + finetune", ["compress", str(teacher), *common, "--dagger-rounds", str(args.dagger_rounds),
                                         "--finetune", str(args.finetune), "--out", str(tuned)])
    files = {"fit": fit, "dagger": tuned.with_name(tuned.name.removesuffix(".safetensors") + ".fit.safetensors"),
             "dagger + finetune": tuned}
    if task in TEACHERS and coordinates == "preset" and size == 64:  # PPMO alone in the teacher's observation, at
        # notebook 02's B (after the route)
        files["PPMO alone"] = folder / "ppmo_alone.safetensors"
    rows = []
    teacher_ref = None
    for method, file in files.items():
        if method == "PPMO alone":
            budget = [] if args.ppmo_meta_epochs is None else ["--meta-epochs", str(args.ppmo_meta_epochs)]
            stages.command("ppmo alone", ["distill", "--preset", f"mujoco-{task}", "--env-kwargs",
                                          json.dumps(loaded.env_kwargs), "--size", str(size), *budget,
                                          "--quiet", "--out", str(file)])
        e = stages.evaluation(f"evaluate {method}", file, args.learners, args.episodes)
        refs = e["references"]
        teacher_ref = refs.get("teacher", teacher_ref)  # PPMO alone has none: the route's, same protocol
        rnd, tch = refs["random"]["mean"], teacher_ref["mean"]
        rows.append({
            "task": task, "B": size, "coordinates": coordinates, "method": method, "learners x episodes": f"{e['learners']} x {e['episodes']}",
            "one-step": ci(e), "share of teacher": round(e["mean"] / tch, 3) if tch > 0 else float("nan"),
            "share of margin": round((e["mean"] - rnd) / (tch - rnd), 3) if tch != rnd else float("nan"),
            f"bar ({', '.join(f'B = {b}: {v}' for b, v in BARS.items())})": BARS.get(size, float("nan")),
            "teacher (PPO)": ci(teacher_ref), "random": ci(refs["random"]),
            "finetune meta-epochs": args.finetune if method == "dagger + finetune" else float("nan"),
            "meta-epochs": DistilledDataset.load(file).provenance["meta_epochs"] if method == "PPMO alone" else float("nan"),
            "command min": round(stages[{"fit": "fit", "PPMO alone": "ppmo alone"}.get(method, "dagger + finetune")]["seconds"] / 60, 1),
            "teacher file": str(teacher), "teacher env steps": cost.get("env_steps", float("nan")),
            "teacher min": round(cost["wall_time_s"] / 60, 1) if "wall_time_s" in cost else float("nan"),
            "learner log-std": round(learner_log_std(file), 2), "teacher log-std": round(teacher_log_std, 2),
            "verdict": e["verdict_line"],
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--sizes", nargs="+", type=int, default=None,
                    help="only these B (default: 64 16 4; Ant-v5: 64 in both coordinates, 16 and 4 in linear)")
    ap.add_argument("--coordinates", nargs="+", choices=list(COORDINATES), default=None,
                    help="only these coordinates of the student: the preset's, or small inputs (obs scale 0.3, states "
                         "in +-0.25; default: both)")
    ap.add_argument("--out", type=Path, default=Path("results") / "mujoco" / "teacher_route",
                    help="the study's folder (relative: to the project folder)")
    ap.add_argument("--dagger-rounds", type=int, default=DAGGER_ROUNDS)
    ap.add_argument("--finetune", type=int, default=400, help="PPMO meta-epochs from the DAgger fit")
    ap.add_argument("--ppmo-meta-epochs", type=int, default=None,
                    help="PPMO alone (tasks with their own teacher): meta-epochs (default: the preset's budget)")
    ap.add_argument("--learners", type=int, default=100)
    ap.add_argument("--episodes", type=int, default=1)
    add_quick_counts(ap)
    args = ap.parse_args()
    args.out = enter_project(args.out)
    def grid(task: str) -> list[tuple[int, str]]:
        pairs = GRID.get(task, tuple((b, c) for b in SIZES for c in COORDINATES))
        return [(b, c) for b, c in pairs if (args.sizes is None or b in args.sizes)
                and (args.coordinates is None or c in args.coordinates)]

    table = pd.DataFrame([r for task in args.tasks for size, coordinates in grid(task)
                          for r in run_task(task, size, coordinates, args.out, args)])
    _, md = write_table(table.drop(columns=["verdict"]), args.out / "table", floatfmt=".3g")
    table.to_csv(args.out / "table.csv", index=False)  # the CSV keeps the verdict lines
    print(md.read_text())  # notebook 02 shows it per task, beside PPMO alone and the baselines


if __name__ == "__main__":
    main()
