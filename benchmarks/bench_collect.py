"""Benchmark: collecting the states fresh one-step learners visit (``visited_states`` for a dataset teacher, and a
``compress --dagger-rounds`` round), the learners stepped once per collection against once per env step.

    python benchmarks/bench_collect.py [--repeats 3] [--out results/benchmarks/collect]

Both ways run in one process, side by side: ``once`` is the library's path (the learners' inner step taken once,
they stay fixed for the collection); ``every env step`` is the path before it (the teacher's ``one_step`` removed, so
``visited_states`` calls the teacher's outputs, which step the learners again at every env step). They visit the
same states (tests/test_compress.py). Cases: the 2-D cart-pole B = 512 set as a dataset teacher (5,000 states, the
cart-pole compress pool's collection), and one DAgger round of a Pendulum fit with a Fourier student of width 1,024
and B = 256 (5,000 states; ``compress --student fourier``). The table gives the median (min, max) of ``--repeats``
timed repetitions after one warm-up, one torch thread.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import pandas as pd

import paper_code  # noqa: F401  (one thread)
from paper_code.core.compress import Compression, load_teacher, visited_states
from paper_code.core.settings import CompressConfig
from paper_code.pipeline.reporting import write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--states", type=int, default=5000)
    parser.add_argument("--out", help="also write the table to <out>.csv and <out>.md")
    args = parser.parse_args()
    pendulum = Compression(load_teacher("results/own_task/Pendulum-v1/teacher.safetensors"),
                           CompressConfig(size=256, student="fourier", student_width=1024, pool=2000))
    cases = {"cart-pole 2-D B = 512 set (dataset teacher)": load_teacher("results/cartpole/datasets/nd2_b512.safetensors"),
             "Pendulum DAgger round, Fourier W = 1,024, B = 256": pendulum._student()}
    rows = []
    for case, teacher in cases.items():
        for way, t in (("every env step (before)", replace(teacher, one_step=None)), ("once (after)", teacher)):
            visited_states(t, 256, seed=0)  # warm-up
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                visited_states(t, args.states, seed=0)
                times.append(time.perf_counter() - t0)
            s = pd.Series(times)
            rows.append({"case": case, "learners stepped": way, "states": args.states, "median s": s.median(),
                         "min s": s.min(), "max s": s.max(), "states/s (median)": args.states / s.median()})
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print(df.to_markdown(index=False, floatfmt=".3f"))
    if args.out:
        write_table(df, args.out, floatfmt=".3f")


if __name__ == "__main__":
    main()
