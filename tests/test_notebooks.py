"""The notebooks' quick-scale outputs: what `pytest --nbval-lax notebooks` (run first by `make test`)
wrote to results-quick/ has the expected tables, datasets, figures and metrics."""

from __future__ import annotations

import json
import math
import os

import nbformat
import pandas as pd
import pytest

from paper_code.core.dataset import DistilledDataset
from paper_code.project import project_root

NOTEBOOKS = sorted(p.stem for p in (project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_notebooks_are_found_and_stored_without_outputs():
    assert "00_environment" in NOTEBOOKS
    for name in NOTEBOOKS:
        nb = nbformat.read(project_root() / "notebooks" / f"{name}.ipynb", as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), name
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name} is committed with outputs"


QUICK = project_root() / "results-quick"


@pytest.fixture(params=NOTEBOOKS)
def name(request) -> str:
    """A notebook whose quick-scale outputs are checked; ``make test`` runs the notebooks first
    (``pytest --nbval-lax notebooks``), which write them to results-quick/."""
    metrics = {"00_environment": "environment", "01_cartpole_nd": "cartpole", "02_mujoco": "mujoco", "03_atari": "atari",
               "04_architecture_generalization": "architectures", "05_minimal_dataset": "minimal"}[request.param]
    if not (QUICK / "metrics" / f"{metrics}.json").exists():
        if os.environ.get("PAPER_CODE_QUICK_OUTPUTS") == "required":
            pytest.fail(f"{request.param} wrote no quick outputs to {QUICK} (did pytest --nbval-lax notebooks run first?)")
        pytest.skip(f"no quick outputs of {request.param}: run `pytest --nbval-lax notebooks` first (make test does)")
    return request.param


def test_quick_outputs_of(name):
    tmp_path = QUICK
    if name == "00_environment":
        summary = pd.read_csv(tmp_path / "environment" / "returns.csv")
        assert sorted(summary["N"].unique()) == [1, 2, 3, 4, 5]
        assert set(summary["policy"]) == {"random", "controller"}
        for f in ["dims.md", "returns.md", "returns.png", "controller_trajectory.png"]:
            assert (tmp_path / "environment" / f).stat().st_size > 0
        metrics = json.loads((tmp_path / "environment" / "summary.json").read_text())
        assert metrics["N1"]["controller"]["mean"] > metrics["N1"]["random"]["mean"]
        headline = json.loads((tmp_path / "metrics" / "environment.json").read_text())
        assert headline["ctrl_n5"] == round(metrics["N5"]["controller"]["mean"], 1) and set(headline) == {"ctrl_n5", "rand_n5"}
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
        assert json.loads((cart / "summary.json").read_text())["scale"] == "quick"
        assert set(json.loads((tmp_path / "metrics" / "cartpole.json").read_text())) == {"t1_min", "t1_mean"}
        assert (cart / "balancing.png").stat().st_size > 0
        # the authors' B = 512 and N + 1 datasets beside ours, same protocol
        cmp = pd.read_csv(cart / "ours_vs_authors.csv")
        for n in range(1, 6):
            assert sorted(cmp[cmp.N == n]["dataset"]) == sorted(["ours B = 512", "authors' B = 512", f"authors' B = {n + 1}"])
        assert (cmp["sampled CI low"] <= cmp["sampled mean"]).all() and cmp["learners x episodes"].nunique() == 1

    if name == "02_mujoco":
        report = tmp_path / "mujoco" / "report"
        table = pd.read_csv(report / "table.csv")
        assert len(table) == 11 and (table["B"] == 64).all() and set(table["scale"]) == {"quick"}
        assert table["PPO evaluated run is the baseline's"].all()  # its evaluations did not disturb the training
        for task in table["task"]:
            ds = DistilledDataset.load(tmp_path / "mujoco" / "datasets" / f"{task}_b64.safetensors")
            assert ds.label_kind == "gaussian_mse" and ds.normalization is not None
        for f in ["table.md", "learning_curves.png", "state_dependence.png", "state_dependence.csv"]:
            assert (report / f).stat().st_size > 0, f
        metrics = json.loads((report / "summary.json").read_text())
        assert set(metrics) == set(table["task"])
        headline = json.loads((tmp_path / "metrics" / "mujoco.json").read_text())
        assert headline["beat_random"] == int((table["one-step mean"] > table["random"]).sum())
        # the authors' v4 datasets, computed by the pipeline for the 8 tasks they published
        authors = table.set_index("task")["authors' (v4) mean"]
        assert authors.notna().sum() == 8 and authors[["InvertedPendulum-v5", "Pusher-v5", "Swimmer-v5"]].isna().all()
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
        for f in ["table.md", "greedy_actions.png", "constant_actions.csv", "authors.md", "authors_greedy_actions.png",
                  "summary.md", "splits_Pong.png", *[f"table_{g}.md" for g in table["game"].unique()]]:
            assert (report / f).stat().st_size > 0, f
        # the bar (issue 23): its parts agree with the numbers they come from
        assert (table["above random"] == (table["sampled mean"] > table["random"])).all()
        assert (table["above best constant"] == (table["sampled mean"] > table["best constant return"])).all()
        assert (table["meets bar"] == (table["above random"] & table["above best constant"] & table["state-dependent"])).all()
        assert (table["missed by"].fillna("").eq("") == table["meets bar"]).all()
        authors = pd.read_csv(report / "authors.csv")
        assert sorted(zip(authors["game"], authors["l"])) == [("Centipede", 0), ("Centipede", 1), ("Centipede", 2),
                                                              ("Centipede", 3), ("SpaceInvaders", 3)]
        # teacher-first distillation (issue 39): a teacher per game, fit and fine-tune per (game, l), PPMO alone beside
        methods = pd.read_csv(report / "methods.csv")
        assert sorted(set(zip(methods["game"], methods["l"]))) == [("Pong", 0), ("SpaceInvaders", 3)]
        assert set(methods["method"]) == {"PPMO alone", "fit", "fit + fine-tune"} and len(methods) == 6
        assert (methods["clears constant and replay"] == (methods["sampled CI low"] > methods[
            ["best constant return", "replayed mean"]].max(axis=1))).all()
        assert methods["moved lr_ratio"].notna().all() and methods["moved states_rms_change"].notna().all()
        for r in methods[methods.method != "PPMO alone"].itertuples():
            kind = "fit" if r.method == "fit" else "finetuned"
            ds = DistilledDataset.load(tmp_path / "atari" / "datasets" / kind / f"{r.game}_l{r.l}_b{r.B}.safetensors")
            assert len(ds.encoder) == 2 * r.l and ds.normalization is None and "movement" in ds.provenance
        teachers = pd.read_csv(report / "teachers.csv")
        assert list(teachers["game"]) == ["Pong", "SpaceInvaders"] and (teachers["episodes"] > 0).all()
        assert (report / "teachers.png").stat().st_size > 0 and len(pd.read_csv(report / "teacher_bar.csv")) == 2
        theirs = pd.read_csv(report / "authors_vs_ours.csv")  # SpaceInvaders l = 3 under the authors' settings
        assert sorted(theirs["dataset"]) == ["ours: fit", "ours: fit + fine-tune", "the authors' published set"]
        verdicts = pd.read_csv(report / "teacher_bar.csv")
        assert verdicts["met"].dtype == bool and set(verdicts["best method"]) <= set(methods["method"])
    if name == "04_architecture_generalization":
        arch = pd.read_csv(tmp_path / "cartpole" / "architectures" / "architectures.csv")
        assert sorted(arch["N"].unique()) == [1, 2, 3, 4, 5]
        assert set(arch["family"]) == {"init", "width", "depth", "activation"}
        assert len(arch) == 5 * 17
        assert (tmp_path / "cartpole" / "architectures" / "pool_vs_single.csv").exists()
    if name == "05_minimal_dataset":
        out = tmp_path / "cartpole" / "minimal"
        mini = pd.read_csv(out / "minimal_size.csv")
        assert mini["N"].tolist() == [1, 2, 3, 4, 5]
        sizes = pd.read_csv(out / "return_by_size.csv")
        methods = ["PPMO alone", "compressed: PPO policy teacher", "compressed: B = 512 dataset teacher"]
        assert list(dict.fromkeys(sizes["method"])) == methods
        for n in range(1, 6):
            for method in methods:
                assert sorted(sizes[(sizes.N == n) & (sizes.method == method)]["B"]) == [*range(1, 2 * n + 2), 512]
        authors = pd.read_csv(out / "authors.csv")
        assert sorted(zip(authors["N"], authors["B"])) == sorted([(n, b) for n in range(1, 6) for b in (n + 1, 512)])
        for _, m in mini.iterrows():  # a minimal B's CI lower end clears the bar, per method
            for method in methods:
                if not math.isnan(m[f"{method}: minimal B"]):
                    row = sizes[(sizes.N == m["N"]) & (sizes.method == method) & (sizes.B == m[f"{method}: minimal B"])].iloc[0]
                    assert row["ci95 low"] >= m["bar (CI low >=)"]
        for n in range(1, 6):  # the published minimal sets: the PPO teacher's N + 1 fits
            ds = DistilledDataset.load(tmp_path / "cartpole" / "datasets" / f"nd{n}_b{n + 1}.safetensors")
            assert ds.size == n + 1 and ds.provenance["teacher_kind"] == "policy"
        logit = pd.read_csv(out / "logit_map.csv")
        assert len(logit) == sum(2 * n + 2 for n in range(1, 6)) and logit["r2"].between(-1e-6, 1 + 1e-6).all()
        warm = pd.read_csv(out / "mujoco_warm_start.csv")
        assert warm["task"].tolist() == ["Hopper-v5", "Walker2d-v5", "InvertedDoublePendulum-v5"]
        assert pd.read_csv(out / "cost.csv")["N"].tolist() == [1, 2, 3, 4, 5]
        for f in ["return_by_size.png", "mujoco_warm_start.png", "logit_map.md", "cost.md"]:
            assert (out / f).stat().st_size > 0, f
        kshot = pd.read_csv(out / "kshot.csv")
        assert set(kshot["lr mode"]) == {"learned lr", "lr / k"}


def test_the_committed_paper_scale_notebooks_show_their_figures():
    executed = sorted((project_root() / "results" / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert [p.stem for p in executed] == NOTEBOOKS
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert not errors and images, path.name


def test_every_notebook_names_its_executed_copy_in_its_first_cell():
    for name in NOTEBOOKS:
        first = nbformat.read(project_root() / "notebooks" / f"{name}.ipynb", as_version=4).cells[0]
        link = f"(../results/notebooks/{name}.ipynb)"
        assert first.cell_type == "markdown" and link in first.source, name
        assert (project_root() / "results" / "notebooks" / f"{name}.ipynb").is_file()
