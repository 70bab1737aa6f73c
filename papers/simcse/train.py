"""Train unsupervised SimCSE on wiki1m and score it on SentEval's STS tasks.

Recipe (princeton-nlp/SimCSE ``run_unsup_example.sh`` and the HF Trainer defaults it relies on):
batch 64, lr 3e-5 with linear decay to 0 and no warm-up, AdamW (weight decay 0), gradient
clipping at norm 1.0, max length 32, 1 epoch, τ = 0.05, [CLS] + training-only MLP head,
STS-B dev Spearman every 125 steps, the best checkpoint kept and scored on the STS test sets.
Under torchrun each process takes ``batch_size`` sentences of a shared shuffled global batch
and the InfoNCE negatives are gathered across processes (the official code's all_gather).
The loop, data and scoring shared with ESimCSE and WhitenedCSE: common/sentence_training.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from torch import Tensor, nn

from common import sentence_training as st
from common.config import declared_variant
from common.data import register_folder_datasets
from common.distributed import is_distributed
from common.eval.sts import stsb_dev_spearman
from common.records import Training
from common.runner import RunContext, RunOutcome
from common.text import pad_batch, sts_encoder, tokenize_lines

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


def run(config: Config, ctx: RunContext) -> RunOutcome:
    lines, files, tokenizer, encoder = st.setup(config, ctx)
    if config.variant == "untrained":
        return baseline(encoder, tokenizer, files, config, ctx)
    token_ids = tokenize_lines(tokenizer, lines, config.max_seq_length, st.cache_dir(ctx))
    hf_config: Any = encoder.config  # a transformers PretrainedConfig
    hidden = int(hf_config.hidden_size)
    model = SimCSE(encoder, hidden, config.temperature).to(ctx.device)
    gather = is_distributed()
    pad = int(tokenizer.pad_token_id)

    def step_loss(rows: list[list[int]], step: int) -> Tensor:
        ids, mask = pad_batch(rows, pad)
        return model.loss(ids.to(ctx.device), mask.to(ctx.device), gather=gather)

    steps = st.total_steps(len(token_ids), config.batch_size, config.epochs, config.max_steps)
    ctx.logger.info("%d sentences, %d steps", len(token_ids), steps)
    best, _history = st.train(model, encoder, tokenizer, token_ids, step_loss, config, ctx)
    test = st.score(encoder, tokenizer, config, ctx)
    return RunOutcome(
        validation={"stsb_dev": best},
        test=test,
        selection_rule=st.SELECTION,
        dataset_files=files,
        training=st.training_end(config, len(token_ids)),
        deviations=st.deviations(config),
    )
