"""Benchmark: batched ND cart-pole env-steps/s next to gymnasium CartPole-v1 in a SyncVectorEnv.

    python benchmarks/bench_envs.py [--seconds 2] [--out results/benchmarks/env_steps]

One env-step is one environment advanced by one step (a batch of B counts B). Actions are
drawn uniformly at random ahead of time, so only stepping is timed. Runs on one torch thread
unless PAPER_CODE_NUM_THREADS says otherwise.
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

import paper_code  # noqa: F401  (one thread, env registration)
from paper_code.envs import BatchedNDCartPole
from paper_code.pipeline.reporting import write_table


def bench_batched(B: int, dof: int, seconds: float) -> float:
    env = BatchedNDCartPole(B, dof, seed=0, check_actions=False)
    env.reset()
    actions = torch.randint(2 * dof, (64, B), generator=torch.Generator().manual_seed(0))
    for i in range(10):  # warm-up
        env.step(actions[i])
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for i in range(64):
            env.step(actions[i])
        steps += 64
    return steps * B / elapsed


def bench_gym_sync(B: int, seconds: float) -> float:
    venv = gym.make_vec("CartPole-v1", num_envs=B, vectorization_mode="sync")
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(2, size=(64, B))
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for i in range(64):
            venv.step(actions[i])
        steps += 64
    venv.close()
    return steps * B / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per configuration")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024, 8192])
    parser.add_argument("--dofs", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--out", help="also write the table to <out>.csv and <out>.md")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}")
    header = f"{'B':>6} | " + " | ".join(f"batched N={n:<2} steps/s" for n in args.dofs) + " | gym SyncVectorEnv CartPole-v1 steps/s"
    print(header)
    print("-" * len(header))
    rows = []
    for B in args.batches:
        batched = {n: bench_batched(B, n, args.seconds) for n in args.dofs}
        sync = bench_gym_sync(B, args.seconds)
        rows.append({"B": B, **{f"batched_N{n}": v for n, v in batched.items()}, "gym_sync_N1": sync})
        print(f"{B:>6} | " + " | ".join(f"{batched[n]:>21,.0f}" for n in args.dofs) + f" | {sync:>36,.0f}")
    if args.out:
        table = pd.DataFrame(rows).rename(
            columns={**{f"batched_N{n}": f"batched N={n} (env-steps/s)" for n in args.dofs},
                     "gym_sync_N1": "gymnasium SyncVectorEnv CartPole-v1 (env-steps/s)"}
        )
        csv, md = write_table(table, args.out, floatfmt=",.0f")
        md.write_text(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.seconds:g} s per cell\n\n" + md.read_text())
        print(f"wrote {csv} and {md}")


if __name__ == "__main__":
    main()
