"""Command line: ``python -m paper_code <command> ...`` (``--help`` lists the commands).

    distill   distil an environment into a one-batch dataset (PPMO), from a preset
    presets   list the named settings of every paper run
    evaluate  train fresh learners one step on a dataset and run them in the real environment
    compress  fit a small dataset whose one-step learners act like a teacher (a dataset or a PPO policy)
    ppo       train a PPO policy (the baseline, and a teacher for compress) on any supported task
    import-reference  convert the authors' published datasets to this package's format
    notebook  execute a notebook at a scale (what the DVC stages run)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from paper_code.core.dataset import DatasetError, DistilledDataset
from paper_code.core.evaluation import evaluate_dataset
from paper_code.core.settings import CompressConfig, PPMOConfig, PPOConfig, RLSettings
from paper_code.envs import ND_CARTPOLE_ID
from paper_code.pipeline.authors_datasets import convert, not_evaluable, published_files, reference_name
from paper_code.project import ROOT_ENV, project_root
from paper_code.pipeline.experiments import stop_at
from paper_code.pipeline.notebooks import run_notebook
from paper_code.pipeline.presets import FAMILIES, atari_learner, meta_epoch_budget, preset_for_env, preset_names, resolve
from paper_code.pipeline.verdict import NAMES, judge
from paper_code.runs.checkpoints import CheckpointError
from paper_code.runs.cli_settings import add_config_arguments
from paper_code.runs.distributed import init_from_env, launched, leave
from paper_code.files import OutputLock, check_writable
from paper_code.runs.interrupts import RunInterrupted, exit_quietly_on_signals
from paper_code.runs.training import DivergenceError, checkpoint_path, distill, log_path


def _cmd_notebook(args: argparse.Namespace) -> int:
    if args.root is not None:  # the notebook's kernel inherits it
        os.environ[ROOT_ENV] = os.path.abspath(args.root)
    project_root()  # a clear error outside a project (or for a --root without dvc.yaml)
    if args.evaluations_only:
        from paper_code.pipeline.config import load_scale, output_dir
        from paper_code.pipeline.plans import fill, parse_shard, plan_for
        from paper_code.pipeline.store import EvaluationStore

        shard = parse_shard(args.shard)
        root = output_dir(args.scale, args.out_dir)
        plan = plan_for(args.name, load_scale(args.scale), root)
        counts = fill(EvaluationStore(root), plan, shard)
        print(f"shard {shard[0]}/{shard[1]} of {len(plan)} evaluations: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        return 0
    if args.shard != "1/1":
        raise ValueError("--shard applies to --evaluations-only")
    target = run_notebook(args.name, args.scale, args.out_dir, progress=not args.quiet)
    print(f"executed {target}")
    return 0


def _config_from_args(args: argparse.Namespace) -> tuple[str, PPMOConfig]:
    """The preset (``--preset``, else the one for ``--env``) with every given flag applied."""
    given = {f.name: getattr(args, f.name) for f in fields(PPMOConfig) if getattr(args, f.name) is not None}
    base = None if args.preset is None else resolve(args.preset)
    env_id = given.get("env_id", base.env_id if base is not None else ND_CARTPOLE_ID)
    preset = args.preset or preset_for_env(env_id, dof=args.dof, split=args.split)
    base = resolve(preset)
    if args.dof is not None and env_id != ND_CARTPOLE_ID:
        raise ValueError(f"--dof applies to {ND_CARTPOLE_ID} only, not {env_id}")
    if "env_kwargs" in given or env_id != base.env_id or _shorthand_kwargs(args):
        given["env_kwargs"] = _env_kwargs(args, given, dict(base.env_kwargs) if env_id == base.env_id else {})
    if args.split is not None and "learner" not in given:
        if base.learner.kind != "nature_cnn":
            raise ValueError("--split applies to Atari's Nature-CNN learner only")
        given["learner"] = atari_learner(args.split)
    if args.raw_pixels:
        given["normalize_obs"] = False
    return preset, resolve(preset, **given)


def _shorthand_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``--dof`` and ``--max-episode-steps``: env_kwargs given as flags of their own."""
    return {k: getattr(args, k) for k in ("dof", "max_episode_steps") if getattr(args, k, None) is not None}


def _env_kwargs(args: argparse.Namespace, given: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The run's env_kwargs: ``--env-kwargs`` (else the preset's ``base``) with the shorthands on top;
    a shorthand that contradicts ``--env-kwargs`` is refused (naming both) instead of one silently winning."""
    short = _shorthand_kwargs(args)
    if "env_kwargs" not in given:
        return {**base, **short}
    for k, v in short.items():
        if k in given["env_kwargs"] and given["env_kwargs"][k] != v:
            raise ValueError(f"--{k.replace('_', '-')} {v} and --env-kwargs {json.dumps({k: given['env_kwargs'][k]})} "
                             f"disagree: give one of them")
    return {**given["env_kwargs"], **short}


def _fresh_start(args: argparse.Namespace) -> str | None:
    """``--resume`` with nothing to continue (no checkpoint and no output, e.g. a run stopped during
    its start-up) starts the run: the line that says so, printed once the command has run."""
    out = getattr(args, "out", None)
    if args.resume and out and not checkpoint_path(out).exists() and not Path(out).exists():
        return f"no checkpoint {checkpoint_path(out)} to resume from: the run started from the beginning"
    return None


def _judged_lines(path: str, learners: int) -> list[str]:
    """The written set evaluated (``learners`` x 1 episode, sampled, seed 0: what ``evaluate PATH
    --learners L --episodes 1`` prints) and judged against random, untrained learners and its teacher."""
    ds = DistilledDataset.load(path)
    j = judge(ds, evaluate_dataset(ds, learners=learners, episodes=1, seed=0), seed=0, near=path)
    return [f"evaluated: {j['set']} over {learners} learners x 1 episode (sampled; evaluate {path} --learners "
            f"{learners} --episodes 1 for more)", cli_wording(j["verdict"])]


def _stop_rule(args: argparse.Namespace, cfg: PPMOConfig) -> tuple[Any, str | None]:
    """``--stop-at R``: stop once ``--stop-patience`` consecutive evaluations' sampled 95% CI lower
    ends reach R (:func:`~paper_code.pipeline.experiments.stop_at`); ``(None, None)`` without it."""
    if args.stop_at is None:
        return None, None
    if not cfg.eval_every:
        raise ValueError("--stop-at reads the evaluations during training: give --eval-every > 0")
    if args.stop_patience < 1:
        raise ValueError(f"--stop-patience must be at least 1, got {args.stop_patience}")
    return stop_at(args.stop_at, args.stop_patience, key="sampled_ci_low")


def _cmd_distill(args: argparse.Namespace) -> int:
    preset, cfg = _config_from_args(args)
    meta_epochs = meta_epoch_budget(preset) if args.meta_epochs is None else args.meta_epochs
    if args.print_config:  # every setting (files record the ones added later only where they differ from None)
        print(json.dumps({**RLSettings.to_dict(cfg), "meta_epochs": meta_epochs}, indent=2))
        return 0
    if args.out is None:
        raise ValueError("--out is required (the dataset file to write), unless --print-config")
    fresh = _fresh_start(args)
    stop_when, rule = _stop_rule(args, cfg)
    w = init_from_env(cfg.device)  # under torchrun: one of several processes of the same run
    try:
        run = distill(cfg, args.out, meta_epochs, resume=args.resume, force=args.force, progress=not args.quiet,
                      checkpoint_every_s=args.checkpoint_every, live=args.live, stop_when=stop_when, stop_rule=rule)
    except BaseException:
        leave(w, together=False)
        raise
    leave(w)
    if not w.main:
        return 0
    if fresh:
        print(fresh)
    what = (f"{run.meta_epoch} meta-epochs, {run.env_steps:,} env steps, {run.wall_time:.1f} s, "
            f"lr {float(run.lr.detach()):.4g}")
    if run.evals:
        last = run.evals[-1]
        what += (f"; last evaluation during training, meta-epoch {last['meta_epoch']}: sampled "
                 f"{last['sampled_return']:.1f}, greedy {last['greedy_return']:.1f}")
    basis = "with its checkpoint" if checkpoint_path(args.out).exists() else "(its dataset and log show this run finished)"
    if run.files_written:
        print(f"wrote {args.out} ({what}; preset {preset}); checkpoint {checkpoint_path(args.out)}")
    elif getattr(run, "log_written", False):
        print(f"{args.out} is up to date {basis} ({what}); rewrote its log {log_path(args.out)}")
    else:
        print(f"{args.out} is up to date {basis} ({what}); nothing to do")
    if cfg.eval_every and cfg.eval_learners:
        print("\n".join(_judged_lines(args.out, cfg.eval_learners)))
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    print(f"{'preset':34} {'environment':28} {'B':>4}  learner")
    for name in preset_names():
        cfg = resolve(name)
        kw = "".join(f" {k}={v}" for k, v in cfg.env_kwargs.items())
        learner = cfg.learner.kind + (f" l={cfg.learner.split}" if cfg.learner.kind == "nature_cnn" else "")
        learner += f" {cfg.learner.policy}" + (f", pool of {len(cfg.learner_pool)}" if cfg.learner_pool else "")
        print(f"{name:34} {cfg.env_id + kw:28} {cfg.size:>4}  {learner}")
    print("\nfamilies (any N in 1..5, any B or K): " + "; ".join(f"{f} ({d})" for f, _, _, d in FAMILIES))
    print("python -m paper_code distill --preset NAME --print-config shows one in full")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise ValueError(f"--steps must be at least 1 (SGD steps on the dataset), got {args.steps}")
    ds = DistilledDataset.load(args.file)
    r = evaluate_dataset(ds, learners=args.learners, episodes=args.episodes, greedy=args.greedy, seed=args.seed,
                         device=args.device, steps=args.steps)
    judged = None if not args.baselines else judge(ds, r, seed=args.seed, steps=args.steps, device=args.device,
                                                     near=args.file)
    if args.json:
        d = r.to_dict()
        if not args.per_episode:
            d.pop("returns")
        out = {"file": args.file, "env": ds.env_id, "env_kwargs": ds.env_kwargs, "size": ds.size, **d}
        if judged is not None:
            out["references"] = {k: v.to_dict() for k, v in judged["references"].items()}
            out["teacher_file"] = judged["teacher_file"]
            out["verdict"] = {k: judged["set"].compare(v) for k, v in judged["references"].items()}
            out["verdict_line"] = cli_wording(judged["verdict"])
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
        if judged is not None:
            for name, ref in judged["references"].items():
                where = f" {judged['teacher_file']}" if name == "teacher" else ""
                print(f"{NAMES[name]}{where}: {ref} over {ref.n} {ref.unit}")
            print(judged["verdict"])
    return 0


def _cmd_compress(args: argparse.Namespace) -> int:
    from paper_code.pipeline.experiments import compress_run

    if args.out is None:
        raise ValueError("--out is required: the dataset file to write")
    if args.size is None:
        raise ValueError("--size is required: B, the instances of the new dataset")
    cfg = CompressConfig(**{f.name: getattr(args, f.name) for f in fields(CompressConfig) if getattr(args, f.name) is not None})
    fresh = _fresh_start(args)
    done = compress_run(args.teacher, args.out, cfg, resume=args.resume, force=args.force, progress=not args.quiet,
                        checkpoint_every_s=args.checkpoint_every)
    comp, run = done["fit"], done["run"]
    if fresh:
        print(fresh)
    kl = comp.history[-1]["kl"] if comp.history else float("nan")
    t = comp.teacher
    print(f"{'wrote' if comp.files_written else 'up to date:'} {done['fit_out']} ({t.env_id} {t.env_kwargs or ''}, "
          f"B = {cfg.size}, lr {float(comp.log_lr.detach().exp()):.4g}; {t.kind} teacher {args.teacher}; final KL {kl:.4g} "
          f"after {comp.step_count} steps, {comp.wall_time + comp.collect_s:.1f} s)")
    if run is not None:
        print(f"{'wrote' if run.files_written else 'up to date:'} {args.out} (PPMO fine-tune from it: {run.meta_epoch} "
              f"meta-epochs, {run.env_steps:,} env steps, {run.wall_time:.1f} s, lr {float(run.lr.detach()):.4g})")
    if args.eval_learners:
        print("\n".join(_judged_lines(args.out, args.eval_learners)))
    return 0


def _ppo_config(args: argparse.Namespace) -> tuple[str, PPOConfig]:
    """The PPO preset (``--preset``, else the one for ``--env``) with every given flag applied."""
    from paper_code.pipeline.presets import resolve_ppo

    given = {f.name: getattr(args, f.name) for f in fields(PPOConfig) if getattr(args, f.name) is not None}
    if args.preset is None and "env_id" not in given:
        raise ValueError("give --env (a gymnasium id) or --preset (e.g. atari-Pong, mujoco-Hopper-v5, cartpole-nd2)")
    preset = args.preset or preset_for_env(given["env_id"], dof=args.dof)
    if "env_kwargs" in given or _shorthand_kwargs(args):
        base = resolve_ppo(preset, **{k: v for k, v in given.items() if k == "env_id"})
        given["env_kwargs"] = _env_kwargs(args, given, dict(base.env_kwargs))
    return preset, resolve_ppo(preset, **given)


def _cmd_ppo(args: argparse.Namespace) -> int:
    from paper_code.runs.training import ppo_file

    preset, cfg = _ppo_config(args)
    if args.print_config:
        print(json.dumps({**json.loads(json.dumps(cfg.__dict__, default=lambda o: o.to_dict() if hasattr(o, "to_dict")
                                                  else list(o))), "total_env_steps": args.total_env_steps}, indent=2))
        return 0
    if args.out is None:
        raise ValueError("--out is required (the policy file to write), unless --print-config")
    fresh = _fresh_start(args)
    run = ppo_file(cfg, args.out, args.total_env_steps, resume=args.resume, force=args.force, progress=not args.quiet,
                   checkpoint_every_s=args.checkpoint_every, eval_every=args.eval_every, eval_episodes=args.eval_episodes)
    if fresh:
        print(fresh)
    last = run.evals[-1] if run.evals else None
    score = "" if last is None else (f"; evaluated over {last['episodes']} episodes: sampled {last['sampled_return']:.1f}, "
                                     f"greedy {last['greedy_return']:.1f}")
    what = f"{run.iteration} iterations, {run.env_steps:,} env steps, {run.wall_time:.1f} s{score}"
    if run.files_written:
        print(f"wrote {args.out} ({what}; preset {preset}); checkpoint {checkpoint_path(args.out)}")
    else:
        print(f"{args.out} is up to date with its checkpoint ({what}); nothing to do")
    return 0


def _cmd_import_reference(args: argparse.Namespace) -> int:
    src = Path(args.src)
    if args.out is None:
        raise ValueError("--out is required: the dataset file to write (a folder when SRC is a folder)")
    if src.is_dir():
        if args.env is not None or args.split is not None or args.encoder is not None:
            raise ValueError("--env, --split and --encoder name one file: not with a folder")
        files = published_files(src)
        if not files:
            raise ValueError(f"{src}: no published dataset files (distiller_sd*.pt, <task>_b<B>_state.ckpt) under it")
        plans, skipped = [], []
        for f in files:  # everything is converted and checked before anything is written
            why = not_evaluable(f)
            if why is not None:
                skipped.append(why)
                continue
            ds = convert(f)
            plans.append((ds, Path(args.out) / reference_name(ds)))
    else:
        plans, skipped = [(convert(src, env=args.env, split=args.split, encoder=args.encoder), Path(args.out))], []
    for _, out in plans:
        check_writable(out)
        OutputLock(out).check_free()  # a run writing it (distill, compress, ppo) holds its lock
        if out.exists() and not args.force:
            raise FileExistsError(f"{out} exists: overwrite it with --force")
    for ds, out in plans:
        out.parent.mkdir(parents=True, exist_ok=True)
        with OutputLock(out):
            ds.save(out)
        print(f"wrote {out} ({ds.env_id} {ds.env_kwargs or ''}, B = {ds.size}, lr {float(ds.lr):.4g}; "
              f"from {ds.provenance['file']})")
    for why in skipped:
        print(f"skipped {why}")
    return 0


class _DefaultsFormatter(argparse.HelpFormatter):
    """Shows a flag's default where it has one (not for flags whose default is "the preset's")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error convention: one ``error:`` line, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {' '.join(message.split())} (see {self.prog} --help)\n")


class _Lenient(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def _resolved_for_help(argv: list[str]) -> dict[str, tuple[str, Any, int | None]]:
    """For ``distill --help`` and ``ppo --help``: the configuration the rest of the line resolves to
    (the preset, ``--env``, ``--dof``, ...), as ``{command: (label, config, meta-epoch budget)}``, so
    that every setting's help shows the value that run would use; nothing where the line does not resolve."""
    if not argv or argv[0] not in ("distill", "ppo") or not {"-h", "--help"} & set(argv):
        return {}
    pre = _Lenient(add_help=False, allow_abbrev=False)
    pre.add_argument("--preset")
    pre.add_argument("--env", "--env-id", dest="env_id")
    for flag in ("--dof", "--split", "--max-episode-steps"):
        pre.add_argument(flag, type=int)
    pre.add_argument("--raw-pixels", action="store_true")
    try:
        known, _ = pre.parse_known_args([a for a in argv[1:] if a not in ("-h", "--help")])
        cls = PPMOConfig if argv[0] == "distill" else PPOConfig
        ns = argparse.Namespace(**{f.name: None for f in fields(cls)})
        for k, v in vars(known).items():
            setattr(ns, k, v)
        preset, cfg = _config_from_args(ns) if argv[0] == "distill" else _ppo_config(ns)
    except (ValueError, KeyError, TypeError):
        return {}
    budget = meta_epoch_budget(preset) if argv[0] == "distill" else None
    return {argv[0]: (f"preset {preset}", cfg, budget)}


DESCRIPTION = ("Distil reinforcement learning into one-batch datasets: one SGD step on the dataset trains a fresh "
               "policy network. 'python -m paper_code COMMAND --help' describes a command and its flags.")


def _lifecycle_arguments(group: Any, resume_help: str) -> None:
    """The flags every command that trains to a file has (paper_code.runs.lifecycle)."""
    group.add_argument("--resume", action="store_true", help=resume_help)
    group.add_argument("--force", action="store_true", help="start over even if the output or its checkpoint exists")
    group.add_argument("--checkpoint-every", type=float, default=180.0, help="seconds between checkpoints")
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line; with ``argv`` (the arguments to parse), ``--help`` of ``distill`` and
    ``ppo`` shows the values of the preset the line resolves to."""
    resolved = _resolved_for_help(list(argv or []))
    parser = _Parser(prog="python -m paper_code", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, title="commands",
                                metavar="COMMAND")

    # sizes are validated by the library (one clear error line), not by argparse
    d = sub.add_parser("distill", help="distil an environment into a one-batch dataset (PPMO)",
                       formatter_class=_DefaultsFormatter,
                       description="Distil an environment into a one-batch dataset (PPMO). Settings come from a preset "
                                   "(--preset; without one, the preset for --env) and every setting can be overridden. "
                                   "python -m paper_code presets lists the presets.")
    run = d.add_argument_group("the run")
    run.add_argument("--preset", default=None,
                     help="named settings of a paper run, e.g. cartpole-nd2, mujoco-Hopper-v5, atari-Pong-l4 "
                          "(default: the preset for --env)")
    run.add_argument("--print-config", action="store_true", help="print the resolved configuration as JSON and exit")
    run.add_argument("--out", default=None, help="dataset file (.safetensors); checkpoint and log go beside it")
    budget = resolved.get("distill", (None, None, None))[2]
    run.add_argument("--meta-epochs", type=int, default=None,
                     help="meta-epochs in total (a resumed run counts its own); default: the preset's budget"
                          + (f" [{resolved['distill'][0]}: {budget}]" if budget is not None else ""))
    run.add_argument("--stop-at", type=float, default=None, metavar="RETURN",
                     help="stop once an evaluation's sampled 95%% CI lower end reaches RETURN (--stop-patience "
                          "evaluations in a row; evaluations every --eval-every meta-epochs)")
    run.add_argument("--stop-patience", type=int, default=1, help="consecutive evaluations --stop-at needs")
    _lifecycle_arguments(run, "continue the run from its checkpoint")
    run.add_argument("--live", default=None, metavar="DIR",
                     help="also log the run's progress to DIR with DVCLive (metrics.json, plots/metrics/*.tsv)")
    short = d.add_argument_group("shorthands")
    short.add_argument("--env", "--env-id", dest="env_id", default=None,
                       help="gymnasium id: paper_code/NDCartPole-v0, CartPole-v1, a MuJoCo v5 task (Hopper-v5), an "
                            "Atari game (ALE/Pong-v5) or any task with a Box observation and a Discrete (cart-pole's "
                            "settings) or Box action space (MuJoCo's), e.g. Acrobot-v1, Pendulum-v1")
    short.add_argument("--dof", type=int, default=None, help="N, cart-pole axes (NDCartPole): env_kwargs dof")
    short.add_argument("--split", type=int, default=None, help="Atari: Nature-CNN layers in the persistent encoder (0..4)")
    short.add_argument("--max-episode-steps", type=int, default=None, help="env_kwargs max_episode_steps (Atari: agent steps)")
    short.add_argument("--raw-pixels", action="store_true", help="Atari: --no-normalize-obs")
    label, shown, _ = resolved.get("distill", (None, None, None))
    add_config_arguments(d.add_argument_group("settings (PPMOConfig; default: the preset's, shown in brackets for "
                                              "the preset this line resolves to)"), PPMOConfig,
                         aliases={"inits_per_epoch": ["--inits"], "train_max_episode_steps": ["--train-episode-steps"]},
                         skip={"env_id"}, shown=shown, label=label)
    d.set_defaults(func=_cmd_distill)

    p = sub.add_parser("presets", help="list the named settings of every paper run")
    p.set_defaults(func=_cmd_presets)

    e = sub.add_parser("evaluate", help="evaluate one-step learners trained on a dataset",
                       formatter_class=_DefaultsFormatter,
                       description="Train fresh learners (new random inits) one SGD step on the dataset and run each "
                                   "in the real environment; prints the mean return across learners with its 95% CI.")
    e.add_argument("file", help="a dataset file (.safetensors) written by distill, compress or import-reference")
    e.add_argument("--learners", type=int, default=50, help="fresh learners (random inits), each trained on the dataset")
    e.add_argument("--episodes", type=int, default=5, help="episodes per learner")
    e.add_argument("--greedy", action="store_true", help="argmax actions (default: sampled, the paper's protocol)")
    e.add_argument("--steps", type=int, default=1, help="SGD steps on the dataset (at least 1)")
    e.add_argument("--seed", type=int, default=0, help="seed of the learners' inits and the environments")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--per-episode", action="store_true", help="with --json: include every episode's return")
    e.add_argument("--device", default="cpu", help="torch device of the learners (cpu, cuda)")
    e.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True,
                   help="also evaluate, on the same protocol, the random policy, the learners untrained and the "
                        "teacher the file records (compress), and print a verdict line")
    e.set_defaults(func=_cmd_evaluate)

    c = sub.add_parser("compress", formatter_class=_DefaultsFormatter,
                       help="fit a small dataset whose one-step learners act like a teacher (a dataset or a policy)",
                       description="Distillation from a teacher: fit B synthetic instances (states, labels, lr) so that "
                                   "the one-step learners of fresh inits match the teacher's action distribution "
                                   "(KL) on real states the teacher visits. TEACHER is a dataset file (its one-step "
                                   "learner for the same init is the teacher) or a PPO policy file "
                                   "(results/*/baselines/ppo_*.safetensors). With --finetune M, PPMO continues for M "
                                   "meta-epochs from the fitted dataset (written to X.fit.safetensors) and writes X.")
    c.add_argument("teacher", help="a dataset file or a PPO policy file")
    run = c.add_argument_group("the run")
    run.add_argument("--out", default=None, help="the dataset file to write (checkpoint and log go beside it)")
    _lifecycle_arguments(run, "continue the fit (and the fine-tune) from its checkpoint")
    run.add_argument("--eval-learners", type=int, default=20,
                     help="at the end, evaluate the written set with this many learners x 1 episode and judge it "
                          "against random, untrained learners and the teacher (0: not)")
    add_config_arguments(c.add_argument_group("settings (CompressConfig)"), CompressConfig)
    c.set_defaults(func=_cmd_compress)

    t = sub.add_parser("ppo", formatter_class=_DefaultsFormatter,
                       help="train a PPO policy (the baseline, and a teacher for compress)",
                       description="Plain PPO (CleanRL's settings for the task's kind: ppo.py for discrete actions, "
                                   "ppo_continuous_action.py for MuJoCo and continuous actions, ppo_atari.py with the "
                                   "Nature-CNN for Atari) writing a policy file that compress reads as a teacher. "
                                   "Progress, periodic evaluations of the policy (sampled and greedy), checkpoints, "
                                   "--resume and Ctrl-C as for distill.")
    run = t.add_argument_group("the run")
    run.add_argument("--preset", default=None, help="atari-{game}, mujoco-{task} or cartpole-nd{N} (default: the one for --env)")
    run.add_argument("--print-config", action="store_true", help="print the resolved configuration as JSON and exit")
    run.add_argument("--out", default=None, help="the policy file (.safetensors); checkpoint and log go beside it")
    run.add_argument("--total-env-steps", type=int, default=1_000_000, help="agent steps in total (Atari: 4 frames each)")
    run.add_argument("--eval-every", type=int, default=50, help="iterations between evaluations of the policy (0: at the end only)")
    run.add_argument("--eval-episodes", type=int, default=8, help="episodes per evaluation, sampled and as many greedy")
    _lifecycle_arguments(run, "continue the run from its checkpoint")
    short = t.add_argument_group("shorthands")
    short.add_argument("--env", "--env-id", dest="env_id", default=None, help="gymnasium id (as for distill)")
    short.add_argument("--dof", type=int, default=None, help="N, cart-pole axes (NDCartPole): env_kwargs dof")
    short.add_argument("--max-episode-steps", type=int, default=None, help="env_kwargs max_episode_steps")
    label, shown, _ = resolved.get("ppo", (None, None, None))
    add_config_arguments(t.add_argument_group("settings (PPOConfig; default: the preset's" + (
        ", shown in brackets)" if shown is not None else "; give --env or --preset with --help to see its values)")),
        PPOConfig, skip={"env_id"}, shown=shown, label=label)
    t.set_defaults(func=_cmd_ppo)

    r = sub.add_parser("import-reference", formatter_class=_DefaultsFormatter,
                       help="convert the authors' published datasets to this package's format",
                       description="Convert a dataset the paper's authors published (github.com/wconnorr/"
                                   "RL-to-SL_Distillation, distilled_envs/, MIT licence) into a dataset file that "
                                   "evaluates as their validation did: cart-pole N = 1 on CartPole-v1, N >= 2 on the "
                                   "N-D cart-pole; MuJoCo v4 tasks, raw observations, Gaussian learner; Atari "
                                   "NoFrameskip-v4 settings with the published encoder. Loads with "
                                   "torch.load(weights_only=True) only. SRC may be a folder (e.g. distilled_envs/): "
                                   "every evaluable file is converted into --out/<family>/<name>.safetensors.")
    r.add_argument("src", help="a published file (distiller_sd_*.pt, <task>_b64_state.ckpt) or a folder of them")
    r.add_argument("--out", default=None, help="the dataset file to write (a folder when SRC is a folder)")
    r.add_argument("--env", default=None,
                   help="the environment, when the file's path does not tell it: CartPole-v1, "
                        f"{ND_CARTPOLE_ID}, a MuJoCo v4 task (Hopper-v4) or <Game>NoFrameskip-v4")
    r.add_argument("--split", type=int, default=None, help="Atari: the encoder level l (default: from the folder name)")
    r.add_argument("--encoder", default=None, help="Atari l >= 1: the encoder file (default: encoder_sd.pt beside SRC)")
    r.add_argument("--force", action="store_true", help="overwrite existing output files")
    r.set_defaults(func=_cmd_import_reference)

    nb = sub.add_parser("notebook", help="execute a notebook at a scale (what the DVC stages run)",
                        formatter_class=_DefaultsFormatter)
    nb.add_argument("name", help="notebook name, e.g. 00_environment")
    nb.add_argument("--scale", choices=["quick", "paper"], default="quick",
                    help="params.yaml's scale: quick (minutes, small counts) or paper (the committed results)")
    nb.add_argument("--out-dir", default=None, help="output folder (default: the scale's out_dir in params.yaml)")
    nb.add_argument("--root", default=None,
                    help="the project folder (holding dvc.yaml; default: found from the current directory upwards)")
    nb.add_argument("--quiet", action="store_true", help="no progress bar")
    nb.add_argument("--evaluations-only", action="store_true",
                    help="measure the evaluations the notebook shows into the results store (<out-dir>/evaluations/) "
                         "without executing it; the notebook then reads them (03_atari)")
    nb.add_argument("--shard", default="1/1", metavar="K/N",
                    help="with --evaluations-only: the K-th of N shards, to run N processes side by side")
    nb.set_defaults(func=_cmd_notebook)
    return parser


def cli_wording(text: str) -> str:
    """A library message in the command line's words: the run arguments ``resume=True`` and
    ``force=True``, and a setting named in backticks (`` `adam_lr` ``), become their flags."""
    text = re.sub(r"\b(resume|force)=True\b", r"--\1", text)
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: "--" + m[1].replace("_", "-"), text)


def main(argv: list[str] | None = None) -> int:
    """Run a command. Exit codes: 0 done; 2 bad input, a refused or failed run (one ``error:``
    line on stderr, nothing written); 130 / 143 interrupted by SIGINT / SIGTERM."""

    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if sys.stdout is None:  # started with stdout closed (`>&-`): results would vanish and the exit code say 0
        if sys.stderr is not None:
            print("error: standard output is closed: nothing could be printed (redirect it to a file or /dev/null)",
                  file=sys.stderr)
        return 2
    args = build_parser(argv).parse_args(argv)
    try:
        if getattr(args, "out", None) is not None and not str(args.out).strip():
            raise ValueError("--out is empty: give the name of the file to write")
        return args.func(args)
    except BrokenPipeError:  # `presets | head -1`: the reader has gone; stop quietly, as a pipe's writer does
        _silence_stdout()
        return 128 + signal.SIGPIPE
    except RunInterrupted as e:  # distill: stopped at a meta-epoch boundary, checkpoint written
        print(cli_wording(str(e)), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:  # a second signal during a run (or SIGINT in a caller's own handler): at once
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"interrupted ({signal.Signals(signum).name}) again: stopped at once; files are written atomically, so "
              f"the last complete checkpoint is kept", file=sys.stderr)
        return 128 + signum
    except (ValueError, OSError, DivergenceError, MemoryError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in msg:
            msg = f"{e.filename}: {msg}"
        rank = int(os.environ.get("RANK", "0") or 0) if launched() else 0
        if rank and (type(e) is ValueError or isinstance(e, (DatasetError, CheckpointError, FileExistsError,
                                                              FileNotFoundError))):
            return 2  # under torchrun every rank read the same input and met the same problem: rank 0 says it
        print(f"error{f' (rank {rank})' if rank else ''}: {cli_wording(msg)}", file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null (after a broken pipe: Python's final flush would fail again)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _quiet_shutdown() -> None:
    """After the command: output flushed, then a further signal (a second Ctrl-C while the
    interpreter shuts down) ends the process at once, without atexit tracebacks."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except BrokenPipeError:
            _silence_stdout()
        except (OSError, ValueError):
            pass
    exit_quietly_on_signals()


if __name__ == "__main__":
    try:
        code = main()
    except SystemExit as e:  # a signal outside a run (interrupts.stop_commands_at_once): said already
        code = e.code
    _quiet_shutdown()
    sys.exit(code)
