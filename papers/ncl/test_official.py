"""Our NCL against RecBole 1.2.1's (the official model, unchanged from RUCAIBox/NCL ``ncl.py``).

Runs only in the optional ``recbole`` environment (``environments/recbole.txt``,
``nox -s equivalence``); skipped elsewhere. From the same initial weights on the same RecBole
batch: the normalised graph, the K-means E-step (centroids and assignments), every loss term and
the gradient of every term; then the data filter and split sizes, and the full-ranking
evaluation of RecBole's ``Trainer`` against ours on RecBole's own split.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("recbole", reason="the equivalence environment (environments/recbole.txt) only")
faiss = pytest.importorskip("faiss")

from recbole.config import Config as RecBoleConfig  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.model.general_recommender import NCL as RecBoleNCL  # noqa: E402
from recbole.model.general_recommender import LightGCN as RecBoleLightGCN  # noqa: E402
from recbole.trainer import Trainer as RecBoleTrainer  # noqa: E402
from recbole.utils import init_seed  # noqa: E402

from common.interactions import Interactions, UserItems  # noqa: E402

from .data import Filter, apply_filter, split_counts  # noqa: E402
from .model import NCL, LossWeights, ncl_losses, normalized_adjacency  # noqa: E402
from .train import Config, evaluate  # noqa: E402

# Test weights far above the recipe's (1e-7, 8e-8) so that every term's gradient is visible.
SETTINGS: dict[str, Any] = {
    "embedding_size": 8, "n_layers": 3, "hyper_layers": 1, "reg_weight": 1e-4, "ssl_temp": 0.1,
    "ssl_reg": 0.3, "alpha": 1.5, "proto_reg": 0.2, "num_clusters": 4, "m_step": 1,
    "warm_up_step": 0,
}  # fmt: skip
RTOL, ATOL = 1e-5, 1e-7
GRAD_TOLERANCE = 1e-5  # largest |difference| relative to the largest |gradient| (float32 sums)


def _write_atomic(root: Path, users: int = 40, items: int = 30) -> None:
    rng = random.Random(3)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user in range(users):
        for item in rng.sample(range(items), rng.randint(4, 16)):
            lines.append(f"u{user}\ti{item}\t{rng.randint(1, 5)}\t{rng.randint(0, 10**9)}")
    (root / "tiny").mkdir(parents=True)
    (root / "tiny" / "tiny.inter").write_text("\n".join(lines) + "\n")


def _recbole(model: Any, root: Path) -> tuple[Any, Any]:
    options = {**SETTINGS, "data_path": str(root), "checkpoint_dir": str(root / "saved"),
               "use_gpu": False, "device": "cpu", "show_progress": False, "state": "ERROR",
               "load_col": {"inter": ["user_id", "item_id", "rating"]},
               "val_interval": {"rating": "[3,inf)"}, "train_batch_size": 64,
               "metrics": ["Recall", "NDCG"], "topk": [5, 10], "valid_metric": "NDCG@10",
               "metric_decimal_place": 10}  # fmt: skip
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole reads --key=value from the command line
    try:
        config = RecBoleConfig(model=model, dataset="tiny", config_dict=options)
    finally:
        sys.argv = argv
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    return config, (dataset, *data_preparation(config, dataset))


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("recbole")
    _write_atomic(root)
    config, (dataset, train, valid, test) = _recbole(RecBoleNCL, root)
    return {"root": root, "config": config, "dataset": dataset, "train": train,
            "valid": valid, "test": test}  # fmt: skip


@pytest.fixture()
def cpu_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    """The official ``run_kmeans`` asks for ``gpu=True``; faiss-cpu has no GPU: switch it off."""
    original = faiss.Kmeans

    def kmeans(*args: Any, **kwargs: Any) -> Any:
        kwargs["gpu"] = False
        return original(*args, **kwargs)

    monkeypatch.setattr(faiss, "Kmeans", kmeans)


def _pairs(data: Any) -> Interactions:
    feat = data.dataset.inter_feat
    return Interactions(feat["user_id"].long(), feat["item_id"].long())


def _ours(rb: Any, train: Interactions) -> NCL:
    """Our model on RecBole's ids (its padding id 0 is an isolated node), RecBole's weights."""
    adjacency = normalized_adjacency(train, rb.n_users, rb.n_items)
    ours = NCL(rb.n_users, rb.n_items, adjacency, SETTINGS["embedding_size"])
    with torch.no_grad():
        ours.user_embedding.weight.copy_(rb.user_embedding.weight)
        ours.item_embedding.weight.copy_(rb.item_embedding.weight)
    return ours


def _weights() -> LossWeights:
    s = SETTINGS
    return LossWeights(s["reg_weight"], s["ssl_temp"], s["ssl_reg"], s["alpha"], s["proto_reg"])


def _grads(terms: list[torch.Tensor], params: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    return [list(torch.autograd.grad(t.sum(), params, retain_graph=True)) for t in terms]


def test_graph_kmeans_losses_and_gradients_match(official: dict[str, Any], cpu_faiss: None) -> None:
    torch.manual_seed(0)
    rb = RecBoleNCL(official["config"], official["train"].dataset)
    ours = _ours(rb, _pairs(official["train"]))
    assert torch.allclose(ours.adjacency.to_dense(), rb.norm_adj_mat.to_dense(), atol=1e-6)

    rb.e_step()
    protos = ours.prototypes(SETTINGS["num_clusters"])
    assert torch.equal(protos.user_cluster, rb.user_2cluster)
    assert torch.equal(protos.item_cluster, rb.item_2cluster)
    assert torch.allclose(protos.user_centroids, rb.user_centroids, rtol=RTOL, atol=ATOL)
    assert torch.allclose(protos.item_centroids, rb.item_centroids, rtol=RTOL, atol=ATOL)

    batch = next(iter(official["train"]))
    user, pos, neg = batch["user_id"], batch["item_id"], batch["neg_item_id"]
    theirs = list(rb.calculate_loss(batch))  # (BPR + reg, structural, prototype)
    parts = ncl_losses(ours, user, pos, neg, _weights(), True, protos)
    mine = [parts["bpr"] + parts["reg"], parts["ssl"], parts["proto"]]
    for a, b in zip(mine, theirs, strict=True):
        assert torch.allclose(a, b.reshape(()), rtol=RTOL, atol=ATOL), (a, b)
    their_params = [rb.user_embedding.weight, rb.item_embedding.weight]
    my_params = [ours.user_embedding.weight, ours.item_embedding.weight]
    for g_mine, g_theirs in zip(_grads(mine, my_params), _grads(theirs, their_params), strict=True):
        for a, b in zip(g_mine, g_theirs, strict=True):
            assert b.abs().max() > 0
            assert (a - b).abs().max() <= GRAD_TOLERANCE * b.abs().max(), (a - b).abs().max()


def test_lightgcn_loss_and_gradient_match(official: dict[str, Any]) -> None:
    config, (_, train, _, _) = _recbole(RecBoleLightGCN, official["root"])
    torch.manual_seed(1)
    rb = RecBoleLightGCN(config, train.dataset)
    ours = _ours(rb, _pairs(train))
    batch = next(iter(train))
    theirs = rb.calculate_loss(batch)
    parts = ncl_losses(ours, batch["user_id"], batch["item_id"], batch["neg_item_id"],
                       _weights(), False, None)  # fmt: skip
    assert set(parts) == {"bpr", "reg"}
    mine = parts["bpr"] + parts["reg"]
    assert torch.allclose(mine, theirs.reshape(()), rtol=RTOL, atol=ATOL)
    (g_mine,), (g_theirs,) = (
        _grads([mine], [ours.item_embedding.weight]),
        _grads([theirs], [rb.item_embedding.weight]),
    )
    assert (g_mine[0] - g_theirs[0]).abs().max() <= GRAD_TOLERANCE * g_theirs[0].abs().max()


def test_filter_and_split_sizes_match(official: dict[str, Any]) -> None:
    lines = (official["root"] / "tiny" / "tiny.inter").read_text().splitlines()[1:]
    users, items, ratings = zip(*(line.split("\t")[:3] for line in lines), strict=True)
    kept = apply_filter(
        np.asarray(users), np.asarray(items), np.asarray(ratings, float), Filter(3.0)
    )
    assert len(kept) == len(official["dataset"].inter_feat)
    n_users = official["dataset"].user_num
    per_split = [np.bincount(_pairs(official[s]).user.numpy(), minlength=n_users)
                 for s in ("train", "valid", "test")]  # fmt: skip
    theirs = np.stack(per_split, axis=1)[1:]  # drop the padding user
    assert np.array_equal(split_counts(theirs.sum(axis=1)), theirs)


def test_full_ranking_evaluation_matches(
    official: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(official["root"])  # RecBole's Trainer writes log_tensorboard/ here
    torch.manual_seed(2)
    rb = RecBoleNCL(official["config"], official["train"].dataset)
    trainer = RecBoleTrainer(official["config"], rb)
    train, valid, test = (_pairs(official[s]) for s in ("train", "valid", "test"))
    ours = _ours(rb, train)
    config = Config(variant="ncl", topk=(5, 10), eval_batch_size=7)  # several ranking batches
    n = rb.n_users
    padding = Interactions(torch.arange(n), torch.zeros(n, dtype=torch.long))  # RecBole: −∞
    for split, seen, data in ((valid, [train], official["valid"]),
                              (test, [train, valid], official["test"])):  # fmt: skip
        history = Interactions(*(torch.cat([p.user for p in [*seen, padding]]),
                                 torch.cat([p.item for p in [*seen, padding]])))  # fmt: skip
        mine = evaluate(
            ours, UserItems(split, n), UserItems(history, n), config, torch.device("cpu")
        )
        theirs = trainer.evaluate(data, load_best_model=False, show_progress=False)
        for key, value in theirs.items():
            metric, k = key.split("@")
            name = {"recall": "Recall", "ndcg": "NDCG"}[metric] + "@" + k
            assert mine[name] == pytest.approx(float(value), abs=1e-6), name
