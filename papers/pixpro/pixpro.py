"""PixPro's pixel-level pieces: positive pixel pairs, pixel propagation and the consistency loss.

Written from the paper (Xie et al., CVPR 2021, Sec. 3) and checked against the official code
(zdaxie/PixPro@e390d6b, ``contrast/models/PixPro.py``). Crop boxes are
``(x_left, y_top, x_right, y_bottom)`` in the original image's normalised coordinates; a
horizontally flipped view has its two x entries swapped, so its bin width is negative and the
warped pixel centres come out mirrored without a separate case.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def bin_centres(boxes: Tensor, height: int, width: int) -> tuple[Tensor, Tensor, Tensor]:
    """Centres [B, H·W, 2] of the feature-map bins in original-image coordinates, and the
    bins' width and height [B] (signed: negative width for a flipped view)."""
    bin_w = (boxes[:, 2] - boxes[:, 0]) / width
    bin_h = (boxes[:, 3] - boxes[:, 1]) / height
    cols = torch.arange(width, dtype=boxes.dtype, device=boxes.device) + 0.5
    rows = torch.arange(height, dtype=boxes.dtype, device=boxes.device) + 0.5
    cx = boxes[:, 0, None, None] + cols.view(1, 1, width) * bin_w.view(-1, 1, 1)
    cy = boxes[:, 1, None, None] + rows.view(1, height, 1) * bin_h.view(-1, 1, 1)
    cx, cy = cx.expand(-1, height, width), cy.expand(-1, height, width)
    return torch.stack([cx, cy], dim=-1).flatten(1, 2), bin_w, bin_h


def positive_mask(
    boxes_a: Tensor, boxes_b: Tensor, height: int, width: int, threshold: float = 0.7
) -> Tensor:
    """[B, H·W, H·W] float mask: pixel i of view a and pixel j of view b are a positive pair
    when their centres, warped to the original image, lie closer than ``threshold`` times the
    larger of the two views' bin diagonals."""
    centres_a, wa, ha = bin_centres(boxes_a, height, width)
    centres_b, wb, hb = bin_centres(boxes_b, height, width)
    diag = torch.maximum(torch.hypot(wa, ha), torch.hypot(wb, hb)).view(-1, 1, 1)
    distance = torch.cdist(centres_a, centres_b) / diag
    return (distance < threshold).to(boxes_a.dtype)


def pixel_consistency(
    prediction: Tensor, target: Tensor, boxes_pred: Tensor, boxes_target: Tensor, threshold: float
) -> Tensor:
    """One direction of the loss: −2 × the mean cosine over positive pairs, averaged over images.

    ``prediction`` (propagated, online branch) and ``target`` (momentum projector of the other
    view) are [B, C, H, W] and L2-normalised along C; the value lies in [−2, 2].
    """
    h, w = prediction.shape[-2:]
    mask = positive_mask(boxes_pred, boxes_target, h, w, threshold)
    cosine = torch.bmm(prediction.flatten(2).transpose(1, 2), target.flatten(2))
    per_image = (cosine * mask).sum(dim=(1, 2)) / (mask.sum(dim=(1, 2)) + 1e-6)
    return -2.0 * per_image.mean()


def propagate(features: Tensor, values: Tensor, gamma: float = 2.0) -> Tensor:
    """Pixel propagation: y_i = Σ_j max(cos(x_i, x_j), 0)^γ · v_j, with v = normalised g(x).

    ``features`` x and ``values`` g(x) are [B, C, H, W]; the similarity weights are not
    normalised (the output is L2-normalised by the caller, as in the official code).
    """
    b, _, h, w = features.shape
    x = F.normalize(features, dim=1).flatten(2)
    v = F.normalize(values, dim=1).flatten(2)
    weights = torch.bmm(x.transpose(1, 2), x).clamp(min=0.0)  # [B, HW (i), HW (j)]
    if gamma < 1.0:
        weights = weights + 1e-6  # the official guard for fractional powers at zero
    weights = weights**gamma
    return torch.bmm(v, weights.transpose(1, 2)).view(b, -1, h, w)


class PixelPropagation(nn.Module):
    """The PPM: similarity computation plus a value transform g (0: identity, 1: one 1×1 conv,
    2: a two-layer 1×1 conv MLP), output L2-normalised."""

    def __init__(self, dim: int, gamma: float = 2.0, transform_layers: int = 1) -> None:
        super().__init__()
        self.gamma = gamma
        if transform_layers == 0:
            self.value: nn.Module = nn.Identity()
        elif transform_layers == 1:
            self.value = nn.Conv2d(dim, dim, 1)
        else:
            self.value = mlp2d(dim, dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(propagate(x, self.value(x), self.gamma), dim=1)


def mlp2d(dim: int, hidden: int, out: int) -> nn.Module:
    """Projector / predictor as 1×1 convolutions: conv, BN, ReLU, conv (the official MLP2d)."""
    return nn.Sequential(
        nn.Conv2d(dim, hidden, 1), nn.BatchNorm2d(hidden), nn.ReLU(), nn.Conv2d(hidden, out, 1)
    )


def momentum_at(step: int, total_steps: int, base: float = 0.99) -> float:
    """The EMA coefficient, increased from ``base`` to 1 by a cosine over all iterations."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * step / max(total_steps, 1)) + 1.0) / 2.0


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
    # buffers (BN running statistics) are not averaged: the target's BN, in training mode,
    # normalises with batch statistics, as in the official code


def instance_consistency(prediction: Tensor, target: Tensor) -> Tensor:
    """BYOL-style instance term: −2 × mean cosine of [B, D] vectors (normalised inside)."""
    p, t = F.normalize(prediction, dim=1), F.normalize(target, dim=1)
    return -2.0 * (p * t).sum(dim=1).mean()
