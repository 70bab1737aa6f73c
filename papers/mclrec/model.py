"""SASRec as RecBole 0.2.1 defines it (the encoder of the official MCLRec code).

Module names follow RecBole so that the authors' checkpoints load as they are. Post-LN
transformer: ``LayerNorm(x + Dropout(Dense(Attention(x))))`` then
``LayerNorm(h + Dropout(W2 GELU(W1 h)))``; additive attention mask of -10000 on padding and
future positions; the sequence representation is the hidden state at the last real position.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Dropout(nn.Module):
    """``nn.Dropout(p)`` with the mask drawn as ``uniform >= p`` instead of by ``bernoulli_``: the
    same distribution (each entry kept with probability 1 - p, survivors scaled by 1/(1 - p)),
    another random stream, and about half the CPU time (``bernoulli_`` alone was 16-19 % of an
    MCLRec training batch: ``python -m papers.mclrec.benchmark --profile``). No parameters, so
    checkpoints load as with ``nn.Dropout``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return torch.zeros_like(x)
        keep = torch.rand_like(x) >= self.p
        return x * keep * (1.0 / (1.0 - self.p))


class MultiHeadAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, attn_dropout: float, dropout: float, eps: float):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attn_dropout = Dropout(attn_dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.out_dropout = Dropout(dropout)

    def _split(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + mask
        context = self.attn_dropout(scores.softmax(dim=-1)) @ v
        context = context.transpose(1, 2).reshape(x.shape)
        out: Tensor = self.LayerNorm(self.out_dropout(self.dense(context)) + x)
        return out


class FeedForward(nn.Module):
    def __init__(self, hidden: int, inner: int, dropout: float, eps: float):
        super().__init__()
        self.dense_1 = nn.Linear(hidden, inner)
        self.dense_2 = nn.Linear(inner, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.dense_2(F.gelu(self.dense_1(x)))  # exact (erf) GELU, as RecBole
        out: Tensor = self.LayerNorm(self.dropout(h) + x)
        return out


class TransformerLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, inner: int, dropout: float, attn_dropout: float,
                 eps: float):  # fmt: skip
        super().__init__()
        self.multi_head_attention = MultiHeadAttention(hidden, heads, attn_dropout, dropout, eps)
        self.feed_forward = FeedForward(hidden, inner, dropout, eps)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        out: Tensor = self.feed_forward(self.multi_head_attention(x, mask))
        return out


class TransformerEncoder(nn.Module):
    def __init__(self, layers: int, **kwargs: float) -> None:
        super().__init__()
        self.layer = nn.ModuleList([TransformerLayer(**kwargs) for _ in range(layers)])  # type: ignore[arg-type]

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for layer in self.layer:
            x = layer(x, mask)
        return x


class SASRec(nn.Module):
    """Item + learned position embeddings, LayerNorm, dropout, post-LN transformer layers.

    ``n_items`` is the largest item id; the embedding has ``n_items + 2`` rows as in the official
    code (0 = padding, ``n_items + 1`` = an unused mask token), scores cover ids ``0..n_items``.
    """

    def __init__(self, n_items: int, max_len: int = 50, hidden: int = 64, layers: int = 2,
                 heads: int = 2, inner: int = 256, dropout: float = 0.5,
                 attn_dropout: float = 0.5, eps: float = 1e-12,
                 init_std: float = 0.02) -> None:  # fmt: skip
        super().__init__()
        self.n_items = n_items
        self.item_embedding = nn.Embedding(n_items + 2, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(max_len, hidden)
        self.trm_encoder = TransformerEncoder(
            layers, hidden=hidden, heads=heads, inner=inner, dropout=dropout,
            attn_dropout=attn_dropout, eps=eps,
        )  # fmt: skip
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = Dropout(dropout)
        self.init_std = init_std
        self.length_buckets: tuple[int, ...] = (8, 16, 32)  # () = one padded batch
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(0.0, self.init_std)
        if isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    @staticmethod
    def attention_mask(items: Tensor) -> Tensor:
        """[B, 1, L, L] additive mask: 0 where key j <= query i and j is a real item, else -1e4."""
        length = items.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=items.device).tril()
        allowed = (items > 0)[:, None, None, :] & causal
        return (~allowed).to(torch.float32) * -10000.0

    def forward(self, items: Tensor, lengths: Tensor) -> Tensor:
        """[B, hidden]: the output at each sequence's last real position.

        Padding after a sequence's last real item cannot reach it (causal mask), so each
        sequence only needs its own length. Sequences are encoded in groups of similar length
        (``length_buckets``), each cut to its longest member: the same outputs as one padded
        batch (to float rounding; dropout draws differ), with ~4x fewer positions on Beauty,
        whose training prefixes have median length 4.
        """
        width = max(int(lengths.max()), 1)
        bounds = [b for b in self.length_buckets if b < width] + [width]
        if len(bounds) == 1:
            return self._encode(items[:, :width], lengths)
        groups, outputs, lower = [], [], -1  # -1: length-0 rows join the shortest group
        for upper in bounds:
            rows = ((lengths > lower) & (lengths <= upper)).nonzero().squeeze(1)
            lower = upper
            if rows.numel():
                cut = max(int(lengths[rows].max()), 1)
                groups.append(rows)
                outputs.append(self._encode(items[rows, :cut], lengths[rows]))
        order = torch.cat(groups)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=order.device)
        return torch.cat(outputs)[inverse]

    def _encode(self, items: Tensor, lengths: Tensor) -> Tensor:
        positions = torch.arange(items.shape[1], device=items.device)
        x: Tensor = self.item_embedding(items) + self.position_embedding(positions)[None]
        x = self.trm_encoder(self.dropout(self.LayerNorm(x)), self.attention_mask(items))
        last = (lengths - 1).clamp(min=0)
        return x[torch.arange(len(items), device=items.device), last]

    def full_scores(self, representation: Tensor) -> Tensor:
        """[B, n_items + 1]: dot products with item ids 0..n_items (column 0 is padding)."""
        return representation @ self.item_embedding.weight[: self.n_items + 1].T


class Augmenter(nn.Module):
    """MCLRec's learnable augmenter: MLP 64→32→16→64 with GELU between layers, L2-normalised."""

    def __init__(self, sizes: tuple[int, ...] = (64, 32, 16, 64)) -> None:
        super().__init__()
        self.dense_1 = nn.Linear(sizes[0], sizes[1])
        self.dense_2 = nn.Linear(sizes[1], sizes[2])
        self.dense_3 = nn.Linear(sizes[2], sizes[3])

    def forward(self, x: Tensor) -> Tensor:
        h = F.gelu(self.dense_2(F.gelu(self.dense_1(x))))
        return F.normalize(self.dense_3(h), dim=1)
