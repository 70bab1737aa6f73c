"""Frozen features of the backbone, for the weighted kNN monitor (k = 200, τ = 0.1) and the
linear probe of :mod:`common.eval.probes`."""

from __future__ import annotations

import torch
from torch import Tensor, nn


@torch.inference_mode()
def embed(
    backbone: nn.Module, images: Tensor, mean: Tensor, std: Tensor, batch_size: int = 512
) -> Tensor:
    backbone.eval()
    parts = [backbone((chunk - mean) / std) for chunk in images.split(batch_size)]
    return torch.cat(parts)
