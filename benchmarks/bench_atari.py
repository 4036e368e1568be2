"""Benchmark: seconds per PPMO meta-epoch on Atari in the CPU-scale configuration of params.yaml.

    python benchmarks/bench_atari.py [--game Breakout] [--splits 4 3 0] [--meta-epochs 3] [--device cpu] [--out results/benchmarks/atari]

8 envs x 128 steps (1,024 agent steps), 1 epoch x 4 minibatches of 256, Nature-CNN learner and
critic, one torch thread, no evaluations. The paper's Atari runs went to 20k-200k meta-epochs:
the table extrapolates to those budgets at the measured rate.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
import torch

import paper_code  # noqa: F401  (one thread)
from paper_code.config import load_scale
from paper_code.ppmo import PPMO
from paper_code.reporting import write_table
from paper_code.runs import scale_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="Breakout")
    parser.add_argument("--splits", type=int, nargs="+", default=[4, 3, 0])
    parser.add_argument("--meta-epochs", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="the run's device (cuda: timings synchronise the GPU)")
    parser.add_argument("--out", help="also write the table to <out>.csv and <out>.md")
    args = parser.parse_args()
    section = {**load_scale("paper")["atari"], "eval_every": 0}
    cuda = torch.device(args.device).type == "cuda"

    def clock() -> float:  # wall time after the GPU's queued work is done
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    rows = []
    for split in args.splits:
        run = PPMO(scale_config(f"atari-{args.game}-l{split}", section, device=args.device))
        run.meta_epoch_step()  # warm-up
        times = []
        for _ in range(args.meta_epochs):
            t = clock()
            run.meta_epoch_step()
            times.append(clock() - t)
        s = statistics.median(times)
        steps = run.cfg.num_envs * run.cfg.num_steps
        rows.append({"game": args.game, "l": split, "s / meta-epoch (median)": s, "agent steps / s": steps / s, "device": args.device,
                     "20k meta-epochs (h)": 20_000 * s / 3600, "200k meta-epochs (days)": 200_000 * s / 86400})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    if args.out:
        write_table(table, args.out)
    print(table.round(2).to_string(index=False))


if __name__ == "__main__":
    main()
