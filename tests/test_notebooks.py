"""Every notebook runs end to end at quick scale (papermill, into a temporary folder)."""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest

from paper_code.config import project_root
from paper_code.dataset import DistilledDataset
from paper_code.notebooks import run_notebook

NOTEBOOKS = sorted(p.stem for p in (project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_notebooks_are_found_and_stored_without_outputs():
    assert "00_environment" in NOTEBOOKS
    for name in NOTEBOOKS:
        nb = nbformat.read(project_root() / "notebooks" / f"{name}.ipynb", as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), name
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name} is committed with outputs"


@pytest.fixture(scope="module")
def quick_dir(tmp_path_factory):
    """One output folder for all notebooks, run in order: later ones read earlier ones' datasets."""
    return tmp_path_factory.mktemp("quick")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_at_quick_scale(name, quick_dir):
    tmp_path = quick_dir
    executed = run_notebook(name, "quick", tmp_path, progress=False)
    nb = nbformat.read(executed, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # figures are shown in the executed copy even under the Makefile's MPLBACKEND=Agg
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{name}: the executed notebook shows no figure"
    if name == "00_environment":
        summary = pd.read_csv(tmp_path / "environment" / "returns.csv")
        assert sorted(summary["N"].unique()) == [1, 2, 3, 4, 5]
        assert set(summary["policy"]) == {"random", "controller"}
        for f in ["dims.md", "returns.md", "returns.png", "controller_trajectory.png"]:
            assert (tmp_path / "environment" / f).stat().st_size > 0
        metrics = json.loads((tmp_path / "metrics" / "environment.json").read_text())
        assert metrics["N1"]["controller"]["mean"] > metrics["N1"]["random"]["mean"]
    if name == "01_cartpole_nd":
        cart = tmp_path / "cartpole" / "table1"
        table1 = pd.read_csv(cart / "table1.csv")
        assert table1["N"].tolist() == [1, 2, 3, 4, 5] and (table1["B"] == 512).all()
        for n in range(1, 6):
            ds = DistilledDataset.load(tmp_path / "cartpole" / "datasets" / f"nd{n}_b512.safetensors")
            assert ds.env_kwargs == {"dof": n} and ds.states.shape == (512, 4 * n)
        for f in ["table1.md", "learning_curves.png", "learned_lr.png", "ppo_vs_distillation.md",
                  "ppo_vs_distillation.png", "k_study.md", "k_study.png"]:
            assert (cart / f).stat().st_size > 0, f
        assert json.loads((tmp_path / "metrics" / "cartpole.json").read_text())["scale"] == "quick"

    if name == "02_mujoco":
        report = tmp_path / "mujoco" / "report"
        table = pd.read_csv(report / "table.csv")
        assert len(table) == 11 and (table["B"] == 64).all() and set(table["scale"]) == {"quick"}
        for task in table["task"]:
            ds = DistilledDataset.load(tmp_path / "mujoco" / "datasets" / f"{task}_b64.safetensors")
            assert ds.label_kind == "gaussian_mse" and ds.normalization is not None
        for f in ["table.md", "learning_curves.png", "state_dependence.png", "state_dependence.csv"]:
            assert (report / f).stat().st_size > 0, f
        metrics = json.loads((tmp_path / "metrics" / "mujoco.json").read_text())
        assert set(metrics) == set(table["task"])
    if name == "03_atari":
        report = tmp_path / "atari" / "report"
        table = pd.read_csv(report / "table.csv")
        assert len(table) == 5 * 5 and set(table["l"]) == {0, 1, 2, 3, 4}
        assert set(table["game"]) == {"Pong", "Breakout", "SpaceInvaders", "MsPacman", "Centipede"}
        for _, r in table.iterrows():
            ds = DistilledDataset.load(tmp_path / "atari" / "datasets" / f"{r.game}_l{r.l}_b{r.B}.safetensors")
            assert len(ds.encoder) == 2 * r.l and ds.states.shape[1:] == (4, 84, 84)
        hist = pd.read_csv(report / "greedy_actions.csv")
        assert hist.groupby(["game", "l"])["share"].sum().round(6).eq(1).all()
        for f in ["table.md", "greedy_actions.png", "constant_actions.csv"]:
            assert (report / f).stat().st_size > 0, f
    if name == "04_architecture_generalization":
        arch = pd.read_csv(tmp_path / "cartpole" / "architectures" / "architectures.csv")
        assert sorted(arch["N"].unique()) == [1, 2, 3, 4, 5]
        assert set(arch["family"]) == {"init", "width", "depth", "activation"}
        assert len(arch) == 5 * 17
        assert (tmp_path / "cartpole" / "architectures" / "pool_vs_single.csv").exists()
    if name == "05_minimal_dataset":
        mini = pd.read_csv(tmp_path / "cartpole" / "minimal" / "minimal_size.csv")
        assert mini["N"].tolist() == [1, 2, 3, 4, 5]
        sizes = pd.read_csv(tmp_path / "cartpole" / "minimal" / "return_by_size.csv")
        for n in range(1, 6):
            assert sorted(sizes[sizes.N == n]["B"]) == [*range(1, 2 * n + 2), 512]
        kshot = pd.read_csv(tmp_path / "cartpole" / "minimal" / "kshot.csv")
        assert set(kshot["lr mode"]) == {"learned lr", "lr / k"}
