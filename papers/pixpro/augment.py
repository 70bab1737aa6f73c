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

from common.vision import coin, random_grayscale, random_resized_crop, to_gray, uniform


def crop_with_boxes(
    x: Tensor, size: int, scale: tuple[float, float], gen: torch.Generator, flip_p: float = 0.5
) -> tuple[Tensor, Tensor]:
    """Random resized crops (and flips) of ``x`` [B, C, H, W] to ``size``²; their boxes [B, 4]."""
    return random_resized_crop(x, (size, size), scale, gen, "border", flip_p)


def colour_jitter(x: Tensor, p: float, gen: torch.Generator) -> Tensor:
    b = x.shape[0]
    out = x * uniform(b, 0.6, 1.4, gen).view(-1, 1, 1, 1)
    mean = to_gray(out).mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * uniform(b, 0.6, 1.4, gen).view(-1, 1, 1, 1) + mean
    if x.shape[1] == 3:
        gray = to_gray(out)
        out = gray + (out - gray) * uniform(b, 0.8, 1.2, gen).view(-1, 1, 1, 1)
    return torch.where(coin(b, p, gen), out.clamp(0, 1), x)


def gaussian_blur(x: Tensor, p: float, gen: torch.Generator) -> Tensor:
    b, c, h, w = x.shape
    sigma = uniform(b, 0.1, 2.0, gen) * h / 224
    apply = coin(b, p, gen)
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
    return torch.where(coin(x.shape[0], p, gen) & (x >= 0.5), 1.0 - x, x)


def byol_views(
    x: Tensor, size: int, crop_min: float, gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The two asymmetric views of a batch and their crop boxes: (v1, v2, boxes1, boxes2)."""
    out = []
    for blur_p, solar_p in ((1.0, 0.0), (0.1, 0.2)):
        v, box = crop_with_boxes(x, size, (crop_min, 1.0), gen)
        v = random_grayscale(colour_jitter(v, 0.8, gen), 0.2, gen)
        v = solarize(gaussian_blur(v, blur_p, gen), solar_p, gen)
        out.append((v, box))
    return out[0][0], out[1][0], out[0][1], out[1][1]
