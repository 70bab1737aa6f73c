"""Alignment and uniformity on the hypersphere (Wang & Isola, ICML 2020)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from common.losses._common import check_pair, check_temperature

__all__ = ["alignment", "uniformity"]


def alignment(x: Tensor, y: Tensor, alpha: float = 2.0) -> Tensor:
    """Alignment loss E_i ||x_i - y_i||_2^alpha of positive pairs (rows of x and y).

    Inputs are expected L2-normalised ([N, D]); no temperature is involved.

    Reference: Wang & Isola, "Understanding Contrastive Representation Learning through
    Alignment and Uniformity on the Hypersphere", ICML 2020.
    """
    check_pair(x, y, ("x", "y"))
    check_temperature(alpha, "alpha")
    return (x - y).pow(2).sum(dim=1).pow(alpha / 2).mean()


def uniformity(x: Tensor, t: float = 2.0) -> Tensor:
    """Uniformity loss log E_{i<j} exp(-t ||x_i - x_j||_2^2) over distinct pairs of rows.

    Inputs are expected L2-normalised ([N, D], N >= 2); computed with a log-sum-exp.

    Reference: Wang & Isola, ICML 2020 (see :func:`alignment`).
    """
    check_temperature(t, "t")
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"x must be an [N, D] tensor with N >= 2, got {tuple(x.shape)}")
    n = x.shape[0]
    sq_dist = (x[:, None, :] - x[None, :, :]).pow(2).sum(dim=-1)
    i, j = torch.triu_indices(n, n, offset=1, device=x.device)
    pairs = n * (n - 1) // 2
    return torch.logsumexp(-t * sq_dist[i, j], dim=0) - math.log(pairs)
