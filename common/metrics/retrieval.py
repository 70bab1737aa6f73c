"""Retrieval MRR with a top-k cutoff (CodeSearchNet / CodeXGLUE / CoCoSoDa evaluation)."""

from __future__ import annotations

import torch
from torch import Tensor


def reciprocal_ranks(scores: Tensor, positives: Tensor, top_k: int | None = None) -> Tensor:
    """Per query 1/rank of its positive candidate (1-based; rank = 1 + #candidates scoring
    strictly higher), 0 when the rank exceeds ``top_k``."""
    if scores.dim() != 2 or positives.shape != (scores.shape[0],):
        raise ValueError("scores must be [queries, candidates] and positives [queries]")
    positive_scores = scores.gather(1, positives.long().unsqueeze(1))
    ranks = (scores > positive_scores).sum(dim=1) + 1
    rr = 1.0 / ranks.to(torch.float64)
    if top_k is not None:
        rr = torch.where(ranks <= top_k, rr, torch.zeros_like(rr))
    return rr


def retrieval_mrr(scores: Tensor, positives: Tensor, top_k: int | None = None) -> float:
    """Mean reciprocal rank over queries."""
    return float(reciprocal_ranks(scores, positives, top_k).mean())
