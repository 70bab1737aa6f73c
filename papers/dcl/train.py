"""SimCLR (NT-Xent), DCL and DCLW with one training loop; the loss is the only difference.

Losses: ``common.losses.nt_xent`` and this folder's ``losses.py`` (Chen et al. 2020; Yeh et al.
2022): NT-Xent keeps the positive in the denominator, DCL removes it, DCLW also weights the
positive term by a von Mises–Fisher factor (σ = 0.5). Cosine similarity, logits = similarity /
temperature, the same temperature for the three losses. Batch size is a config field; the paper
compares batch sizes at an equal number of epochs, so smaller batches take more steps.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from common.config import StrictModel, declared_variant
from common.errors import ClreproError
from common.eval.probes import knn_top1, linear_probe_top1
from common.losses import nt_xent
from common.runner import RunContext, RunOutcome
from common.seeding import epoch_generator
from common.vision import ImageData

from .augment import simclr_view
from .data import load_images
from .evaluate import embed
from .losses import dcl, dclw
from .model import ResNet18Cifar, SmallCNN, projection_head

STATS = {  # per-channel mean and std used to normalise network inputs
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
}


class Config(StrictModel):
    variant: Annotated[str, declared_variant(Path(__file__).parent)]
    backbone: Literal["small", "resnet18"] = "small"
    width: int = Field(32, ge=1)
    proj_hidden: int = Field(512, ge=1)
    proj_out: int = Field(128, ge=1)
    temperature: float = Field(0.1, gt=0)
    sigma: float = Field(0.5, gt=0)
    batch_size: int = Field(128, ge=2)  # in-batch negatives need two images at least
    epochs: int = Field(200, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.06, gt=0)  # for sgd: scaled by batch_size / 256
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    crop_scale_min: float = Field(0.08, gt=0, le=1)
    # CIFAR-10 copy: "full" the official archive, "subset" the real subset on hand offline.
    # Unset means the subset: it is what every run read before this field existed, and an unset
    # field leaves a config's identity (and so the match with its records) unchanged.
    cifar_copy: Literal["full", "subset"] | None = None
    train_size: int | None = Field(None, ge=2)
    test_size: int | None = Field(None, ge=1)
    valid_fraction: float = Field(0.1, gt=0, lt=1)
    knn_k: int = Field(200, ge=1)
    knn_temperature: float = Field(0.1, gt=0)
    probe_steps: int = Field(300, ge=1)
    threads: int | None = Field(None, ge=1)

    @property
    def cifar_source(self) -> Literal["full", "subset"]:
        return self.cifar_copy or "subset"


def contrastive_loss(config: Config, z1: Tensor, z2: Tensor) -> Tensor:
    if config.variant == "simclr":
        return nt_xent(z1, z2, temperature=config.temperature)
    if config.variant == "dcl":
        return dcl(z1, z2, temperature=config.temperature)
    return dclw(z1, z2, temperature=config.temperature, sigma=config.sigma)


class Model(nn.Module):
    def __init__(self, config: Config, in_channels: int) -> None:
        super().__init__()
        self.backbone: SmallCNN | ResNet18Cifar = (
            SmallCNN(in_channels, config.width)
            if config.backbone == "small"
            else ResNet18Cifar(in_channels)
        )
        self.head = projection_head(self.backbone.dim, config.proj_hidden, config.proj_out)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.head(self.backbone(x))
        return out


def _optimizer(config: Config, model: nn.Module, steps: int) -> tuple[Any, Any]:
    if config.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
    else:
        opt = torch.optim.SGD(
            model.parameters(),
            lr=config.lr * config.batch_size / 256,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))


def _evaluate(
    model: Model, data: ImageData, config: Config, split: str, mean: Tensor, std: Tensor
) -> float:
    bank = embed(model.backbone, data.train.images, mean, std)
    query = getattr(data, split)
    feats = embed(model.backbone, query.images, mean, std)
    return knn_top1(
        bank,
        data.train.labels,
        feats,
        query.labels,
        data.num_classes,
        config.knn_k,
        config.knn_temperature,
    )


def train_epoch(
    model: Model,
    opt: Any,
    sched: Any,
    data: ImageData,
    config: Config,
    seed: int,
    epoch: int,
    mean: Tensor,
    std: Tensor,
) -> float:
    model.train()
    gen = epoch_generator(seed, epoch)
    order = torch.randperm(len(data.train.labels), generator=gen)
    usable = len(order) - len(order) % config.batch_size  # equal batch sizes (drop the last)
    total, steps = 0.0, 0
    for index in order[:usable].split(config.batch_size):
        x = data.train.images[index]
        v1, v2 = (simclr_view(x, gen, (config.crop_scale_min, 1.0)) for _ in range(2))
        loss = contrastive_loss(config, model((v1 - mean) / std), model((v2 - mean) / std))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total, steps = total + float(loss.detach()), steps + 1
    return total / max(steps, 1)


def run(config: Config, ctx: RunContext) -> RunOutcome:
    if config.threads:
        torch.set_num_threads(config.threads)
    data = load_images(
        ctx.dataset,
        ctx.data_root,
        train_size=config.train_size,
        test_size=config.test_size,
        valid_fraction=config.valid_fraction,
        cifar_copy=config.cifar_source,
    )
    if len(data.train.labels) < config.batch_size:
        raise ClreproError(
            f"batch_size {config.batch_size} exceeds the {len(data.train.labels)} training images"
        )
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in STATS[ctx.dataset])
    model = Model(config, data.train.images.shape[1])
    steps_per_epoch = len(data.train.labels) // config.batch_size
    opt, sched = _optimizer(config, model, steps_per_epoch * config.epochs)
    state = ctx.load_checkpoint() or {
        "epoch": -1,
        "best": -1.0,
        "best_epoch": -1,
        "best_backbone": None,
        "curve": {"valid kNN top-1": [], "train loss": []},
    }
    if state["epoch"] >= 0:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
    first_epoch, started = state["epoch"] + 1, time.monotonic()
    for epoch in range(first_epoch, config.epochs):
        loss = train_epoch(model, opt, sched, data, config, ctx.seed, epoch, mean, std)
        valid = _evaluate(model, data, config, "valid", mean, std)
        ctx.log_metrics(epoch, {"loss": loss, "kNN top-1": valid}, "valid")
        state["curve"]["valid kNN top-1"].append(valid)
        state["curve"]["train loss"].append(loss)
        per_epoch = (time.monotonic() - started) / (epoch - first_epoch + 1)
        left = (config.epochs - epoch - 1) * per_epoch / 60
        ctx.logger.info("epoch %d of %d, %.1f s/epoch, ETA %.0f min", epoch + 1, config.epochs,
                        per_epoch, left)  # fmt: skip
        if valid > state["best"]:
            state.update(
                best=valid,
                best_epoch=epoch,
                best_backbone=copy.deepcopy(model.backbone.state_dict()),
            )
        state.update(
            epoch=epoch, model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict()
        )
        ctx.save_checkpoint(state)
    model.backbone.load_state_dict(state["best_backbone"])
    test_knn = _evaluate(model, data, config, "test", mean, std)
    bank = embed(model.backbone, data.train.images, mean, std)
    test_feats = embed(model.backbone, data.test.images, mean, std)
    probe = linear_probe_top1(
        bank, data.train.labels, test_feats, data.test.labels, data.num_classes, config.probe_steps
    )
    return RunOutcome(
        validation={"kNN top-1": state["best"]},
        test={"kNN top-1": test_knn, "linear top-1": probe},
        selection_rule=f"epoch with the best validation kNN top-1 (epoch {state['best_epoch']}); "
        "validation = 10% of the training images",
        dataset_files=data.files,
        training=ctx.training_end(
            config, False, config.epochs, state["best_epoch"], curve=state["curve"]
        ),
        deviations=_deviations(config, ctx.dataset),
    )


def _deviations(config: Config, dataset: str) -> list[str]:
    notes = []
    if config.backbone == "small":
        notes.append(f"small 3-block CNN (width {config.width}) instead of ResNet-18")
    if config.epochs < 200:
        notes.append(f"{config.epochs} epochs instead of 200")
    if config.train_size:
        notes.append(f"{config.train_size} training images (a seeded subset)")
    if dataset == "cifar10" and config.cifar_source == "subset":
        notes.append("CIFAR-10: a real 5,170/1,017-image subset of the official batches")
    return notes
