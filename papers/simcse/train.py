"""Train unsupervised SimCSE on wiki1m and score it on SentEval's STS tasks.

Recipe (princeton-nlp/SimCSE ``run_unsup_example.sh`` and the HF Trainer defaults it relies on):
batch 64, lr 3e-5 with linear decay to 0 and no warm-up, AdamW (weight decay 0), gradient
clipping at norm 1.0, max length 32, 1 epoch, τ = 0.05, [CLS] + training-only MLP head,
STS-B dev Spearman every 125 steps, the best checkpoint kept and scored on the STS test sets.
Under torchrun each process takes ``batch_size`` sentences of a shared shuffled global batch
and the InfoNCE negatives are gathered across processes (the official code's all_gather).
The method is :class:`SimCSETrainer` (its model in model.py); the loop, data and scoring it
shares with ESimCSE and WhitenedCSE: common/sentence_training.py (SentenceTrainer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from torch import Tensor, nn

from common import sentence_training as st
from common.config import declared_variant
from common.data import register_folder_datasets
from common.eval.sts import stsb_dev_spearman
from common.records import Training
from common.runner import RunContext, RunOutcome
from common.text import pad_batch, sts_encoder

from .model import SimCSE

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here


class Config(st.SentenceConfig):
    variant: Annotated[str, declared_variant(Path(__file__).parent)] = "unsup-simcse"


def baseline(
    encoder: nn.Module, tokenizer: Any, files: dict[str, str], config: Config, ctx: RunContext
) -> RunOutcome:
    """The encoder as loaded, no training: the row every method's change is measured from."""
    encode = sts_encoder(encoder, tokenizer, ctx.device)
    dev = stsb_dev_spearman(encode, ctx.data_root, config.eval_batch_size, config.dev_pairs)
    test = st.score(encoder, tokenizer, config, ctx)
    return RunOutcome(
        validation={"stsb_dev": dev},
        test=test,
        selection_rule="none (no training)",
        dataset_files=files,
        training=Training(stopped_by="not-trained", note="the encoder as loaded"),
        origin="pretrained-baseline",
        deviations=[d for d in st.deviations(config) if not d.startswith("training")],
    )


class SimCSETrainer(st.SentenceTrainer[Config, SimCSE]):
    """Unsupervised SimCSE: two dropout views of each sentence in one padded batch."""

    def build_model(self) -> SimCSE:
        return SimCSE(self.encoder, self.hidden, self.config.temperature).to(self.ctx.device)

    def step_loss(self, rows: list[list[int]], step: int) -> Tensor:
        ids, mask = pad_batch(rows, self.pad)
        device = self.ctx.device
        return self.model.loss(ids.to(device), mask.to(device), gather=self.gather)

    def run(self) -> RunOutcome:
        if self.config.variant == "untrained":
            return baseline(self.encoder, self.tokenizer, self.files, self.config, self.ctx)
        return super().run()


def run(config: Config, ctx: RunContext) -> RunOutcome:
    return SimCSETrainer(config, ctx).run()
