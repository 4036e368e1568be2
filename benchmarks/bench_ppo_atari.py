"""Benchmark: the Atari PPO teacher's speed (``python -m paper_code ppo --preset atari-<game>``).

    python benchmarks/bench_ppo_atari.py [--games Pong SpaceInvaders MsPacman Centipede] [--warmup 2]
                                         [--iterations 5] [--device cpu] [--out results/benchmarks/ppo_atari]

One fresh process per game: the preset's PPO (8 envs x 128 steps, 4 epochs x 4 minibatches of 256, the
Nature-CNN with a value head), ``--warmup`` untimed iterations, then ``--iterations`` timed ones; the
median seconds per iteration, the agent steps per second (1,024 per iteration) and the hours that
``teacher.total_env_steps`` of params.yaml's paper scale take at that rate. One torch thread; the
emulators on the cores the process may use.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_atari import cpu_model  # noqa: E402


def child(game: str, warmup: int, iterations: int, device: str) -> None:
    import torch

    from paper_code.core.ppo import PPO
    from paper_code.pipeline.presets import resolve_ppo

    torch.set_num_threads(1)
    cuda = torch.device(device).type == "cuda"
    run = PPO(resolve_ppo(f"atari-{game}", device=device), 10**9)
    times = []
    for i in range(warmup + iterations):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        run.step()
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    steps = run.cfg.num_envs * run.cfg.num_steps
    print(json.dumps({"times": times, "steps": steps, "cpu": cpu_model(), "torch": torch.__version__}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--games", nargs="+", default=["Pong", "SpaceInvaders", "MsPacman", "Centipede"])
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", help="also write <out>.csv and <out>.md")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.warmup, args.iterations, args.device)
        return
    import pandas as pd

    here = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(here))
    from paper_code.pipeline.config import load_scale

    total = int(load_scale("paper")["atari"]["teacher"]["total_env_steps"])
    rows = []
    for game in args.games:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", game, "--warmup", str(args.warmup),
               "--iterations", str(args.iterations), "--device", args.device]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=here,
                                        env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout.strip().splitlines()[-1])
        s = statistics.median(res["times"])
        rows.append({"game": game, "device": args.device, "s / iteration (median)": s, "agent steps / s": res["steps"] / s,
                     f"{total:,} agent steps (h)": total / res["steps"] * s / 3600})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.round(2).to_string(index=False))
    if args.out:
        from paper_code.pipeline.reporting import write_table

        csv, md = write_table(table, args.out)
        md.write_text(f"# The Atari PPO teacher's speed\n\n`python benchmarks/bench_ppo_atari.py {' '.join(sys.argv[1:])}`: "
                      f"one fresh process per game, {args.warmup} warm-up + {args.iterations} timed iterations of 1,024 "
                      f"agent steps (the preset: 8 envs x 128 steps, 4 epochs x 4 minibatches of 256), the median; one "
                      f"torch thread; torch {res['torch']}; machine: {res['cpu']}.\n\n" + md.read_text())
        print(f"wrote {csv} and {md}")


if __name__ == "__main__":
    main()
