"""PPMO: the meta-gradient, GAE, the PPO loss, checkpoints, the dataset file and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from paper_code.core.dataset import DatasetError, DistilledDataset
from paper_code.core.evaluation import evaluate_dataset
from paper_code.core.inner import inner_step, inner_step_batch
from paper_code.core.learners import LearnerSpec, batched_forward, forward, init_params, init_params_batch
from paper_code.core.meta_loss import DatasetTensors, Minibatch, meta_loss
from paper_code.core.ppmo import PPMO
from paper_code.core.rl import gae, ppo_policy_loss
from paper_code.core.settings import PPMOConfig
from paper_code.pipeline.experiments import FinishedRun, run_or_resume
from paper_code.runs.training import checkpoint_path, distill

SMALL = LearnerSpec(hidden=(8, 8))


def _meta_problem(K: int):
    """A float64 PPO loss of K one-step learners as a function of (states, labels, log_lr)."""
    g = torch.Generator().manual_seed(0)
    B, D, A, M = 6, 4, 3, 10
    x = torch.randn(B, D, dtype=torch.float64, generator=g)
    y = torch.randn(B, A, dtype=torch.float64, generator=g)
    log_lr = torch.tensor(math.log(0.3), dtype=torch.float64)
    theta0 = init_params_batch(SMALL, D, A, K, g, dtype=torch.float64)
    obs = torch.randn(K, M, D, dtype=torch.float64, generator=g)
    actions = torch.randint(A, (K, M), generator=g)
    adv = torch.randn(K, M, dtype=torch.float64, generator=g)
    with torch.no_grad():  # old log-probs near the current ones: ratios inside the clip range (smooth)
        th1 = inner_step_batch(theta0, x, y, log_lr.exp())
        logp = F.log_softmax(batched_forward(th1, obs), -1).gather(-1, actions[..., None])[..., 0]
        old_logp = logp + 0.05 * torch.randn(K, M, dtype=torch.float64, generator=g)

    def loss_fn(x, y, log_lr):  # the production meta-loss (its finite-difference checks: tests/test_meta_loss.py)
        loss, _ = meta_loss(DatasetTensors(x, y, log_lr), theta0, Minibatch(obs, actions, old_logp, adv), activation="tanh",
                            policy="categorical", clip_coef=0.2, ent_coef=0.01)
        return loss

    return loss_fn, (x, y, log_lr), theta0


def test_inner_step_is_one_sgd_step_with_mse_mean_over_all_elements():
    g = torch.Generator().manual_seed(1)
    theta0 = init_params(SMALL, 4, 3, g, dtype=torch.float64)
    x, y = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    lr = torch.tensor(0.1, dtype=torch.float64)
    model_params = {k: v.clone().requires_grad_() for k, v in theta0.items()}
    torch.nn.MSELoss()(forward(model_params, x), y).backward()
    theta1 = inner_step(theta0, x, y, lr)
    for k in theta0:
        torch.testing.assert_close(theta1[k], theta0[k] - 0.1 * model_params[k].grad)


def test_theta0_unchanged_by_the_meta_step():
    loss_fn, inputs, theta0 = _meta_problem(2)
    before = {k: v.clone() for k, v in theta0.items()}
    leaves = [t.clone().requires_grad_() for t in inputs]
    opt = torch.optim.Adam(leaves, lr=0.1)
    loss_fn(*leaves).backward()
    opt.step()
    for k in theta0:
        assert torch.equal(theta0[k], before[k])
        assert theta0[k].grad is None
    assert not torch.equal(leaves[0], inputs[0])  # the dataset did move


def test_ppo_loss_equals_hand_computed_value():
    # two transitions, two actions; numbers worked by hand below
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])  # pi = [0.25, 0.75], [0.5, 0.5]
    actions = torch.tensor([1, 0])
    old_logp = torch.tensor([math.log(0.5), math.log(0.5)])  # ratios 1.5 and 1.0
    adv = torch.tensor([2.0, -1.0])
    loss, st = ppo_policy_loss(logits, actions, old_logp, adv, clip_coef=0.2, ent_coef=0.01, norm_adv=False)
    # t0: max(-2 * 1.5, -2 * 1.2) = -2.4 ; t1: max(1 * 1, 1 * 1) = 1 ; mean = -0.7
    h0 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    h1 = math.log(2.0)
    expected = -0.7 - 0.01 * (h0 + h1) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert st["clipfrac"].item() == pytest.approx(0.5)
    # normalised advantages: (2, -1) -> mean 0.5, std (unbiased) 2.1213...
    loss_n, _ = ppo_policy_loss(logits, actions, old_logp, adv, clip_coef=0.2, ent_coef=0.0, norm_adv=True)
    a0, a1 = (2 - 0.5) / (1.5 * math.sqrt(2)), (-1 - 0.5) / (1.5 * math.sqrt(2))
    assert loss_n.item() == pytest.approx((max(-a0 * 1.5, -a0 * 1.2) + max(-a1 * 1.0, -a1 * 1.0)) / 2, abs=1e-6)


def test_raw_logit_ratio_ablation_differs_from_logprob_ratio():
    logits = torch.tensor([[1.0, 2.0]])
    a, adv = torch.tensor([1]), torch.tensor([1.0])
    old_logits = torch.tensor([[0.5, 1.5]])
    old_logp = F.log_softmax(old_logits, -1)[:, 1]
    l1, s1 = ppo_policy_loss(logits, a, old_logp, adv, clip_coef=0.9, ent_coef=0.0, norm_adv=False)
    l2, s2 = ppo_policy_loss(logits, a, old_logp, adv, clip_coef=0.9, ent_coef=0.0, norm_adv=False,
                             ratio_mode="raw_logits", old_taken_logits=old_logits[:, 1])
    assert l1.item() == pytest.approx(-1.0, abs=1e-6)  # same distribution (logits shifted): ratio 1
    assert l2.item() == pytest.approx(-math.exp(0.5), abs=1e-6)  # exp(2.0 - 1.5)


def test_gae_hand_computed_with_truncation_and_termination():
    # one env, 5 steps: episode A terminates at t=1; episode B is truncated at t=3; episode C runs on
    g, lam = 0.9, 0.5
    r = torch.ones(5, 1)
    v = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]])
    term = torch.tensor([[False], [True], [False], [False], [False]])
    trunc = torch.tensor([[False], [False], [False], [True], [False]])
    # next values: V(s1)=2, (terminal: ignored) 99, V(s3)=4, V(final obs of B)=10, V(s5)=6
    nv = torch.tensor([[2.0], [99.0], [4.0], [10.0], [6.0]])
    adv, ret = gae(r, v, nv, term, trunc, g, lam)
    d4 = 1 + 0.9 * 6 - 5  # 1.4
    d3 = 1 + 0.9 * 10 - 4  # 6.0 (bootstrap on truncation)
    d2 = 1 + 0.9 * 4 - 3  # 1.6
    d1 = 1 - 2  # -1 (no bootstrap on termination)
    d0 = 1 + 0.9 * 2 - 1  # 1.8
    a4 = d4
    a3 = d3  # episode boundary: a4 does not flow back
    a2 = d2 + g * lam * a3
    a1 = d1
    a0 = d0 + g * lam * a1
    expected = torch.tensor([[a0], [a1], [a2], [a3], [a4]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + v)


# ----------------------------------------------------------------------------- runs & files
TINY = dict(size=16, num_envs=4, num_steps=25, update_epochs=2, minibatch_size=50, eval_every=2, eval_learners=3)


def test_resume_gives_the_same_dataset_as_an_uninterrupted_run(tmp_path):
    cfg = PPMOConfig(env_kwargs={"dof": 2}, **TINY)
    straight = distill(cfg, tmp_path / "a.safetensors", 5, progress=False)
    part = distill(cfg, tmp_path / "b.safetensors", 3, progress=False)
    assert part.meta_epoch == 3
    resumed = distill(cfg, tmp_path / "b.safetensors", 5, resume=True, progress=False)
    a = DistilledDataset.load(tmp_path / "a.safetensors")
    b = DistilledDataset.load(tmp_path / "b.safetensors")
    assert torch.equal(a.states, b.states) and torch.equal(a.labels, b.labels) and torch.equal(a.lr, b.lr)
    assert resumed.history[-1]["train_return"] == straight.history[-1]["train_return"] or math.isnan(straight.history[-1]["train_return"])
    # the interrupted run also evaluated at its last meta-epoch (3); every other evaluation agrees
    resumed_evals = {e["meta_epoch"]: e["sampled_return"] for e in resumed.evals}
    assert all(resumed_evals[e["meta_epoch"]] == e["sampled_return"] for e in straight.evals)
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in straight.history]
    assert b.provenance["meta_epochs"] == 5 and b.provenance["env_steps"] == 5 * 4 * 25
    assert b.provenance["world_size"] == 1 and "backend" not in b.provenance  # one process


def test_existing_output_is_not_overwritten_without_resume_or_force(tmp_path):
    cfg = PPMOConfig(**TINY)
    out = tmp_path / "d.safetensors"
    distill(cfg, out, 1, progress=False)
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="continue it with resume=True or start over with force=True$"):
        distill(cfg, out, 2, progress=False)
    assert out.read_bytes() == before
    with pytest.raises(ValueError, match="different configuration"):
        distill(PPMOConfig(**{**TINY, "size": 8}), out, 2, resume=True, progress=False)


def test_ppmo_config_rejects_bad_sizes():
    with pytest.raises(ValueError, match="size must be a positive integer"):
        PPMOConfig(size=0)
    with pytest.raises(ValueError, match="unknown environment 'Nope-v1'"):
        PPMO(PPMOConfig(env_id="Nope-v1", env_kwargs={}))
    with pytest.raises(ValueError, match="dof must be a positive integer"):
        PPMO(PPMOConfig(env_kwargs={"dof": 0}))


def test_truncated_training_episodes_leave_evaluation_alone():
    for bad in (0, -5, True, 2.5):
        with pytest.raises(ValueError, match="train_max_episode_steps must be None or a positive integer"):
            PPMOConfig(train_max_episode_steps=bad)
    run = PPMO(PPMOConfig(train_max_episode_steps=3, **TINY))
    assert run.env.max_episode_steps == 3
    row = run.meta_epoch_step()
    assert row["episodes"] >= 4 * (25 // 3)  # every env ends an episode at least every 3 steps
    ds = run.dataset()  # the task as it is: the evaluation's episodes keep the task's limit
    assert ds.env_kwargs == {"dof": 1} and ds.provenance["config"]["train_max_episode_steps"] == 3
    assert PPMO(PPMOConfig(**TINY)).env.max_episode_steps == 500


def test_inits_per_epoch_vmap_runs(tmp_path):
    run = PPMO(PPMOConfig(inits_per_epoch=3, **TINY))
    row = run.meta_epoch_step()
    assert row["env_steps"] == 3 * 4 * 25 and math.isfinite(row["pg_loss"])


def test_init_state_std_scales_the_initial_synthetic_states():
    with pytest.raises(ValueError, match="init_state_std must be positive"):
        PPMOConfig(init_state_std=0.0)
    base, small = PPMO(PPMOConfig(**TINY)), PPMO(PPMOConfig(init_state_std=0.1, **TINY))
    assert torch.allclose(small.states, 0.1 * base.states)  # the same draw, scaled
    assert torch.equal(small.labels, base.labels)


def _dataset(**kw):
    base = dict(states=torch.randn(7, 8), labels=torch.randn(7, 4), lr=torch.tensor(0.05),
                env_id="paper_code/NDCartPole-v0", env_kwargs={"dof": 2}, provenance={"seed": 3})
    base.update(kw)
    return DistilledDataset(**base)


def test_dataset_round_trip(tmp_path):
    ds = _dataset(learner=LearnerSpec(hidden=(16,), activation="relu"))
    ds.save(tmp_path / "x.safetensors")
    back = DistilledDataset.load(tmp_path / "x.safetensors")
    assert torch.equal(back.states, ds.states) and torch.equal(back.labels, ds.labels)
    assert back.lr.item() == pytest.approx(0.05) and back.lr.shape == ()
    assert back.env_id == ds.env_id and back.env_kwargs == {"dof": 2} and back.learner == ds.learner
    assert back.provenance == {"seed": 3} and back.label_kind == "logits_mse"
    from safetensors import safe_open

    with safe_open(str(tmp_path / "x.safetensors"), "pt") as f:
        meta = f.metadata()
    assert set(meta) >= {"env", "env_kwargs", "learner", "label_kind", "format_version", "provenance"}


def test_fourier_init_draws_random_fourier_features_with_a_gaussian_mean_kernel(tmp_path):
    spec = LearnerSpec(hidden=(2048,), activation="cos", init="fourier", hidden_gain=1.5, output_gain=0.01)
    th = init_params_batch(spec, 3, 2, 64, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert float(th["l0.weight"].std()) == pytest.approx(1.5, rel=0.01)
    assert float(th["l0.bias"].abs().max()) <= math.pi and float(th["l0.bias"].std()) == pytest.approx(math.pi / 3**0.5, rel=0.02)
    out = th["l1.weight"][0]  # the output layer stays orthogonal with output_gain: rows of norm 0.01
    assert torch.allclose(out.norm(dim=1), torch.full((2,), 0.01, dtype=torch.float64))
    assert abs(float(th["l0.weight"].mean())) < 0.01
    x = torch.zeros(1, 3, dtype=torch.float64)
    s = torch.tensor([[0.1, 0.0, 0.0], [0.5, 0.3, 0.0], [0.8, 0.6, 0.5], [1.2, 1.0, 0.8]], dtype=torch.float64)
    feats = [torch.cos(v @ th["l0.weight"].transpose(1, 2) + th["l0.bias"][:, None, :]) for v in (x, s)]  # [64, n, 2048]
    mean_k = torch.einsum("kh,knh->n", feats[0][:, 0], feats[1]) / 64 * 2 / 2048  # kernel values ~0.98, 0.70, 0.25, 0.05
    assert torch.allclose(mean_k, torch.exp(-1.5**2 * s.pow(2).sum(1) / 2), atol=0.02)
    one = {k: v[0] for k, v in th.items()}  # the library's forward is these features through the output layer
    assert torch.allclose(forward(one, s, "cos"), feats[1][0] @ one["l1.weight"].T + one["l1.bias"])
    _dataset(learner=spec).save(tmp_path / "f.safetensors")  # a dataset file carries it; a fresh learner steps on it
    back = DistilledDataset.load(tmp_path / "f.safetensors")
    assert back.learner == spec
    p0 = init_params(back.learner, 8, 4, torch.Generator().manual_seed(1))
    p1 = inner_step(p0, back.states, back.labels, back.lr, back.learner.activation)
    assert not torch.equal(p1["l1.weight"], p0["l1.weight"]) and all(bool(torch.isfinite(v).all()) for v in p1.values())


def test_dataset_without_learner_metadata_means_the_paper_learner(tmp_path):
    from safetensors.torch import save_file

    save_file({"states": torch.randn(3, 4), "labels": torch.randn(3, 2), "lr": torch.tensor(0.02)},
              str(tmp_path / "plain.safetensors"), metadata={"env": "CartPole-v1"})
    ds = DistilledDataset.load(tmp_path / "plain.safetensors")
    assert ds.learner == LearnerSpec() and ds.env_kwargs == {}
    assert evaluate_dataset(ds, learners=2, episodes=1).returns.shape == (2, 1)


def test_dataset_bad_files(tmp_path):
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x00\x01not a safetensors file")
    with pytest.raises(DatasetError, match="not a readable safetensors file"):
        DistilledDataset.load(tmp_path / "corrupt.safetensors")
    with pytest.raises(DatasetError, match="no such file"):
        DistilledDataset.load(tmp_path / "missing.safetensors")
    with pytest.raises(DatasetError, match="non-finite"):
        _dataset(states=torch.full((7, 8), float("nan")))
    with pytest.raises(DatasetError, match="labels must be"):
        _dataset(labels=torch.randn(6, 4))
    with pytest.raises(DatasetError, match="lr must be positive"):
        _dataset(lr=torch.tensor(-1.0))
    from safetensors.torch import save_file

    save_file({"states": torch.randn(3, 4), "labels": torch.full((3, 2), float("inf")), "lr": torch.tensor(0.02)},
              str(tmp_path / "inf.safetensors"), metadata={"env": "CartPole-v1"})
    with pytest.raises(DatasetError, match="labels contains non-finite"):
        DistilledDataset.load(tmp_path / "inf.safetensors")
    with pytest.raises(DatasetError, match="observations have shape"):
        evaluate_dataset(_dataset(env_kwargs={"dof": 3}), learners=2, episodes=1)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "paper_code", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_distill_and_evaluate(tmp_path):
    out = tmp_path / "nd2.safetensors"
    r = _cli("distill", "--dof", "2", "--size", "8", "--meta-epochs", "2", "--seed", "1", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert out.exists() and checkpoint_path(out).exists()
    r = _cli("evaluate", str(out), "--learners", "4", "--episodes", "2", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"mean", "std", "ci95", "solved_fraction", "learners", "episodes", "greedy"} <= set(d)
    assert d["learners"] == 4 and d["episodes"] == 2 and d["greedy"] is False and len(d["ci95"]) == 2
    r = _cli("evaluate", str(out), "--learners", "4", "--episodes", "2", "--greedy")
    assert r.returncode == 0 and "95% CI" in r.stdout and "greedy" in r.stdout


@pytest.mark.parametrize("args,message", [
    (["distill", "--env", "Nope-v0", "--out", "{tmp}/a.safetensors"], "unknown environment 'Nope-v0'"),
    (["distill", "--size", "0", "--out", "{tmp}/a.safetensors"], "size must be a positive integer, got 0"),
    (["distill", "--dof", "0", "--out", "{tmp}/a.safetensors"], "dof must be a positive integer"),
    (["evaluate", "{tmp}/missing.safetensors"], "no such file"),
    (["evaluate", "{tmp}/wrongshape.safetensors", "--learners", "0"], "learners must be a positive integer"),
    (["evaluate", "{tmp}/corrupt.safetensors"], "not a readable safetensors file"),
    (["evaluate", "{tmp}/nan.safetensors"], "non-finite"),
    (["evaluate", "{tmp}/wrongshape.safetensors"], "observations have shape"),
])
def test_cli_bad_input_one_clear_line(tmp_path, args, message):
    (tmp_path / "corrupt.safetensors").write_bytes(b"garbage")
    from safetensors.torch import save_file

    save_file({"states": torch.full((3, 4), float("nan")), "labels": torch.randn(3, 2), "lr": torch.tensor(0.02)},
              str(tmp_path / "nan.safetensors"), metadata={"env": "CartPole-v1"})
    _dataset().save(tmp_path / "wrongshape.safetensors")
    (tmp_path / "wrongshape.safetensors").write_bytes((tmp_path / "wrongshape.safetensors").read_bytes())
    ds = DistilledDataset.load(tmp_path / "wrongshape.safetensors")
    ds.env_kwargs = {"dof": 1}
    ds.save(tmp_path / "wrongshape.safetensors")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    r = _cli(*[a.format(tmp=tmp_path) for a in args])
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written or overwritten


def test_learner_pool_draws_architectures_and_default_run_is_unchanged(tmp_path):
    pool = (LearnerSpec(hidden=(16,)), LearnerSpec(hidden=(32, 32), activation="relu"))
    run = PPMO(PPMOConfig(learner_pool=pool, **TINY))
    drawn = {run._draw_learner() for _ in range(40)}
    assert drawn == set(pool)
    run.meta_epoch_step()  # each architecture trains through the same dataset
    assert PPMOConfig(**TINY).to_dict()["learner_pool"] == []
    cfg = PPMOConfig(learner_pool=pool, **TINY)
    assert PPMOConfig(**cfg.to_dict()).learner_pool == pool  # round trip through the checkpoint's dict


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_cli_ctrl_c_or_kill_writes_checkpoint_and_resume_continues(tmp_path, sig):
    import signal
    import time

    out = tmp_path / "int.safetensors"
    cmd = [sys.executable, "-m", "paper_code", "distill", "--size", "16", "--meta-epochs", "100000", "--eval-every", "0",
           "--checkpoint-every", "1", "--out", str(out), "--quiet"]
    # default SIGINT disposition in the child: a shell that starts jobs in the background (nohup,
    # `&`) ignores SIGINT, the child would inherit that and Python would not raise KeyboardInterrupt
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not checkpoint_path(out).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # imports, then the first checkpoint (a second in): the run's loop, its handlers set
    proc.send_signal(getattr(signal, sig))  # Ctrl-C, or `kill` (SIGTERM): both checkpoint
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == {"SIGINT": 130, "SIGTERM": 143}[sig], err
    assert "continue with --resume" in err
    sd = torch.load(checkpoint_path(out), weights_only=True)
    done = sd["meta_epoch"]
    assert done >= 1 and DistilledDataset.load(out).provenance["meta_epochs"] == done
    r = _cli("distill", "--size", "16", "--meta-epochs", str(done + 2), "--eval-every", "0", "--out", str(out), "--quiet", "--resume")
    assert r.returncode == 0, r.stderr
    assert DistilledDataset.load(out).provenance["meta_epochs"] == done + 2


def test_stricter_stop_rule_continues_a_stopped_run_exactly(tmp_path):

    cfg = PPMOConfig(**{**TINY, "eval_every": 1})
    a = run_or_resume(cfg, tmp_path / "a.safetensors", 10, stop_at_return=0.0, stop_patience=1, progress=False)
    assert a.stopped_early and a.meta_epoch == 1
    assert run_or_resume(cfg, tmp_path / "a.safetensors", 10, stop_at_return=0.0, stop_patience=1, progress=False).meta_epoch == 1
    a = run_or_resume(cfg, tmp_path / "a.safetensors", 10, stop_at_return=0.0, stop_patience=3, progress=False)
    b = run_or_resume(cfg, tmp_path / "b.safetensors", 10, stop_at_return=0.0, stop_patience=3, progress=False)
    assert a.meta_epoch == b.meta_epoch == 3 and a.stopped_early and b.stopped_early
    da, db = DistilledDataset.load(tmp_path / "a.safetensors"), DistilledDataset.load(tmp_path / "b.safetensors")
    assert torch.equal(da.states, db.states) and torch.equal(da.labels, db.labels)


def test_ppo_cache_returns_the_same_result(tmp_path):
    from paper_code.core.ppo import train_ppo_cached
    from paper_code.core.settings import PPOConfig

    cfg = PPOConfig(num_envs=2, num_steps=16, minibatch_size=16, update_epochs=1)
    first = train_ppo_cached(cfg, 64, tmp_path / "p.safetensors", progress=False)
    mtime = (tmp_path / "p.safetensors").stat().st_mtime_ns
    again = train_ppo_cached(cfg, 64, tmp_path / "p.safetensors", progress=False)
    assert (tmp_path / "p.safetensors").stat().st_mtime_ns == mtime
    assert again.history == first.history and all(torch.equal(again.actor[k], first.actor[k]) for k in first.actor)
    other = train_ppo_cached(PPOConfig(num_envs=2, num_steps=16, minibatch_size=16, update_epochs=1, seed=1), 64,
                             tmp_path / "p.safetensors", progress=False)
    assert not torch.equal(other.actor["l0.weight"], first.actor["l0.weight"])


def test_a_finished_run_without_checkpoint_is_read_from_its_files(tmp_path):

    cfg = PPMOConfig(size=8, num_envs=2, num_steps=16, eval_every=1, eval_learners=1, learner=SMALL)
    out = tmp_path / "d.safetensors"
    run = run_or_resume(cfg, out, 2, progress=False)
    checkpoint_path(out).unlink()  # e.g. a checkpoint too large to commit
    again = run_or_resume(cfg, out, 2, progress=False)
    assert isinstance(again, FinishedRun)
    assert (again.meta_epoch, again.env_steps) == (run.meta_epoch, run.env_steps) and again.evals == run.evals
    with pytest.raises(ValueError, match="no checkpoint to continue from"):
        run_or_resume(cfg, out, 3, progress=False)


def test_distill_on_a_finished_dataset_without_checkpoint_is_up_to_date_only_for_its_own_settings(tmp_path, capsys):
    """A fresh clone has the committed datasets and logs, not their checkpoints: ``distill`` with the run's own
    settings and budget says it is up to date (nothing rewritten); other settings or another budget are refused."""
    from paper_code.__main__ import main

    out = tmp_path / "d.safetensors"
    args = ["distill", "--env", "Acrobot-v1", "--num-envs", "2", "--num-steps", "16", "--eval-every", "0",
            "--size", "2", "--quiet", "--out", str(out)]
    assert main([*args, "--meta-epochs", "2"]) == 0
    checkpoint_path(out).unlink()
    mtime = out.stat().st_mtime_ns
    capsys.readouterr()
    assert main([*args, "--meta-epochs", "2"]) == 0
    said = capsys.readouterr().out
    assert "is up to date (its dataset and log show this run finished)" in said and "2 meta-epochs" in said
    assert out.stat().st_mtime_ns == mtime
    for other in (["--meta-epochs", "3"], ["--meta-epochs", "2", "--seed", "1"]):
        assert main([*args, *other]) == 2
        assert "exists and has no checkpoint" in capsys.readouterr().err
    log = tmp_path / "d.safetensors.log.json"  # a log that is not this run's
    log.write_text(json.dumps({**json.loads(log.read_text()), "history": []}))
    assert main([*args, "--meta-epochs", "2"]) == 2
    assert "exists and has no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("env,kind", [("Acrobot-v1", "logits_mse"), ("Pendulum-v1", "gaussian_mse")])
def test_cli_distills_any_gymnasium_task_with_box_observations(tmp_path, env, kind):
    """Discrete actions get cart-pole's settings, Box actions MuJoCo's (Gaussian learner, normalisation)."""
    out = tmp_path / f"{env}.safetensors"
    r = _cli("distill", "--env", env, "--size", "8", "--meta-epochs", "2", "--eval-every", "1", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    ds = DistilledDataset.load(out)
    assert ds.env_id == env and ds.label_kind == kind and ds.size == 8
    assert (ds.normalization is not None) == (kind == "gaussian_mse")
    r = _cli("evaluate", str(out), "--learners", "2", "--episodes", "1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["learners"] == 2, r.stderr


def test_states_labels_and_inner_lr_can_have_their_own_adam_steps(tmp_path):
    """Issue 39: per-group step sizes and the dataset's own Adam epsilon; the default stays one group
    (the committed checkpoints' optimiser state); the file records how far the dataset moved."""
    plain = PPMO(PPMOConfig(**{**TINY, "eval_every": 0}))
    assert len(plain.data_opt.param_groups) == 1 and plain.data_opt.param_groups[0]["eps"] == 1e-5
    assert "states_lr" not in plain.cfg.to_dict()  # at its default: not in what files record
    cfg = PPMOConfig(**{**TINY, "eval_every": 0}, states_lr=0.1, labels_lr=0.02, inner_lr_lr=0.05, dataset_adam_eps=1e-10)
    run = PPMO(cfg)
    groups = run.data_opt.param_groups
    assert [g["lr"] for g in groups] == [0.1, 0.02, 0.05] and all(g["eps"] == 1e-10 for g in groups)
    assert [p for g in groups for p in g["params"]] == run.data_params
    start = (run.states.detach().clone(), run.labels.detach().clone(), float(run.lr))
    run.meta_epoch_step()
    moved = run.dataset().provenance["movement"]
    assert moved["states_rms_change"] == pytest.approx(float((run.states.detach() - start[0]).pow(2).mean().sqrt()), rel=1e-5)
    assert moved["lr_ratio"] == pytest.approx(float(run.lr) / start[2], rel=1e-5)
    assert moved["states_rms_change"] > 10 * plain.dataset().provenance["movement"]["states_rms_change"]
    out = tmp_path / "d.safetensors"
    distill(cfg, out, 2, progress=False)
    again = distill(cfg, out, 3, resume=True, progress=False)  # the groups' state comes back from the checkpoint
    assert again.meta_epoch == 3 and len(again.data_opt.param_groups) == 3
    with pytest.raises(ValueError, match="compile supports one dataset_lr"):
        PPMOConfig(states_lr=0.1, compile=True)


def test_confidence_intervals_stay_inside_the_possible_returns():
    # a 95% CI of a capped return once read 499.9 [499.8, 500.1]: one function makes every CI, clipped to
    # the range one value can take (cart-pole: 0 to its cap); unclipped where no bound is known
    from paper_code.core.evaluation import DatasetEvaluation, mean_ci95
    from paper_code.pipeline.verdict import Estimate

    near_cap = torch.tensor([[500.0]] * 19 + [[498.0]])
    ev = DatasetEvaluation(near_cap, greedy=False, cap=500.0)
    lo, hi = ev.ci95
    assert hi == 500.0 and lo < ev.mean < hi
    mean, lo_free, hi_free = mean_ci95(near_cap)
    assert hi_free > 500.0 and lo_free == pytest.approx(lo) and mean == pytest.approx(ev.mean)
    assert mean_ci95(torch.tensor([3.0, 3.0, 3.0]), (0.0, 500.0)) == (3.0, 3.0, 3.0)
    assert mean_ci95(torch.tensor([7.0])) == (7.0, 7.0, 7.0)  # one value: no width
    low_end = Estimate.of(torch.tensor([0.0, 0.0, 0.0, 30.0]), "episodes", (0.0, 500.0))
    assert low_end.low == 0.0 and low_end.high > low_end.mean


def test_every_bounded_task_gives_its_return_range_and_its_intervals_stay_inside():
    # the random policy on Acrobot once read -498.1 [-501.8, -494.4]: a return below -500 cannot happen
    from paper_code.envs import make_env, return_bounds
    from paper_code.envs import ND_CARTPOLE_ID
    from paper_code.core.evaluation import DatasetEvaluation
    from paper_code.pipeline.verdict import Estimate

    assert return_bounds("Acrobot-v1", {}) == (-500.0, 0.0)
    assert return_bounds("Acrobot-v1", {"max_episode_steps": 100}) == (-100.0, 0.0)
    assert return_bounds("Pendulum-v1", {})[0] == pytest.approx(-16.2736044 * 200) and return_bounds("Pendulum-v1", {})[1] == 0
    assert return_bounds("ALE/Pong-v5", {"max_episode_steps": 3000}) == (-21.0, 21.0)
    assert return_bounds("ALE/SpaceInvaders-v5", {}) == (0.0, None)
    assert return_bounds("Hopper-v5", {}) == (None, None)  # no bound known: the CI is not clipped
    assert return_bounds(ND_CARTPOLE_ID, {"dof": 2}) == (0.0, 500.0)
    env = make_env("Acrobot-v1", 2)
    assert env.return_bounds == (-500.0, 0.0)
    env.close()
    near_floor = torch.tensor([-500.0] * 19 + [-430.0])
    est = Estimate.of(near_floor, "episodes", return_bounds("Acrobot-v1", {}))
    assert est.low == -500.0 and est.high < 0 and est.low < est.mean
    ev = DatasetEvaluation(near_floor.view(-1, 1), greedy=False, cap=None, bounds=(-500.0, 0.0))
    assert ev.ci95[0] == -500.0
