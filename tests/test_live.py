"""DVCLive logging of a run (``distill --live``): one row per meta-epoch and per evaluation, the
folder equal to the run's history after a resume, and a folder that cannot be written refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paper_code.__main__ import main
from paper_code.core.settings import PPMOConfig
from paper_code.runs.training import distill

TINY = dict(size=8, num_envs=2, num_steps=20, update_epochs=1, minibatch_size=40, eval_every=2, eval_learners=2)


def tsv(path: Path) -> list[list[str]]:
    """The rows of a DVCLive metric file, the header included."""
    return [line.split("\t") for line in path.read_text().splitlines()]


def test_live_folder_holds_one_row_per_meta_epoch_and_evaluation(tmp_path):
    live = tmp_path / "live"
    run = distill(PPMOConfig(**TINY), tmp_path / "d.safetensors", 5, progress=False, live=live)
    lr = tsv(live / "plots" / "metrics" / "lr.tsv")
    assert lr[0] == ["step", "lr"]
    assert [int(r[0]) for r in lr[1:]] == [1, 2, 3, 4, 5]
    assert [float(r[1]) for r in lr[1:]] == pytest.approx([h["lr"] for h in run.history])
    sampled = tsv(live / "plots" / "metrics" / "eval" / "sampled_return.tsv")
    assert [int(r[0]) for r in sampled[1:]] == [e["meta_epoch"] for e in run.evals] == [2, 4, 5]
    assert [float(r[1]) for r in sampled[1:]] == pytest.approx([e["sampled_return"] for e in run.evals])
    summary = json.loads((live / "metrics.json").read_text())
    assert summary == {"sampled": round(run.evals[-1]["sampled_return"], 1)}
    # no dvc.yaml or report of dvclive's own: dvc.yaml declares the folder
    assert not list(live.rglob("dvc.yaml")) and not list(live.rglob("report.*"))


def test_resume_rewrites_the_live_folder_from_the_checkpoint(tmp_path):
    live, out = tmp_path / "live", tmp_path / "d.safetensors"
    distill(PPMOConfig(**TINY), out, 3, progress=False, live=live)
    # rows an interrupted run logged after its last checkpoint
    with open(live / "plots" / "metrics" / "lr.tsv", "a") as f:
        f.write("4\t123.0\n5\t123.0\n")
    run = distill(PPMOConfig(**TINY), out, 5, resume=True, progress=False, live=live)
    lr = tsv(live / "plots" / "metrics" / "lr.tsv")
    assert [int(r[0]) for r in lr[1:]] == [1, 2, 3, 4, 5]
    assert [float(r[1]) for r in lr[1:]] == pytest.approx([h["lr"] for h in run.history])


def test_cli_live_folder_that_cannot_be_written_is_one_error_line(tmp_path, capsys):
    blocker = tmp_path / "live"
    blocker.write_text("a file where the folder should be")
    rc = main(["distill", "--size", "8", "--meta-epochs", "1", "--out", str(tmp_path / "d.safetensors"),
               "--live", str(blocker), "--quiet"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and "live" in err[0], err
    assert not (tmp_path / "d.safetensors").exists()
