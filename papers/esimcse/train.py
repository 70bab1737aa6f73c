"""Train ESimCSE on wiki1m and score it on SentEval's STS tasks.

Recipe (caskcsg/sentemb ``ESimCSE/run.sh`` for bert-base-uncased, on top of SimCSE's trainer):
batch 64, lr 3e-5 with linear decay to 0 and no warm-up, AdamW (weight decay 0), gradient
clipping at norm 1.0, max length 32, 1 epoch, τ = 0.05, dropout 0.1, [CLS] + training-only MLP
head, dup_type bpe with dup_rate 0.32, momentum 0.995, neg_size 160; STS-B dev Spearman every
125 steps, the best checkpoint kept and scored on the STS test sets.
Under torchrun each process takes ``batch_size`` sentences of a shared shuffled global batch
and the InfoNCE negatives are gathered across processes (the official code's all_gather).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from pydantic import Field
from torch import Tensor, nn

from common.config import StrictModel
from common.data import checksums, ensure_files
from common.distributed import is_distributed, rank, world_size
from common.eval.sts import DATASET as STS_DATASET
from common.eval.sts import TASKS, evaluate_sts, required_files, stsb_dev_spearman
from common.runner import RunContext, RunOutcome
from common.seeding import epoch_generator
from common.text import load_encoder, read_lines, sts_encoder, tokenize_lines

from .model import ESimCSE, repeat_subwords

WIKI_DATASET = "wiki1m-prefix"
WIKI_FILE = "wiki1m/wiki1m_for_simcse.prefix.txt"
SELECTION = "best STS-B dev Spearman (cosine of [CLS] before the head) over the evaluations"


class Config(StrictModel):
    variant: Literal["esimcse"] = "esimcse"
    model_name_or_path: str = Field("bert-base-uncased", description="HF name or folder")
    max_seq_length: int = Field(32, ge=4)
    batch_size: int = Field(64, ge=2, description="sentences per process per step")
    lr: float = Field(3e-5, gt=0)
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1, description="cap on optimizer steps")
    temperature: float = Field(0.05, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    dup_rate: float = Field(0.32, ge=0, lt=1, description="subword repetition rate")
    momentum: float = Field(0.995, ge=0, lt=1)
    neg_size: int = Field(160, ge=0, description="momentum queue length (2.5 x batch)")
    eval_steps: int = Field(125, ge=1)
    dev_pairs: int | None = Field(None, ge=10, description="first N STS-B dev pairs (None: all)")
    train_lines: int | None = Field(None, ge=2, description="first N lines of the corpus")
    eval_batch_size: int = Field(128, ge=1)
    threads: int | None = Field(1, ge=1)
    budget_note: str = ""


StepLoss = Callable[[list[list[int]], int], Tensor]


def load_data(config: Config, ctx: RunContext) -> tuple[list[str], dict[str, str]]:
    """wiki1m lines and the sha256 of every file the run reads."""
    wiki = ensure_files(WIKI_DATASET, ctx.data_root, [WIKI_FILE])
    sts_paths = required_files(TASKS, ("dev", "test"))
    sts = ensure_files(STS_DATASET, ctx.data_root, sts_paths)
    lines = read_lines(wiki[WIKI_FILE])
    if config.train_lines is not None:
        lines = lines[: config.train_lines]
    files = {**checksums(wiki, WIKI_DATASET), **checksums(sts, STS_DATASET)}
    return lines, files


def deviations(config: Config) -> list[str]:
    out = []
    if config.model_name_or_path != "bert-base-uncased":
        out.append(f"encoder {config.model_name_or_path} instead of bert-base-uncased")
    out.append("training text: first 11,914 lines of wiki1m (the full 1M lines are not here)")
    if config.max_steps is not None:
        out.append(f"training capped at {config.max_steps} steps of batch {config.batch_size}")
    if config.dev_pairs is not None:
        out.append(f"selection on the first {config.dev_pairs} STS-B dev pairs (all 1,500)")
    out.append("fp32 on CPU instead of fp16 on GPU")
    if config.budget_note:
        out.append(config.budget_note)
    return out


def batches(n_lines: int, config: Config, seed: int, start_step: int) -> Iterator[list[int]]:
    """This process's line indices for each step from ``start_step`` (same order on resume)."""
    global_batch = config.batch_size * world_size()
    per_epoch = n_lines // global_batch if is_distributed() else -(-n_lines // global_batch)
    step = 0
    for epoch in range(config.epochs):
        order = torch.randperm(n_lines, generator=epoch_generator(seed, epoch)).tolist()
        for b in range(per_epoch):
            if step >= start_step:
                chunk = order[b * global_batch : (b + 1) * global_batch]
                mine = chunk[rank() * config.batch_size : (rank() + 1) * config.batch_size]
                yield mine
            step += 1


def total_steps(n_lines: int, config: Config) -> int:
    global_batch = config.batch_size * world_size()
    per_epoch = n_lines // global_batch if is_distributed() else -(-n_lines // global_batch)
    steps = per_epoch * config.epochs
    return min(steps, config.max_steps) if config.max_steps is not None else steps


def average_gradients(model: nn.Module) -> None:
    """DDP's gradient averaging (the losses already saw every process's negatives)."""
    if not is_distributed():
        return
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world_size()


def train(
    model: nn.Module,
    encoder: nn.Module,
    tokenizer: Any,
    token_ids: list[list[int]],
    step_loss: StepLoss,
    config: Config,
    ctx: RunContext,
    extra_state: Callable[[], dict[str, Any]] | None = None,
    load_extra: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[float, list[dict[str, float]]]:
    """Optimise ``step_loss`` with SimCSE's schedule; keep the best-dev encoder weights.

    Returns (best dev Spearman ×100, evaluation history); ``encoder`` holds the best weights.
    """
    steps = total_steps(len(token_ids), config)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: max(0.0, 1.0 - s / steps))
    encode = sts_encoder(encoder, tokenizer, ctx.device)
    state = ctx.load_checkpoint()
    step, best, best_state, history = 0, float("-inf"), None, []
    if state is not None:
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, best, best_state = state["step"], state["best"], state["best_state"]
        history = state["history"]
        if load_extra is not None:
            load_extra(state["extra"])
    model.train()
    it = batches(len(token_ids), config, ctx.seed, step)
    for rows in ctx.progress(it, desc="train", total=steps - step):
        if step >= steps:
            break
        loss = step_loss([token_ids[i] for i in rows], step)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(model)
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optim.step()
        sched.step()
        step += 1
        if step % config.eval_steps == 0:
            dev = stsb_dev_spearman(encode, ctx.data_root, config.eval_batch_size, config.dev_pairs)
            history.append({"step": float(step), "stsb_dev": dev, "loss": float(loss.item())})
            ctx.log_metrics(step, {"stsb_dev": dev, "loss": float(loss.item())}, "eval")
            if dev > best:
                best = dev
                best_state = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
            ctx.save_checkpoint(
                {
                    "model": model.state_dict(),
                    "optimizer": optim.state_dict(),
                    "scheduler": sched.state_dict(),
                    "step": step,
                    "best": best,
                    "best_state": best_state,
                    "history": history,
                    "extra": extra_state() if extra_state is not None else {},
                }
            )
    if best_state is None:  # fewer steps than eval_steps: score the last weights
        best = stsb_dev_spearman(encode, ctx.data_root, config.eval_batch_size, config.dev_pairs)
    else:
        encoder.load_state_dict(best_state)
    return best, history


def score(encoder: nn.Module, tokenizer: Any, config: Config, ctx: RunContext) -> dict[str, float]:
    """The full STS table (Spearman ×100, 'all' for STS12–16) of the encoder's [CLS]."""
    encode = sts_encoder(encoder, tokenizer, ctx.device)
    return evaluate_sts(encode, ctx.data_root, batch_size=config.eval_batch_size)


def setup(config: Config, ctx: RunContext) -> tuple[list[str], dict[str, str], Any, nn.Module]:
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    lines, files = load_data(config, ctx)
    tokenizer, encoder = load_encoder(config.model_name_or_path, config.dropout)
    return lines, files, tokenizer, encoder.to(ctx.device)


def cache_dir(ctx: RunContext) -> Path:
    return ctx.run_dir.parent / "token-cache"


def run(config: Config, ctx: RunContext) -> RunOutcome:
    lines, files, tokenizer, encoder = setup(config, ctx)
    token_ids = tokenize_lines(tokenizer, lines, config.max_seq_length, cache_dir(ctx))
    hidden = int(encoder.config.hidden_size)  # type: ignore[union-attr]
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

    ctx.logger.info("%d sentences, %d steps", len(token_ids), total_steps(len(token_ids), config))
    best, _history = train(
        model, encoder, tokenizer, token_ids, step_loss, config, ctx, extra_state, load_extra
    )
    test = score(encoder, tokenizer, config, ctx)
    return RunOutcome(
        validation={"stsb_dev": best},
        test=test,
        selection_rule=SELECTION,
        dataset_files=files,
        deviations=[
            *deviations(config),
            "subword repetition drawn at each step (seeded) instead of once in preprocessing",
        ],
    )
