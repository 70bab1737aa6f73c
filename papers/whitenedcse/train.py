"""Train WhitenedCSE on wiki1m and score it on SentEval's STS tasks.

Recipe (SupstarZh/WhitenedCSE ``run_unsup_example.sh``): per-device batch 128 on two GPUs run by
HF Trainer's DataParallel (so a step sees 256 sentences in two replicas of 128, each with its own
in-batch negatives and whitening statistics, the two losses averaged: ``replicas: 2`` here),
lr 1e-5 with linear decay, no warm-up, AdamW (weight decay 0), clipping at 1.0, max length 32,
1 epoch, τ = 0.05, num_pos 3, [CLS] + training-only SGW head, STS-B dev every 125 steps, the
best checkpoint kept and scored on the STS test sets.
Under torchrun each process takes ``replicas x batch_size`` sentences of a shared shuffled global
batch and the InfoNCE negatives are gathered across processes (the official code's all_gather).
The loop, data and scoring shared with SimCSE and ESimCSE: common/sentence_training.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import Field
from torch import Tensor

from common import sentence_training as st
from common.config import declared_variant
from common.data import register_folder_datasets
from common.distributed import is_distributed
from common.errors import ConfigError
from common.runner import RunContext, RunOutcome
from common.text import tokenize_lines

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


def run(config: Config, ctx: RunContext) -> RunOutcome:
    lines, files, tokenizer, encoder = st.setup(config, ctx)
    token_ids = tokenize_lines(tokenizer, lines, config.max_seq_length, st.cache_dir(ctx))
    hf_config: Any = encoder.config  # a transformers PretrainedConfig
    hidden = int(hf_config.hidden_size)
    if hidden % config.group_size:
        raise ConfigError(f"group_size {config.group_size} does not divide the width {hidden}")
    groups = hidden // config.group_size
    model = WhitenedCSE(encoder, hidden, config.temperature, groups, config.num_pos)
    model.mlp.eigen_floor = config.eigen_floor
    model.to(ctx.device)
    gather = is_distributed()
    pad = int(tokenizer.pad_token_id)
    per_process = config.batch_size * config.replicas

    def step_loss(rows: list[list[int]], step: int) -> Tensor:
        size = config.batch_size
        chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
        losses = [model.loss(c, pad, ctx.device, gather=gather) for c in chunks if len(c) > 1]
        return torch.stack(losses).mean()

    ctx.logger.info(
        "%d sentences, %d steps, %d whitening groups of %d channels",
        len(token_ids),
        st.total_steps(len(token_ids), per_process, config.epochs, config.max_steps),
        groups,
        config.group_size,
    )
    best, _history = st.train(
        model, encoder, tokenizer, token_ids, step_loss, config, ctx, per_process=per_process
    )
    test = st.score(encoder, tokenizer, config, ctx)
    step_size = f"{config.replicas} x {config.batch_size} sentences"
    return RunOutcome(
        validation={"stsb_dev": best},
        test=test,
        selection_rule=st.SELECTION,
        dataset_files=files,
        training=st.training_end(config, len(token_ids), per_process),
        deviations=[*st.deviations(config, step_size), *BROKEN_CODE_CHOICES],
    )
