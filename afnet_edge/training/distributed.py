"""Multi-process training (``torchrun``): process group, batch sharding, the reduced ratio loss, random streams.

Semantics (what :class:`~.engine.Trainer` does when a process group with more than one process is running):

* ``batch_size`` (``--batch-size``) is the **global** batch: the clips of one optimisation step over all processes,
  split evenly, ``batch_size / world_size`` per process. This is the official meaning of the flag: the release
  scripts train with ``--batch-size 32`` on 2 GPUs through ``nn.DataParallel``, which splits each batch of 32 into
  16 per GPU (spec §10). So the learning rate, the iterations per epoch and the clip order do not change with the
  number of processes.
* Data: the clips of epoch ``e`` are the same permutation of ``(seed, e)`` as a single-process run; rank ``r`` loads
  the ``r``-th contiguous slice of every global batch (:func:`shard_order`). This plays the part of
  ``torch.utils.data.DistributedSampler`` (seeded, a new order every epoch, disjoint shards), but keeps global batch
  ``i`` equal to the single-process batch ``i`` whatever the number of processes (``DistributedSampler`` strides
  over its own permutation).
* Objective: exactly the official one computed by ``nn.DataParallel`` on the whole global batch. Cross-entropy is
  the mean over the process's clips; DistributedDataParallel averages the gradients over the (equal) shards, which is
  the gradient of the mean over the global batch. The ratio term needs ``ratio_l`` over **all** frames of the global
  batch (DataParallel gathers the masks before the loss): each process's ``ratio_l`` is averaged over the processes
  with :class:`AllMean` (all-reduce in the forward pass, identity in the backward pass — see its docstring for why
  that gives the exact gradient), so every process computes the same ``Loss_rt``.
* BatchNorm: no SyncBN, as in the official recipe (``nn.DataParallel`` normalises each GPU's share of the batch with
  that share's statistics). Each process normalises its ``batch_size / world_size`` clips; running statistics are
  rank 0's, broadcast at every forward pass (DistributedDataParallel's ``broadcast_buffers``; DataParallel likewise
  keeps device 0's). Hence a 2-process run is *not* numerically the same as a 1-process run with the same global
  batch: the batch statistics differ.
* Random streams: the model is built from the same seed on every rank (and DDP broadcasts rank 0's weights); then
  each rank's global generators (Gumbel noise, dropout) are re-seeded from ``(seed, rank)`` so that the shards draw
  different noise. Checkpoints store the generator states of every rank.
* Logged metrics (loss, cross-entropy, top-1/top-5 counts) are summed over the processes (all-reduce) and divided by
  the global number of clips; the ratio term and the real ratio are already global. Only rank 0 writes checkpoints,
  ``log.jsonl``, progress bars and epoch lines; validation runs on rank 0 and its result is broadcast.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any

import torch
import torch.distributed as dist

#: Seed offset of the per-rank global generators (mixed with the run's seed and the rank).
RANK_SEED_TAG = 0xDD9


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a multi-process run."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    """``WORLD_SIZE`` set by ``torchrun`` (1 when not launched by it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be an integer, got {os.environ.get('WORLD_SIZE')!r}") from None


def current() -> DistInfo | None:
    """The running default process group as a :class:`DistInfo`, or None when there is none or it has one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())),
                    dist.get_backend())


def init_from_env(device: torch.device, timeout_minutes: float = 60.0) -> DistInfo | None:
    """Join the process group that ``torchrun`` describes in the environment (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); None when ``WORLD_SIZE`` is 1 or unset.

    ``device``: the device asked for; its type chooses the backend (``nccl`` for CUDA, ``gloo`` for CPU). On CUDA each
    process takes ``cuda:LOCAL_RANK``. ``timeout_minutes`` bounds every collective (ranks wait for rank 0's
    validation in one).
    """
    if env_world_size() < 2:
        return None
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1 (torchrun), but this PyTorch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return current()


def process_device(device: torch.device, info: DistInfo | None) -> torch.device:
    """The device of this process: ``cuda`` becomes ``cuda:LOCAL_RANK`` in a multi-process run."""
    if info is None or device.type != "cuda":
        return device
    if device.index is not None and device.index != info.local_rank:
        raise ValueError(f"--device {device}: under torchrun pass --device cuda; process {info.rank} uses "
                         f"cuda:{info.local_rank} (its LOCAL_RANK)")
    return torch.device("cuda", info.local_rank)


def shard_order(order: list[int], batch_size: int, rank: int, world_size: int) -> list[int]:
    """Rank ``rank``'s clips of ``order`` (whole global batches of ``batch_size``): the ``rank``-th contiguous slice
    of ``batch_size / world_size`` clips of every global batch, concatenated."""
    if batch_size % world_size:
        raise ValueError(f"batch_size {batch_size} is not divisible by the {world_size} processes")
    if len(order) % batch_size:
        raise ValueError(f"the order has {len(order)} clips, not whole batches of {batch_size}")
    b = batch_size // world_size
    return [i for s in range(0, len(order), batch_size) for i in order[s + rank * b: s + (rank + 1) * b]]


class AllMean(torch.autograd.Function):
    """``y = mean over processes of x`` (all-reduce), with the identity as its backward pass.

    Why the identity: every process computes the same ``R(y)`` from the same ``y``, so ``dR/dy`` is the same on every
    process. The objective is ``R(y) = R((1/N) Σ_r x_r)``; its gradient with respect to the parameters is
    ``R'(y) · (1/N) Σ_r ∂x_r/∂θ``. Passing ``R'(y)`` unchanged to each ``x_r`` makes process ``r`` accumulate
    ``R'(y) · ∂x_r/∂θ``, and DistributedDataParallel's gradient averaging supplies the ``(1/N) Σ_r``. (An all-reduce in
    the backward pass, as ``torch.distributed.nn`` does, would sum N equal values and divide by N again.)
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = x.detach().clone()
        dist.all_reduce(y)
        return y / dist.get_world_size()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


def all_mean(x: torch.Tensor) -> torch.Tensor:
    """Differentiable mean of ``x`` over the processes (:class:`AllMean`)."""
    return AllMean.apply(x)


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum of each value over the processes (float64 all-reduce)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def gather_objects(obj: Any) -> list:
    """``obj`` of every rank, in rank order (a collective: every rank must call it)."""
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (a collective)."""
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def cleanup() -> None:
    """Leave the process group, if one is running."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
