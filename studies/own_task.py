"""Your own task, as the README tells it: does the teacher route reach the teacher on a task no preset was tuned for?

For each task (issue 40: Acrobot-v1, LunarLander-v3, Pendulum-v1) this runs the README's "Your own task in three
commands" verbatim, from ``--env`` alone, each command as a new process on one core and timed:

1. ``python -m paper_code ppo --env TASK --out teacher.safetensors`` (the PPO teacher, CleanRL's settings);
2. ``python -m paper_code compress teacher.safetensors --size 8 --steps 3000 --out set.safetensors`` (the teacher route);
3. ``python -m paper_code evaluate set.safetensors --learners 100 --episodes 5 --json``: fresh learners, one SGD
   step each, sampled actions, beside the random policy, the untrained learners and the teacher on the same
   protocol (learners x episodes);

and beside it the paper's method alone with the generic defaults, ``distill --env TASK --out ppmo.safetensors``,
and the route with the README's wide student for continuous control where the teacher's network fails (Pendulum),
``compress teacher.safetensors --student fourier ...`` (:data:`FOURIER`; beyond the paper: its one-step learners are
a wide random-Fourier-feature layer, not the task's 64-64 network), each evaluated by the same command. The table (``<out>/table.{csv,md}``) gives each return with its 95% CI, the share of
the teacher's margin over random that the set reaches, ``(set - random) / (teacher - random)`` (the issue's bar:
0.9), the verdict line, and the wall time of each command (the route's total: teacher + compress; the bar: 30 min).

Every command is the CLI's, so an interrupted study resumes where it stopped (a written file is "up to date" and
costs nothing; its recorded time is kept in ``<out>/<task>/stages.json``).

    python studies/own_task.py [--tasks Acrobot-v1 LunarLander-v3 Pendulum-v1] [--out results/own_task]
    # quick (tests): only counts shrink
    python studies/own_task.py --tasks Acrobot-v1 --out /tmp/own --ppo-steps 2048 --compress-steps 5 \\
        --meta-epochs 2 --fourier-width 64 --learners 3 --episodes 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from paper_code.pipeline.commands import Stages, ci, enter_project
from paper_code.pipeline.reporting import write_table

TASKS = ("Acrobot-v1", "LunarLander-v3", "Pendulum-v1")
SIZE = 8  # the README's --size
STEPS = 3000  # the README's compress --steps (the CLI's 800 left LunarLander at 0.82 of the margin)
BAR = 0.9  # the share of the teacher's margin over random
ROUTE_MINUTES = 30  # the wall-time bar for the route (teacher + compress) on one core
#: the README's Fourier-student route (compress flags): a wide cos layer, B = 256, K = 2 inits x 256 states per step
FOURIER = ["--student", "fourier", "--student-width", "4096", "--size", "256", "--steps", "3000", "--inits", "2",
           "--batch-states", "256", "--dagger-rounds", "3"]


def run_task(task: str, out: Path, args: argparse.Namespace) -> dict:
    stages = Stages(out / task)
    folder = stages.folder
    teacher, dataset, ppmo = folder / "teacher.safetensors", folder / "set.safetensors", folder / "ppmo.safetensors"
    budget = [] if args.ppo_steps is None else ["--total-env-steps", str(args.ppo_steps)]
    fit = [] if args.compress_steps is None else ["--steps", str(args.compress_steps)]
    meta = [] if args.meta_epochs is None else ["--meta-epochs", str(args.meta_epochs)]
    stages.command("teacher", ["ppo", "--env", task, "--out", str(teacher), "--quiet", *budget])
    stages.command("compress", ["compress", str(teacher), "--size", str(SIZE), "--steps", str(STEPS), "--out", str(dataset),
                                "--quiet", *fit])
    stages.command("ppmo", ["distill", "--env", task, "--out", str(ppmo), "--quiet", *meta])
    fourier = folder / "fourier.safetensors"
    width = [] if args.fourier_width is None else ["--student-width", str(args.fourier_width)]
    stages.command("compress fourier", ["compress", str(teacher), *FOURIER, "--out", str(fourier), "--quiet", *fit, *width])
    route = stages.evaluation("evaluate set", dataset, args.learners, args.episodes)
    alone = stages.evaluation("evaluate ppmo", ppmo, args.learners, args.episodes)
    wide = stages.evaluation("evaluate fourier", fourier, args.learners, args.episodes)
    refs = route["references"]
    rnd, tch = refs["random"]["mean"], refs["teacher"]["mean"]

    def share(mean: float) -> float:
        return (mean - rnd) / (tch - rnd) if tch != rnd else float("nan")

    route_s = stages["teacher"]["seconds"] + stages["compress"]["seconds"]
    wide_s = stages["teacher"]["seconds"] + stages["compress fourier"]["seconds"]
    return {
        "task": task,
        "learners x episodes": f"{route['learners']} x {route['episodes']}",
        "random": ci(refs["random"]),
        "teacher (PPO)": ci(refs["teacher"]),
        f"teacher route, B = {SIZE}": ci(route),
        "share of margin": round(share(route["mean"]), 3),
        f">= {BAR}": share(route["mean"]) >= BAR,
        "PPMO alone": ci(alone),
        "PPMO alone share": round(share(alone["mean"]), 3),
        "teacher min": round(stages["teacher"]["seconds"] / 60, 1),
        "compress min": round(stages["compress"]["seconds"] / 60, 1),
        "route min": round(route_s / 60, 1),
        f"<= {ROUTE_MINUTES} min": route_s <= ROUTE_MINUTES * 60,
        "PPMO alone min": round(stages["ppmo"]["seconds"] / 60, 1),
        "Fourier route": ci(wide),
        "Fourier share": round(share(wide["mean"]), 3),
        f"Fourier >= {BAR}": share(wide["mean"]) >= BAR,
        "Fourier route min": round(wide_s / 60, 1),
        f"Fourier <= {ROUTE_MINUTES} min": wide_s <= ROUTE_MINUTES * 60,
        "route verdict": route["verdict_line"],
        "PPMO alone verdict": alone["verdict_line"],
        "Fourier route verdict": wide["verdict_line"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--out", type=Path, default=Path("results") / "own_task",
                    help="the study's folder (relative: to the project folder)")
    ap.add_argument("--learners", type=int, default=100)
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--ppo-steps", type=int, default=None, help="quick only: ppo --total-env-steps (default: the CLI's)")
    ap.add_argument("--compress-steps", type=int, default=None, help="quick only: compress --steps (default: the CLI's)")
    ap.add_argument("--meta-epochs", type=int, default=None, help="quick only: distill --meta-epochs (default: the preset's)")
    ap.add_argument("--fourier-width", type=int, default=None, help="quick only: the Fourier route's --student-width")
    args = ap.parse_args()
    args.out = enter_project(args.out)
    table = pd.DataFrame([run_task(task, args.out, args) for task in args.tasks])
    verdicts = ["route verdict", "PPMO alone verdict", "Fourier route verdict"]
    _, md = write_table(table.drop(columns=verdicts), args.out / "table", floatfmt=".3g")
    table.to_csv(args.out / "table.csv", index=False)  # the CSV keeps the verdict lines
    md.write_text(md.read_text() + "\n" + "".join(f"- {r.task}, {name.replace(' verdict', '')}: {r[name]}\n"
                                                   for _, r in table.iterrows() for name in verdicts))
    print(md.read_text())


if __name__ == "__main__":
    main()
