"""Benchmark: wall time and env steps to a solved N-D cart-pole dataset, beside plain PPO's time.

    python benchmarks/bench_time_to_solve.py [--preset cartpole-fast-nd{N}] [--dofs 1 2 3 4 5] [--compile]
                                             [--out results/benchmarks/time_to_solve]

For each N: PPMO with the preset (default: ``cartpole-fast-nd{N}``, beyond the paper), one thread,
evaluating every 10 meta-epochs (20 fresh learners x 1 episode, sampled). At the first evaluation
>= 475 the dataset is **confirmed** by 100 learners x 5 episodes (the lower end of the 95% CI must
clear 475); unconfirmed, training goes on. Reported: meta-epochs, env steps, training wall time
(meta-epochs only) and elapsed time (with the evaluations) at the confirmed point, next to plain PPO's
wall time to a training return of 475 (notebook 01's committed run, ``results/cartpole/table1/ppo_curves.csv``).
With ``--compile`` the runs use ``compile=True``; compiling happens once per process, before the
timed run (one warm-up meta-epoch of a throwaway run with the same shapes), and is reported as its
own column.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

import paper_code  # noqa: F401  (one thread)
from paper_code.core.evaluation import evaluate_dataset
from paper_code.runs.training import new_run
from paper_code.pipeline.analysis import first_reach
from paper_code.project import project_root
from paper_code.pipeline.presets import resolve
from paper_code.pipeline.protocol import SOLVED_RETURN
from paper_code.pipeline.reporting import write_table
from paper_code.runs.training import train


def solve(preset: str, budget: int, compile: bool = False) -> dict[str, float]:
    cfg = resolve(preset, eval_every=10, eval_learners=20, compile=compile)
    compile_s = float("nan")
    if compile:  # compile once (the graphs are kept for the process), outside the timed run
        t0 = time.perf_counter()
        new_run(cfg).meta_epoch_step()
        compile_s = time.perf_counter() - t0
    run = new_run(cfg)
    confirmed: dict[str, float] = {}
    t0 = time.perf_counter()

    def stop(evals: list[dict[str, float]]) -> bool:
        if evals[-1]["sampled_return"] < SOLVED_RETURN:
            return False
        r = evaluate_dataset(run.dataset(), learners=100, episodes=5, seed=90_000 + run.meta_epoch)
        if r.ci95[0] < SOLVED_RETURN:
            return False
        confirmed.update({"confirmed return": r.mean, "CI low": r.ci95[0], "CI high": r.ci95[1]})
        return True

    train(run, budget, progress=False, stop_when=stop, stop_rule="confirmed")
    return {"meta-epochs": run.meta_epoch, "env steps": run.env_steps, "training wall s": run.wall_time,
            "elapsed s (with evaluations)": time.perf_counter() - t0, "solved": bool(confirmed),
            **({"compile s (once)": compile_s} if compile else {}),
            **(confirmed or {"confirmed return": float("nan"), "CI low": float("nan"), "CI high": float("nan")})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cartpole-fast-nd{N}", help="the preset, {N} replaced by N")
    parser.add_argument("--dofs", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--budget", type=int, default=6000, help="meta-epochs at most per N")
    parser.add_argument("--compile", action="store_true", help="compile=True (compiled before the timed run)")
    parser.add_argument("--out", help="also write the table to <out>.csv and <out>.md")
    args = parser.parse_args()
    ppo = pd.read_csv(project_root() / "results" / "cartpole" / "table1" / "ppo_curves.csv")
    rows = []
    for n in args.dofs:
        preset = args.preset.replace("{N}", str(n))
        row = {"N": n, "preset": preset, **solve(preset, args.budget, args.compile)}
        hit = first_reach(ppo[ppo.N == n], "train_return", SOLVED_RETURN)
        row["PPO wall s to 475"], row["PPO env steps to 475"] = hit["wall_time_s"], hit["env_steps"]
        row["PPMO / PPO wall"] = row["training wall s"] / row["PPO wall s to 475"]
        rows.append(row)
        print(row, flush=True)
    if args.out:
        csv, md = write_table(pd.DataFrame(rows), args.out, floatfmt=",.1f")
        md.write_text("Time to a solved N-D cart-pole dataset (B = 512): first evaluation (20 learners x 1 episode, every 10 "
                      "meta-epochs) >= 475, confirmed by 100 learners x 5 episodes (95% CI lower end >= 475); one thread; "
                      f"{'compile=True (compiled before the timed run); ' if args.compile else ''}"
                      "plain PPO: notebook 01's committed run, wall time to a training return of 475\n\n" + md.read_text())
        print(f"wrote {csv} and {md}")


if __name__ == "__main__":
    main()
