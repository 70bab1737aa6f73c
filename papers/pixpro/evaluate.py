"""Frozen, average-pooled backbone features for the instance-level evaluation (the kNN
monitor and the linear probe of :mod:`common.eval.probes`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


@torch.no_grad()
def pooled_features(
    backbone: nn.Module, images: Tensor, mean: float | Tensor, std: float | Tensor
) -> Tensor:
    backbone.eval()
    return torch.cat([backbone((c - mean) / std).mean(dim=(2, 3)) for c in images.split(512)])
