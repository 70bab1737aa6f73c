"""NCL's parts against naive references: losses, the de-duplicated batch, propagation, data
split and filter, negative sampling, ranking masks."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from common.data import get_dataset
from common.interactions import Interactions
from tests.support.datasets import spec_for_local_files, temporary_dataset

from .data import (
    FILES,
    ML1M_RATINGS,
    Filter,
    apply_filter,
    load_dataset,
    split_by_user,
    split_counts,
)
from .losses import bpr, embedding_norm, info_nce_rows, proto_nce_rows, weighted_sum
from .model import NCL, LossWeights, kmeans, ncl_losses, normalized_adjacency, propagate


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_info_nce_rows_match_a_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    anchor, cands = torch.randn(4, 5, generator=gen), torch.randn(7, 5, generator=gen)
    index = [2, 0, 6, 2]
    rows = info_nce_rows(anchor, cands[index], cands, tau=0.2)
    for b in range(4):
        a = anchor[b].tolist()
        pos = math.exp(_cos(a, cands[index[b]].tolist()) / 0.2)
        total = sum(math.exp(_cos(a, c) / 0.2) for c in cands.tolist())
        assert float(rows[b]) == pytest.approx(-math.log(pos / total), rel=1e-5, abs=1e-6)


def test_proto_nce_rows_match_a_loop() -> None:
    gen = torch.Generator().manual_seed(1)
    nodes = torch.randn(5, 4, generator=gen)
    centroids = torch.nn.functional.normalize(torch.randn(3, 4, generator=gen), dim=1)
    assignment = torch.tensor([0, 2, 2, 1, 0])
    rows = proto_nce_rows(nodes, centroids, assignment, tau=0.1)
    for b in range(5):
        n = nodes[b].tolist()
        logits = [_cos(n, c) / 0.1 for c in centroids.tolist()]
        expected = -logits[int(assignment[b])] + math.log(sum(math.exp(x) for x in logits))
        assert float(rows[b]) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_bpr_and_embedding_norm_match_their_formulas() -> None:
    pos, neg = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.0, 1.0, 0.5])
    expected = -sum(math.log(1e-10 + 1 / (1 + math.exp(-(p - n)))) for p, n in
                    zip(pos.tolist(), neg.tolist(), strict=True)) / 3  # fmt: skip
    assert float(bpr(pos, neg)) == pytest.approx(expected, rel=1e-6)
    a, b = torch.tensor([[3.0, 4.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert float(embedding_norm(a, b)) == pytest.approx((5.0 + 1.0) / 2)  # norms, not squares


def _tiny_model(seed: int = 0) -> tuple[NCL, Interactions]:
    gen = torch.Generator().manual_seed(seed)
    train = Interactions(torch.randint(0, 6, (30,), generator=gen),
                         torch.randint(0, 8, (30,), generator=gen))  # fmt: skip
    torch.manual_seed(seed)
    return NCL(6, 8, normalized_adjacency(train, 6, 8), dim=4), train


def test_distinct_rows_weighted_by_count_give_the_per_interaction_sum() -> None:
    """The official code sums one term per interaction; we sum distinct nodes × their count."""
    model, _ = _tiny_model()
    protos = model.prototypes(2)
    user, pos, neg = torch.tensor([0, 0, 3, 5, 3, 0]), torch.tensor([1, 2, 1, 7, 7, 1]), \
        torch.tensor([4, 5, 6, 0, 3, 2])  # fmt: skip
    w = LossWeights(ssl_reg=0.5, alpha=1.5, proto_reg=0.3)
    parts = ncl_losses(model, user, pos, neg, w, True, protos)
    layers = model.layers(3)
    ego_u, ego_i = model.split(layers[0])
    ctx_u, ctx_i = model.split(layers[2])
    naive_ssl = info_nce_rows(ctx_u[user], ego_u[user], ego_u, w.ssl_temp).sum() + \
        w.alpha * info_nce_rows(ctx_i[pos], ego_i[pos], ego_i, w.ssl_temp).sum()  # fmt: skip
    naive_proto = proto_nce_rows(ego_u[user], protos.user_centroids,
                                 protos.user_cluster[user], w.ssl_temp).sum() + \
        proto_nce_rows(ego_i[pos], protos.item_centroids, protos.item_cluster[pos],
                       w.ssl_temp).sum()  # fmt: skip
    for ours, naive in ((parts["ssl"], w.ssl_reg * naive_ssl),
                        (parts["proto"], w.proto_reg * naive_proto)):  # fmt: skip
        g_ours = torch.autograd.grad(ours, model.item_embedding.weight, retain_graph=True)[0]
        g_naive = torch.autograd.grad(naive, model.item_embedding.weight, retain_graph=True)[0]
        assert torch.allclose(ours, naive, rtol=1e-6)
        assert torch.allclose(g_ours, g_naive, atol=1e-6)


def test_weighted_sum_counts_rows() -> None:
    assert float(weighted_sum(torch.tensor([1.0, 2.0]), torch.tensor([3, 1]))) == 5.0


def test_normalized_adjacency_and_propagation_against_dense() -> None:
    model, train = _tiny_model(2)
    dense = torch.zeros(14, 14)
    dense[train.user, train.item + 6] = 1.0
    dense[train.item + 6, train.user] = 1.0
    deg = dense.sum(1)
    scale = torch.where(deg > 0, deg.clamp(min=1).pow(-0.5), torch.zeros_like(deg))
    norm = scale[:, None] * dense * scale[None, :]
    assert torch.allclose(model.adjacency.to_dense(), norm, atol=1e-6)
    x = torch.randn(14, 3, requires_grad=True)
    weights = torch.randn(14, 3)
    (propagate(model.adjacency, x) * weights).sum().backward()
    assert torch.allclose(x.grad, norm.T @ weights, atol=1e-6)  # type: ignore[arg-type]


def test_lightgcn_final_embedding_is_the_layer_mean() -> None:
    model, _ = _tiny_model(3)
    dense = model.adjacency.to_dense()
    e0 = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach()
    mean = (e0 + dense @ e0 + dense @ dense @ e0 + dense @ dense @ dense @ e0) / 4
    users, items = model.embeddings()
    assert torch.allclose(torch.cat([users, items]), mean, atol=1e-6)


def test_kmeans_assigns_separated_blobs_and_normalises_centroids() -> None:
    gen = torch.Generator().manual_seed(0)
    blobs = torch.cat([torch.randn(20, 3, generator=gen) * 0.01 + c for c in
                       (torch.tensor([5.0, 0, 0]), torch.tensor([0, -5.0, 0]))])  # fmt: skip
    centroids, cluster = kmeans(blobs, 2)
    assert len(set(cluster[:20].tolist())) == 1 and len(set(cluster[20:].tolist())) == 1
    assert cluster[0] != cluster[20]
    assert torch.allclose(centroids.norm(dim=1), torch.ones(2), atol=1e-6)


def test_split_counts_follow_recbole() -> None:
    # n = 1: all to train; n = 2: test first takes one; n = 3..9: one each (train keeps > 1)
    got = split_counts(np.array([1, 2, 3, 9, 10, 25]))
    assert got.tolist() == [[1, 0, 0], [1, 0, 1], [1, 1, 1], [7, 1, 1], [8, 1, 1], [21, 2, 2]]


def test_split_is_per_user_disjoint_and_seeded() -> None:
    user = torch.repeat_interleave(torch.arange(5), torch.tensor([10, 3, 1, 20, 7]))
    parts = split_by_user(user, torch.Generator().manual_seed(0))
    assert sorted(torch.cat(parts).tolist()) == list(range(len(user)))
    sizes = np.stack([np.bincount(user[p].numpy(), minlength=5) for p in parts], axis=1)
    assert np.array_equal(sizes, split_counts(np.array([10, 3, 1, 20, 7])))
    again = split_by_user(user, torch.Generator().manual_seed(0))
    other = split_by_user(user, torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(parts, again, strict=True))
    assert not torch.equal(parts[0], other[0])


def test_filter_rating_then_k_core_until_stable() -> None:
    users = np.array(["a", "a", "b", "b", "c", "c"])
    items = np.array(["x", "y", "x", "z", "x", "y"])
    ratings = np.array([5, 4, 3, 5, 1, 4], dtype=float)
    assert apply_filter(users, items, ratings, Filter(min_rating=4)).tolist() == [0, 1, 3, 5]
    # 2-core: item z goes first (1 interaction); then user b has one left and goes too
    assert apply_filter(users, items, ratings, Filter(None, 2, 2)).tolist() == [0, 1, 4, 5]


def test_ml1m_is_read_from_the_grouplens_zip(tmp_path: Path) -> None:
    archive = tmp_path / "movielens" / "ml-1m.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr(ML1M_RATINGS, "1::10::5::978300760\n1::20::2::978302109\n"
                        "2::10::3::978301968\n3::30::4::978300275\n")  # fmt: skip
    with temporary_dataset(spec_for_local_files("movielens-1m", tmp_path, [FILES["ml-1m"][1]])):
        data = load_dataset("ml-1m", tmp_path, Filter(min_rating=3), split_seed=0)
    assert (data.n_users, data.n_items) == (3, 2)  # the rating-2 interaction is dropped
    pairs = zip(data.train.user.tolist(), data.train.item.tolist(), strict=True)
    assert sorted(pairs) == [(0, 0), (1, 0), (2, 1)]  # one interaction per user: all in train
    assert data.files["movielens/ml-1m.zip"]  # the verified checksum, for the run record
    official = get_dataset("movielens-1m").file(FILES["ml-1m"][1])  # outside the block again
    assert official.url.startswith("https://files.grouplens.org/") and len(official.md5) == 32
