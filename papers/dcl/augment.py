"""SimCLR's CIFAR augmentations on batched tensors (no torchvision, which does not load here).

Random resized crop (area scale, aspect ratio 3/4–4/3) and horizontal flip as one affine
resampling; colour jitter (brightness, contrast, saturation 0.4, hue 0.1) with probability 0.8;
grayscale with probability 0.2. Deviations from torchvision: the jitter order is fixed
(brightness, contrast, saturation, hue) rather than random, and hue is a rotation in YIQ space,
a close approximation of torchvision's HSV hue shift.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_GRAY = torch.tensor([0.299, 0.587, 0.114])


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def crop_and_flip(x: Tensor, scale: tuple[float, float], gen: torch.Generator) -> Tensor:
    b = x.shape[0]
    area = _uniform(b, *scale, gen)
    ratio = torch.exp(_uniform(b, math.log(3 / 4), math.log(4 / 3), gen))
    w = torch.sqrt(area * ratio).clamp(max=1.0)
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (1 - w) * _uniform(b, -1, 1, gen)
    cy = (1 - h) * _uniform(b, -1, 1, gen)
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gray(x: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x
    return (x * _GRAY.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)


def _hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate chroma in YIQ by 2π·shift (shift in [-0.5, 0.5])."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    yiq = torch.einsum("ij,bjhw->bihw", to_yiq, x)
    angle = 2 * math.pi * shift.view(-1, 1, 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], cos * i - sin * q, sin * i + cos * q], dim=1)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_yiq), yiq)


def colour_jitter(
    x: Tensor, strength: tuple[float, float, float, float], p: float, gen: torch.Generator
) -> Tensor:
    b = x.shape[0]
    bright, contrast, sat, hue = strength
    apply = (torch.rand(b, generator=gen) < p).view(-1, 1, 1, 1)
    out = x * _uniform(b, 1 - bright, 1 + bright, gen).view(-1, 1, 1, 1)
    mean = _gray(out).mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * _uniform(b, 1 - contrast, 1 + contrast, gen).view(-1, 1, 1, 1) + mean
    if x.shape[1] == 3:
        gray = _gray(out)
        out = gray + (out - gray) * _uniform(b, 1 - sat, 1 + sat, gen).view(-1, 1, 1, 1)
        out = _hue(out, _uniform(b, -hue, hue, gen))
    return torch.where(apply, out.clamp(0, 1), x)


def random_grayscale(x: Tensor, p: float, gen: torch.Generator) -> Tensor:
    if x.shape[1] == 1:
        return x
    apply = (torch.rand(x.shape[0], generator=gen) < p).view(-1, 1, 1, 1)
    return torch.where(apply, _gray(x).expand_as(x), x)


def simclr_view(
    x: Tensor,
    gen: torch.Generator,
    crop_scale: tuple[float, float] = (0.08, 1.0),
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
) -> Tensor:
    x = crop_and_flip(x, crop_scale, gen)
    x = colour_jitter(x, jitter, 0.8, gen)
    return random_grayscale(x, 0.2, gen)
