"""Benchmark: one PPMO run over 1 and 2 processes (torch.distributed, gloo on CPU): env steps/s.

    python benchmarks/bench_distributed.py [--meta-epochs 40] [--repeats 3] [--out results/benchmarks/distributed]

The paper's cart-pole configuration (N = 1, B = 512, 10 envs x 200 steps per rank, 4 x 4 updates),
one torch thread per process, no evaluations. One process is the plain command; two are
``torchrun --nproc-per-node 2``. The rate is the run's own: env steps (summed over ranks) over its
training wall time as rank 0 measured it (start-up not counted). Median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from paper_code.dataset import DistilledDataset
from paper_code.reporting import write_table


def once(ranks: int, meta_epochs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "d.safetensors"
        args = ["-m", "paper_code", "distill", "--preset", "cartpole-nd1", "--meta-epochs", str(meta_epochs),
                "--eval-every", "0", "--out", str(out), "--quiet"]
        launcher = [sys.executable] if ranks == 1 else [sys.executable, "-m", "torch.distributed.run",
                                                        "--nproc-per-node", str(ranks), "--master-port", "29533"]
        subprocess.run([*launcher, *args], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        p = DistilledDataset.load(out).provenance
        return {"env_steps": p["env_steps"], "wall_s": p["wall_time_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meta-epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", help="also write the table to <out>.csv and <out>.md")
    args = parser.parse_args()
    rows = []
    for ranks in args.ranks:
        rates = sorted(r["env_steps"] / r["wall_s"] for r in (once(ranks, args.meta_epochs) for _ in range(args.repeats)))
        rows.append({"processes": ranks, "env-steps/s (median)": rates[len(rates) // 2], "min": rates[0], "max": rates[-1],
                     "meta-epochs/s per process": rates[len(rates) // 2] / (2000 * ranks)})
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df["speed-up"] = df["env-steps/s (median)"] / df["env-steps/s (median)"].iloc[0]
    if args.out:
        csv, md = write_table(df, args.out, floatfmt=",.2f")
        md.write_text(f"One PPMO run (cartpole-nd1, B = 512, 10 envs x 200 steps per process, 4 x 4 updates) over 1 and "
                      f"{max(args.ranks)} processes (gloo), one thread each, {args.meta_epochs} meta-epochs, median of "
                      f"{args.repeats}; env steps summed over processes / rank 0's training wall time\n\n" + md.read_text())
        print(f"wrote {csv} and {md}")


if __name__ == "__main__":
    main()
