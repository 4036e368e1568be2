"""InvertedDoublePendulum-v5: why notebook 02's one-step learners fail, and the settings that fixed most of it.

One study, four questions (subcommands), each writing its tables to ``results/mujoco/variants/``
(DVC stages ``study-idp-*``; runs resume from their checkpoints, a finished run costs nothing):

    python studies/idp.py snapshots b64 b128 b256 --report   # best snapshot, bigger datasets
    python studies/idp.py step-size                            # failures: init, initial state, lr
    python studies/idp.py state-scale                          # synthetic states starting small
    python studies/idp.py obs-scale                            # scaled observations, bounded states

``python studies/idp.py SUBCOMMAND --help`` describes each.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd
import torch

from paper_code.core.dataset import DistilledDataset
from paper_code.core.evaluation import evaluate_dataset, first_episode_returns, learner_policy, trained_learners
from paper_code.core.learners import batched_forward
from paper_code.core.ppmo import PPMO
from paper_code.envs import make_env
from paper_code.pipeline.config import load_scale
from paper_code.project import project_root
from paper_code.pipeline.experiments import run_or_resume, run_preset, scale_config, setting, stop_rule
from paper_code.pipeline.layout import dataset_path
from paper_code.pipeline.protocol import protocol_seed
from paper_code.pipeline.reporting import write_table
from paper_code.pipeline.state_dependence import state_dependence
from paper_code.runs.run_state import load_checkpoint
from paper_code.runs.training import checkpoint_path, train, write_log

TASK = "InvertedDoublePendulum-v5"
BUDGET = 1500  # notebook 02's budget for the task when these ran
FULL = 9000.0  # a balanced 1000-step episode scores ~9330


SNAPSHOTS_DOC = """Would picking the best snapshot, or a bigger dataset, lift InvertedDoublePendulum to 9000?

Notebook 02's previous InvertedDoublePendulum run stopped at the first 10-learner evaluation >= 9300,
a single noisy measurement (10 episodes). Here each variant of that setting (entropy bonus, 2
learner inits x 10 envs, training episodes truncated at 200 steps, synthetic states from N(0, 1);
notebook 02's states now start from N(0, 0.1^2), the state-scale study) runs its whole budget without
a stop rule and keeps the dataset of every evaluation (a snapshot every ``eval_every`` meta-epochs).
From meta-epoch ``--from`` on, every snapshot is validated with 20 fresh learners x 3 episodes on a
*validation* seed (not notebook 02's protocol seed); the best-validated snapshot and the final
dataset are then evaluated under notebook 02's protocol (its seed, 20 x 3), so the selection does
not see the protocol's learners or initial states.

Variants: ``b64`` (notebook 02's previous setting), ``b128``, ``b256`` (dataset size; the paper's is 64).

Writes ``results/mujoco/variants/InvertedDoublePendulum-v5_snapshots.{csv,md}`` (every validated
snapshot) and ``..._selection.{csv,md}`` (one row per variant); the runs and their snapshots go to
``results/mujoco/variants/snapshots/`` (not committed, except each variant's best snapshot). Runs
resume from their checkpoints; validated snapshots are cached in the variant's CSV. Variants can
run in separate processes (one core each) and a final call with ``--report`` alone merges them:

    python the snapshots study b64 b256 & python the snapshots study b128; wait
    python the snapshots study --report
"""

STATE_SCALE_DOC = """Do InvertedDoublePendulum's one-step learners depend less on their init when the synthetic states start small?

Notebook 02's InvertedDoublePendulum learners failed mostly by learner init (some inits fall in all
their episodes, the step-size study). Why the init matters: the learner's mean is
W3 tanh(W2 tanh(W1 x)) with orthogonal W1, W2 of gain sqrt 2 (so W1^T W1 = W2^T W2 = 2 I) and zero
biases, and the output layer starts at gain 0.01, so the one SGD step changes mostly W3 (the hidden
layers' gradients pass through W3): the one-step mean is about (2 lr / B) sum_i y_i h(x_i)^T h(s),
a kernel machine over the init's random features h. Where the tanh layers are linear (small
inputs) h(x_i)^T h(s) = 4 x_i^T s for *every* init; synthetic states drawn from N(0, 1) start where
the features are nonlinear and init-dependent. This script distils with the synthetic states
starting from N(0, std^2) for several std, everything else notebook 02's setting (entropy bonus
0.01, 2 inits x 10 envs, training episodes truncated at 200 steps, 1500 meta-epochs, no stop rule):

- std 1.0: notebook 02's previous setting (the ``b64`` run of the snapshots study);
- std 0.1: notebook 02's setting when this ran (its run, ``..._states0.1``, not repeated; notebook 02
  now also scales the observations and bounds the states, the obs-scale study);
- std 0.03, 0.01: run here.

Every final dataset is evaluated under notebook 02's protocol (20 learners x 3 episodes, its seed)
and with 200 fresh learners x 1 episode on a separate seed (a smaller error on the mean: the
protocol's 20 inits are a small sample of inits). Writes
``results/mujoco/variants/InvertedDoublePendulum-v5_state_scale.{csv,md}``; runs resume.

    python the state-scale study
"""

OBS_SCALE_DOC = """Does InvertedDoublePendulum's one-step learner stop depending on its init when its inputs stay small?

the state-scale study started the synthetic states small (N(0, 0.1^2)) so that the
learner's tanh layers act on them where they are nearly linear: there the one-step mean is
(2 lr / B) sum_i y_i 4 x_i^T s for *every* init (orthogonal hidden layers of gain sqrt 2). Two
things still leave that regime: the synthetic states grow during distillation (drawn with std 0.1,
mean |x| 0.33 at the end), and the *real* observations, normalised to unit variance, reach the
nonlinear part of tanh. Both make each init's policy its own: the learners' average policy
balances (the table's "average policy"), the learners that fall deviate from it.

Two settings beyond the standard ones (``PPMOConfig``), here on top of notebook 02's previous
InvertedDoublePendulum setting (entropy bonus 0.01, 2 inits x 10 envs, training episodes truncated
at 200 steps, states from N(0, 0.1^2), 1500 meta-epochs, no stop rule):

- ``obs_scale``: normalised observations are multiplied by it (learner and critic; frozen into the
  dataset file, evaluation applies it);
- ``state_bound``: the synthetic states are clamped to [-bound, bound] after every dataset update.

Variants: neither (notebook 02's previous run, ``..._states0.1``, not repeated), each alone (run
here) and both (notebook 02's current setting: its run, not repeated). Every final dataset is
evaluated under notebook 02's protocol (20 learners x 3 episodes, its seed) and with 200 fresh
learners x 1 episode on the seed of the state-scale study (60006). The settings (0.3, 0.25) were
picked on exploratory runs evaluated with 200 learners on another seed (70007), not on these.
"action spread across inits" is the std across 100 fresh learners of their (clipped) mean action on
the same states (2000 real states the learners visited), averaged over the states: how much a
learner's policy depends on its init. "average policy": the learners' average clipped mean action
on those states fitted as one linear policy of the normalised state, run deterministically for 200
episodes (the 200-learner seed): what the learners would do without their init's deviation. Writes
``results/mujoco/variants/InvertedDoublePendulum-v5_obs_scale.{csv,md}``; runs resume.

    python the obs-scale study --run scale0.3 & python the obs-scale study --run bound0.25; wait
    python the obs-scale study
"""

STEP_SIZE_DOC = """How notebook 02's InvertedDoublePendulum datasets fail: by learner init, initial state or step size?

1. ``{task}_step_size``: the same 20 fresh learners x 3 episodes as notebook 02's protocol (its
   seed for the task: same inits, same initial states), trained one SGD step with the dataset's
   learned lr scaled by a factor. Per factor: the mean return, the share of full episodes (return
   > 9000, i.e. balanced for all 1000 steps) and, per learner, how many of its 3 episodes were full.
2. ``{task}_failures``: learner inits and initial states crossed. 20 learners x 1 episode, learner
   ``i`` always in env slot ``i``; the learners' seed and the envs' reset seed vary independently.
   A slot that fails under every learner seed points at its initial state, a learner that fails
   under every env seed at its init.

For notebook 02's current dataset (normalised observations x 0.3, synthetic states started from
N(0, 0.1^2) and kept in [-0.25, 0.25], the obs-scale study), its previous one (the same
without the scale and the bound, ``..._states0.1``), an earlier one (the ``ent0.01-k2-trunc200``
variant of ``studies/mujoco_variants.py``: states from N(0, 1), 2 inits x 10 envs, training
episodes truncated at 200, stopped at its first evaluation >= 9300) and the earliest (``ent0.01``:
entropy bonus, K = 1, untruncated training episodes).
Writes ``results/mujoco/variants/InvertedDoublePendulum-v5_{step_size,failures}.{csv,md}``.

    python the step-size study
"""


# --------------------------------------------------------------------------------------- snapshots
#: notebook 02's InvertedDoublePendulum setting when these variants ran (its synthetic states now start small)
PREVIOUS = {"inits_per_epoch": 2, "train_max_episode_steps": 200, "init_state_std": 1.0, "obs_scale": 1.0, "state_bound": None}
SNAPSHOT_VARIANTS: dict[str, dict] = {"b64": {"size": 64, **PREVIOUS}, "b128": {"size": 128, **PREVIOUS},
                             "b256": {"size": 256, **PREVIOUS}}
VALIDATION_SEED = 50_006  # not notebook 02's protocol seed for the task (40006)


class SnapshotPPMO(PPMO):
    """PPMO that also saves its dataset at every evaluation to ``snapshot_dir/me{N}.safetensors``."""

    snapshot_dir: Path

    def evaluate(self) -> dict[str, float]:
        row = super().evaluate()
        self.dataset().save(self.snapshot_dir / f"me{self.meta_epoch:05d}.safetensors")
        return row


def run_variant(section: dict, name: str, root: Path, budget: int) -> PPMO:
    cfg = scale_config(f"mujoco-{TASK}", section, **SNAPSHOT_VARIANTS[name])
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    run = SnapshotPPMO(cfg)
    run.snapshot_dir = d
    out = d / "final.safetensors"
    if checkpoint_path(out).exists():
        load_checkpoint(run, checkpoint_path(out))

    def on_checkpoint(r: PPMO) -> None:
        r.dataset().save(out)
        write_log(r, out)

    train(run, budget, progress=True, checkpoint=checkpoint_path(out), checkpoint_every_s=120.0,
            on_checkpoint=on_checkpoint)
    return run


def validate(name: str, root: Path, first: int, learners: int, episodes: int) -> None:
    """Every snapshot from meta-epoch ``first`` on, ``learners`` x ``episodes`` on the validation
    seed, appended to ``{name}_validation.csv`` (snapshots already there are skipped)."""
    cache = root / f"{name}_validation.csv"
    columns = ["variant", "meta_epoch", "validation", "full"]
    done = pd.read_csv(cache) if cache.exists() else pd.DataFrame(columns=columns)
    env = make_env(TASK, learners * episodes, seed=VALIDATION_SEED, check_actions=False)
    rows, cached = done.to_dict("records"), set(done["meta_epoch"])
    for p in sorted((root / name).glob("me*.safetensors")):
        me = int(p.stem[2:])
        if me < first or me in cached:
            continue
        r = evaluate_dataset(DistilledDataset.load(p), learners=learners, episodes=episodes, seed=VALIDATION_SEED,
                             env=env).returns
        rows.append({"variant": name, "meta_epoch": me, "validation": float(r.mean()),
                     "full": float((r > FULL).float().mean())})
        print(f"{name} meta-epoch {me}: validation {rows[-1]['validation']:.0f}", flush=True)
        pd.DataFrame(rows).to_csv(cache, index=False)
    env.close()


def report(section: dict, root: Path, out: Path, names: list[str]) -> None:
    seed = protocol_seed("mujoco", section["tasks"].index(TASK))
    learners, episodes = int(section["learners"]), int(section["episodes"])
    snaps = pd.concat([pd.read_csv(root / f"{n}_validation.csv") for n in names], ignore_index=True)
    order = {n: i for i, n in enumerate(SNAPSHOT_VARIANTS)}
    snaps = snaps.sort_values(["variant", "meta_epoch"], key=lambda c: c.map(order) if c.name == "variant" else c)
    write_table(snaps, out / f"{TASK}_snapshots")
    rows = []
    for n in names:
        s = snaps[snaps["variant"] == n]
        best = s.loc[s["validation"].idxmax()]
        best_path = root / n / f"me{int(best['meta_epoch']):05d}.safetensors"
        keep = out / f"{TASK}_{n}_snapshot-best.safetensors"
        shutil.copyfile(best_path, keep)
        proto = {}
        for which, path in (("best", keep), ("final", root / n / "final.safetensors")):
            ds = DistilledDataset.load(path)
            proto[which] = state_dependence(ds, learners=learners, episodes=episodes, seed=seed)["return"]
            proto[f"{which}_me"] = ds.provenance["meta_epochs"]
        rows.append({"task": TASK, "variant": n, "B": SNAPSHOT_VARIANTS[n]["size"],
                     "meta-epochs": proto["final_me"],
                     "snapshots validated": len(s), "validation mean of the last 20": s["validation"].tail(20).mean(),
                     "validation best": best["validation"], "best at meta-epoch": int(best["meta_epoch"]),
                     "protocol: best snapshot": proto["best"].mean(), "protocol: final": proto["final"].mean()})
    summary = pd.DataFrame(rows)
    write_table(summary, out / f"{TASK}_selection")
    print(summary.round(1).to_string(index=False))


def snapshots(args: argparse.Namespace) -> None:
    unknown = set(args.variants) - set(SNAPSHOT_VARIANTS)
    if unknown:
        raise SystemExit(f"error: unknown variants {sorted(unknown)}; known: {', '.join(SNAPSHOT_VARIANTS)}")
    if not args.variants and not args.report:
        raise SystemExit("error: give variants to run, --report, or both")
    section = load_scale("paper")["mujoco"]
    out = project_root() / "results" / "mujoco" / "variants"
    root = out / "snapshots"
    for name in args.variants:
        run_variant(section, name, root, args.meta_epochs)
        validate(name, root, args.first, int(section["learners"]), int(section["episodes"]))
    if args.report:
        report(section, root, out, [n for n in SNAPSHOT_VARIANTS if (root / f"{n}_validation.csv").exists()])


# --------------------------------------------------------------------------------------- step-size
FACTORS = (0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.5)
SEEDS = (1, 2, 3)  # offsets of the learner / env seeds from the protocol's


def crossed(ds: DistilledDataset, learners: int, learner_seed: int, env_seed: int) -> torch.Tensor:
    """Returns [learners] of ``learners`` fresh learners (drawn from ``learner_seed``), learner i
    acting (sampled) in env slot i reset with ``env_seed``."""
    env = make_env(ds.env_id, learners, seed=env_seed, check_actions=False, **ds.env_kwargs)
    g = torch.Generator().manual_seed(learner_seed)
    params = trained_learners(ds, learners, observation_shape=env.observation_shape, num_actions=env.num_actions,
                              generator=g)
    policy = learner_policy(params, learners, ds.learner.activation, greedy=False, generator=g,
                            policy=ds.learner.policy, normalize=lambda obs: ds.features(ds.normalize(obs)))
    returns, _ = first_episode_returns(env, policy, seed=env_seed)
    env.close()
    return returns


def step_size(args: argparse.Namespace) -> None:
    section = load_scale("paper")["mujoco"]
    results = project_root() / "results"
    size = int(section["size"])
    variants = results / "mujoco" / "variants"
    datasets = {"notebook 02": dataset_path(results, f"mujoco-{TASK}", size),
                "previous (states0.1)": variants / f"{TASK}_b{size}_states0.1.safetensors",
                "earlier (ent0.01-k2-trunc200)": variants / f"{TASK}_b{size}_ent0.01-k2-trunc200.safetensors",
                "earliest (ent0.01)": variants / f"{TASK}_b{size}_ent0.01.safetensors"}
    seed = protocol_seed("mujoco", section["tasks"].index(TASK))
    learners, episodes = int(section["learners"]), int(section["episodes"])
    rows, cross = [], []
    for name, path in datasets.items():
        ds = DistilledDataset.load(path)
        for f in FACTORS:
            ev = evaluate_dataset(ds, learners=learners, episodes=episodes, seed=seed, lr=float(ds.lr) * f)
            is_full = ev.returns > FULL  # [learners, episodes]
            full = is_full.sum(1)  # [learners]
            rows.append({"dataset": name, "lr factor": f, "lr": float(ds.lr) * f, "mean return": ev.mean, "std": ev.std,
                         "full episodes": float(is_full.float().mean()),
                         "learners with 0 full episodes": int((full == 0).sum()),
                         "full episodes per learner": "".join(str(int(n)) for n in full.tolist())})
        pairs = [(seed + i, seed + j) for i in SEEDS for j in SEEDS]
        for ls, es in pairs:
            full = crossed(ds, learners, ls, es) > FULL
            cross.append({"dataset": name, "learner seed": ls, "env seed": es, "full episodes": float(full.float().mean()),
                          "full (#) or not (.) per slot": "".join("#" if x else "." for x in full.tolist())})
        block = pd.DataFrame(cross[-len(pairs):])
        slots = torch.tensor([[c == "#" for c in s] for s in block["full (#) or not (.) per slot"]])  # [pairs, L]
        by_env = {es: slots[torch.tensor((block["env seed"] == es).values)] for es in block["env seed"].unique()}
        by_learner = {ls: slots[torch.tensor((block["learner seed"] == ls).values)] for ls in block["learner seed"].unique()}
        cross.append({"dataset": name, "learner seed": "summary", "env seed": "",
                      "full episodes": float(slots.float().mean()),
                      "full (#) or not (.) per slot": (
                          f"slots failing under all {len(SEEDS)} learner seeds, per env seed: "
                          f"{[int((~v).all(0).sum()) for v in by_env.values()]}; learners failing under all "
                          f"{len(SEEDS)} env seeds, per learner seed: {[int((~v).all(0).sum()) for v in by_learner.values()]}")})
    out = results / "mujoco" / "variants"
    table = pd.DataFrame(rows)
    write_table(table, out / f"{TASK}_step_size")
    print(table.round(3).to_string(index=False))
    failures = pd.DataFrame(cross)
    write_table(failures, out / f"{TASK}_failures")
    print(failures.round(3).to_string(index=False))


# ------------------------------------------------------------------------------------- state-scale
STDS = (0.03, 0.01)  # run here
MANY, MANY_SEED = 200, 60_006  # neither the protocol's seed (40006) nor idp_snapshots' validation seed (50006)


def protocol_and_many(ds: DistilledDataset, section: dict, env) -> dict[str, float]:
    """A dataset under notebook 02's protocol (its seed; per learner the mean of its episodes) and
    with ``MANY`` fresh learners x 1 episode in ``env`` (``MANY`` envs, seed ``MANY_SEED``)."""
    proto = state_dependence(ds, learners=int(section["learners"]), episodes=int(section["episodes"]),
                             seed=protocol_seed("mujoco", section["tasks"].index(TASK)))["return"]
    many = evaluate_dataset(ds, learners=MANY, episodes=1, seed=MANY_SEED, env=env).returns.flatten()
    return {"protocol mean": float(proto.mean()), "protocol std": float(proto.std()),
            "protocol learners above 9000": float((proto > FULL).mean()),
            f"{MANY} learners mean": float(many.mean()), f"{MANY} learners std error": float(many.std() / MANY ** 0.5),
            f"{MANY} learners full episodes": float((many > FULL).float().mean())}


def state_scale(args: argparse.Namespace) -> None:
    section = load_scale("paper")["mujoco"]
    results = project_root() / "results"
    out = results / "mujoco" / "variants"
    paper = scale_config(f"mujoco-{TASK}", section)
    if int(setting(section, "meta_epochs", TASK)) != BUDGET or stop_rule(section, TASK)["stop_at_return"] is not None:
        raise SystemExit(f"notebook 02's {TASK} run is no longer {BUDGET} meta-epochs without a stop rule")
    paths = {1.0: out / "snapshots" / "b64" / "final.safetensors"}
    run_variant(section, "b64", out / "snapshots", BUDGET)  # resumes; a finished run costs nothing
    for std in (0.1, *STDS):  # 0.1: notebook 02's run when this ran (moved here)
        paths[std] = out / f"{TASK}_b{paper.size}_states{std:g}.safetensors"
        run_or_resume(scale_config(f"mujoco-{TASK}", section, init_state_std=std, obs_scale=1.0, state_bound=None), paths[std], BUDGET)
    env = make_env(TASK, MANY, seed=MANY_SEED, check_actions=False)
    rows = []
    for std in sorted(paths, reverse=True):
        ds = DistilledDataset.load(paths[std])
        cfg = ds.provenance["config"]
        if (cfg.get("init_state_std", 1.0), cfg.get("obs_scale", 1.0), cfg.get("state_bound"),
                ds.provenance["meta_epochs"]) != (std, 1.0, None, BUDGET):
            raise SystemExit(f"{paths[std]} was not distilled with states from N(0, {std:g}^2), unscaled and unbounded, "
                             f"for {BUDGET} meta-epochs")
        rows.append({"task": TASK, "initial state std": std, "notebook 02": {1.0: "earlier", 0.1: "previous"}.get(std, ""),
                     "meta-epochs": ds.provenance["meta_epochs"],
                     "mean |state| (final)": float(ds.states.abs().mean()), "inner lr": float(ds.lr),
                     **protocol_and_many(ds, section, env)})
        print(rows[-1], flush=True)
    env.close()
    table = pd.DataFrame(rows)
    write_table(table, out / f"{TASK}_state_scale")
    print(table.round(2).to_string(index=False))


# --------------------------------------------------------------------------------------- obs-scale
SPREAD_LEARNERS, SPREAD_STATES, SPREAD_SEED = 100, 2000, 61_006
#: name -> (obs_scale, state_bound); "neither" is notebook 02's previous run, "both" its current one
OBS_VARIANTS: dict[str, tuple[float, float | None]] = {"neither": (1.0, None), "scale0.3": (0.3, None),
                                                   "bound0.25": (1.0, 0.25), "both": (0.3, 0.25)}
RUN_HERE = ("scale0.3", "bound0.25")


def init_dependence(ds: DistilledDataset, env) -> dict[str, float]:
    """How much a one-step learner's policy depends on its init: the std across fresh learners of
    their clipped mean action on the same real states (averaged over the states), and how the
    learners' *average* policy does, fitted as one fixed linear policy of the (normalised) state on
    those states and run deterministically in ``env`` (one episode per env)."""
    probe_env = make_env(TASK, SPREAD_LEARNERS, seed=SPREAD_SEED, check_actions=False)
    g = torch.Generator().manual_seed(SPREAD_SEED)
    params = trained_learners(ds, SPREAD_LEARNERS, observation_shape=probe_env.observation_shape,
                              num_actions=probe_env.num_actions, generator=g)
    act = learner_policy(params, SPREAD_LEARNERS, ds.learner.activation, greedy=False, generator=g,
                         policy=ds.learner.policy, normalize=ds.normalize)
    seen: list[torch.Tensor] = []

    def recording(obs: torch.Tensor) -> torch.Tensor:
        seen.append(obs)
        return act(obs)

    first_episode_returns(probe_env, recording, seed=SPREAD_SEED)
    probe_env.close()
    states = torch.cat(seen)
    x = ds.normalize(states[torch.randperm(len(states), generator=g)[:SPREAD_STATES]])
    means = batched_forward({k: v for k, v in params.items() if k != "log_std"}, x.expand(SPREAD_LEARNERS, -1, -1),
                            ds.learner.activation).clamp(-1, 1)  # every learner on the same states [L, S, A]
    design = torch.cat([x, torch.ones(len(x), 1)], 1)
    w = torch.linalg.lstsq(design, means.mean(0)).solution  # [D + 1, A]
    returns, _ = first_episode_returns(env, lambda obs: torch.cat([ds.normalize(obs), torch.ones(len(obs), 1)], 1) @ w,
                                       seed=MANY_SEED)
    return {"action spread across inits": float(means.std(0).mean()),
            "average policy (linear fit) mean": float(returns.mean()),
            "average policy full episodes": float((returns > FULL).float().mean())}


def obs_scale(args: argparse.Namespace) -> None:
    section = load_scale("paper")["mujoco"]
    results = project_root() / "results"
    out = results / "mujoco" / "variants"
    paper = scale_config(f"mujoco-{TASK}", section)
    budget, stop = int(setting(section, "meta_epochs", TASK)), stop_rule(section, TASK)["stop_at_return"]
    if (paper.obs_scale, paper.state_bound) != OBS_VARIANTS["both"] or paper.init_state_std != 0.1 or budget != BUDGET or stop is not None:
        raise SystemExit(f"notebook 02's {TASK} setting is no longer the one these variants build on")
    paths = {"neither": out / f"{TASK}_b{paper.size}_states0.1.safetensors",
             "both": dataset_path(results, f"mujoco-{TASK}", paper.size)}
    for name in ([args.run] if args.run else RUN_HERE):
        scale, bound = OBS_VARIANTS[name]
        paths[name] = out / f"{TASK}_b{paper.size}_states0.1-{name}.safetensors"
        run_or_resume(scale_config(f"mujoco-{TASK}", section, obs_scale=scale, state_bound=bound), paths[name], BUDGET)
    if args.run:
        return
    run_preset(f"mujoco-{TASK}", section, results, name=TASK, progress=True)  # resumes; a finished run costs nothing
    env = make_env(TASK, MANY, seed=MANY_SEED, check_actions=False)
    rows = []
    for name, (scale, bound) in OBS_VARIANTS.items():
        ds = DistilledDataset.load(paths[name])
        cfg = ds.provenance["config"]
        made_with = (cfg.get("obs_scale", 1.0), cfg.get("state_bound"), cfg["init_state_std"], ds.provenance["meta_epochs"])
        if made_with != (scale, bound, 0.1, BUDGET):
            raise SystemExit(f"{paths[name]} was not distilled with this variant's setting")
        rows.append({"task": TASK, "variant": name, "obs scale": scale, "state bound": bound if bound is not None else "none",
                     "notebook 02": {"neither": "previous", "both": "current"}.get(name, ""),
                     "meta-epochs": ds.provenance["meta_epochs"], "max |state|": float(ds.states.abs().max()),
                     "mean |state|": float(ds.states.abs().mean()), "inner lr": float(ds.lr),
                     **init_dependence(ds, env), **protocol_and_many(ds, section, env)})
        print(rows[-1], flush=True)
    env.close()
    table = pd.DataFrame(rows)
    write_table(table, out / f"{TASK}_obs_scale")
    print(table.round(3).to_string(index=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="study", required=True)
    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("snapshots", description=SNAPSHOTS_DOC, formatter_class=raw, help="best snapshot, bigger datasets")
    p.add_argument("variants", nargs="*", help=f"any of {', '.join(SNAPSHOT_VARIANTS)} (none: only --report)")
    p.add_argument("--meta-epochs", type=int, default=BUDGET, help="budget per variant")
    p.add_argument("--from", dest="first", type=int, default=500, help="validate snapshots from this meta-epoch on")
    p.add_argument("--report", action="store_true", help="merge every validated variant into the tables")
    p.set_defaults(func=snapshots)
    p = sub.add_parser("state-scale", description=STATE_SCALE_DOC, formatter_class=raw, help="synthetic states starting small")
    p.set_defaults(func=state_scale)
    p = sub.add_parser("obs-scale", description=OBS_SCALE_DOC, formatter_class=raw,
                       help="scaled observations, bounded states")
    p.add_argument("--run", choices=RUN_HERE, help="train one variant only (one core each), no report")
    p.set_defaults(func=obs_scale)
    p = sub.add_parser("step-size", description=STEP_SIZE_DOC, formatter_class=raw,
                       help="failures by init, initial state or step size")
    p.set_defaults(func=step_size)
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.func(args)


if __name__ == "__main__":
    main()
