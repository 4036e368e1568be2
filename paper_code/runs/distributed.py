"""One PPMO run over many processes (``torchrun``): data parallel meta-gradients.

Each rank steps its own environments and draws its own learner inits (its random streams and
environment seeds are offset by the rank; rank 0's are those of a one-process run). After each
minibatch's backward pass the gradients of the dataset tensors and of the critic are averaged over
ranks (:func:`average_gradients`, one :func:`sum_over_ranks` each: through shared memory when every
rank runs on one x86 host, else gloo or NCCL) before identical clipping and Adam steps, so every rank
holds the same dataset and critic. Observation and reward statistics are merged the same
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
import platform
import socket
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.distributed as dist

#: the seed offset between ranks' random streams and environments (rank 0: none)
RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class World:
    """This process's place in a run over ``size`` processes: PPMO's processes plug-in
    (:class:`paper_code.core.ppmo.Processes`); with one process it reduces nothing."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes files and shows progress (rank 0)."""
        return self.rank == 0

    def seed(self, seed: int) -> int:
        return rank_seed(seed, self)

    def average_gradients(self, params: list[torch.Tensor]) -> None:
        average_gradients(params, self)

    def gather_moments(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        return gather_moments(mean, var, n, self)

    def provenance(self) -> dict[str, int | str]:
        return processes(self)

    def merge(self, metrics: Any) -> Any:
        """A meta-epoch's statistics (:class:`paper_code.core.ppmo.Metrics`) over the ranks: means,
        but the episodes summed and the mean return weighted by each rank's episodes (one collective)."""
        if self.size == 1:
            return metrics
        row = metrics.stacked()
        row[3] = row[3] * row[2]
        row = mean_over_ranks(row, self)
        row[3] = row[3] / row[2].clamp(min=1e-9)
        row[2] = row[2] * self.size
        return type(metrics).from_stacked(row, list(metrics.losses))


def world() -> World:
    """This process's place in the run (rank 0 of 1 without torch.distributed)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def processes(w: World) -> dict[str, int | str]:
    """How many processes made a run (its per-rank seeds and streams depend on it), for provenance:
    ``world_size``, and with several ranks the ``backend`` (gloo, nccl)."""
    if w.size == 1:
        return {"world_size": 1}
    return {"world_size": w.size, "backend": str(dist.get_backend()) if dist.is_initialized() else "unknown"}


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


def leave(w: World, together: bool = True) -> None:
    """Leave the process group :func:`init_from_env` joined (nothing for one process): with
    ``together``, once every rank has arrived here (none is then still inside a collective). Its
    gloo or NCCL state then goes while the interpreter is still whole; a group left to interpreter
    exit can abort the process (pytorch/pytorch#179291)."""
    if w.size > 1 and dist.is_available() and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def rank_seed(seed: int, w: World | None = None) -> int:
    """The seed of this rank's environments and random streams (``seed`` itself on rank 0)."""
    return int(seed) + RANK_SEED_STRIDE * (w or world()).rank


#: CPU tensors up to this many elements are summed over ranks by one all-gather and a local sum
#: (gloo's all-gather of a few thousand floats is faster than its all-reduce: results/benchmarks/distributed.md)
GATHER_SUM_MAX_NUMEL = 1 << 20
#: float32 CPU tensors up to this many elements, when every rank runs on one x86 host, go through a
#: shared-memory buffer instead (no gloo round trip at all); ``PAPER_CODE_SHARED_MEMORY=0`` turns it off
SHM_MAX_NUMEL = 1 << 16
#: seconds a rank waits for the others at a shared-memory sum before it gives up, and the first part
#: of a wait it spends polling (then it sleeps between polls)
SHM_TIMEOUT_S = 600.0
SHM_SPIN_S = 0.002


class _SharedSum:
    """Sums over the ranks of one host through a shared-memory file (mapped by every rank, unlinked
    once all have mapped it): per call each rank copies its tensor into its own slot, raises its
    counter, waits until every counter has reached the call's number, then sums the slots in rank
    order — so every rank computes bit-identical sums. Two buffers alternate: a rank can only write
    the buffer of call s after every rank has announced call s - 1, i.e. has finished reading the
    buffer's previous use (call s - 2). x86 keeps stores in order, so a counter seen raised means its
    slot is written; other machines use gloo."""

    PAD = 8  # float64 per counter: one cache line each

    @classmethod
    def words(cls, size: int) -> int:
        """The file's length in float64 words: the counters, then 2 buffers x ``size`` slots x max float32."""
        return size * cls.PAD + size * SHM_MAX_NUMEL

    def __init__(self, path: str, size: int, rank: int) -> None:
        n = self.words(size)
        self.mem = torch.from_file(path, shared=True, size=n, dtype=torch.float64)
        self.counters = self.mem[: size * self.PAD: self.PAD]
        self.data = self.mem[size * self.PAD:].view(torch.float32).view(2, size, SHM_MAX_NUMEL)
        self.rank, self.size, self.seq = rank, size, 0

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        self.seq += 1
        n, buf = t.numel(), self.data[self.seq % 2]
        buf[self.rank, :n].copy_(t.reshape(-1))
        self.counters[self.rank] = float(self.seq)
        start = None
        while not bool((self.counters >= self.seq).all()):
            now = time.monotonic()
            start = start or now
            if now - start > SHM_TIMEOUT_S:
                raise RuntimeError(f"another rank stopped answering for {SHM_TIMEOUT_S:.0f} s (shared-memory sum)")
            if now - start > SHM_SPIN_S:  # a long wait (or more ranks than cores): give the core away
                time.sleep(1e-4)
        out = buf[0, :n].clone()
        for r in range(1, self.size):
            out += buf[r, :n]
        return out.view_as(t)


#: per process group: its shared-memory sum, or None where it has none. Weak keys: an entry goes with
#: its group, so the cache neither keeps a destroyed group alive (a gloo group outliving
#: ``destroy_process_group`` was torn down at interpreter exit, after its peers had gone, and aborted
#: that process: "terminate called without an active exception") nor hands a later group (which may
#: reuse the address) a dead group's buffer
_shared: weakref.WeakKeyDictionary[Any, _SharedSum | None] = weakref.WeakKeyDictionary()


def _shared_sum(w: World) -> _SharedSum | None:
    """This process group's shared-memory sum (set up on first use, a collective call), or None
    where its ranks are not all on one x86 host or shared memory is unavailable or turned off."""
    group = dist.distributed_c10d._get_default_group()
    if group in _shared:
        return _shared[group]
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    here = (socket.gethostname(), boot, platform.machine(), os.environ.get("PAPER_CODE_SHARED_MEMORY", "1"))
    hosts = gather_objects(here, w)
    ok = len(set(hosts)) == 1 and bool(boot) and here[2] in ("x86_64", "AMD64") and here[3] != "0"
    path, mapped = None, None
    if ok and w.rank == 0:
        root = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, path = tempfile.mkstemp(prefix="paper_code_sum_", dir=root)
        os.ftruncate(fd, 8 * _SharedSum.words(w.size))  # zeros: every counter starts at 0
        os.close(fd)
    path = gather_objects(path, w)[0] if ok else None
    if ok:
        try:
            mapped = _SharedSum(path, w.size, w.rank)
        except (OSError, RuntimeError):
            mapped = None
        ok = all(gather_objects(mapped is not None, w))  # mapped everywhere (then the file can go)
        if w.rank == 0:
            Path(path).unlink(missing_ok=True)
    _shared[group] = mapped if ok else None
    return _shared[group]


def sum_over_ranks(t: torch.Tensor, w: World | None = None) -> torch.Tensor:
    """The sum of ``t`` over ranks, the same on every rank (``t`` itself for one process). Small
    float32 CPU tensors of ranks on one host: through shared memory (:class:`_SharedSum`); other
    small CPU tensors: one all-gather, then every rank sums the parts in rank order (so every rank
    holds bit-identical sums); otherwise one all-reduce (NCCL on CUDA), in place."""
    w = w or world()
    if w.size == 1:
        return t
    if t.device.type == "cpu" and t.dtype == torch.float32 and t.numel() <= SHM_MAX_NUMEL:
        shared = _shared_sum(w)
        if shared is not None:
            return shared.sum(t)
    if t.device.type == "cpu" and t.numel() <= GATHER_SUM_MAX_NUMEL:
        return gather_sum(t, w)
    dist.all_reduce(t)
    return t


def gather_sum(t: torch.Tensor, w: World) -> torch.Tensor:
    """The sum of ``t`` over ranks by one all-gather and a local sum in rank order."""
    parts = [torch.empty_like(t) for _ in range(w.size)]
    dist.all_gather(parts, t.contiguous())
    out = parts[0]
    for part in parts[1:]:
        out += part
    return out


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
