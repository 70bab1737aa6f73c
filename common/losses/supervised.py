"""Supervised contrastive loss (SupCon), which reduces to SimCLR without labels."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from common.losses._common import check_temperature, column_mask

__all__ = ["supcon"]


def supcon(
    features: Tensor,
    labels: Tensor | None = None,
    *,
    temperature: float = 0.07,
    base_temperature: float = 0.07,
    contrast_mode: Literal["all", "one"] = "all",
) -> Tensor:
    """Supervised contrastive loss L^sup_out of Khosla et al.

    ``features`` is [N, V, D] (V views of N samples); the rows are L2-normalised inside
    this function (so the similarity is the cosine, and already-normalised inputs give
    the same value). Logits are cos / temperature. For anchor a with positives P(a)
    (the other views of a's sample and all views of samples with the same label) and
    A(a) = all views except a itself::

        l_a = -(temperature / base_temperature) / |P(a)| * sum_{p in P(a)}
              log( exp(cos(a, p)/t) / sum_{b in A(a)} exp(cos(a, b)/t) )

    and the loss is the mean of l_a over the anchors: all N*V views
    (``contrast_mode='all'``) or the first view of each sample (``'one'``).
    ``labels=None`` ([N] integer labels otherwise) makes every sample its own class,
    which is SimCLR's NT-Xent. An anchor without any positive (a singleton class with
    V = 1) contributes 0 but still counts in the mean, as in the reference code's fix.

    Reference: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020.
    """
    check_temperature(temperature)
    check_temperature(base_temperature, "base_temperature")
    if features.dim() != 3 or features.shape[0] == 0 or features.shape[1] == 0:
        raise ValueError(f"features must be a non-empty [N, V, D] tensor, got {features.shape}")
    n, views, _ = features.shape
    if labels is None:
        same = torch.eye(n, dtype=torch.bool, device=features.device)
    else:
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        same = labels[:, None] == labels[None, :]
    normed = F.normalize(features, dim=-1)
    contrast = normed.transpose(0, 1).reshape(views * n, -1)  # view-major: [z^1; z^2; ...]
    if contrast_mode == "all":
        anchors, anchor_views = contrast, views
    elif contrast_mode == "one":
        anchors, anchor_views = normed[:, 0], 1
    else:
        raise ValueError(f"contrast_mode must be 'all' or 'one', got {contrast_mode!r}")
    logits = anchors @ contrast.T / temperature
    rows, cols = logits.shape
    is_self = column_mask(rows, cols, torch.arange(rows, device=features.device))
    positive = same.repeat(anchor_views, views) & ~is_self
    log_prob = logits - torch.logsumexp(
        logits.masked_fill(is_self, float("-inf")), dim=1, keepdim=True
    )
    n_pos = positive.sum(dim=1).clamp(min=1)
    mean_log_prob_pos = torch.where(positive, log_prob, 0.0).sum(dim=1) / n_pos
    return -(temperature / base_temperature) * mean_log_prob_pos.mean()
