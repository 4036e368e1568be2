"""One run over several processes (torch.distributed, gloo on CPU): every rank keeps the same
dataset and critic, the averaged gradient is the mean of the ranks' own gradients, a run resumes
with the same world size (and only with it), and ``torchrun`` runs ``distill`` from the command line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from paper_code.core.dataset import DistilledDataset
from paper_code.core.settings import PPMOConfig

TINY = dict(env_kwargs={"dof": 1}, size=16, num_envs=4, num_steps=32, minibatch_size=64, update_epochs=2, eval_every=2,
            eval_learners=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, job: str, out: str, meta_epochs: int, resume: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        if job in ("distill", "distill-compiled"):
            from paper_code.runs.training import distill

            cfg = PPMOConfig(**TINY, compile=job == "distill-compiled")
            run = distill(cfg, out, meta_epochs, resume=resume, progress=False, checkpoint_every_s=0)
            torch.save({"states": run.states.detach(), "labels": run.labels.detach(), "log_lr": run.log_lr.detach(),
                        "critic": {k: v.detach() for k, v in run.critic.items()}, "env_steps": run.env_steps,
                        "obs": run.obs}, f"{out}.rank{rank}.pt")
        elif job in ("sums", "sums-no-shm"):
            from paper_code.runs import distributed as D

            if job == "sums-no-shm":
                os.environ["PAPER_CODE_SHARED_MEMORY"] = "0"
            g = torch.Generator().manual_seed(rank)
            cases = [torch.randn(7, 5, generator=g) for _ in range(5)]  # several calls: the two buffers alternate
            cases += [torch.randn(D.SHM_MAX_NUMEL + 3, generator=g), torch.randn(9, dtype=torch.float64, generator=g)]
            sums = [D.sum_over_ranks(c.clone()) for c in cases]
            shared = next(iter(D._shared.values()))
            torch.save({"cases": cases, "sums": sums, "shared": shared is not None}, f"{out}.rank{rank}.pt")
        elif job == "gradients":
            from paper_code.runs.distributed import average_gradients
            from paper_code.runs.training import new_run

            run = new_run(PPMOConfig(**TINY))
            run.meta_epoch_step()  # rank-specific experience; then one more backward by hand
            loss = (run.states.pow(2).sum() + run.labels.sum()) * (rank + 1) + run.log_lr * (rank + 2)
            run.data_opt.zero_grad()
            loss.backward()
            own = [p.grad.clone() for p in run.data_params]
            average_gradients(run.data_params)
            torch.save({"own": own, "averaged": [p.grad.clone() for p in run.data_params]}, f"{out}.rank{rank}.pt")
        # every rank past its last collective before any tears gloo down (a rank that destroyed its group
        # while another's last all-gather was still in flight once aborted that rank: "terminate called
        # without an active exception")
        dist.barrier()
    finally:
        dist.destroy_process_group()
    if job in ("sums", "sums-no-shm"):  # the shared-memory cache let its group go with the group
        from paper_code.runs import distributed as D

        Path(f"{out}.rank{rank}.cached").write_text(str(len(D._shared)))


def _spawn(job: str, out, meta_epochs: int = 0, resume: bool = False, world: int = 2) -> list[dict]:
    mp.spawn(_worker, args=(world, _free_port(), job, str(out), meta_epochs, resume), nprocs=world, join=True)
    return [torch.load(f"{out}.rank{r}.pt", weights_only=True) for r in range(world)]


def test_two_ranks_keep_the_same_dataset_and_critic(tmp_path):
    a, b = _spawn("distill", tmp_path / "d.safetensors", 4)
    for k in ("states", "labels", "log_lr"):
        assert torch.equal(a[k], b[k]), k
    assert all(torch.equal(a["critic"][k], b["critic"][k]) for k in a["critic"])
    assert not torch.equal(a["obs"], b["obs"])  # each rank its own environments
    ds = DistilledDataset.load(tmp_path / "d.safetensors")  # written by rank 0
    assert torch.equal(ds.states, a["states"]) and ds.provenance["env_steps"] == 4 * 4 * 32 * 2 == a["env_steps"]


def test_two_compiled_ranks_keep_the_same_dataset_as_two_eager_ranks(tmp_path):
    # compile=True over two processes: gradients and steps are two compiled calls with the all-reduce between
    eager = _spawn("distill", tmp_path / "eager.safetensors", 3)
    a, b = _spawn("distill-compiled", tmp_path / "compiled.safetensors", 3)
    for k in ("states", "labels", "log_lr"):
        assert torch.equal(a[k], b[k]), k
        torch.testing.assert_close(a[k], eager[0][k], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("job", ["sums", "sums-no-shm"])
def test_sums_over_three_ranks_are_exact_and_the_same_on_every_rank(tmp_path, job):
    # small float32 tensors go through shared memory (ranks on one host), the rest through gloo
    ranks = _spawn(job, tmp_path / "s", world=3)
    assert all(r["shared"] == (job == "sums") for r in ranks)
    # no process group outlives destroy_process_group in the cache (one that did was torn down at
    # interpreter exit, and a CI run lost a rank to it: "terminate called without an active exception")
    assert [Path(f"{tmp_path / 's'}.rank{r}.cached").read_text() for r in range(3)] == ["0"] * 3
    for i, total in enumerate(ranks[0]["sums"]):
        expected = ranks[0]["cases"][i] + ranks[1]["cases"][i] + ranks[2]["cases"][i]  # in rank order
        assert torch.equal(total, expected), i
        assert all(torch.equal(r["sums"][i], total) for r in ranks[1:])


def test_the_averaged_gradient_is_the_mean_of_the_ranks_gradients(tmp_path):
    a, b = _spawn("gradients", tmp_path / "g")
    for own_a, own_b, avg_a, avg_b in zip(a["own"], b["own"], a["averaged"], b["averaged"]):
        assert not torch.equal(own_a, own_b)
        assert torch.allclose(avg_a, (own_a + own_b) / 2, rtol=1e-6, atol=1e-7) and torch.equal(avg_a, avg_b)


def test_a_resumed_two_rank_run_equals_an_uninterrupted_one(tmp_path, capsys):
    whole = _spawn("distill", tmp_path / "whole.safetensors", 4)
    _spawn("distill", tmp_path / "part.safetensors", 2)
    resumed = _spawn("distill", tmp_path / "part.safetensors", 4, resume=True)
    for w, r in zip(whole, resumed):
        assert all(torch.equal(w[k], r[k]) for k in ("states", "labels", "log_lr", "obs"))
    # one process cannot continue a two-process run
    from paper_code.__main__ import main

    rc = main(["distill", "--preset", "cartpole-nd1", "--size", "16", "--num-envs", "4", "--num-steps", "32",
               "--minibatch-size", "64", "--update-epochs", "2", "--eval-every", "2", "--eval-learners", "2",
               "--meta-epochs", "6", "--out", str(tmp_path / "part.safetensors"), "--resume", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "same world size" in err[0], err


def test_torchrun_runs_distill_from_the_command_line(tmp_path):
    out = tmp_path / "t.safetensors"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "-m", "paper_code", "distill", "--preset", "cartpole-nd1", "--meta-epochs", "2", "--num-steps", "32",
           "--eval-every", "0", "--out", str(out), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("wrote") == 1  # rank 0 reports
    prov = DistilledDataset.load(out).provenance
    assert prov["env_steps"] == 2 * 10 * 32 * 2
    assert prov["world_size"] == 2 and prov["backend"] == "gloo"  # the per-rank seeds depend on it
