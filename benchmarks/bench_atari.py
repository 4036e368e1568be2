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

What bounds the time: the env column is the part of each timed meta-epoch spent in the
environment's steps (emulator, frame preprocessing, tensors to and from numpy), timed inside the
same meta-epochs; the rest is the networks and everything else. The network arithmetic of a
meta-epoch is counted from the Nature-CNN's layer shapes (:func:`network_gflop`), and each process
also times every layer's forward alone on a minibatch (256 channels-last frames, as the update runs
them; the best of 10 calls); the floor column is env + that arithmetic at the fastest of those layer rates: what no
change to the code's overheads can go below without changing the environment's cost or the
arithmetic (fewer or smaller networks, fewer frames).
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
    from paper_code.pipeline.config import load_scale
    from paper_code.core.ppmo import PPMO
    from paper_code.pipeline.experiments import scale_config

    cuda = torch.device(device).type == "cuda"

    def clock() -> float:  # wall time after the GPU's queued work is done
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    section = {**load_scale("paper")["atari"], "eval_every": 0}
    run = PPMO(scale_config(f"atari-{game}-l{split}", section, device=device))
    env_step, in_env = run.env.step, [0.0]

    def timed_step(actions):  # the environment's share of a meta-epoch, timed where it happens
        t = clock()
        out = env_step(actions)
        in_env[0] += clock() - t
        return out

    run.env.step = timed_step
    for _ in range(warmup):
        run.meta_epoch_step()
    times, faults, env_times = [], [], []
    for _ in range(meta_epochs):
        f, t, in_env[0] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, clock(), 0.0
        run.meta_epoch_step()
        times.append(clock() - t)
        env_times.append(in_env[0])
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
    print(json.dumps({"times": times, "faults": faults, "env_times": env_times, "layer_gflops": layer_rates(run, device),
                      "steps": run.cfg.num_envs * run.cfg.num_steps, "update_epochs": run.cfg.update_epochs,
                      "obs_shape": list(run.obs_shape), "num_actions": run.num_actions, "torch": torch.__version__,
                      "cpu": f"{cpu_model()}, torch's CPU kernels: {torch.backends.cpu.get_cpu_capability()}"}))


def cpu_model() -> str:
    """The processor as /proc/cpuinfo names it, with its family and model numbers, and the number of
    cores this process may use: the machines of this project differ in generation (an EPYC with AVX2
    only and one with AVX-512 have both run this benchmark, its figures about 2x apart), so a figure names its machine."""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
        info = {k.strip(): v.strip() for k, v in info.items()}  # (the last core's entries; all cores are alike)
        name = f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
    except OSError:  # not Linux
        import platform

        name = platform.processor() or platform.machine()
    return f"{name}, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores"


def layer_macs(obs_shape: tuple[int, int, int], outputs: int) -> list[int]:
    """Multiply-adds per frame of each Nature-CNN layer's forward on observations ``obs_shape``
    (``outputs``: the output layer's size, the number of actions or 1 for the critic), from the
    library's layer shapes: a convolution applies its weight once per output position (its output
    is the next layer's input), a linear layer once."""
    import math

    from paper_code.core.learners import cnn_shapes

    shapes = cnn_shapes(obs_shape, outputs)
    return [math.prod(w) * (math.prod(shapes[i + 1][1]) // w[0] if len(w) == 4 else 1)
            for i, (w, _) in enumerate(shapes)]


def network_gflop(obs_shape: tuple[int, int, int], num_actions: int, frames: int, update_epochs: int = 1) -> float:
    """The network arithmetic of one meta-epoch over ``frames`` rollout frames (2 flops per multiply-add):
    the acting learner's forward per frame (encoder and one-step learner, whatever the split), the
    critic's values, and per update epoch the learner's and the critic's forward and backward (weight
    gradients of every layer, input gradients of all but the first: the frames need none). Not
    counted: the inner step on the B synthetic states (about 1% at l = 3, 4 with B = 4) and the
    critic on the envs' last observations (8 frames)."""
    learner, critic = layer_macs(obs_shape, num_actions), layer_macs(obs_shape, 1)
    fwd_l, fwd_c = sum(learner), sum(critic)
    train = lambda fwd, first: fwd + 2 * fwd - first  # forward, weight gradients, input gradients
    macs = fwd_l + fwd_c + update_epochs * (train(fwd_l, learner[0]) + train(fwd_c, critic[0]))
    return 2 * macs * frames / 1e9


def layer_rates(run, device: str, batch: int = 256, reps: int = 10) -> list[float]:
    """GFLOP/s of each Nature-CNN layer's forward but the output layer's alone on ``batch`` frames (channels-last
    convolutions, as the update runs them), the best of ``reps``, with the run's critic's weights."""
    import torch
    import torch.nn.functional as F

    from paper_code.core.learners import NATURE_CNN

    def clock() -> float:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    macs = layer_macs(run.obs_shape, 1)
    x = torch.rand(batch, *run.obs_shape, device=device).contiguous(memory_format=torch.channels_last)
    rates = []
    with torch.no_grad():
        for i, (kind, _, _, s) in enumerate(NATURE_CNN[:-1]):  # the output layer (512 -> 1) is negligible
            w, b = run.critic[f"c{i}.weight"], run.critic[f"c{i}.bias"]
            if kind == "conv":
                w = w.contiguous(memory_format=torch.channels_last)
                fn = lambda x=x, w=w, b=b, s=s: F.conv2d(x, w, b, stride=s)
            else:
                x = x.flatten(1)
                fn = lambda x=x, w=w, b=b: F.linear(x, w, b)
            y = fn()
            ts = []
            for _ in range(reps):
                t = clock()
                fn()
                ts.append(clock() - t)
            rates.append(2 * macs[i] * batch / min(ts) / 1e9)  # the best of reps: the most favourable rate
            x = y.relu()
    return rates


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
                env_times, rest_times, fastest = [], [], []  # today's code's
                for i in range(args.repeats):
                    for name, code in codes.items():  # the codes take turns
                        prof = f"{args.out}_profile_l{split}.txt" if args.profile and name == "after" and i == 0 else None
                        res = timed(code, args, split, prof)
                        times[name] += res["times"]
                        if name == "after":
                            faults += res["faults"]
                            env_times += res["env_times"]
                            rest_times += [t - e for t, e in zip(res["times"], res["env_times"])]
                            fastest.append(max(res["layer_gflops"]))
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
                gflop = network_gflop(tuple(res["obs_shape"]), res["num_actions"], res["steps"], res["update_epochs"])
                env_s, rate = statistics.median(env_times), statistics.median(fastest)
                row |= {"env s (median)": env_s, "rest s (median)": statistics.median(rest_times),
                        "network GFLOP": gflop, "rest GFLOP/s": gflop / statistics.median(rest_times),
                        "fastest layer GFLOP/s": rate, "floor s": env_s + gflop / rate}
                row |= {"agent steps / s": res["steps"] / after, "device": args.device,
                        "20k meta-epochs (h)": 20_000 * after / 3600, "200k meta-epochs (days)": 200_000 * after / 86_400}
                rows.append(row)
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(before)], check=False)
    table = pd.DataFrame(rows)
    print(table.round(2).to_string(index=False))
    if args.out:
        from paper_code.pipeline.reporting import write_table

        csv, md = write_table(table, args.out)
        where = "one thread" if args.device == "cpu" else args.device
        compared = (f"**before** = the code at commit {args.before}, **after** = this tree, each from its own source tree, "
                    f"taking turns" if args.before else "this tree")
        md.write_text(
            f"# Seconds per PPMO meta-epoch on Atari\n\n"
            f"`python benchmarks/bench_atari.py {' '.join(sys.argv[1:])}`: {compared}; torch {res['torch']} on {where}; "
            f"machine: {res['cpu']}; "
            f"the CPU-scale configuration of the presets and of params.yaml's paper scale (8 envs x 128 steps = 1,024 agent "
            f"steps, 1 epoch x 4 minibatches of 256, Nature-CNN learner and critic, no evaluations); per (code, l) "
            f"{args.repeats} fresh process(es) x ({args.warmup} warm-up + {args.meta_epochs} timed meta-epochs), the median of "
            f"the timed ones (the warm-up: the process's heap grows to its peak over the first meta-epochs, each new page a "
            f"page fault; the faults column counts today's code's minor faults per timed meta-epoch). Target (issue 23): <= {TARGET_S} s for l = 4 and 3 on one core.\n\n"
            f"Where the time goes (today's code, the same timed meta-epochs): **env s** is the environment's steps (emulator, "
            f"frame preprocessing, tensors to and from numpy), **rest s** everything else (the networks, the inner step, "
            f"statistics, optimisers); **network GFLOP** is the meta-epoch's network arithmetic counted from the layer shapes "
            f"(the acting learner's and the critic's forward on every frame, then the learner's and the critic's forward and "
            f"backward per update epoch; `network_gflop`; the inner step on the B synthetic states is not counted: about 1% at l = 3 and 4 (B = 4), more at l = 0), **rest GFLOP/s** that arithmetic over rest s; **fastest layer "
            f"GFLOP/s** the best rate of any Nature-CNN layer's forward run alone on a minibatch in the same processes (the "
            f"median over processes of each one's best), and **floor s** = env s + network GFLOP at that rate: the time "
            f"the meta-epoch would take if every flop ran at the fastest layer's rate and nothing else cost anything.\n\n"
            + md.read_text())
        print(f"wrote {csv} and {md}")


if __name__ == "__main__":
    main()
