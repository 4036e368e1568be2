"""Atari experiment helpers (notebook 03): configurations, greedy-action histograms, constant actions.

The algorithm is PPMO (:mod:`paper_code.ppmo`) with a Nature-CNN learner split at level l: the
first l layers are a persistent encoder trained with the dataset, the rest is re-initialised every
meta-epoch (:class:`~paper_code.learners.LearnerSpec` ``split``). Environments:
:mod:`paper_code.envs.atari`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .dataset import DistilledDataset
from .envs import ATARI_GAMES, atari_id, make_env
from .evaluation import first_episode_returns, learner_policy, trained_learners
from .experiment import run_or_resume
from .learners import LearnerSpec
from .ppmo import PPMOConfig

#: the paper's minimal dataset sizes (B) per game; Breakout has none in the paper: 4 here
ATARI_SIZES = {"Pong": 4, "Breakout": 4, "SpaceInvaders": 4, "MsPacman": 6, "Centipede": 10}

#: PPMO settings for Atari (CleanRL's ppo_atari.py rollout and PPO settings): 8 envs x 128 steps,
#: 4 epochs x 4 minibatches, clip 0.1, entropy 0.01
ATARI_PPMO: dict[str, Any] = dict(num_envs=8, num_steps=128, update_epochs=4, minibatch_size=256, clip_coef=0.1,
                                  ent_coef=0.01)


def check_game(game: str) -> str:
    if game not in ATARI_GAMES:
        raise ValueError(f"unknown game {game!r} (known: {', '.join(ATARI_GAMES)})")
    return game


def atari_learner(split: int) -> LearnerSpec:
    """The Nature-CNN learner split at level ``split`` (orthogonal init, ReLU, output gain 0.01)."""
    return LearnerSpec(kind="nature_cnn", activation="relu", split=int(split))


def atari_config(section: dict[str, Any], game: str, split: int, **overrides: Any) -> PPMOConfig:
    """The PPMO configuration of one (game, l) run from an ``atari`` params section."""
    kw: dict[str, Any] = dict(
        env_id=atari_id(check_game(game)), env_kwargs={"max_episode_steps": int(section["max_episode_steps"])},
        seed=int(section["seed"]), size=int(ATARI_SIZES[game]), learner=atari_learner(split),
        eval_every=int(section["eval_every"]), eval_learners=int(section["eval_learners"]), **ATARI_PPMO,
    )
    for k in ("num_envs", "num_steps", "minibatch_size", "update_epochs"):
        if k in section:
            kw[k] = int(section[k])
    for k, cast in (("normalize_obs", bool), ("init_state_std", float), ("ent_coef", float)):
        if k in section:
            kw[k] = cast(section[k])
    kw.update(overrides)
    return PPMOConfig(**kw)


def atari_dataset_path(out_root: Path, game: str, split: int, size: int) -> Path:
    """``<out_root>/atari/datasets/{game}_l{l}_b{B}.safetensors``."""
    return Path(out_root) / "atari" / "datasets" / f"{check_game(game)}_l{int(split)}_b{int(size)}.safetensors"


def run_atari(section: dict[str, Any], game: str, split: int, out_root: Path, meta_epochs: int, *, progress: bool = True):
    """Distil one (game, l) pair (resumable: a finished run costs nothing)."""

    cfg = atari_config(section, game, split)
    return run_or_resume(cfg, atari_dataset_path(out_root, game, split, cfg.size), int(meta_epochs), progress=progress)


@torch.no_grad()
def one_step_actions(ds: DistilledDataset, *, learners: int, seed: int = 0) -> pd.DataFrame:
    """One episode per fresh one-step learner: greedy, sampled, and its sampled actions *replayed*.

    "replayed" is the state-dependence control: each learner's sampled actions' frequencies become
    a state-independent policy (every step draws from them, whatever the frame), run for one
    episode on the same reset seed. A learner that uses the state does better than its replay; one
    whose action distribution is the same everywhere does as well.

    Returns one row per (learner, mode): ``learner``, ``mode`` ("greedy", "sampled", "replayed"),
    ``return``, ``steps`` and ``action_counts`` (a list: how often each action was chosen until
    the episode ended)."""
    rows = []
    env = make_env(ds.env_id, learners, seed=seed, **ds.env_kwargs)
    ds.check_env(env.observation_shape, env.num_actions)
    frequencies = None
    for mode in ("greedy", "sampled", "replayed"):
        g = torch.Generator().manual_seed(seed)
        if mode == "replayed":
            freq = frequencies

            def act(obs: torch.Tensor) -> torch.Tensor:
                return torch.multinomial(freq, 1, generator=g).squeeze(-1)
        else:
            params = trained_learners(ds, learners, observation_shape=env.observation_shape, num_actions=env.num_actions,
                                      generator=g)
            act = learner_policy(params, learners, ds.learner.activation, greedy=mode == "greedy", generator=g,
                                 policy=ds.learner.policy, normalize=lambda o: ds.features(ds.normalize(o)))
        counts = torch.zeros(learners, env.num_actions, dtype=torch.long)
        active = torch.ones(learners, dtype=torch.bool)

        def recording(obs: torch.Tensor) -> torch.Tensor:
            a = act(obs)
            counts[torch.arange(learners)[active], a[active]] += 1
            return a

        def step_hook(out) -> None:  # stop counting an env once its first episode has ended
            active.logical_and_(~(out.terminated | out.truncated))

        returns, lengths = first_episode_returns(env, recording, seed=seed, on_step=step_hook)
        if mode == "sampled":
            frequencies = (counts.double() + 1e-12) / (counts.sum(-1, keepdim=True) + 1e-12)
        for i in range(learners):
            rows.append({"learner": i, "mode": mode, "return": float(returns[i]), "steps": int(lengths[i]),
                         "action_counts": counts[i].tolist()})
    env.close()
    return pd.DataFrame(rows)


def one_step_summary(ev: pd.DataFrame, names: list[str]) -> dict[str, Any]:
    """One dataset's numbers from :func:`one_step_actions` (``names``: the game's actions).

    ``sampled - replayed`` is the mean over learners of (sampled return - its replay's return) and
    ``diff s.e.`` its standard error: the sampled policy uses the state if the difference is above
    twice its standard error (``uses state``). ``top action share`` is over all greedy steps."""
    by = {m: ev[ev["mode"] == m].sort_values("learner") for m in ("greedy", "sampled", "replayed")}
    counts = np.sum(list(by["greedy"]["action_counts"]), axis=0)
    share = counts / max(int(counts.sum()), 1)
    diff = by["sampled"]["return"].to_numpy() - by["replayed"]["return"].to_numpy()
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
    return {
        "sampled mean": float(by["sampled"]["return"].mean()), "sampled std": float(by["sampled"]["return"].std()),
        "greedy mean": float(by["greedy"]["return"].mean()), "replayed mean": float(by["replayed"]["return"].mean()),
        "sampled - replayed": float(diff.mean()), "diff s.e.": se, "uses state": bool(diff.mean() > 2 * se),
        "top greedy action": names[int(np.argmax(share))], "top action share": float(share.max()),
        "greedy shares": {a: float(x) for a, x in zip(names, share)},
    }


@torch.no_grad()
def constant_action_returns(game: str, *, episodes: int, max_episode_steps: int, seed: int = 0) -> pd.DataFrame:
    """Return of pressing one action all the time, for every action (``episodes`` each), and of a
    uniformly random policy. One row per (policy, episode)."""
    env = make_env(atari_id(check_game(game)), episodes, seed=seed, max_episode_steps=max_episode_steps)
    names = env.env.envs[0].unwrapped.get_action_meanings()
    rows = []
    g = torch.Generator().manual_seed(seed)
    policies = {"random": lambda obs: torch.randint(env.num_actions, (obs.shape[0],), generator=g)}
    for a, name in enumerate(names):
        policies[name] = (lambda a: (lambda obs: torch.full((obs.shape[0],), a, dtype=torch.long)))(a)
    for name, policy in policies.items():
        returns, _ = first_episode_returns(env, policy, seed=seed)
        rows += [{"game": game, "policy": name, "episode": e, "return": float(r)} for e, r in enumerate(returns)]
    env.close()
    return pd.DataFrame(rows)


def action_names(game: str) -> list[str]:
    env = make_env(atari_id(check_game(game)), 1)
    names = env.env.envs[0].unwrapped.get_action_meanings()
    env.close()
    return names
