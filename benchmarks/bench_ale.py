"""Benchmark: Atari environment throughput, the hand-written loop of an earlier commit against ale-py's
C++ vector environment (today's ``paper_code.envs.atari.AtariVectorEnv``), side by side in one run.

    python benchmarks/bench_ale.py --before bd4631f [--game SpaceInvaders] [--envs 8] [--steps 2000]
                                   [--repeats 5] [--out results/benchmarks/ale_env]

Agent steps per second of ``--envs`` preprocessed games (frame skip 4, max-pool, 84x84 grayscale, stack
of 4, sticky actions, no-op resets, same-step autoreset) under uniformly random actions drawn before
timing. Each measurement is a fresh process: the env is built and reset, 100 untimed steps, then
``--steps`` timed ones. **before** (the commit's code, from a temporary git worktree) is pinned to one
core (it is one Python loop); **after** runs pinned to one core (ale-py: one thread) and to two cores
(ale-py: two threads; the threads follow the cores a process may use). The three take turns, ``--repeats``
rounds; the table has each one's median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_atari import cpu_model  # noqa: E402  (one definition of the machine line)


def child(game: str, envs: int, steps: int) -> None:
    import numpy as np

    from paper_code.envs.atari import AtariVectorEnv, atari_id

    env = AtariVectorEnv(atari_id(game), envs)
    n = env.single_action_space.n
    actions = np.random.default_rng(0).integers(0, n, (steps + 100, envs))
    env.reset(seed=0)
    for a in actions[:100]:
        env.step(a)
    t = time.perf_counter()
    for a in actions[100:]:
        env.step(a)
    dt = time.perf_counter() - t
    env.close()
    print(json.dumps({"steps_per_s": envs * steps / dt, "cpu": cpu_model()}))


def timed(code: Path, cores: str, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    cmd = ["taskset", "-c", cores, sys.executable, str(Path(__file__).resolve()), "--child", "--game", args.game,
           "--envs", str(args.envs), "--steps", str(args.steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=code, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", metavar="COMMIT", help="the commit whose env loop is the baseline (required)")
    parser.add_argument("--game", default="SpaceInvaders")
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2000, help="timed steps of all envs together, per process")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", help="also write the table to <out>.csv and <out>.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.game, args.envs, args.steps)
        return
    if not args.before:
        parser.error("--before COMMIT is required")
    import pandas as pd

    here = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(here), "worktree", "add", "--detach", "-q", str(before), args.before], check=True)
        try:
            runs = {"before: hand-written loop, 1 core": (before, "0"), "after: ale-py, 1 core (1 thread)": (here, "0"),
                    "after: ale-py, 2 cores (2 threads)": (here, "0,1")}
            rates: dict[str, list[float]] = {k: [] for k in runs}
            for i in range(args.repeats):
                for name, (code, cores) in runs.items():  # taking turns
                    res = timed(code, cores, args)
                    rates[name].append(res["steps_per_s"])
                    print(f"round {i + 1}: {name}: {res['steps_per_s']:,.0f} agent steps/s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(before)], check=False)
    base = statistics.median(rates["before: hand-written loop, 1 core"])
    table = pd.DataFrame([{"code": k, "agent steps / s (median)": statistics.median(v), "vs before": statistics.median(v) / base,
                           "min": min(v), "max": max(v)} for k, v in rates.items()])
    print(table.round(2).to_string(index=False))
    if args.out:
        from paper_code.pipeline.reporting import write_table

        csv, md = write_table(table, args.out)
        md.write_text(f"# Atari environment throughput: the hand-written loop against ale-py's vector env\n\n"
                      f"`python benchmarks/bench_ale.py {' '.join(sys.argv[1:])}`: {args.envs} {args.game} envs, random "
                      f"actions, {args.steps} timed steps per fresh process after 100 untimed, {args.repeats} rounds taking "
                      f"turns, medians; **before** = commit {args.before}'s `AtariVectorEnv` (a Python loop over gymnasium's "
                      f"ALE envs), **after** = this tree's (ale-py's C++ `AtariVectorEnv`, its threads = the cores the "
                      f"process may use, pinned with taskset). Machine: {res['cpu'].rsplit(',', 1)[0]}.\n\n" + md.read_text())
        print(f"wrote {csv} and {md}")


if __name__ == "__main__":
    main()
