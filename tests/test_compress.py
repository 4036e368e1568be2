"""``compress``: a small fit lowers the KL to the teacher and writes a valid dataset; a Gaussian
teacher's frozen observation statistics become the dataset's; bad teacher files are one error line."""

from __future__ import annotations

import torch
from safetensors.torch import load_file, save_file

from paper_code.__main__ import main
from paper_code.compress import compress, load_teacher
from paper_code.config import project_root
from paper_code.dataset import DistilledDataset

RESULTS = project_root() / "results"
SMALL = dict(inits=2, batch_states=256, pool=512, seed=0, progress=False)


def test_a_small_fit_lowers_the_kl_and_writes_a_valid_dataset(tmp_path):
    teacher = load_teacher(RESULTS / "cartpole" / "datasets" / "nd2_b512.safetensors")
    result = compress(teacher, 3, steps=40, **SMALL)
    kl = [h["kl"] for h in result.history]
    assert sum(kl[-5:]) / 5 < 0.8 * sum(kl[:5]) / 5, kl
    path = result.dataset.save(tmp_path / "d.safetensors")
    ds = DistilledDataset.load(path)
    assert ds.size == 3 and ds.env_kwargs == {"dof": 2} and ds.provenance["teacher_kind"] == "dataset"
    assert ds.provenance["settings"]["steps"] == 40


def test_a_gaussian_policy_teacher_keeps_its_frozen_normalisation(tmp_path):
    path = RESULTS / "mujoco" / "baselines" / "ppo_Hopper-v5.safetensors"
    teacher = load_teacher(path)
    assert teacher.kind == "policy" and teacher.gaussian
    ds = compress(teacher, 4, steps=3, **SMALL).dataset
    saved = load_file(str(path))
    assert ds.normalization is not None and ds.label_kind == "gaussian_mse" and tuple(ds.log_std.shape) == (3,)
    assert torch.equal(ds.extra["obs_mean"], saved["__obs_mean"]) and torch.equal(ds.extra["obs_var"], saved["__obs_var"])
    DistilledDataset.load(ds.save(tmp_path / "h.safetensors"))


def _refused(capsys, *args) -> str:
    rc = main(["compress", *map(str, args), "--quiet"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_teachers_are_one_error_line(tmp_path, capsys):
    out = tmp_path / "d.safetensors"
    assert "no such file" in _refused(capsys, tmp_path / "missing.safetensors", "--size", 2, "--out", out)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    assert "not a readable safetensors file" in _refused(capsys, junk, "--size", 2, "--out", out)
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare), metadata={"key": "{}"})
    assert "configuration" in _refused(capsys, bare, "--size", 2, "--out", out)
    teacher = RESULTS / "cartpole" / "datasets" / "nd1_b512.safetensors"
    assert "size must be" in _refused(capsys, teacher, "--size", 0, "--out", out)
    assert not out.exists()
