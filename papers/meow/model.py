"""MEOW's encoder (Yu et al., SDM 2023; AdaMEOW, TKDE 2024), following jianxiangyu/MEOW.

* Type-specific projection: ``h_t = ELU(dropout(W_t x_t + b_t))`` per node type.
* Fine-grained view, per meta-path ``m``: contexts ``c = mean of h_type over the nodes reached
  along m``; ``v_m = ELU(h_tar + Σ dropout(W_agg c))``; the augmented copy uses the masked target
  features; a 2-layer GCN shared by all views (``Â·dropout(XW)``, PReLU, then a second layer and
  a LayerNorm over the *whole* N×d output, as the official ``GCN``); all 2M outputs are
  L2-normalised and fused by semantic attention into the embedding ``z``.
* Coarse view: the same GCN on the mean of the normalised meta-path graphs, from ``h_tar``.
* Projection head shared by both views: ``normalize(tanh(W z + b))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .graph import Operator


class TypeProjection(nn.Module):
    """``Linear(feat → hidden)`` of one node type; identity features are a weight lookup."""

    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, hidden)

    def forward(self, x: torch.Tensor | int) -> torch.Tensor:
        if isinstance(x, int):  # Linear(I) = Wᵀ + b without building the identity matrix
            # contiguous: dropout then draws its mask in the same memory order as Linear(I)
            return (self.linear.weight.t() + self.linear.bias).contiguous()
        out: torch.Tensor = self.linear(x)
        return out


class GraphConv(nn.Module):
    """``act(Â · dropout(X W))`` with the official uniform(±1/√out) init and a PReLU."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(out_dim)
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim).uniform_(-bound, bound))
        self.dropout = nn.Dropout(dropout)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor, adj: Operator, activate: bool = True) -> torch.Tensor:
        out: torch.Tensor = adj @ self.dropout(x @ self.weight)
        return self.act(out) if activate else out


class GCN(nn.Module):
    """Two graph convolutions, then LayerNorm over all N×d entries (no affine)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.gc1 = GraphConv(in_dim, hidden, dropout)
        self.gc2 = GraphConv(hidden, out_dim, dropout)

    def forward(self, x: torch.Tensor, adj: Operator) -> torch.Tensor:
        z = self.gc2(self.gc1(x, adj), adj, activate=False)
        return F.layer_norm(z, tuple(z.shape), eps=1e-5)


class SemanticAttention(nn.Module):
    """``β = softmax_m(a · mean_n tanh(W e_m,n + b))``, ``z = Σ_m β_m e_m`` (HAN/HeCo style)."""

    def __init__(self, dim: int, attn_drop: float) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        nn.init.xavier_normal_(self.fc.weight, gain=1.414)
        self.att = nn.Parameter(torch.empty(1, dim))
        nn.init.xavier_normal_(self.att, gain=1.414)
        self.drop = nn.Dropout(attn_drop)

    def forward(self, embeds: Sequence[torch.Tensor]) -> torch.Tensor:
        att = self.drop(self.att)
        scores = torch.stack([(att @ torch.tanh(self.fc(e)).mean(0)) for e in embeds]).view(-1)
        beta = torch.softmax(scores, dim=0)
        return sum((b * e for b, e in zip(beta, embeds, strict=True)), torch.zeros_like(embeds[0]))


@dataclass
class GraphInputs:
    """Tensors of one graph, prepared once before training."""

    target: torch.Tensor
    masked_target: torch.Tensor
    type_features: list[torch.Tensor | int]
    contexts: list[tuple[int, list[Operator], torch.Tensor]]  # (type, factors, 1/count)
    terms: list[list[tuple[int, int]]]  # per meta-path: (context, agg)
    adjs: list[Operator]
    masked_adjs: list[Operator]
    mean_adj: Operator


@dataclass
class Views:
    fine: list[torch.Tensor]  # 2M L2-normalised GCN outputs
    z: torch.Tensor  # fused fine embedding (the node embedding that is evaluated)
    coarse: torch.Tensor  # coarse GCN output


class MEOWEncoder(nn.Module):
    """Both views of MEOW/AdaMEOW up to (not including) the projection head."""

    def __init__(
        self,
        inputs: GraphInputs,
        num_agg: int,
        hidden: int,
        embed: int,
        dropout: float,
        mask_branch: str,
    ) -> None:
        super().__init__()
        self.target_fc = TypeProjection(inputs.target.shape[1], hidden)
        self.type_fc = nn.ModuleList(
            TypeProjection(f if isinstance(f, int) else f.shape[1], hidden)
            for f in inputs.type_features
        )
        self.agg = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(num_agg))
        self.encoder = GCN(hidden, embed, embed, dropout)
        self.attention = SemanticAttention(embed, dropout)
        self.dropout = nn.Dropout(dropout)
        self.mask_branch = mask_branch

    def fine_inputs(
        self, g: GraphInputs
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Per meta-path: the view input and its masked copy; plus ``h_tar`` (coarse input).

        ``mask_branch="acm"`` (ACM, IMDB): dropout on the masked projection and a fresh dropout
        draw on the context terms of the masked copy. ``"dblp"``: no dropout on the masked
        projection and the context terms shared with the view, as the official DBLP branch.
        """
        h_tar = F.elu(self.dropout(self.target_fc(g.target)))
        masked = self.target_fc(g.masked_target)
        h_mask = F.elu(self.dropout(masked) if self.mask_branch == "acm" else masked)
        h_types = [
            F.elu(self.dropout(fc(x))) for fc, x in zip(self.type_fc, g.type_features, strict=True)
        ]
        ctx = [self._context(factors, inv, h_types[t]) for t, factors, inv in g.contexts]
        views, masks = [], []
        for terms in g.terms:
            agg = sum(self.dropout(self.agg[a](ctx[c])) for c, a in terms)
            views.append(F.elu(h_tar + agg))
            if self.mask_branch == "acm":
                agg = sum(self.dropout(self.agg[a](ctx[c])) for c, a in terms)
            masks.append(F.elu(h_mask + agg))
        return views, masks, h_tar

    @staticmethod
    def _context(factors: list[Operator], inv: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        for f in reversed(factors):
            h = f @ h
        return h * inv.unsqueeze(1)

    def forward(self, g: GraphInputs) -> Views:
        views, masks, h_tar = self.fine_inputs(g)
        fine = []
        for view, mask, adj, madj in zip(views, masks, g.adjs, g.masked_adjs, strict=True):
            fine.append(F.normalize(self.encoder(view, adj), dim=1))
            fine.append(F.normalize(self.encoder(mask, madj), dim=1))
        coarse = self.encoder(h_tar, g.mean_adj)  # before the attention: official RNG order
        z = self.attention(fine)
        return Views(fine=fine, z=z, coarse=coarse)


class ProjectionHead(nn.Module):
    """``normalize(tanh(W x + b))``, shared by the coarse and fine views."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(torch.tanh(self.linear(x)), dim=1)


class PairWeightMLP(nn.Module):
    """AdaMEOW's soft negative weights ``w_ij = σ(W₂ tanh(W₁(f_i + c_j) + b₁) + b₂)``.

    :meth:`forward` returns the logits ``σ⁻¹(w_ij)`` (the loss uses ``log σ`` for stability).

    ``W₁(f_i + c_j) + b₁ = A_i + B_j`` with ``A = f W₁ᵀ + b₁`` and ``B = c W₁ᵀ``, so the N×N×d
    tensor of the official code (``f_i + c_j`` for every pair) is never built: only N×N×16
    hidden units, in row chunks of ``chunk`` rows. Training uses :meth:`loss`, which fuses
    these logits with the adaptive InfoNCE (:class:`_FusedAdaptiveLoss`), in blocks of at most
    ``chunk`` rows and about 4 MB.
    """

    def __init__(self, dim: int, hidden: int = 16, chunk: int = 128) -> None:
        super().__init__()
        self.first = nn.Linear(dim, hidden)
        self.second = nn.Linear(hidden, 1)
        self.chunk = chunk

    def naive(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """The official form, O(N²·d) memory: only for tests on small N."""
        pairs = fine.unsqueeze(1) + coarse.unsqueeze(0)
        return torch.sigmoid(self.second(torch.tanh(self.first(pairs)))).squeeze(-1)

    def weights(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(fine, coarse))

    def _factors(
        self, fine: torch.Tensor, coarse: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        a = self.first(fine)
        b = F.linear(coarse, self.first.weight)
        return a, b, self.second.weight.view(-1), self.second.bias

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        a, b, w2, b2 = self._factors(fine, coarse)
        return torch.cat([_pair_block(part, b, w2, b2) for part in a.split(self.chunk)])

    def loss(self, fine: torch.Tensor, coarse: torch.Tensor, tau: float) -> torch.Tensor:
        """``adaptive_info_nce(fine, coarse, self(fine, coarse), tau)``, fused (same value)."""
        a, b, w2, b2 = self._factors(fine, coarse)
        sim = fine @ coarse.t() / tau
        rows = max(1, min(self.chunk, _BLOCK_FLOATS // (b.shape[0] * b.shape[1])))
        lse: torch.Tensor = _FusedAdaptiveLoss.apply(a, b, w2, b2, sim, rows)  # type: ignore[no-untyped-call]
        return lse - sim.diagonal().mean()


# rows per block of the fused loss: about 4 MB of hidden units (kept in cache between its passes;
# 16 rows on ACM, 1.6x faster than 128 there)
_BLOCK_FLOATS = 1 << 20


def _pair_block(
    a: torch.Tensor, b: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor
) -> torch.Tensor:
    return torch.tanh(a.unsqueeze(1) + b.unsqueeze(0)) @ w2 + b2


class _FusedAdaptiveLoss(torch.autograd.Function):
    """``mean_i logsumexp_j(s_ij + log σ(l_ij))`` with ``l_ij = w₂·tanh(a_i + b_j) + b₂``.

    The output is a scalar and every row's softmax is known once its logits are, so the
    gradients are computed in the same pass over each row chunk as the loss (``tanh`` evaluated
    once, the chunk still in cache) and only scaled in ``backward``. With ``p`` the row
    softmax and ``G = p·σ(−l)/N`` (the gradient on the logits)::

        ∂/∂s = p/N,  ∂/∂w₂ = Σ_ij G_ij t_ij,  ∂/∂b₂ = Σ G,
        ∂/∂a_i = w₂ ⊙ Σ_j G_ij (1 − t_ij²),  ∂/∂b_j = w₂ ⊙ Σ_i G_ij (1 − t_ij²).

    The previous implementation (checkpointed logits, then ``adaptive_info_nce``) computed
    ``tanh`` twice and kept the N×N×h gradients of autograd out of cache.
    """

    @staticmethod
    def forward(
        ctx: Any,
        a: torch.Tensor,
        b: torch.Tensor,
        w2: torch.Tensor,
        b2: torch.Tensor,
        sim: torch.Tensor,
        chunk: int,
    ) -> torch.Tensor:
        n = a.shape[0]
        grads = any(ctx.needs_input_grad)
        lse = sim.new_empty(n)
        if grads:
            da, db, dsim = torch.empty_like(a), torch.zeros_like(b), torch.empty_like(sim)
            dw2, db2 = torch.zeros_like(w2), torch.zeros_like(b2)
        for start in range(0, n, chunk):
            rows = slice(start, start + chunk)
            t = torch.tanh(a[rows].unsqueeze(1) + b.unsqueeze(0))  # c, N, h
            logits = t @ w2 + b2
            z = sim[rows] + F.logsigmoid(logits)
            lse[rows] = torch.logsumexp(z, dim=1)
            if not grads:
                continue
            p = torch.exp(z - lse[rows].unsqueeze(1)).div_(n)
            dsim[rows] = p
            g = p.mul_(torch.sigmoid(-logits))
            dw2 += g.reshape(-1) @ t.reshape(-1, t.shape[2])
            db2 += g.sum()
            u = torch.addcmul(torch.ones((), dtype=t.dtype), t, t, value=-1.0).mul_(g.unsqueeze(2))
            da[rows] = u.sum(1)
            db += u.sum(0)
        if grads:
            ctx.save_for_backward(da.mul_(w2), db.mul_(w2), dw2, db2, dsim)
        return lse.mean()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return (*(grad * g for g in ctx.saved_tensors), None)
