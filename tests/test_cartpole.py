"""ND cart-pole: both faces against gymnasium's CartPole-v1, against each other, and bad input."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import paper_code  # noqa: F401  (registers the env)
from paper_code.envs import ND_CARTPOLE_ID, BatchedNDCartPole, NDCartPoleEnv, make_batched
from paper_code.envs.cartpole import failed, integrate

TOL = 1e-5
THETA_MAX = 12 * 2 * math.pi / 360


def _episode_pairs(num_episodes: int, seed: int):
    """Yield per episode the reference CartPole-v1 trajectory: initial state, actions, outputs."""
    ref = gym.make("CartPole-v1")
    rng = np.random.default_rng(seed)
    for ep in range(num_episodes):
        obs, _ = ref.reset(seed=seed + ep)
        init = ref.unwrapped.state.copy()
        steps = []
        while True:
            a = int(rng.integers(2)) if ep % 2 == 0 else int(obs[2] + 0.5 * obs[3] > 0)
            obs, r, term, trunc, _ = ref.step(a)
            steps.append((a, obs.copy(), r, term, trunc))
            if term or trunc:
                break
        yield init, steps
    ref.close()


def test_gym_face_equals_cartpole_v1_step_by_step():
    env = gym.make(ND_CARTPOLE_ID, dof=1)
    n_ep, n_steps = 0, 0
    for init, steps in _episode_pairs(12, seed=100):
        env.reset(seed=0)
        env.unwrapped.set_state(init)
        for a, obs_ref, r_ref, term_ref, trunc_ref in steps:
            obs, r, term, trunc, _ = env.step(a)
            np.testing.assert_allclose(obs, obs_ref, atol=TOL, rtol=0)
            assert (r, term, trunc) == (r_ref, term_ref, trunc_ref)
            n_steps += 1
        n_ep += 1
    assert n_ep >= 10 and n_steps > 10 * 9


@pytest.mark.parametrize("force_torch", [False, True])
def test_batched_face_equals_cartpole_v1_step_by_step(force_torch):
    n_ep = 0
    saw_truncation = False
    for init, steps in _episode_pairs(12, seed=200):
        env = BatchedNDCartPole(1, 1, dtype=torch.float64, seed=0, force_torch=force_torch)
        env.set_state(torch.tensor(init)[None])
        for i, (a, obs_ref, r_ref, term_ref, trunc_ref) in enumerate(steps):
            out = env.step(torch.tensor([a]))
            np.testing.assert_allclose(out.final_obs[0].numpy(), obs_ref, atol=TOL, rtol=0)
            assert out.reward[0].item() == r_ref
            assert bool(out.terminated[0]) == term_ref and bool(out.truncated[0]) == trunc_ref
            if i < len(steps) - 1:  # mid-episode the next observation is the state itself
                np.testing.assert_allclose(out.obs[0].numpy(), obs_ref, atol=TOL, rtol=0)
        saw_truncation |= steps[-1][4]
        assert out.episode_length[0].item() == len(steps) == out.episode_return[0].item()
        n_ep += 1
    assert n_ep >= 10 and saw_truncation  # the controlled episodes reach the 500-step limit


def test_float32_batched_face_close_to_cartpole_v1():
    """The default float32 state follows gymnasium's float64 state closely over an episode."""
    (init, steps), = list(_episode_pairs(1, seed=7))
    env = BatchedNDCartPole(1, 1, seed=0)
    env.set_state(torch.tensor(init)[None])
    for a, obs_ref, *_ in steps[:50]:
        out = env.step(torch.tensor([a]))
        np.testing.assert_allclose(out.final_obs[0].numpy(), obs_ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("force_torch", [False, True])
@pytest.mark.parametrize("dof", [1, 2, 3, 4, 5])
def test_faces_agree_for_identical_states_and_actions(dof, force_torch):
    B = 8
    rng = np.random.default_rng(dof)
    init = rng.uniform(-0.05, 0.05, size=(B, dof, 4))
    batched = BatchedNDCartPole(B, dof, dtype=torch.float64, seed=0, force_torch=force_torch)
    batched.set_state(torch.tensor(init))
    singles = [gym.make(ND_CARTPOLE_ID, dof=dof) for _ in range(B)]
    for b, e in enumerate(singles):
        e.reset(seed=b)
        e.unwrapped.set_state(init[b])
    alive = np.ones(B, dtype=bool)
    for _ in range(200):
        actions = rng.integers(2 * dof, size=B)
        out = batched.step(torch.tensor(actions))
        for b, e in enumerate(singles):
            if not alive[b]:
                continue
            obs, r, term, trunc, _ = e.step(int(actions[b]))
            np.testing.assert_allclose(out.final_obs[b].numpy(), obs, atol=TOL, rtol=0)
            assert out.reward[b].item() == r
            assert bool(out.terminated[b]) == term and bool(out.truncated[b]) == trunc
            if term or trunc:
                alive[b] = False
        if not alive.any():
            break
    assert not alive.any()  # random actions end every episode well before 200 steps


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 5])
def test_dims(dof):
    env = gym.make(ND_CARTPOLE_ID, dof=dof)
    assert env.observation_space.shape == (4 * dof,)
    assert env.action_space.n == 2 * dof
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4 * dof,) and obs.dtype == np.float32
    assert np.all(np.abs(obs) <= 0.05)
    batched = BatchedNDCartPole(16, dof, seed=0)
    assert (batched.observation_size, batched.num_actions) == (4 * dof, 2 * dof)
    o = batched.reset()
    assert o.shape == (16, 4 * dof) and bool((o.abs() <= 0.05).all())


@pytest.mark.parametrize("dof", [2, 3, 4, 5])
def test_action_pushes_one_axis_others_evolve_unforced(dof):
    rng = np.random.default_rng(0)
    init = rng.uniform(-0.05, 0.05, size=(dof, 4))
    for a in range(2 * dof):
        env = NDCartPoleEnv(dof)
        env.reset(seed=0)
        env.set_state(init)
        obs, *_ = env.step(a)
        state = obs.reshape(dof, 4)
        for axis in range(dof):
            force = (10.0 if a % 2 == 1 else -10.0) if axis == a // 2 else 0.0
            one = NDCartPoleEnv(1)
            one.reset(seed=0)
            one.set_state(init[axis])
            if force == 0.0:
                expected = integrate(init[axis][None], np.zeros(1), np)[0]
            else:
                expected, *_ = one.step(int(force > 0))
            np.testing.assert_allclose(state[axis], expected, atol=1e-6)


@pytest.mark.parametrize("dof", [2, 3, 4, 5])
@pytest.mark.parametrize("column,limit", [(0, 2.4), (2, THETA_MAX)])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_termination_when_any_axis_leaves_bounds(dof, column, limit, sign):
    # every axis at rest in the centre, except the last one which is just inside a bound and moving out
    for inside_margin, expect in [(1e-3, True), (0.5 * limit, False)]:
        state = np.zeros((dof, 4))
        state[-1, column] = sign * (limit - inside_margin)
        state[-1, column + 1] = sign * 1.0  # velocity carries it over the bound in one step (tau * 1 > 1e-3)
        env = NDCartPoleEnv(dof)
        env.reset(seed=0)
        env.set_state(state)
        _, r, term, trunc, _ = env.step(0)
        assert (term, trunc, r) == (expect, False, 1.0)
        batched = BatchedNDCartPole(1, dof, dtype=torch.float64, seed=0)
        batched.set_state(torch.tensor(state)[None])
        out = batched.step(torch.tensor([0]))
        assert bool(out.terminated[0]) == expect
    assert bool(failed(np.zeros((dof, 4)))) is False


@pytest.mark.parametrize("dof", [1, 3])
def test_truncation_at_500_steps(dof):
    env = gym.make(ND_CARTPOLE_ID, dof=dof)
    assert env.spec.max_episode_steps == 500
    batched = BatchedNDCartPole(4, dof, dtype=torch.float64, seed=0)
    batched.set_state(torch.zeros(4, dof, 4))
    env.reset(seed=0)
    env.unwrapped.set_state(np.zeros((dof, 4)))
    # from the upright equilibrium, the hand-written controller keeps every axis up
    from paper_code.pipeline.reference_policies import CartPoleController

    controller = CartPoleController(dof)
    obs = np.zeros(4 * dof, dtype=np.float32)
    for t in range(500):
        a = int(controller(torch.as_tensor(obs)[None])[0])
        obs, _, term, trunc, _ = env.step(a)
        out = batched.step(torch.full((4,), a))
        assert not term and not bool(out.terminated.any())
        assert trunc == (t == 499) and bool(out.truncated.all()) == (t == 499)
    assert out.episode_length.tolist() == [500] * 4 and out.episode_return.tolist() == [500.0] * 4
    # auto-reset: the batched envs start anew in the same call
    assert bool((out.obs.abs() <= 0.05).all()) and batched.elapsed.tolist() == [0] * 4


def test_auto_reset_tracks_returns_per_env():
    env = BatchedNDCartPole(64, 2, seed=3)
    env.reset()
    g = torch.Generator().manual_seed(0)
    running = torch.zeros(64)
    ended_returns = []
    for _ in range(300):
        out = env.step(torch.randint(4, (64,), generator=g))
        running += out.reward
        done = out.terminated | out.truncated
        assert torch.equal(out.episode_return[done], running[done])
        assert torch.equal(out.episode_length[done].to(running), running[done])
        ended_returns.append(running[done].clone())
        running[done] = 0
    assert sum(len(r) for r in ended_returns) > 64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numpy_and_torch_arithmetic_paths_agree(dtype):
    """On the CPU the batched face computes through numpy views; the torch path (other devices) agrees."""
    envs = [BatchedNDCartPole(256, 3, seed=5, dtype=dtype, force_torch=ft) for ft in (False, True)]
    obs = [e.reset() for e in envs]
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        a = torch.randint(6, (256,), generator=g)
        outs = [e.step(a) for e in envs]
        for f in outs[0]._fields:
            x, y = getattr(outs[0], f), getattr(outs[1], f)
            if x is None:  # life_lost: a cart-pole has no lives
                assert y is None, f
                continue
            assert x.dtype == y.dtype and x.shape == y.shape, f
            if x.dtype.is_floating_point:
                torch.testing.assert_close(x, y, atol=1e-5 if dtype == torch.float32 else 1e-12, rtol=0)
            else:
                assert torch.equal(x, y), f


def test_batched_reset_is_seeded():
    a = BatchedNDCartPole(32, 3, seed=1).reset()
    b = BatchedNDCartPole(32, 3, seed=1).reset()
    c = BatchedNDCartPole(32, 3, seed=2).reset()
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 5])
def test_gymnasium_env_checker(dof):
    env = gym.make(ND_CARTPOLE_ID, dof=dof)
    check_env(env.unwrapped, skip_render_check=True)


def test_gymnasium_vector_env():
    venv = gym.make_vec(ND_CARTPOLE_ID, num_envs=3, vectorization_mode="sync", dof=2)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, 8)
    obs, r, term, trunc, _ = venv.step(np.array([0, 3, 2]))
    assert obs.shape == (3, 8) and r.tolist() == [1.0, 1.0, 1.0]
    venv.close()


def test_make_batched_lookup():
    assert make_batched(ND_CARTPOLE_ID, 4, dof=3).observation_size == 12
    assert make_batched("CartPole-v1", 4).num_actions == 2
    with pytest.raises(ValueError, match="no batched tensor environment for 'Nope-v0'"):
        make_batched("Nope-v0", 4)


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("dof", [0, -1, 2.5, "3", True, None])
def test_bad_dof(dof):
    with pytest.raises(ValueError, match="dof must be a positive integer"):
        gym.make(ND_CARTPOLE_ID, dof=dof)
    with pytest.raises(ValueError, match="dof must be a positive integer"):
        BatchedNDCartPole(4, dof)


@pytest.mark.parametrize("num_envs", [0, -3, 1.5])
def test_bad_num_envs(num_envs):
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        BatchedNDCartPole(num_envs, 1)


@pytest.mark.parametrize("action", [-1, 6, 100])
def test_gym_face_action_out_of_range(action):
    env = gym.make(ND_CARTPOLE_ID, dof=3).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"out of range: actions must be in \[0, 6\) for dof=3"):
        env.step(action)


@pytest.mark.parametrize("action", [1.0, np.array([1, 2]), "1"])
def test_gym_face_action_wrong_type(action):
    env = NDCartPoleEnv(3)
    env.reset(seed=0)
    with pytest.raises(TypeError, match="action must be an integer"):
        env.step(action)


def test_batched_face_bad_actions():
    env = BatchedNDCartPole(4, 2, seed=0)
    env.reset()
    with pytest.raises(ValueError, match=r"action 4 out of range: actions must be in \[0, 4\)"):
        env.step(torch.tensor([0, 1, 4, 2]))
    with pytest.raises(ValueError, match="out of range"):
        env.step(torch.tensor([0, -1, 1, 2]))
    with pytest.raises(ValueError, match=r"actions must have shape \(4,\)"):
        env.step(torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"actions must have shape \(4,\)"):
        env.step(torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(TypeError, match="actions must be integers"):
        env.step(torch.zeros(4))


def test_batched_face_bad_state_shape_and_order():
    env = BatchedNDCartPole(4, 2, seed=0)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"state must have shape \(4, 2, 4\) or \(4, 8\)"):
        env.set_state(torch.zeros(3, 2, 4))
    with pytest.raises(ValueError, match="state must have 8 elements"):
        NDCartPoleEnv(2).set_state(np.zeros(4))


def test_gym_face_requires_reset():
    with pytest.raises(RuntimeError, match="call reset"):
        NDCartPoleEnv(2).step(0)


def test_package_defaults_to_one_thread():
    assert torch.get_num_threads() == int(__import__("os").environ.get("PAPER_CODE_NUM_THREADS", "1"))


def test_controller_balances_every_dof():
    from paper_code.pipeline.reference_policies import CartPoleController
    from paper_code.core.evaluation import first_episode_returns

    for dof in range(1, 6):
        returns, lengths = first_episode_returns(BatchedNDCartPole(20, dof, seed=dof), CartPoleController(dof), seed=dof)
        assert torch.equal(returns, lengths.to(returns))
        assert returns.mean().item() > 400


def test_gymnasium_face_renders_passes_check_env_and_has_a_vector_entry_point():
    spec = gym.spec(ND_CARTPOLE_ID)
    assert spec.reward_threshold == 475.0 and spec.max_episode_steps == 500
    env = gym.make(ND_CARTPOLE_ID, dof=3, render_mode="rgb_array")
    check_env(env.unwrapped)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (300, 400, 3) and frame.dtype == np.uint8 and (frame < 255).any()
    env.unwrapped.set_state(np.zeros((3, 4)))
    centred = env.render()
    env.unwrapped.set_state(np.array([[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    moved = env.render()
    assert (centred[:100] != moved[:100]).any() and (centred[100:] == moved[100:]).all()  # one panel per axis
    with pytest.raises(ValueError, match="rgb_array"):
        NDCartPoleEnv(2, render_mode="human")
    venv = gym.make_vec(ND_CARTPOLE_ID, num_envs=8, dof=2)
    assert type(venv).__name__ == "NDCartPoleVectorEnv" and venv.single_action_space.n == 4
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (8, 8) and obs.dtype == np.float32
    ended = 0
    for _ in range(100):
        obs, reward, term, trunc, info = venv.step(venv.action_space.sample())
        done = term | trunc
        if done.any():  # same-step autoreset: the ended episode's last observation is in the infos
            assert (info["_final_obs"] == done).all() and np.abs(info["final_obs"][done]).max() > 0
        ended += int(done.sum())
    assert ended > 0 and (reward == 1.0).all()
