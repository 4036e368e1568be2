"""The GPU path (issue 22): a run on ``--device cuda`` keeps everything it creates on the GPU and
gives a dataset that evaluates. These tests run only where CUDA is available and are skipped
otherwise. They passed on an NVIDIA H200 (torch 2.11.0+cu130) on 2026-11-30:
results/benchmarks/gpu.md; ``benchmarks/gpu_checks.sh`` runs them with the GPU benchmarks."""

from __future__ import annotations

import math

import pytest
import torch

from paper_code.core.dataset import DistilledDataset
from paper_code.core.evaluation import evaluate_dataset
from paper_code.core.ppmo import PPMO
from paper_code.core.settings import PPMOConfig
from paper_code.project import project_root
from paper_code.pipeline.experiments import scale_config
from paper_code.runs.training import distill

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
TINY = dict(size=16, num_envs=4, num_steps=25, update_epochs=2, minibatch_size=50, eval_every=2, eval_learners=3)


def _on_cuda(run: PPMO) -> None:
    tensors = [run.states, run.labels, run.log_lr, *run.critic.values(), *run.encoder.values()]
    assert all(t.device.type == "cuda" for t in tensors)
    assert all(getattr(run, g).device.type == "cuda" for g in ("g_init", "g_act", "g_perm"))


def test_cartpole_distils_and_evaluates_on_cuda(tmp_path):
    out = tmp_path / "nd2.safetensors"
    run = distill(PPMOConfig(env_kwargs={"dof": 2}, device="cuda", **TINY), out, 3, progress=False)
    _on_cuda(run)
    assert run.obs.device.type == "cuda"  # the tensor cart-pole steps on the GPU
    r = evaluate_dataset(DistilledDataset.load(out), learners=8, episodes=2, device="cuda")
    assert math.isfinite(r.mean) and r.returns.shape == (8, 2)


def test_a_committed_mujoco_dataset_evaluates_on_cuda():
    ds = DistilledDataset.load(project_root() / "results" / "mujoco" / "datasets" / "InvertedPendulum-v5_b64.safetensors")
    gpu = evaluate_dataset(ds, learners=4, episodes=1, device="cuda")
    assert math.isfinite(gpu.mean) and gpu.mean > 100  # the committed set balances (1000 on CPU)


def test_atari_distils_on_cuda(tmp_path):
    cfg = scale_config("atari-Breakout-l2", {**TINY, "max_episode_steps": 50}, device="cuda")
    run = distill(cfg, tmp_path / "breakout.safetensors", 2, progress=False)
    _on_cuda(run)
    ds = DistilledDataset.load(tmp_path / "breakout.safetensors")
    assert len(ds.encoder) == 4 and math.isfinite(evaluate_dataset(ds, learners=2, episodes=1, device="cuda").mean)
