"""Command line: ``python -m paper_code <command> ...`` (``--help`` lists the commands).

    distill   distil an environment into a one-batch dataset (PPMO)
    evaluate  train fresh learners one step on a dataset and run them in the real environment
    notebook  execute a notebook at a scale (what the DVC stages run)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from .atari import ATARI_SIZES, atari_config
from .config import ROOT_ENV, project_root
from .dataset import DistilledDataset
from .envs import MUJOCO_TASKS, action_space_kind, has_batched, is_atari
from .evaluation import evaluate_dataset
from .interrupts import RunInterrupted
from .mujoco import GAUSSIAN_LEARNER, MUJOCO_PPMO, mujoco_config
from .notebooks import run_notebook
from .ppmo import DivergenceError, PPMOConfig, checkpoint_path, distill


def _cmd_notebook(args: argparse.Namespace) -> int:
    if args.root is not None:  # the notebook's kernel inherits it
        os.environ[ROOT_ENV] = os.path.abspath(args.root)
    project_root()  # a clear error outside a project (or for a --root without dvc.yaml)
    target = run_notebook(args.name, args.scale, args.out_dir, progress=not args.quiet)
    print(f"executed {target}")
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    common = dict(seed=args.seed, inits_per_epoch=args.inits, eval_every=args.eval_every, ratio_mode=args.ratio_mode,
                  device=args.device, train_max_episode_steps=args.train_episode_steps)
    # given only: the defaults differ by environment (e.g. cart-pole's entropy bonus, MuJoCo's none)
    common.update({k: v for k, v in (("ent_coef", args.ent_coef), ("init_state_std", args.init_state_std),
                                     ("obs_scale", args.obs_scale), ("state_bound", args.state_bound)) if v is not None})
    if is_atari(args.env):
        game = args.env.removeprefix("ALE/").removesuffix("-v5")
        section = {"seed": args.seed, "max_episode_steps": args.max_episode_steps, "eval_every": args.eval_every,
                   "eval_learners": 5, "normalize_obs": not args.raw_pixels}
        if game not in ATARI_SIZES:
            raise ValueError(f"unknown or unsupported Atari game {args.env!r} (supported: "
                             f"{', '.join(f'ALE/{g}-v5' for g in ATARI_SIZES)})")
        size = {} if args.size is None else {"size": args.size}
        cfg = atari_config(section, game, args.split, **common, **size)
    elif args.env in MUJOCO_TASKS:
        section = {"seed": args.seed, "size": 64 if args.size is None else args.size, "eval_every": args.eval_every,
                   "eval_learners": 10}
        cfg = mujoco_config(section, args.env, **common)
    elif has_batched(args.env):
        env_kwargs = {"dof": args.dof} if args.env == "paper_code/NDCartPole-v0" else {}
        cfg = PPMOConfig(env_id=args.env, env_kwargs=env_kwargs, size=512 if args.size is None else args.size, **common)
    else:  # any other gymnasium task with a Box observation and a Discrete or Box action space

        if action_space_kind(args.env) == "continuous":  # MuJoCo's settings (B = 64)
            cfg = PPMOConfig(env_id=args.env, env_kwargs={}, size=64 if args.size is None else args.size,
                             learner=GAUSSIAN_LEARNER, **{**MUJOCO_PPMO, **common})
        else:  # cart-pole's settings (the paper's defaults, B = 512)
            cfg = PPMOConfig(env_id=args.env, env_kwargs={}, size=512 if args.size is None else args.size, **common)
    run = distill(cfg, args.out, args.meta_epochs, resume=args.resume, force=args.force, progress=not args.quiet,
                  checkpoint_every_s=args.checkpoint_every)
    what = (f"{run.meta_epoch} meta-epochs, {run.env_steps:,} env steps, {run.wall_time:.1f} s, "
            f"lr {float(run.lr.detach()):.4g}")
    if run.files_written:
        print(f"wrote {args.out} ({what}); checkpoint {checkpoint_path(args.out)}")
    else:
        print(f"{args.out} is up to date with its checkpoint ({what}); nothing to do")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise ValueError(f"--steps must be at least 1 (SGD steps on the dataset), got {args.steps}")
    ds = DistilledDataset.load(args.file)
    r = evaluate_dataset(ds, learners=args.learners, episodes=args.episodes, greedy=args.greedy, seed=args.seed,
                         device=args.device, steps=args.steps)
    if args.json:
        d = r.to_dict()
        if not args.per_episode:
            d.pop("returns")
        out = {"file": args.file, "env": ds.env_id, "env_kwargs": ds.env_kwargs, "size": ds.size, **d}
        # strict JSON: a number that is not finite is null, and "nulls" says why
        nulls = {k: ("the environment has no return cap" if k == "solved_fraction" else "not a finite number")
                 for k, v in out.items() if isinstance(v, float) and not math.isfinite(v)}
        out = {k: (None if k in nulls else v) for k, v in out.items()}
        if nulls:
            out["nulls"] = nulls
        print(json.dumps(out, allow_nan=False))
    else:
        lo, hi = r.ci95
        print(f"{args.file}: {ds.env_id} {ds.env_kwargs}, B={ds.size}, lr={float(ds.lr):.4g}")
        print(f"{r.returns.shape[0]} learners x {r.returns.shape[1]} episodes, {'greedy' if r.greedy else 'sampled'} actions, "
              f"{args.steps} SGD step(s)")
        cap = "" if r.cap is None else f", {100 * r.solved_fraction:.1f}% of episodes at the {r.cap:g} cap"
        print(f"return {r.mean:.1f} ± {r.std:.1f} (std across learners), 95% CI [{lo:.1f}, {hi:.1f}]{cap}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error convention: one ``error:`` line, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m paper_code", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    # sizes are validated by the library (one clear error line), not by argparse
    d = sub.add_parser("distill", help="distil an environment into a one-batch dataset (PPMO)")
    d.add_argument("--env", default="paper_code/NDCartPole-v0",
                   help="gymnasium id: paper_code/NDCartPole-v0, CartPole-v1, a MuJoCo v5 task (e.g. Hopper-v5), "
                        "an Atari game (ALE/Pong-v5, ALE/Breakout-v5, ...) or any task with a Box observation and "
                        "a Discrete (cart-pole's settings) or Box action space (MuJoCo's settings), e.g. Acrobot-v1, "
                        "Pendulum-v1")
    d.add_argument("--dof", type=int, default=1, help="N, cart-pole axes (NDCartPole only)")
    d.add_argument("--size", type=int, default=None,
                   help="B, synthetic instances (default 512; 64 for MuJoCo; the paper's minimal size for Atari)")
    d.add_argument("--split", type=int, default=4, help="Atari: Nature-CNN layers in the persistent encoder (0..4)")
    d.add_argument("--max-episode-steps", type=int, default=27_000, help="Atari: agent steps per episode at most")
    d.add_argument("--raw-pixels", action="store_true",
                   help="Atari: no per-pixel observation normalisation (the first CPU-scale runs' setting)")
    d.add_argument("--meta-epochs", type=int, default=10_000)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", required=True, help="dataset file (.safetensors); checkpoint and log go beside it")
    d.add_argument("--resume", action="store_true", help="continue the run from its checkpoint")
    d.add_argument("--force", action="store_true", help="start over even if the output or its checkpoint exists")
    d.add_argument("--inits", type=int, default=1, help="K learner inits per meta-epoch (vmap)")
    d.add_argument("--train-episode-steps", type=int, default=None,
                   help="truncate training episodes after this many steps (evaluation keeps the task's limit)")
    d.add_argument("--ent-coef", type=float, default=None, help="entropy bonus (default: the environment family's)")
    d.add_argument("--init-state-std", type=float, default=None, help="synthetic states start from N(0, std^2) (default 1)")
    d.add_argument("--obs-scale", type=float, default=None,
                   help="multiply normalised observations by this (MuJoCo, normalised Atari; frozen into the dataset)")
    d.add_argument("--state-bound", type=float, default=None, help="clamp the synthetic states to [-bound, bound]")
    d.add_argument("--eval-every", type=int, default=25, help="meta-epochs between evaluations (0: never)")
    d.add_argument("--checkpoint-every", type=float, default=180.0, help="seconds between checkpoints")
    d.add_argument("--ratio-mode", choices=["logprob", "raw_logits"], default="logprob",
                   help="raw_logits reproduces the authors' PPO-ratio defect (ablation)")
    d.add_argument("--device", default="cpu")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=_cmd_distill)

    e = sub.add_parser("evaluate", help="evaluate one-step learners trained on a dataset")
    e.add_argument("file")
    e.add_argument("--learners", type=int, default=50)
    e.add_argument("--episodes", type=int, default=5)
    e.add_argument("--greedy", action="store_true", help="argmax actions (default: sampled, the paper's protocol)")
    e.add_argument("--steps", type=int, default=1, help="SGD steps on the dataset (at least 1)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--per-episode", action="store_true", help="with --json: include every episode's return")
    e.add_argument("--device", default="cpu")
    e.set_defaults(func=_cmd_evaluate)

    nb = sub.add_parser("notebook", help="execute a notebook at a scale (what the DVC stages run)")
    nb.add_argument("name", help="notebook name, e.g. 00_environment")
    nb.add_argument("--scale", choices=["quick", "paper"], default="quick")
    nb.add_argument("--out-dir", default=None, help="output folder (default: the scale's out_dir in params.yaml)")
    nb.add_argument("--root", default=None,
                    help="the project folder (holding dvc.yaml; default: found from the current directory upwards)")
    nb.add_argument("--quiet", action="store_true", help="no progress bar")
    nb.set_defaults(func=_cmd_notebook)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command. Exit codes: 0 done; 2 bad input, a refused or failed run (one ``error:``
    line on stderr, nothing written); 130 / 143 interrupted by SIGINT / SIGTERM."""

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RunInterrupted as e:  # distill: stopped at a meta-epoch boundary, checkpoint written
        print(e, file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # evaluate, or a second signal: stopped at once
        hint = "; files are written atomically, so the last complete checkpoint is kept" if args.command == "distill" else ""
        print(f"interrupted{hint}", file=sys.stderr)
        return 130
    except (ValueError, OSError, DivergenceError, MemoryError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in msg:
            msg = f"{e.filename}: {msg}"
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
