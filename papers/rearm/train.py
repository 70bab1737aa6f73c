"""REARM and its baselines: training and evaluation as the official ``main.py``/``trainer.py``.

Per epoch: the training interactions in a seeded random order, batches of ``batch_size`` with
one uniform negative per interaction drawn among the items the user has in NONE of train, valid
and test (official quirk: ``user_items_dict`` holds all three splits); AdamW with weight decay
``reg_weight`` for REARM (MMRec's Adam, no weight decay, for the baselines); the official
learning-rate schedule 1.0^(epoch/50) is constant and left out. After each epoch, full ranking on
validation with the user's training items masked; the best validation Recall@20 (rounded to 4
decimals as the official evaluator does; a tie is not an improvement) is kept, training stops
once ``stopping_step`` epochs in a row fail to improve it + 1 (official ``early_stopping``), and
the test split is ranked once with the best weights, training items masked (official: validation
items are NOT masked at test time).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field, ValidationInfo, field_validator
from torch import Tensor

from common.config import StrictModel, declared_variant
from common.errors import DataError
from common.interactions import (
    Interactions,
    NegativeSampler,
    UserItems,
    bpr_batches,
    concat,
    full_ranking,
)
from common.runner import RunContext, RunOutcome

from . import graphs
from .data import Dataset, load
from .model import REARM, Hyper, LightGCN, RearmWeights, SparseOp, baseline_losses, rearm_losses

BASELINES = ("lightgcn", "bpr")


class DataConfig(StrictModel):
    split_seed: int = Field(2025, ge=0)  # ml-100k only: the seeded 8:1:1 split (recorded)
    kg_dim: int = Field(128, gt=0)  # ml-100k only: SVD rank of the KG modality
    max_users: int | None = Field(None, gt=0)  # smoke: only users 0..max_users-1 (all items)


class BaselineConfig(StrictModel):
    """MMRec's settings for LightGCN / BPR (src/configs/overall.yaml, model/*.yaml)."""

    lr: float = Field(1e-3, gt=0)
    reg_weight: float = Field(1e-4, ge=0)
    n_layers: int = Field(3, gt=0)


class Config(StrictModel):
    variant: Annotated[str, declared_variant(Path(__file__).parent)]  # paper.toml's list
    data: DataConfig = DataConfig()
    baseline: BaselineConfig = BaselineConfig()
    embedding_dim: int = Field(64, gt=0)
    n_layers: int = Field(4, gt=0)  # --num_layer
    reg_weight: float = Field(5e-4, ge=0)
    rank: int = Field(3, gt=0)
    s_drop: float = Field(0.4, ge=0, le=1)
    m_drop: float = Field(0.6, ge=0, le=1)
    u_mm_image_weight: float = Field(0.2, ge=0, le=1)
    i_mm_image_weight: float = Field(0.0, ge=0, le=1)
    uu_co_weight: float = Field(0.4, ge=0, le=1)
    ii_co_weight: float = Field(0.2, ge=0, le=1)
    user_knn_k: int = Field(40, gt=0)  # also num_user_co
    item_knn_k: int = Field(10, gt=0)  # also num_item_co
    n_ii_layers: int = Field(1, ge=0)
    n_uu_layers: int = Field(1, ge=0)
    cl_tmp: float = Field(0.6, gt=0)
    cl_loss_weight: float = Field(5e-6, ge=0)
    diff_loss_weight: float = Field(5e-5, ge=0)
    lr: float = Field(5e-5, gt=0)  # --l_r
    batch_size: int = Field(2048, gt=0)
    epochs: int = Field(2000, gt=0)
    stopping_step: int = Field(20, gt=0)
    topk: tuple[int, ...] = (10, 20)
    valid_metric: str = "Recall@20"  # after topk: its check reads the cutoffs

    @field_validator("valid_metric")
    @classmethod
    def _metric_is_evaluated(cls, value: str, info: ValidationInfo) -> str:
        allowed = [
            f"{m}@{k}" for m in ("Recall", "NDCG", "Precision") for k in info.data.get("topk", ())
        ]
        if value not in allowed:
            raise ValueError(f"not one of the evaluated metrics {allowed}")
        return value

    eval_batch_size: int = Field(8192, gt=0)
    threads: int | None = Field(None, gt=0)


Model = REARM | LightGCN


@torch.inference_mode()
def evaluate(
    model: Model, positives: UserItems, history: UserItems, config: Config, device: torch.device
) -> dict[str, float]:
    model.eval()
    users_emb, items_emb = model.embeddings()
    metrics = ("Recall", "NDCG", "Precision")
    return full_ranking(users_emb, items_emb, positives, history, config.topk, metrics,
                        config.eval_batch_size, device)  # fmt: skip


def build_graphs(
    config: Config,
    data: Dataset,
    seed: int,
    text_only: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The item and user homogeneous graphs (official ``Load_dataset`` + model ``__init__``)."""
    assert data.text is not None
    tr = data.train
    rng = np.random.RandomState(seed % 2**32)  # official: np.random.seed(seed), users first
    every = concat(data.train, data.valid, data.test)
    user_pop = graphs.popularity(every.user.numpy(), every.item.numpy(), data.n_users)
    item_pop = graphs.popularity(tr.item.numpy(), tr.user.numpy(), data.n_items)
    user_co = graphs.topk_graph(
        graphs.ranked_neighbours(graphs.cooccurrence(tr.user, tr.item, data.n_users, data.n_items)),
        config.user_knn_k,
        user_pop,
        rng,
    )
    item_co = graphs.topk_graph(
        graphs.ranked_neighbours(graphs.cooccurrence(tr.item, tr.user, data.n_items, data.n_users)),
        config.item_knn_k,
        item_pop,
        rng,
    )
    item_sem = graphs.knn_graph(data.text, config.item_knn_k)
    user_sem = graphs.knn_graph(
        graphs.user_interests(tr.user, tr.item, data.n_users, data.text), config.user_knn_k
    )
    if not text_only and data.visual is not None:
        item_v = graphs.knn_graph(data.visual, config.item_knn_k)
        user_v = graphs.knn_graph(
            graphs.user_interests(tr.user, tr.item, data.n_users, data.visual), config.user_knn_k
        )
        item_sem = graphs.mix(item_v, item_sem, config.i_mm_image_weight)
        user_sem = graphs.mix(user_v, user_sem, config.u_mm_image_weight)
    return (
        graphs.mix(item_co, item_sem, config.ii_co_weight),
        graphs.mix(user_co, user_sem, config.uu_co_weight),
    )


class Trainer:
    def __init__(self, config: Config, data: Dataset, device: torch.device, seed: int) -> None:
        self.config, self.device = config, device
        v = config.variant
        tr = data.train
        ui = SparseOp(
            graphs.normalized_adjacency(tr.user, tr.item, data.n_users, data.n_items), device
        )
        self.model: Model
        if v in BASELINES:
            b = config.baseline
            self.model = LightGCN(
                data.n_users,
                data.n_items,
                ui if v == "lightgcn" else None,
                config.embedding_dim,
                b.n_layers,
            ).to(device)
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                self.model.parameters(), lr=b.lr
            )
            return
        if data.text is None or (v != "rearm-text" and data.visual is None):
            raise DataError(f"variant {v} needs item features, and none were loaded")
        empty = torch.bincount(tr.user, minlength=data.n_users) == 0
        if bool(empty.any()):
            raise DataError(
                f"{int(empty.sum())} users have no training interaction: their "
                "modal preference (mean of their training items) is undefined"
            )
        text_only = v == "rearm-text"
        homo = v != "rearm-no-homo"
        item_graph = user_graph = None
        if homo:
            item_co, user_co = build_graphs(config, data, seed, text_only)
            item_graph, user_graph = SparseOp(item_co, device), SparseOp(user_co, device)
        text = (data.text, graphs.user_interests(tr.user, tr.item, data.n_users, data.text))
        visual = None
        if not text_only:
            assert data.visual is not None
            visual = (
                data.visual,
                graphs.user_interests(tr.user, tr.item, data.n_users, data.visual),
            )
        h = Hyper(
            config.embedding_dim,
            config.n_layers,
            config.n_ii_layers,
            config.n_uu_layers,
            config.rank,
            config.s_drop,
            config.m_drop,
            meta=v != "rearm-no-meta",
            homo=homo,
        )
        self.model = REARM(
            data.n_users, data.n_items, ui, item_graph, user_graph, text, visual, h
        ).to(device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.reg_weight
        )
        diff = 0.0 if v == "rearm-no-orth" else config.diff_loss_weight
        self.weights = RearmWeights(config.cl_tmp, config.cl_loss_weight, diff)

    def train_epoch(
        self, epoch: int, train: Interactions, sampler: NegativeSampler, seed: int
    ) -> dict[str, float]:
        torch.manual_seed(seed * 1_000_003 + epoch)  # attention dropout: resumable per epoch
        self.model.train()
        totals: dict[str, float] = {}
        n = 0
        for user, pos, neg in bpr_batches(train, sampler, self.config.batch_size, seed, epoch):
            n += 1
            for key, value in self.train_batch(user, pos, neg).items():
                totals[key] = totals.get(key, 0.0) + value
        return {key: total / n for key, total in totals.items()}

    def train_batch(self, user: Tensor, pos: Tensor, neg: Tensor) -> dict[str, float]:
        """One optimisation step on a (user, positive, negative) batch; its loss terms."""
        user, pos, neg = (t.to(self.device) for t in (user, pos, neg))
        if isinstance(self.model, REARM):
            parts = rearm_losses(self.model, user, pos, neg, self.weights)
        else:
            parts = baseline_losses(self.model, user, pos, neg, self.config.baseline.reg_weight)
        loss = sum(parts.values(), torch.zeros((), device=self.device))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {key: float(value.detach()) for key, value in parts.items()}


def fit(config: Config, data: Dataset, ctx: RunContext) -> dict[str, Any]:
    started = time.perf_counter()
    trainer = Trainer(config, data, ctx.device, ctx.seed)
    ctx.logger.info("model and graphs built in %.2f s", time.perf_counter() - started)
    sampler = NegativeSampler(concat(data.train, data.valid, data.test), data.n_items)
    valid_pos, train_hist = UserItems(data.valid, data.n_users), UserItems(data.train, data.n_users)
    progress: dict[str, Any] = {
        "epoch": -1,
        "best_score": -1.0,
        "best_epoch": -1,
        "best_model": None,
        "best_valid": {},
        "bad_epochs": 0,
        "stopped": False,
        "epoch_seconds": [],
    }
    state = ctx.load_checkpoint()
    if state is not None:
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        progress = state["progress"]
    for epoch in range(progress["epoch"] + 1, config.epochs):
        if progress["stopped"]:
            break
        tick = time.perf_counter()
        losses = trainer.train_epoch(epoch, data.train, sampler, ctx.seed)
        train_s = time.perf_counter() - tick
        valid = evaluate(trainer.model, valid_pos, train_hist, config, ctx.device)
        progress["epoch_seconds"].append([train_s, time.perf_counter() - tick - train_s])
        ctx.log_metrics(epoch, {**losses, **valid}, "valid")
        curve = progress.setdefault("curve", {})
        curve.setdefault(f"valid {config.valid_metric}", []).append(valid[config.valid_metric])
        curve.setdefault("train loss", []).append(sum(losses.values()))
        score = round(valid[config.valid_metric], 4)  # the official evaluator rounds
        if score > progress["best_score"]:
            progress.update(
                best_score=score,
                best_epoch=epoch,
                best_valid=valid,
                bad_epochs=0,
                best_model=copy.deepcopy(trainer.model.state_dict()),
            )
        else:
            progress["bad_epochs"] += 1
            progress["stopped"] = progress["bad_epochs"] > config.stopping_step
        progress["epoch"] = epoch
        ctx.save_checkpoint(
            {
                "model": trainer.model.state_dict(),
                "optimizer": trainer.optimizer.state_dict(),
                "progress": progress,
            }
        )
    progress["model"] = trainer.model
    return progress


def run(config: Config, ctx: RunContext) -> RunOutcome:
    if config.threads:
        torch.set_num_threads(config.threads)
    d = config.data
    data = load(
        ctx.dataset,
        ctx.data_root,
        features=config.variant not in BASELINES,
        split_seed=d.split_seed,
        kg_dim=d.kg_dim,
        cache=ctx.run_dir.parent / "cache",
        max_users=d.max_users,
    )
    ctx.logger.info(
        "%s: %d users, %d items, %d/%d/%d train/valid/test interactions",
        ctx.dataset,
        data.n_users,
        data.n_items,
        len(data.train),
        len(data.valid),
        len(data.test),
    )
    progress = fit(config, data, ctx)
    model: Model = progress.pop("model")
    model.load_state_dict(progress["best_model"])
    test = evaluate(
        model,
        UserItems(data.test, data.n_users),
        UserItems(data.train, data.n_users),
        config,
        ctx.device,
    )
    seconds = np.asarray(progress["epoch_seconds"] or [[0.0, 0.0]])
    ctx.logger.info("mean s/epoch: train %.2f, validation %.2f", *seconds.mean(axis=0))
    return RunOutcome(
        validation=progress["best_valid"],
        test=test,
        selection_rule=f"best validation {config.valid_metric} (official early stopping, "
        f"patience {config.stopping_step}); test once at epoch {progress['best_epoch']}, "
        "training items masked",
        dataset_files=data.files,
        training=ctx.training_end(
            config,
            progress["stopped"],
            progress["epoch"] + 1,
            progress["best_epoch"],
            curve=progress.get("curve"),
        ),
        deviations=[*data.notes, *deviations(config, ctx)],
    )


def deviations(config: Config, ctx: RunContext) -> list[str]:
    """How this run's config differs from the paper's recipe for the dataset (``full.yaml``)."""
    recipe = ctx.recipe
    if recipe is None:
        return []
    out = []
    for key, ours in config.model_dump().items():
        theirs = (
            getattr(recipe, key).model_dump()
            if key in {"data", "baseline"}
            else getattr(recipe, key)
        )
        if key not in {"variant", "threads", "eval_batch_size"} and ours != theirs:
            out.append(f"{key}: {ours} instead of the recipe's {theirs}")
    return out
