"""Train WhitenedCSE on wiki1m and score it on SentEval's STS tasks.

Recipe (SupstarZh/WhitenedCSE ``run_unsup_example.sh``): per-device batch 128 on two GPUs run by
HF Trainer's DataParallel (so a step sees 256 sentences in two replicas of 128, each with its own
in-batch negatives and whitening statistics, the two losses averaged: ``replicas: 2`` here),
lr 1e-5 with linear decay, no warm-up, AdamW (weight decay 0), clipping at 1.0, max length 32,
1 epoch, τ = 0.05, num_pos 3, [CLS] + training-only SGW head, STS-B dev every 125 steps, the
best checkpoint kept and scored on the STS test sets.
Under torchrun each process takes ``replicas x batch_size`` sentences of a shared shuffled global
batch and the InfoNCE negatives are gathered across processes (the official code's all_gather).
The method is :class:`WhitenedCSETrainer` (its loss in model.py); the loop, data and scoring
it shares with SimCSE and ESimCSE: common/sentence_training.py (SentenceTrainer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from common import sentence_training as st
from common.config import declared_variant
from common.data import register_folder_datasets
from common.errors import ConfigError
from common.runner import RunContext, RunOutcome

from .model import WhitenedCSE

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here

BROKEN_CODE_CHOICES = [
    "official code does not run: num_pos views built here as 3 dropout passes of one sentence",
    "SGW whitens each view over its own batch (official slicing mixes views)",
    "whitening matrix detached from the graph (as the official torch.tensor copy does)",
    "eigenvalues floored at eigen_floor (no floor officially); torch.linalg.eigh for symeig",
]


class Config(st.SentenceConfig):
    variant: Annotated[str, declared_variant(Path(__file__).parent)] = "whitenedcse"
    batch_size: int = Field(128, ge=2, description="sentences per replica per step")
    replicas: int = Field(2, ge=1, description="DataParallel replicas emulated per process")
    lr: float = Field(1e-5, gt=0)
    num_pos: int = Field(3, ge=2, description="dropout views per sentence")
    group_size: int = Field(6, ge=1, description="channels per whitening group (768/128)")
    eigen_floor: float = Field(1e-8, gt=0)


class WhitenedCSETrainer(st.SentenceTrainer[Config, WhitenedCSE]):
    """WhitenedCSE: ``num_pos`` dropout views whitened group-wise (SGW); a step is ``replicas``
    batches of ``batch_size`` sentences, each with its own loss, averaged (DataParallel)."""

    def build_model(self) -> WhitenedCSE:
        c = self.config
        if self.hidden % c.group_size:
            raise ConfigError(f"group_size {c.group_size} does not divide the width {self.hidden}")
        groups = self.hidden // c.group_size
        model = WhitenedCSE(self.encoder, self.hidden, c.temperature, groups, c.num_pos)
        model.mlp.eigen_floor = c.eigen_floor
        return model.to(self.ctx.device)

    def step_loss(self, rows: list[list[int]], step: int) -> Tensor:
        size, device = self.config.batch_size, self.ctx.device
        chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
        losses = [
            self.model.loss(c, self.pad, device, gather=self.gather) for c in chunks if len(c) > 1
        ]
        return torch.stack(losses).mean()

    def per_process(self) -> int:
        return self.config.batch_size * self.config.replicas

    def log_start(self, n_lines: int) -> None:
        c = self.config
        self.ctx.logger.info(
            "%d sentences, %d steps, %d whitening groups of %d channels",
            n_lines,
            st.total_steps(n_lines, self.per_process(), c.epochs, c.max_steps),
            self.hidden // c.group_size,
            c.group_size,
        )

    def deviations(self) -> list[str]:
        step_size = f"{self.config.replicas} x {self.config.batch_size} sentences"
        return [*st.deviations(self.config, step_size), *BROKEN_CODE_CHOICES]


def run(config: Config, ctx: RunContext) -> RunOutcome:
    return WhitenedCSETrainer(config, ctx).run()
