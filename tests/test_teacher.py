"""The PPO teacher (``python -m paper_code ppo``) and ``compress`` through a Nature-CNN encoder split
(issue 39): the Atari agent's shape, the run lifecycle, and a fit that moves towards its teacher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from paper_code.core.compress import FrameCompression, load_teacher
from paper_code.pipeline.presets import finetune_config
from paper_code.core.dataset import DistilledDataset
from paper_code.core.learners import LearnerSpec, init_params
from paper_code.core.ppo import PPO, PPOResult, save_policy
from paper_code.core.settings import CompressConfig, PPOConfig
from paper_code.pipeline.presets import atari_learner, resolve_ppo
from paper_code.runs.training import checkpoint_path, compress_file, log_path, ppo_file

TINY_ATARI = dict(num_envs=2, num_steps=16, minibatch_size=16, update_epochs=1, env_kwargs={"max_episode_steps": 50})


def test_atari_ppo_is_cleanrls_agent_and_trains():
    """The Atari preset is CleanRL's ppo_atari.py; the agent is one Nature-CNN trunk with the policy
    head c4 and a value head v; an iteration changes every parameter and clips the rewards."""
    cfg = resolve_ppo("atari-Breakout", **TINY_ATARI)
    full = resolve_ppo("atari-Breakout")
    assert (full.num_envs, full.num_steps, full.update_epochs, full.minibatch_size, full.lr, full.anneal_lr,
            full.clip_coef, full.ent_coef, full.clip_rewards) == (8, 128, 4, 256, 2.5e-4, True, 0.1, 0.01, True)
    assert full.env_kwargs == {"max_episode_steps": 3000} and full.learner == atari_learner(0)
    run = PPO(cfg, 64)
    assert sorted(run.actor) == [f"c{i}.{p}" for i in range(5) for p in ("bias", "weight")]
    assert sorted(run.critic) == ["v.bias", "v.weight"] and run.critic["v.weight"].shape == (1, 512)
    before = {k: v.detach().clone() for k, v in {**run.actor, **run.critic}.items()}
    row = run.step()
    assert row["env_steps"] == 32 and all(not torch.equal(before[k], v) for k, v in {**run.actor, **run.critic}.items())
    x = torch.rand(3, 4, 84, 84)
    out, v = run.heads(x)
    assert out.shape == (3, 4) and v.shape == (3,) and torch.allclose(v, run.value(x))
    assert full.clip_vloss and full.life_loss_terminal  # CleanRL's clipped value loss and EpisodicLifeEnv signal
    from paper_code.core.ppo import _cache_key

    key = json.loads(_cache_key(PPOConfig(), 64))["config"]  # off by default: earlier baselines' files stay valid
    assert "clip_vloss" not in key and "life_loss_terminal" not in key and "clip_rewards" not in key


def test_ppo_file_lifecycle_resume_and_policy_file(tmp_path):
    """The command's lifecycle: evaluations on schedule, a finished run is up to date, an
    unfinished checkpoint needs --resume, --resume finishes it; the file is a compress teacher."""
    out = tmp_path / "t.safetensors"
    cfg = PPOConfig(num_envs=2, num_steps=32, minibatch_size=32, update_epochs=1)
    run = ppo_file(cfg, out, 64 * 6, progress=False, eval_every=2, eval_episodes=2, checkpoint_every_s=0)
    assert run.iteration == 6 and [e["iteration"] for e in run.evals] == [2, 4, 6] and run.files_written
    log = json.loads(log_path(out).read_text())
    assert len(log["history"]) == 6 and len(log["evals"]) == 3
    again = ppo_file(cfg, out, 64 * 6, progress=False, eval_every=2, eval_episodes=2)
    assert not again.files_written and again.iteration == 6
    teacher = load_teacher(out)
    assert teacher.kind == "policy" and teacher.cost["env_steps"] == 384 and "wall_time_s" in teacher.cost
    # an unfinished run: its checkpoint (iteration 3 of 12) needs --resume, which completes it
    ck = PPO(cfg, 64 * 12)
    ck.step(), ck.step(), ck.step()
    torch.save(ck.state_dict(), checkpoint_path(out))
    with pytest.raises(FileExistsError, match="unfinished run"):
        ppo_file(cfg, out, 64 * 12, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        ppo_file(PPOConfig(num_envs=2, num_steps=32, minibatch_size=32, update_epochs=2), out, 64 * 12, resume=True,
                 progress=False)
    done = ppo_file(cfg, out, 64 * 12, resume=True, progress=False, eval_every=0)
    assert done.iteration == 12 and [r["iteration"] for r in done.history] == list(range(1, 13))


@pytest.mark.skipif(sys.platform != "linux", reason="signals")
def test_ppo_command_stops_at_an_iteration_boundary_and_resumes(tmp_path):
    out = tmp_path / "p.safetensors"
    cmd = [sys.executable, "-m", "paper_code", "ppo", "--env", "CartPole-v1", "--out", str(out), "--total-env-steps",
           "3000000", "--eval-every", "0", "--checkpoint-every", "1000", "--quiet"]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 60
    while not (tmp_path / "p.safetensors.lock").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "interrupted (SIGTERM) at iteration" in err and "and policy file written" in err
    sd = torch.load(checkpoint_path(out), weights_only=True)
    assert 0 < sd["iteration"] < 5859 and len(sd["history"]) == sd["iteration"] and out.is_file()
    r = subprocess.run(cmd[:-5] + ["--quiet"], capture_output=True, text=True)
    assert r.returncode == 2 and "continue it with --resume" in r.stderr


def _cnn_teacher(path, game="Breakout", gain=3.0):
    """A Nature-CNN policy file whose logits vary with the frame (a large output gain)."""
    cfg = resolve_ppo(f"atari-{game}", **TINY_ATARI)
    g = torch.Generator().manual_seed(1)
    actor = init_params(LearnerSpec(kind="nature_cnn", activation="relu", output_gain=gain), (4, 84, 84), 4, g)
    save_policy(PPOResult(actor, []), cfg, 32, path)
    return path


@pytest.mark.parametrize("split", [4, 3])
def test_compress_fits_a_cnn_teacher_through_the_encoder_split(tmp_path, split):
    """Image-space instances, labels, lr and the encoder (started from the teacher's first l layers)
    are fitted so that one-step learners move towards the teacher: the KL falls, the dataset file has
    the encoder and evaluates; encoder_lr 0 keeps the teacher's layers."""
    teacher = _cnn_teacher(tmp_path / "t.safetensors")
    cfg = CompressConfig(size=4, steps=25, inits=2, batch_states=64, pool=256, split=split, adam_lr=0.03)
    comp = compress_file(teacher, tmp_path / "s.safetensors", cfg, progress=False)
    assert isinstance(comp, FrameCompression)
    kl = [r["kl"] for r in comp.history]
    assert sum(kl[-5:]) < 0.7 * sum(kl[:5])
    ds = DistilledDataset.load(tmp_path / "s.safetensors")
    t = load_teacher(teacher)
    assert ds.learner == atari_learner(split) and ds.states.shape == (4, 4, 84, 84) and ds.normalization is None
    assert sorted(ds.encoder) == sorted(f"c{i}.{p}" for i in range(split) for p in ("weight", "bias"))
    assert not torch.equal(ds.encoder["c0.weight"], t.params["c0.weight"])  # fitted with the dataset
    assert 0 <= float(ds.states.min()) and float(ds.states.max()) <= 1
    frozen = compress_file(teacher, tmp_path / "f.safetensors", CompressConfig(**{**cfg.to_dict(), "encoder_lr": 0.0,
                                                                                  "steps": 2}), progress=False)
    assert all(torch.equal(v, t.params[k]) for k, v in frozen.encoder.items())
    from paper_code.core.evaluation import evaluate_dataset

    r = evaluate_dataset(ds, learners=2, episodes=1)
    assert r.returns.shape == (2, 1)


def test_a_fitted_atari_set_warm_starts_ppmo_with_its_encoder(tmp_path):
    from paper_code.core.ppmo import PPMO

    teacher = _cnn_teacher(tmp_path / "t.safetensors")
    compress_file(teacher, tmp_path / "s.safetensors", CompressConfig(size=4, steps=2, inits=2, batch_states=32,
                                                                     pool=64, split=3), progress=False)
    cfg = finetune_config(tmp_path / "s.safetensors", seed=0, num_envs=2, num_steps=8, minibatch_size=8, eval_every=0)
    assert cfg.learner == atari_learner(3) and not cfg.normalize_obs and cfg.size == 4
    run = PPMO(cfg)
    ds = DistilledDataset.load(tmp_path / "s.safetensors")
    assert torch.equal(run.states.detach(), ds.states) and torch.equal(run.labels.detach(), ds.labels)
    assert all(torch.equal(run.encoder[k].detach(), v) for k, v in ds.encoder.items())


@pytest.mark.parametrize("args, match", [
    ([], "give --env"),
    (["--env", "Nope-v0", "--out", "x.safetensors"], "unknown environment"),
    (["--env", "CartPole-v1", "--total-env-steps", "0", "--out", "x.safetensors"], "total_env_steps"),
    (["--preset", "atari-Nope", "--out", "x.safetensors"], "no PPO baseline preset"),
    (["--env", "CartPole-v1"], "--out is required"),
    (["--env", "ALE/Pong-v5", "--env-kwargs", '{"frameskip": 1}', "--out", "x.safetensors"], "takes env_kwargs"),
    (["--env", "CartPole-v1", "--eval-every", "-1", "--out", "x.safetensors"], "eval_every"),
])
def test_ppo_command_refuses_bad_input_in_one_line(args, match, capsys, tmp_path, monkeypatch):
    from paper_code.__main__ import main

    monkeypatch.chdir(tmp_path)
    rc = main(["ppo", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and match in err[0], err
    assert not list(tmp_path.iterdir())  # nothing written


def test_movement_and_issue_39s_test_of_a_game_and_split():
    """``movement``: RMS changes, relative ones only where the start is not 0, the lr as a ratio, the
    encoder relative to its norm. ``teacher_bar``: the best method's CI lower end against the best
    constant action and its replay, or 80% of a teacher that does not beat the constant action."""
    from paper_code.core.dataset import movement
    from paper_code.pipeline.state_dependence import teacher_bar

    start = {"states": torch.ones(2, 3), "labels": torch.zeros(2, 2), "log_lr": torch.tensor(0.0),
             "encoder.c0.weight": torch.full((4,), 2.0)}
    now = {"states": torch.full((2, 3), 1.5), "labels": torch.full((2, 2), -2.0), "log_lr": torch.tensor(0.6931472),
           "encoder.c0.weight": torch.full((4,), 3.0)}
    m = movement(start, now)
    assert m == {"states_rms_change": 0.5, "states_rel_change": 0.5, "labels_rms_change": 2.0, "lr_ratio": 2.0,
                 "encoder_rel_change": 0.5}

    def row(method, mean, low, replayed, const=100.0):
        return {"method": method, "sampled mean": mean, "sampled CI low": low, "replayed mean": replayed,
                "best constant return": const, "clears constant and replay": low > max(const, replayed)}

    rows = [row("PPMO alone", 90, 80, 70), row("fit", 150, 120, 90), row("fit + fine-tune", 140, 130, 95)]
    v = teacher_bar(rows, teacher_sampled=300)
    assert v["met"] and v["best method"] == "fit" and v["margin"] == 20  # the best by its mean, not by its CI
    assert not teacher_bar([row("fit", 150, 95, 90)], teacher_sampled=300)["met"]  # CI low under the constant action
    assert not teacher_bar([row("fit", 150, 110, 115)], teacher_sampled=300)["met"]  # CI low under its replay
    low_teacher = teacher_bar([row("fit", 85, 75, 60)], teacher_sampled=100)  # the teacher does not beat 100
    assert low_teacher["met"] and "80%" in low_teacher["rule"]
    assert not teacher_bar([row("fit", 75, 70, 60)], teacher_sampled=100)["met"]  # under 80% of the teacher


def test_split_is_refused_for_an_mlp_teacher(tmp_path):
    teacher = tmp_path / "t.safetensors"
    ppo_file(PPOConfig(num_envs=2, num_steps=16, minibatch_size=16, update_epochs=1), teacher, 32, progress=False)
    with pytest.raises(ValueError, match="split applies to Nature-CNN"):
        compress_file(teacher, tmp_path / "s.safetensors", CompressConfig(size=2, steps=1, split=3), progress=False)
    assert not (tmp_path / "s.safetensors").exists()


def test_the_committed_teacher_checkpoints_load():
    """An unfinished PPO teacher (or evaluated baseline) under results/ resumes: its checkpoint loads into the run
    its key describes."""
    from paper_code.project import project_root
    from paper_code.core.ppo import policy_config

    results = project_root() / "results"
    files = sorted([*results.rglob("teachers/*.ckpt.pt"), *results.rglob("baselines/*_evaluated.safetensors.ckpt.pt")])
    if not files:
        pytest.skip("no committed teacher checkpoints")
    for f in files:
        sd = torch.load(f, weights_only=True)
        key = json.loads(sd["config"])
        run = PPO(policy_config({"key": sd["config"]}), key["total_env_steps"])
        run.load_state_dict(sd, str(f))
        assert run.iteration == sd["iteration"] == len(run.history) > 0


def test_the_committed_finished_teachers_are_read_as_finished_by_the_pipeline():
    """A teacher whose checkpoint is not kept: its policy file is the finished run of params.yaml's paper teacher
    config and budget, so that `dvc repro atari@paper` reads it instead of training (or refusing)."""
    from paper_code.pipeline.config import load_scale
    from paper_code.project import project_root
    from paper_code.runs.training import finished_policy
    from paper_code.pipeline.experiments import atari_teacher_config

    section = load_scale("paper")["atari"]
    files = [f for f in sorted((project_root() / "results" / "atari" / "teachers").glob("ppo_*.safetensors"))
             if not f.with_name(f.name + ".ckpt.pt").exists()]
    assert len(files) >= 2  # SpaceInvaders and MsPacman
    for f in files:
        game = f.stem.removeprefix("ppo_")
        done = finished_policy(atari_teacher_config(game, section), int(section["teacher"]["total_env_steps"]), f)
        assert done is not None and done.evals, f.name
