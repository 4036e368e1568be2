"""``compress``: a small fit lowers the KL and writes a valid dataset; a Gaussian teacher's frozen
observation statistics become the dataset's; a fit resumed from its checkpoint equals an
uninterrupted one; ``--finetune`` continues with PPMO from the fitted dataset (a warm start); bad
teacher files and mismatched warm starts are one error line."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from paper_code.__main__ import main
from paper_code.core.compress import Compression, load_teacher
from paper_code.runs.training import compress_file, fit_path
from paper_code.core.dataset import DistilledDataset
from paper_code.core.ppmo import PPMO
from paper_code.core.settings import CompressConfig
from paper_code.project import project_root
from paper_code.pipeline.presets import resolve

RESULTS = project_root() / "results"
SMALL = dict(inits=2, batch_states=256, pool=512, seed=0)
ND2 = RESULTS / "cartpole" / "datasets" / "nd2_b512.safetensors"


def _fit(teacher, steps: int, size: int = 3) -> Compression:
    comp = Compression(teacher, CompressConfig(size=size, steps=steps, **SMALL))
    for _ in range(steps):
        comp.step()
    return comp


def test_a_small_fit_lowers_the_kl_and_writes_a_valid_dataset(tmp_path):
    comp = _fit(load_teacher(ND2), 40)
    kl = [h["kl"] for h in comp.history]
    assert sum(kl[-5:]) / 5 < 0.8 * sum(kl[:5]) / 5, kl
    path = comp.dataset().save(tmp_path / "d.safetensors")
    ds = DistilledDataset.load(path)
    assert ds.size == 3 and ds.env_kwargs == {"dof": 2} and ds.provenance["teacher_kind"] == "dataset"
    assert ds.provenance["settings"]["steps"] == 40 and ds.provenance["teacher"].endswith("nd2_b512.safetensors")


def test_a_gaussian_policy_teacher_keeps_its_frozen_normalisation_and_the_presets_coordinates(tmp_path):
    path = RESULTS / "mujoco" / "baselines" / "ppo_InvertedDoublePendulum-v5.safetensors"
    teacher = load_teacher(path)
    assert teacher.kind == "policy" and teacher.gaussian
    ds = _fit(teacher, 3, size=4).dataset()
    saved = load_file(str(path))
    preset = resolve("mujoco-InvertedDoublePendulum-v5")  # obs_scale 0.3, state_bound 0.25
    assert ds.normalization["scale"] == preset.obs_scale and ds.states.abs().max() <= preset.state_bound
    assert ds.label_kind == "gaussian_mse" and tuple(ds.log_std.shape) == (1,)
    assert torch.equal(ds.extra["obs_mean"], saved["__obs_mean"]) and torch.equal(ds.extra["obs_var"], saved["__obs_var"])
    DistilledDataset.load(ds.save(tmp_path / "h.safetensors"))


def test_a_fit_in_its_own_coordinates_records_them_and_its_fine_tune_follows(tmp_path):
    # Hopper's preset: obs_scale 1, no bound; the fit sets 0.3 and 0.5, the PPMO fine-tune continues in them
    from paper_code.pipeline.presets import finetune_config

    cfg = CompressConfig(size=4, steps=2, obs_scale=0.3, state_bound=0.5, **SMALL)
    path = tmp_path / "h.safetensors"
    compress_file(RESULTS / "mujoco" / "baselines" / "ppo_Hopper-v5.safetensors", path, cfg, progress=False)
    ds = DistilledDataset.load(path)
    assert ds.normalization["scale"] == 0.3 and ds.states.abs().max() <= 0.5 and ds.provenance["state_bound"] == 0.5
    assert ds.provenance["settings"]["obs_scale"] == 0.3  # the provenance reproduces the fit
    ft = finetune_config(path, seed=0)
    assert (ft.obs_scale, ft.state_bound) == (0.3, 0.5) and (resolve("mujoco-Hopper-v5").obs_scale, resolve(
        "mujoco-Hopper-v5").state_bound) == (1.0, None)
    PPMO(ft)  # the warm start fits the run
    plain = CompressConfig(size=4, steps=1, **SMALL)
    assert "obs_scale" not in plain.to_dict()  # committed fits' settings keep their keys
    with pytest.raises(ValueError, match="dataset teacher"):
        Compression(load_teacher(ND2), CompressConfig(size=2, steps=1, obs_scale=0.3, **SMALL))


def test_a_resumed_fit_equals_an_uninterrupted_one(tmp_path):
    cfg = CompressConfig(size=2, steps=8, **SMALL)
    whole = compress_file(ND2, tmp_path / "whole.safetensors", cfg, progress=False)
    part = tmp_path / "part.safetensors"
    compress_file(ND2, part, CompressConfig(size=2, steps=5, **SMALL), progress=False)
    with pytest.raises(FileExistsError, match="unfinished fit"):
        compress_file(ND2, part, cfg, progress=False)
    resumed = compress_file(ND2, part, cfg, resume=True, progress=False)
    assert resumed.step_count == 8 and [h["kl"] for h in resumed.history] == [h["kl"] for h in whole.history]
    a, b = DistilledDataset.load(part), DistilledDataset.load(tmp_path / "whole.safetensors")
    assert torch.equal(a.states, b.states) and torch.equal(a.labels, b.labels) and torch.equal(a.lr, b.lr)
    again = compress_file(ND2, part, cfg, progress=False)  # finished: nothing to do
    assert not again.files_written
    log = json.loads((tmp_path / "part.safetensors.log.json").read_text())
    assert len(log["history"]) == 8


def test_finetune_continues_with_ppmo_from_the_fitted_dataset(tmp_path, capsys):
    out = tmp_path / "ft.safetensors"
    teacher = RESULTS / "cartpole" / "baselines" / "ppo_nd1.safetensors"
    assert main(["compress", str(teacher), "--size", "2", "--out", str(out), "--steps", "3", "--pool", "256",
                 "--batch-states", "64", "--inits", "2", "--finetune", "2", "--quiet"]) == 0
    fit = DistilledDataset.load(fit_path(out))
    tuned = DistilledDataset.load(out)
    assert tuned.provenance["method"] == "ppmo" and tuned.provenance["meta_epochs"] == 2
    assert tuned.provenance["config"]["init_dataset"] == str(fit_path(out)) and tuned.size == 2
    # meta-epoch 0 of the warm-started run is the fitted dataset
    run = PPMO(resolve("cartpole-nd1-b2", init_dataset=str(fit_path(out))))
    start = run.dataset()
    assert torch.equal(start.states, fit.states) and torch.equal(start.labels, fit.labels)
    assert torch.allclose(start.lr, fit.lr)
    assert not torch.equal(tuned.states, fit.states)  # PPMO moved it


def test_the_fine_tunes_entropy_bonus_is_its_own_and_the_fit_is_shared(tmp_path, capsys):
    # Walker2d's preset has an entropy bonus of 0.01; --finetune-ent-coef 0 fine-tunes without it from the same fit
    teacher = RESULTS / "mujoco" / "baselines" / "ppo_Walker2d-v5.safetensors"
    args = ["compress", str(teacher), "--size", "2", "--steps", "2", "--pool", "256", "--batch-states", "64",
            "--inits", "2", "--finetune", "1", "--quiet", "--eval-learners", "0"]
    preset, own = tmp_path / "preset.safetensors", tmp_path / "own.safetensors"
    assert main([*args, "--out", str(preset)]) == 0 and main([*args, "--finetune-ent-coef", "0", "--out", str(own)]) == 0
    assert DistilledDataset.load(preset).provenance["config"]["ent_coef"] == resolve("mujoco-Walker2d-v5").ent_coef == 0.01
    assert DistilledDataset.load(own).provenance["config"]["ent_coef"] == 0.0
    a, b = DistilledDataset.load(fit_path(preset)), DistilledDataset.load(fit_path(own))
    assert torch.equal(a.states, b.states) and "finetune_ent_coef" not in a.provenance["settings"]  # the same fit
    capsys.readouterr()
    # the fit continues under another fine-tune setting; the fine-tune's run does not
    assert "ent_coef" in _refused(capsys, "compress", *args[1:], "--finetune-ent-coef", "0", "--out", preset)
    with pytest.raises(ValueError, match="finetune_ent_coef"):
        CompressConfig(size=2, finetune_ent_coef=-1.0)


def _refused(capsys, command, *args) -> str:
    rc = main([command, *map(str, args), "--quiet"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_teachers_are_one_error_line(tmp_path, capsys):
    out = tmp_path / "d.safetensors"
    assert "no such file" in _refused(capsys, "compress", tmp_path / "missing.safetensors", "--size", 2, "--out", out)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    assert "not a readable safetensors file" in _refused(capsys, "compress", junk, "--size", 2, "--out", out)
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare), metadata={"key": "{}"})
    assert "configuration" in _refused(capsys, "compress", bare, "--size", 2, "--out", out)
    teacher = RESULTS / "cartpole" / "datasets" / "nd1_b512.safetensors"
    assert "size must be" in _refused(capsys, "compress", teacher, "--size", 0, "--out", out)
    assert "--size is required" in _refused(capsys, "compress", teacher, "--out", out)
    assert not out.exists()


def test_a_warm_start_that_does_not_fit_the_run_is_one_error_line(tmp_path, capsys):
    small = RESULTS / "cartpole" / "datasets" / "nd1_b512.safetensors"
    msg = _refused(capsys, "distill", "--preset", "cartpole-nd2", "--init-dataset", small, "--meta-epochs", 1,
                   "--out", tmp_path / "x.safetensors")
    assert "init_dataset" in msg and "was made for" in msg
    assert "no such file" in _refused(capsys, "distill", "--preset", "cartpole-nd1", "--init-dataset",
                                      tmp_path / "none.safetensors", "--meta-epochs", 1, "--out", tmp_path / "y.safetensors")


def test_the_published_minimal_datasets_are_the_pipelines_compressed_fits():
    from paper_code.pipeline.config import load_scale
    from paper_code.pipeline.layout import compressed_path, minimal_dataset_path
    from paper_code.pipeline.experiments import compression_config

    paper = load_scale("paper")
    section = paper["minimal"]["compression"]
    published = [n for n in paper["minimal"]["dofs"] if minimal_dataset_path(RESULTS, n).exists()]
    if not published:
        pytest.skip("no published minimal datasets in this checkout")
    for n in published:
        path = minimal_dataset_path(RESULTS, n)
        src = compressed_path(RESULTS, section["minimal_teacher"], f"nd{n}", n + 1)
        assert path.read_bytes() == src.read_bytes(), path
        ds = DistilledDataset.load(path)
        assert ds.size == n + 1 and ds.env_kwargs == {"dof": n}
        assert ds.provenance["settings"] == compression_config(section, n + 1).to_dict()
        teacher = project_root() / ds.provenance["teacher"]
        assert teacher.is_file() and ds.provenance["teacher_sha256"] == load_teacher(teacher).sha256


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_mid_fit_stops_at_a_step_boundary_and_resume_equals_an_uninterrupted_fit(tmp_path, monkeypatch, sig):
    import os
    import signal

    from paper_code.runs.interrupts import RunInterrupted

    signum = getattr(signal, sig)
    cfg = CompressConfig(size=2, steps=6, **SMALL)
    whole = compress_file(ND2, tmp_path / "whole.safetensors", cfg, progress=False)
    out = tmp_path / "cut.safetensors"
    original, calls = Compression.step, {"n": 0}

    def step(self):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signum)
        return original(self)

    # Ctrl-C's default handler, even where pytest was started in the background (SIGINT then ignored)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with monkeypatch.context() as m:
            m.setattr(Compression, "step", step)
            with pytest.raises(RunInterrupted) as info:
                compress_file(ND2, out, cfg, progress=False)
        restored = {s: signal.getsignal(s) for s in handlers}
    finally:
        signal.signal(signal.SIGINT, before)
    assert info.value.exit_code == 128 + signum and info.value.meta_epoch == 3
    assert restored == handlers
    assert DistilledDataset.load(out).provenance["steps"] == 3  # the dataset of the boundary it stopped at
    resumed = compress_file(ND2, out, cfg, resume=True, progress=False)
    assert [h["kl"] for h in resumed.history] == [h["kl"] for h in whole.history]
    assert torch.equal(DistilledDataset.load(out).states, DistilledDataset.load(tmp_path / "whole.safetensors").states)


def test_a_wrong_or_damaged_checkpoint_is_one_error_line(tmp_path, capsys):
    out = tmp_path / "d.safetensors"
    args = [ND2, "--size", 2, "--out", out, "--steps", 2, "--pool", 256, "--batch-states", 64, "--inits", 2]
    assert main(["compress", *map(str, args), "--quiet"]) == 0
    capsys.readouterr()
    assert "other settings" in _refused(capsys, "compress", *args[:-2], "--inits", 3, "--resume")
    other = RESULTS / "cartpole" / "datasets" / "nd3_b512.safetensors"
    assert "another teacher" in _refused(capsys, "compress", other, *args[1:], "--resume")
    (tmp_path / "d.safetensors.ckpt.pt").write_bytes(b"junk")
    assert "not a readable checkpoint" in _refused(capsys, "compress", *args, "--resume")
    assert "resume continues" in _refused(capsys, "compress", *args, "--resume", "--force")


def test_the_committed_compression_checkpoints_load():
    from paper_code.runs.checkpoints import read_checkpoint

    files = sorted((RESULTS / "cartpole" / "datasets" / "compressed").rglob("*.ckpt.pt"))
    if not files:
        pytest.skip("no committed compression fits")
    for f in files[:: max(1, len(files) // 3)]:
        out = f.with_name(f.name.removesuffix(".ckpt.pt"))
        ds = DistilledDataset.load(out)
        comp = Compression(load_teacher(project_root() / ds.provenance["teacher"]), CompressConfig(**ds.provenance["settings"]))
        comp.load_state_dict(read_checkpoint(f), str(f))
        assert comp.step_count == ds.provenance["steps"] and torch.equal(comp.x.detach(), ds.states)


def test_dagger_rounds_add_the_one_step_learners_own_states_and_a_resumed_fit_equals_an_uninterrupted_one():
    teacher = load_teacher(ND2)
    cfg = CompressConfig(size=3, steps=6, dagger_rounds=2, dagger_states=128, **SMALL)
    whole = Compression(teacher, cfg)
    base = len(whole.pool)
    for _ in range(6):
        whole.step()
    assert [len(d) for d in whole.dagger] == [128, 128] and len(whole.pool) == base + 256  # rounds at steps 2 and 4
    assert not torch.equal(whole.dagger[0], whole.dagger[1])  # the set changed between the rounds
    assert whole.dataset().provenance["dagger_states_added"] == 256
    assert whole.dataset().provenance["env_steps"] == base + 256
    cut = Compression(teacher, cfg)
    for _ in range(3):  # past the first round
        cut.step()
    resumed = Compression(load_teacher(ND2), cfg)
    resumed.load_state_dict(cut.state_dict(), "checkpoint")
    assert len(resumed.pool) == base + 128
    for _ in range(3):
        resumed.step()
    assert [h["kl"] for h in resumed.history] == [h["kl"] for h in whole.history]
    assert torch.equal(resumed.x, whole.x) and torch.equal(resumed.pool, whole.pool)
    plain = Compression(teacher, CompressConfig(size=3, steps=6, **SMALL))
    assert "dagger" not in plain.state_dict() and "dagger_rounds" not in plain.cfg.to_dict()  # old checkpoints stay valid


def test_a_dataset_teachers_learners_step_once_per_collection_and_visit_the_same_states():
    """A dataset teacher's (and a DAgger round's) fresh learners are fixed for a whole collection: ``visited_states``
    takes their inner step once; the states are those of stepping them at every env step (the old path)."""
    from dataclasses import replace

    from paper_code.core import compress

    teacher = load_teacher(ND2)
    calls = []
    counted = replace(teacher, one_step=lambda th: calls.append(1) or teacher.one_step(th))
    once = compress.visited_states(counted, 300, seed=3, num_envs=16)
    every = compress.visited_states(replace(teacher, one_step=None), 300, seed=3, num_envs=16)
    assert len(calls) == 1 and once.shape[0] == 300
    assert torch.equal(once, every)
    gaussian = load_teacher(RESULTS / "own_task" / "Pendulum-v1" / "set.safetensors")  # sampled with the stepped log-std
    assert torch.equal(compress.visited_states(gaussian, 100, seed=1, num_envs=8),
                       compress.visited_states(replace(gaussian, one_step=None), 100, seed=1, num_envs=8))
    fit = _fit(teacher, 2)
    student = fit._student()
    assert student.one_step is not None
    assert torch.equal(compress.visited_states(student, 200, seed=5),
                       compress.visited_states(replace(student, one_step=None), 200, seed=5))


def test_a_fourier_student_is_fitted_recorded_in_the_set_and_fine_tuned_as_itself(tmp_path, capsys):
    """``--student fourier``: the set is fitted for a wide cos layer (not the teacher's 64-64 tanh), its file records
    that learner, the fine-tune runs PPMO for it, and settings that do not apply are one error line."""
    teacher = RESULTS / "own_task" / "Pendulum-v1" / "teacher.safetensors"
    out = tmp_path / "f.safetensors"
    args = ["compress", str(teacher), "--size", "4", "--steps", "3", "--pool", "256", "--batch-states", "64",
            "--inits", "2", "--eval-learners", "0", "--quiet"]
    assert main([*args, "--student", "fourier", "--student-width", "96", "--student-sigma", "0.5", "--finetune", "1",
                 "--out", str(out)]) == 0
    fit, tuned = DistilledDataset.load(fit_path(out)), DistilledDataset.load(out)
    assert fit.learner.hidden == (96,) and fit.learner.activation == "cos" and fit.learner.init == "fourier"
    assert fit.learner.hidden_gain == 0.5 and fit.learner.policy == "gaussian"
    assert fit.provenance["settings"]["student"] == "fourier" and fit.provenance["settings"]["student_width"] == 96
    assert tuned.learner == fit.learner and tuned.provenance["config"]["learner"]["hidden"] == [96]
    assert abs(float(Compression(load_teacher(teacher), CompressConfig(size=2, student="fourier", **SMALL)).log_lr.detach().exp())
               - 0.01) < 1e-9  # the Fourier student's starting lr, not the MLP students' 1
    plain = tmp_path / "plain.safetensors"
    assert main([*args, "--out", str(plain)]) == 0
    assert DistilledDataset.load(plain).learner == load_teacher(teacher).learner  # default: the teacher's network
    assert "student" not in DistilledDataset.load(plain).provenance["settings"]  # earlier fits' settings unchanged
    capsys.readouterr()
    assert "--student-width and --student-sigma apply to --student fourier" in _refused(
        capsys, *args[:2], "--size", 2, "--student-width", 64, "--out", tmp_path / "a.safetensors")
    assert "unknown --student" in _refused(capsys, *args[:2], "--size", 2, "--student", "rbf", "--out", tmp_path / "b.safetensors")
    assert "needs a policy teacher" in _refused(capsys, "compress", ND2, "--size", 2, "--student", "fourier",
                                                "--out", tmp_path / "c.safetensors")
