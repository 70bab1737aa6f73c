"""REARM (official ``model.py``) and the two ID-only baselines (MMRec's LightGCN and BPR).

Nodes: users 0..U−1, then items U..U+I−1 (the official loader shifts item ids by n_users).
REARM, per forward (the whole graph, once per training batch, as the official code):

1. Homography: items carry [id ‖ W_v·visual ‖ W_t·text] (64 each; the raw features are
   trainable parameters, as ``nn.Embedding.from_pretrained(freeze=False)``), propagated
   ``n_ii_layers`` times over the item graph (co-occurrence ⊕ semantic kNN), last layer only,
   then L2-normalised per row; users likewise over the user graph, from their trainable modal
   preferences (initially the mean feature of their training items).
2. Item feature attention: each 64-d modal vector is a sequence of 64 scalars; self-attention per
   modality, then text→visual and visual→text cross attention, each with residual, the one shared
   LayerNorm and the one shared PReLU.
3. Heterography: LightGCN-style propagation (mean of layers 0..n_layers) on the user–item graph,
   once for the modal parts [visual ‖ text] and once for the ids.
4. Meta-network: per node, low-rank (``rank``) transforms of the propagated id embedding whose
   weights come from the detached modal knowledge; representation = [PReLU(visual) + id ‖
   PReLU(text) + id ‖ PReLU(shared) + id] (192-d), dot-product score.

Ablations (variants): ``rearm-no-meta`` drops the meta-network (third block = the id embedding);
``rearm-no-homo`` skips step 1's propagation (and builds no user/item graph); ``rearm-text``
removes the visual modality everywhere (no cross attention, no contrastive and orthogonality
terms, 128-d representation); ``rearm-no-orth`` is the loss without the orthogonality term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .losses import bpr_gamma, bpr_logsigmoid, embedding_norm, modal_info_nce, orthogonality


class _Spmm(torch.autograd.Function):
    """A x with backward Aᵀ g, Aᵀ kept as its own CSR matrix (the item and user graphs are not
    symmetric)."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, at: Tensor, x: Tensor) -> Tensor:
        ctx.at = at
        return a @ x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, ctx.at @ grad


class SparseOp:
    """A fixed sparse matrix (CSR) and its transpose, for propagation with autograd."""

    def __init__(self, coo: Tensor, device: torch.device) -> None:
        coo = coo.coalesce().to(device)
        self.a = coo.to_sparse_csr()
        self.at = coo.t().coalesce().to_sparse_csr()

    def __call__(self, x: Tensor) -> Tensor:
        out: Tensor = _Spmm.apply(self.a, self.at, x)  # type: ignore[no-untyped-call]
        return out


def propagate(op: SparseOp, x: Tensor, layers: int, last_only: bool = False) -> Tensor:
    """The official ``propgt_info``: the last of ``layers`` products, or the mean of layers
    0..``layers``."""
    out = [x]
    for _ in range(layers):
        out.append(op(out[-1]))
    return out[-1] if last_only else torch.stack(out).mean(dim=0)


@dataclass(frozen=True)
class Hyper:
    dim: int = 64
    n_layers: int = 4
    n_ii_layers: int = 1
    n_uu_layers: int = 1
    rank: int = 3
    s_drop: float = 0.4
    m_drop: float = 0.6
    meta: bool = True
    homo: bool = True


class MLP(nn.Module):
    """The official ``MLP``: Linear → PReLU → Linear → L2-normalise."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int) -> None:
        super().__init__()
        self.pre, self.act, self.out = (
            nn.Linear(dim_in, hidden),
            nn.PReLU(),
            nn.Linear(hidden, dim_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = F.normalize(self.out(self.act(self.pre(x))), dim=-1)
        return out


class _Modality(nn.Module):
    """One modality: trainable item features and user preferences, and their projections."""

    def __init__(self, item_feat: Tensor, user_pref: Tensor, dim: int) -> None:
        super().__init__()
        self.item = nn.Parameter(item_feat.clone().float())
        self.user = nn.Parameter(user_pref.clone().float())
        self.item_proj = nn.Linear(item_feat.shape[1], dim)
        self.user_proj = nn.Linear(item_feat.shape[1], dim)
        nn.init.xavier_normal_(self.item_proj.weight)
        nn.init.xavier_normal_(self.user_proj.weight)


def attention(attn: nn.MultiheadAttention, query: Tensor, key_value: Tensor) -> Tensor:
    """``attn(query, kv, kv)`` of the official code for ``nn.MultiheadAttention(1, 1)`` over the
    64 feature dimensions (each a 1-d token), written out with the module's own parameters.

    With one head of width 1 the scores are an outer product, q_a·k_b (scale 1/√1), so they are
    formed elementwise instead of by batched 64x1 @ 1x64 products, and the attention dropout
    draws a uniform mask instead of ``bernoulli_`` (the slowest op of an epoch here): the same
    function and distribution, another random stream. ``test_rearm.py`` checks it against
    ``nn.MultiheadAttention`` (no dropout), and the dropout's keep rate and 1/(1 − p) scaling.
    """
    w, b = attn.in_proj_weight.view(3), attn.in_proj_bias.view(3)
    q = query * w[0] + b[0]
    k = key_value * w[1] + b[1]
    v = key_value * w[2] + b[2]
    weights = torch.softmax(q.unsqueeze(2) * k.unsqueeze(1), dim=2)  # [n, 64 queries, 64 keys]
    if attn.training and attn.dropout > 0:
        p = attn.dropout
        if p >= 1:  # Sports: s_drop = 1 (official), the attention output is only the bias
            weights = torch.zeros_like(weights)
        else:
            keep = torch.empty_like(weights).uniform_() >= p
            weights = weights * keep / (1.0 - p)
    out = torch.einsum("nqk,nk->nq", weights, v)
    projected: Tensor = out * attn.out_proj.weight.view(()) + attn.out_proj.bias.view(())
    return projected


class REARM(nn.Module):
    def __init__(
        self,
        n_users: int,
        n_items: int,
        ui: SparseOp,
        item_graph: SparseOp | None,
        user_graph: SparseOp | None,
        text: tuple[Tensor, Tensor],
        visual: tuple[Tensor, Tensor] | None,
        h: Hyper,
    ) -> None:
        super().__init__()
        self.n_users, self.n_items, self.h = n_users, n_items, h
        self.ui, self.item_graph, self.user_graph = ui, item_graph, user_graph
        d = h.dim
        self.user_id = nn.Embedding(n_users, d)
        self.item_id = nn.Embedding(n_items, d)
        nn.init.normal_(self.user_id.weight, std=0.1)
        nn.init.normal_(self.item_id.weight, std=0.1)
        self.text = _Modality(*text, d)
        self.visual = _Modality(*visual, d) if visual is not None else None
        self.ly_norm = nn.LayerNorm(d)  # one LayerNorm and one PReLU shared by all uses
        self.prl = nn.PReLU()
        self.self_v = nn.MultiheadAttention(1, 1, dropout=h.s_drop, batch_first=True)
        self.self_t = nn.MultiheadAttention(1, 1, dropout=h.s_drop, batch_first=True)
        self.cross_t2v = nn.MultiheadAttention(1, 1, dropout=h.m_drop, batch_first=True)
        self.cross_v2t = nn.MultiheadAttention(1, 1, dropout=h.m_drop, batch_first=True)
        n_mod = self.n_modalities
        self.mlp_u1, self.mlp_u2 = MLP(d, d * h.rank, d * h.rank), MLP(d, d * h.rank, d * h.rank)
        self.mlp_i1, self.mlp_i2 = MLP(d, d * h.rank, d * h.rank), MLP(d, d * h.rank, d * h.rank)
        self.meta_u = nn.Linear(d * n_mod, d)  # knowledge compression
        self.meta_i = nn.Linear(d * n_mod, d)

    @property
    def n_modalities(self) -> int:
        return 1 if self.visual is None else 2

    def _homogeneous(self, parts: list[Tensor], graph: SparseOp | None, layers: int) -> Tensor:
        x = torch.cat(parts, dim=1)
        if self.h.homo and graph is not None:
            x = propagate(graph, x, layers, last_only=True)
        return F.normalize(x, dim=1)

    def _modal_item(self, gnn_v: Tensor | None, gnn_t: Tensor) -> Tensor:
        t: Tensor = self.prl(self.ly_norm(gnn_t + attention(self.self_t, gnn_t, gnn_t)))
        if gnn_v is None:
            return t
        v = self.prl(self.ly_norm(gnn_v + attention(self.self_v, gnn_v, gnn_v)))
        t2v = self.prl(self.ly_norm(v + attention(self.cross_t2v, t, v)))  # query text, residual v
        v2t = self.prl(
            self.ly_norm(t + attention(self.cross_v2t, v, t))
        )  # query visual, residual t
        return torch.cat([t2v, v2t], dim=1)

    def forward(self) -> tuple[Tensor, Tensor]:
        """(representation of every node [U+I, 64·(n_modalities+1)], propagated modal parts
        [U+I, 64·n_modalities] that the contrastive and orthogonality terms read)."""
        d, mods = self.h.dim, [m for m in (self.visual, self.text) if m is not None]
        items = self._homogeneous(
            [self.item_id.weight, *(m.item_proj(m.item) for m in mods)],
            self.item_graph,
            self.h.n_ii_layers,
        )
        users = self._homogeneous(
            [self.user_id.weight, *(m.user_proj(m.user) for m in mods)],
            self.user_graph,
            self.h.n_uu_layers,
        )
        gnn_v = items[:, d : 2 * d] if self.visual is not None else None
        item_modal = self._modal_item(gnn_v, items[:, -d:])
        user_modal = self.prl(users[:, d:])
        feat = propagate(self.ui, torch.cat([user_modal, item_modal]), self.h.n_layers)
        ids = propagate(self.ui, torch.cat([users[:, :d], items[:, :d]]), self.h.n_layers)
        blocks = [self.prl(feat[:, k * d : (k + 1) * d]) + ids for k in range(self.n_modalities)]
        if self.h.meta:
            blocks.append(self.prl(self.shared(ids, feat)) + ids)
        else:
            blocks.append(ids)  # ablation: no meta-network, the id embedding in its place
        return torch.cat(blocks, dim=1), feat

    def shared(self, ids: Tensor, feat: Tensor) -> Tensor:
        """The official ``meta_extra_share``. The knowledge is detached (official), so the
        compression layers ``meta_u``/``meta_i`` never receive a gradient."""
        u = self._transform(
            ids[: self.n_users],
            self.meta_u(feat[: self.n_users]).detach(),
            self.mlp_u1,
            self.mlp_u2,
        )
        i = self._transform(
            ids[self.n_users :],
            self.meta_i(feat[self.n_users :]).detach(),
            self.mlp_i1,
            self.mlp_i2,
        )
        return torch.cat([u, i])

    def _transform(self, x: Tensor, knowledge: Tensor, first: MLP, second: MLP) -> Tensor:
        d, r = self.h.dim, self.h.rank
        w1 = first(knowledge).reshape(-1, d, r)
        w2 = second(knowledge).reshape(-1, r, d)
        w1 = torch.softmax(w1 + w1.mean(dim=0), dim=1)  # softmax over d (official dim=1)
        w2 = torch.softmax(w2 + w2.mean(dim=0), dim=1)  # softmax over the rank axis
        middle = torch.einsum("nd,ndr->nr", x, w1)
        return torch.einsum("nr,nrd->nd", middle, w2)

    @torch.no_grad()
    def embeddings(self) -> tuple[Tensor, Tensor]:
        rep, _ = self.forward()
        return rep[: self.n_users], rep[self.n_users :]


@dataclass(frozen=True)
class RearmWeights:
    cl_tmp: float = 0.6
    cl_loss_weight: float = 5e-6
    diff_loss_weight: float = 5e-5


def rearm_losses(
    model: REARM, user: Tensor, pos: Tensor, neg: Tensor, w: RearmWeights
) -> dict[str, Tensor]:
    """The official ``loss``: BPR + cl_loss_weight·(InfoNCE over the batch's distinct items
    (positives and negatives) + over its distinct users) + diff_loss_weight·(orthogonality over
    the batch's users + over its positive items, repeats kept). The L2 term is AdamW's weight
    decay, not a loss term."""
    rep, feat = model()
    pos_node, neg_node = pos + model.n_users, neg + model.n_users
    u = rep[user]
    out = {"bpr": bpr_logsigmoid((u * rep[pos_node]).sum(1), (u * rep[neg_node]).sum(1))}
    if model.n_modalities < 2:
        return out  # text only: no second modality to contrast or to keep apart
    d = model.h.dim
    items, users = torch.unique(torch.cat([pos_node, neg_node])), torch.unique(user)
    out["cl"] = w.cl_loss_weight * (
        modal_info_nce(feat[items, :d], feat[items, -d:], w.cl_tmp)
        + modal_info_nce(feat[users, :d], feat[users, -d:], w.cl_tmp)
    )
    if w.diff_loss_weight > 0:
        out["orth"] = w.diff_loss_weight * (
            orthogonality(feat[pos_node, :d], feat[pos_node, d:])
            + orthogonality(feat[user, :d], feat[user, d:])
        )
    return out


class LightGCN(nn.Module):
    """MMRec's LightGCN: mean of layers 0..n_layers on the normalised user–item graph; loss BPR +
    reg_weight·EmbLoss of the batch's layer-0 embeddings. Without a graph (``ui`` None) it is
    MMRec's BPR (matrix factorisation)."""

    def __init__(
        self, n_users: int, n_items: int, ui: SparseOp | None, dim: int, n_layers: int
    ) -> None:
        super().__init__()
        self.n_users, self.n_items, self.ui, self.n_layers = n_users, n_items, ui, n_layers
        # MMRec: LightGCN xavier-uniform, BPR (no graph) xavier-normal
        init = nn.init.xavier_uniform_ if ui is not None else nn.init.xavier_normal_
        self.user = nn.Parameter(init(torch.empty(n_users, dim)))
        self.item = nn.Parameter(init(torch.empty(n_items, dim)))

    def forward(self) -> tuple[Tensor, Tensor]:
        x = torch.cat([self.user, self.item])
        if self.ui is not None:
            x = propagate(self.ui, x, self.n_layers)
        return x[: self.n_users], x[self.n_users :]

    @torch.no_grad()
    def embeddings(self) -> tuple[Tensor, Tensor]:
        users, items = self.forward()
        return users, items


def baseline_losses(
    model: LightGCN, user: Tensor, pos: Tensor, neg: Tensor, reg_weight: float
) -> dict[str, Tensor]:
    """MMRec's ``calculate_loss`` for LightGCN and for BPR (BPR = no propagation; MMRec's BPR
    regularises the same layer-0 rows)."""
    users, items = model()
    u = users[user]
    out = {"bpr": bpr_gamma((u * items[pos]).sum(1), (u * items[neg]).sum(1))}
    out["reg"] = reg_weight * embedding_norm(model.user[user], model.item[pos], model.item[neg])
    return out
