"""Benchmark: one PPMO run over 1 and 2 processes (torch.distributed, gloo on CPU): env steps/s.

    python benchmarks/bench_distributed.py [--meta-epochs 40] [--repeats 3] [--out results/benchmarks/distributed]

The paper's cart-pole configuration (N = 1, B = 512, 10 envs x 200 steps per rank, 4 x 4 updates),
one torch thread per process, no evaluations. One process is the plain command; two are
``torchrun --nproc-per-node 2``. The rate is the run's own: env steps (summed over ranks) over its
training wall time as rank 0 measured it (start-up not counted). Median of ``--repeats``; the cases
take turns.
``--independent`` adds the ceiling that no communication can beat on this machine: the same number
of plain one-process runs started at once, each its own run (env steps summed over the runs / the
longest run's training wall time). ``--collectives`` adds, for two processes doing nothing
else, the time of one sum over ranks of a flat buffer the size of the cart-pole run's gradients:
gloo's all-reduce, gloo's all-gather and a local sum, and the shared-memory sum
(:func:`paper_code.runs.distributed.sum_over_ranks`' path for ranks on one host).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from paper_code.core.dataset import DistilledDataset
from paper_code.pipeline.reporting import write_table


def distill_args(out: Path, meta_epochs: int, seed: int = 0) -> list[str]:
    return ["-m", "paper_code", "distill", "--preset", "cartpole-nd1", "--meta-epochs", str(meta_epochs),
            "--eval-every", "0", "--seed", str(seed), "--out", str(out), "--quiet"]


def once(ranks: int, meta_epochs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "d.safetensors"
        launcher = [sys.executable] if ranks == 1 else [sys.executable, "-m", "torch.distributed.run",
                                                        "--nproc-per-node", str(ranks), "--master-port", "29533"]
        subprocess.run([*launcher, *distill_args(out, meta_epochs)], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        p = DistilledDataset.load(out).provenance
        return {"env_steps": p["env_steps"], "wall_s": p["wall_time_s"]}


def independent(runs: int, meta_epochs: int) -> dict[str, float]:
    """``runs`` plain one-process runs (seeds 0, 1, ...) started at once: no communication at all."""
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / f"d{i}.safetensors" for i in range(runs)]
        procs = [subprocess.Popen([sys.executable, *distill_args(out, meta_epochs, seed=i)],
                                  env={**os.environ, "OMP_NUM_THREADS": "1"}) for i, out in enumerate(outs)]
        if any(p.wait() for p in procs):
            raise SystemExit("error: an independent run failed")
        prov = [DistilledDataset.load(out).provenance for out in outs]
        return {"env_steps": sum(p["env_steps"] for p in prov), "wall_s": max(p["wall_time_s"] for p in prov)}


def _collective_worker(rank: int, port: int, numel: int, n: int, out: str) -> None:
    import time

    import torch
    import torch.distributed as dist

    from paper_code.runs.distributed import _shared_sum, gather_sum, world

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    x = torch.randn(numel)
    w = world()
    shared = _shared_sum(w)
    ops = {"gloo all_reduce": lambda: dist.all_reduce(x.clone()),
           "gloo all-gather + local sum": lambda: gather_sum(x.clone(), w)}
    if shared is not None:
        ops["shared memory (ranks on one host; what the run uses)"] = lambda: shared.sum(x.clone())
    times: dict[str, list[float]] = {k: [] for k in ops}
    for _ in range(3):  # the two take turns, n calls each
        for name, op in ops.items():
            for _ in range(20):
                op()
            t = time.perf_counter()
            for _ in range(n):
                op()
            times[name].append((time.perf_counter() - t) / n * 1e3)
    if rank == 0:
        torch.save(times, out)
    dist.destroy_process_group()


def collectives(numel: int, n: int = 300) -> list[dict]:
    import socket

    import torch
    import torch.multiprocessing as mp

    with socket.socket() as sock, tempfile.TemporaryDirectory() as tmp:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        out = str(Path(tmp) / "t.pt")
        mp.spawn(_collective_worker, args=(port, numel, n, out), nprocs=2, join=True)
        times = torch.load(out)
    return [{"sum over 2 processes (nothing else running)": k, "floats": numel,
             "ms per call (median of 3 x 300)": sorted(v)[1]} for k, v in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meta-epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--independent", action="store_true",
                        help="also time as many independent one-process runs at once as the most ranks (the ceiling)")
    parser.add_argument("--collectives", action="store_true",
                        help="also time the ways of summing a buffer of the gradients' size over two processes")
    parser.add_argument("--out", help="also write the table to <out>.csv and <out>.md")
    args = parser.parse_args()
    rows = []
    cases = [(str(r), r, once) for r in args.ranks]
    if args.independent:
        cases.append((f"{max(args.ranks)} independent runs (no communication)", max(args.ranks), independent))
    rates_of: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(args.repeats):  # the cases take turns, so that each sees the machine's same moments
        for name, ranks, fn in cases:
            r = fn(ranks, args.meta_epochs)
            rates_of[name].append(r["env_steps"] / r["wall_s"])
    for name, ranks, fn in cases:
        rates = sorted(rates_of[name])
        rows.append({"processes": name, "env-steps/s (median)": rates[len(rates) // 2], "min": rates[0], "max": rates[-1],
                     "meta-epochs/s per process": rates[len(rates) // 2] / (2000 * ranks)})
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df["speed-up"] = df["env-steps/s (median)"] / df["env-steps/s (median)"].iloc[0]
    extra = ""
    if args.collectives:
        from paper_code.runs.training import new_run
        from paper_code.pipeline.presets import resolve

        run = new_run(resolve("cartpole-nd1", eval_every=0))
        numel = sum(p.numel() for p in [*run.data_params, *run.critic.values()])
        ct = pd.DataFrame(collectives(numel))
        print(ct.to_string(index=False))
        extra = "\n" + ct.to_markdown(index=False, floatfmt=".3f") + "\n"
    if args.out:
        csv, md = write_table(df, args.out, floatfmt=",.2f")
        md.write_text(f"One PPMO run (cartpole-nd1, B = 512, 10 envs x 200 steps per process, 4 x 4 updates) over 1 and "
                      f"{max(args.ranks)} processes (gloo){' and as many independent runs at once' if args.independent else ''}, one thread each, {args.meta_epochs} meta-epochs, median of "
                      f"{args.repeats}, the cases taking turns; env steps summed over processes / rank 0's training wall time\n\n" + md.read_text() + extra)
        print(f"wrote {csv} and {md}")


if __name__ == "__main__":
    main()
