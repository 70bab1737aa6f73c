"""Unsupervised SimCSE: dropout noise as augmentation, in-batch InfoNCE (Gao et al., EMNLP 2021).

Each sentence x_i is encoded twice with independent dropout masks, h_i = f(x_i; z),
h_i^+ = f(x_i; z'), taking the [CLS] vector through a Linear+Tanh head during training only
(``--pooler_type cls --mlp_only_train`` in princeton-nlp/SimCSE ``run_unsup_example.sh``):

    l_i = -log exp(cos(h_i, h_i^+)/τ) / Σ_j exp(cos(h_i, h_j^+)/τ),   τ = 0.05.

Evaluation uses the [CLS] vector before the head (``cls_before_pooler``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from common.losses import info_nce
from common.text import cls_pool


class MLPHead(nn.Module):
    """SimCSE's ``MLPLayer``: dense (hidden -> hidden) followed by tanh."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.activation = nn.Tanh()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.activation(self.dense(x))
        return out


class SimCSE(nn.Module):
    """Encoder + training-only head; ``loss`` takes one batch of token ids (one view each)."""

    def __init__(self, encoder: nn.Module, hidden: int, temperature: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.mlp = MLPHead(hidden)
        self.temperature = temperature

    def embed(self, ids: Tensor, mask: Tensor) -> Tensor:
        """The sentence embedding used at test time: [CLS] before the head."""
        return cls_pool(self.encoder, ids, mask)

    def loss(self, ids: Tensor, mask: Tensor, gather: bool = False) -> Tensor:
        """Both views in one forward pass (as the official code), distinct dropout per row."""
        batch = ids.shape[0]
        z = self.mlp(cls_pool(self.encoder, torch.cat([ids, ids]), torch.cat([mask, mask])))
        z1, z2 = z[:batch], z[batch:]
        return info_nce(z1, z2, temperature=self.temperature, gather=gather)
