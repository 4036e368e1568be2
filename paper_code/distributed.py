"""One PPMO run over many processes (``torchrun``): data parallel meta-gradients.

Each rank steps its own environments and draws its own learner inits (its random streams and
environment seeds are offset by the rank; rank 0's are those of a one-process run). After each
minibatch's backward pass the gradients of the dataset tensors and of the critic are averaged over
ranks (:func:`average_gradients`, one collective each) before identical clipping and Adam steps, so
every rank holds the same dataset and critic. Observation and reward statistics are merged the same
way (:func:`gather_moments`), the per-meta-epoch statistics are averaged, and env steps are summed.
Rank 0 writes checkpoints (with every rank's own random and environment state), the dataset, the
log and the progress; a run resumes with the same world size.

With one process nothing here communicates: a world size of 1 is exactly the one-process run.
``DistributedDataParallel`` is not used: PyTorch does not support the second-order gradients the
meta-gradient takes through it.

    torchrun --nproc-per-node 2 -m paper_code distill --preset cartpole-nd1 --out nd1.safetensors
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.distributed as dist

#: the seed offset between ranks' random streams and environments (rank 0: none)
RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes files and shows progress (rank 0)."""
        return self.rank == 0


def world() -> World:
    """This process's place in the run (rank 0 of 1 without torch.distributed)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def launched() -> bool:
    """Whether ``torchrun`` (or another launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str = "cpu") -> World:
    """Join the process group ``torchrun`` describes (environment variables RANK, WORLD_SIZE,
    MASTER_ADDR, ...): gloo on CPU, NCCL on CUDA (each rank's ``cuda`` is then the GPU
    ``LOCAL_RANK``). A process not started by a launcher stays alone (world size 1)."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return world()
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed")
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return world()


def rank_seed(seed: int, w: World | None = None) -> int:
    """The seed of this rank's environments and random streams (``seed`` itself on rank 0)."""
    return int(seed) + RANK_SEED_STRIDE * (w or world()).rank


#: CPU tensors up to this many elements are summed over ranks by one all-gather and a local sum
#: (gloo's all-gather of a few thousand floats is faster than its all-reduce: results/benchmarks/distributed.md)
GATHER_SUM_MAX_NUMEL = 1 << 20


def sum_over_ranks(t: torch.Tensor, w: World | None = None) -> torch.Tensor:
    """The sum of ``t`` over ranks, the same on every rank (``t`` itself for one process). Small CPU
    tensors: one all-gather, then every rank sums the parts in rank order (so every rank holds
    bit-identical sums); otherwise one all-reduce (NCCL on CUDA), in place."""
    w = w or world()
    if w.size == 1:
        return t
    if t.device.type == "cpu" and t.numel() <= GATHER_SUM_MAX_NUMEL:
        parts = [torch.empty_like(t) for _ in range(w.size)]
        dist.all_gather(parts, t.contiguous())
        out = parts[0]
        for part in parts[1:]:
            out += part
        return out
    dist.all_reduce(t)
    return t


def average_gradients(params: Iterable[torch.Tensor], w: World | None = None) -> None:
    """Replace each parameter's gradient by its mean over ranks (one collective on a flat buffer:
    :func:`sum_over_ranks`)."""
    w = w or world()
    if w.size == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = sum_over_ranks(torch.cat([g.reshape(-1) for g in grads]), w)
    flat /= w.size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def gather_moments(mean: torch.Tensor, var: torch.Tensor, n: int, w: World | None = None
                   ) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """Every rank's batch moments ``(mean, var, n)`` in rank order, on every rank (one all-gather),
    for a running mean/std that merges them in the same order everywhere."""
    w = w or world()
    if w.size == 1:
        return [(mean, var, n)]
    flat = torch.cat([mean.reshape(-1), var.reshape(-1), torch.tensor([float(n)], dtype=mean.dtype, device=mean.device)])
    parts = [torch.empty_like(flat) for _ in range(w.size)]
    dist.all_gather(parts, flat)
    k = mean.numel()
    return [(p[:k].view_as(mean), p[k:2 * k].view_as(var), int(p[-1].item())) for p in parts]


def mean_over_ranks(t: torch.Tensor, w: World | None = None) -> torch.Tensor:
    """The mean of ``t`` over ranks (a new tensor; ``t`` itself for one process)."""
    w = w or world()
    if w.size == 1:
        return t
    return sum_over_ranks(t.clone(), w) / w.size


def any_rank(flag: bool, device: str = "cpu", w: World | None = None) -> bool:
    """Whether ``flag`` holds on any rank (so that every rank takes the same branch)."""
    w = w or world()
    if w.size == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj: Any, w: World | None = None) -> list[Any]:
    """Every rank's ``obj`` in rank order, on every rank (one all-gather of pickled objects)."""
    w = w or world()
    if w.size == 1:
        return [obj]
    out: list[Any] = [None] * w.size
    dist.all_gather_object(out, obj)
    return out


def barrier(w: World | None = None) -> None:
    if (w or world()).size > 1:
        dist.barrier()
