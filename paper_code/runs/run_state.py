"""A PPMO run's complete state, and checkpoints of it.

:func:`state_dict` holds everything that determines the rest of a run (dataset, critic, both
optimisers, observation and reward statistics, the random generators, the environments' state,
counters and history), so a run resumed with :func:`load_checkpoint` gives the same dataset as an
uninterrupted one. Loading checks the file against a fresh run of the same configuration first
(:func:`~paper_code.runs.checkpoints.check_like`): a wrong or damaged file is one clear
:class:`~paper_code.runs.checkpoints.CheckpointError`, and nothing of the run changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from paper_code.core.learners import LearnerSpec
from paper_code.core.ppmo import PPMO
from paper_code.core.settings import PPMOConfig
from paper_code.runs.checkpoints import CheckpointError, check_like, read_checkpoint, write_checkpoint
from paper_code.runs.distributed import gather_objects


def _columns(rows: list[dict[str, float]]) -> dict[str, torch.Tensor]:
    """Rows of numbers as float64 columns (compact in a checkpoint)."""
    if not rows:
        return {}
    return {k: torch.tensor([float(r[k]) for r in rows], dtype=torch.float64) for k in rows[0]}


def _rows(columns: dict[str, torch.Tensor] | list[dict[str, float]]) -> list[dict[str, float]]:
    if isinstance(columns, list):  # checkpoints written before histories were stored as columns
        return list(columns)
    if not columns:
        return []
    lists = {k: v.tolist() for k, v in columns.items()}
    ints = {"meta_epoch", "env_steps"}
    return [{k: (int(v[i]) if k in ints else v[i]) for k, v in lists.items()} for i in range(len(next(iter(lists.values()))))]


def _with_spec_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A saved configuration with its learner specs completed by fields added to
    :class:`LearnerSpec` since it was saved (at their defaults)."""
    def full(spec: dict[str, Any]) -> dict[str, Any]:
        return LearnerSpec(**spec).to_dict()

    out = dict(config)
    if isinstance(out.get("learner"), dict):
        out["learner"] = full(out["learner"])
    if "learner_pool" in out:
        out["learner_pool"] = [full(s) for s in out["learner_pool"]]
    return out


def _env_state(run: PPMO) -> dict[str, Any]:
    """A tensor environment's exact state (its ``checkpoint_state()``). A gymnasium (MuJoCo,
    Atari) env's simulator state is not saved: a resumed run starts fresh episodes (reset with a
    seed derived from the meta-epoch), so it continues the same training but is not bit-identical
    to an uninterrupted run."""
    save = getattr(run.env, "checkpoint_state", None)
    return {} if save is None else save()


def state_dict(run: PPMO) -> dict[str, Any]:
    """Everything of ``run`` that a resumed run needs (tensors, plain values, optimiser states)."""
    extra: dict[str, Any] = {}
    if run.log_std_target is not None:
        extra["log_std_target"] = run.log_std_target.detach()
    if run.encoder:
        extra["encoder"] = {k: v.detach() for k, v in run.encoder.items()}
    if run.obs_rms is not None:
        extra["obs_rms"] = run.obs_rms.state_dict()
    if run.ret_rms is not None:
        extra["ret_rms"] = run.ret_rms.state_dict()
        extra["ret_acc"] = run.ret_acc
    return {
        "config": run.cfg.to_dict(), **extra,
        "states": run.states.detach(), "labels": run.labels.detach(), "log_lr": run.log_lr.detach(),
        "data_opt": run.data_opt.state_dict(),
        "critic": {k: v.detach() for k, v in run.critic.items()}, "critic_opt": run.critic_opt.state_dict(),
        "generators": {k: getattr(run, k).get_state() for k in ("g_init", "g_act", "g_perm")},
        "env": _env_state(run),
        "obs": run.obs, "meta_epoch": run.meta_epoch, "env_steps": run.env_steps, "wall_time": run.wall_time,
        "history": _columns(run.history), "evals": _columns(run.evals),
        "stopped_early": run.stopped_early, "revisions": list(run.revisions), "stop_rule": run.stop_rule or "",
        **({"ranks": _rank_states(run)} if run.processes.size > 1 else {}),
    }


def _own_state(run: PPMO) -> dict[str, Any]:
    """What differs between the ranks of a multi-process run: random streams, environments, episodes."""
    own = {"generators": {k: getattr(run, k).get_state() for k in ("g_init", "g_act", "g_perm")},
           "env": _env_state(run), "obs": run.obs}
    if run.ret_rms is not None:
        own["ret_acc"] = run.ret_acc
    return own


def _rank_states(run: PPMO) -> dict[str, Any]:
    """Every rank's own state, keyed by rank (a collective: every rank calls it together)."""
    cpu = lambda v: v.cpu() if isinstance(v, torch.Tensor) else v  # noqa: E731
    own = {k: ({kk: cpu(vv) for kk, vv in v.items()} if isinstance(v, dict) else cpu(v)) for k, v in _own_state(run).items()}
    return {str(r): s for r, s in enumerate(gather_objects(own, run.processes))}


#: settings that change how a run executes, not what it computes: a checkpoint resumes with either value
EXECUTION_SETTINGS = ("compile",)


def check_config(run: PPMO, sd: dict[str, Any]) -> None:
    """Raise :class:`CheckpointError` unless checkpoint ``sd`` was made with this run's configuration."""
    try:
        saved = _with_spec_defaults(sd["config"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"its configuration is not one of this project's ({type(e).__name__}: {e})") from None
    current = run.cfg.to_dict()
    defaults = PPMOConfig(env_id=run.cfg.env_id, env_kwargs=run.cfg.env_kwargs, learner=run.cfg.learner).to_dict()
    # a setting the checkpoint predates counts as equal if it still has its default value; how the
    # run executes (compile) is not part of what it trains, so a run may resume either way
    diff = sorted(k for k in current if k not in EXECUTION_SETTINGS
                  and ((saved[k] != current[k]) if k in saved else (current[k] != defaults[k])))
    if diff:
        raise CheckpointError(f"checkpoint was made with a different configuration (differs in: {', '.join(diff)})")


def load_state_dict(run: PPMO, sd: dict[str, Any]) -> None:
    """Put ``run`` in the state ``sd`` (made by :func:`state_dict` with the same configuration)."""
    check_config(run, sd)
    if "ranks" in sd:  # a multi-process run: this rank's own streams, environments and episodes
        sd = {**sd, **sd["ranks"][str(run.processes.rank)]}
    with torch.no_grad():
        run.states.copy_(sd["states"])
        run.labels.copy_(sd["labels"])
        run.log_lr.copy_(sd["log_lr"])
        if run.log_std_target is not None:
            run.log_std_target.copy_(sd["log_std_target"])
        for k, v in run.encoder.items():
            v.copy_(sd["encoder"][k])
        for k, v in run.critic.items():
            v.copy_(sd["critic"][k])
    if run.obs_rms is not None:
        run.obs_rms.load_state_dict(sd["obs_rms"])
    if run.ret_rms is not None:
        run.ret_rms.load_state_dict(sd["ret_rms"])
        run.ret_acc = sd["ret_acc"].clone()
    run.data_opt.load_state_dict(sd["data_opt"])
    run.critic_opt.load_state_dict(sd["critic_opt"])
    for k, state in sd["generators"].items():
        getattr(run, k).set_state(state)
    env = run.env
    run.meta_epoch, run.env_steps, run.wall_time = sd["meta_epoch"], sd["env_steps"], sd["wall_time"]
    if sd["env"]:
        env.restore_state(sd["env"])
        run.obs = sd["obs"].clone()
    else:  # fresh episodes (see _env_state)
        run.obs = env.reset(seed=run.processes.seed(run.cfg.seed + 1_000_003 * run.meta_epoch))
        run.ret_acc = torch.zeros_like(run.ret_acc)
    run.history, run.evals = _rows(sd["history"]), _rows(sd["evals"])
    run.stopped_early = bool(sd.get("stopped_early", False))
    run.revisions = list(sd.get("revisions", []))
    run.stop_rule = sd.get("stop_rule") or None


def checkpoint_evaluations(path: str | Path) -> list[dict[str, float]]:
    """The evaluations during training (``meta_epoch``, ``sampled_return``, ...) that a PPMO checkpoint records."""
    return _rows(read_checkpoint(path)["evals"])


def save_checkpoint(run: PPMO, path: str | Path) -> Path:
    """Atomic write (temporary file, fsync, rename): an interruption never corrupts the
    checkpoint; a state with non-finite values is refused (a good checkpoint is never replaced)."""
    sd = state_dict(run)  # every rank (a multi-process run gathers each rank's own state); rank 0 writes
    if run.processes.main:
        write_checkpoint(sd, path)
    return Path(path)


def load_checkpoint(run: PPMO, path: str | Path) -> None:
    """Load a checkpoint of this configuration; :class:`~paper_code.runs.checkpoints.CheckpointError`
    (one line) if it is not one, before anything of this run changes."""
    sd = read_checkpoint(path, run.cfg.device)
    try:
        check_config(run, sd)  # first: "another configuration" says more than the shapes that follow from it
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    ranks = len(sd["ranks"]) if isinstance(sd.get("ranks"), dict) else 1
    if ranks != run.processes.size:
        raise CheckpointError(f"{path}: made by a run of {ranks} process(es), this one has {run.processes.size}: "
                              f"resume with the same world size")
    params = {"data_opt": run.data_params, "critic_opt": list(run.critic.values())}
    check_like(sd, state_dict(run), params, str(path))
    try:
        load_state_dict(run, sd)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        raise CheckpointError(f"{path}: not a checkpoint of this run ({type(e).__name__}: {e})") from None
