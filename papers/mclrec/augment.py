"""CL4SRec/MCLRec stochastic sequence augmentations, vectorised over a batch.

For every sequence of length n > 1 two distinct operators are drawn from {crop, mask, reorder}
(one per view); sequences of length <= 1 are left as they are. As in the official data loader:
- crop keeps a random contiguous window of floor(n * (1 - crop_ratio)) items, left-aligned;
- mask sets floor(n * mask_ratio) random positions (of the first n) to the padding id 0;
- reorder shuffles a random contiguous window of floor(n * reorder_ratio) items.
"""

from __future__ import annotations

import torch
from torch import Tensor

CROP, MASK, REORDER = 0, 1, 2


def _start(n: Tensor, window: Tensor, gen: torch.Generator) -> Tensor:
    """Uniform integer in [0, n - window] per row."""
    return (torch.rand(n.shape, generator=gen) * (n - window + 1)).floor().long()


def crop(items: Tensor, n: Tensor, ratio: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    keep = torch.floor(n * (1 - ratio)).long()
    start = _start(n, keep, gen)
    cols = torch.arange(items.shape[1])
    src = (start[:, None] + cols[None]).clamp(max=items.shape[1] - 1)
    out = torch.gather(items, 1, src) * (cols[None] < keep[:, None])
    return out, keep


def mask(items: Tensor, n: Tensor, ratio: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    count = torch.floor(n * ratio).long()
    cols = torch.arange(items.shape[1])
    keys = torch.rand(items.shape, generator=gen).masked_fill(cols[None] >= n[:, None], 2.0)
    rank = keys.argsort(dim=1).argsort(dim=1)  # rank of each position among the first n
    return items.masked_fill(rank < count[:, None], 0), n


def reorder(items: Tensor, n: Tensor, ratio: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    size = torch.floor(n * ratio).long()
    start = _start(n, size, gen)
    cols = torch.arange(items.shape[1])
    inside = (cols[None] >= start[:, None]) & (cols[None] < (start + size)[:, None])
    # Window positions get keys in [start, start + 1): sorting permutes them among themselves.
    keys = torch.where(inside, start[:, None] + torch.rand(items.shape, generator=gen),
                       cols[None].float())  # fmt: skip
    return torch.gather(items, 1, keys.argsort(dim=1)), n


def two_views(
    items: Tensor, n: Tensor, ratios: tuple[float, float, float], gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(view1, len1, view2, len2) with two distinct operators per sequence."""
    ops = torch.rand(len(items), 3, generator=gen).argsort(dim=1)[:, :2]
    crop_ratio, mask_ratio, reorder_ratio = ratios
    candidates = (
        crop(items, n, crop_ratio, gen),
        mask(items, n, mask_ratio, gen),
        reorder(items, n, reorder_ratio, gen),
    )
    views = []
    for slot in range(2):
        seq, length = items.clone(), n.clone()
        for op, (aug_items, aug_len) in enumerate(candidates):
            rows = (ops[:, slot] == op) & (n > 1)
            seq[rows], length[rows] = aug_items[rows], aug_len[rows]
        views += [seq, length]
    return views[0], views[1], views[2], views[3]
