"""InfoNCE with in-batch negatives (SimCSE / MoCo / CLIP style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from common.losses.base import (
    Reduction,
    Similarity,
    check_pair,
    check_temperature,
    maybe_gather,
    prepare,
    rank_offset,
    reduce,
)

__all__ = ["info_nce"]


def _one_direction(
    anchors: Tensor,
    candidates: Tensor,
    extra: Tensor | None,
    offset: int,
    temperature: float,
) -> Tensor:
    """Per-anchor cross-entropy; anchor i's positive is candidate column offset + i."""
    logits = anchors @ candidates.T / temperature
    if extra is not None:
        logits = torch.cat([logits, anchors @ extra.T / temperature], dim=1)
    labels = torch.arange(anchors.shape[0], device=anchors.device) + offset
    return F.cross_entropy(logits, labels, reduction="none")


def info_nce(
    query: Tensor,
    key: Tensor,
    *,
    temperature: float = 0.07,
    similarity: Similarity = "cosine",
    extra_negatives: Tensor | None = None,
    symmetric: bool = False,
    gather: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    """InfoNCE loss: row i of ``query`` is positive with row i of ``key``.

    With s(a, b) the cosine similarity (rows L2-normalised inside) or the dot product,
    and logits = s / temperature, the loss of query i is::

        l_i = -log( exp(s(q_i, k_i)/t) / (sum_j exp(s(q_i, k_j)/t) + sum_m exp(s(q_i, n_m)/t)) )

    where j runs over the keys of the batch (of all processes when ``gather=True``) and
    n_m over ``extra_negatives`` ([K, D], e.g. a MoCo / ESimCSE queue; never gathered,
    used as given: pass it detached if no gradient should reach it).

    ``symmetric=True`` returns the average of the query→key loss and the key→query loss
    (CLIP); in the key→query direction the negatives are the other queries plus the same
    extra negatives. ``gather=True`` all-gathers the keys (and the queries, for the
    reverse direction) with :func:`common.distributed.gather_with_grad`; labels are then
    offset by ``rank * B``. ``reduction`` is 'mean', 'sum' or 'none' (per query row,
    shape [B]).

    References: van den Oord et al. 2018 (CPC, arXiv:1807.03748); Chen et al., ICML 2020
    (SimCLR); He et al., CVPR 2020 (MoCo); Gao et al., EMNLP 2021 (SimCSE); Radford et
    al., ICML 2021 (CLIP).
    """
    check_pair(query, key, ("query", "key"))
    check_temperature(temperature)
    q = prepare(query, similarity)
    k = prepare(key, similarity)
    extra: Tensor | None = None
    if extra_negatives is not None:
        if extra_negatives.dim() != 2 or extra_negatives.shape[1] != query.shape[1]:
            shape = tuple(extra_negatives.shape)
            raise ValueError(f"extra_negatives must be [K, {query.shape[1]}], got {shape}")
        extra = prepare(extra_negatives, similarity)
    offset = rank_offset(query.shape[0], gather)
    loss = _one_direction(q, maybe_gather(k, gather), extra, offset, temperature)
    if symmetric:
        reverse = _one_direction(k, maybe_gather(q, gather), extra, offset, temperature)
        loss = 0.5 * (loss + reverse)
    return reduce(loss, reduction)
