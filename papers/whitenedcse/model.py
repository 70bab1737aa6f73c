"""WhitenedCSE: shuffled group whitening (SGW) in the training head, several positives.

Zhuo et al., ACL 2023; official code SupstarZh/WhitenedCSE (whitenedcse/models.py,
whitenedcse/shuffled_group_whitening.py, run_unsup_example.sh).

Each sentence is encoded ``num_pos`` = 3 times with independent dropout masks. For each view
v, the [CLS] vectors X_v ∈ R^{B×D} go through SGW and then the Linear+Tanh head (training
only; evaluation uses [CLS] before it):

* shuffle the D channels with a fresh random permutation π_v and split them into G groups of
  D/G channels (the paper: 128 groups for D = 768, i.e. 6 channels a group);
* per group g: centre over the batch, Σ_g = X_gᵀX_g / B, Σ_g = U diag(λ) Uᵀ, and
  X̂_g = X_g U diag(λ^{-1/2}) Uᵀ (ZCA whitening);
* undo the permutation.

Loss: L = CE(z1, z2) + CE(z1, z3), each the in-batch InfoNCE with cosine / τ (τ = 0.05).

Where the released code is broken, this implementation chooses (see README):
the whitening matrix is treated as a constant (the official ``torch.tensor(covs, ...)`` copy
detaches Σ from the graph); each view is whitened over its own B rows (the official slicing
x[:B], x[B:2B], x[2B:] assumes view-major rows while its flattening is sentence-major); the
eigenvalues are floored at ``eps`` (the official code has no floor).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from common.losses import info_nce
from common.text import cls_pool, pad_batch


def group_whiten(x: Tensor, groups: int, perm: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """ZCA-whiten ``x`` [B, D] in ``groups`` channel groups after permuting channels by ``perm``."""
    n, d = x.shape
    if d % groups:
        raise ValueError(f"{d} channels do not split into {groups} groups")
    if perm is not None:
        x = x[:, perm]
    xg = x.reshape(n, groups, d // groups)
    xg = (xg - xg.mean(dim=0, keepdim=True)).transpose(0, 1)  # [G, B, D/G]
    with torch.no_grad():
        cov = xg.transpose(1, 2) @ xg / n  # [G, D/G, D/G]
        eigval, eigvec = torch.linalg.eigh(cov.double())
        w = eigvec @ torch.diag_embed(eigval.clamp_min(eps).rsqrt()) @ eigvec.transpose(1, 2)
    out: Tensor = (xg @ w.to(x.dtype)).transpose(0, 1).reshape(n, d)
    if perm is not None:
        out = out[:, torch.argsort(perm)]
    return out


class WhiteningHead(nn.Module):
    """SGW -> dense -> tanh, the official ``MLPLayer`` of WhitenedCSE (training only)."""

    def __init__(self, hidden: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.eigen_floor = 1e-8
        self.dense = nn.Linear(hidden, hidden)
        self.activation = nn.Tanh()

    def forward(self, x: Tensor) -> Tensor:
        perm = torch.randperm(x.shape[1], device=x.device)
        out: Tensor = self.activation(
            self.dense(group_whiten(x, self.groups, perm, self.eigen_floor))
        )
        return out


class WhitenedCSE(nn.Module):
    def __init__(
        self, encoder: nn.Module, hidden: int, temperature: float, groups: int, num_pos: int = 3
    ) -> None:
        super().__init__()
        if num_pos < 2:
            raise ValueError("num_pos must be at least 2 (an anchor and one positive)")
        self.encoder = encoder
        self.mlp = WhiteningHead(hidden, groups)
        self.temperature = temperature
        self.num_pos = num_pos

    def loss(
        self, rows: list[list[int]], pad_id: int, device: torch.device, gather: bool = False
    ) -> Tensor:
        """Σ_{v≥2} CE(z1, z_v): every view after the first is a positive of the first."""
        batch = len(rows)
        ids, mask = pad_batch(rows, pad_id)
        ids, mask = ids.to(device), mask.to(device)
        h = cls_pool(self.encoder, ids.repeat(self.num_pos, 1), mask.repeat(self.num_pos, 1))
        views = [self.mlp(h[v * batch : (v + 1) * batch]) for v in range(self.num_pos)]
        return torch.stack(
            [info_nce(views[0], z, temperature=self.temperature, gather=gather) for z in views[1:]]
        ).sum()
