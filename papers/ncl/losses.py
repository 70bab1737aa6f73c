"""NCL's loss terms as small pure functions (RUCAIBox/NCL ``ncl.py``, RecBole's BPR/EmbLoss).

The contrastive terms are written per anchor row, so that a batch can be reduced to its distinct
users and items, each row weighted by how often it occurs in the batch: the official code sums
one term per interaction of the batch, and a user with c interactions in it contributes c equal
terms. ``weighted_sum(rows, counts)`` gives the same sum (and gradient) at a fraction of the cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr(pos_scores: Tensor, neg_scores: Tensor, gamma: float = 1e-10) -> Tensor:
    """Mean of −log(γ + σ(s⁺ − s⁻)) (RecBole's BPRLoss, γ = 1e-10)."""
    return -torch.log(gamma + torch.sigmoid(pos_scores - neg_scores)).mean()


def embedding_norm(*tables: Tensor) -> Tensor:
    """Σ ‖E‖_F over the tables, divided by the batch size: RecBole's ``EmbLoss`` as NCL calls it
    (``require_pow=False``: plain Frobenius norms, not their squares)."""
    total = sum(
        (torch.linalg.vector_norm(t) for t in tables), torch.zeros((), device=tables[0].device)
    )
    return total / tables[-1].shape[0]


def info_nce_rows(anchor: Tensor, positive: Tensor, candidates: Tensor, tau: float) -> Tensor:
    """Per row b: −log( exp(cos(a_b, p_b)/τ) / Σ_j exp(cos(a_b, c_j)/τ) ).

    The structural term: anchor = a node's even-layer (layer 2) output, positive = its own layer-0
    embedding, candidates = the layer-0 embeddings of every node of its type (the positive among
    them). Computed with logsumexp: the official code exponentiates directly (the same value;
    exp(1/τ) stays finite for the official τ ≥ 0.05).
    """
    a, p, c = (
        F.normalize(anchor, dim=1),
        F.normalize(positive, dim=1),
        F.normalize(candidates, dim=1),
    )
    return torch.logsumexp(a @ c.T / tau, dim=1) - (a * p).sum(dim=1) / tau


def proto_nce_rows(nodes: Tensor, centroids: Tensor, assignment: Tensor, tau: float) -> Tensor:
    """Per row b: −log( exp(cos(e_b, c_{k(b)})/τ) / Σ_k exp(cos(e_b, c_k)/τ) ).

    ``centroids`` are already L2-normalised (as the official ``run_kmeans`` returns them);
    ``assignment`` holds each row's K-means cluster.
    """
    z = F.normalize(nodes, dim=1)
    return (
        torch.logsumexp(z @ centroids.T / tau, dim=1) - (z * centroids[assignment]).sum(dim=1) / tau
    )


def weighted_sum(rows: Tensor, counts: Tensor) -> Tensor:
    return (rows * counts.to(rows.dtype)).sum()
