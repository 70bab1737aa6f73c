"""MCLRec's contrastive terms, as the official trainer computes them.

All InfoNCE terms are NT-Xent over the 2B views with dot-product similarity and temperature 1
(2(B−1) negatives per anchor): ``common.losses.nt_xent(a, b, temperature=1, similarity="dot")``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.losses import nt_xent


def _positive_and_negatives(a: Tensor, b: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """Dot-product logits / tau of the 2B anchors: positives [2B], negatives [2B, 2B−2]."""
    z = torch.cat([a, b])
    sim = z @ z.T / tau
    batch = len(a)
    idx = torch.arange(2 * batch, device=z.device)
    partner = (idx + batch) % (2 * batch)
    keep = torch.ones_like(sim, dtype=torch.bool)
    keep[idx, idx] = False
    keep[idx, partner] = False
    return sim[idx, partner], sim[keep].view(2 * batch, -1)


def margin_regulariser(a: Tensor, b: Tensor, tau: float = 1.0) -> Tensor:
    """R(a, b) = mean(relu(p − min(p, n̂))) + mean(relu(max(p, n̂) − n)), n̂ = each row's hardest
    negative: pushes positives above and negatives below the margin between them. The official
    code divides by the model's τ here (1 in every official script)."""
    pos, neg = _positive_and_negatives(a, b, tau)
    hardest = neg.max(dim=1).values
    low, high = torch.minimum(pos, hardest), torch.maximum(pos, hardest)
    return (pos - low).clamp(min=0).mean() + (high[:, None] - neg).clamp(min=0).mean()


def contrast(a: Tensor, b: Tensor) -> Tensor:
    return nt_xent(a, b, temperature=1.0, similarity="dot")


def meta_contrastive_loss(h1: Tensor, h2: Tensor, z1: Tensor, z2: Tensor, use_rl: bool,
                          tau: float = 1.0, rl_weight: float = 0.1) -> Tensor:  # fmt: skip
    """L_cl2 = InfoNCE(h̃1, z̃2) + InfoNCE(h̃2, z̃1) + InfoNCE(z̃1, z̃2) (+ 0.1·R on the same pairs)."""
    pairs = ((h1, z2), (h2, z1), (z1, z2))
    loss = sum((contrast(a, b) for a, b in pairs), torch.zeros((), device=h1.device))
    if use_rl:
        loss = loss + rl_weight * sum(
            (margin_regulariser(a, b, tau) for a, b in pairs), torch.zeros((), device=h1.device)
        )
    return loss
