"""Meta-path graph preprocessing of MEOW, vectorised (no Python loop over non-zeros).

* PathSim top-k pruning (Sun et al., VLDB 2011): for a meta-path count matrix ``A``,
  ``s_ij = 2 A_ij / (A_ii + A_jj)``; each row keeps the ``k`` neighbours with the largest
  ``s_ij`` (the node itself always scores 1, the maximum) with their *counts* ``A_ij``.
* Normalisation as the official ``normalize_adj``: with ``d`` the row sums of the (possibly
  asymmetric) pruned matrix, ``Â = D^{-1/2} Aᵀ D^{-1/2}`` (note the transpose the official code
  applies; it matters because top-k pruning is not symmetric).
* Edge dropping for the augmented fine view: drop a fraction of the non-self edges of the
  pruned graph (a random permutation, drawn once), binarise, add self loops, normalise.
* Feature masking: zero a fraction of the non-zero entries of the target features, drawn once.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch


def pathsim_scores(counts: sp.spmatrix) -> sp.csr_matrix:
    """``s_ij = 2 A_ij / (A_ii + A_jj)`` on the non-zeros of ``A`` (vectorised)."""
    a = sp.csr_matrix(counts, dtype=np.float64)
    a.sum_duplicates()
    a.eliminate_zeros()
    diag = a.diagonal()
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    denom = diag[rows] + diag[a.indices]
    score = np.where(denom > 0, 2.0 * a.data / np.where(denom > 0, denom, 1.0), 0.0)
    return sp.csr_matrix((score, a.indices.copy(), a.indptr.copy()), shape=a.shape)


def pathsim_topk(counts: sp.spmatrix, k: int, tie_break: str = "official") -> sp.csr_matrix:
    """Keep, per row, the ``k`` entries of highest PathSim score, with their counts.

    ``tie_break="official"`` reproduces the official selection exactly, ties included: a
    row-wise ``np.argsort`` of the dense score matrix, reversed, first ``k`` (one vectorised
    call; N×N memory). On ACM's P-S-P every score is 1, so the ties decide which neighbours stay.
    ``"sparse"`` never builds an N×N array (for large graphs): ties go to the larger node id.
    """
    a = sp.csr_matrix(counts, dtype=np.float64)
    a.sum_duplicates()
    a.eliminate_zeros()
    scores = pathsim_scores(a)
    n = a.shape[0]
    if tie_break == "official":
        top = np.argsort(scores.toarray(), axis=1)[:, ::-1][:, :k]
        rows = np.repeat(np.arange(n), top.shape[1])
        cols = top.ravel()
        values = np.asarray(a[rows, cols]).ravel()
        keep = values != 0
        return sp.csr_matrix((values[keep], (rows[keep], cols[keep])), shape=a.shape)
    if tie_break != "sparse":
        raise ValueError(f"unknown tie_break {tie_break!r}")
    rows = np.repeat(np.arange(n), np.diff(scores.indptr))
    cols = scores.indices
    order = np.lexsort((-cols, -scores.data, rows))  # by row, score desc, column desc
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size) - scores.indptr[rows[order]]
    keep = rank < k
    return sp.csr_matrix((a.data[keep], (rows[keep], cols[keep])), shape=a.shape)


def normalize_official(adj: sp.spmatrix) -> sp.csr_matrix:
    """``D^{-1/2} Aᵀ D^{-1/2}`` with ``D = diag(row sums of A)`` (official ``normalize_adj``)."""
    a = sp.csr_matrix(adj, dtype=np.float64)
    d = np.asarray(a.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 0.0)
    scale = sp.diags(inv_sqrt)
    return sp.csr_matrix(scale @ a.T @ scale)


def drop_edges(adj: sp.spmatrix, rate: float, rng: np.random.Generator) -> sp.csr_matrix:
    """Drop ``int(rate * E)`` random non-self edges, binarise the rest, add self loops."""
    a = sp.coo_matrix(adj)
    off = (a.row != a.col) & (a.data != 0)
    rows, cols = a.row[off], a.col[off]
    perm = rng.permutation(rows.size)
    kept = perm[int(rate * rows.size) :]
    n = a.shape[0]
    rest = sp.csr_matrix((np.ones(kept.size), (rows[kept], cols[kept])), shape=a.shape)
    return sp.csr_matrix(rest + sp.eye(n))


def mask_features(features: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Zero ``int(rate * nnz)`` randomly chosen non-zero entries (no renormalisation)."""
    out = features.copy()
    nz = np.flatnonzero(out)
    chosen = rng.choice(nz.size, size=int(nz.size * rate), replace=False)
    out.flat[nz[chosen]] = 0.0
    return out


def _csr(m: sp.csr_matrix) -> torch.Tensor:
    with warnings.catch_warnings():  # "CSR support is in beta": the product is all we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float32)),
            size=m.shape,
            check_invariants=False,
        )


class SparseOp:
    """A fixed sparse matrix ``A`` with ``Aᵀ`` precomputed, so that ``A @ x`` back-propagates
    as fast as it runs forward (torch's own CSR backward re-transposes on every call)."""

    def __init__(self, matrix: sp.spmatrix) -> None:
        m = sp.csr_matrix(matrix, dtype=np.float32)
        self.shape = m.shape
        self.matrix = _csr(m)
        self.transposed = _csr(sp.csr_matrix(m.T))

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = _SparseMatmul.apply(self.matrix, self.transposed, x)  # type: ignore[no-untyped-call]
        return out

    def to_dense(self) -> torch.Tensor:
        return self.matrix.to_dense()


class _SparseMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.a_t = a_t
        return a @ x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, None, torch.Tensor]:
        return None, None, ctx.a_t @ grad


Operator = SparseOp | torch.Tensor


def to_operator(matrix: sp.spmatrix, dense_above: float = 0.25) -> Operator:
    """A float32 operator: :class:`SparseOp`, or a dense tensor when more than ``dense_above``
    of the entries are non-zero (same product; dense is faster on CPU for near-dense graphs)."""
    m = sp.csr_matrix(matrix, dtype=np.float32)
    if m.nnz > dense_above * m.shape[0] * m.shape[1]:
        return torch.from_numpy(m.toarray())
    return SparseOp(m)
