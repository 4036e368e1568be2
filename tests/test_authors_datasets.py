"""The authors' published datasets: ``import-reference`` converts each of their layouts, refuses
what cannot be evaluated as published, never runs code from a file, and the committed
``reference/`` files are exactly what converting the published originals gives."""

from __future__ import annotations

import filecmp
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

from paper_code.__main__ import main
from paper_code.core.dataset import DatasetError, DistilledDataset
from paper_code.core.evaluation import evaluate_dataset
from paper_code.envs import ND_CARTPOLE_ID
from paper_code.pipeline.authors_datasets import convert, reference_name
from paper_code.project import project_root

SHARED = project_root() / ".." / "shared" / "reference" / "RL-to-SL_Distillation"
COMMITTED = project_root() / "reference"


def cli(*args, capsys) -> tuple[int, str, list[str]]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, [ln for ln in err.splitlines() if ln.strip()]


def _g() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def cartpole_file(root: Path, n: int, b: int) -> Path:
    path = root / "distilled_envs" / "ND_cartpole" / f"distiller_sd_{n}dcp_b{b}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"x": torch.randn(b, 4 * n, generator=_g()), "y": torch.randn(b, 2 * n, generator=_g()),
                "inner_lr": torch.tensor(0.05)}, path)
    return path


def mujoco_file(root: Path, name: str, obs: int, act: int) -> Path:
    path = root / "distilled_envs" / "MuJoCo" / f"{name}_b64_state.ckpt"
    path.parent.mkdir(parents=True, exist_ok=True)
    distiller = {"x": torch.randn(64, obs, generator=_g()), "y_mean": torch.randn(64, act, generator=_g()),
                 "y_logstd": torch.randn(1, act, generator=_g()), "inner_lr": torch.tensor(0.3)}
    torch.save({"distiller": distiller, "critic": {"net.0.weight": torch.zeros(64, obs)}, "epoch": 1234}, path)
    return path


NATURE = [(32, 4, 8, 8), (64, 32, 4, 4), (64, 64, 3, 3)]


def atari_file(root: Path, game: str, level: str, b: int, actions: int, encoder_layout: str | None) -> Path:
    folder = root / "distilled_envs" / "Atari" / game / level
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "distiller_sd.pt"
    torch.save({"x": torch.rand(b, 4, 84, 84, generator=_g()), "y": torch.randn(b, actions, generator=_g()),
                "inner_lr": torch.tensor(0.02)}, path)
    if encoder_layout is not None:
        n = int(level[1:])
        prefix = "convs." if encoder_layout == "convs" else ""
        sd = {}
        for i in range(n):
            sd[f"{prefix}{2 * i}.weight"] = torch.randn(*NATURE[i], generator=_g()) * 0.01
            sd[f"{prefix}{2 * i}.bias"] = torch.zeros(NATURE[i][0])
        torch.save(sd, folder / "encoder_sd.pt")
    return path


# ---------------------------------------------------------------------------------- each layout
def test_cartpole_n1_is_cartpole_v1_and_n2_the_nd_cartpole(tmp_path):
    one = convert(cartpole_file(tmp_path, 1, 3))
    assert one.env_id == "CartPole-v1" and one.env_kwargs == {} and one.size == 3
    src = torch.load(tmp_path / "distilled_envs/ND_cartpole/distiller_sd_1dcp_b3.pt", weights_only=True)
    assert torch.equal(one.states, src["x"]) and torch.equal(one.labels, src["y"]) and float(one.lr) == pytest.approx(0.05)
    two = convert(cartpole_file(tmp_path, 2, 3))
    assert two.env_id == ND_CARTPOLE_ID and two.env_kwargs == {"dof": 2} and two.label_kind == "logits_mse"
    assert two.learner.kind == "mlp" and two.learner.hidden == (64, 64) and two.learner.activation == "tanh"
    assert reference_name(two) == "cartpole/nd2_b3.safetensors"
    prov = two.provenance
    assert prov["file"] == "distilled_envs/ND_cartpole/distiller_sd_2dcp_b3.pt" and prov["licence"] == "MIT"
    assert len(prov["sha256"]) == 64 and "wconnorr/RL-to-SL_Distillation" in prov["source"]


def test_mujoco_checkpoint_is_the_v4_task_with_a_gaussian_learner(tmp_path):
    ds = convert(mujoco_file(tmp_path, "hopper", 11, 3))
    assert ds.env_id == "Hopper-v4" and ds.env_kwargs == {} and ds.normalization is None
    assert ds.label_kind == "gaussian_mse" and ds.learner.policy == "gaussian" and tuple(ds.log_std.shape) == (3,)
    src = torch.load(tmp_path / "distilled_envs/MuJoCo/hopper_b64_state.ckpt", weights_only=True)["distiller"]
    assert torch.equal(ds.log_std, src["y_logstd"].reshape(-1)) and torch.equal(ds.labels, src["y_mean"])
    assert ds.provenance["meta_epochs_published"] == 1234
    assert reference_name(ds) == "mujoco/Hopper-v4_b64.safetensors"
    # a checkpoint whose sizes are not the task's
    with pytest.raises(DatasetError, match="observations have shape"):
        convert(mujoco_file(tmp_path / "wrong", "hopper", 17, 6))


@pytest.mark.parametrize("layout,level", [("sequential", "l1"), ("sequential", "l2"), ("convs", "l3")])
def test_atari_encoder_layouts_become_the_learners_encoder(tmp_path, layout, level):
    path = atari_file(tmp_path, "MsPacMan", level, 6, 9, layout)
    ds = convert(path)
    n = int(level[1:])
    assert ds.env_id == "ALE/MsPacman-v5" and ds.env_kwargs == {"repeat_action_probability": 0.0}
    assert ds.learner.kind == "nature_cnn" and ds.learner.split == n
    assert sorted(ds.encoder) == sorted(f"c{i}.{p}" for i in range(n) for p in ("weight", "bias"))
    prefix = "convs." if layout == "convs" else ""
    src = torch.load(path.with_name("encoder_sd.pt"), weights_only=True)
    assert torch.equal(ds.encoder[f"c{n - 1}.weight"], src[f"{prefix}{2 * (n - 1)}.weight"])
    assert ds.provenance["encoder_file"].endswith(f"Atari/MsPacMan/{level}/encoder_sd.pt")
    assert reference_name(ds) == f"atari/MsPacman_l{n}_b6.safetensors"


def test_atari_full_distillation_is_level_0(tmp_path):
    folder = tmp_path / "distilled_envs" / "Atari" / "Centipede" / "fulldistill"
    folder.mkdir(parents=True)
    torch.save({"x": torch.rand(10, 4, 84, 84), "y": torch.randn(10, 18), "inner_lr": torch.tensor(0.01)},
               folder / "distiller_sd_centipede_fulldistill.pt")
    ds = convert(folder / "distiller_sd_centipede_fulldistill.pt")
    assert ds.learner.split == 0 and ds.encoder == {} and ds.env_id == "ALE/Centipede-v5"


# ------------------------------------------------------------------------------------ refusals
def test_cli_refuses_an_l4_dataset_without_its_encoder(tmp_path, capsys):
    path = atari_file(tmp_path, "Pong", "l4", 4, 6, None)
    out = tmp_path / "pong_l4.safetensors"
    rc, _, err = cli("import-reference", path, "--out", out, capsys=capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and "encoder" in err[0], err
    assert "cannot be evaluated as published" in err[0] and not out.exists()


def test_cli_converts_one_file_and_the_result_evaluates(tmp_path, capsys):
    out = tmp_path / "d.safetensors"
    rc, stdout, err = cli("import-reference", cartpole_file(tmp_path, 2, 5), "--out", out, capsys=capsys)
    assert rc == 0 and not err and "wrote" in stdout
    r = evaluate_dataset(DistilledDataset.load(out), learners=2, episodes=1, seed=0)
    assert r.returns.shape == (2, 1)


class _Sneaky:
    def __reduce__(self):
        return (os.mkdir, ("/tmp/_paper_code_unpickled_code_ran",))


def test_a_file_with_pickled_code_is_refused_and_nothing_runs(tmp_path, capsys):
    path = tmp_path / "distilled_envs" / "ND_cartpole" / "distiller_sd_1dcp_b2.pt"
    path.parent.mkdir(parents=True)
    torch.save({"x": torch.zeros(2, 4), "y": torch.zeros(2, 2), "inner_lr": _Sneaky()}, path)
    shutil.rmtree("/tmp/_paper_code_unpickled_code_ran", ignore_errors=True)
    rc, _, err = cli("import-reference", path, "--out", tmp_path / "d.safetensors", capsys=capsys)
    assert rc == 2 and len(err) == 1 and "weights_only=True" in err[0], err
    assert not Path("/tmp/_paper_code_unpickled_code_ran").exists()


@pytest.mark.parametrize("content,match", [
    ({"x": torch.zeros(2, 5), "y": torch.zeros(2, 2), "inner_lr": torch.tensor(0.1)}, r"x \[B, 4N\]"),
    ({"x": torch.zeros(2, 4), "inner_lr": torch.tensor(0.1)}, "no tensor"),
    ({"x": torch.zeros(2, 4), "y": torch.zeros(2, 2), "inner_lr": torch.tensor(-1.0)}, "lr must be positive"),
    ({"x": torch.full((2, 4), float("nan")), "y": torch.zeros(2, 2), "inner_lr": torch.tensor(0.1)}, "non-finite"),
])
def test_cli_bad_files_are_one_error_line(tmp_path, capsys, content, match):
    path = tmp_path / "distilled_envs" / "ND_cartpole" / "distiller_sd_1dcp_b2.pt"
    path.parent.mkdir(parents=True)
    torch.save(content, path)
    rc, _, err = cli("import-reference", path, "--out", tmp_path / "d.safetensors", capsys=capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert __import__("re").search(match, err[0]), err[0]
    assert not (tmp_path / "d.safetensors").exists()


def test_cli_unknown_mujoco_task_and_a_missing_l1_encoder_are_one_error_line(tmp_path, capsys):
    rc, _, err = cli("import-reference", mujoco_file(tmp_path, "spaceship", 11, 3), "--out", tmp_path / "d.safetensors",
                     capsys=capsys)
    assert rc == 2 and len(err) == 1 and "unknown MuJoCo task 'spaceship'" in err[0] and "--env" in err[0], err
    rc, _, err = cli("import-reference", mujoco_file(tmp_path / "b", "spaceship", 11, 3), "--env", "Hopper-v4",
                     "--out", tmp_path / "d.safetensors", capsys=capsys)
    assert rc == 0, err
    rc, _, err = cli("import-reference", atari_file(tmp_path, "Pong", "l1", 4, 6, None), "--out", tmp_path / "p.safetensors",
                     capsys=capsys)
    assert rc == 2 and len(err) == 1 and "needs its published encoder" in err[0] and "l4" not in err[0], err


def test_cli_unknown_file_name_asks_for_env(tmp_path, capsys):
    path = tmp_path / "mystery.pt"
    torch.save({"x": torch.zeros(2, 8), "y": torch.zeros(2, 4), "inner_lr": torch.tensor(0.1)}, path)
    rc, _, err = cli("import-reference", path, "--out", tmp_path / "d.safetensors", capsys=capsys)
    assert rc == 2 and "--env" in err[0]
    rc, _, err = cli("import-reference", path, "--env", ND_CARTPOLE_ID, "--out", tmp_path / "d.safetensors", capsys=capsys)
    assert rc == 0, err
    assert DistilledDataset.load(tmp_path / "d.safetensors").env_kwargs == {"dof": 2}


# ------------------------------------------------------------------ the committed reference/ folder
def test_committed_reference_folder_has_the_licence_and_every_evaluable_file():
    assert (COMMITTED / "LICENSE").is_file() and (COMMITTED / "NOTICE.md").is_file()
    files = sorted(str(p.relative_to(COMMITTED)) for p in COMMITTED.rglob("*.safetensors"))
    assert len([f for f in files if f.startswith("cartpole/")]) == 10
    assert len([f for f in files if f.startswith("mujoco/")]) == 8
    assert sorted(f for f in files if f.startswith("atari/")) == [
        "atari/Centipede_l0_b10.safetensors", "atari/Centipede_l1_b10.safetensors", "atari/Centipede_l2_b10.safetensors",
        "atari/Centipede_l3_b10.safetensors", "atari/SpaceInvaders_l3_b4.safetensors"]
    for f in files:
        ds = DistilledDataset.load(COMMITTED / f)
        assert reference_name(ds) == f and ds.provenance["licence"] == "MIT"


@pytest.mark.skipif(not SHARED.is_dir(), reason="the published originals (../shared/reference) are not here")
def test_converting_the_published_originals_reproduces_the_committed_files(tmp_path, capsys):
    rc, out, err = cli("import-reference", SHARED / "distilled_envs", "--out", tmp_path, capsys=capsys)
    assert rc == 0, err
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.safetensors"))
    committed = sorted(str(p.relative_to(COMMITTED)) for p in COMMITTED.rglob("*.safetensors"))
    assert made == committed
    for f in made:
        assert filecmp.cmp(tmp_path / f, COMMITTED / f, shallow=False), f"{f} differs from the committed file"
    # the four l4 datasets without encoders are reported, not converted
    assert sum("cannot be evaluated as published" in ln for ln in out.splitlines()) == 4


# ------------------------------------------------------------------------- the evaluation protocol
def test_minimal_size_needs_the_ci_lower_end_not_the_mean_to_clear_the_bar():
    import pandas as pd

    from paper_code.pipeline.analysis import smallest_sufficient_size
    from paper_code.pipeline.protocol import SOLVED_RETURN
    sizes = pd.DataFrame({"B": [1, 2, 3], "sampled mean": [300.0, 480.0, 499.0], "ci95 low": [250.0, 470.0, 497.0]})
    assert smallest_sufficient_size(sizes, SOLVED_RETURN) == 3  # B = 2's mean clears 475, its CI does not
    assert math.isnan(smallest_sufficient_size(sizes.iloc[:2], SOLVED_RETURN))


def test_table1_targets_are_the_authors_returns_under_the_same_protocol():
    import pandas as pd

    from paper_code.pipeline.protocol import table1_targets
    ours = pd.DataFrame({"N": [1, 4], "sampled mean": [499.0, 120.0], "greedy mean": [480.0, 130.0]})
    authors = pd.DataFrame({"N": [1, 4], "sampled mean": [499.5, 110.0]})
    check = table1_targets(ours, authors).set_index("N")
    assert check.loc[1, "target sampled"] == 499.5 and not check.loc[1, "met"]  # below the authors' by 0.5
    assert check.loc[4, "met"] and check.loc[4, "sampled - target"] == 10.0
    # with CIs: below the authors' mean but within noise is met; below beyond noise is not
    ours = ours.assign(**{"sampled CI high": [499.8, 121.0]})
    authors = authors.assign(**{"sampled CI low": [499.2, 100.0]})
    check = table1_targets(ours, authors).set_index("N")
    assert check.loc[1, "met"] and check.loc[1, "sampled - target"] == -0.5
    assert not table1_targets(ours.assign(**{"sampled CI high": [499.1, 121.0]}), authors).set_index("N").loc[1, "met"]


def test_the_committed_authors_sets_are_found_by_task_and_level():
    from paper_code.pipeline.authors_datasets import authors_atari, authors_cartpole, authors_mujoco
    assert authors_cartpole(3, 4).name == "nd3_b4.safetensors" and authors_cartpole(3, 7) is None
    assert authors_mujoco("Hopper-v5").name == "Hopper-v4_b64.safetensors" and authors_mujoco("Swimmer-v5") is None
    assert authors_atari("Centipede", 2).name == "Centipede_l2_b10.safetensors" and authors_atari("Pong", 4) is None
