"""Hostile probes of ``distill`` and ``evaluate``: every promise of "Guarantees" in docs/reference.md.

* bad input (options, dataset files, checkpoints, output paths, a locked output): exit code 2,
  exactly one stderr line, starting with ``error:``, no traceback, and no file created or changed;
* Ctrl-C (SIGINT) or ``kill`` (SIGTERM) at any moment, ``kill -9``, then ``--resume``: a dataset
  bit-identical to an uninterrupted run's;
* divergence: a clear error, the last good checkpoint and dataset kept;
* a finished run whose dataset is missing or stale: ``--resume`` (or a plain re-run) rewrites it.

The command-line probes run in this process (``main(argv)``, fast); ``HOSTILE_SUBPROCESS=1``
runs every one of them as its own ``python -m paper_code`` process instead.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from paper_code.__main__ import main
from paper_code.core.dataset import DistilledDataset
from paper_code.core.learners import LearnerSpec
from paper_code.core.ppmo import PPMO
from paper_code.core.settings import PPMOConfig
from paper_code.files import atomic_path, lock_path
from paper_code.runs.interrupts import RunInterrupted
from paper_code.runs.run_state import _with_spec_defaults, load_checkpoint, save_checkpoint
from paper_code.runs.training import DivergenceError, checkpoint_path, distill, log_path

SUBPROCESS = os.environ.get("HOSTILE_SUBPROCESS") == "1"
# the small run every probe starts from (seconds, not minutes)
BASE = ["--dof", "1", "--size", "16", "--seed", "3", "--eval-every", "0", "--quiet"]
TINY = dict(size=16, num_envs=4, num_steps=25, update_epochs=2, minibatch_size=50, eval_every=2, eval_learners=3, seed=3)


# ---------------------------------------------------------------------------------------- helpers
def cli(*args: str, capsys=None, subprocess_: bool = SUBPROCESS) -> tuple[int, str, str]:
    """Run ``python -m paper_code *args``; returns (exit code, stdout, stderr)."""
    args = tuple(str(a) for a in args)
    if subprocess_ or capsys is None:
        r = subprocess.run([sys.executable, "-m", "paper_code", *args], capture_output=True, text=True, timeout=300)
        return r.returncode, r.stdout, r.stderr
    capsys.readouterr()
    try:
        rc = main(list(args))
    except SystemExit as e:  # argparse
        rc = e.code if isinstance(e.code, int) else 2
    out, err = capsys.readouterr()
    return rc, out, err


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``root``."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def assert_refused(root: Path, args: list[str], match: str, capsys) -> str:
    """Exit 2, one ``error:`` line matching ``match``, no traceback, nothing under ``root`` changed."""
    before = snapshot(root)
    rc, out, err = cli(*args, capsys=capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, f"exit {rc}: {err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert re.search(match, lines[0]), lines[0]
    assert snapshot(root) == before, "a refused command created or changed files"
    return lines[0]


def tensors(path: Path) -> dict[str, torch.Tensor]:
    ds = DistilledDataset.load(path)
    return {"states": ds.states, "labels": ds.labels, "lr": ds.lr}


def assert_same_dataset(a: Path, b: Path) -> None:
    ta, tb = tensors(a), tensors(b)
    for k in ta:
        assert torch.equal(ta[k], tb[k]), f"{k} differs"
    pa, pb = DistilledDataset.load(a).provenance, DistilledDataset.load(b).provenance
    assert pa["meta_epochs"] == pb["meta_epochs"] and pa["env_steps"] == pb["env_steps"]


def assert_same_checkpoint(a: Path, b: Path) -> None:
    """The whole training state (not the wall times) is equal."""
    sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    skip = {"wall_time", "history", "evals", "revisions"}
    assert set(sa) == set(sb)

    def eq(x, y, where):
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y), where
        elif isinstance(x, dict):
            assert set(x) == set(y), where
            for k in x:
                eq(x[k], y[k], f"{where}.{k}")
        else:
            assert x == y, where

    for k in sa:
        if k not in skip:
            eq(sa[k], sb[k], k)
    ha, hb = sa["history"], sb["history"]
    assert set(ha) == set(hb)
    for col in set(ha) - {"wall_time_s"}:
        assert torch.equal(ha[col].nan_to_num(-1), hb[col].nan_to_num(-1)), col
    ea, eb = sa["evals"], sb["evals"]
    for col in ("meta_epoch", "sampled_return", "greedy_return"):
        assert (col in ea) == (col in eb) and (col not in ea or torch.equal(ea[col], eb[col])), col


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 3-meta-epoch run of the CLI's BASE settings: d.safetensors, checkpoint and log."""
    root = tmp_path_factory.mktemp("finished")
    rc, _, err = cli("distill", *BASE, "--meta-epochs", "3", "--out", root / "d.safetensors", subprocess_=True)
    assert rc == 0, err
    return root


@pytest.fixture
def run_dir(finished, tmp_path) -> Path:
    """A copy of the finished run in a fresh folder."""
    dst = tmp_path / "run"
    shutil.copytree(finished, dst)
    return dst


def _valid_dataset_tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"states": torch.randn(3, 4, generator=g), "labels": torch.randn(3, 2, generator=g), "lr": torch.tensor(0.02)}


def write_dataset(path: Path, tensors: dict | None = None, **metadata: str) -> Path:
    """A dataset file for CartPole-v1 written with safetensors directly (anything goes)."""
    t = _valid_dataset_tensors() if tensors is None else tensors
    save_file(t, str(path), metadata={"env": "CartPole-v1", **metadata})
    return path


# ---------------------------------------------------------------------------------------- 3, 8: options
BAD_DISTILL_OPTIONS = [
    (["--ent-coef", "nan"], "ent_coef must be finite"),
    (["--ent-coef", "inf"], "ent_coef must be finite"),
    (["--ent-coef", "-1"], "ent_coef must be >= 0"),
    (["--init-state-std", "nan"], "init_state_std must be positive and finite"),
    (["--init-state-std", "0"], "init_state_std must be positive"),
    (["--init-state-std=-inf"], "init_state_std must be positive"),
    (["--init-state-std", "1e9"], "init_state_std must be <= 1000"),
    (["--obs-scale", "nan"], "obs_scale must be positive and finite"),
    (["--obs-scale", "0"], "obs_scale must be positive"),
    (["--obs-scale", "2"], "obs_scale scales normalised observations: it needs normalize_obs"),
    (["--state-bound", "nan"], "state_bound must be positive and finite"),
    (["--state-bound", "-1"], "state_bound must be positive"),
    (["--state-bound", "inf"], "state_bound must be positive and finite"),
    (["--checkpoint-every", "nan"], "checkpoint_every_s must be finite"),
    (["--checkpoint-every", "-5"], "checkpoint_every_s must be >= 0"),
    (["--meta-epochs", "0"], "meta_epochs must be a positive integer"),
    (["--meta-epochs", "-3"], "meta_epochs must be a positive integer"),
    (["--size", "0"], "size must be a positive integer"),
    (["--size", "-4"], "size must be a positive integer"),
    (["--size", "100000000"], "size must be at most"),
    (["--size", "abc"], "argument --size: invalid int value"),
    (["--dof", "0"], "dof must be a positive integer"),
    (["--dof", "100000000"], "dof must be at most 256"),
    (["--seed", "-1"], "seed must be an integer >= 0"),
    (["--seed", "99999999999999"], "seed must be at most"),
    (["--inits", "0"], "inits_per_epoch must be a positive integer"),
    (["--eval-every", "-1"], "eval_every must be an integer >= 0"),
    (["--train-episode-steps", "0"], "train_max_episode_steps must be None or a positive integer"),
    (["--device", "foo"], "device 'foo' is not a device name"),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "cuda:99"], "device 'cuda"),
    (["--device", "meta"], "only 'cpu' and 'cuda' devices are supported"),
    (["--env", "Nope-v0"], "unknown environment 'Nope-v0'"),
    (["--env", "FrozenLake-v1"], "unsupported observation space Discrete"),
    (["--env", "Blackjack-v1"], "unsupported observation space Tuple"),
    (["--ratio-mode", "bogus"], "ratio_mode must be"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--resume", "--force"], "resume continues a run and force starts it over"),
]


@pytest.mark.parametrize("extra,match", BAD_DISTILL_OPTIONS, ids=[" ".join(a) for a, _ in BAD_DISTILL_OPTIONS])
def test_distill_bad_option(tmp_path, capsys, extra, match):
    assert_refused(tmp_path, ["distill", *BASE, "--meta-epochs", "2", "--out", tmp_path / "new" / "d.safetensors", *extra],
                   match, capsys)


def test_distill_missing_out_is_one_error_line(tmp_path, capsys):
    assert_refused(tmp_path, ["distill", *BASE], "--out is required", capsys)


def test_distill_atari_bad_options(tmp_path, capsys):
    assert_refused(tmp_path, ["distill", "--env", "ALE/Pong-v5", "--split", "7", "--out", tmp_path / "p.safetensors"],
                   "split must be", capsys)
    assert_refused(tmp_path, ["distill", "--env", "ALE/Nope-v5", "--out", tmp_path / "p.safetensors"],
                   "unknown or unsupported Atari game", capsys)


# ---------------------------------------------------------------------------------------- 6: output paths
def test_out_that_is_a_folder(tmp_path, capsys):
    (tmp_path / "d.safetensors").mkdir()
    for extra in ([], ["--force"]):  # with --force no checkpoint is left behind either
        assert_refused(tmp_path, ["distill", *BASE, "--meta-epochs", "2", "--out", tmp_path / "d.safetensors", *extra],
                       "is a folder, not a file name", capsys)


def test_out_whose_checkpoint_or_log_path_is_a_folder(tmp_path, capsys):
    out = tmp_path / "d.safetensors"
    checkpoint_path(out).mkdir()
    assert_refused(tmp_path, ["distill", *BASE, "--meta-epochs", "2", "--out", out], "ckpt.pt is a folder", capsys)
    checkpoint_path(out).rmdir()
    log_path(out).mkdir()
    assert_refused(tmp_path, ["distill", *BASE, "--meta-epochs", "2", "--out", out, "--force"], "log.json is a folder",
                   capsys)


def test_out_under_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert_refused(tmp_path, ["distill", *BASE, "--meta-epochs", "2", "--out", tmp_path / "afile" / "d.safetensors"],
                   "is not a folder", capsys)


def test_out_where_no_file_can_be_created(tmp_path, capsys):
    # /proc refuses new files even for root (a chmod-ed folder does not stop root)
    assert_refused(tmp_path, ["distill", *BASE, "--meta-epochs", "2", "--out", "/proc/paper_code_probe/d.safetensors"],
                   "does not allow creating files", capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert_refused(tmp_path, ["distill", *BASE, "--meta-epochs", "2", "--out", ro / "d.safetensors"],
                       "does not allow creating files", capsys)
    finally:
        ro.chmod(0o755)


def test_existing_output_without_checkpoint_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "d.safetensors").write_bytes(b"someone else's file")
    assert_refused(tmp_path, ["distill", *BASE, "--meta-epochs", "2", "--out", tmp_path / "d.safetensors"],
                   "exists and has no checkpoint", capsys)


def test_unfinished_run_is_not_restarted_or_continued_without_asking(run_dir, capsys):
    assert_refused(run_dir, ["distill", *BASE, "--meta-epochs", "5", "--out", run_dir / "d.safetensors"],
                   r"holds an unfinished run \(meta-epoch 3 of 5\)", capsys)


# ---------------------------------------------------------------------------------------- 7: checkpoints
CHECKPOINT_MUTATIONS = {
    "not a dict": lambda sd: [1, 2, 3],
    "missing keys": lambda sd: {k: v for k, v in sd.items() if k not in ("states", "critic")},
    "unexpected key": lambda sd: {**sd, "surprise": 1},
    "states of another shape": lambda sd: {**sd, "states": torch.zeros(1, 4)},
    "states of another dtype": lambda sd: {**sd, "states": sd["states"].double()},
    "nan states": lambda sd: {**sd, "states": torch.full_like(sd["states"], float("nan"))},
    "labels not a tensor": lambda sd: {**sd, "labels": [[0.0, 1.0]]},
    "string meta_epoch": lambda sd: {**sd, "meta_epoch": "3"},
    "negative meta_epoch": lambda sd: {**sd, "meta_epoch": -5},
    "bool meta_epoch": lambda sd: {**sd, "meta_epoch": True},
    "nan wall_time": lambda sd: {**sd, "wall_time": float("nan")},
    "critic missing a layer": lambda sd: {**sd, "critic": {k: v for k, v in sd["critic"].items() if k != "l0.weight"}},
    "generator state truncated": lambda sd: {**sd, "generators": {**sd["generators"], "g_act": sd["generators"]["g_act"][:10]}},
    "env state of another shape": lambda sd: {**sd, "env": {**sd["env"], "state": torch.zeros(2, 1, 4, dtype=sd["env"]["state"].dtype)}},
    "optimiser state of another shape": lambda sd: {**sd, "data_opt": {
        "state": {0: {**sd["data_opt"]["state"][0], "exp_avg": torch.zeros(3, 3)}}, "param_groups": sd["data_opt"]["param_groups"]}},
    "optimiser not a state": lambda sd: {**sd, "critic_opt": "adam"},
    "history columns of different lengths": lambda sd: {**sd, "history": {
        **sd["history"], "lr": sd["history"]["lr"][:1]}},
    "config not a dict": lambda sd: {**sd, "config": "ppmo"},
    "config of another run": lambda sd: {**sd, "config": {**sd["config"], "gamma": 0.5}},
    "config with a bad learner": lambda sd: {**sd, "config": {**sd["config"], "learner": {"hidden": "64"}}},
}


@pytest.mark.parametrize("name", list(CHECKPOINT_MUTATIONS))
def test_resume_from_a_wrong_checkpoint(run_dir, capsys, name):
    ckpt = checkpoint_path(run_dir / "d.safetensors")
    sd = torch.load(ckpt, weights_only=True)
    torch.save(CHECKPOINT_MUTATIONS[name](sd), ckpt)
    msg = assert_refused(run_dir, ["distill", *BASE, "--meta-epochs", "5", "--out", run_dir / "d.safetensors", "--resume"],
                         "ckpt.pt", capsys)
    assert "weights_only=False" not in msg


@pytest.mark.parametrize("content", [b"", b"garbage bytes", b"PK\x03\x04 truncated zip"], ids=["empty", "garbage", "zip"])
def test_resume_from_an_unreadable_checkpoint(run_dir, capsys, content):
    checkpoint_path(run_dir / "d.safetensors").write_bytes(content)
    assert_refused(run_dir, ["distill", *BASE, "--meta-epochs", "5", "--out", run_dir / "d.safetensors", "--resume"],
                   "not a readable checkpoint", capsys)


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('PROBE_PWNED', '/tmp/paper_code_pwned')}",))


def test_a_malicious_pickle_is_not_executed(run_dir, capsys, monkeypatch, tmp_path):
    pwned = tmp_path / "pwned"
    monkeypatch.setenv("PROBE_PWNED", str(pwned))
    torch.save({"meta_epoch": _Payload()}, checkpoint_path(run_dir / "d.safetensors"))
    msg = assert_refused(run_dir, ["distill", *BASE, "--meta-epochs", "5", "--out", run_dir / "d.safetensors", "--resume"],
                         "not a checkpoint of this project", capsys)
    assert not pwned.exists()
    assert "weights_only" not in msg and "succeed" not in msg  # never suggests unsafe loading


def test_a_checkpoint_that_is_a_folder(tmp_path, capsys):
    out = tmp_path / "d.safetensors"
    checkpoint_path(out).mkdir()
    assert_refused(tmp_path, ["distill", *BASE, "--meta-epochs", "2", "--out", out, "--resume"], "is a folder", capsys)


# ---------------------------------------------------------------------------------------- 5: dataset files
def _evaluate(path: Path, *extra: str) -> list[str]:
    return ["evaluate", str(path), "--learners", "3", "--episodes", "1", *extra]


BAD_FILES = {
    # metadata
    "env_kwargs unknown key": (None, {"env_kwargs": json.dumps({"foo": 1})}, "CartPole-v1 takes env_kwargs"),
    "env_kwargs a list": (None, {"env_kwargs": "[1, 2]"}, "env_kwargs must be an object"),
    "env_kwargs device": (None, {"env_kwargs": json.dumps({"device": "cuda"})}, "may not set 'device'"),
    "env_kwargs huge dof": ("nd", {"env_kwargs": json.dumps({"dof": 1e8})}, "dof must be"),
    "env_kwargs string dof": ("nd", {"env_kwargs": json.dumps({"dof": "2"})}, "dof must be a positive integer"),
    "env_kwargs nested": ("gym", {"env_kwargs": json.dumps({"a": {"b": 1}})}, "must be a number, a string"),
    "env_kwargs bad json": (None, {"env_kwargs": "{"}, "bad metadata"),
    "learner hidden 1e9": (None, {"learner": json.dumps({"hidden": [1e9]})}, "hidden width must be at most"),
    "learner hidden string": (None, {"learner": json.dumps({"hidden": "64"})}, "hidden must be a list"),
    "learner hidden negative": (None, {"learner": json.dumps({"hidden": [-3]})}, "hidden width must be a positive"),
    "learner too deep": (None, {"learner": json.dumps({"hidden": [4] * 100})}, "at most 64 hidden layers"),
    "learner unknown field": (None, {"learner": json.dumps({"hidden": [4], "bogus": 1})}, "unknown field"),
    "learner a list": (None, {"learner": "[64, 64]"}, "must be a JSON object"),
    "learner gain nan": (None, {"learner": '{"hidden_gain": NaN}'}, "hidden_gain must be finite"),
    "normalization without clip": (None, {"normalization": json.dumps({"kind": "running_mean_std", "eps": 1e-8})},
                                   "needs a positive finite 'clip'"),
    "normalization eps -1": (None, {"normalization": json.dumps({"kind": "running_mean_std", "clip": 10, "eps": -1})},
                             "needs a positive finite 'eps'"),
    "normalization unknown key": (None, {"normalization": json.dumps({"kind": "running_mean_std", "clip": 10, "eps": 1e-8,
                                                                      "shift": 1})}, "unknown key"),
    "normalization a string": (None, {"normalization": '"yes"'}, "unknown normalization"),
    "provenance a list": (None, {"provenance": "[1]"}, "provenance must be an object"),
    "format version -1": (None, {"format_version": "-1"}, "is not a version number"),
    "format version text": (None, {"format_version": "one"}, "is not a version number"),
    "format version newer": (None, {"format_version": "99"}, "is newer than this code"),
    "format of another tool": (None, {"format": "something/else"}, "is not 'paper_code/distilled-dataset'"),
    "unknown label kind": (None, {"label_kind": "bananas"}, "unknown label kind"),
    "categorical labels for continuous actions": ("pendulum", {}, "Pendulum-v1 has continuous actions"),
    # tensors
    "lr 3e38 and labels 3e38": ({"lr": torch.tensor(3e38), "labels": torch.full((3, 2), 3e38)}, {},
                                "labels has values of magnitude 3e\\+38"),
    "states x 1e30": ({"states": torch.randn(3, 4) * 1e30}, {}, "states has values of magnitude"),
    "lr 1e5": ({"lr": torch.tensor(1e5)}, {}, "lr has values of magnitude 1e\\+05"),
    "lr 0": ({"lr": torch.tensor(0.0)}, {}, "lr must be positive"),
    "lr a vector": ({"lr": torch.tensor([0.1, 0.2])}, {}, "lr must be a scalar"),
    "lr nan": ({"lr": torch.tensor(float("nan"))}, {}, "lr contains non-finite"),
    "float64 beyond float32": ({"states": torch.full((3, 4), 1e300, dtype=torch.float64)}, {}, "states contains non-finite"),
    "integer states": ({"states": torch.ones(3, 4, dtype=torch.int64)}, {}, "states must be floating point"),
    "states 3-D for an MLP": ({"states": torch.randn(3, 4, 1)}, {}, "needs states of 2 dimensions"),
    "states wrong width": ({"states": torch.randn(3, 5)}, {}, "observations have shape"),
    "labels wrong width": ({"labels": torch.randn(3, 3)}, {}, "labels have 3 outputs"),
    "labels missing": ({"labels": None}, {}, "missing tensor"),
    "no env": (None, {"env": None}, "metadata has no 'env'"),
    "unknown env": (None, {"env": "Nope-v0"}, "unknown environment 'Nope-v0'"),
}


def _bad_file(path: Path, name: str) -> Path:
    spec, meta, _ = BAD_FILES[name]
    t = _valid_dataset_tensors()
    md = {"env": "CartPole-v1"}
    if spec == "nd":
        md["env"] = "paper_code/NDCartPole-v0"
    elif spec == "gym" or spec == "pendulum":
        md["env"] = "Pendulum-v1"
        t = {"states": torch.randn(3, 3), "labels": torch.randn(3, 1), "lr": torch.tensor(0.02)}
    elif isinstance(spec, dict):
        t.update(spec)
        t = {k: v for k, v in t.items() if v is not None}
    md.update(meta)
    md = {k: v for k, v in md.items() if v is not None}
    save_file(t, str(path), metadata=md)
    return path


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_evaluate_bad_file(tmp_path, capsys, name):
    f = _bad_file(tmp_path / "bad.safetensors", name)
    assert_refused(tmp_path, _evaluate(f), BAD_FILES[name][2], capsys)


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xff" * 64], ids=["empty", "garbage", "binary"])
def test_evaluate_unreadable_file(tmp_path, capsys, content):
    (tmp_path / "x.safetensors").write_bytes(content)
    assert_refused(tmp_path, _evaluate(tmp_path / "x.safetensors"), "not a readable safetensors file", capsys)


def test_evaluate_missing_file_folder_or_fifo(tmp_path, capsys):
    assert_refused(tmp_path, _evaluate(tmp_path / "missing.safetensors"), "no such file", capsys)
    (tmp_path / "folder.safetensors").mkdir()
    assert_refused(tmp_path, _evaluate(tmp_path / "folder.safetensors"), "a folder, not a file", capsys)
    os.mkfifo(tmp_path / "fifo.safetensors")  # opening it would block: refused without reading
    assert_refused(tmp_path, _evaluate(tmp_path / "fifo.safetensors"), "not a regular file", capsys)


BAD_EVALUATE_OPTIONS = [
    (["--learners", "0"], "learners must be a positive integer"),
    (["--episodes", "-2"], "episodes must be a positive integer"),
    (["--learners", "100000", "--episodes", "100000"], "episodes at once; at most"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--steps", "-1"], "--steps must be at least 1"),
    (["--seed", "-1"], "seed must be an integer >= 0"),
    (["--device", "foo"], "device 'foo' is not a device name"),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "cuda:99"], "device 'cuda"),
    (["--learners", "x"], "argument --learners: invalid int value"),
]


@pytest.mark.parametrize("extra,match", BAD_EVALUATE_OPTIONS, ids=[" ".join(a) for a, _ in BAD_EVALUATE_OPTIONS])
def test_evaluate_bad_option(tmp_path, capsys, extra, match):
    f = write_dataset(tmp_path / "ok.safetensors")
    assert_refused(tmp_path, ["evaluate", f, *extra], match, capsys)


def test_values_that_overflow_in_the_learner_are_an_error_not_nan_returns(tmp_path, capsys):
    # every value within the file's bounds, but one SGD step of a ReLU learner overflows float32
    relu = json.dumps({"hidden": [256, 256], "activation": "relu", "init": "orthogonal", "hidden_gain": 1000.0})
    f = write_dataset(tmp_path / "big.safetensors",
                      {"states": torch.full((3, 4), 1e6), "labels": torch.full((3, 2), -1e6), "lr": torch.tensor(1e4)},
                      learner=relu)
    for extra in ([], ["--greedy"]):
        assert_refused(tmp_path, _evaluate(f, *extra), "not finite", capsys)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16], ids=str)
def test_other_float_dtypes_are_evaluated_as_float32(tmp_path, capsys, dtype):
    t = {k: v.to(dtype) for k, v in _valid_dataset_tensors().items()}
    f = write_dataset(tmp_path / "x.safetensors", t)
    rc, out, err = cli(*_evaluate(f, "--json"), capsys=capsys)
    assert rc == 0 and not err.strip(), err
    assert json.loads(out)["learners"] == 3


def test_json_is_strict_and_says_why_a_value_is_null(tmp_path, capsys):
    # a continuous-action task has no return cap: no fraction of episodes at the cap
    f = write_dataset(tmp_path / "p.safetensors",
                      {"states": torch.randn(4, 3), "labels": torch.randn(4, 1), "lr": torch.tensor(0.02),
                       "log_std": torch.zeros(1)},
                      env="Pendulum-v1", label_kind="gaussian_mse",
                      learner=json.dumps({"policy": "gaussian", "hidden": [8]}))
    rc, out, err = cli(*_evaluate(f, "--json"), capsys=capsys)
    assert rc == 0, err

    def no_constants(c):
        raise AssertionError(f"bare {c} in JSON output")

    d = json.loads(out, parse_constant=no_constants)
    assert d["solved_fraction"] is None and "no return cap" in d["nulls"]["solved_fraction"]


# ---------------------------------------------------------------------------------------- 4: the lock
def _popen_distill(out: Path, *extra: str, seed: str = "3") -> subprocess.Popen:
    args = [a if a != "3" else seed for a in BASE]
    return subprocess.Popen([sys.executable, "-m", "paper_code", "distill", *args, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    t = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() - t < timeout, f"{path} never appeared"
        time.sleep(0.05)


def test_two_runs_on_one_output(tmp_path, capsys):
    out = tmp_path / "d.safetensors"
    first = _popen_distill(out, "--meta-epochs", "100000", "--checkpoint-every", "0")
    try:
        _wait_for(checkpoint_path(out), first)  # it holds the lock and has written
        for extra in ([], ["--resume"], ["--force"]):
            rc, _, err = cli("distill", *BASE, "--seed", "4", "--meta-epochs", "5", "--out", out, *extra, capsys=capsys)
            lines = err.strip().splitlines()
            assert rc == 2 and len(lines) == 1 and "is being written by another run" in lines[0], err
            assert f"pid {first.pid}" in lines[0]
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
    assert first.returncode == 143, err
    assert DistilledDataset.load(out).provenance["seed"] == 3  # the first run's files, untouched by the second
    assert not lock_path(out).exists()  # released on exit


def test_a_lock_left_by_a_killed_run_is_not_held(tmp_path, capsys):
    out = tmp_path / "d.safetensors"
    first = _popen_distill(out, "--meta-epochs", "100000", "--checkpoint-every", "0")
    _wait_for(checkpoint_path(out), first)
    first.kill()
    first.communicate(timeout=60)
    assert lock_path(out).exists()  # kill -9: the file stays, the lock does not
    rc, _, err = cli("distill", *BASE, "--meta-epochs", "2", "--out", out, "--force", capsys=capsys)
    assert rc == 0, err
    assert not lock_path(out).exists()


# ---------------------------------------------------------------------------------------- 1: interrupts
META_EPOCHS = 6


@pytest.fixture(autouse=True)
def sigint_as_in_a_terminal():
    """Ctrl-C's default handler for the test, even where pytest itself was started in the
    background (a shell then ignores SIGINT in it, and distill keeps an ignored SIGINT ignored)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run of TINY for META_EPOCHS (evaluations every 2)."""
    out = tmp_path_factory.mktemp("reference") / "d.safetensors"
    distill(PPMOConfig(**TINY), out, META_EPOCHS, progress=False, checkpoint_every_s=0)
    return out


def _signal_at(monkeypatch, target, attr: str, call: int, sig: int, count: int = 1) -> None:
    """Send ``sig`` to this process ``count`` times when ``target.attr`` is called the ``call``-th time
    (before the call runs)."""
    original = getattr(target, attr)
    calls = {"n": 0}

    def wrapper(*a, **kw):
        calls["n"] += 1
        if calls["n"] == call:
            for _ in range(count):
                os.kill(os.getpid(), sig)
        return original(*a, **kw)

    monkeypatch.setattr(target, attr, wrapper)


def _signal_mid_rollout(monkeypatch, meta_epoch: int, step: int, sig: int, count: int = 1) -> None:
    """Send ``sig`` (``count`` times) at env step ``step`` of the ``meta_epoch``-th training rollout."""
    import paper_code.core.ppmo as ppmo

    original = ppmo.rollout
    calls = {"n": 0}

    def wrapper(env, *a, **kw):
        calls["n"] += 1
        if calls["n"] != meta_epoch:
            return original(env, *a, **kw)
        real_step, n = env.step, {"k": 0}

        def stepping(actions):
            n["k"] += 1
            if n["k"] == step:
                for _ in range(count):
                    os.kill(os.getpid(), sig)
            return real_step(actions)

        env.step = stepping
        try:
            return original(env, *a, **kw)
        finally:
            del env.step

    monkeypatch.setattr(ppmo, "rollout", wrapper)


def _moment(monkeypatch, moment: str, sig: int) -> float:
    """Arrange ``sig`` at ``moment``; returns the checkpoint interval the run should use."""
    import paper_code.runs.checkpoints as checkpoints
    import paper_code.core.ppmo as ppmo
    import paper_code.runs.lifecycle as lifecycle

    if moment == "before the first meta-epoch":  # after the lock is taken, before training
        _signal_at(monkeypatch, lifecycle, "remove_stale_temporaries", 1, sig)
    elif moment == "as a meta-epoch starts":
        _signal_at(monkeypatch, PPMO, "meta_epoch_step", 2, sig)
    elif moment == "mid-rollout":
        _signal_mid_rollout(monkeypatch, 3, 7, sig)
    elif moment == "mid-update":
        _signal_at(monkeypatch, torch.nn.utils, "clip_grad_norm_", 9, sig)
    elif moment == "during an evaluation":
        _signal_at(monkeypatch, ppmo, "evaluate_dataset", 2, sig)
    elif moment == "while a checkpoint is written":
        _signal_at(monkeypatch, checkpoints.torch, "save", 3, sig)
    elif moment == "while the dataset is written":
        _signal_at(monkeypatch, DistilledDataset, "save", 2, sig)
    elif moment == "while the final checkpoint is written":  # the only one: the run then completes
        _signal_at(monkeypatch, checkpoints.torch, "save", 1, sig)
        return 1e6
    else:
        raise AssertionError(moment)
    return 0.0


MOMENTS = ["before the first meta-epoch", "as a meta-epoch starts", "mid-rollout", "mid-update", "during an evaluation",
           "while a checkpoint is written", "while the dataset is written", "while the final checkpoint is written"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("moment", MOMENTS)
def test_a_signal_at_any_moment_then_resume_is_bit_identical(tmp_path, monkeypatch, reference, moment, sig):
    out = tmp_path / "d.safetensors"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with monkeypatch.context() as m:
        every = _moment(m, moment, sig)
        with pytest.raises(RunInterrupted) as info:
            distill(PPMOConfig(**TINY), out, META_EPOCHS, progress=False, checkpoint_every_s=every)
    stopped = info.value.meta_epoch
    assert info.value.signum == sig and info.value.exit_code == 128 + sig
    assert stopped == (0 if moment == "before the first meta-epoch" else
                       META_EPOCHS if moment == "while the final checkpoint is written" else stopped)
    sd = torch.load(checkpoint_path(out), weights_only=True)
    assert sd["meta_epoch"] == stopped  # the checkpoint of the boundary it stopped at
    assert DistilledDataset.load(out).provenance["meta_epochs"] == stopped  # and the dataset with it
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # handlers restored
    distill(PPMOConfig(**TINY), out, META_EPOCHS, resume=True, progress=False, checkpoint_every_s=0)
    assert_same_dataset(out, reference)
    assert_same_checkpoint(checkpoint_path(out), checkpoint_path(reference))


def test_a_second_signal_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, reference):
    out = tmp_path / "d.safetensors"
    with monkeypatch.context() as m:
        _signal_mid_rollout(m, 4, 5, signal.SIGINT, count=2)
        with pytest.raises(KeyboardInterrupt) as info:
            distill(PPMOConfig(**TINY), out, META_EPOCHS, progress=False, checkpoint_every_s=0)
    assert not isinstance(info.value, RunInterrupted)
    assert torch.load(checkpoint_path(out), weights_only=True)["meta_epoch"] == 3  # the last complete one
    distill(PPMOConfig(**TINY), out, META_EPOCHS, resume=True, progress=False, checkpoint_every_s=0)
    assert_same_dataset(out, reference)


@pytest.fixture(scope="module")
def cli_reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli_reference") / "d.safetensors"
    rc, _, err = cli("distill", *BASE, "--meta-epochs", "40", "--eval-every", "10", "--out", out, subprocess_=True)
    assert rc == 0, err
    return out


@pytest.mark.parametrize("sig,delay", [(signal.SIGINT, 0.3), (signal.SIGINT, 1.7), (signal.SIGTERM, 0.9),
                                       (signal.SIGTERM, 2.3), (signal.SIGKILL, 1.2)],
                         ids=["SIGINT-0.3s", "SIGINT-1.7s", "SIGTERM-0.9s", "SIGTERM-2.3s", "SIGKILL-1.2s"])
def test_cli_interrupted_process_then_resume_is_bit_identical(tmp_path, capsys, cli_reference, sig, delay):
    """A real process, a checkpoint after every meta-epoch (so signals often land mid-write)."""
    out = tmp_path / "d.safetensors"
    cmd = ("--meta-epochs", "40", "--eval-every", "10", "--checkpoint-every", "0")
    proc = _popen_distill(out, *cmd)
    _wait_for(checkpoint_path(out), proc)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal (a slow machine)")
    if sig == signal.SIGKILL:
        assert proc.returncode == -9
        (out.parent / f".{out.name}.ckpt.pt.stray.tmp").write_bytes(b"half a checkpoint")  # as a kill can leave
    else:
        assert proc.returncode == 128 + sig, err
        assert err.strip().startswith("interrupted (") and "continue with --resume" in err
        assert torch.load(checkpoint_path(out), weights_only=True)["meta_epoch"] == \
            DistilledDataset.load(out).provenance["meta_epochs"]
    rc, stdout, err = cli("distill", *BASE, *cmd, "--out", out, "--resume", capsys=capsys)
    assert rc == 0 and stdout.startswith("wrote"), err
    assert_same_dataset(out, cli_reference)
    assert_same_checkpoint(checkpoint_path(out), checkpoint_path(cli_reference))
    assert not list(out.parent.glob(".*.tmp")) and not lock_path(out).exists()  # no temporaries left


def test_two_identical_runs_give_identical_datasets(tmp_path, reference):
    out = tmp_path / "d.safetensors"
    distill(PPMOConfig(**TINY), out, META_EPOCHS, progress=False)
    assert_same_dataset(out, reference)
    assert_same_checkpoint(checkpoint_path(out), checkpoint_path(reference))


# ---------------------------------------------------------------------------------------- 2: finished runs
@pytest.mark.parametrize("damage", ["deleted", "stale", "unreadable"])
@pytest.mark.parametrize("how", ["--resume", "plain re-run"])
def test_a_finished_run_rewrites_a_missing_or_stale_dataset(run_dir, tmp_path, capsys, finished, damage, how):
    out = run_dir / "d.safetensors"
    if damage == "deleted":
        out.unlink()
        log_path(out).unlink()
    elif damage == "stale":  # killed between the checkpoint's rename and the dataset's
        ds = DistilledDataset.load(out)
        ds.states = ds.states + 1
        ds.provenance["meta_epochs"] = 2
        ds.save(out)
    else:
        out.write_bytes(b"")
    extra = ["--resume"] if how == "--resume" else []
    rc, stdout, err = cli("distill", *BASE, "--meta-epochs", "3", "--out", out, *extra, capsys=capsys)
    assert rc == 0 and not err.strip(), err
    assert stdout.startswith(f"wrote {out}")
    assert_same_dataset(out, finished / "d.safetensors")
    assert log_path(out).exists()
    # and once current, nothing is written and the message says so
    before = snapshot(run_dir)
    rc, stdout, err = cli("distill", *BASE, "--meta-epochs", "3", "--out", out, *extra, capsys=capsys)
    assert rc == 0 and "up to date" in stdout and "wrote" not in stdout
    assert snapshot(run_dir) == before


# ---------------------------------------------------------------------------------------- 3: divergence
@pytest.mark.parametrize("poison", ["nan states", "huge labels", "overflowing lr", "underflowing lr",
                                    "underflowing lr, caught before the checkpoint"])
def test_divergence_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, reference, poison):
    # an lr that underflows to 0 once wrote a checkpoint no --resume could load ("lr must be positive"):
    # the per-meta-epoch check names it, and the save checks every value a dataset file's loader checks
    # before anything is written (the second case switches the first check off)
    out = tmp_path / "d.safetensors"
    step = PPMO.meta_epoch_step
    if poison.endswith("before the checkpoint"):
        monkeypatch.setattr(PPMO, "divergence", lambda self, row: None)

    def poisoned(self):
        if self.meta_epoch == 3:  # before meta-epoch 4
            with torch.no_grad():
                if poison == "nan states":
                    self.states[0, 0] = float("nan")
                elif poison == "huge labels":
                    self.labels.fill_(1e7)
                elif poison == "overflowing lr":
                    self.log_lr.fill_(80.0)  # lr 5e34: the one-step learner overflows
                else:
                    self.log_lr.fill_(-451.0)  # lr exp(-451) = 0 in float32
        return step(self)

    with monkeypatch.context() as m:
        m.setattr(PPMO, "meta_epoch_step", poisoned)
        with pytest.raises(DivergenceError, match="training diverged in meta-epoch 4: .*the checkpoint and dataset "
                                                  "of meta-epoch 3 are kept") as e:
            distill(PPMOConfig(**TINY), out, META_EPOCHS, progress=False, checkpoint_every_s=0)
    if "underflowing" in poison:
        assert re.search("underflowed to 0|lr must be positive", str(e.value)), e.value
    monkeypatch.undo()
    sd = torch.load(checkpoint_path(out), weights_only=True)
    assert sd["meta_epoch"] == 3 and bool(torch.isfinite(sd["states"]).all())
    assert DistilledDataset.load(out).provenance["meta_epochs"] == 3
    distill(PPMOConfig(**TINY), out, META_EPOCHS, resume=True, progress=False, checkpoint_every_s=0)  # resumable
    assert_same_dataset(out, reference)


def test_divergence_through_the_cli_is_one_error_line(tmp_path, capsys, monkeypatch):
    if SUBPROCESS:
        pytest.skip("needs the in-process poison")

    def poisoned(self):
        with torch.no_grad():
            self.states.fill_(float("nan"))
        return step(self)

    step = PPMO.meta_epoch_step
    monkeypatch.setattr(PPMO, "meta_epoch_step", poisoned)
    out = tmp_path / "d.safetensors"
    rc, _, err = cli("distill", *BASE, "--meta-epochs", "3", "--out", out, capsys=capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: training diverged in meta-epoch 1"), err
    assert "nothing was written" in lines[0] and not out.exists() and not checkpoint_path(out).exists()


def test_a_non_finite_checkpoint_is_never_written(tmp_path):
    run = PPMO(PPMOConfig(**TINY))
    path = tmp_path / "c.pt"
    save_checkpoint(run, path)
    before = path.read_bytes()
    with torch.no_grad():
        run.labels[0, 0] = float("inf")
    with pytest.raises(ValueError, match="non-finite values in labels"):
        save_checkpoint(run, path)
    assert path.read_bytes() == before


# ---------------------------------------------------------------------------------------- 8: files on disk
def test_atomic_writes_are_flushed_before_the_rename(tmp_path, monkeypatch):
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    with atomic_path(tmp_path / "x.bin") as tmp:
        Path(tmp).write_bytes(b"data")
        assert not synced
    assert len(synced) >= 1 and (tmp_path / "x.bin").read_bytes() == b"data"
    assert not list(tmp_path.glob(".*.tmp"))


def test_stray_temporaries_of_a_killed_run_are_removed_by_the_next(run_dir, capsys):
    out = run_dir / "d.safetensors"
    strays = [run_dir / f".{out.name}.abc123.tmp", run_dir / f".{out.name}.ckpt.pt.def456.tmp",
              run_dir / f".{out.name}.log.json.x.tmp"]
    for p in strays:
        p.write_bytes(b"partial")
    other = run_dir / ".other.safetensors.zzz.tmp"  # another output's: not ours to delete
    other.write_bytes(b"x")
    rc, _, err = cli("distill", *BASE, "--meta-epochs", "4", "--out", out, "--resume", capsys=capsys)
    assert rc == 0, err
    assert not any(p.exists() for p in strays) and other.exists()


def test_learner_spec_from_a_file_is_bounded():
    with pytest.raises(ValueError, match="hidden width must be at most"):
        LearnerSpec(hidden=(10**9,))
    assert LearnerSpec(hidden=[64.0, 64]).hidden == (64, 64)  # integral floats from JSON are fine


def test_the_checkpoints_committed_under_results_load(monkeypatch):
    """The checkpoint checks accept every checkpoint this project has committed."""
    from paper_code.project import project_root

    # PPMO's (the compression fits' are checked in test_compress.py)
    files = sorted(f for f in (project_root() / "results").rglob("*.ckpt.pt")  # (PPO teachers and baselines:
                   if not {"compressed", "teachers", "fit", "baselines"} & set(f.parts))  # PPO's; Atari fits: compress's)
    # compress's fits elsewhere (MuJoCo's teacher route and checks: X.fit.safetensors) are compress's too, by their kind
    states = [(f, sd) for f in files if (sd := torch.load(f, weights_only=True)).get("kind") != "compression"]
    if not states:
        pytest.skip("no committed checkpoints")
    for f, sd in states[:: max(1, len(states) // 12)]:  # a spread of cart-pole and MuJoCo runs
        init = sd["config"].get("init_dataset")  # a fine-tune run by hand from its folder names its fit from there
        monkeypatch.chdir(f.parent if init and (f.parent / init).is_file() else project_root())
        run = PPMO(PPMOConfig(**_with_spec_defaults(sd["config"])))
        load_checkpoint(run, f)
        assert run.meta_epoch == sd["meta_epoch"] and math.isfinite(run.wall_time)


# ---------------------------------------------------------------------------------------- 9: issue 44's probes
@pytest.mark.parametrize("command", ["distill", "compress", "ppo"])
def test_resume_with_nothing_to_resume_starts_the_run_and_says_so(tmp_path, capsys, finished, command):
    # a run stopped during its start-up leaves nothing: --resume then starts it (it used to refuse)
    out = tmp_path / "new.safetensors"
    args = {"distill": ["distill", *BASE, "--meta-epochs", "2"],
            "compress": ["compress", finished / "d.safetensors", "--size", "2", "--steps", "3", "--pool", "200",
                         "--batch-states", "50", "--eval-learners", "0", "--quiet"],
            "ppo": ["ppo", "--env", "CartPole-v1", "--total-env-steps", "512", "--eval-every", "0", "--quiet"]}[command]
    rc, stdout, err = cli(*args, "--out", out, "--resume", capsys=capsys)
    assert rc == 0, err
    assert f"no checkpoint {checkpoint_path(out)} to resume from: the run started from the beginning" in stdout
    assert out.is_file() and checkpoint_path(out).is_file()
    rc, stdout, err = cli(*args, "--out", out, "--resume", capsys=capsys)  # now there is one: nothing said
    assert rc == 0 and "to resume from" not in stdout, err


def _signalled_output(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("delay", [0.5, 2.0])
def test_a_signal_during_start_up_is_one_line_and_resume_then_starts(tmp_path, capsys, delay):
    out = tmp_path / "d.safetensors"
    proc = _popen_distill(out, "--meta-epochs", "3")
    time.sleep(delay)  # importing torch, resolving the settings, building the environment
    if out.exists():
        proc.kill()
        pytest.skip("the start-up was over before the signal (a fast machine)")
    proc.send_signal(signal.SIGTERM)
    rc, err = _signalled_output(proc)
    if rc == 0:
        pytest.skip("the run finished before the signal")
    if rc == -signal.SIGTERM:  # a loaded machine: the interpreter had not reached paper_code's first line yet
        pytest.skip("the signal came before Python ran any of paper_code")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 143 and len(lines) == 1 and lines[0].startswith("interrupted (SIGTERM)"), err
    assert "Traceback" not in err
    if not checkpoint_path(out).exists():  # stopped before its first checkpoint: --resume starts it
        rc, stdout, err = cli("distill", *BASE, "--meta-epochs", "3", "--out", out, "--resume", capsys=capsys)
        assert rc == 0 and "the run started from the beginning" in stdout, err


def test_ctrl_c_pressed_again_and_again_ends_without_a_traceback(tmp_path):
    # the first SIGINT stops at a meta-epoch boundary; the ones after it (while the checkpoint is written,
    # while the message is printed, during the interpreter's shutdown) end the process at once, quietly
    out = tmp_path / "d.safetensors"
    proc = _popen_distill(out, "--meta-epochs", "100000", "--checkpoint-every", "0")
    _wait_for(checkpoint_path(out), proc)
    while proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
    rc, err = _signalled_output(proc)
    assert rc == 130 and "Traceback" not in err and "Exception ignored" not in err, err
    assert err.strip().startswith("interrupted ("), err
    DistilledDataset.load(out)  # what was written is complete


def test_a_checkpoint_of_another_pickle_protocol_is_one_error_line(tmp_path):
    out = tmp_path / "d.safetensors"
    torch.save({"states": torch.zeros(2)}, checkpoint_path(out), pickle_protocol=4,
               _use_new_zipfile_serialization=False)  # torch warns about such files before refusing them
    rc, _, err = cli("distill", *BASE, "--meta-epochs", "2", "--out", out, "--resume", subprocess_=True)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err


def _authors_cartpole_file(root: Path) -> Path:
    path = root / "distilled_envs" / "ND_cartpole" / "distiller_sd_1dcp_b4.pt"
    path.parent.mkdir(parents=True)
    torch.save({"x": torch.randn(4, 4), "y": torch.randn(4, 2), "inner_lr": torch.tensor(0.05)}, path)
    return path


def test_import_reference_takes_the_output_lock(tmp_path, capsys):
    # it used to overwrite (with --force) a dataset that a running distill was writing
    out = tmp_path / "d.safetensors"
    src = _authors_cartpole_file(tmp_path / "src")
    run = _popen_distill(out, "--meta-epochs", "100000", "--checkpoint-every", "0")
    try:
        _wait_for(checkpoint_path(out), run)
        rc, _, err = cli("import-reference", src, "--out", out, "--force", capsys=capsys)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and "is being written by another run" in lines[0], err
    finally:
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=60)
    assert DistilledDataset.load(out).provenance.get("method") == "ppmo"  # the run's, not the import's
    rc, _, err = cli("import-reference", src, "--out", out, "--force", capsys=capsys)  # the lock is free again
    assert rc == 0, err


CONFLICTS = [
    (["--preset", "cartpole-nd2", "--env-kwargs", '{"dof": 3}', "--dof", "2"], r"--dof 2 and --env-kwargs \{\"dof\": 3\} disagree"),
    (["--env-kwargs", '{"max_episode_steps": 50}', "--max-episode-steps", "100"], "--max-episode-steps 100 and --env-kwargs"),
    (["--env-kwargs", "null"], "--env-kwargs: not a JSON object"),
    (["--env-kwargs", "[1, 2]"], "--env-kwargs: not a JSON object"),
    (["--learner", '{"kind": "nature_cnn", "split": 4}'], "a Nature-CNN learner needs image observations"),
]


@pytest.mark.parametrize("extra,match", CONFLICTS, ids=[" ".join(a) for a, _ in CONFLICTS])
def test_conflicting_or_impossible_settings_are_refused(tmp_path, capsys, extra, match):
    args = ["distill", "--size", "16", "--eval-every", "0", "--quiet", "--meta-epochs", "2",
            "--out", tmp_path / "new" / "d.safetensors", *extra]
    assert_refused(tmp_path, args, match, capsys)


def test_shorthands_beside_env_kwargs_are_merged(capsys):
    # --max-episode-steps used to be dropped when --env-kwargs was given
    rc, out, err = cli("distill", "--env-kwargs", '{"dof": 3}', "--max-episode-steps", "100", "--print-config",
                       capsys=capsys)
    assert rc == 0 and json.loads(out)["env_kwargs"] == {"dof": 3, "max_episode_steps": 100}, err
    rc, out, err = cli("ppo", "--env", "CartPole-v1", "--env-kwargs", '{"max_episode_steps": 70}', "--print-config",
                       capsys=capsys)
    assert rc == 0 and json.loads(out)["env_kwargs"] == {"max_episode_steps": 70}, err


@pytest.mark.parametrize("value", ["nan", "inf", "-5"])
def test_compress_bad_checkpoint_interval(tmp_path, capsys, finished, value):
    args = ["compress", finished / "d.safetensors", "--size", "2", "--out", tmp_path / "c.safetensors",
            "--checkpoint-every", value]
    assert_refused(tmp_path, args, "checkpoint_every_s must be", capsys)


def test_out_that_is_empty(tmp_path, capsys):
    assert_refused(tmp_path, ["distill", *BASE, "--out", ""], "--out is empty", capsys)


@pytest.mark.parametrize("env_id", ["Ant-v2", "GymV26Environment-v0", "phys2d/CartPole-v1", "tabular/Blackjack-v0"])
def test_an_environment_whose_package_is_missing_is_one_error_line(tmp_path, capsys, env_id):
    try:  # where the optional package is installed, the probe has nothing to refuse
        import gymnasium as gym

        gym.make(env_id).close()
        pytest.skip(f"{env_id} can be made here")
    except Exception:  # noqa: BLE001
        pass
    args = ["distill", "--env", env_id, "--meta-epochs", "1", "--quiet", "--out", tmp_path / "new" / "d.safetensors"]
    assert_refused(tmp_path, args, "needs a package that is not installed here|unsupported|cannot build", capsys)


@pytest.mark.parametrize("kind", ["dataset", "policy"])
def test_compress_with_a_teacher_that_does_not_fit_its_environment(tmp_path, capsys, finished, kind):
    import dataclasses

    from safetensors import safe_open

    bad = tmp_path / "teacher.safetensors"
    if kind == "dataset":  # a 1-D cart-pole set (4 observations, 2 actions) that says Acrobot (6, 3)
        ds = DistilledDataset.load(finished / "d.safetensors")
        dataclasses.replace(ds, env_id="Acrobot-v1", env_kwargs={}).save(bad)
    else:  # a CartPole policy that says Acrobot
        policy = tmp_path / "cartpole.safetensors"
        rc, _, err = cli("ppo", "--env", "CartPole-v1", "--total-env-steps", "512", "--eval-every", "0", "--quiet",
                         "--out", policy, capsys=capsys)
        assert rc == 0, err
        with safe_open(policy, "pt") as f:
            meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
        key = json.loads(meta["key"])
        key["config"]["env_id"] = "Acrobot-v1"
        save_file(tensors, bad, metadata={**meta, "key": json.dumps(key)})
    args = ["compress", bad, "--size", "2", "--steps", "2", "--out", tmp_path / "new" / "c.safetensors"]
    assert_refused(tmp_path, args, "the teacher does not fit Acrobot-v1", capsys)


def test_a_finished_fit_without_its_log_keeps_its_dataset(tmp_path, capsys, finished):
    """A clone of the project has a fit's dataset and checkpoint but not its log (logs are not committed): a re-run
    restores the log, leaves the dataset's bytes as they were and says it wrote nothing (a study that times its
    stages keeps the time of the run that made the file)."""
    out = tmp_path / "c.safetensors"
    args = ["compress", finished / "d.safetensors", "--size", "2", "--steps", "3", "--quiet", "--eval-learners", "0",
            "--out", out]
    rc, stdout, err = cli(*args, capsys=capsys)
    assert rc == 0 and stdout.startswith("wrote"), err
    made, log = out.read_bytes(), log_path(out).read_text()
    log_path(out).unlink()
    rc, stdout, err = cli(*args, capsys=capsys)
    assert rc == 0 and stdout.startswith("up to date") and "wrote" not in stdout, stdout + err
    assert out.read_bytes() == made and log_path(out).read_text() == log


def test_a_replaced_or_deleted_log_is_rewritten_and_said_so(run_dir, capsys):
    out = run_dir / "d.safetensors"
    args = ["distill", *BASE, "--meta-epochs", "3", "--out", out, "--resume"]
    log = json.loads(log_path(out).read_text())
    good = log_path(out).read_text()
    log["history"][0]["lr"] = 123.0  # same rows, other values
    log_path(out).write_text(json.dumps(log))
    rc, stdout, err = cli(*args, capsys=capsys)
    assert rc == 0 and "rewrote its log" in stdout and log_path(out).read_text() == good, err
    log_path(out).unlink()
    rc, stdout, err = cli(*args, capsys=capsys)
    assert rc == 0 and "rewrote its log" in stdout and "nothing to do" not in stdout and log_path(out).read_text() == good
    rc, stdout, err = cli(*args, capsys=capsys)
    assert rc == 0 and "nothing to do" in stdout


def _full_disk(monkeypatch, target, attr: str, call: int) -> None:
    """The ``call``-th call of ``target.attr`` fails as a full disk does: part of the file written, then
    the writer's own error (torch: an "enforce fail at inline_container.cc"; safetensors: SafetensorError)."""
    real, calls = getattr(target, attr), [0]

    class SafetensorError(Exception):
        pass

    def failing(obj, path, *a, **kw):
        calls[0] += 1
        if calls[0] != call:
            return real(obj, path, *a, **kw)
        Path(path).write_bytes(b"half")
        if attr == "save":
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 46592 vs 46480")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(target, attr, failing)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10 << 20, 10 << 20, 0))


@pytest.mark.parametrize("what", ["distill checkpoint", "distill dataset", "compress", "import-reference"])
def test_a_full_disk_is_one_error_line_and_keeps_the_previous_files(tmp_path, capsys, monkeypatch, finished, what):
    from paper_code.runs import checkpoints
    from paper_code.core import dataset

    out = tmp_path / "d.safetensors"
    if what.startswith("distill"):
        _full_disk(monkeypatch, *((checkpoints.torch, "save") if what.endswith("checkpoint") else (dataset, "save_file")), 2)
        args = ["distill", *BASE, "--meta-epochs", "3", "--checkpoint-every", "0", "--out", out]
    elif what == "compress":
        _full_disk(monkeypatch, dataset, "save_file", 1)
        args = ["compress", finished / "d.safetensors", "--size", "2", "--steps", "3", "--pool", "200",
                "--batch-states", "50", "--eval-learners", "0", "--quiet", "--out", out]
    else:
        _full_disk(monkeypatch, dataset, "save_file", 1)
        args = ["import-reference", _authors_cartpole_file(tmp_path / "src"), "--out", out]
    rc, _, err = cli(*args, capsys=capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "no space left on the device" in lines[0], err
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written is left
    if what.startswith("distill"):  # what was written before is complete and resumes (the second
        # checkpoint when only its dataset failed: a --resume writes that dataset)
        ckpt_at = 1 if what.endswith("checkpoint") else 2
        assert torch.load(checkpoint_path(out), weights_only=True)["meta_epoch"] == ckpt_at
        assert DistilledDataset.load(out).provenance["meta_epochs"] == 1
        monkeypatch.undo()
        rc, _, err = cli(*args, "--resume", capsys=capsys)
        assert rc == 0, err


def test_a_reader_that_goes_away_or_a_closed_stdout(tmp_path):
    r = subprocess.run(f"{sys.executable} -m paper_code presets | head -1; exit ${{PIPESTATUS[0]}}", shell=True,
                       executable="/bin/bash", capture_output=True, text=True, timeout=120)
    assert r.returncode == 141 and r.stderr == "" and r.stdout.startswith("preset"), r.stderr
    r = subprocess.run(f"{sys.executable} -m paper_code presets >&-", shell=True, executable="/bin/bash",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: standard output is closed"), r.stderr


def test_a_symlinked_out_writes_its_target(tmp_path, capsys):
    target = tmp_path / "store" / "d.safetensors"
    target.parent.mkdir()
    link = tmp_path / "d.safetensors"
    link.symlink_to(target)
    rc, _, err = cli("distill", *BASE, "--meta-epochs", "2", "--out", link, capsys=capsys)
    assert rc == 0, err
    assert link.is_symlink() and target.is_file() and DistilledDataset.load(link).provenance["meta_epochs"] == 2


def test_a_divergence_in_the_first_meta_epoch_leaves_nothing_and_resume_then_starts(tmp_path, monkeypatch, reference):
    # `--dataset-lr 1000` once diverged in meta-epoch 1 leaving a checkpoint no --resume could load and no
    # dataset beside it: now nothing is written, and --resume (with the option fixed) starts the run
    out = tmp_path / "d.safetensors"
    step = PPMO.meta_epoch_step

    def poisoned(self):
        with torch.no_grad():
            self.log_lr.fill_(-451.0)
        return step(self)

    with monkeypatch.context() as m:
        m.setattr(PPMO, "meta_epoch_step", poisoned)
        with pytest.raises(DivergenceError, match="training diverged in meta-epoch 1: the inner learning rate "
                                                  "underflowed to 0.*nothing was written"):
            distill(PPMOConfig(**TINY), out, META_EPOCHS, progress=False, checkpoint_every_s=0)
    assert not out.exists() and not checkpoint_path(out).exists() and not log_path(out).exists()
    distill(PPMOConfig(**TINY), out, META_EPOCHS, resume=True, progress=False, checkpoint_every_s=0)
    assert_same_dataset(out, reference)


def test_bad_input_under_torchrun_is_said_once(tmp_path):
    # every rank meets the same bad input: rank 0 says it (torchrun then prints its own failure summary)
    out = tmp_path / "d.safetensors"
    out.write_bytes(b"a file without a checkpoint")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "paper_code",
           "distill", *BASE, "--meta-epochs", "2", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    ours = [ln for ln in r.stderr.splitlines() if ln.startswith("error")]
    assert r.returncode != 0 and len(ours) == 1 and "exists and has no checkpoint" in ours[0], r.stderr[-3000:]
    assert "paper_code/" not in r.stderr, r.stderr[-3000:]  # no traceback of ours (torchrun prints its own)


def test_dagger_rounds_with_an_atari_teacher_is_one_error_line(tmp_path, capsys):
    from paper_code.project import project_root

    teacher = project_root() / "results" / "atari" / "teachers" / "ppo_SpaceInvaders.safetensors"
    args = ["compress", teacher, "--size", "4", "--split", "3", "--dagger-rounds", "1", "--out", tmp_path / "x.safetensors"]
    assert_refused(tmp_path, args, "dagger_rounds applies to MLP students", capsys)
