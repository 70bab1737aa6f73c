"""Full-ranking top-K metrics for recommendation, computed in batches with ``torch.topk``.

Every item is ranked for every user (no sampled negatives). With one held-out item per row
(leave-one-out), HR@k = Recall@k = [rank < k], NDCG@k = 1/log2(rank + 2) if rank < k else 0,
MRR@k = 1/(rank + 1) if rank < k else 0, Precision@k = HR@k / k, where ``rank`` is the 0-based
position of the target in the top-k list. With several relevant items per row (a 0/1 matrix),
Recall@k = hits/|relevant|, Precision@k = hits/k, HR@k = [hits > 0], MRR@k = 1/(first hit
position + 1), NDCG@k = DCG@k / IDCG@k with IDCG over min(|relevant|, k) items.

Ties: an item's position is its position in ``torch.topk``'s output, as in RecBole and the
CoSeRec/ICLRec/MCLRec trainers; no random tie breaking. Masking: ``exclude`` marks items set to
-inf before ranking (already-seen items); the caller must not exclude a row's target.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

METRICS = ("HR", "Recall", "NDCG", "MRR", "Precision")


def _relevance_of_topk(scores: Tensor, targets: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(0/1 relevance of the top-k items [B, k], number of relevant items per row [B])."""
    top = torch.topk(scores, k, dim=1).indices
    if targets.dim() == 1:
        rel = (top == targets.unsqueeze(1)).to(torch.float64)
        return rel, torch.ones(len(targets), dtype=torch.float64, device=scores.device)
    relevant = targets.to(torch.bool)
    rel = torch.gather(relevant, 1, top).to(torch.float64)
    return rel, relevant.sum(dim=1).to(torch.float64)


def ranking_metrics(
    scores: Tensor, targets: Tensor, ks: Sequence[int], *, exclude: Tensor | None = None
) -> dict[str, Tensor]:
    """Per-row HR, Recall, NDCG, MRR and Precision at every k (float64 tensors of shape [B]).

    Args:
        scores: [B, n_items] scores, higher is better.
        targets: LongTensor [B] (one target per row) or a 0/1 or bool tensor [B, n_items].
        ks: cut-offs.
        exclude: optional bool [B, n_items]; True items are ranked last (score -inf).
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be [batch, n_items], got shape {tuple(scores.shape)}")
    if exclude is not None:
        scores = scores.masked_fill(exclude.to(torch.bool), float("-inf"))
    kmax = min(max(ks), scores.shape[1])
    rel_max, n_relevant = _relevance_of_topk(scores, targets, kmax)
    discounts = 1.0 / torch.log2(torch.arange(kmax, device=scores.device, dtype=torch.float64) + 2)
    out: dict[str, Tensor] = {}
    for k in ks:
        rel = rel_max[:, : min(k, kmax)]
        hits = rel.sum(dim=1)
        first = torch.where(rel.any(dim=1), rel.argmax(dim=1), torch.full_like(hits, -1).long())
        ideal_len = torch.clamp(n_relevant, max=rel.shape[1]).long()
        idcg = torch.cumsum(discounts[: rel.shape[1]], 0)[(ideal_len - 1).clamp(min=0)]
        dcg = (rel * discounts[: rel.shape[1]]).sum(dim=1)
        out[f"HR@{k}"] = (hits > 0).to(torch.float64)
        out[f"Recall@{k}"] = hits / n_relevant.clamp(min=1)
        out[f"NDCG@{k}"] = torch.where(ideal_len > 0, dcg / idcg, torch.zeros_like(dcg))
        out[f"MRR@{k}"] = torch.where(first >= 0, 1.0 / (first + 1).to(torch.float64), 0.0)
        out[f"Precision@{k}"] = hits / k
    return out


class RankingAccumulator:
    """Sums per-row metrics over batches; ``compute`` gives the means over all rows seen."""

    def __init__(self, ks: Sequence[int], metrics: Sequence[str] = METRICS) -> None:
        unknown = set(metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {METRICS}")
        self.ks = tuple(ks)
        self.metrics = tuple(metrics)
        self.sums: dict[str, float] = {}
        self.count = 0

    def update(self, scores: Tensor, targets: Tensor, exclude: Tensor | None = None) -> None:
        self.add(ranking_metrics(scores, targets, self.ks, exclude=exclude))

    def add(self, values: dict[str, Tensor]) -> None:
        """Per-row values of :func:`ranking_metrics` (every key for the same rows)."""
        rows = 0
        for key, per_row in values.items():
            rows = len(per_row)
            if key.split("@")[0] in self.metrics:
                self.sums[key] = self.sums.get(key, 0.0) + float(per_row.sum())
        self.count += rows

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("no rows were added to the accumulator")
        return {key: total / self.count for key, total in self.sums.items()}
