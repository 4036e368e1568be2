"""Continuous actions: the Gaussian learner's inner step and meta-gradient, summed log-probabilities,
frozen observation normalisation, the gymnasium vector env face, and MuJoCo runs end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from paper_code.core.dataset import DatasetError, DistilledDataset
from paper_code.core.evaluation import evaluate_dataset
from paper_code.core.inner import inner_step, inner_step_batch
from paper_code.core.learners import LearnerSpec, batched_forward, init_params, init_params_batch
from paper_code.core.observations import RunningMeanStd, normalize_obs
from paper_code.core.policies import Gaussian
from paper_code.core.ppmo import PPMO
from paper_code.core.rl import clipped_surrogate
from paper_code.envs import GymVectorEnv, make_env
from paper_code.pipeline.config import load_scale
from paper_code.pipeline.experiments import scale_config, stop_rule
from paper_code.pipeline.presets import GAUSSIAN_LEARNER, MUJOCO, resolve
from paper_code.pipeline.protocol import protocol_seed
from paper_code.pipeline.state_dependence import state_dependence
from paper_code.runs.training import checkpoint_path, distill

from gradcheck import assert_matches_finite_differences

SMALL_G = LearnerSpec(hidden=(8, 8), policy="gaussian")


def test_gaussian_log_prob_and_entropy_are_summed_over_action_dims():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(5, 7, 3, dtype=torch.float64, generator=g)
    log_std = torch.randn(3, dtype=torch.float64, generator=g)
    actions = torch.randn(5, 7, 3, dtype=torch.float64, generator=g)
    ref = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(Gaussian.log_prob(mean, actions, log_std), ref.log_prob(actions).sum(-1))
    torch.testing.assert_close(Gaussian.entropy(mean, log_std), ref.entropy().sum(-1))
    # the joint ratio is the product of the per-dimension ratios, not their mean
    old = torch.distributions.Normal(mean + 0.1, log_std.exp())
    ratio = (Gaussian.log_prob(mean, actions, log_std) - old.log_prob(actions).sum(-1)).exp()
    torch.testing.assert_close(ratio, (ref.log_prob(actions) - old.log_prob(actions)).exp().prod(-1))


def test_gaussian_sampling_has_the_policy_distribution():
    g = torch.Generator().manual_seed(1)
    mean, log_std = torch.tensor([0.5, -2.0]), torch.tensor([-1.0, 0.3])
    noise = Gaussian.noise((200_000, 2), g, "cpu", torch.float32)
    a = Gaussian.sample(mean.expand(200_000, 2), noise, log_std)
    torch.testing.assert_close(a.mean(0), mean, atol=0.02, rtol=0)
    torch.testing.assert_close(a.std(0), log_std.exp(), atol=0.02, rtol=0)


def test_gaussian_inner_step_fits_means_and_log_std():
    g = torch.Generator().manual_seed(0)
    B, D, A = 5, 4, 3
    x, y = torch.randn(B, D, generator=g), torch.randn(B, A, generator=g)
    target = torch.tensor([-0.5, 0.2, 1.0])
    theta0 = init_params(SMALL_G, D, A, g)
    assert torch.equal(theta0["log_std"], torch.zeros(A))
    lr = torch.tensor(0.3)
    theta1 = inner_step(theta0, x, y, lr, "tanh", target)
    # d/dp mean((p - t)^2) = 2 (p - t) / A, so log_std moves by lr * 2 t / A from 0
    torch.testing.assert_close(theta1["log_std"], lr * 2 * target / A)
    with pytest.raises(ValueError, match="log_std_target"):
        inner_step(theta0, x, y, lr, "tanh")


def _gaussian_meta_problem(K: int):
    """A float64 PPO loss of K one-step Gaussian learners as a function of (means, log-std target, log-lr)."""
    g = torch.Generator().manual_seed(0)
    B, D, A, M = 6, 4, 2, 10
    x = torch.randn(B, D, dtype=torch.float64, generator=g)
    y = torch.randn(B, A, dtype=torch.float64, generator=g)
    target = 0.3 * torch.randn(A, dtype=torch.float64, generator=g)
    log_lr = torch.tensor(math.log(0.3), dtype=torch.float64)
    theta0 = init_params_batch(SMALL_G, D, A, K, g, dtype=torch.float64)
    obs = torch.randn(K, M, D, dtype=torch.float64, generator=g)
    actions = torch.randn(K, M, A, dtype=torch.float64, generator=g)
    adv = torch.randn(K, M, dtype=torch.float64, generator=g)
    with torch.no_grad():  # old log-probs near the current ones: ratios inside the clip range (smooth)
        th1 = inner_step_batch(theta0, x, y, log_lr.exp(), "tanh", target)
        old_logp = Gaussian.log_prob(batched_forward(th1, obs), actions, th1["log_std"][:, None, :])
        old_logp = old_logp + 0.05 * torch.randn(K, M, dtype=torch.float64, generator=g)

    def loss_fn(y, target, log_lr):
        th1 = inner_step_batch(theta0, x, y, log_lr.exp(), "tanh", target)
        out, ls = batched_forward(th1, obs), th1["log_std"][:, None, :]
        loss, _ = clipped_surrogate(Gaussian.log_prob(out, actions, ls) - old_logp, adv, Gaussian.entropy(out, ls),
                                    clip_coef=0.1, ent_coef=0.01)
        return loss

    return loss_fn, (y, target, log_lr)


@pytest.mark.parametrize("K", [1, 3])
def test_gaussian_meta_gradient_matches_finite_differences_float64(K):
    loss_fn, inputs = _gaussian_meta_problem(K)
    assert_matches_finite_differences(loss_fn, inputs, ["means", "log_std", "log_lr"])


def test_running_mean_std_matches_numpy():
    g = torch.Generator().manual_seed(0)
    rms = RunningMeanStd((3,))
    chunks = [torch.randn(n, 3, generator=g) * 5 + 2 for n in (10, 1, 40)]
    for c in chunks:
        rms.update(c)
    allx = torch.cat(chunks).double()
    torch.testing.assert_close(rms.mean, allx.mean(0), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(rms.var, allx.var(0, unbiased=False), atol=1e-3, rtol=1e-4)


def _gaussian_dataset(obs_size=11, act=3, normalization=True) -> DistilledDataset:
    g = torch.Generator().manual_seed(0)
    extra = {"log_std": torch.tensor([-0.5, 0.0, 0.5])[:act]}
    if normalization:
        extra.update(obs_mean=torch.randn(obs_size, generator=g), obs_var=torch.rand(obs_size, generator=g) + 0.5)
    return DistilledDataset(
        states=torch.randn(4, obs_size, generator=g), labels=torch.randn(4, act, generator=g), lr=0.1, env_id="Hopper-v5",
        learner=GAUSSIAN_LEARNER, label_kind="gaussian_mse", extra=extra,
        normalization={"kind": "running_mean_std", "clip": 10.0, "eps": 1e-8} if normalization else None,
    )


def test_frozen_normalisation_round_trip(tmp_path):
    ds = _gaussian_dataset()
    path = ds.save(tmp_path / "d.safetensors")
    back = DistilledDataset.load(path)
    assert back.normalization == ds.normalization and back.label_kind == "gaussian_mse" and back.learner == GAUSSIAN_LEARNER
    for k in ("log_std", "obs_mean", "obs_var"):
        assert torch.equal(back.extra[k], ds.extra[k])
    obs = torch.randn(7, 11) * 30
    expected = ((obs - ds.extra["obs_mean"]) / torch.sqrt(ds.extra["obs_var"] + 1e-8)).clamp(-10, 10)
    torch.testing.assert_close(back.normalize(obs), expected)
    # evaluation applies the frozen statistics: other statistics, other returns
    a = evaluate_dataset(back, learners=2, episodes=1, seed=3)
    b = evaluate_dataset(back, learners=2, episodes=1, seed=3)
    assert torch.equal(a.returns, b.returns)
    shifted = DistilledDataset.load(path)
    shifted.extra["obs_mean"] = shifted.extra["obs_mean"] + 3.0
    assert not torch.equal(evaluate_dataset(shifted, learners=2, episodes=1, seed=3).returns, a.returns)


def test_scaled_normalisation_is_frozen_and_applied(tmp_path):
    ds = _gaussian_dataset()
    ds.normalization = {**ds.normalization, "scale": 0.25}
    back = DistilledDataset.load(ds.save(tmp_path / "s.safetensors"))
    assert back.normalization["scale"] == 0.25
    obs = torch.randn(7, 11, generator=torch.Generator().manual_seed(1)) * 20  # some beyond the clip
    expected = 0.25 * ((obs - ds.extra["obs_mean"]) / torch.sqrt(ds.extra["obs_var"] + 1e-8)).clamp(-10, 10)
    torch.testing.assert_close(back.normalize(obs), expected)
    z = back.normalize(obs)
    kept = z.abs() < 0.25 * 10  # denormalize inverts normalize where nothing was clipped
    assert kept.any() and not kept.all()
    torch.testing.assert_close(back.denormalize(z)[kept], obs[kept], atol=1e-4, rtol=1e-5)
    assert not torch.allclose(back.normalize(obs), _gaussian_dataset().normalize(obs))
    for bad in (0.0, -1.0, float("nan"), "0.5", True):
        with pytest.raises(DatasetError, match="scale"):
            DistilledDataset(states=ds.states, labels=ds.labels, lr=0.1, env_id="Hopper-v5", learner=GAUSSIAN_LEARNER,
                             label_kind="gaussian_mse", extra=ds.extra, normalization={**ds.normalization, "scale": bad})


def mujoco_config(section, task, **overrides):
    return scale_config(f"mujoco-{task}", section, **overrides)


def test_ppmo_obs_scale_reaches_the_learner_the_critic_and_the_dataset(tmp_path):
    section = {"seed": 0, "size": 8, "eval_every": 0, "eval_learners": 1}
    with pytest.raises(ValueError, match="obs_scale must be positive"):
        mujoco_config(section, "InvertedPendulum-v5", obs_scale=0.0)
    with pytest.raises(ValueError, match="needs normalize_obs"):
        mujoco_config(section, "InvertedPendulum-v5", obs_scale=0.5, normalize_obs=False)
    base = PPMO(mujoco_config(section, "InvertedPendulum-v5", num_envs=2, num_steps=20))
    scaled = PPMO(mujoco_config(section, "InvertedPendulum-v5", num_envs=2, num_steps=20, obs_scale=0.5))
    assert scaled.cfg.obs_scale == 0.5
    for run in (base, scaled):
        run.meta_epoch_step()
    obs = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(scaled.normalize(obs), 0.5 * normalize_obs(obs, scaled.obs_rms.mean, scaled.obs_rms.var))
    # the default writes no scale (files from before the option are unchanged); the scaled run's file
    # carries it and evaluation applies it
    assert "scale" not in base.dataset().normalization
    ds = DistilledDataset.load(scaled.dataset().save(tmp_path / "s.safetensors"))
    assert ds.normalization["scale"] == 0.5
    torch.testing.assert_close(ds.normalize(obs), scaled.normalize(obs))


def test_state_bound_keeps_the_synthetic_states_in_the_box():
    section = {"seed": 0, "size": 8, "eval_every": 0, "eval_learners": 1}
    for bad in (0.0, -1.0, float("inf"), True):
        with pytest.raises(ValueError, match="state_bound"):
            mujoco_config(section, "InvertedPendulum-v5", state_bound=bad)
    runs = [PPMO(mujoco_config(section, "InvertedPendulum-v5", num_envs=2, num_steps=20, state_bound=b))
            for b in (None, 0.3)]
    for run in runs:
        for _ in range(2):
            run.meta_epoch_step()
    free, bounded = runs
    assert free.states.abs().max() > 0.3  # states start from N(0, 1), beyond the bound ...
    assert bounded.states.abs().max() <= 0.3  # ... and every update clamps them into it
    assert bool((bounded.states.abs() == 0.3).any())
    assert bounded.dataset().provenance["config"]["state_bound"] == 0.3


def test_gaussian_dataset_validation(tmp_path):
    ds = _gaussian_dataset()
    with pytest.raises(DatasetError, match="log_std"):
        DistilledDataset(states=ds.states, labels=ds.labels, lr=0.1, env_id="Hopper-v5", learner=GAUSSIAN_LEARNER,
                         label_kind="gaussian_mse")
    with pytest.raises(DatasetError, match="obs_mean"):
        DistilledDataset(states=ds.states, labels=ds.labels, lr=0.1, env_id="Hopper-v5", learner=GAUSSIAN_LEARNER,
                         label_kind="gaussian_mse", extra={"log_std": ds.extra["log_std"]},
                         normalization={"kind": "running_mean_std", "clip": 10.0, "eps": 1e-8})
    with pytest.raises(DatasetError, match="does not fit"):
        DistilledDataset(states=ds.states, labels=ds.labels, lr=0.1, env_id="Hopper-v5", label_kind="gaussian_mse",
                         extra={"log_std": ds.extra["log_std"]})
    wrong = _gaussian_dataset(obs_size=5)
    with pytest.raises(DatasetError, match="shape"):
        evaluate_dataset(wrong, learners=1, episodes=1)


def test_gym_vector_env_matches_single_envs_step_by_step():
    E, T = 3, 120
    venv = GymVectorEnv("InvertedPendulum-v5", E, seed=5, check_actions=True)
    singles = [gym.make("InvertedPendulum-v5") for _ in range(E)]
    obs = venv.reset(seed=5).numpy()
    s_obs = [env.reset(seed=5 + i)[0] for i, env in enumerate(singles)]
    np.testing.assert_allclose(obs, np.stack(s_obs), atol=1e-6)
    rng = np.random.default_rng(0)
    returns = np.zeros(E)
    ended = 0
    for t in range(T):
        a = rng.uniform(-5, 5, size=(E, 1)).astype(np.float32)  # beyond the bounds [-3, 3]: clipped
        out = venv.step(torch.as_tensor(a))
        for i, env in enumerate(singles):
            o, r, term, trunc, _ = env.step(np.clip(a[i], -3, 3))
            returns[i] += r
            assert float(out.reward[i]) == pytest.approx(r, abs=1e-6)
            assert bool(out.terminated[i]) == term and bool(out.truncated[i]) == trunc
            if term or trunc:  # same-step reset: final_obs is the ended episode's, obs the new one's
                ended += 1
                np.testing.assert_allclose(out.final_obs[i].numpy(), o, atol=1e-5)
                assert float(out.episode_return[i]) == pytest.approx(returns[i], rel=1e-5)
                assert int(out.episode_length[i]) > 0
                returns[i] = 0
                o, _ = env.reset()
                # the vector env's reset uses its own RNG stream: adopt its state in the single env
                qpos, qvel = venv.env.envs[i].unwrapped.data.qpos.copy(), venv.env.envs[i].unwrapped.data.qvel.copy()
                env.unwrapped.set_state(qpos, qvel)
                o = env.unwrapped._get_obs()
            np.testing.assert_allclose(out.obs[i].numpy(), o, atol=1e-5)
    assert ended > 0
    with pytest.raises(ValueError, match="shape"):
        venv.step(torch.zeros(E, 2))


def test_make_env_rejects_unknown_ids_and_wrong_learners():
    with pytest.raises(ValueError, match="unknown environment"):
        make_env("NoSuchTask-v5", 2)
    with pytest.raises(ValueError, match="gaussian learner"):
        PPMO(mujoco_config({"seed": 0, "size": 4, "eval_every": 0, "eval_learners": 1}, "InvertedPendulum-v5",
                           learner=LearnerSpec()))


def test_per_task_settings_are_the_presets_and_a_scale_changes_only_counts():
    idp, hopper, walker = (resolve(f"mujoco-{t}") for t in ("InvertedDoublePendulum-v5", "Hopper-v5", "Walker2d-v5"))
    assert (idp.ent_coef, hopper.ent_coef, walker.ent_coef) == (0.01, MUJOCO["ent_coef"], 0.01)
    assert (idp.inits_per_epoch, idp.train_max_episode_steps, idp.init_state_std, idp.obs_scale, idp.state_bound) == (
        2, 200, 0.1, 0.3, 0.25)
    assert (hopper.inits_per_epoch, hopper.train_max_episode_steps, hopper.init_state_std) == (1, None, 1.0)
    section = {"stop_at_return": {"default": None, "InvertedDoublePendulum-v5": 9300},
               "stop_patience": {"default": 3, "InvertedDoublePendulum-v5": 1}}
    assert stop_rule(section, "InvertedDoublePendulum-v5") == {"stop_at_return": 9300.0, "stop_patience": 1}
    assert stop_rule(section, "Hopper-v5") == {"stop_at_return": None, "stop_patience": 3}
    assert stop_rule({"stop_at_return": 1000}, "InvertedPendulum-v5") == {"stop_at_return": 1000.0, "stop_patience": 1}
    # notebook 02's evaluation seeds: by the task's index, distinct across purposes
    assert [protocol_seed(m, 1) for m in ("mujoco", "mujoco_reference", "ppo_mujoco")] == [40_001, 41_001, 42_001]
    with pytest.raises(ValueError, match="unknown measurement"):
        protocol_seed("nope", 0)
    # both scales distil with the presets' algorithm: the paper scale is the preset itself, the
    # quick scale only evaluates less often
    paper, quick = load_scale("paper")["mujoco"], load_scale("quick")["mujoco"]
    for task in paper["tasks"]:
        stop_rule(paper, task)
        p, q = scale_config(f"mujoco-{task}", paper), scale_config(f"mujoco-{task}", quick)
        assert p == resolve(f"mujoco-{task}"), task
        p, q = p.to_dict(), q.to_dict()
        assert {k for k in p if p[k] != q[k]} <= {"eval_every", "eval_learners"}, task


def test_mujoco_ppmo_runs_saves_and_resumes(tmp_path):
    cfg = mujoco_config({"seed": 0, "size": 8, "eval_every": 1, "eval_learners": 2}, "InvertedPendulum-v5",
                        num_envs=2, num_steps=50)
    out = tmp_path / "ip.safetensors"
    run = distill(cfg, out, 2, progress=False)
    ds = DistilledDataset.load(out)
    assert ds.label_kind == "gaussian_mse" and ds.size == 8 and ds.extra["log_std"].shape == (1,)
    # the frozen statistics are the run's running statistics (updated from 2 x 2 x 50 observations)
    torch.testing.assert_close(ds.extra["obs_mean"], run.obs_rms.mean.float())
    assert float(run.obs_rms.count) == pytest.approx(200, abs=1e-3)
    assert not torch.equal(ds.log_std, torch.zeros(1))  # the log-std target is trained
    resumed = distill(cfg, out, 3, resume=True, progress=False)
    assert resumed.meta_epoch == 3 and resumed.env_steps == 300
    assert float(resumed.obs_rms.count) == pytest.approx(300, abs=1e-3)
    assert checkpoint_path(out).exists()
    sd = state_dependence(DistilledDataset.load(out), learners=2, episodes=1)
    assert list(sd.columns) == ["learner", "return", "constant return", "action std"] and len(sd) == 2


def test_cli_distills_and_evaluates_a_mujoco_task(tmp_path):
    out = tmp_path / "ip.safetensors"
    r = subprocess.run([sys.executable, "-m", "paper_code", "distill", "--env", "InvertedPendulum-v5", "--size", "4",
                        "--meta-epochs", "1", "--eval-every", "0", "--train-episode-steps", "40", "--ent-coef", "0.01",
                        "--init-state-std", "0.1", "--obs-scale", "0.3", "--state-bound", "0.25", "--out", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ds = DistilledDataset.load(out)
    cfg = ds.provenance["config"]
    assert cfg["train_max_episode_steps"] == 40 and ds.env_kwargs == {}
    assert (cfg["ent_coef"], cfg["init_state_std"], cfg["obs_scale"], cfg["state_bound"]) == (0.01, 0.1, 0.3, 0.25)
    assert ds.normalization["scale"] == 0.3 and float(ds.states.abs().max()) <= 0.25
    r = subprocess.run([sys.executable, "-m", "paper_code", "evaluate", str(out), "--learners", "2", "--episodes", "1",
                        "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d["env"] == "InvertedPendulum-v5" and d["size"] == 4 and d["learners"] == 2 and d["mean"] > 0
    r = subprocess.run([sys.executable, "-m", "paper_code", "distill", "--env", "Nope-v5", "--out", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "error: unknown environment 'Nope-v5'" in r.stderr and "Hopper" in r.stderr


def test_halfcheetah_deprecation_warning_is_silenced_and_other_warnings_pass(capsys):
    """gymnasium's half_cheetah.xml uses MuJoCo's deprecated `settotalmass`; MuJoCo prints that from C
    (file descriptor 2), so a subprocess tells whether it still reaches stderr."""
    code = ("from paper_code.envs.gym_vector import GymVectorEnv\n"
            "GymVectorEnv('HalfCheetah-v5', 1).close()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "settotalmass" not in proc.stderr, proc.stderr
    from paper_code.envs.gym_vector import _mujoco_warning
    _mujoco_warning("Nan, Inf or huge value in QACC at DOF 0. The simulation is unstable.")
    assert "WARNING: Nan, Inf or huge value in QACC" in capsys.readouterr().err
