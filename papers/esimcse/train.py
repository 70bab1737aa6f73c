"""Train ESimCSE on wiki1m and score it on SentEval's STS tasks.

Recipe (caskcsg/sentemb ``ESimCSE/run.sh`` for bert-base-uncased, on top of SimCSE's trainer):
batch 64, lr 3e-5 with linear decay to 0 and no warm-up, AdamW (weight decay 0), gradient
clipping at norm 1.0, max length 32, 1 epoch, τ = 0.05, dropout 0.1, [CLS] + training-only MLP
head, dup_type bpe with dup_rate 0.32, momentum 0.995, neg_size 160; STS-B dev Spearman every
125 steps, the best checkpoint kept and scored on the STS test sets.
Under torchrun each process takes ``batch_size`` sentences of a shared shuffled global batch
and the InfoNCE negatives are gathered across processes (the official code's all_gather).
The method is :class:`ESimCSETrainer` (its loss in model.py); the loop, data and scoring it
shares with SimCSE and WhitenedCSE: common/sentence_training.py (SentenceTrainer).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field
from torch import Tensor

from common import sentence_training as st
from common.config import declared_variant
from common.data import register_folder_datasets
from common.distributed import rank
from common.runner import RunContext, RunOutcome

from .model import ESimCSE, repeat_subwords

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here


class Config(st.SentenceConfig):
    variant: Annotated[str, declared_variant(Path(__file__).parent)] = "esimcse"
    dup_rate: float = Field(0.32, ge=0, lt=1, description="subword repetition rate")
    momentum: float = Field(0.995, ge=0, lt=1)
    neg_size: int = Field(160, ge=0, description="momentum queue length (2.5 x batch)")


class ESimCSETrainer(st.SentenceTrainer[Config, ESimCSE]):
    """ESimCSE: the positive a copy of the sentence with repeated subwords; negatives from a
    queue of the momentum encoder's past embeddings (kept in the checkpoint)."""

    def build_model(self) -> ESimCSE:
        c = self.config
        model = ESimCSE(self.encoder, self.hidden, c.temperature, c.momentum, c.neg_size)
        return model.to(self.ctx.device)

    def step_loss(self, rows: list[list[int]], step: int) -> Tensor:
        # the official code repeats once while preprocessing; here per step, seeded by step
        rng = random.Random(self.ctx.seed * 1_000_003 + step * 101 + rank())
        repeated = [repeat_subwords(r, self.config.dup_rate, rng) for r in rows]
        return self.model.loss(rows, repeated, self.pad, self.ctx.device, gather=self.gather)

    def extra_state(self) -> dict[str, Any]:
        return {"queue": self.model.queue.cpu()}

    def load_extra(self, state: dict[str, Any]) -> None:
        self.model.queue = state["queue"].to(self.ctx.device)

    def deviations(self) -> list[str]:
        return [
            *super().deviations(),
            "subword repetition drawn at each step (seeded) instead of once in preprocessing",
        ]


def run(config: Config, ctx: RunContext) -> RunOutcome:
    return ESimCSETrainer(config, ctx).run()
