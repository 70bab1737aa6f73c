"""ESimCSE: word repetition for the positive, momentum-contrast queue for negatives.

Wu et al., COLING 2022; official code caskcsg/sentemb ``ESimCSE/`` (train.py prepare_features
with ``dup_type=bpe``; esimcse/models.py cl_forward; esimcse/trainers.py compute_loss).

* Positive view: the sentence's subword ids x (with [CLS] ... [SEP], length L) with
  ``k ~ U{0, .., min(10, ⌊dup_rate·L⌋) - 1}`` positions drawn without replacement from
  1..L-2 (never [CLS] or [SEP]), each duplicated in place; nothing happens when ⌊dup_rate·L⌋ = 0.
* Both views go through the dropout-noised encoder and the training-only Linear+Tanh head.
* Momentum encoder θ_m ← m·θ_m + (1-m)·θ (m = 0.995), updated at each forward, no dropout;
  after the loss, it encodes the *original* sentences (through the current head) into a FIFO
  queue of the last ``neg_size`` (160 = 2.5 × 64) embeddings, used as extra negatives:

    l_i = -log e^{cos(h_i, h_i^+)/τ} / (Σ_j e^{cos(h_i, h_j^+)/τ} + Σ_q e^{cos(h_i, m_q)/τ}).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from common.losses import info_nce
from common.text import cls_pool, pad_batch


def repeat_subwords(ids: Sequence[int], dup_rate: float, rng: random.Random) -> list[int]:
    """ESimCSE's ``bpe`` repetition of one tokenised sentence (see the module docstring)."""
    length = len(ids)
    budget = int(dup_rate * length)
    if budget <= 0 or length < 3:
        return list(ids)
    count = rng.randrange(min(10, budget))
    chosen = set(rng.sample(range(1, length - 1), min(count, length - 2)))
    out: list[int] = []
    for pos, token in enumerate(ids):
        if pos in chosen:
            out.append(token)
        out.append(token)
    return out


class MLPHead(nn.Module):
    """SimCSE's ``MLPLayer``: dense (hidden -> hidden) followed by tanh."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.activation = nn.Tanh()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.activation(self.dense(x))
        return out


class ESimCSE(nn.Module):
    def __init__(
        self, encoder: nn.Module, hidden: int, temperature: float, momentum: float, neg_size: int
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.mlp = MLPHead(hidden)
        self.temperature = temperature
        self.momentum = momentum
        self.neg_size = neg_size
        self.momentum_encoder = copy.deepcopy(encoder)
        for p in self.momentum_encoder.parameters():
            p.requires_grad = False
        self.queue = torch.zeros(0, hidden)  # not a buffer: its length grows to neg_size

    @torch.no_grad()
    def update_momentum(self) -> None:
        """θ_m ← m θ_m + (1 − m) θ."""
        online = self.encoder.parameters()
        for p_m, p in zip(self.momentum_encoder.parameters(), online, strict=True):
            p_m.mul_(self.momentum).add_(p.detach(), alpha=1.0 - self.momentum)

    @torch.no_grad()
    def enqueue(self, ids: Tensor, mask: Tensor) -> None:
        """Momentum embeddings of the original sentences (dropout off) join the FIFO queue."""
        self.momentum_encoder.eval()
        was_training = self.mlp.training
        self.mlp.eval()
        z = self.mlp(cls_pool(self.momentum_encoder, ids, mask))
        self.mlp.train(was_training)
        self.queue = torch.cat([self.queue.to(z.device), z.detach()])[-self.neg_size :]

    def loss(
        self,
        original: list[list[int]],
        repeated: list[list[int]],
        pad_id: int,
        device: torch.device,
        gather: bool = False,
    ) -> Tensor:
        batch = len(original)
        ids, mask = pad_batch([*original, *repeated], pad_id)
        ids, mask = ids.to(device), mask.to(device)
        z = self.mlp(cls_pool(self.encoder, ids, mask))
        self.update_momentum()
        z1, z2 = z[:batch], z[batch:]
        negatives = self.queue.to(device) if self.queue.shape[0] > 0 else None
        loss = info_nce(
            z1, z2, temperature=self.temperature, extra_negatives=negatives, gather=gather
        )
        self.enqueue(ids[:batch], mask[:batch])
        return loss
