"""Atari: the Nature-CNN learner and its split, the encoder in the dataset file, the preprocessed env."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest
import torch

from paper_code.core.dataset import DatasetError, DistilledDataset
from paper_code.core.evaluation import evaluate_dataset, learner_policy, trained_learners
from paper_code.core.inner import inner_step
from paper_code.core.learners import NATURE_CNN, cnn_forward, forward, init_encoder, init_params
from paper_code.core.ppmo import PPMO
from paper_code.envs import make_env
from paper_code.pipeline.experiments import scale_config
from paper_code.pipeline.presets import atari_learner
from paper_code.pipeline.state_dependence import one_step_actions
from paper_code.runs.training import distill

TINY = {"seed": 0, "max_episode_steps": 40, "eval_every": 0, "eval_learners": 1, "num_envs": 2, "num_steps": 8,
        "minibatch_size": 8, "update_epochs": 1}


def test_nature_cnn_split_composes_to_the_whole_network():
    g = torch.Generator().manual_seed(0)
    full = init_params(atari_learner(0), (4, 84, 84), 6, g)
    assert [tuple(full[f"c{i}.weight"].shape) for i in range(5)] == [(32, 4, 8, 8), (64, 32, 4, 4), (64, 64, 3, 3),
                                                                     (512, 3136), (6, 512)]
    x = torch.rand(3, 4, 84, 84, generator=g)
    y = forward(full, x, "relu")
    for l in range(1, len(NATURE_CNN)):
        enc = {k: v for k, v in full.items() if int(k[1]) < l}
        learner = {k: v for k, v in full.items() if int(k[1]) >= l}
        torch.testing.assert_close(forward(learner, cnn_forward(enc, x), "relu"), y)
        assert sorted(init_encoder(atari_learner(l), (4, 84, 84), g)) == sorted(enc)
    # the inner step only changes the learner's layers
    l = 3
    enc = init_encoder(atari_learner(l), (4, 84, 84), g)
    th0 = init_params(atari_learner(l), (4, 84, 84), 6, g)
    th1 = inner_step(th0, cnn_forward(enc, x), torch.randn(3, 6, generator=g), torch.tensor(0.1), "relu")
    assert sorted(th1) == ["c3.bias", "c3.weight", "c4.bias", "c4.weight"]
    with pytest.raises(ValueError, match="split"):
        atari_learner(5)


def test_the_fast_frame_paths_keep_the_values():
    """Issue 23's speed-ups change layouts and buffers, not what a learner sees: channels-last
    frames normalise to exactly the reference formula, the float32 pixel statistics match float64
    ones, channels-last convolutions match NCHW ones (also under vmap, which keeps NCHW)."""
    from paper_code.core.observations import RunningMeanStd, normalize_obs, prepare

    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, 5, 4, 84, 84), generator=g, dtype=torch.uint8)
    mean = torch.rand(4, 84, 84, generator=g, dtype=torch.float64)
    var = torch.rand(4, 84, 84, generator=g, dtype=torch.float64) * 0.1
    x = prepare(frames, mean, var, scale=0.5)
    assert x.shape == frames.shape and x.dtype == torch.float32
    assert torch.equal(x, normalize_obs(frames.float() / 255, mean, var, scale=0.5))  # bit for bit
    assert torch.equal(prepare(frames[0, 0], mean, var), normalize_obs(frames[0, 0].float() / 255, mean, var))
    assert torch.equal(prepare(frames), frames.float() / 255)
    rms, ref = RunningMeanStd((4, 84, 84)), RunningMeanStd((4, 84, 84))
    for batch in frames:  # uint8 batches count as [0, 1] values; moments in float32, merged in float64
        rms.update(batch)
        ref.update(batch.double() / 255)
    torch.testing.assert_close(rms.mean, ref.mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(rms.var, ref.var, rtol=0, atol=1e-6)
    assert rms.count == ref.count
    params = init_params(atari_learner(0), (4, 84, 84), 6, g)
    flat = x.flatten(0, 1)
    nchw = torch.nn.functional.conv2d(flat.contiguous(), params["c0.weight"], params["c0.bias"], stride=4)
    torch.testing.assert_close(cnn_forward({k: params[k] for k in ("c0.weight", "c0.bias")}, x),
                               torch.relu(nchw).view(3, 5, *nchw.shape[1:]), rtol=1e-5, atol=1e-5)
    batched = torch.func.vmap(lambda p: cnn_forward(p, flat))({k: torch.stack([v, v]) for k, v in params.items()})
    torch.testing.assert_close(batched[1], cnn_forward(params, flat), rtol=1e-5, atol=1e-5)


def test_ales_vector_env_makes_gymnasiums_preprocessed_frames():
    """ale-py's vector env under this package's settings gives the frames, rewards and episode end of
    gymnasium's AtariPreprocessing + FrameStackObservation for the same emulator frames (no sticky
    actions and no no-ops on both sides, so that their different random streams do not enter; ale-py's
    noop_max=1 draws 0 no-ops). The one difference: ale-py pads a new episode's stack with blank frames
    where gymnasium repeats the first frame, so the newest frame of every stack is compared, and the
    padding checked."""
    import ale_py
    import gymnasium as gym
    import numpy as np
    from ale_py.vector_env import AtariVectorEnv as ALEVectorEnv
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    from paper_code.envs.atari import ale_settings

    gym.register_envs(ale_py)
    plain = gym.make("ALE/Breakout-v5", frameskip=1, repeat_action_probability=0.0)
    plain = FrameStackObservation(AtariPreprocessing(plain, noop_max=0, frame_skip=4, screen_size=84), 4)
    ale = ALEVectorEnv(num_envs=1, num_threads=1, autoreset_mode="SameStep",
                       **{**ale_settings("ALE/Breakout-v5", repeat_action_probability=0.0), "noop_max": 1})
    a, _ = plain.reset(seed=3)
    b, _ = ale.reset(seed=3)
    assert np.array_equal(a[-1], b[0, -1]) and not b[0, :-1].any() and np.array_equal(a[0], a[-1])
    rng, steps = np.random.default_rng(0), 0
    while True:
        action = int(rng.integers(0, 4))
        a, ra, ta, ua, _ = plain.step(action)
        b, rb, tb, ub, info = ale.step(np.array([action]))
        steps += 1
        frame = info["final_obs"][0, -1] if tb[0] else b[0, -1]
        assert np.array_equal(a[-1], frame) and ra == rb[0] and ta == tb[0] and ua == ub[0], steps
        if ta:
            break
    assert steps > 100 and a.std() > 0  # a whole game (5 lives) was compared
    plain.close()
    ale.close()


def test_atari_vector_env_episode_ends_and_seeds():
    """The package's AtariVectorEnv: max_episode_steps truncates and resets in the same step (the
    final observation kept, the new episode's stack padded), ALE's frame limit truncates, a whole
    game terminates; a seeded reset replays the same episodes, an unseeded one continues."""
    import numpy as np

    from paper_code.envs.atari import AtariVectorEnv, atari_id

    env = AtariVectorEnv(atari_id("Breakout"), 3, max_episode_steps=37)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, (120, 3))

    def play(seed):
        obs, _ = env.reset(seed=seed)
        seq, ends = [obs], []
        for t, a in enumerate(actions):
            obs, r, term, trunc, info = env.step(a)
            seq.append(obs)
            if (term | trunc).any():
                ends.append((t, term.copy(), trunc.copy()))
                assert np.array_equal(info["_final_obs"], term | trunc)
                for i in np.flatnonzero(term | trunc):
                    assert np.array_equal(info["final_obs"][i, :-1], seq[-2][i, 1:])  # the stack moved on by one
                    assert not obs[i, :-1].any() and obs[i, -1].any()  # a new episode: blank padding, first frame
        return np.stack(seq), ends

    first, ends = play(5)
    assert [t for t, _, _ in ends] == [36, 73, 110] and all(u.all() and not m.any() for _, m, u in ends)
    again, _ = play(5)
    other, _ = play(None)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    env.close()
    env = AtariVectorEnv(atari_id("Pong"), 2, max_num_frames_per_episode=203)  # ALE's limit, inside a frame skip
    env.reset(seed=0)
    for t in range(60):
        _, _, term, trunc, _ = env.step(np.array([0, 1]))
        if trunc.any():
            break
    assert trunc.all() and not term.any() and t < 51
    env.close()
    env = AtariVectorEnv(atari_id("Breakout"), 1)
    env.reset(seed=0)
    lost = 0
    for t in range(3000):  # random play loses 5 lives: the first 4 while the game goes on, then terminated
        _, _, term, trunc, info = env.step(rng.integers(0, 4, 1))
        lost += int(info["life_lost"].sum())
        assert not (info["life_lost"] & (term | trunc)).any()
        if term.any() or trunc.any():
            break
    assert term.all() and not trunc.any() and lost == 4
    env.close()
    with pytest.raises(ValueError, match="takes env_kwargs"):
        AtariVectorEnv(atari_id("Pong"), 1, frameskip=1)


def test_atari_env_is_preprocessed_and_uint8():
    env = make_env("ALE/Breakout-v5", 2, seed=0, max_episode_steps=20)
    obs = env.reset()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == torch.uint8 and env.num_actions == 4 and not env.continuous
    for _ in range(20):
        out = env.step(torch.tensor([1, 3]))
    assert out.truncated.all() and out.final_obs.dtype == torch.uint8 and (out.episode_length == 20).all()
    env.close()


def test_without_a_cap_an_atari_episode_is_followed_to_ales_own_end():
    """No max_episode_steps: evaluation runs up to ALE's 108,000 frames (27,000 agent steps), not a
    default of 1,000 steps (which scored every longer episode 0). Centipede's constant UPRIGHTFIRE
    lasts more than 1,000 steps on this seed (101); an episode cut off before its end is an error."""
    from paper_code.envs.atari import ale_step_cap
    from paper_code.core.evaluation import first_episode_returns
    from paper_code.pipeline.reference_policies import ConstantPolicy

    assert ale_step_cap("ALE/Centipede-v5") == 27_000 and ale_step_cap("ALE/Pong-v5", max_num_frames_per_episode=400) == 100
    env = make_env("ALE/Centipede-v5", 1, seed=0, repeat_action_probability=0.0)
    assert env.max_episode_steps == 27_000
    action = env.env.action_meanings().index("UPRIGHTFIRE")
    returns, lengths = first_episode_returns(env, ConstantPolicy(action), seed=101)
    assert lengths.item() > 1_000 and returns.item() > 0
    env.max_episode_steps = 1_000
    with pytest.raises(RuntimeError, match="did not end within"):
        first_episode_returns(env, ConstantPolicy(action), seed=101)
    env.close()


def test_encoder_is_saved_loaded_and_used_at_evaluation(tmp_path):
    cfg = scale_config("atari-Breakout-l2", TINY)
    out = tmp_path / "breakout_l2.safetensors"
    run = distill(cfg, out, 2, progress=False)
    ds = DistilledDataset.load(out)
    assert ds.learner == atari_learner(2) and ds.states.shape == (4, 4, 84, 84)
    assert sorted(ds.encoder) == ["c0.bias", "c0.weight", "c1.bias", "c1.weight"]
    for k, v in run.encoder.items():  # the trained encoder, not its initialisation
        assert torch.equal(ds.encoder[k], v.detach())
    fresh = PPMO(cfg)  # same seed: the encoder the run started from
    assert not torch.equal(ds.encoder["c0.weight"], fresh.encoder["c0.weight"].detach())
    # evaluation runs the learner on the encoder's features, for the states and for real frames
    env = make_env(ds.env_id, 2, seed=1, **ds.env_kwargs)
    obs = env.reset()
    params = trained_learners(ds, 2, observation_shape=env.observation_shape, num_actions=4,
                              generator=torch.Generator().manual_seed(3))
    assert sorted(params) == ["c2.bias", "c2.weight", "c3.bias", "c3.weight", "c4.bias", "c4.weight"]
    features = cnn_forward(ds.encoder, obs.float() / 255)
    want = forward({k: v[0] for k, v in params.items()}, features[:1], "relu").argmax(-1)
    policy = learner_policy(params, 2, "relu", greedy=True, generator=None,
                            normalize=lambda o: ds.features(ds.normalize(o)))
    assert int(policy(obs)[0]) == int(want[0])
    # a dataset whose encoder is missing is refused; a different encoder gives different learners
    broken = {k: v for k, v in ds.extra.items() if not k.startswith("encoder.c1")}
    with pytest.raises(DatasetError, match="encoder"):
        DistilledDataset(states=ds.states, labels=ds.labels, lr=ds.lr, env_id=ds.env_id, env_kwargs=ds.env_kwargs,
                         learner=ds.learner, extra=broken)
    other = DistilledDataset.load(out)
    other.extra["encoder.c0.weight"] = torch.randn_like(other.extra["encoder.c0.weight"])
    p2 = trained_learners(other, 2, observation_shape=env.observation_shape, num_actions=4,
                          generator=torch.Generator().manual_seed(3))
    assert not torch.equal(p2["c2.weight"], params["c2.weight"])
    r = evaluate_dataset(ds, learners=2, episodes=1)
    assert r.returns.shape == (2, 1) and r.cap is None
    env.close()
    cli = subprocess.run([sys.executable, "-m", "paper_code", "evaluate", str(out), "--learners", "1", "--episodes", "1",
                          "--json"], capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout.strip().splitlines()[-1])["env"] == "ALE/Breakout-v5"


def test_per_pixel_normalisation_is_frozen_into_an_atari_dataset(tmp_path):
    cfg = scale_config("atari-Breakout-l4", TINY, normalize_obs=True, init_state_std=0.5)
    assert cfg.normalize_obs and cfg.init_state_std == 0.5
    out = tmp_path / "breakout_norm.safetensors"
    run = distill(cfg, out, 2, progress=False)
    ds = DistilledDataset.load(out)
    # per-pixel statistics of the rollouts' frames scaled to [0, 1]: what never moved has variance ~0
    # (only the running statistics' prior, count 1e-4 at variance 1, is left)
    mean, var = ds.extra["obs_mean"], ds.extra["obs_var"]
    assert mean.shape == var.shape == (4, 84, 84) and 0 <= float(mean.min()) and float(mean.max()) <= 1
    assert float((var < 1e-5).float().mean()) > 0.5 and float(var.max()) > 1e-3
    torch.testing.assert_close(mean, run.obs_rms.mean.float())
    # synthetic states in normalised pixel space: N(0, 0.5^2) at the start, not uniform in [0, 1]
    assert float(PPMO(cfg).states.detach().min()) < 0
    # evaluation feeds the learners normalised frames: the dataset's statistics, not raw pixels
    env = make_env(ds.env_id, 2, seed=1, **ds.env_kwargs)
    obs = env.reset()
    from paper_code.core.observations import normalize_obs

    torch.testing.assert_close(ds.normalize(obs), normalize_obs(obs.float() / 255, mean, var))
    assert not torch.allclose(ds.features(ds.normalize(obs)), ds.features(obs.float() / 255))
    z = ds.normalize(obs)
    kept = (z.abs() < ds.normalization["clip"]) & (var > 1e-3)  # denormalize inverts normalize unless clipped
    assert bool(kept.any())
    torch.testing.assert_close(ds.denormalize(z)[kept], (obs.float() / 255)[kept], atol=1e-4, rtol=0)
    assert evaluate_dataset(ds, learners=2, episodes=1).returns.shape == (2, 1)
    env.close()
    # the state-dependence control replays each learner's sampled-action frequencies, state-blind
    ev = one_step_actions(ds, learners=2, seed=4)
    assert list(ev["mode"].unique()) == ["greedy", "sampled", "replayed"] and len(ev) == 6
    for i in range(2):
        row = ev[ev.learner == i].set_index("mode")
        assert all(sum(row.loc[m, "action_counts"]) == row.loc[m, "steps"] for m in ("greedy", "sampled", "replayed"))
        assert all(r == 0 for s, r in zip(row.loc["sampled", "action_counts"], row.loc["replayed", "action_counts"]) if s == 0)
    with pytest.raises(ValueError, match="normalize_obs"):
        scale_config("atari-Breakout-l4", TINY, normalize_obs=False, init_state_std=0.5)


def test_cli_distils_atari_with_per_pixel_normalisation_unless_raw_pixels(tmp_path):
    from paper_code.__main__ import build_parser

    out = tmp_path / "b.safetensors"
    cli = subprocess.run([sys.executable, "-m", "paper_code", "distill", "--env", "ALE/Breakout-v5", "--meta-epochs", "1",
                          "--max-episode-steps", "20", "--eval-every", "0", "--out", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    ds = DistilledDataset.load(out)
    assert ds.normalization is not None and ds.extra["obs_mean"].shape == (4, 84, 84)
    assert build_parser().parse_args(["distill", "--out", "x", "--raw-pixels"]).raw_pixels


def test_benchmark_flop_count_is_torchs():
    """benchmarks/bench_atari.py's network arithmetic per meta-epoch (its floor column) against
    torch's own flop counter on the ops the meta-epoch runs: the acting learner's and the critic's
    forward, then each one's forward and backward (the frames need no gradient)."""
    import importlib.util
    from pathlib import Path

    from torch.utils.flop_counter import FlopCounterMode

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_atari.py"
    spec = importlib.util.spec_from_file_location("bench_atari", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    g = torch.Generator().manual_seed(0)
    learner, critic = init_params(atari_learner(0), (4, 84, 84), 6, g), init_params(atari_learner(0), (4, 84, 84), 1, g)
    frames = torch.rand(2, 4, 84, 84, generator=g)
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            cnn_forward(learner, frames), cnn_forward(critic, frames)
        for params in (learner, critic):
            params = {k: v.requires_grad_() for k, v in params.items()}
            cnn_forward(params, frames).sum().backward()
    assert bench.network_gflop((4, 84, 84), 6, frames=2) == pytest.approx(counter.get_total_flops() / 1e9, rel=1e-3)
    assert bench.layer_macs((4, 84, 84), 6)[0] == 32 * 4 * 8 * 8 * 20 * 20  # the first conv: 20 x 20 outputs


_FAULTS_AFTER_AN_ENV = """
import resource, sys, torch
if sys.argv[1] == "env":
    from paper_code.envs.atari import AtariVectorEnv, atari_id
    AtariVectorEnv(atari_id("Breakout"), 2)
for _ in range(5):  # 64 MB temporaries, freed: the heap grows to hold them over the first few
    torch.empty(64 << 20, dtype=torch.uint8).fill_(1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    torch.empty(64 << 20, dtype=torch.uint8).fill_(1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.parametrize("with_env", [True, False])
def test_a_process_with_an_atari_env_keeps_freed_memory_for_reuse(with_env):
    # a meta-epoch's frame batches are large temporaries: once an Atari env exists, freed memory stays
    # in the process (runtime.configure_allocator) instead of coming back as fresh pages each time
    # (a dropped call cost ~130k page faults and ~6% of an Atari meta-epoch); without the env, glibc's
    # defaults: every 64 MB buffer its own mmap, 16k pages faulted each time. Of 8 buffers, at most one
    # may come fresh with the env (CI's machine once faulted one buffer's pages, 16,384, of 3): the
    # heap's layout differs between hosts; without the call all 8 do.
    out = subprocess.run([sys.executable, "-c", _FAULTS_AFTER_AN_ENV, "env" if with_env else "none"],
                         capture_output=True, text=True, check=True)
    faults, one_buffer = int(out.stdout.split()[-1]), (64 << 20) // resource.getpagesize()
    assert (faults <= one_buffer + 1_000) if with_env else (faults >= 7 * one_buffer), faults
