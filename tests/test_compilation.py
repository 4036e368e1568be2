"""``compile=True``: the compiled update gradients, clip and Adam steps and fused cart-pole rollout
steps give eager's results to float round-off, and a run resumes across the setting."""

from __future__ import annotations

import math

import pytest
import torch

from paper_code.core.meta_loss import clipped_adam_steps, minibatch_gradients, minibatch_losses
from paper_code.runs.compilation import adam_state, fused_rollout
from paper_code.core.dataset import DistilledDataset
from paper_code.core.learners import LearnerSpec, forward, init_params, init_params_batch
from paper_code.core.policies import Categorical
from paper_code.core.rl import rollout
from paper_code.core.settings import PPMOConfig
from paper_code.envs import BatchedNDCartPole
from paper_code.runs.training import distill

TINY = dict(size=16, num_envs=4, num_steps=25, update_epochs=2, minibatch_size=40, eval_every=0)


def _problem(policy: str):
    """Flat inputs of :func:`minibatch_losses` for a small MLP learner (``policy`` head)."""
    g = torch.Generator().manual_seed(1)
    B, D, A, M = 12, 4, 3, 30
    spec = LearnerSpec(hidden=(16, 16), policy=policy)
    states = torch.randn(B, D, generator=g, requires_grad=True)
    labels = torch.randn(B, A, generator=g, requires_grad=True)
    log_lr = torch.tensor(math.log(0.2), requires_grad=True)
    log_std_target = torch.zeros(A, requires_grad=True) if policy == "gaussian" else None
    theta0 = init_params_batch(spec, D, A, 1, g)
    critic = {k: v.requires_grad_() for k, v in init_params(LearnerSpec(hidden=(16, 16), output_gain=1.0), D, 1, g).items()}
    obs = torch.randn(1, M, D, generator=g)
    actions = torch.randn(1, M, A, generator=g) if policy == "gaussian" else torch.randint(A, (1, M), generator=g)
    old_logp = -torch.rand(1, M, generator=g) - 0.5
    adv, ret = torch.randn(1, M, generator=g), torch.randn(1, M, generator=g)
    leaves = [states, labels, log_lr, *([log_std_target] if log_std_target is not None else []), *critic.values()]
    args = (states, labels, log_lr, log_std_target, None, theta0, critic, obs, actions, old_logp, adv, old_logp, ret)
    return args, leaves, dict(activation="tanh", policy=policy, clip_coef=0.2, ent_coef=0.01, norm_adv=True,
                              ratio_mode="logprob", vf_coef=0.5)


@pytest.mark.parametrize("policy", ["categorical", "gaussian"])
def test_the_compiled_update_objective_and_its_gradients_equal_eager(policy):
    args, leaves, kw = _problem(policy)
    results = []
    for fn in (minibatch_losses, torch.compile(minibatch_losses, dynamic=False)):
        loss, v_loss, stats = fn(*args, **kw)
        grads = torch.autograd.grad(loss + v_loss, leaves)
        results.append((loss.detach(), v_loss.detach(), stats, grads))
    (l0, v0, s0, g0), (l1, v1, s1, g1) = results
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(v1, v0, rtol=1e-5, atol=1e-6)
    assert s1.keys() == s0.keys()
    for k in s0:
        torch.testing.assert_close(s1[k], s0[k], rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g0):
        assert b.abs().sum() > 0  # a gradient that is there, through the inner step
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # what a compiled run uses: the same gradients as a pure function (torch.func.grad), compiled
    with torch.no_grad():
        grads, (v_loss, stats) = torch.compile(minibatch_gradients, dynamic=False)(
            *(a.detach() if isinstance(a, torch.Tensor) else a for a in args[:6]),
            {k: v.detach() for k, v in args[6].items()}, *args[7:], **kw)
    flat = [g for g in grads[:4] if g is not None] + list(grads[5].values())
    assert grads[4] is None and (grads[3] is None) == (policy == "categorical")
    for a, b in zip(flat, g0, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(v_loss, v0, rtol=1e-5, atol=1e-6)


def test_the_fused_cartpole_step_reproduces_the_unfused_rollout():
    spec = LearnerSpec(hidden=(16, 16))
    params = init_params(spec, 8, 4, torch.Generator().manual_seed(3))
    rolls = []
    for fused in (False, True):
        env = BatchedNDCartPole(6, dof=2, seed=5, check_actions=False)
        obs = env.reset()
        g = torch.Generator().manual_seed(7)
        steps_fn = fused_rollout(env, params, "tanh") if fused else None  # 305 steps: 30 calls of 10, one of 5
        rolls.append(rollout(env, obs, lambda o: forward(params, o, "tanh"), 305, g, Categorical, None, steps_fn))
        rolls[-1]["env_after"] = torch.cat([env.state.flatten(), env.elapsed.float(), env.returns])
    eager, fused = rolls
    assert eager["terminated"].any()  # episodes ended and restarted inside the rollout
    for k in ("actions", "terminated", "truncated"):
        assert torch.equal(fused[k], eager[k]), k
    for k in ("obs", "out", "final_obs", "episode_returns", "rewards", "last_obs", "env_after"):
        torch.testing.assert_close(fused[k], eager[k], rtol=1e-5, atol=1e-5)


def test_a_compiled_run_matches_an_eager_run_and_resumes_across_the_setting(tmp_path):
    cfg = PPMOConfig(env_kwargs={"dof": 2}, **TINY)
    eager = distill(cfg, tmp_path / "eager.safetensors", 4, progress=False)
    compiled = distill(PPMOConfig(**{**cfg.to_dict(), "compile": True, "learner": cfg.learner}),
                       tmp_path / "compiled.safetensors", 4, progress=False)
    a, b = (DistilledDataset.load(tmp_path / f"{n}.safetensors") for n in ("eager", "compiled"))
    torch.testing.assert_close(b.states, a.states, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(b.labels, a.labels, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(b.lr, a.lr, rtol=1e-5, atol=1e-7)
    assert [h["episodes"] for h in compiled.history] == [h["episodes"] for h in eager.history]
    # an eager checkpoint continues compiled (and the other way): compile is how, not what
    distill(cfg, tmp_path / "mixed.safetensors", 2, progress=False)
    resumed = distill(PPMOConfig(**{**cfg.to_dict(), "compile": True, "learner": cfg.learner}),
                      tmp_path / "mixed.safetensors", 4, resume=True, progress=False)
    assert resumed.meta_epoch == 4
    torch.testing.assert_close(DistilledDataset.load(tmp_path / "mixed.safetensors").states, a.states,
                               rtol=1e-4, atol=1e-5)


def test_compile_must_be_a_boolean():
    with pytest.raises(ValueError, match="compile must be true or false"):
        PPMOConfig(compile="yes")


def test_the_compiled_clip_and_adam_steps_equal_clip_grad_norm_and_adam():
    shapes = [(5, 3), (3,), ()]
    runs = []
    for compiled in (False, True):
        params = [torch.randn(s, generator=torch.Generator().manual_seed(9)).requires_grad_() for s in shapes]
        opt = torch.optim.Adam(params, lr=1e-2, eps=1e-5, fused=True)
        step = torch.compile(clipped_adam_steps, dynamic=False)
        gen = torch.Generator().manual_seed(4)
        for i in range(6):
            for p in params:  # norms above the clip (~13) and below it (~0.04)
                p.grad = (3 if i % 2 else 0.01) * torch.randn(p.shape, generator=gen)
            if compiled:
                with torch.no_grad():
                    step([adam_state(opt)], max_norm=0.5, lr=[1e-2], beta1=0.9, beta2=0.999, eps=1e-5)
            else:
                torch.nn.utils.clip_grad_norm_(params, 0.5)
                opt.step()
        runs.append((params, opt.state_dict()))
    (p0, s0), (p1, s1) = runs
    for a, b in zip(p1, p0):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for k in s0["state"]:  # the same optimiser state: a checkpoint resumes either way
        assert s1["state"][k].keys() == s0["state"][k].keys()
        for name in s0["state"][k]:
            torch.testing.assert_close(s1["state"][k][name], s0["state"][k][name], rtol=1e-5, atol=1e-7)
