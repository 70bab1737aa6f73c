"""Our vectorised graphs against the official construction functions, run side by side.

Needs the official code (MrShouxingMa/REARM, e.g. ``git archive`` of @6502a00 into a scratch
folder outside this repository) at the path in ``$REARM_OFFICIAL_DIR`` (the folder holding
``utils/helper.py``); skipped otherwise. Runs ``creat_co_occur_matrix``, ``creat_dict_graph``,
``topk_sample``, ``get_knn_adj_mat``, ``torch_sparse_tensor_norm_adj`` and the loader's
``dict_user_items`` (popularity) on a small dataset and compares every graph entry with ours.

Ties: the official ``torch.topk`` orders equal co-occurrence counts in an unspecified way; for
the comparison it is replaced, during the official calls only, by the stable sort that our
implementation uses (a tie goes to the lower node id). Everything else is the official code.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections import namedtuple
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from . import graphs
from .test_graphs import tiny_splits

OFFICIAL = os.environ.get("REARM_OFFICIAL_DIR", "")
pytestmark = pytest.mark.skipif(
    not (OFFICIAL and (Path(OFFICIAL) / "utils" / "helper.py").is_file()),
    reason="set REARM_OFFICIAL_DIR to a checkout of MrShouxingMa/REARM (utils/helper.py)",
)
TopK = namedtuple("TopK", "values indices")
_original_topk = torch.topk


def _stable_topk(x: torch.Tensor, k: int, dim: int = -1, **_: Any) -> TopK:
    values, indices = torch.sort(x, dim=dim, descending=True, stable=True)
    return TopK(values.narrow(dim, 0, k), indices.narrow(dim, 0, k))


@pytest.fixture(scope="module")
def official() -> tuple[ModuleType, ModuleType]:
    sys.path.insert(0, OFFICIAL)
    try:
        helper = importlib.import_module("utils.helper")
        loader = importlib.import_module("utils.data_loader")
    finally:
        sys.path.remove(OFFICIAL)
    return helper, loader


def _official_arrays(splits: tuple[Any, ...]) -> tuple[np.ndarray, ...]:
    """(N, 2) arrays with item ids shifted by n_users, as ``BaseDataset`` holds them."""
    n_users = splits[0]
    return tuple(np.stack([p.user.numpy(), p.item.numpy() + n_users], axis=1) for p in splits[2:])


@pytest.mark.parametrize(("k_user", "k_item"), [(3, 2), (5, 4)])
def test_cooccurrence_graphs_equal_official(
    official: tuple[ModuleType, ModuleType],
    monkeypatch: pytest.MonkeyPatch,
    k_user: int,
    k_item: int,
) -> None:
    helper, loader = official
    splits = tiny_splits(seed=3)
    n_users, n_items, train, _, _ = splits
    tr, va, te = _official_arrays(splits)
    base = loader.BaseDataset.__new__(loader.BaseDataset)  # only its dict_user_items
    base.n_users, base.train_data, base.valid_data, base.test_data = n_users, tr, va, te
    base.dict_user_items()
    monkeypatch.setattr(torch, "topk", _stable_topk)
    co_u = helper.creat_co_occur_matrix("user", tr, 0, n_users)
    co_i = helper.creat_co_occur_matrix("item", tr, n_users, n_items)
    dict_u, dict_i = helper.creat_dict_graph(co_u, n_users), helper.creat_dict_graph(co_i, n_items)
    np.random.seed(2025)  # the official Config's init_seed; users first, as the model's __init__
    off_u = helper.topk_sample(
        n_users, dict_u, k_user, base.topK_users, base.topK_users_counts, "softmax", "cpu"
    ).to_dense()
    off_i = helper.topk_sample(
        n_items, dict_i, k_item, base.topK_items, base.topK_items_counts, "softmax", "cpu"
    ).to_dense()
    monkeypatch.setattr(torch, "topk", _original_topk)

    every = [torch.cat([p.user for p in splits[2:]]), torch.cat([p.item for p in splits[2:]])]
    pop_u = graphs.popularity(every[0].numpy(), every[1].numpy(), n_users)
    pop_i = graphs.popularity(train.item.numpy(), train.user.numpy(), n_items)
    assert pop_u[0].tolist() == base.topK_users and pop_i[0].tolist() == base.topK_items
    ours_co_u = graphs.cooccurrence(train.user, train.item, n_users, n_items)
    assert np.array_equal(ours_co_u.toarray(), co_u.numpy())
    rng = np.random.RandomState(2025)
    ours_u = graphs.topk_graph(graphs.ranked_neighbours(ours_co_u), k_user, pop_u, rng)
    ours_i = graphs.topk_graph(
        graphs.ranked_neighbours(graphs.cooccurrence(train.item, train.user, n_items, n_users)),
        k_item,
        pop_i,
        rng,
    )
    assert torch.allclose(ours_u.to_dense(), off_u, atol=1e-6)
    assert torch.allclose(ours_i.to_dense(), off_i, atol=1e-6)


def test_knn_and_normalized_graphs_equal_official(official: tuple[ModuleType, ModuleType]) -> None:
    helper, _ = official
    n_users, n_items, train, _, _ = tiny_splits(seed=3)
    feats = torch.randn(n_items, 6, generator=torch.Generator().manual_seed(1))
    off = helper.get_knn_adj_mat(feats, 4, "cpu").to_dense()
    assert torch.allclose(graphs.knn_graph(feats, 4, block=5).to_dense(), off, atol=1e-6)
    # get_norm_adj_mat fills a dok_matrix through scipy's private ``_update`` (gone in the scipy
    # of this environment): the same 0/1 symmetric matrix is built here, then normalised by the
    # official ``torch_sparse_tensor_norm_adj``.
    n = n_users + n_items
    rows = np.concatenate([train.user.numpy(), train.item.numpy() + n_users])
    cols = np.concatenate([train.item.numpy() + n_users, train.user.numpy()])
    binary = sp.coo_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
    binary = (binary.tocsr() > 0).astype(np.float32).tocoo()
    adj = helper.sparse_mx_to_torch_sparse_tensor(binary)
    off_adj = helper.torch_sparse_tensor_norm_adj(adj, adj, (n, n), "cpu").to_dense()
    ours = graphs.normalized_adjacency(train.user, train.item, n_users, n_items).to_dense()
    assert torch.allclose(ours, off_adj, atol=1e-6)
