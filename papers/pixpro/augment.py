"""BYOL's asymmetric augmentations on batched tensors, with the crop boxes PixPro needs.

No torchvision (it does not load beside the CPU torch here). Per view: a random resized crop
(area scale in [crop_min, 1], aspect ratio 3/4–4/3) and a horizontal flip as one affine
resampling, returning each crop's box ``(x_left, y_top, x_right, y_bottom)`` in the source
image's normalised [0, 1] coordinates (x entries swapped when flipped, as the official
``RandomHorizontalFlipCoord`` does); colour jitter (brightness 0.4, contrast 0.4, saturation
0.2) with probability 0.8; grayscale with probability 0.2; Gaussian blur (σ uniform in 0.1–2.0
pixels at 224 px, scaled to the view size) with probability 1.0 (view 1) / 0.1 (view 2);
solarisation with probability 0.2 (view 2 only). Hue jitter (0.1) is left out, and the jitter
order is fixed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_LUMA = torch.tensor([0.299, 0.587, 0.114])


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def _coin(n: int, p: float, gen: torch.Generator) -> Tensor:
    return (torch.rand(n, generator=gen) < p).view(-1, 1, 1, 1)


def crop_with_boxes(
    x: Tensor, size: int, scale: tuple[float, float], gen: torch.Generator, flip_p: float = 0.5
) -> tuple[Tensor, Tensor]:
    """Random resized crops (and flips) of ``x`` [B, C, H, W] to ``size``²; their boxes [B, 4]."""
    b = x.shape[0]
    area = _uniform(b, *scale, gen)
    ratio = torch.exp(_uniform(b, math.log(3 / 4), math.log(4 / 3), gen))
    w = torch.sqrt(area * ratio).clamp(max=1.0)  # fraction of the image width
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (1 - w) * _uniform(b, -1, 1, gen)  # centre in [-1, 1] coordinates
    cy = (1 - h) * _uniform(b, -1, 1, gen)
    flip = torch.rand(b, generator=gen) < flip_p
    sign = torch.where(flip, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w * sign, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)
    views = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    left, right = (1 + cx - w) / 2, (1 + cx + w) / 2
    top, bottom = (1 + cy - h) / 2, (1 + cy + h) / 2
    boxes = torch.stack(
        [torch.where(flip, right, left), top, torch.where(flip, left, right), bottom], dim=1
    )
    return views, boxes


def _gray(x: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x
    return (x * _LUMA.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)


def colour_jitter(x: Tensor, p: float, gen: torch.Generator) -> Tensor:
    b = x.shape[0]
    out = x * _uniform(b, 0.6, 1.4, gen).view(-1, 1, 1, 1)
    mean = _gray(out).mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * _uniform(b, 0.6, 1.4, gen).view(-1, 1, 1, 1) + mean
    if x.shape[1] == 3:
        gray = _gray(out)
        out = gray + (out - gray) * _uniform(b, 0.8, 1.2, gen).view(-1, 1, 1, 1)
    return torch.where(_coin(b, p, gen), out.clamp(0, 1), x)


def grayscale(x: Tensor, p: float, gen: torch.Generator) -> Tensor:
    if x.shape[1] == 1:
        return x
    return torch.where(_coin(x.shape[0], p, gen), _gray(x).expand_as(x), x)


def gaussian_blur(x: Tensor, p: float, gen: torch.Generator) -> Tensor:
    b, c, h, w = x.shape
    sigma = _uniform(b, 0.1, 2.0, gen) * h / 224
    apply = _coin(b, p, gen)
    radius = max(1, math.ceil(3 * float(sigma.max())))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-(offsets.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)
    flat = x.reshape(1, b * c, h, w)
    flat = F.pad(flat, (radius, radius, 0, 0), mode="replicate")
    flat = F.conv2d(flat, kernel.view(b * c, 1, 1, -1), groups=b * c)
    flat = F.pad(flat, (0, 0, radius, radius), mode="replicate")
    flat = F.conv2d(flat, kernel.view(b * c, 1, -1, 1), groups=b * c)
    return torch.where(apply, flat.view(b, c, h, w), x)


def solarize(x: Tensor, p: float, gen: torch.Generator) -> Tensor:
    return torch.where(_coin(x.shape[0], p, gen) & (x >= 0.5), 1.0 - x, x)


def byol_views(
    x: Tensor, size: int, crop_min: float, gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The two asymmetric views of a batch and their crop boxes: (v1, v2, boxes1, boxes2)."""
    out = []
    for blur_p, solar_p in ((1.0, 0.0), (0.1, 0.2)):
        v, box = crop_with_boxes(x, size, (crop_min, 1.0), gen)
        v = grayscale(colour_jitter(v, 0.8, gen), 0.2, gen)
        v = solarize(gaussian_blur(v, blur_p, gen), solar_p, gen)
        out.append((v, box))
    return out[0][0], out[1][0], out[0][1], out[1][1]
