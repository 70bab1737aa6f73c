"""Unit tests of MEOW's pieces: each would fail if the method were implemented wrongly."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch.utils.checkpoint import checkpoint

from common.data import shared_artifacts, shared_datasets

from .cluster import Clustering, concentration
from .data import dblp_metapath_counts, dblp_relations, load_labels
from .evaluate import ProbeConfig, evaluate_embeddings, macro_f1_batch, probe, xavier_init
from .graph import SparseOp, drop_edges, normalize_official, pathsim_topk
from .losses import (
    adaptive_info_nce,
    fused_weighted_info_nce,
    negative_weights,
    proto_nce,
    weighted_info_nce,
)
from .model import GCN, PairWeightMLP, _pair_block


def _random_counts(n: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    inc = sp.csr_matrix((rng.random((n, 3 * n)) < 0.08).astype(np.float64))
    return sp.csr_matrix(inc @ inc.T + sp.eye(n))  # path counts, positive diagonal


def test_factorised_pair_weights_equal_naive_values_and_gradients() -> None:
    torch.manual_seed(0)
    mlp = PairWeightMLP(dim=8, hidden=16, chunk=5)  # chunk smaller than N: several blocks
    fine = torch.randn(13, 8, requires_grad=True)
    coarse = torch.randn(13, 8, requires_grad=True)
    fast = torch.sigmoid(mlp(fine, coarse))
    naive = mlp.naive(fine, coarse)
    torch.testing.assert_close(fast, naive, rtol=1e-5, atol=1e-6)
    g_fast = torch.autograd.grad(fast.square().sum(), [fine, coarse, *mlp.parameters()])
    g_naive = torch.autograd.grad(naive.square().sum(), [fine, coarse, *mlp.parameters()])
    for a, b in zip(g_fast, g_naive, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # the anchor is the row: w_ij depends on (fine_i, coarse_j), not symmetric
    assert not torch.allclose(naive, naive.t())


def _previous_adaptive_loss(
    mlp: PairWeightMLP, fine: torch.Tensor, coarse: torch.Tensor, tau: float
) -> torch.Tensor:
    """The implementation before the fused loss: checkpointed row chunks of logits, then
    ``adaptive_info_nce`` through autograd."""
    a, b = mlp.first(fine), F.linear(coarse, mlp.first.weight)
    w2, b2 = mlp.second.weight.view(-1), mlp.second.bias
    rows = [
        checkpoint(_pair_block, part, b, w2, b2, use_reentrant=False) for part in a.split(mlp.chunk)
    ]
    return adaptive_info_nce(fine, coarse, torch.cat(rows), tau)


def test_fused_adaptive_loss_equals_previous_values_and_gradients() -> None:
    """To float32 tolerance (not bit-identical: sums are taken in another order)."""
    torch.manual_seed(0)
    mlp = PairWeightMLP(dim=8, hidden=16, chunk=7)  # 7 does not divide 45: a short last chunk
    with torch.no_grad():
        mlp.second.weight.mul_(20)  # large logits: σ far from 1/2 and saturated tanh units
    fine = F.normalize(torch.randn(45, 8), dim=1).requires_grad_(True)
    coarse = F.normalize(torch.randn(45, 8), dim=1).requires_grad_(True)
    params = [fine, coarse, *mlp.parameters()]
    old = _previous_adaptive_loss(mlp, fine, coarse, 0.9)
    new = mlp.loss(fine, coarse, 0.9)
    torch.testing.assert_close(new, old, rtol=1e-6, atol=1e-6)
    g_old = torch.autograd.grad(3 * old, params)  # a non-unit upstream gradient
    g_new = torch.autograd.grad(3 * new, params)
    for name, a, b in zip(("fine", "coarse", "w1", "b1", "w2", "b2"), g_new, g_old, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(mlp.loss(fine, coarse, 0.9), old.detach(), rtol=1e-6, atol=1e-6)


def test_pathsim_topk_keeps_highest_scores_with_counts() -> None:
    counts = _random_counts(40, 1)
    dense = counts.toarray()
    k = 6
    for tie_break in ("official", "sparse"):
        pruned = pathsim_topk(counts, k, tie_break).toarray()
        diag = np.diag(dense)
        score = np.where(dense > 0, 2 * dense / (diag[:, None] + diag[None, :]), -1.0)
        for i in range(40):
            kept = np.flatnonzero(pruned[i])
            dropped = np.setdiff1d(np.flatnonzero(dense[i]), kept)
            assert len(kept) == min(k, np.count_nonzero(dense[i]))
            assert i in kept  # the node itself scores 1, the maximum
            np.testing.assert_array_equal(pruned[i, kept], dense[i, kept])  # counts, not scores
            if dropped.size:
                assert score[i, kept].min() >= score[i, dropped].max()


def test_pathsim_official_ties_follow_reversed_argsort() -> None:
    counts = sp.csr_matrix(np.ones((6, 6)))  # every score 1: only the tie rule decides
    pruned = pathsim_topk(counts, 2, "official").toarray()
    expected = np.argsort(np.ones((6, 6)), axis=1)[:, ::-1][:, :2]
    for i in range(6):
        assert set(np.flatnonzero(pruned[i])) == set(expected[i])


def test_normalisation_is_transposed_symmetric_as_official() -> None:
    a = pathsim_topk(_random_counts(30, 2), 4).toarray()  # asymmetric after pruning
    assert not np.allclose(a, a.T)
    d = a.sum(1)
    expected = np.diag(d**-0.5) @ a.T @ np.diag(d**-0.5)
    np.testing.assert_allclose(normalize_official(sp.csr_matrix(a)).toarray(), expected, rtol=1e-6)


def test_drop_edges_counts_and_self_loops() -> None:
    a = pathsim_topk(_random_counts(30, 3), 8)
    off_diag = a.nnz - 30
    out = drop_edges(a, 0.3, np.random.default_rng(0)).toarray()
    assert np.all(np.diag(out) == 1)
    assert np.count_nonzero(out) == off_diag - int(0.3 * off_diag) + 30
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert np.all((out > 0) <= (a.toarray() > 0))  # only existing edges survive


def test_sparse_op_matches_dense_in_both_directions() -> None:
    m = sp.random(20, 15, density=0.2, random_state=0, format="csr")
    op = SparseOp(m)
    x = torch.randn(15, 4, requires_grad=True)
    dense = torch.from_numpy(m.toarray().astype(np.float32))
    g1 = torch.autograd.grad((op @ x).sin().sum(), x)[0]
    g2 = torch.autograd.grad((dense @ x).sin().sum(), x)[0]
    torch.testing.assert_close(g1, g2)


def test_gcn_layernorm_normalises_the_whole_matrix() -> None:
    torch.manual_seed(0)
    gcn = GCN(6, 5, 5, dropout=0.0)
    out = gcn(torch.randn(10, 6), torch.eye(10)).detach()
    assert abs(float(out.mean())) < 1e-5
    assert abs(float(out.var(unbiased=False)) - 1) < 1e-3
    assert not torch.allclose(out.mean(1), torch.zeros(10), atol=1e-3)  # not per row


def test_weighted_info_nce_matches_its_formula() -> None:
    torch.manual_seed(0)
    c, f = F.normalize(torch.randn(9, 4), dim=1), F.normalize(torch.randn(9, 4), dim=1)
    assign = [torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 2]), torch.tensor([0, 1, 1, 1, 0, 2, 2, 1, 0])]
    w = negative_weights(assign)
    assert torch.all(w.diagonal() == 0) and w[0, 1] == 1 and w[2, 4] == 2
    dots = torch.exp(c @ f.t() / 0.4)
    expected = -torch.log(dots.diagonal() / (dots * w).sum(1)).mean()
    torch.testing.assert_close(weighted_info_nce(c, f, w, 0.4), expected)


def test_fused_weighted_info_nce_equals_previous_values_and_gradients() -> None:
    """To float32 tolerance (not bit-identical: sums are taken in another order)."""
    torch.manual_seed(0)
    c = F.normalize(torch.randn(40, 4), dim=1).requires_grad_(True)
    f = F.normalize(torch.randn(40, 4), dim=1).requires_grad_(True)
    assign = [torch.randint(0, 3, (40,)), torch.randint(0, 5, (40,))]
    old = weighted_info_nce(c, f, negative_weights(assign), 0.4)
    new = fused_weighted_info_nce(c, f, assign, 0.4, block_floats=7 * 40)  # 6 blocks, 1 short
    torch.testing.assert_close(new, old, rtol=1e-6, atol=1e-6)
    for a, b in zip(
        torch.autograd.grad(3 * new, [c, f]), torch.autograd.grad(3 * old, [c, f]), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_fused_weighted_info_nce_shifts_rows_where_exp_would_overflow() -> None:
    """Unnormalised embeddings with a small τ (|s| up to ~1e3): still finite and equal to the
    log-space reference, values and gradients."""
    torch.manual_seed(1)
    c = (10 * F.normalize(torch.randn(30, 4), dim=1)).requires_grad_(True)
    f = (10 * F.normalize(torch.randn(30, 4), dim=1)).requires_grad_(True)
    assign = [torch.randint(0, 4, (30,)), torch.randint(0, 6, (30,))]
    old = weighted_info_nce(c, f, negative_weights(assign), 0.1)
    new = fused_weighted_info_nce(c, f, assign, 0.1, block_floats=8 * 30)
    assert torch.isfinite(new)
    torch.testing.assert_close(new, old, rtol=1e-6, atol=1e-4)
    for a, b in zip(
        torch.autograd.grad(new, [c, f]), torch.autograd.grad(old, [c, f]), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fused_weighted_info_nce_refuses_a_second_backward() -> None:
    c = F.normalize(torch.randn(6, 4), dim=1).requires_grad_(True)
    loss = fused_weighted_info_nce(c, c.detach(), [torch.tensor([0, 0, 1, 1, 2, 2])], 0.5)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_adaptive_info_nce_includes_the_weighted_positive() -> None:
    torch.manual_seed(0)
    f, c = F.normalize(torch.randn(7, 4), dim=1), F.normalize(torch.randn(7, 4), dim=1)
    logits = torch.randn(7, 7)
    dots = torch.exp(f @ c.t())
    expected = -torch.log(dots.diagonal() / (dots * torch.sigmoid(logits)).sum(1)).mean()
    torch.testing.assert_close(adaptive_info_nce(f, c, logits, 1.0), expected)


def test_proto_nce_matches_official_formula() -> None:
    torch.manual_seed(0)
    z = F.normalize(torch.randn(8, 4), dim=1)
    cents = F.normalize(torch.randn(3, 4), dim=1)
    assign = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    dens = torch.tensor([0.3, 0.5, 0.4])
    pos = torch.exp((z * cents[assign]).sum(1) / dens[assign])
    neg = torch.exp(z @ cents.t() / dens).mean(1) * z.shape[0]
    expected = -torch.log(pos / neg).mean()
    torch.testing.assert_close(proto_nce(z, [Clustering(assign, cents, dens)]), expected)


def test_concentration_is_pcl_density() -> None:
    sims = np.array([0.81, 0.64, 0.49, 0.36, 0.25])
    assign = np.array([0, 0, 1, 1, 2])
    out = concentration(sims, assign, 3, tau=0.5)
    raw = np.array([(0.9 + 0.8) / 2 / np.log(7), (0.7 + 0.6) / 2 / np.log(7), 0.0])
    raw[2] = raw.max()  # single-point cluster
    raw = raw.clip(np.percentile(raw, 10), np.percentile(raw, 90))
    np.testing.assert_allclose(out, 0.5 * raw / raw.mean())


def test_macro_f1_matches_sklearn_even_with_missing_classes() -> None:
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 3, 50))
    preds = torch.from_numpy(rng.integers(0, 4, (5, 50)))  # class 3 never true
    preds[0] = 0  # one run predicting a single class
    ours = macro_f1_batch(preds, labels, 4)
    for r in range(5):
        assert abs(float(ours[r]) - f1_score(labels, preds[r], average="macro")) < 1e-6


def test_batched_probe_equals_separate_runs() -> None:
    """Three runs in one tensor must give exactly what one run at a time gives."""
    rng = np.random.default_rng(0)
    emb = torch.from_numpy(rng.normal(size=(60, 5)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 3, 60))
    split = {"train": np.arange(0, 15), "val": np.arange(15, 35), "test": np.arange(35, 60)}
    init = xavier_init(3, 5, 3, torch.Generator().manual_seed(1))
    cfg = ProbeConfig(lr=0.05, weight_decay=1e-3, runs=3, iterations=30)
    together = probe(emb, labels, split, cfg, torch.Generator(), init)
    one = ProbeConfig(lr=0.05, weight_decay=1e-3, runs=1, iterations=30)
    for r in range(3):
        alone = probe(emb, labels, split, one, torch.Generator(), init[r : r + 1])
        for key in together:
            assert abs(together[key][r] - alone[key][0]) < 1e-5, key


def test_dblp_rebuilt_counts_have_heco_patterns() -> None:
    root = shared_datasets()
    if root is None or not (root / "hetero/heco-dblp/pa.txt").is_file():
        pytest.skip("shared DBLP (HeCo layout) not present")
    counts = dblp_metapath_counts(dblp_relations(root / "hetero/heco-dblp"))
    for name in ("apa", "apcpa"):
        heco = sp.load_npz(root / f"hetero/heco-dblp/{name}.npz").astype(bool)
        assert (sp.csr_matrix(counts[name]).astype(bool) != heco).nnz == 0
    assert counts["aptpa"].shape == (4057, 4057)
    assert np.all(counts["aptpa"].diagonal() > 0)
    assert abs(counts["aptpa"] - counts["aptpa"].T).max() == 0


def test_official_embeddings_score_as_released() -> None:
    """The authors' ACM embeddings under our protocol (few probe runs to stay fast)."""
    data, arts = shared_datasets(), shared_artifacts()
    if data is None or arts is None or not (arts / "meow/acm_embeddings.pkl").is_file():
        pytest.skip("shared datasets or MEOW artifacts not present")
    with (arts / "meow/acm_embeddings.pkl").open("rb") as handle:
        emb = pickle.load(handle)
    nodes = load_labels("acm", data)
    assert emb.shape == (nodes.labels.shape[0], 64)
    ev = evaluate_embeddings(emb, nodes.labels, nodes.splits, ProbeConfig(0.03, 0.0, 5), 1, 0)
    assert 88 < ev.test["Ma-F1@20"] < 94 and 96 < ev.test["AUC@60"] < 100
    aminer = load_labels("aminer", data).labels
    with (arts / "meow/aminer_embeddings.pkl").open("rb") as handle:
        assert pickle.load(handle).shape[0] == aminer.shape[0] == 6564


def test_labels_are_remapped_to_zero_based(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .data import _labels

    np.save(tmp_path / "labels.npy", np.array([1, 3, 2, 3, 1]))  # IMDB's file uses 1..3
    np.testing.assert_array_equal(_labels(tmp_path / "labels.npy"), [0, 2, 1, 2, 0])
