"""Benchmark: PPMO meta-epochs/s and env-steps/s in the paper's cart-pole configuration.

    python benchmarks/bench_ppmo.py [--dof 1] [--meta-epochs 60] [--inits 1] [--modes eager compiled] [--device cpu]
                                    [--out results/benchmarks/ppmo]

Configuration: B = 512, 10 envs x 200 steps, 4 epochs x 4 minibatches of 512, one torch thread
(unless PAPER_CODE_NUM_THREADS says otherwise), no evaluations; eager and with ``compile`` (the
compiled run warms up, i.e. compiles, before it is timed), in blocks that take turns, each block a
fresh process. Prints the rate and where the time
of a meta-epoch goes (rollout, values + GAE, updates), measured by timing the same pieces that
``PPMO.meta_epoch_step`` runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import pandas as pd
import torch

import paper_code  # noqa: F401  (one thread)
from paper_code.core.inner import inner_step_batch
from paper_code.core.learners import init_params_batch
from paper_code.core.ppmo import PPMO
from paper_code.runs.training import new_run
from paper_code.core.rl import bootstrap_values, gae
from paper_code.core.settings import PPMOConfig
from paper_code.pipeline.reporting import write_table


def _breakdown(run: PPMO, K: int, rates: list[float], clock) -> dict[str, float]:
    """The median rate of ``rates`` and where a meta-epoch's time goes: the rollout and the values
    + GAE timed separately (10 each), the updates the rest."""
    per_epoch = 1 / rates[len(rates) // 2]
    cfg = run.cfg
    theta0 = init_params_batch(cfg.learner, run.obs_size, run.num_actions, K, run.g_init, device=cfg.device)
    with torch.no_grad():
        theta1 = inner_step_batch(theta0, run.states, run.labels, run.lr)
    n = 10
    t = clock()
    for _ in range(n):
        roll = run._rollout(theta1, cfg.learner.activation)
    t_roll = (clock() - t) / n
    t = clock()
    for _ in range(n):
        with torch.no_grad():
            v, nv = bootstrap_values(run.value, roll)
            gae(roll["rewards"], v, nv, roll["terminated"], roll["truncated"], cfg.gamma, cfg.gae_lambda)
    t_gae = (clock() - t) / n
    return {"meta-epochs/s (median)": 1 / per_epoch, "min": rates[0], "max": rates[-1],
            "env-steps/s": cfg.num_envs * cfg.num_steps * K / per_epoch, "ms/meta-epoch": 1e3 * per_epoch,
            "rollout ms": 1e3 * t_roll, "values+GAE ms": 1e3 * t_gae, "updates ms (rest)": 1e3 * (per_epoch - t_roll - t_gae)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dof", type=int, default=1)
    parser.add_argument("--meta-epochs", type=int, default=60)
    parser.add_argument("--inits", type=int, nargs="+", default=[1])
    parser.add_argument("--modes", nargs="+", choices=("eager", "compiled"), default=["eager", "compiled"],
                        help="run the updates eagerly and/or with compile=True")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed blocks per mode, each a fresh process, the modes in turns (the table: median, min, max)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help="the run's device (cuda: timings synchronise the GPU)")
    parser.add_argument("--out", help="also write the table to <out>.csv and <out>.md")
    parser.add_argument("--profile", type=int, default=0, metavar="M",
                        help="also profile M meta-epochs with torch.profiler (top ops; to <out>_profile.txt)")
    args = parser.parse_args()
    cuda = torch.device(args.device).type == "cuda"

    def clock() -> float:  # wall time after the GPU's queued work is done
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    rows = []
    for K in args.inits:
        if args.child:  # one mode, one block, in this process: its rate and breakdown as JSON
            run = new_run(PPMOConfig(env_kwargs={"dof": args.dof}, inits_per_epoch=K, eval_every=0, device=args.device,
                                  compile=args.modes[0] == "compiled"))
            for _ in range(3):  # warm-up (and compile)
                run.meta_epoch_step()
            t0 = clock()
            for _ in range(args.meta_epochs):
                run.meta_epoch_step()
            print(json.dumps(_breakdown(run, K, [args.meta_epochs / (clock() - t0)], clock)))
            return
        # each block is a fresh process of one mode (a process that compiled runs eager code slower),
        # and the modes take turns, block by block, so each mode's median sees the machine's same moments
        blocks: dict[str, list[dict[str, float]]] = {mode: [] for mode in args.modes}
        for _ in range(args.repeats):
            for mode in args.modes:
                cmd = [sys.executable, __file__, "--child", "--modes", mode, "--inits", str(K), "--dof", str(args.dof),
                       "--meta-epochs", str(args.meta_epochs), "--device", args.device]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                blocks[mode].append(json.loads(out.strip().splitlines()[-1]))
        for mode, bs in blocks.items():
            rates = sorted(b["meta-epochs/s (median)"] for b in bs)
            mid = sorted(bs, key=lambda b: b["meta-epochs/s (median)"])[len(bs) // 2]  # the median block's breakdown
            rows.append({"N": args.dof, "K (inits/meta-epoch)": K, "mode": mode, **mid, "min": rates[0], "max": rates[-1],
                         "threads": torch.get_num_threads(), "device": args.device})
            print(", ".join(f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    for mode in args.modes if args.profile else ():
        from torch.profiler import ProfilerActivity, profile

        run = new_run(PPMOConfig(env_kwargs={"dof": args.dof}, eval_every=0, device=args.device, compile=mode == "compiled"))
        for _ in range(3):
            run.meta_epoch_step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.profile):
                run.meta_epoch_step()
        text = (f"torch.profiler, {args.profile} meta-epochs (K = 1, N = {args.dof}, {mode}); profiler overhead inflates "
                f"per-op times\n" + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
        print(text)
        if args.out:
            with open(f"{args.out}_profile{'' if mode == 'eager' else '_' + mode}.txt", "w") as f:
                f.write(text + "\n")
    if args.out:
        csv, md = write_table(pd.DataFrame(rows), args.out, floatfmt=",.1f")
        where = torch.cuda.get_device_name() if cuda else "CPU"
        md.write_text(f"torch {torch.__version__} on {where}; B = 512, 10 envs x 200 steps, 4 x 4 minibatch updates, "
                      f"{args.repeats} blocks x {args.meta_epochs} timed meta-epochs per mode, each block a fresh process, the modes in turns; breakdown (from separately timed pieces) of the median block\n\n" + md.read_text())
        print(f"wrote {csv} and {md}")


if __name__ == "__main__":
    main()
