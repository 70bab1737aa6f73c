"""Building blocks of the contrastive losses, public for losses written in a paper folder.

A paper's own loss (e.g. ``papers/dcl/losses.py``) builds on these as ``common.losses`` does:

- ``check_temperature``, ``check_pair``: argument checks raising ``ValueError``;
- ``prepare`` (cosine: L2-normalised rows; dot: as they are), ``reduce`` ('mean'/'sum'/'none');
- ``maybe_gather``, ``rank_offset``: negatives from every process (``gather=True``) with
  gradients, and where this rank's rows sit in the gathered tensor;
- ``two_view_logits``: SimCLR's [2B, 2M] logit matrix of the views [z1; z2] with the columns of
  each anchor itself and of its positive; ``column_mask``: a row-wise one-column mask.

Temperature convention used by every loss: logits = similarity / temperature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from common.distributed import gather_with_grad, is_distributed, rank

__all__ = [
    "Reduction",
    "Similarity",
    "TwoViewLogits",
    "check_pair",
    "check_temperature",
    "column_mask",
    "maybe_gather",
    "prepare",
    "rank_offset",
    "reduce",
    "two_view_logits",
]

Similarity = Literal["cosine", "dot"]
Reduction = Literal["mean", "sum", "none"]


def check_temperature(value: float, name: str = "temperature") -> None:
    """Raise ValueError unless ``value`` is a finite number > 0."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_pair(a: Tensor, b: Tensor, names: tuple[str, str]) -> None:
    """Raise ValueError unless ``a`` and ``b`` are non-empty 2-D tensors of one shape."""
    for t, name in zip((a, b), names, strict=True):
        if t.dim() != 2 or t.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty [N, D] tensor, got {tuple(t.shape)}")
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def prepare(x: Tensor, similarity: Similarity) -> Tensor:
    """L2-normalise the rows for cosine similarity; leave them as they are for dot."""
    if similarity == "cosine":
        return F.normalize(x, dim=-1)
    if similarity == "dot":
        return x
    raise ValueError(f"similarity must be 'cosine' or 'dot', got {similarity!r}")


def reduce(loss: Tensor, reduction: Reduction) -> Tensor:
    """Apply ``reduction`` ('mean', 'sum' or 'none') to a vector of per-anchor losses."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def maybe_gather(t: Tensor, gather: bool) -> Tensor:
    """``gather_with_grad(t)`` when ``gather`` is set, else ``t``."""
    return gather_with_grad(t) if gather else t


def rank_offset(local_batch: int, gather: bool) -> int:
    """Index of this rank's first row in a gathered tensor (0 without gathering)."""
    return rank() * local_batch if gather and is_distributed() else 0


@dataclass(frozen=True)
class TwoViewLogits:
    """Logits of the 2B local anchors [z1; z2] against the 2M candidates [z1_all; z2_all].

    M = world_size * B with gathering, else B. ``self_idx[a]`` and ``pos_idx[a]`` are the
    candidate columns holding anchor a itself and its positive (the other view).
    """

    logits: Tensor
    self_idx: Tensor
    pos_idx: Tensor
    z1_all: Tensor
    z2_all: Tensor
    offset: int


def two_view_logits(
    z1: Tensor, z2: Tensor, temperature: float, similarity: Similarity, gather: bool
) -> TwoViewLogits:
    """Build the SimCLR-style [2B, 2M] logit matrix (similarity / temperature)."""
    check_pair(z1, z2, ("z1", "z2"))
    check_temperature(temperature)
    p1, p2 = prepare(z1, similarity), prepare(z2, similarity)
    z1_all, z2_all = maybe_gather(p1, gather), maybe_gather(p2, gather)
    batch = z1.shape[0]
    total = z1_all.shape[0]
    offset = rank_offset(batch, gather)
    anchors = torch.cat([p1, p2], dim=0)
    candidates = torch.cat([z1_all, z2_all], dim=0)
    logits = anchors @ candidates.T / temperature
    local = torch.arange(batch, device=z1.device) + offset
    self_idx = torch.cat([local, local + total])
    pos_idx = torch.cat([local + total, local])
    return TwoViewLogits(logits, self_idx, pos_idx, z1_all, z2_all, offset)


def column_mask(rows: int, cols: int, idx: Tensor) -> Tensor:
    """Boolean [rows, cols] mask that is True at (a, idx[a]) for every row a."""
    mask = torch.zeros(rows, cols, dtype=torch.bool, device=idx.device)
    mask[torch.arange(rows, device=idx.device), idx] = True
    return mask
