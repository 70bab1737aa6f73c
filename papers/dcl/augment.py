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
from torch import Tensor

from common.vision import coin, random_grayscale, random_resized_crop, to_gray, uniform


def crop_and_flip(x: Tensor, scale: tuple[float, float], gen: torch.Generator) -> Tensor:
    """Random resized crop and flip at the input's size, reflection-padded."""
    return random_resized_crop(x, (x.shape[2], x.shape[3]), scale, gen, "reflection")[0]


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
    apply = coin(b, p, gen)
    out = x * uniform(b, 1 - bright, 1 + bright, gen).view(-1, 1, 1, 1)
    mean = to_gray(out).mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * uniform(b, 1 - contrast, 1 + contrast, gen).view(-1, 1, 1, 1) + mean
    if x.shape[1] == 3:
        gray = to_gray(out)
        out = gray + (out - gray) * uniform(b, 1 - sat, 1 + sat, gen).view(-1, 1, 1, 1)
        out = _hue(out, uniform(b, -hue, hue, gen))
    return torch.where(apply, out.clamp(0, 1), x)


def simclr_view(
    x: Tensor,
    gen: torch.Generator,
    crop_scale: tuple[float, float] = (0.08, 1.0),
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
) -> Tensor:
    x = crop_and_flip(x, crop_scale, gen)
    x = colour_jitter(x, jitter, 0.8, gen)
    return random_grayscale(x, 0.2, gen)
