"""Train ESimCSE on wiki1m and score it on SentEval's STS tasks.

Recipe (caskcsg/sentemb ``ESimCSE/run.sh`` for bert-base-uncased, on top of SimCSE's trainer):
batch 64, lr 3e-5 with linear decay to 0 and no warm-up, AdamW (weight decay 0), gradient
clipping at norm 1.0, max length 32, 1 epoch, τ = 0.05, dropout 0.1, [CLS] + training-only MLP
head, dup_type bpe with dup_rate 0.32, momentum 0.995, neg_size 160; STS-B dev Spearman every
125 steps, the best checkpoint kept and scored on the STS test sets.
Under torchrun each process takes ``batch_size`` sentences of a shared shuffled global batch
and the InfoNCE negatives are gathered across processes (the official code's all_gather).
The loop, data and scoring shared with SimCSE and WhitenedCSE: common/sentence_training.py.
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
from common.distributed import is_distributed, rank
from common.runner import RunContext, RunOutcome
from common.text import tokenize_lines

from .model import ESimCSE, repeat_subwords

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here


class Config(st.SentenceConfig):
    variant: Annotated[str, declared_variant(Path(__file__).parent)] = "esimcse"
    dup_rate: float = Field(0.32, ge=0, lt=1, description="subword repetition rate")
    momentum: float = Field(0.995, ge=0, lt=1)
    neg_size: int = Field(160, ge=0, description="momentum queue length (2.5 x batch)")


def run(config: Config, ctx: RunContext) -> RunOutcome:
    lines, files, tokenizer, encoder = st.setup(config, ctx)
    token_ids = tokenize_lines(tokenizer, lines, config.max_seq_length, st.cache_dir(ctx))
    hf_config: Any = encoder.config  # a transformers PretrainedConfig
    hidden = int(hf_config.hidden_size)
    model = ESimCSE(encoder, hidden, config.temperature, config.momentum, config.neg_size)
    model.to(ctx.device)
    gather = is_distributed()
    pad = int(tokenizer.pad_token_id)

    def step_loss(rows: list[list[int]], step: int) -> Tensor:
        # the official code repeats once while preprocessing; here per step, seeded by step
        rng = random.Random(ctx.seed * 1_000_003 + step * 101 + rank())
        repeated = [repeat_subwords(r, config.dup_rate, rng) for r in rows]
        return model.loss(rows, repeated, pad, ctx.device, gather=gather)

    def extra_state() -> dict[str, Any]:
        return {"queue": model.queue.cpu()}

    def load_extra(state: dict[str, Any]) -> None:
        model.queue = state["queue"].to(ctx.device)

    steps = st.total_steps(len(token_ids), config.batch_size, config.epochs, config.max_steps)
    ctx.logger.info("%d sentences, %d steps", len(token_ids), steps)
    best, _history = st.train(
        model,
        encoder,
        tokenizer,
        token_ids,
        step_loss,
        config,
        ctx,
        extra_state=extra_state,
        load_extra=load_extra,
    )
    test = st.score(encoder, tokenizer, config, ctx)
    return RunOutcome(
        validation={"stsb_dev": best},
        test=test,
        selection_rule=st.SELECTION,
        dataset_files=files,
        training=st.training_end(config, len(token_ids)),
        deviations=[
            *st.deviations(config),
            "subword repetition drawn at each step (seeded) instead of once in preprocessing",
        ],
    )
