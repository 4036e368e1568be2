"""Benchmark: evaluating one-step learners (``evaluate_dataset``): episodes/s and env steps/s.

    python benchmarks/bench_evaluate.py [--file results/cartpole/datasets/nd1_b512.safetensors]
                                        [--learners 100] [--episodes 5] [--repeats 3] [--out ...]
                                        [--label CODE --append]

Fresh learners, one SGD step on the dataset, every learner x episode stepped together in the
batched environment until its first episode ends; sampled and greedy actions; one torch thread.
The table gives the median (and min, max) of ``--repeats`` timed repetitions after one warm-up.
``--label`` names the code measured (a column); ``--append`` adds the rows to an existing ``--out``
table, so a figure before a change and the one after stand side by side.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

import paper_code  # noqa: F401  (one thread)
from paper_code.core.dataset import DistilledDataset
from paper_code.core.evaluation import evaluate_dataset
from paper_code.pipeline.reporting import write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default="results/cartpole/datasets/nd1_b512.safetensors")
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the table to <out>.csv and <out>.md")
    parser.add_argument("--label", help="the code measured (e.g. a git revision): a first column")
    parser.add_argument("--append", action="store_true", help="add the rows to an existing <out>.csv")
    args = parser.parse_args()
    ds = DistilledDataset.load(args.file)
    rows = []
    for greedy in (False, True):
        kw = dict(learners=args.learners, episodes=args.episodes, greedy=greedy, seed=0)
        evaluate_dataset(ds, **kw)  # warm-up
        times, steps = [], 0
        for _ in range(args.repeats):
            t = time.perf_counter()
            r = evaluate_dataset(ds, **kw)
            times.append(time.perf_counter() - t)
            steps = float(r.returns.sum())  # cart-pole: one reward per step
        s = pd.Series(times)
        rows.append({**({"code": args.label} if args.label else {}), "actions": "greedy" if greedy else "sampled", "episodes": args.learners * args.episodes,
                     "median s": s.median(), "min s": s.min(), "max s": s.max(),
                     "env steps/s (median)": steps / s.median()})
    df = pd.DataFrame(rows)
    print(df.to_markdown(index=False, floatfmt=".3f"))
    if args.out:
        if args.append and Path(f"{args.out}.csv").exists():
            df = pd.concat([pd.read_csv(f"{args.out}.csv"), df], ignore_index=True)
        write_table(df, args.out, floatfmt=".3f")


if __name__ == "__main__":
    main()
