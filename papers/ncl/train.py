"""NCL and LightGCN training and evaluation (RecBole's ``Trainer`` + NCL's ``NCLTrainer``).

Variants (``variant`` in the config), from the same code:
- ``ncl``: BPR + reg_weight·EmbLoss + structural contrast + (from epoch ``warm_up_step`` on)
  prototype contrast, with a K-means E-step every ``m_step`` epochs.
- ``lightgcn``: BPR + reg_weight·EmbLoss (RecBole's LightGCN: the same encoder, no contrast).

Per epoch, as RecBole: shuffle the training interactions, batches of ``batch_size`` with one
uniform negative item per interaction (never a training item of that user), Adam; then a
full-ranking validation (training items masked); early stopping on validation NDCG@10 by
RecBole's rule (a score >= the best resets the counter; stop once it exceeds ``stopping_step``);
test once with the best-validation weights (training and validation items masked).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any

import faiss
import torch
from pydantic import Field, ValidationInfo, field_validator

from common.config import StrictModel, declared_variant
from common.errors import ClreproError
from common.interactions import (
    Interactions,
    NegativeSampler,
    UserItems,
    bpr_batches,
    concat,
    full_ranking,
)
from common.runner import RunContext, RunOutcome

from .data import Filter, GraphData, load_dataset
from .model import NCL, LossWeights, Prototypes, ncl_losses, normalized_adjacency


class DataConfig(StrictModel):
    min_rating: float | None = Field(
        3.0, ge=0
    )  # NCL's ml-1m/yelp/amazon-books val_interval rating [3,inf)
    min_user_inter: int = Field(0, ge=0)
    min_item_inter: int = Field(0, ge=0)
    split_seed: int = Field(
        2020, ge=0
    )  # RecBole's default seed: one fixed 8:1:1 split for every run


class Config(StrictModel):
    variant: Annotated[str, declared_variant(Path(__file__).parent)]
    data: DataConfig = DataConfig()
    embedding_size: int = Field(64, gt=0)
    n_layers: int = Field(3, gt=0)
    hyper_layers: int = Field(1, gt=0)
    reg_weight: float = Field(1e-4, ge=0)
    ssl_temp: float = Field(0.1, gt=0)
    ssl_reg: float = Field(1e-7, ge=0)
    alpha: float = Field(1.0, ge=0)
    proto_reg: float = Field(8e-8, ge=0)
    num_clusters: int = Field(1000, gt=0)
    m_step: int = Field(1, gt=0)
    warm_up_step: int = Field(20, ge=0)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(4096, gt=0)
    epochs: int = Field(300, gt=0)
    stopping_step: int = Field(10, gt=0)
    topk: tuple[int, ...] = (10, 20, 50)
    valid_metric: str = "NDCG@10"  # after topk: its check reads the cutoffs

    @field_validator("valid_metric")
    @classmethod
    def _metric_is_evaluated(cls, value: str, info: ValidationInfo) -> str:
        allowed = [f"{m}@{k}" for m in ("Recall", "NDCG") for k in info.data.get("topk", ())]
        if value not in allowed:
            raise ValueError(f"not one of the evaluated metrics {allowed}")
        return value

    eval_batch_size: int = Field(4096, gt=0)  # users per ranking batch
    threads: int | None = Field(None, gt=0)


@torch.inference_mode()
def evaluate(model: NCL, positives: UserItems, history: UserItems, config: Config,
             device: torch.device) -> dict[str, float]:  # fmt: skip
    """Full ranking of every item for each user with a positive; ``history`` items masked."""
    model.eval()
    users_emb, items_emb = model.embeddings()
    return full_ranking(users_emb, items_emb, positives, history, config.topk,
                        ("Recall", "NDCG"), config.eval_batch_size, device)  # fmt: skip


class Trainer:
    """One variant's optimisation state; ``state_dict`` makes a run resumable."""

    def __init__(self, config: Config, data: GraphData, device: torch.device) -> None:
        self.config, self.device = config, device
        adjacency = normalized_adjacency(data.train, data.n_users, data.n_items).to(device)
        self.model = NCL(data.n_users, data.n_items, adjacency, config.embedding_size,
                         config.n_layers, config.hyper_layers).to(device)  # fmt: skip
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.weights = LossWeights(config.reg_weight, config.ssl_temp, config.ssl_reg,
                                   config.alpha, config.proto_reg)  # fmt: skip
        self.protos: Prototypes | None = None
        fewest = min(data.n_users, data.n_items)
        if self.contrast and config.num_clusters > fewest:  # fail now, not at the first E-step
            raise ClreproError(
                f"num_clusters={config.num_clusters} exceeds the {fewest} users or items to "
                "cluster; lower it (configs/reduced.yaml scales it to the data)"
            )

    @property
    def contrast(self) -> bool:
        return self.config.variant == "ncl"

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "protos": self.protos}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.protos = state["protos"]

    def e_step_due(self, epoch: int) -> bool:
        """The official trainer clusters at every epoch ≡ 0 (mod m_step), from epoch 0. Before
        warm-up the clusters are never used, so the E-steps whose clusters are replaced before
        the prototype term starts are skipped (same result, faiss has its own fixed seed)."""
        c = self.config
        first_used = (c.warm_up_step // c.m_step) * c.m_step
        return self.contrast and epoch % c.m_step == 0 and epoch >= first_used

    def train_epoch(self, epoch: int, train: Interactions, sampler: NegativeSampler,
                    seed: int) -> dict[str, float]:  # fmt: skip
        if self.e_step_due(epoch):
            self.protos = self.model.prototypes(self.config.num_clusters)
        protos = self.protos if epoch >= self.config.warm_up_step else None
        self.model.train()
        totals: dict[str, float] = {}
        n_batches = 0
        for user, pos, neg in bpr_batches(train, sampler, self.config.batch_size, seed, epoch):
            n_batches += 1
            user, pos, neg = (t.to(self.device) for t in (user, pos, neg))
            parts = ncl_losses(self.model, user, pos, neg, self.weights, self.contrast, protos)
            loss = sum(parts.values(), torch.zeros((), device=self.device))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach())
        return {key: total / n_batches for key, total in totals.items()}  # means over batches


def _improves(progress: dict[str, Any], score: float) -> bool:
    return bool(score >= progress["best_score"])  # RecBole: ties count as improvements


def fit(config: Config, data: GraphData, ctx: RunContext) -> dict[str, Any]:
    trainer = Trainer(config, data, ctx.device)
    sampler = NegativeSampler(data.train, data.n_items)
    valid_pos, train_hist = UserItems(data.valid, data.n_users), UserItems(data.train, data.n_users)
    progress: dict[str, Any] = {"epoch": -1, "best_score": float("-inf"), "best_epoch": -1,
                                "best_model": None, "best_valid": {}, "bad_epochs": 0,
                                "stopped": False}  # fmt: skip
    state = ctx.load_checkpoint()
    if state is not None:
        trainer.load_state_dict(state["trainer"])
        progress = state["progress"]
    for epoch in range(progress["epoch"] + 1, config.epochs):
        if progress["stopped"]:
            break
        losses = trainer.train_epoch(epoch, data.train, sampler, ctx.seed)
        valid = evaluate(trainer.model, valid_pos, train_hist, config, ctx.device)
        if config.valid_metric not in valid:
            raise ClreproError(
                f"valid_metric {config.valid_metric!r} is not one of {sorted(valid)}"
            )
        ctx.log_metrics(epoch, {**losses, **valid}, "valid")
        curve = progress.setdefault("curve", {})
        curve.setdefault(f"valid {config.valid_metric}", []).append(valid[config.valid_metric])
        curve.setdefault("train loss", []).append(sum(losses.values()))
        score = valid[config.valid_metric]
        if _improves(progress, score):
            progress.update(best_score=score, best_epoch=epoch, best_valid=valid, bad_epochs=0,
                            best_model=copy.deepcopy(trainer.model.state_dict()))  # fmt: skip
        else:
            progress["bad_epochs"] += 1
            progress["stopped"] = progress["bad_epochs"] > config.stopping_step
        progress["epoch"] = epoch
        ctx.save_checkpoint({"trainer": trainer.state_dict(), "progress": progress})
    progress["model"] = trainer.model
    return progress


def run(config: Config, ctx: RunContext) -> RunOutcome:
    if config.threads:
        torch.set_num_threads(config.threads)
        faiss.omp_set_num_threads(config.threads)
    d = config.data
    spec = Filter(d.min_rating, d.min_user_inter, d.min_item_inter)
    data = load_dataset(ctx.dataset, ctx.data_root, spec, d.split_seed)
    sizes = (len(data.train), len(data.valid), len(data.test))
    ctx.logger.info("%s: %d users, %d items, %d/%d/%d train/valid/test interactions",
                    ctx.dataset, data.n_users, data.n_items, *sizes)  # fmt: skip
    progress = fit(config, data, ctx)
    model: NCL = progress.pop("model")
    model.load_state_dict(progress["best_model"])
    test_pos = UserItems(data.test, data.n_users)
    history = UserItems(concat(data.train, data.valid), data.n_users)
    test = evaluate(model, test_pos, history, config, ctx.device)
    return RunOutcome(
        validation=progress["best_valid"],
        test=test,
        selection_rule=f"best validation {config.valid_metric} (RecBole early stopping, "
        f"stopping_step {config.stopping_step}); test once at epoch {progress['best_epoch']}",
        dataset_files=data.files,
        training=ctx.training_end(
            config,
            progress["stopped"],
            progress["epoch"] + 1,
            progress["best_epoch"],
            curve=progress.get("curve"),
        ),
        deviations=deviations(config, ctx),
    )


def deviations(config: Config, ctx: RunContext) -> list[str]:
    """How this run's config differs from the paper's recipe for the dataset (``full.yaml``)."""
    recipe = ctx.recipe
    if recipe is None:
        return []
    out = []
    for key, ours in config.model_dump().items():
        theirs = getattr(recipe, key)
        if key not in {"variant", "threads", "eval_batch_size"} and ours != theirs:
            out.append(f"{key}: {ours} instead of the recipe's {theirs}")
    return out
