"""Benchmark: PPMO meta-epochs/s and env-steps/s in the paper's cart-pole configuration.

    python benchmarks/bench_ppmo.py [--dof 1] [--meta-epochs 60] [--inits 1] [--modes eager compiled] [--device cpu]
                                    [--out results/benchmarks/ppmo]

Configuration: B = 512, 10 envs x 200 steps, 4 epochs x 4 minibatches of 512, one torch thread
(unless PAPER_CODE_NUM_THREADS says otherwise), no evaluations; eager and with ``compile`` (the
compiled run warms up, i.e. compiles, before it is timed). Prints the rate and where the time
of a meta-epoch goes (rollout, values + GAE, updates), measured by timing the same pieces that
``PPMO.meta_epoch_step`` runs.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

import paper_code  # noqa: F401  (one thread)
from paper_code.inner import inner_step_batch
from paper_code.learners import init_params_batch
from paper_code.ppmo import PPMO
from paper_code.reporting import write_table
from paper_code.rl import bootstrap_values, gae
from paper_code.settings import PPMOConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dof", type=int, default=1)
    parser.add_argument("--meta-epochs", type=int, default=60)
    parser.add_argument("--inits", type=int, nargs="+", default=[1])
    parser.add_argument("--modes", nargs="+", choices=("eager", "compiled"), default=["eager", "compiled"],
                        help="run the updates eagerly and/or with compile=True")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (the table gives median, min, max)")
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
    for K, mode in ((K, mode) for K in args.inits for mode in args.modes):
        run = PPMO(PPMOConfig(env_kwargs={"dof": args.dof}, inits_per_epoch=K, eval_every=0, device=args.device,
                              compile=mode == "compiled"))
        for _ in range(3):  # warm-up
            run.meta_epoch_step()
        rates = []  # the machine is shared: repeat and report the spread
        for _ in range(args.repeats):
            t0 = clock()
            for _ in range(args.meta_epochs):
                run.meta_epoch_step()
            rates.append(args.meta_epochs / (clock() - t0))
        rates.sort()
        per_epoch = 1 / rates[len(rates) // 2]
        # breakdown: the same pieces, timed separately
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
        rows.append({
            "N": args.dof, "K (inits/meta-epoch)": K, "mode": mode, "meta-epochs/s (median)": 1 / per_epoch,
            "min": rates[0], "max": rates[-1],
            "env-steps/s": cfg.num_envs * cfg.num_steps * K / per_epoch, "ms/meta-epoch": 1e3 * per_epoch,
            "rollout ms": 1e3 * t_roll, "values+GAE ms": 1e3 * t_gae,
            "updates ms (rest)": 1e3 * (per_epoch - t_roll - t_gae),
            "threads": torch.get_num_threads(), "device": args.device,
        })
        print(", ".join(f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    for mode in args.modes if args.profile else ():
        from torch.profiler import ProfilerActivity, profile

        run = PPMO(PPMOConfig(env_kwargs={"dof": args.dof}, eval_every=0, device=args.device, compile=mode == "compiled"))
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
                      f"{args.repeats} x {args.meta_epochs} timed meta-epochs; breakdown from separately timed pieces\n\n" + md.read_text())
        print(f"wrote {csv} and {md}")


if __name__ == "__main__":
    main()
