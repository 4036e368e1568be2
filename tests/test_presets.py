"""Presets: every committed paper-scale dataset is re-created by its preset (the printed config
equals the one in its provenance), the CLI prints and lists them, and overrides are checked."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from paper_code.__main__ import main
from paper_code.core.dataset import DistilledDataset
from paper_code.core.settings import PPMO_LATER, PPMOConfig, field_docs
from paper_code.pipeline.config import load_scale
from paper_code.project import package_root
from paper_code.pipeline.experiments import scale_config
from paper_code.pipeline.layout import dataset_path
from paper_code.pipeline.presets import preset_names, resolve

RESULTS = package_root() / "results"
# every PPMO dataset a preset makes (notebooks 01-05); the compressed minimal sets are checked in test_compress.py
DATASETS = sorted(p for family in ("cartpole", "mujoco", "atari") for folder in ("", "ppmo")
                  for p in (RESULTS / family / "datasets" / folder).glob("*.safetensors")
                  if DistilledDataset.load(p).provenance.get("method") == "ppmo")


def _preset_of(path: Path) -> str:
    """The preset a committed dataset was made with (the inverse of layout.dataset_path)."""
    for name in preset_names():
        if name not in ("discrete", "continuous") and dataset_path(RESULTS, name, resolve(name).size) == path:
            return name
    raise AssertionError(f"no preset makes {path}")


def _printed(capsys, *args: str) -> dict:
    """What --print-config prints, as a file records it: every setting and the meta-epochs are printed;
    files leave out the settings added later where they are at their default."""
    assert main(["distill", *args, "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed.pop("meta_epochs") > 0 and PPMO_LATER.keys() <= printed.keys()
    return {k: v for k, v in printed.items() if not (k in PPMO_LATER and v == PPMO_LATER[k])}


def _recorded(ds: DistilledDataset) -> dict:
    """The provenance config, completed as checkpoints are: a setting added after the dataset was
    made counts at its default (it did not exist, so the run behaved as the default does)."""
    saved = dict(ds.provenance["config"])
    defaults = PPMOConfig(env_id=saved["env_id"], env_kwargs=saved["env_kwargs"], learner=saved["learner"]).to_dict()
    learner_defaults = defaults["learner"]
    saved["learner"] = {**learner_defaults, **saved["learner"]}
    saved["learner_pool"] = [{**learner_defaults, **s} for s in saved.get("learner_pool", [])]
    return {k: saved.get(k, defaults[k]) for k in defaults}


@pytest.mark.skipif(not DATASETS, reason="no committed datasets in this checkout")
def test_every_committed_dataset_is_its_presets_config(capsys):
    assert len(DATASETS) >= 60
    paper = load_scale("paper", package_root() / "params.yaml")
    checked = set()
    for path in DATASETS:
        name = _preset_of(path)
        printed = _printed(capsys, "--preset", name)
        assert printed == _recorded(DistilledDataset.load(path)), (path.name, name)
        checked.add(name)
    # the notebooks resolve the same configs at paper scale (params.yaml changes only counts)
    for name in checked:
        section = {"cartpole": paper["cartpole"], "mujoco": paper["mujoco"], "atari": paper["atari"]}[name.split("-")[0]]
        if name.endswith("-pool"):
            section = {**paper["architectures"]["pool"], "seed": paper["architectures"]["seed"]}
        elif "-b" in name and not name.endswith("-b512"):
            section = paper["minimal"]
        assert scale_config(name, section) == resolve(name), name


def test_every_listed_preset_resolves_and_documents_every_field(capsys):
    for name in preset_names():
        assert isinstance(resolve(name), PPMOConfig)
    assert main(["presets"]) == 0
    listing = capsys.readouterr().out
    assert "mujoco-InvertedDoublePendulum-v5" in listing and "atari-Centipede-l0" in listing
    docs = field_docs(PPMOConfig)
    assert set(docs) == set(PPMOConfig.__dataclass_fields__) and all(docs.values())


def test_cli_flags_override_the_preset_and_env_picks_its_preset(capsys):
    walker = _printed(capsys, "--env", "Walker2d-v5")
    assert walker == resolve("mujoco-Walker2d-v5").to_dict() and walker["ent_coef"] == 0.01
    idp = _printed(capsys, "--env", "InvertedDoublePendulum-v5")
    assert (idp["obs_scale"], idp["state_bound"], idp["inits_per_epoch"], idp["train_max_episode_steps"]) == (0.3, 0.25, 2, 200)
    cfg = _printed(capsys, "--preset", "cartpole-nd2", "--dataset-lr", "1e-3", "--num-envs", "4", "--critic-hidden", "32,32",
                   "--no-norm-adv", "--state-bound", "none", "--learner", '{"hidden": [16]}', "--inits", "2")
    assert (cfg["dataset_lr"], cfg["num_envs"], cfg["critic_hidden"], cfg["norm_adv"], cfg["inits_per_epoch"]) == (
        1e-3, 4, [32, 32], False, 2)
    assert cfg["learner"]["hidden"] == [16] and cfg["env_kwargs"] == {"dof": 2}
    acrobot = _printed(capsys, "--env", "Acrobot-v1")
    assert acrobot["env_kwargs"] == {} and acrobot["learner"]["policy"] == "categorical"
    pendulum = _printed(capsys, "--env", "Pendulum-v1")
    assert pendulum["learner"]["policy"] == "gaussian" and pendulum["size"] == 64
    assert _printed(capsys, "--dof", "3")["env_kwargs"] == {"dof": 3}
    atari = _printed(capsys, "--env", "ALE/Pong-v5", "--split", "2", "--raw-pixels")
    assert atari["learner"]["split"] == 2 and not atari["normalize_obs"] and atari["size"] == 4


@pytest.mark.parametrize("args, match", [
    (["--preset", "cartpole-nd9"], "cart-pole presets have N"),
    (["--preset", "nope"], "unknown preset"),
    (["--preset", "mujoco-Hopper-v5", "--dof", "2"], "--dof applies to"),
    (["--preset", "cartpole-nd1", "--split", "2"], "--split applies to"),
    (["--learner", '{"kind": "nope"}'], "unknown learner kind"),
    (["--env-kwargs", "[1]"], "--env-kwargs: not a JSON object"),
    (["--critic-hidden", "a,b"], "expected widths"),
    (["--num-envs", "x"], "invalid int value"),
])
def test_bad_preset_or_override_is_one_error_line(args, match, capsys):
    try:
        rc = main(["distill", *args, "--print-config"])
    except SystemExit as e:  # argparse's own errors (types), in the project's one-line format
        rc = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and match in err[0], err


def _study(name: str):
    """A study script of studies/ as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"study_{name}", package_root() / "studies" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _study_configs() -> dict[Path, PPMOConfig]:
    """What each study's committed dataset was made with, as the study resolves it today: its
    preset at paper scale plus the study's own overrides."""
    paper = load_scale("paper", package_root() / "params.yaml")
    variants_dir, ablation_dir = RESULTS / "mujoco" / "variants", RESULTS / "atari" / "ablation"
    out: dict[Path, PPMOConfig] = {}
    mv, idp = _study("mujoco_variants"), _study("idp")
    for task in ("InvertedDoublePendulum-v5", "Walker2d-v5"):
        for name, (overrides, _) in mv.VARIANTS.items():
            out[variants_dir / f"{task}_b64_{name}.safetensors"] = scale_config(f"mujoco-{task}", paper["mujoco"], **overrides)
    task = idp.TASK
    for name, overrides in idp.SNAPSHOT_VARIANTS.items():
        out[variants_dir / f"{task}_{name}_snapshot-best.safetensors"] = scale_config(f"mujoco-{task}", paper["mujoco"],
                                                                                     **overrides)
    for std in (0.1, *idp.STDS):
        out[variants_dir / f"{task}_b64_states{std:g}.safetensors"] = scale_config(
            f"mujoco-{task}", paper["mujoco"], init_state_std=std, obs_scale=1.0, state_bound=None)
    for name in idp.RUN_HERE:
        scale, bound = idp.OBS_VARIANTS[name]
        out[variants_dir / f"{task}_b64_states0.1-{name}.safetensors"] = scale_config(
            f"mujoco-{task}", paper["mujoco"], obs_scale=scale, state_bound=bound)
    for split in (3, 4):  # the first CPU-scale runs: raw pixels (studies/atari_ablation.py's recipe)
        out[ablation_dir / "raw_pixels" / f"Breakout_l{split}_b4.safetensors"] = scale_config(
            f"atari-Breakout-l{split}", paper["atari"], normalize_obs=False, eval_every=50)
    return out


@pytest.mark.skipif(not DATASETS, reason="no committed datasets in this checkout")
def test_every_committed_study_dataset_is_its_studys_config():
    made = _study_configs()
    committed = sorted(p for d in ("mujoco/variants", "atari/ablation") for p in (RESULTS / d).rglob("*.safetensors"))
    assert committed and set(committed) <= set(made), sorted(set(committed) - set(made))
    for path in committed:
        assert made[path].to_dict() == _recorded(DistilledDataset.load(path)), path.name
