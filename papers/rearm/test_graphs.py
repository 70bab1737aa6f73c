"""The vectorised graphs against loops written from the official semantics (``utils/helper.py``
``creat_co_occur_matrix``, ``creat_dict_graph``, ``topk_sample``, ``get_knn_adj_mat``,
``get_norm_adj_mat``; ``utils/data_loader.py`` ``dict_user_items``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.interactions import Interactions

from . import graphs


def tiny_splits(seed: int = 0) -> tuple[int, int, Interactions, Interactions, Interactions]:
    """Users with many, few and no co-occurring users; an item nobody trained on."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 14, 12
    pairs = [
        (u, int(i))
        for u in range(10)
        for i in rng.choice(9, size=rng.integers(2, 6), replace=False)
    ]
    # user 10 has three co-occurring users (padded by random draws when k > 3), users 11-13 one;
    # item 11: no training user
    pairs += [(10, 9), (10, 10), (11, 10), (12, 10), (13, 9), (2, 2)]
    pairs = [pairs[j] for j in rng.permutation(len(pairs))]  # first appearance != id order
    train = Interactions(torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs]))
    valid = Interactions(torch.tensor([10, 11, 3]), torch.tensor([11, 3, 11]))
    test = Interactions(torch.tensor([12, 13, 0]), torch.tensor([1, 11, 11]))
    return n_users, n_items, train, valid, test


def naive_co(rows: list[int], cols: list[int], n: int) -> np.ndarray:
    sets: dict[int, set[int]] = {}
    for r, c in zip(rows, cols, strict=True):
        sets.setdefault(r, set()).add(c)
    out = np.zeros((n, n))
    keys = sorted(sets)
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            shared = len(sets[keys[a]] & sets[keys[b]])
            if shared:
                out[keys[a], keys[b]] = out[keys[b], keys[a]] = shared
    return out


def naive_popularity(splits: list[tuple[list[int], list[int]]]) -> tuple[list[int], list[int]]:
    """Python's stable sort over an insertion-ordered dict of sets, as the official loader."""
    d: dict[int, set[int]] = {}
    for ids, partners in splits:
        for a, b in zip(ids, partners, strict=True):
            d.setdefault(a, set()).add(b)
    ranked = sorted(d.items(), key=lambda kv: len(kv[1]), reverse=True)
    return [k for k, _ in ranked], [len(v) for _, v in ranked]


def naive_topk_sample(
    co: np.ndarray, k: int, popular: tuple[list[int], list[int]], rng: np.random.RandomState
) -> np.ndarray:
    n = co.shape[0]
    out = np.zeros((n, n), dtype=np.float64)
    for i in range(n):
        nz = [j for j in range(n) if co[i, j] > 0]
        nz.sort(key=lambda j: (-co[i, j], j))  # strongest first, ties by id
        nz = nz[: graphs.CO_LIMIT]
        cols, weights = nz[:k], [float(co[i, j]) for j in nz[:k]]
        if 0 < len(cols) < k:
            extra = rng.randint(0, len(cols), size=k - len(cols))
            cols = cols + [cols[e] for e in extra]
            weights = weights + [weights[e] for e in extra]
        elif not cols:
            cols = popular[0][:k]
            counts = popular[1][:k]
            weights = [c / sum(counts) for c in counts]
        w = np.asarray(weights, dtype=np.float32)
        soft = np.exp(w - w.max()) / np.exp(w - w.max()).sum()
        for j, s in zip(cols, soft, strict=True):
            out[i, j] += s
    return out


def test_cooccurrence_equals_pairwise_loop() -> None:
    n_users, n_items, train, _, _ = tiny_splits()
    ours = graphs.cooccurrence(train.user, train.item, n_users, n_items).toarray()
    assert np.array_equal(ours, naive_co(train.user.tolist(), train.item.tolist(), n_users))
    ours_i = graphs.cooccurrence(train.item, train.user, n_items, n_users).toarray()
    assert np.array_equal(ours_i, naive_co(train.item.tolist(), train.user.tolist(), n_items))


def test_popularity_counts_all_splits_for_users_in_first_appearance_order() -> None:
    _, n_items, train, valid, test = tiny_splits()
    splits = [(p.user.tolist(), p.item.tolist()) for p in (train, valid, test)]
    every = [[x for s in splits for x in s[0]], [x for s in splits for x in s[1]]]
    ids, counts = graphs.popularity(np.asarray(every[0]), np.asarray(every[1]), 14)
    want_ids, want_counts = naive_popularity(splits)
    assert ids.tolist() == want_ids and counts.tolist() == want_counts
    ids, counts = graphs.popularity(train.item.numpy(), train.user.numpy(), n_items)
    want_ids, want_counts = naive_popularity([(train.item.tolist(), train.user.tolist())])
    assert ids.tolist() == want_ids and counts.tolist() == want_counts


@pytest.mark.parametrize("k", [1, 3, 6])
def test_topk_graph_equals_per_node_loop(k: int) -> None:
    n_users, n_items, train, valid, test = tiny_splits()
    every = [
        torch.cat([p.user for p in (train, valid, test)]),
        torch.cat([p.item for p in (train, valid, test)]),
    ]
    pop_u = graphs.popularity(every[0].numpy(), every[1].numpy(), n_users)
    pop_i = graphs.popularity(train.item.numpy(), train.user.numpy(), n_items)
    co_u = graphs.cooccurrence(train.user, train.item, n_users, n_items)
    co_i = graphs.cooccurrence(train.item, train.user, n_items, n_users)
    rng = np.random.RandomState(7)
    ours_u = graphs.topk_graph(graphs.ranked_neighbours(co_u), k, pop_u, rng).to_dense()
    ours_i = graphs.topk_graph(graphs.ranked_neighbours(co_i), k, pop_i, rng).to_dense()
    ref = np.random.RandomState(7)  # the same stream, users first
    want_u = naive_topk_sample(co_u.toarray(), k, (pop_u[0].tolist(), pop_u[1].tolist()), ref)
    want_i = naive_topk_sample(co_i.toarray(), k, (pop_i[0].tolist(), pop_i[1].tolist()), ref)
    assert np.allclose(ours_u.numpy(), want_u, atol=1e-6)
    assert np.allclose(ours_i.numpy(), want_i, atol=1e-6)
    assert np.allclose(ours_u.sum(1).numpy(), 1.0, atol=1e-6)  # each row: one softmax


def test_ranked_neighbours_keeps_the_200_strongest() -> None:
    rng = np.random.default_rng(1)
    users = torch.from_numpy(rng.integers(0, 260, 6000))
    items = torch.from_numpy(rng.integers(0, 50, 6000))
    co = graphs.cooccurrence(users, items, 260, 50)
    ranked = graphs.ranked_neighbours(co)
    dense = co.toarray()
    for i in (0, 17, 259):
        cols, counts = ranked.row(i)
        want = sorted((j for j in range(260) if dense[i, j] > 0), key=lambda j: (-dense[i, j], j))
        assert cols.tolist() == want[:200] and len(want) > 200
        assert counts.tolist() == [dense[i, j] for j in want[:200]]


def test_knn_graph_equals_dense_reference() -> None:
    x = torch.randn(23, 5, generator=torch.Generator().manual_seed(0))
    k = 4
    ours = graphs.knn_graph(x, k, block=7).to_dense()
    xn = x / x.norm(dim=1, keepdim=True)
    sim = xn @ xn.T
    want = torch.zeros(23, 23)
    for i in range(23):
        v, j = torch.topk(sim[i], k)
        want[i, j] = v / math.sqrt(k + 1e-7) / math.sqrt(k + 1e-7)
    assert torch.allclose(ours, want, atol=1e-6)


def test_normalized_adjacency_and_interests() -> None:
    n_users, n_items, train, _, _ = tiny_splits()
    adj = graphs.normalized_adjacency(train.user, train.item, n_users, n_items).to_dense()
    a = torch.zeros(n_users + n_items, n_users + n_items)
    for u, i in zip(train.user.tolist(), train.item.tolist(), strict=True):
        a[u, n_users + i] = a[n_users + i, u] = 1.0
    d = (a.sum(1) + 1e-7).pow(-0.5)
    assert torch.allclose(adj, d[:, None] * a * d[None, :], atol=1e-7)
    feats = torch.randn(n_items, 3)
    mean = graphs.user_interests(train.user, train.item, n_users, feats)
    for u in (0, 10):
        rows = [
            i for uu, i in zip(train.user.tolist(), train.item.tolist(), strict=True) if uu == u
        ]
        assert torch.allclose(mean[u], feats[rows].mean(0), atol=1e-6)
