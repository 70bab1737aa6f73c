"""A small fully-convolutional backbone and the four pre-training arms.

Arms (the same backbone, views and optimiser; only the heads and the loss differ):

- ``pixpro``: projector (1×1-conv MLP) → pixel propagation on the online branch; the momentum
  projector of the other view as target; the pixel consistency loss in both directions.
- ``pixpro-ins``: the same plus the BYOL-style instance branch (weight ``ins_weight``).
- ``byol``: the instance branch alone (projector, predictor, average pooling, momentum target).
- ``simclr``: average pooling, a 2-layer MLP head and NT-Xent (``common.losses.nt_xent``).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.losses import nt_xent

from .pixpro import (
    PixelPropagation,
    ema_update,
    instance_consistency,
    mlp2d,
    pixel_consistency,
)


class DenseCNN(nn.Module):
    """Three conv-BN-ReLU blocks (w, 2w, 4w channels), max-pooling after the first two:
    a feature map at stride 4 (8×8 for a 32×32 view, 16×16 for a 64×64 canvas)."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        chans = (in_channels, width, 2 * width, 4 * width)
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, 1, 1, bias=False),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(),
            ]
            if i < 2:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.dim = 4 * width

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.features(x)
        return out


class Pretrainer(nn.Module):
    """One arm: online encoder and heads, momentum copies where the arm has a target branch."""

    def __init__(
        self,
        variant: str,
        in_channels: int,
        width: int,
        hidden: int,
        out: int,
        gamma: float,
        transform_layers: int,
        threshold: float,
        ins_weight: float,
        temperature: float,
    ) -> None:
        super().__init__()
        self.variant = variant
        self.encoder = DenseCNN(in_channels, width)
        dim = self.encoder.dim
        self.threshold, self.temperature = threshold, temperature
        self.pixel = variant in ("pixpro", "pixpro-ins")
        self.ins_weight = (
            ins_weight if variant == "pixpro-ins" else (1.0 if variant == "byol" else 0)
        )
        self.online = nn.ModuleDict()
        if self.pixel:
            self.online["projector"] = mlp2d(dim, hidden, out)
            self.online["ppm"] = PixelPropagation(out, gamma, transform_layers)
        if self.ins_weight > 0:
            self.online["ins_projector"] = mlp2d(dim, hidden, out)
            self.online["predictor"] = mlp2d(out, hidden, out)
        if variant == "simclr":
            self.online["head"] = nn.Sequential(
                nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out)
            )
        self.target_encoder: nn.Module | None = None
        self.target_heads: nn.ModuleDict | None = None
        if variant != "simclr":
            self.target_encoder = copy.deepcopy(self.encoder)
            self.target_heads = nn.ModuleDict(
                {k: copy.deepcopy(v) for k, v in self.online.items() if k.endswith("projector")}
            )
            for p in [*self.target_encoder.parameters(), *self.target_heads.parameters()]:
                p.requires_grad_(False)

    def momentum_update(self, momentum: float) -> None:
        if self.target_encoder is None or self.target_heads is None:
            return
        ema_update(self.target_encoder, self.encoder, momentum)
        for name, head in self.target_heads.items():
            ema_update(head, self.online[name], momentum)

    def loss(self, v1: Tensor, v2: Tensor, boxes1: Tensor, boxes2: Tensor) -> Tensor:
        f1, f2 = self.encoder(v1), self.encoder(v2)
        if self.variant == "simclr":
            head = self.online["head"]
            z1, z2 = head(f1.mean(dim=(2, 3))), head(f2.mean(dim=(2, 3)))
            return nt_xent(z1, z2, temperature=self.temperature)
        assert self.target_encoder is not None and self.target_heads is not None
        with_grad = {}
        if self.pixel:
            with_grad["pix"] = [self.online["ppm"](self.online["projector"](f)) for f in (f1, f2)]
        if self.ins_weight > 0:
            with_grad["ins"] = [
                self.online["predictor"](self.online["ins_projector"](f)).mean(dim=(2, 3))
                for f in (f1, f2)
            ]
        targets = {}
        with torch.no_grad():
            g1, g2 = self.target_encoder(v1), self.target_encoder(v2)
            if self.pixel:
                heads = self.target_heads["projector"]
                targets["pix"] = [F.normalize(heads(g), dim=1) for g in (g1, g2)]
            if self.ins_weight > 0:
                heads = self.target_heads["ins_projector"]
                targets["ins"] = [heads(g).mean(dim=(2, 3)) for g in (g1, g2)]
        total = v1.new_zeros(())
        if self.pixel:
            (p1, p2), (t1, t2) = with_grad["pix"], targets["pix"]
            total = total + pixel_consistency(p1, t2, boxes1, boxes2, self.threshold)
            total = total + pixel_consistency(p2, t1, boxes2, boxes1, self.threshold)
        if self.ins_weight > 0:
            (q1, q2), (t1, t2) = with_grad["ins"], targets["ins"]
            ins = instance_consistency(q1, t2) + instance_consistency(q2, t1)
            total = total + self.ins_weight * ins
        return total
