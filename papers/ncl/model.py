"""LightGCN with NCL's structural and prototype contrast (RUCAIBox/NCL ``ncl.py``).

Nodes are the users 0..U−1 followed by the items U..U+I−1. The graph is the training
interactions in both directions, normalised D^{-1/2} A D^{-1/2} without self-loops; layer l is
Â^l E⁰, the final embedding the mean of layers 0..n_layers. NCL propagates
max(n_layers, 2·hyper_layers) layers so that its context layer 2·hyper_layers exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import coalesce, to_torch_csr_tensor

from common.interactions import Interactions

from .losses import bpr, embedding_norm, info_nce_rows, proto_nce_rows, weighted_sum


def normalized_adjacency(train: Interactions, n_users: int, n_items: int) -> Tensor:
    """Â as a sparse CSR tensor (duplicate interactions count once, as the official dict)."""
    n = n_users + n_items
    items = train.item + n_users
    edges = coalesce(torch.stack([torch.cat([train.user, items]), torch.cat([items, train.user])]),
                     num_nodes=n)  # fmt: skip
    # Deviation (float-level): the official code adds 1e-7 to every degree before the −½ power.
    edges, weight = gcn_norm(edges, None, n, add_self_loops=False)
    adjacency: Tensor = to_torch_csr_tensor(edges, weight, size=(n, n))
    return adjacency


class _SymmetricSpmm(torch.autograd.Function):
    """Â x with the backward Â g (Â is symmetric): no transpose of the sparse matrix per step."""

    @staticmethod
    def forward(ctx: Any, adjacency: Tensor, x: Tensor) -> Tensor:
        ctx.adjacency = adjacency
        return adjacency @ x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        return None, ctx.adjacency @ grad


def propagate(adjacency: Tensor, x: Tensor) -> Tensor:
    out: Tensor = _SymmetricSpmm.apply(adjacency, x)  # type: ignore[no-untyped-call]
    return out


@dataclass(frozen=True)
class Prototypes:
    """K-means of the layer-0 embeddings: normalised centroids and each node's cluster."""

    user_centroids: Tensor
    user_cluster: Tensor
    item_centroids: Tensor
    item_cluster: Tensor


def kmeans(x: Tensor, k: int, seed: int = 1234, niter: int = 25) -> tuple[Tensor, Tensor]:
    """faiss K-means as the official ``run_kmeans`` (faiss's defaults: 25 iterations, seed 1234);
    centroids L2-normalised afterwards, clusters from the raw centroids' nearest neighbour."""
    points = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
    model = faiss.Kmeans(d=points.shape[1], k=k, niter=niter, seed=seed, gpu=False)
    model.train(points)
    _, nearest = model.index.search(points, 1)
    centroids = F.normalize(torch.from_numpy(model.centroids).to(x.device), dim=1)
    return centroids, torch.from_numpy(nearest.reshape(-1)).long().to(x.device)


class NCL(nn.Module):
    def __init__(self, n_users: int, n_items: int, adjacency: Tensor, dim: int = 64,
                 n_layers: int = 3, hyper_layers: int = 1) -> None:  # fmt: skip
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.n_layers, self.hyper_layers = n_layers, hyper_layers
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items, dim)
        nn.init.xavier_uniform_(
            self.user_embedding.weight
        )  # RecBole's xavier_uniform_initialization
        nn.init.xavier_uniform_(self.item_embedding.weight)
        self.adjacency = adjacency

    def layers(self, depth: int) -> list[Tensor]:
        x = torch.cat([self.user_embedding.weight, self.item_embedding.weight])
        out = [x]
        for _ in range(depth):
            out.append(propagate(self.adjacency, out[-1]))
        return out

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        users, items = torch.split(x, [self.n_users, self.n_items])
        return users, items

    def final(self, layers: list[Tensor]) -> tuple[Tensor, Tensor]:
        return self.split(torch.stack(layers[: self.n_layers + 1]).mean(dim=0))

    @torch.no_grad()
    def embeddings(self) -> tuple[Tensor, Tensor]:
        """Final user and item embeddings for ranking (LightGCN's layer mean)."""
        return self.final(self.layers(self.n_layers))

    def prototypes(self, k: int) -> Prototypes:
        """The E-step: K-means on the layer-0 (ego) embeddings of users and of items."""
        users, items = self.user_embedding.weight, self.item_embedding.weight
        return Prototypes(*kmeans(users, k), *kmeans(items, k))


@dataclass(frozen=True)
class LossWeights:
    reg_weight: float = 1e-4
    ssl_temp: float = 0.1
    ssl_reg: float = 1e-7
    alpha: float = 1.0
    proto_reg: float = 8e-8


def _distinct(ids: Tensor) -> tuple[Tensor, Tensor]:
    unique, counts = torch.unique(ids, return_counts=True)
    return unique, counts


def ncl_losses(model: NCL, user: Tensor, pos: Tensor, neg: Tensor, w: LossWeights,
               contrast: bool, protos: Prototypes | None) -> dict[str, Tensor]:  # fmt: skip
    """The official ``calculate_loss``: BPR + reg_weight·EmbLoss, the structural term, and the
    prototype term (``protos`` None: before warm-up, or LightGCN). ``contrast`` False gives
    LightGCN (no contrastive term, only ``n_layers`` layers propagated)."""
    depth = max(model.n_layers, 2 * model.hyper_layers) if contrast else model.n_layers
    layers = model.layers(depth)
    users, items = model.final(layers)
    u = users[user]
    out = {"bpr": bpr((u * items[pos]).sum(1), (u * items[neg]).sum(1))}
    ego_u, ego_i = model.split(layers[0])
    out["reg"] = w.reg_weight * embedding_norm(ego_u[user], ego_i[pos], ego_i[neg])
    if not contrast:
        return out
    ctx_u, ctx_i = model.split(layers[2 * model.hyper_layers])
    (uu, uc), (ii, ic) = _distinct(user), _distinct(pos)
    ssl_user = weighted_sum(info_nce_rows(ctx_u[uu], ego_u[uu], ego_u, w.ssl_temp), uc)
    ssl_item = weighted_sum(info_nce_rows(ctx_i[ii], ego_i[ii], ego_i, w.ssl_temp), ic)
    out["ssl"] = w.ssl_reg * (ssl_user + w.alpha * ssl_item)
    if protos is not None:
        p_user = proto_nce_rows(
            ego_u[uu], protos.user_centroids, protos.user_cluster[uu], w.ssl_temp
        )
        p_item = proto_nce_rows(
            ego_i[ii], protos.item_centroids, protos.item_cluster[ii], w.ssl_temp
        )
        out["proto"] = w.proto_reg * (weighted_sum(p_user, uc) + weighted_sum(p_item, ic))
    return out
