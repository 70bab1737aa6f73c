"""The synthetic dense task: real images composed on a canvas, and a per-pixel probe.

A canvas is a **synthetic composition of real images**: 2–4 items, each resized to a random
side (``item_side`` pixels) and placed at a random position on a black 64×64 canvas. Two ways
to blend, one per kind of image:

* ``max`` (objects on black, Fashion-MNIST): canvas = per-pixel maximum of the pasted items; a
  pixel's label is the class + 1 of the item brightest there when that intensity exceeds
  ``threshold``, else 0 (background);
* ``paste`` (natural images with their own background, CIFAR-10): items are pasted in order,
  each covering the earlier ones; a pixel's label is the class + 1 of the item on top there,
  0 where no item lies.

11 classes. Canvases are generated on the fly from a seed (never stored): from training items
for the probe, from test items for the score.

The probe: frozen backbone features (standardised per channel), a 1×1 convolution to 11
logits, bilinear upsampling to the canvas size, per-pixel cross-entropy (Adam, full batch);
score = mean IoU over the classes present in the ground truth or the prediction.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Blend = Literal["max", "paste"]


def compose_canvases(
    images: Tensor,
    labels: Tensor,
    count: int,
    gen: torch.Generator,
    size: int = 64,
    items: tuple[int, int] = (2, 4),
    item_side: tuple[int, int] = (20, 36),
    threshold: float = 0.2,
    blend: Blend = "max",
) -> tuple[Tensor, Tensor]:
    """``count`` canvases [count, C, size, size] and per-pixel labels [count, size, size]."""
    c = images.shape[1]
    canvases = torch.zeros(count, c, size, size)
    target = torch.zeros(count, size, size, dtype=torch.long)
    for n in range(count):
        k = int(torch.randint(items[0], items[1] + 1, (1,), generator=gen))
        layers = torch.zeros(k, c, size, size)
        covered = torch.zeros(k, size, size, dtype=torch.bool)
        item_labels = torch.zeros(k, dtype=torch.long)
        for i in range(k):
            idx = int(torch.randint(len(labels), (1,), generator=gen))
            side = int(torch.randint(item_side[0], item_side[1] + 1, (1,), generator=gen))
            item = F.interpolate(images[idx : idx + 1], size=(side, side), mode="bilinear",
                                 align_corners=False)[0].clamp(0, 1)  # fmt: skip
            top, left = (int(torch.randint(size - side + 1, (1,), generator=gen)) for _ in "yx")
            layers[i, :, top : top + side, left : left + side] = item
            covered[i, top : top + side, left : left + side] = True
            item_labels[i] = labels[idx]
        if blend == "max":
            brightest, which = layers.mean(dim=1).max(dim=0)  # [size, size]
            canvases[n] = layers.max(dim=0).values
            target[n] = torch.where(brightest > threshold, item_labels[which] + 1, 0)
        else:
            for i in range(k):  # later items on top
                canvases[n] = torch.where(covered[i], layers[i], canvases[n])
                target[n] = torch.where(covered[i], item_labels[i] + 1, target[n])
    return canvases, target


def mean_iou(prediction: Tensor, target: Tensor, num_classes: int) -> float:
    """Mean IoU (percent) over the classes present in the target or the prediction."""
    ious = []
    for k in range(num_classes):
        p, t = prediction == k, target == k
        union = int((p | t).sum())
        if union:
            ious.append(int((p & t).sum()) / union)
    return 100.0 * sum(ious) / max(len(ious), 1)


@torch.no_grad()
def feature_maps(
    backbone: nn.Module, canvases: Tensor, mean: float | Tensor, std: float | Tensor
) -> Tensor:
    backbone.eval()
    return torch.cat([backbone((c - mean) / std) for c in canvases.split(256)])


def dense_probe_miou(
    train_feats: Tensor,
    train_target: Tensor,
    test_feats: Tensor,
    test_target: Tensor,
    num_classes: int = 11,
    steps: int = 200,
    lr: float = 0.01,
) -> float:
    """Train a 1×1-conv probe on frozen feature maps; mIoU (percent) on the test canvases."""
    mu = train_feats.mean(dim=(0, 2, 3), keepdim=True)
    sd = train_feats.std(dim=(0, 2, 3), keepdim=True) + 1e-6
    x, xt = (train_feats - mu) / sd, (test_feats - mu) / sd
    size = train_target.shape[-2:]
    probe = nn.Conv2d(x.shape[1], num_classes, 1)
    assert probe.bias is not None
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        probe.weight.copy_(torch.randn(probe.weight.shape, generator=gen) * 0.01)
        probe.bias.zero_()
    opt = torch.optim.Adam(probe.parameters(), lr=lr)

    def up(z: Tensor) -> Tensor:
        logits: Tensor = probe(z)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(up(x), train_target).backward()
            opt.step()
    with torch.no_grad():
        prediction = torch.cat([up(chunk).argmax(dim=1) for chunk in xt.split(256)])
    return mean_iou(prediction, test_target, num_classes)
