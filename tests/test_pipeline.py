"""The pipeline works from any copy of the project: the project root is found from the working
directory (never the package's install location), so ``dvc exp run --temp -S ...`` runs in its
temporary copy, reads its own ``params.yaml`` and leaves the workspace alone."""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pandas as pd
import yaml

from paper_code.pipeline.config import load_scale, output_dir
from paper_code.project import ROOT_ENV, package_root, project_root

ROOT = project_root()


def test_project_root_is_found_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(ROOT_ENV, raising=False)
    (tmp_path / "proj" / "notebooks").mkdir(parents=True)
    (tmp_path / "proj" / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "proj" / "params.yaml").write_text(yaml.safe_dump({"quick": {"out_dir": "here"}}))
    monkeypatch.chdir(tmp_path / "proj" / "notebooks")
    assert project_root() == (tmp_path / "proj").resolve()
    assert load_scale("quick") == {"out_dir": "here"}  # this copy's params, not the installed one's
    assert output_dir("quick") == (tmp_path / "proj" / "here").resolve()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="no dvc.yaml in"):
        project_root()
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "proj"))
    assert project_root() == (tmp_path / "proj").resolve()
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="is not a project folder"):
        project_root()
    assert (package_root() / "paper_code").is_dir()  # the code's own checkout, for git revisions


def test_every_stage_depends_on_the_whole_package():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert {n for n in stages if n.startswith("study-")} == {
        "study-tune-mujoco-lr", "study-mujoco-variants", "study-idp-snapshots", "study-idp-step-size",
        "study-idp-state-scale", "study-idp-obs-scale", "study-atari-ablation", "study-atari-dataset-optimizer",
        "study-atari-fit-length", "study-atari-power",
        "study-own-task", "study-mujoco-teacher-route", "study-mujoco-linear-clone", "study-mujoco-finetune-length"}
    for name, stage in stages.items():
        stage = stage.get("do", stage)  # foreach stages (notebooks at two scales) or single ones (studies)
        deps = [str(d).split("#")[0].strip() for d in stage["deps"]]
        assert "paper_code" in deps, name
        assert not [d for d in deps if d.startswith("paper_code/")], f"{name}: a file list can miss an import"
        if name.startswith("study-"):  # studies: hours of training, run on purpose (their tables are committed)
            assert stage.get("frozen") is True and f"studies/{stage['deps'][0].split('/')[-1]}" in deps, name
            assert all(next(iter(o.values())).get("persist") for o in stage["outs"]), name
    ignored = (ROOT / ".dvcignore").read_text()
    assert "__pycache__/" in ignored  # byte-code caches would make every stage look changed


def _scratch_project(dst: Path) -> None:
    """A git repository holding what the environment stage needs, with results-quick/ tracked by
    git so that the experiment's commit carries the stage's outputs."""
    (dst / "notebooks").mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, dst / name)
    shutil.copytree(ROOT / ".dvc", dst / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    shutil.copy(ROOT / "notebooks" / "00_environment.ipynb", dst / "notebooks")
    shutil.copytree(ROOT / "paper_code", dst / "paper_code", ignore=shutil.ignore_patterns("__pycache__"))
    (dst / ".gitignore").write_text("__pycache__/\n")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=dst, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "test@example.com")
    git("config", "user.name", "test")
    git("add", "-A")
    git("commit", "-qm", "scratch project")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_dvc_exp_run_temp_with_an_override(tmp_path):
    proj = tmp_path / "proj"
    _scratch_project(proj)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop(ROOT_ENV, None)
    r = subprocess.run([sys.executable, "-m", "dvc", "exp", "run", "--temp", "-S", "quick.environment.episodes=3",
                        "environment@quick"], cwd=proj, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=proj, capture_output=True,
                          text=True, check=True).stdout.split()
    assert len(refs) == 1
    show = subprocess.run(["git", "show", f"{refs[0]}:results-quick/environment/returns_per_episode.csv"], cwd=proj,
                          capture_output=True, text=True)
    assert show.returncode == 0, show.stderr
    rows = list(csv.DictReader(io.StringIO(show.stdout)))
    per_group: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["dof"], row["policy"])
        per_group[key] = per_group.get(key, 0) + 1
    assert per_group and set(per_group.values()) == {3}  # the override, not params.yaml's 64
    # the workspace is as it was: nothing written, params.yaml unchanged
    status = subprocess.run(["git", "status", "--porcelain"], cwd=proj, capture_output=True, text=True, check=True)
    assert status.stdout.strip() == "" and not (proj / "results-quick").exists()
    assert yaml.safe_load((proj / "params.yaml").read_text())["quick"]["environment"]["episodes"] == \
        load_scale("quick")["environment"]["episodes"]


def test_dvc_metrics_fit_a_terminal_and_plots_are_declared():
    """`dvc metrics show` lines of at most 200 characters, listing committed files only (a fresh clone,
    without results-quick/, prints no "failed to load" line); every plot declared in dvc.yaml reads
    committed paper-scale CSVs (at least five plots)."""
    r = subprocess.run([sys.executable, "-m", "dvc", "metrics", "show"], cwd=ROOT, capture_output=True, text=True,
                       check=True)
    shown = r.stdout
    assert shown.strip() and max(len(line) for line in shown.splitlines()) <= 200, shown
    assert "failed" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    listed = {line.split()[0] for line in shown.splitlines()[1:] if line.strip()}
    committed = set(subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True,
                                   check=True).stdout.split())
    assert len(listed) >= 7 and listed <= committed, listed - committed  # no quick-scale (uncommitted) metrics
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    assert len(plots) >= 5
    for plot in plots:
        (name, spec), = plot.items()
        for path, column in spec["y"].items():
            header = (ROOT / path).read_text().splitlines()[0].split(",")
            assert column in header and spec["x"] in header, (name, path)


@pytest.mark.parametrize("study, args", [
    ("own_task", ["--tasks", "Acrobot-v1", "--ppo-steps", "1024", "--compress-steps", "5", "--meta-epochs", "2",
                  "--fourier-width", "64", "--learners", "3", "--episodes", "1"]),
    ("mujoco_teacher_route", ["--tasks", "Hopper-v5", "--sizes", "4", "--coordinates", "linear", "--steps", "4",
                              "--pool", "256", "--dagger-states", "64", "--finetune", "1", "--learners", "3"]),
])
def test_the_command_studies_run_at_a_tiny_scale_and_resume_without_redoing(tmp_path, study, args):
    # the same code path as their committed tables (results/own_task, results/mujoco/teacher_route); only counts shrink
    cmd = [sys.executable, str(ROOT / "studies" / f"{study}.py"), *args, "--out", str(tmp_path / "s")]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)  # a study runs inside the project
    assert first.returncode == 0, first.stderr[-2000:]
    table = pd.read_csv(tmp_path / "s" / "table.csv")
    assert len(table) == (1 if study == "own_task" else 3) and (tmp_path / "s" / "table.md").is_file()
    if study == "mujoco_teacher_route":  # notebook 02's table per task: the sets beside the teacher, PPMO alone, random
        from paper_code.pipeline.teacher_route import by_method, task_tables

        per_task = task_tables(table, pd.read_csv(ROOT / "results" / "mujoco" / "report" / "table.csv"))["Hopper-v5"]
        methods = list(per_task["method"])
        assert methods[0].startswith("PPO teacher") and methods[1].startswith("PPMO alone") and methods[-1] == "random policy"
        assert methods[2:5] == ["fit", "dagger", "dagger + finetune 1"] and per_task["share of teacher"].iloc[0] == 1
        wide = by_method(per_task)  # one row per B and coordinates
        assert wide.shape == (1, 5) and list(wide.columns) == ["B", "coordinates", "fit", "dagger", "dagger + finetune 1"]
        assert wide["fit"].iloc[0].startswith(per_task["one-step [95% CI]"].iloc[2])
    # every stage's record and the output of the command that made each file (a clone without the logs too)
    records = {p: p.read_text() for p in (tmp_path / "s").rglob("*") if p.suffix in (".json", ".txt")}
    for log in (tmp_path / "s").rglob("*.log.json"):
        log.unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p: p.read_text() for p in records} == records  # nothing redone: the recorded times are kept
    assert pd.read_csv(tmp_path / "s" / "table.csv").equals(table)


def test_the_finetune_length_study_reruns_the_chosen_length_on_the_same_path(tmp_path):
    # the same code path as results/mujoco/finetune_length; only counts shrink: a long run made here, then the study
    checks, common = tmp_path / "checks", ["--steps", "4", "--pool", "256", "--dagger-states", "64"]
    long = checks / "Hopper-v5_b4_linear_dagger_ft2.safetensors"
    made = subprocess.run([sys.executable, "-m", "paper_code", "compress", "results/mujoco/baselines/ppo_Hopper-v5.safetensors",
                           "--size", "4", "--obs-scale", "0.3", "--state-bound", "0.25", "--eval-learners", "0", "--quiet",
                           *common, "--dagger-rounds", "3", "--finetune", "2", "--out", str(long)],
                          capture_output=True, text=True, cwd=ROOT)
    assert made.returncode == 0, made.stderr[-2000:]
    (checks / "Hopper-v5_b4_linear_dagger_ft1.safetensors").write_bytes(long.read_bytes())  # no checkpoint: not a long run
    cmd = [sys.executable, str(ROOT / "studies" / "mujoco_finetune_length.py"), "--checks", str(checks),
           "--out", str(tmp_path / "s"), "--learners", "3", *common]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-2000:]
    table = pd.read_csv(tmp_path / "s" / "table.csv")
    row = table.iloc[0]
    assert len(table) == 1 and row["long fine-tune"] == 2 and row["M*"] == 2  # one evaluation (at the end): M* = M
    # a fresh run of the chosen length is the long run's path: its evaluation equals the long run's
    assert row["evaluations compared"] == 1 and row["same path (max |diff| of the evaluations up to M*)"] == 0
    assert row["chosen: one-step"] == row["long: one-step"]  # (here the same set, evaluated alike)
    from paper_code.pipeline.teacher_route import by_method, length_rows, task_tables

    route = pd.DataFrame([{"task": "Hopper-v5", "B": 4, "coordinates": "linear", "method": "fit", "learners x episodes": "3 x 1",
                           "one-step": "1.0 [0.0, 2.0]", "teacher (PPO)": row["teacher (PPO)"], "random": "0.0 [0.0, 0.0]",
                           "command min": 0.1}])
    per_task = task_tables(route, pd.read_csv(ROOT / "results" / "mujoco" / "report" / "table.csv"),
                           lengths=length_rows(table))["Hopper-v5"]
    assert list(per_task["method"])[2:4] == ["fit", "dagger + finetune 2 (length chosen)"]
    assert list(by_method(per_task).columns)[-1] == "dagger + finetune, length chosen"
    records = {p: p.read_text() for p in (tmp_path / "s").rglob("*") if p.suffix in (".json", ".txt")}
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p: p.read_text() for p in records} == records and pd.read_csv(tmp_path / "s" / "table.csv").equals(table)


def test_the_finetune_length_is_the_centre_of_the_best_three_evaluations():
    sys.path.insert(0, str(ROOT / "studies"))
    try:
        from mujoco_finetune_length import choose
    finally:
        sys.path.remove(str(ROOT / "studies"))
    evals = pd.DataFrame({"meta_epoch": [25, 50, 75, 100, 125, 150, 175], "sampled_return": [1.0, 9.0, 1.0, 1.0, 5.0, 5.0, 5.0]})
    assert choose(evals) == (150, 5.0)  # one high evaluation (50) alone does not choose
    tie = pd.DataFrame({"meta_epoch": [25, 50, 75, 100], "sampled_return": [2.0, 2.0, 2.0, 2.0]})
    assert choose(tie) == (50, 2.0)  # the earliest on ties
    assert choose(evals.head(2)) == (50, 9.0)  # fewer than three: the best one


def test_the_learners_log_std_is_the_step_from_its_init_towards_the_sets_target():
    from paper_code.core.dataset import DistilledDataset
    from paper_code.pipeline.teacher_route import learner_log_std

    path = ROOT / "results" / "mujoco" / "checks" / "Walker2d-v5_b64_preset_dagger_ft1200.safetensors"
    ds = DistilledDataset.load(path)
    init, lr, target = ds.learner.init_log_std, float(ds.lr), ds.log_std
    # MSE(log_std, target) over A values: one step of lr moves every dimension by lr * 2 (target - init) / A
    expected = float((init + lr * 2 * (target - init) / target.numel()).mean())
    assert learner_log_std(path) == pytest.approx(expected, rel=1e-5) and expected > 1  # std e^1.4: noisy actions
    assert math.isnan(learner_log_std(ROOT / "results" / "cartpole" / "datasets" / "nd1_b512.safetensors"))


def test_a_task_with_its_own_teacher_shows_its_own_ppmo_alone():
    # Ant-v5's route: the teacher sees 27 values; PPMO alone comes from the study, not notebook 02 (105 values)
    from paper_code.pipeline.teacher_route import by_method, task_tables

    row = {"task": "Ant-v5", "B": 64, "coordinates": "preset", "learners x episodes": "100 x 1", "teacher (PPO)": "2000.0 [1900.0, 2100.0]",
           "random": "-50.0 [-60.0, -40.0]", "teacher env steps": 999424, "teacher min": 11.5, "finetune meta-epochs": float("nan"),
           "meta-epochs": float("nan")}
    route = pd.DataFrame([{**row, "method": "fit", "one-step": "500.0 [450.0, 550.0]", "command min": 1.0},
                          {**row, "method": "PPMO alone", "one-step": "1000.0 [900.0, 1100.0]", "command min": 60.0, "meta-epochs": 3000}])
    summary = pd.read_csv(ROOT / "results" / "mujoco" / "report" / "table.csv")
    t = task_tables(route, summary)["Ant-v5"]
    assert list(t["method"])[:3] == ["PPO teacher (1 M steps)", "PPMO alone (3000 meta-epochs)", "fit"]
    assert t["minutes"].iloc[0] == 11.5 and t["share of teacher"].iloc[1] == 0.5 and t["minutes"].iloc[1] == 60.0
    assert "notebook 02" not in set(t["source"].iloc[:3]) and t["method"].iloc[-1] == "random policy"
    assert list(by_method(t).columns) == ["B", "coordinates", "fit"]  # PPMO alone is not a route column


def test_the_linear_clone_study_runs_at_a_tiny_scale(tmp_path):
    # the same code path as results/mujoco/linear_clone; only counts shrink
    cmd = [sys.executable, str(ROOT / "studies" / "mujoco_linear_clone.py"), "--tasks", "Hopper-v5", "--pool", "256",
           "--episodes", "2", "--rounds", "1", "--out", str(tmp_path / "c")]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    table = pd.read_csv(tmp_path / "c" / "table.csv")
    assert list(table["DAgger round"]) == [0, 1] and list(table["states"])[0] == 256 and table["states"][1] > 256
    assert (table["R2 on its states"] <= 1).all() and table["teacher, sampled"].nunique() == 1


def test_evaluation_curves_per_task_keep_bands_inside_each_panels_bounds():
    """Notebook 02's learning curves: one panel per task (in the order given), PPMO's and PPO's
    evaluations on one env-step axis, each band clipped to its task's bounds, grey reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.collections import PolyCollection

    from paper_code.pipeline import plots

    ppmo = pd.DataFrame({"task": ["B", "B", "A", "A"], "env_steps": [0, 100, 0, 100], "sampled_return": [5.0, 9.0, -1.0, 1.0],
                         "sampled_ci_low": [-50.0, 8.0, -2.0, 0.0], "sampled_ci_high": [6.0, 90.0, 0.0, 2.0]})
    ppo = pd.DataFrame({"task": ["B", "A", "C"], "env_steps": [50, 50, 50], "sampled_return": [9.0, 0.0, 3.0],
                        "sampled_std": [40.0, 1.0, 1.0]})
    fig = plots.ppmo_and_ppo(ppmo, ppo, by="task", learners=4, episodes=2, bounds={"B": (0.0, 10.0), "A": (None, None)},
                             references={"B": {"random": 1.0, "zero action": 2.0}}, ncol=2)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["B", "A", "C"]  # every task, PPO-only ones too
    b = axes[0]
    ys = [y for c in b.collections if isinstance(c, PolyCollection) for path in c.get_paths() for _, y in path.vertices]
    assert ys and min(ys) >= 0.0 and max(ys) <= 10.0  # B's bands clipped to 0 .. 10
    a_ys = [y for c in axes[1].collections if isinstance(c, PolyCollection) for path in c.get_paths() for _, y in path.vertices]
    assert min(a_ys) < -1.5  # A unbounded: its band is not clipped
    assert sorted(line.get_ydata()[0] for line in b.lines if line.get_color() == "grey") == [1.0, 2.0]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_make_test_runs_each_notebook_after_the_notebooks_whose_outputs_it_reads():
    """`make test` runs the notebooks in phases (each phase over the cores): a notebook whose dvc stage
    reads another notebook's outputs must run in a later phase than that notebook."""
    dry = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    phase = {Path(word).stem: i for i, line in enumerate(l for l in dry.splitlines() if "--nbval-lax" in l)
             for word in line.split() if word.endswith(".ipynb")}
    assert sorted(phase) == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))  # every notebook runs
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    notebook_of, outs_of, reads = {}, {}, {}
    for name, stage in stages.items():
        do = stage.get("do", stage)
        words = str(do.get("cmd", "")).split()
        if "notebook" in words:
            notebook_of[name] = words[words.index("notebook") + 1]
            outs_of[name] = [next(iter(o)) if isinstance(o, dict) else o for o in do.get("outs", [])]
            reads[name] = [d for d in do.get("deps", []) if str(d).startswith("${item.out_dir}/")]
    assert len(notebook_of) >= 6
    checked = 0
    for name, deps in reads.items():
        for dep in deps:
            for other, outs in outs_of.items():
                if other != name and any(dep == o or dep.startswith(o.rstrip("/") + "/") for o in outs):
                    assert phase[notebook_of[other]] < phase[notebook_of[name]], (name, dep, other)
                    checked += 1
    assert checked >= 3  # 04 after 01; 05 after 01 and 02
