"""MCLRec, CL4SRec and SASRec training and evaluation (the official MCLRec trainer's recipe).

Variants (``variant`` in the config):
- ``sasrec``: L_rec only (cross-entropy over all items).
- ``cl4srec``: L_rec + λ·L_cl1, one optimiser step per batch (the paper's "w/o L_cl2" ablation).
- ``mclrec``: per batch three stages, as the official trainer: (1) encoder step on
  L_rec + λ·L_cl1 + β·L_cl2 with the augmenters frozen; (2) augmenter step (their own Adam) on
  L_cl2; (3) encoder step on the stage-1 loss, recomputed. L_cl2 includes 0.1·R when ``use_rl``.
"""

from __future__ import annotations

import copy
import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor

from common.config import StrictModel, declared_variant
from common.data import sha256_of
from common.errors import ClreproError
from common.metrics import RankingAccumulator
from common.records import Training
from common.runner import RunContext, RunOutcome
from common.seeding import epoch_generator

from .augment import two_views
from .data import Samples, SeqRecData, load_dataset
from .losses import contrast, meta_contrastive_loss
from .model import Augmenter, SASRec

# sha256 of the authors' released checkpoints -> where they come from (for the run record).
OFFICIAL = {
    "a41e4f8edb1c467206302de70e509c352a72772349fc4cd9fc06ac2e4b1f578f": (
        "QinHsiu/MCLRec@bc8d622:log/Checkpoint/Amazon_Beauty/model.pth"
    ),
}


class ModelConfig(StrictModel):
    max_len: int = Field(50, ge=1)
    hidden: int = Field(64, ge=1)
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    inner: int = Field(256, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    attn_dropout: float = Field(0.5, ge=0, lt=1)
    eps: float = Field(1e-12, gt=0)
    init_std: float = Field(0.02, gt=0)

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ModelConfig:
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
        return self


class AugmentConfig(StrictModel):
    crop_ratio: float = Field(0.5, ge=0, lt=1)  # a crop keeps floor(n * (1 - ratio)) items
    mask_ratio: float = Field(0.5, ge=0, le=1)
    reorder_ratio: float = Field(0.8, ge=0, le=1)


# What ``evaluate`` computes on validation: HR, NDCG and MRR at 5, 10 and 20.
RANK_KS = (5, 10, 20)
RANK_METRICS = ("HR", "NDCG", "MRR")
ValidMetric = Literal[
    "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR@5", "MRR@10", "MRR@20"
]


class Config(StrictModel):
    variant: Annotated[str, declared_variant(Path(__file__).parent)]
    model: ModelConfig = ModelConfig()
    augment: AugmentConfig = AugmentConfig()
    lam: float = Field(0.0, ge=0)  # λ, weight of L_cl1 (MCLRec; official per-dataset value)
    beta: float = Field(0.05, ge=0)  # β, weight of L_cl2 (MCLRec)
    cl4srec_lam: float = Field(0.1, ge=0)  # λ of CL4SRec (CL4SRec's default; MCLRec's can be 0)
    tau: float = Field(1.0, gt=0)
    sim: Literal["dot", "cos"] = "dot"
    use_rl: bool = True
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(256, ge=1)
    epochs: int = Field(100, ge=1)
    patience: int = Field(10, ge=1)
    valid_metric: ValidMetric = "MRR@10"
    eval_batch_size: int = Field(2048, ge=1)
    # a fixed random subset of training samples (old reduced recipe)
    train_fraction: float = Field(1.0, gt=0, le=1)
    # reduced recipe: a seeded subset of users, all their prefixes
    user_fraction: float = Field(1.0, gt=0, le=1)
    user_subset_seed: int = Field(0, ge=0)  # the same users for every variant and seed
    threads: int | None = Field(None, ge=1)


TEST_METRICS = ("HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20")


@torch.inference_mode()
def evaluate(model: SASRec, samples: Samples, batch_size: int, device: torch.device,
             ctx: RunContext | None = None) -> dict[str, float]:  # fmt: skip
    """Full ranking over item ids 1..n (padding scored -inf), no history masking (as official)."""
    model.eval()
    acc = RankingAccumulator(RANK_KS, metrics=RANK_METRICS)
    batches = range(0, len(samples), batch_size)
    for start in ctx.progress(batches, "evaluate") if ctx else batches:
        part = samples.subset(torch.arange(start, min(start + batch_size, len(samples))))
        scores = model.full_scores(model(part.history.to(device), part.length.to(device)))
        scores[:, 0] = float("-inf")
        acc.update(scores, part.target.to(device))
    return acc.compute()


class Trainer:
    """One variant's optimisation state; ``state_dict`` makes a run resumable."""

    def __init__(self, config: Config, n_items: int, device: torch.device) -> None:
        m = config.model
        self.config, self.device = config, device
        self.model = SASRec(n_items, m.max_len, m.hidden, m.layers, m.heads, m.inner, m.dropout,
                            m.attn_dropout, m.eps, m.init_std).to(device)  # fmt: skip
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.augmenters = torch.nn.ModuleList(
            [Augmenter((m.hidden, 32, 16, m.hidden)) for _ in range(2)]
        )
        self.augmenters.to(device)
        self.aug_optimizer = torch.optim.Adam(self.augmenters.parameters(), lr=config.lr)

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "augmenters": self.augmenters.state_dict(),
            "aug_optimizer": self.aug_optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.augmenters.load_state_dict(state["augmenters"])
        self.aug_optimizer.load_state_dict(state["aug_optimizer"])

    def _rec_loss(self, h: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(self.model.full_scores(h), target)

    def _cl1(self, h1: Tensor, h2: Tensor) -> Tensor:
        if self.config.sim == "dot":
            return contrast(h1, h2) if self.config.tau == 1 else _nt_xent_tau(h1, h2, self.config)
        return _nt_xent_tau(h1, h2, self.config)

    def _encoder_loss(self, batch: Samples, views: tuple[Tensor, ...]) -> Tensor:
        c = self.config
        h = self.model(batch.history, batch.length)
        loss = self._rec_loss(h, batch.target)
        if c.variant == "sasrec":
            return loss
        h1, h2 = self.model(views[0], views[1]), self.model(views[2], views[3])
        if c.variant == "cl4srec":
            return loss + c.cl4srec_lam * self._cl1(h1, h2)
        if c.lam:
            loss = loss + c.lam * self._cl1(h1, h2)
        a1, a2 = self.augmenters
        return loss + c.beta * meta_contrastive_loss(h1, h2, a1(h1), a2(h2), c.use_rl, c.tau)

    def _augmenter_loss(self, views: tuple[Tensor, ...]) -> Tensor:
        # The encoder is not stepped in this stage, so its forward pass needs no graph: the
        # augmenters' gradients are the same as in the official code, which discards the rest.
        with torch.no_grad():
            h1, h2 = self.model(views[0], views[1]), self.model(views[2], views[3])
        a1, a2 = self.augmenters
        return meta_contrastive_loss(h1, h2, a1(h1), a2(h2), self.config.use_rl, self.config.tau)

    def _step(self, optimizer: torch.optim.Optimizer, loss: Tensor) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def train_batch(self, batch: Samples, views: tuple[Tensor, ...]) -> float:
        self.model.train()
        if self.config.variant != "mclrec":
            return self._step(self.optimizer, self._encoder_loss(batch, views))
        self.augmenters.requires_grad_(False)
        loss = self._step(self.optimizer, self._encoder_loss(batch, views))
        self.augmenters.requires_grad_(True)
        self._step(self.aug_optimizer, self._augmenter_loss(views))
        self.augmenters.requires_grad_(False)
        return loss + self._step(self.optimizer, self._encoder_loss(batch, views))


def _nt_xent_tau(h1: Tensor, h2: Tensor, config: Config) -> Tensor:
    from common.losses import nt_xent

    similarity: Literal["cosine", "dot"] = "dot" if config.sim == "dot" else "cosine"
    return nt_xent(h1, h2, temperature=config.tau, similarity=similarity)


def _batches(samples: Samples, config: Config, seed: int, epoch: int,
             device: torch.device) -> Iterator[tuple[Samples, tuple[Tensor, ...]]]:  # fmt: skip
    gen = epoch_generator(seed, epoch)
    order = torch.randperm(len(samples), generator=gen)
    a = config.augment
    for index in order.split(config.batch_size):
        batch = samples.subset(index)
        views = two_views(batch.history, batch.length, (a.crop_ratio, a.mask_ratio,
                                                          a.reorder_ratio), gen)  # fmt: skip
        moved = Samples(*(t.to(device) for t in (batch.history, batch.length, batch.target)))
        yield moved, tuple(v.to(device) for v in views)


def _training_subset(samples: Samples, fraction: float, seed: int) -> Samples:
    if fraction >= 1.0:
        return samples
    if not fraction > 0:
        raise ClreproError(f"train_fraction must be in (0, 1], got {fraction}")
    gen = torch.Generator().manual_seed(10_007 + seed)
    keep = torch.randperm(len(samples), generator=gen)[: int(len(samples) * fraction)]
    return samples.subset(keep.sort().values)


def fit(config: Config, data: SeqRecData, ctx: RunContext) -> dict[str, Any]:
    """Train with early stopping on validation ``valid_metric``; return the best state."""
    trainer = Trainer(config, data.n_items, ctx.device)
    train = _training_subset(data.train, config.train_fraction, ctx.seed)
    state = ctx.load_checkpoint()
    progress: dict[str, Any] = {"epoch": -1, "best_score": float("-inf"), "best_epoch": -1,
                                "best_model": None, "best_valid": {}, "bad_epochs": 0}  # fmt: skip
    if state is not None:
        trainer.load_state_dict(state["trainer"])
        progress = state["progress"]
    n_batches = (len(train) + config.batch_size - 1) // config.batch_size
    for epoch in range(progress["epoch"] + 1, config.epochs):
        if progress["bad_epochs"] >= config.patience:
            break
        ctx.logger.info("epoch %d of at most %d (patience %d/%d)%s", epoch + 1, config.epochs,
                        progress["bad_epochs"], config.patience,
                        _eta(progress, epoch, config))  # fmt: skip
        tick = time.perf_counter()
        total = 0.0
        for batch, views in ctx.progress(_batches(train, config, ctx.seed, epoch, ctx.device),
                                         f"epoch {epoch}", total=n_batches):  # fmt: skip
            total += trainer.train_batch(batch, views)
        valid = evaluate(trainer.model, data.valid, config.eval_batch_size, ctx.device)
        ctx.log_metrics(epoch, {"loss": total / n_batches, **valid}, "valid")
        _update_best(progress, valid, config.valid_metric, trainer, epoch)
        progress["epoch"] = epoch
        progress["seconds"] = progress.get("seconds", 0.0) + time.perf_counter() - tick
        progress.setdefault("curve", {}).setdefault(f"valid {config.valid_metric}", []).append(
            valid[config.valid_metric]
        )
        ctx.save_checkpoint({"trainer": trainer.state_dict(), "progress": progress})
    return progress


def _eta(progress: dict[str, Any], epoch: int, config: Config) -> str:
    """Time left if patience runs out now at the earliest, and at the epoch cap at most."""
    done = progress["epoch"] + 1
    if done <= 0 or not progress.get("seconds"):
        return ""
    per_epoch = progress["seconds"] / done
    soonest = config.patience - progress["bad_epochs"]
    latest = config.epochs - epoch
    return (f", {per_epoch:.0f} s/epoch, ETA {soonest * per_epoch / 60:.0f}–"
            f"{latest * per_epoch / 60:.0f} min")  # fmt: skip


def _update_best(progress: dict[str, Any], valid: dict[str, float], metric: str,
                 trainer: Trainer, epoch: int) -> None:  # fmt: skip
    if metric not in valid:
        raise ClreproError(f"valid_metric {metric!r} is not one of {sorted(valid)}")
    if valid[metric] > progress["best_score"]:
        progress.update(best_score=valid[metric], best_epoch=epoch, best_valid=valid, bad_epochs=0,
                        best_model=copy.deepcopy(trainer.model.state_dict()))  # fmt: skip
    else:
        progress["bad_epochs"] += 1


def score_checkpoint(path: Path, config: Config, data: SeqRecData, ctx: RunContext) -> RunOutcome:
    """Load a RecBole-0.2 SASRec/MCLRec state dict into our encoder and evaluate it."""
    if ctx.scale != "full":
        raise ClreproError("score a trained checkpoint with --scale full (its training scale)")
    if not path.is_file():
        raise ClreproError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    except (KeyError, TypeError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ClreproError(
            f"{path} is not a RecBole checkpoint with a 'state_dict': {exc}"
        ) from exc
    m = config.model
    model = SASRec(data.n_items, m.max_len, m.hidden, m.layers, m.heads, m.inner).to(ctx.device)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ClreproError(f"{path} does not fit this dataset/model: {str(exc)[:300]}") from exc
    digest = sha256_of(path)
    valid = evaluate(model, data.valid, config.eval_batch_size, ctx.device, ctx)
    test = evaluate(model, data.test, config.eval_batch_size, ctx.device, ctx)
    return RunOutcome(
        validation=valid,
        test={k: test[k] for k in TEST_METRICS},
        selection_rule="none: the checkpoint as released",
        dataset_files=data.files,
        training=Training(stopped_by="not-trained", note="a released checkpoint, scored"),
        origin="official-checkpoint" if digest in OFFICIAL else "trained",
        source=OFFICIAL.get(digest, f"checkpoint {path} (sha256 {digest})"),
    )


def run(config: Config, ctx: RunContext) -> RunOutcome:
    if config.threads:
        torch.set_num_threads(config.threads)
    data = load_dataset(ctx.dataset, ctx.data_root, config.model.max_len,
                        config.user_fraction, config.user_subset_seed)  # fmt: skip
    checkpoint = ctx.options.get("checkpoint")
    if checkpoint:
        return score_checkpoint(Path(checkpoint), config, data, ctx)
    progress = fit(config, data, ctx)
    model = Trainer(config, data.n_items, ctx.device).model
    model.load_state_dict(progress["best_model"])
    test = evaluate(model, data.test, config.eval_batch_size, ctx.device, ctx)
    deviations = []
    if config.user_fraction < 1:
        deviations.append(f"a seeded {config.user_fraction:.0%} of the users (subset seed "
                          f"{config.user_subset_seed}), all their prefixes; items kept whole; "
                          "validation and test on those users")  # fmt: skip
    if config.train_fraction < 1:
        deviations.append(f"trained on a fixed {config.train_fraction:.0%} subset of the "
                          "training samples")  # fmt: skip
    if ctx.stopped_by_cap(config):
        deviations.append(f"at most {config.epochs} epochs instead of {ctx.recipe.epochs}")
    early = progress["bad_epochs"] >= config.patience
    return RunOutcome(
        validation=progress["best_valid"],
        test={k: test[k] for k in TEST_METRICS},
        selection_rule=f"best validation {config.valid_metric} over epochs (patience "
        f"{config.patience}); test once at epoch {progress['best_epoch']}",
        dataset_files=data.files,
        training=ctx.training_end(
            config,
            early,
            progress["epoch"] + 1,
            progress["best_epoch"],
            curve=progress.get("curve"),
        ),
        deviations=deviations,
    )
