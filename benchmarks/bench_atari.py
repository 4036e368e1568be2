"""Benchmark: seconds per PPMO meta-epoch on Atari in the CPU-scale configuration of params.yaml.

    python benchmarks/bench_atari.py [--game Breakout] [--splits 4 3 0] [--warmup 3] [--meta-epochs 5] [--repeats 1]
                                     [--before COMMIT] [--profile] [--device cpu] [--out results/benchmarks/atari]

8 envs x 128 steps (1,024 agent steps), 1 epoch x 4 minibatches of 256, Nature-CNN learner and
critic, one torch thread, no evaluations. Each (code, l) is timed in a fresh process: ``--warmup``
meta-epochs, then ``--meta-epochs`` timed ones; ``--repeats`` such processes, and the median of all
timed meta-epochs. The warm-up is what a long run does not pay per meta-epoch: the process's heap
grows to its peak over the first few meta-epochs, each new page a page fault (the table's faults
column counts the minor page faults of the timed meta-epochs, 0 once the heap has settled).
``--before COMMIT`` also times the code of that commit (from a temporary git worktree, the same
script driving it), the two taking turns, so that the table has the earlier figure beside today's. ``--profile`` also writes, per l, torch.profiler's top ops (by input shape)
of one meta-epoch of today's code to ``<out>_profile_l<l>.txt``. The paper's Atari runs went to
20k-200k meta-epochs: the table extrapolates to those budgets at the measured rate.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 2.5  # issue 23: seconds per meta-epoch for l = 4 and 3 on one core


def child(game: str, split: int, warmup: int, meta_epochs: int, device: str, profile_to: str | None = None) -> None:
    """Time one (game, l) in this process with whichever ``paper_code`` is importable; print JSON.
    ``profile_to``: then profile one more meta-epoch into that file."""
    import torch

    import paper_code  # noqa: F401  (one thread)
    from paper_code.config import load_scale
    from paper_code.ppmo import PPMO
    from paper_code.runs import scale_config

    cuda = torch.device(device).type == "cuda"

    def clock() -> float:  # wall time after the GPU's queued work is done
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    section = {**load_scale("paper")["atari"], "eval_every": 0}
    run = PPMO(scale_config(f"atari-{game}-l{split}", section, device=device))
    for _ in range(warmup):
        run.meta_epoch_step()
    times, faults = [], []
    for _ in range(meta_epochs):
        f, t = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, clock()
        run.meta_epoch_step()
        times.append(clock() - t)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f)
    if profile_to:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            run.meta_epoch_step()
        with open(profile_to, "w") as f:
            f.write(f"torch.profiler, one meta-epoch of {game} l = {split} (after {warmup + meta_epochs}), ops by input shape; "
                    f"the profiler's overhead inflates per-op times; the emulator's own time is not an op\n"
                    + prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=30,
                                                                         max_name_column_width=30,
                                                                         max_shapes_column_width=70) + "\n")
    print(json.dumps({"times": times, "faults": faults, "steps": run.cfg.num_envs * run.cfg.num_steps, "torch": torch.__version__}))


def timed(code: Path, args: argparse.Namespace, split: int, profile_to: str | None = None) -> dict:
    """One fresh process timing ``code``'s ``paper_code`` (run from ``code``, so that it reads that
    tree's params.yaml and presets)."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--game", args.game, "--splits", str(split),
           "--warmup", str(args.warmup), "--meta-epochs", str(args.meta_epochs), "--device", args.device,
           *(["--profile-to", str(Path(profile_to).resolve())] if profile_to else [])]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=code, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="Breakout")
    parser.add_argument("--splits", type=int, nargs="+", default=[4, 3, 0])
    parser.add_argument("--warmup", type=int, default=3, help="untimed meta-epochs first, per process")
    parser.add_argument("--meta-epochs", type=int, default=5, help="timed meta-epochs per process")
    parser.add_argument("--repeats", type=int, default=1, help="processes per (code, l)")
    parser.add_argument("--before", metavar="COMMIT", help="also time this commit's code, beside today's")
    parser.add_argument("--profile", action="store_true", help="also profile one meta-epoch per l (needs --out)")
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help="the run's device (cuda: timings synchronise the GPU)")
    parser.add_argument("--out", help="also write the table to <out>.csv and <out>.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.game, args.splits[0], args.warmup, args.meta_epochs, args.device, args.profile_to)
        return
    if args.profile and not args.out:
        parser.error("--profile needs --out")

    import pandas as pd

    here = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        codes = {"after": here}
        if args.before:
            before = Path(tmp) / "before"
            subprocess.run(["git", "-C", str(here), "worktree", "add", "--detach", "-q", str(before), args.before], check=True)
            codes = {"before": before, "after": here}
        try:
            rows = []
            for split in args.splits:
                times: dict[str, list[float]] = {name: [] for name in codes}
                faults: list[int] = []  # today's code's
                for i in range(args.repeats):
                    for name, code in codes.items():  # the codes take turns
                        prof = f"{args.out}_profile_l{split}.txt" if args.profile and name == "after" and i == 0 else None
                        res = timed(code, args, split, prof)
                        times[name] += res["times"]
                        faults += res["faults"] if name == "after" else []
                        print(f"{args.game} l={split} {name}: {statistics.median(res['times']):.3f} s", flush=True)
                s = {name: statistics.median(t) for name, t in times.items()}
                after = s["after"]
                row = {"game": args.game, "l": split}
                if "before" in s:
                    row |= {"before: s / meta-epoch (median)": s["before"], "speed-up": s["before"] / after}
                row["s / meta-epoch (median)"] = after
                row["page faults / meta-epoch (median)"] = statistics.median(faults)
                row[f"target {TARGET_S} s"] = ("(not a target)" if split not in (3, 4) else "met" if after <= TARGET_S
                                               else f"missed by {after - TARGET_S:.2f} s ({100 * (after / TARGET_S - 1):.0f}%)")
                row |= {"agent steps / s": res["steps"] / after, "device": args.device,
                        "20k meta-epochs (h)": 20_000 * after / 3600, "200k meta-epochs (days)": 200_000 * after / 86_400}
                rows.append(row)
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(before)], check=False)
    table = pd.DataFrame(rows)
    print(table.round(2).to_string(index=False))
    if args.out:
        from paper_code.reporting import write_table

        csv, md = write_table(table, args.out)
        where = "one thread" if args.device == "cpu" else args.device
        compared = (f"**before** = the code at commit {args.before}, **after** = this tree, each from its own source tree, "
                    f"taking turns" if args.before else "this tree")
        md.write_text(
            f"# Seconds per PPMO meta-epoch on Atari\n\n"
            f"`python benchmarks/bench_atari.py {' '.join(sys.argv[1:])}`: {compared}; torch {res['torch']} on {where}; "
            f"the CPU-scale configuration of the presets and of params.yaml's paper scale (8 envs x 128 steps = 1,024 agent "
            f"steps, 1 epoch x 4 minibatches of 256, Nature-CNN learner and critic, no evaluations); per (code, l) "
            f"{args.repeats} fresh process(es) x ({args.warmup} warm-up + {args.meta_epochs} timed meta-epochs), the median of "
            f"the timed ones (the warm-up: the process's heap grows to its peak over the first meta-epochs, each new page a "
            f"page fault; the faults column counts today's code's minor faults per timed meta-epoch). Target (issue 23): <= {TARGET_S} s for l = 4 and 3 on one core.\n\n" + md.read_text())
        print(f"wrote {csv} and {md}")


if __name__ == "__main__":
    main()
