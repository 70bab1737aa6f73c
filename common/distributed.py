"""Process-group helpers and a differentiable all-gather for contrastive losses.

Every helper is safe to call in a plain single-process run: ``rank()`` is 0,
``world_size()`` is 1 and ``gather_with_grad`` is the identity.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "cleanup",
    "gather_with_grad",
    "init_from_env",
    "is_distributed",
    "rank",
    "world_size",
]

# Shapes are exchanged as a fixed-length int64 vector [ndim, d0, d1, ...] padded with -1,
# so that ranks whose tensors differ in rank (ndim) still take part in the same collective.
_MAX_DIMS = 8


def is_distributed() -> bool:
    """True when torch.distributed is available and a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank, 0 when not distributed."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes in the default group, 1 when not distributed."""
    return dist.get_world_size() if is_distributed() else 1


def _check_equal_shapes(t: Tensor) -> None:
    """Raise ValueError (on every rank) unless all ranks hold tensors of the same shape."""
    if t.dim() == 0 or t.dim() > _MAX_DIMS:
        raise ValueError(
            f"gather_with_grad needs a tensor with 1 to {_MAX_DIMS} dimensions, got {t.dim()}"
        )
    local = torch.full((_MAX_DIMS + 1,), -1, dtype=torch.int64, device=t.device)
    local[0] = t.dim()
    local[1 : t.dim() + 1] = torch.tensor(t.shape, dtype=torch.int64, device=t.device)
    shapes = [torch.empty_like(local) for _ in range(world_size())]
    dist.all_gather(shapes, local)
    as_tuples = [tuple(int(d) for d in s[1 : int(s[0]) + 1].tolist()) for s in shapes]
    if any(shape != as_tuples[0] for shape in as_tuples):
        raise ValueError(
            "gather_with_grad needs equal tensor shapes (equal local batch sizes) on every "
            f"rank; got shapes by rank: {as_tuples}"
        )


class _GatherWithGrad(torch.autograd.Function):
    """all_gather along dim 0; backward sums the incoming gradients over ranks."""

    @staticmethod
    def forward(ctx: Any, t: Tensor) -> Tensor:
        ctx.local_batch = t.shape[0]
        parts = [torch.empty_like(t) for _ in range(world_size())]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Tensor) -> Tensor:
        # Rank r's loss depends on every rank's rows; the gradient of the sum of all ranks'
        # losses w.r.t. this rank's rows is the sum over ranks of their grad slices.
        grad = grad_outputs[0].contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = rank() * int(ctx.local_batch)
        return grad[start : start + int(ctx.local_batch)]


def gather_with_grad(t: Tensor) -> Tensor:
    """Concatenate ``t`` from all ranks along dim 0, rank order, with gradients flowing back.

    The result is ``[world_size * B, ...]`` and rows ``rank*B:(rank+1)*B`` are this
    rank's ``t``. Backward all-reduces (SUM) the incoming gradient and returns this
    rank's slice, so that after DDP-style averaging of parameter gradients over ranks
    one gets the gradient of the mean over ranks of the per-rank losses. Every rank
    must therefore call backward. Identity when not distributed.

    Raises:
        ValueError: if the ranks' tensors differ in shape (unequal local batch sizes).
    """
    if not is_distributed() or world_size() == 1:
        return t
    _check_equal_shapes(t)
    out: Tensor = _GatherWithGrad.apply(t)  # type: ignore[no-untyped-call]
    return out


def init_from_env(backend: str | None = None) -> bool:
    """Initialise the default process group when launched by torchrun.

    Looks for the ``RANK`` and ``WORLD_SIZE`` environment variables (torchrun also sets
    ``MASTER_ADDR``/``MASTER_PORT``/``LOCAL_RANK``). The backend defaults to ``nccl`` when
    CUDA is available and ``gloo`` otherwise. Returns True when a process group is (or
    already was) initialised, False for a plain single-process launch.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if is_distributed():
        return True
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and "LOCAL_RANK" in os.environ:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(
        backend=backend,
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
    )
    return True


def cleanup() -> None:
    """Destroy the default process group if one is initialised; no-op otherwise."""
    if is_distributed():
        dist.destroy_process_group()
