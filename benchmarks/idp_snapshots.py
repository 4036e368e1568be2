"""Would picking the best snapshot, or a bigger dataset, lift InvertedDoublePendulum to 9000?

Notebook 02's previous InvertedDoublePendulum run stopped at the first 10-learner evaluation >= 9300,
a single noisy measurement (10 episodes). Here each variant of that setting (entropy bonus, 2
learner inits x 10 envs, training episodes truncated at 200 steps, synthetic states from N(0, 1);
notebook 02's states now start from N(0, 0.1^2), ``benchmarks/idp_state_scale.py``) runs its whole budget without
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

    python benchmarks/idp_snapshots.py b64 b256 & python benchmarks/idp_snapshots.py b128; wait
    python benchmarks/idp_snapshots.py --report
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd
import torch

from paper_code.config import load_scale, project_root
from paper_code.dataset import DistilledDataset
from paper_code.envs import make_env
from paper_code.evaluation import evaluate_dataset
from paper_code.mujoco import mujoco_config, protocol_seeds, state_dependence
from paper_code.ppmo import PPMO, checkpoint_path, write_log
from paper_code.reporting import write_table

TASK = "InvertedDoublePendulum-v5"
#: notebook 02's InvertedDoublePendulum setting when these variants ran (its synthetic states now start small)
PREVIOUS = {"inits_per_epoch": 2, "train_max_episode_steps": 200, "init_state_std": 1.0, "obs_scale": 1.0, "state_bound": None}
VARIANTS: dict[str, dict] = {"b64": {"size": 64, **PREVIOUS}, "b128": {"size": 128, **PREVIOUS},
                             "b256": {"size": 256, **PREVIOUS}}
FULL = 9000.0  # a balanced 1000-step episode scores ~9330
VALIDATION_SEED = 50_006  # not notebook 02's protocol seed for the task (40006)


class SnapshotPPMO(PPMO):
    """PPMO that also saves its dataset at every evaluation to ``snapshot_dir/me{N}.safetensors``."""

    snapshot_dir: Path

    def evaluate(self) -> dict[str, float]:
        row = super().evaluate()
        self.dataset().save(self.snapshot_dir / f"me{self.meta_epoch:05d}.safetensors")
        return row


def run_variant(section: dict, name: str, root: Path, budget: int) -> PPMO:
    cfg = mujoco_config(section, TASK, **VARIANTS[name])
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    run = SnapshotPPMO(cfg)
    run.snapshot_dir = d
    out = d / "final.safetensors"
    if checkpoint_path(out).exists():
        run.load_checkpoint(checkpoint_path(out))

    def on_checkpoint(r: PPMO) -> None:
        r.dataset().save(out)
        write_log(r, out)

    run.run(budget, progress=True, checkpoint=checkpoint_path(out), checkpoint_every_s=120.0,
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
    seed = protocol_seeds(section, TASK)["protocol"]
    learners, episodes = int(section["learners"]), int(section["episodes"])
    snaps = pd.concat([pd.read_csv(root / f"{n}_validation.csv") for n in names], ignore_index=True)
    order = {n: i for i, n in enumerate(VARIANTS)}
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
        rows.append({"task": TASK, "variant": n, "B": VARIANTS[n]["size"],
                     "meta-epochs": proto["final_me"],
                     "snapshots validated": len(s), "validation mean of the last 20": s["validation"].tail(20).mean(),
                     "validation best": best["validation"], "best at meta-epoch": int(best["meta_epoch"]),
                     "protocol: best snapshot": proto["best"].mean(), "protocol: final": proto["final"].mean()})
    summary = pd.DataFrame(rows)
    write_table(summary, out / f"{TASK}_selection")
    print(summary.round(1).to_string(index=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="*", help=f"any of {', '.join(VARIANTS)} (none: only --report)")
    ap.add_argument("--meta-epochs", type=int, default=1500, help="budget per variant")
    ap.add_argument("--from", dest="first", type=int, default=500, help="validate snapshots from this meta-epoch on")
    ap.add_argument("--report", action="store_true", help="merge every validated variant into the tables")
    args = ap.parse_args()
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    if not args.variants and not args.report:
        ap.error("give variants to run, --report, or both")
    torch.set_num_threads(1)
    section = load_scale("paper")["mujoco"]
    out = project_root() / "results" / "mujoco" / "variants"
    root = out / "snapshots"
    for name in args.variants:
        run_variant(section, name, root, args.meta_epochs)
        validate(name, root, args.first, int(section["learners"]), int(section["episodes"]))
    if args.report:
        report(section, root, out, [n for n in VARIANTS if (root / f"{n}_validation.csv").exists()])


if __name__ == "__main__":
    main()
