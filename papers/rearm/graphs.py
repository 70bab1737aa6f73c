"""The graphs REARM builds once from the training data, vectorised.

The official ``utils/helper.py`` builds them with Python loops (``creat_co_occur_matrix``: a
double loop over all node pairs, O(n²) set intersections, into a dense n x n matrix;
``creat_dict_graph`` and ``topk_sample``: a loop per node). Here the same graphs come from
sparse products and sorts; ``test_graphs.py`` checks them against a loop written from the
official semantics and, when the official code is at hand, against the official functions.

Semantics kept from the official code (quirks included):

* co-occurrence of two users = number of distinct training items they share (of two items:
  distinct training users); the diagonal is 0.
* each node keeps its (at most) 200 strongest co-occurring nodes, strongest first, then the
  first k of them (k = user_knn_k / item_knn_k). A node with 0 < m < k neighbours is padded to k
  by m-indexed draws of ``numpy.random.randint(0, m, size=k - m)`` (the legacy global generator,
  seeded by the run seed; the official code seeds it with ``np.random.seed(seed)`` and draws the
  user graph first, then the item graph: we draw from a ``RandomState(seed)`` in that order). A
  node with no co-occurring node gets the k most popular nodes, weighted by their counts divided
  by the sum of the k counts. The k weights of a node are then softmaxed (for the popular
  fallback: softmax of the already normalised weights, as the official ``topk_sample`` does).
  Repeated neighbours (padding) add up.
* Popularity: items by their number of distinct training users; users by their number of
  distinct items in train ∪ valid ∪ test (official quirk: ``update_dict`` adds the validation and
  test items into the training dict in place before users are ranked). Ties keep the order of
  first appearance (train first, then valid, then test), as Python's stable ``sorted`` does on
  the official dicts.
* Ties in co-occurrence counts: the official ``torch.topk`` leaves their order unspecified; here
  a tie goes to the lower node id (a stable sort), the rule ``test_official.py`` gives the official
  function too.
* semantic kNN: cosine similarity, each node's k most similar nodes (itself included), weighted
  by the similarity, normalised D^-½ S D^-½ with D the row count of the kNN graph (+1e-7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor

CO_LIMIT = 200  # creat_dict_graph keeps the 200 strongest co-occurring nodes


def binary(rows: Tensor, cols: Tensor, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """0/1 incidence matrix (repeated pairs count once)."""
    m = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float64), (rows.numpy(), cols.numpy())), shape=(n_rows, n_cols)
    )
    m.data[:] = 1.0
    return m


def cooccurrence(rows: Tensor, cols: Tensor, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """C[a, b] = number of distinct ``cols`` that rows a and b share; zero diagonal."""
    b = binary(rows, cols, n_rows, n_cols)
    c = (b @ b.T).tocsr()
    c.setdiag(0)
    c.eliminate_zeros()
    return c


@dataclass(frozen=True)
class Ranked:
    """Each node's strongest co-occurring nodes (CSR layout): strongest first, ties by id."""

    indptr: np.ndarray
    cols: np.ndarray
    counts: np.ndarray

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s, e = self.indptr[i], self.indptr[i + 1]
        return self.cols[s:e], self.counts[s:e]


def ranked_neighbours(co: sp.csr_matrix, limit: int = CO_LIMIT) -> Ranked:
    coo = co.tocoo()
    order = np.lexsort((coo.col, -coo.data, coo.row))  # by row, count desc, id asc
    row, col, cnt = coo.row[order], coo.col[order], coo.data[order]
    n = co.shape[0]
    per_row = np.bincount(row, minlength=n)
    start = np.cumsum(per_row) - per_row
    keep = (np.arange(len(row)) - start[row]) < limit
    kept = np.minimum(per_row, limit)
    indptr = np.concatenate([[0], np.cumsum(kept)])
    return Ranked(indptr, col[keep].astype(np.int64), cnt[keep].astype(np.float64))


def popularity(
    ids_in_order: np.ndarray, partner: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes by number of distinct partners, most first; ties by first appearance in
    ``ids_in_order`` (as Python's stable sort over an insertion-ordered dict). Nodes that never
    appear are not ranked (the official dicts do not hold them)."""
    pairs = np.unique(np.stack([ids_in_order, partner]), axis=1)
    counts = np.bincount(pairs[0], minlength=n)
    present, first = np.unique(ids_in_order, return_index=True)
    by_appearance = present[np.argsort(first, kind="stable")]
    order = by_appearance[np.argsort(-counts[by_appearance], kind="stable")]
    return order, counts[order].astype(np.float64)


def topk_graph(
    ranked: Ranked, k: int, popular: tuple[np.ndarray, np.ndarray], rng: np.random.RandomState
) -> Tensor:
    """The official ``topk_sample`` (softmax mode) as a sparse n x n tensor (duplicates summed)."""
    n = len(ranked.indptr) - 1
    length = np.diff(ranked.indptr)
    take = np.minimum(length, k)
    index = np.empty((n, k), dtype=np.int64)
    weight = np.empty((n, k), dtype=np.float32)
    full = length >= k
    if full.any():
        pos = ranked.indptr[:-1][full, None] + np.arange(k)[None, :]
        index[full], weight[full] = ranked.cols[pos], ranked.counts[pos]
    for i in np.flatnonzero((take > 0) & ~full):  # ascending node order: the official draw order
        cols, cnts = ranked.row(int(i))
        extra = rng.randint(0, len(cols), size=k - len(cols))
        index[i] = np.concatenate([cols, cols[extra]])
        weight[i] = np.concatenate([cnts, cnts[extra]])
    empty = take == 0
    if empty.any():
        top_ids, top_counts = popular[0][:k], popular[1][:k]
        index[empty] = top_ids
        weight[empty] = (top_counts / top_counts.sum()).astype(np.float32)
    values = torch.softmax(torch.from_numpy(weight), dim=1)
    rows = torch.arange(n).repeat_interleave(k)
    return torch.sparse_coo_tensor(
        torch.stack([rows, torch.from_numpy(index).flatten()]), values.flatten(), (n, n)
    ).coalesce()


def knn_graph(features: Tensor, k: int, block: int = 2048) -> Tensor:
    """The official ``get_knn_adj_mat`` without the dense n x n matrix: cosine top-k per row in
    blocks of rows, then D^-½ S D^-½ (D: row counts of the kNN graph, + 1e-7)."""
    x = F.normalize(features.float(), dim=1)
    n = x.shape[0]
    values, index = [], []
    for start in range(0, n, block):
        sim = x[start : start + block] @ x.T
        v, i = torch.topk(sim, k, dim=1)
        values.append(v)
        index.append(i)
    rows = torch.arange(n).repeat_interleave(k)
    cols = torch.cat(index).flatten()
    degree = torch.bincount(rows, minlength=n).float() + 1e-7
    scale = degree.pow(-0.5)
    vals = torch.cat(values).flatten() * scale[rows] * scale[cols]
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n)).coalesce()


def user_interests(user: Tensor, item: Tensor, n_users: int, features: Tensor) -> Tensor:
    """Each user's mean feature over their training interactions (a repeated interaction counts
    twice, as the official sparse sum). Users without training items are an error upstream."""
    counts = torch.bincount(user, minlength=n_users).float()
    total = torch.zeros(n_users, features.shape[1]).index_add_(0, user, features[item].float())
    return total / counts.unsqueeze(1)


def normalized_adjacency(user: Tensor, item: Tensor, n_users: int, n_items: int) -> Tensor:
    """The official ``get_norm_adj_mat``: users then items, binary symmetric, D^-½ A D^-½ with
    1e-7 added to every degree."""
    n = n_users + n_items
    b = binary(user, item + n_users, n, n)
    a = (b + b.T).tocoo()
    rows, cols = torch.from_numpy(a.row).long(), torch.from_numpy(a.col).long()
    degree = torch.bincount(rows, minlength=n).float() + 1e-7
    scale = degree.pow(-0.5)
    vals = scale[rows] * scale[cols]
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n)).coalesce()


def mix(a: Tensor, b: Tensor, weight_a: float) -> Tensor:
    """weight_a·A + (1 − weight_a)·B (sparse)."""
    return (a * weight_a + b * (1.0 - weight_a)).coalesce()
