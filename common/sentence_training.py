"""The training loop the SimCSE family shares (SimCSE, ESimCSE, WhitenedCSE), on wiki1m + STS.

The recipe is SimCSE's (princeton-nlp/SimCSE on the HF Trainer): AdamW, lr decayed linearly to 0
with no warm-up, gradient clipping, STS-B dev Spearman every ``eval_steps`` steps, the best
encoder weights kept and scored on the STS test sets, a checkpoint after every evaluation.

* :class:`SentenceConfig`: the fields every paper of the family has (a paper subclasses it,
  adds its ``variant`` and its own fields, and overrides defaults);
* :func:`setup` / :func:`load_data`: threads, the wiki1m lines, the STS files' checksums, the
  encoder; :func:`cache_dir`: where the token ids are cached;
* :func:`batches` / :func:`total_steps`: a shuffled corpus cut into steps, each process's share
  of a global batch under torchrun (the same order on resume);
* :class:`SentenceTrainer`: the loop, checkpoints and scoring around a paper's model and step
  loss (a paper subclasses it); :func:`average_gradients`: DDP's gradient averaging;
* :func:`score` (the full STS table) and :func:`deviations` (the family's common ones).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import torch
import torch.distributed as dist
from pydantic import Field
from torch import Tensor, nn

from common.config import StrictModel
from common.data import checksums, ensure_files
from common.distributed import is_distributed, rank, world_size
from common.eval.sts import DATASET as STS_DATASET
from common.eval.sts import TASKS, evaluate_sts, required_files, stsb_dev_spearman
from common.records import Training
from common.runner import RunContext, RunOutcome
from common.seeding import epoch_generator
from common.text import load_encoder, read_lines, sts_encoder, tokenize_lines

__all__ = [
    "SELECTION",
    "WIKI_DATASET",
    "WIKI_FILE",
    "SentenceConfig",
    "SentenceTrainer",
    "average_gradients",
    "batches",
    "cache_dir",
    "deviations",
    "load_data",
    "score",
    "setup",
    "total_steps",
    "training_end",
]

WIKI_DATASET = "wiki1m-prefix"
WIKI_FILE = "wiki1m/wiki1m_for_simcse.prefix.txt"
CORPORA = {  # config ``corpus`` -> (registered dataset, file)
    "full": ("wiki1m", "wiki1m/wiki1m_for_simcse.txt"),
    "prefix": (WIKI_DATASET, WIKI_FILE),
}
SELECTION = "best STS-B dev Spearman (cosine of [CLS] before the head) over the evaluations"


class SentenceConfig(StrictModel):
    """The fields of every SimCSE-family config (defaults: unsupervised SimCSE's recipe)."""

    model_name_or_path: str = Field("bert-base-uncased", description="HF name or folder")
    corpus: Literal["full", "prefix"] = Field(
        "full", description="wiki1m as released, or the 11,914-line prefix on hand offline"
    )
    max_seq_length: int = Field(32, ge=4)
    batch_size: int = Field(64, ge=2, description="sentences per process per step")
    lr: float = Field(3e-5, gt=0)
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1, description="cap on optimizer steps")
    temperature: float = Field(0.05, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    eval_steps: int = Field(125, ge=1)
    dev_pairs: int | None = Field(None, ge=10, description="first N STS-B dev pairs (None: all)")
    sts_pairs: int | None = Field(
        None, ge=10, description="first N pairs of each STS test subset (None: all; smoke only)"
    )
    train_lines: int | None = Field(None, ge=2, description="first N lines of the corpus")
    eval_batch_size: int = Field(128, ge=1)
    threads: int | None = Field(1, ge=1)
    budget_note: str = ""


ConfigT = TypeVar("ConfigT", bound=SentenceConfig)
ModelT = TypeVar("ModelT", bound=nn.Module)


def load_data(config: SentenceConfig, ctx: RunContext) -> tuple[list[str], dict[str, str]]:
    """wiki1m lines and the sha256 of every file the run reads."""
    wiki_dataset, wiki_file = CORPORA[config.corpus]
    wiki = ensure_files(wiki_dataset, ctx.data_root, [wiki_file])
    sts_paths = required_files(TASKS, ("dev", "test"))
    sts = ensure_files(STS_DATASET, ctx.data_root, sts_paths)
    lines = read_lines(wiki[wiki_file])
    if config.train_lines is not None:
        lines = lines[: config.train_lines]
    files = {**checksums(wiki, wiki_dataset), **checksums(sts, STS_DATASET)}
    return lines, files


def deviations(config: SentenceConfig, step_size: str | None = None) -> list[str]:
    """The family's deviations from the official runs; ``step_size`` words a step's sentences.

    ``step_size`` defaults to ``"batch <batch_size>"``.
    """
    out = []
    if config.model_name_or_path != "bert-base-uncased":
        out.append(f"encoder {config.model_name_or_path} instead of bert-base-uncased")
    if config.corpus == "prefix":
        out.append("training text: first 11,914 lines of wiki1m (the full 1M lines are not here)")
    if config.max_steps is not None:
        size = step_size if step_size is not None else f"batch {config.batch_size}"
        out.append(f"training capped at {config.max_steps} steps of {size}")
    if config.dev_pairs is not None:
        out.append(f"selection on the first {config.dev_pairs} STS-B dev pairs (all 1,500)")
    if config.sts_pairs is not None:
        out.append(f"STS test sets cut to the first {config.sts_pairs} pairs of each subset")
    out.append("fp32 on CPU instead of fp16 on GPU")
    if config.budget_note:
        out.append(config.budget_note)
    return out


def _steps_per_epoch(n_lines: int, global_batch: int) -> int:
    """Full batches only under torchrun (equal shares per process), else the last one partial."""
    return n_lines // global_batch if is_distributed() else -(-n_lines // global_batch)


def batches(
    n_lines: int, per_process: int, epochs: int, seed: int, start_step: int = 0
) -> Iterator[list[int]]:
    """This process's line indices for each step from ``start_step`` (same order on resume).

    Each epoch shuffles the corpus with a generator fixed by (seed, epoch); a step takes the
    next ``per_process * world_size()`` lines, of which this process keeps its rank's slice.
    """
    global_batch = per_process * world_size()
    per_epoch = _steps_per_epoch(n_lines, global_batch)
    step = 0
    for epoch in range(epochs):
        order = torch.randperm(n_lines, generator=epoch_generator(seed, epoch)).tolist()
        for b in range(per_epoch):
            if step >= start_step:
                chunk = order[b * global_batch : (b + 1) * global_batch]
                yield chunk[rank() * per_process : (rank() + 1) * per_process]
            step += 1


def total_steps(n_lines: int, per_process: int, epochs: int, max_steps: int | None = None) -> int:
    """Optimizer steps of :func:`batches` over ``epochs``, capped at ``max_steps``."""
    steps = _steps_per_epoch(n_lines, per_process * world_size()) * epochs
    return min(steps, max_steps) if max_steps is not None else steps


def training_end(config: SentenceConfig, n_lines: int, per_process: int | None = None) -> Training:
    """``budget`` when ``max_steps`` stops training before the recipe's epochs over the corpus."""
    size = config.batch_size if per_process is None else per_process
    planned = total_steps(n_lines, size, config.epochs)
    done = total_steps(n_lines, size, config.epochs, config.max_steps)
    return Training(
        stopped_by="budget" if done < planned else "recipe-epochs",
        epochs=config.epochs,
        note=f"{done} of the {planned} steps of {config.epochs} epoch(s) over {n_lines} sentences",
    )


def average_gradients(model: nn.Module) -> None:
    """DDP's gradient averaging (the losses already saw every process's negatives)."""
    if not is_distributed():
        return
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world_size()


class SentenceTrainer(Generic[ConfigT, ModelT]):
    """SimCSE's schedule around one paper's method: the loop, checkpoints and scoring.

    A paper subclasses it with its config and model types and overrides :meth:`build_model`
    (its model around ``self.encoder``) and :meth:`step_loss` (one step's loss from this
    process's rows of token ids: its batch building); a paper with state outside the model's
    parameters (ESimCSE's queue) overrides :meth:`extra_state` / :meth:`load_extra`, one whose
    step is not ``batch_size`` sentences (WhitenedCSE's replicas) :meth:`per_process`,
    :meth:`log_start` and :meth:`deviations`. :meth:`run` trains and returns the outcome.
    """

    def __init__(self, config: ConfigT, ctx: RunContext) -> None:
        self.config, self.ctx = config, ctx
        self.lines, self.files, self.tokenizer, self.encoder = setup(config, ctx)
        self.pad = int(self.tokenizer.pad_token_id)
        self.gather = is_distributed()  # negatives gathered across torchrun processes

    @property
    def hidden(self) -> int:
        """The encoder's width."""
        hf_config: Any = self.encoder.config  # a transformers PretrainedConfig
        return int(hf_config.hidden_size)

    def build_model(self) -> ModelT:
        raise NotImplementedError

    def step_loss(self, rows: list[list[int]], step: int) -> Tensor:
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra(self, state: dict[str, Any]) -> None:
        return None

    def per_process(self) -> int:
        """Sentences this process takes per step."""
        return self.config.batch_size

    def deviations(self) -> list[str]:
        return deviations(self.config)

    def log_start(self, n_lines: int) -> None:
        c = self.config
        steps = total_steps(n_lines, self.per_process(), c.epochs, c.max_steps)
        self.ctx.logger.info("%d sentences, %d steps", n_lines, steps)

    def run(self) -> RunOutcome:
        c = self.config
        token_ids = tokenize_lines(
            self.tokenizer, self.lines, c.max_seq_length, cache_dir(self.ctx)
        )
        self.model = self.build_model()
        self.log_start(len(token_ids))
        best, _history = self.train(token_ids)
        return RunOutcome(
            validation={"stsb_dev": best},
            test=score(self.encoder, self.tokenizer, c, self.ctx),
            selection_rule=SELECTION,
            dataset_files=self.files,
            training=training_end(c, len(token_ids), self.per_process()),
            deviations=self.deviations(),
        )

    def train(self, token_ids: list[list[int]]) -> tuple[float, list[dict[str, float]]]:
        """Optimise :meth:`step_loss` with SimCSE's schedule; keep the best-dev encoder weights.

        Returns (best dev Spearman ×100, evaluation history); the encoder holds the best weights.
        """
        config, ctx, model, encoder = self.config, self.ctx, self.model, self.encoder
        size = self.per_process()
        steps = total_steps(len(token_ids), size, config.epochs, config.max_steps)
        params = [p for p in model.parameters() if p.requires_grad]
        optim = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: max(0.0, 1.0 - s / steps))
        encode = sts_encoder(encoder, self.tokenizer, ctx.device)
        state = ctx.load_checkpoint()
        step, best = 0, float("-inf")
        history: list[dict[str, float]] = []
        best_state: dict[str, Tensor] | None = None
        if state is not None:
            model.load_state_dict(state["model"])
            optim.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            step, best, best_state = state["step"], state["best"], state["best_state"]
            history = state["history"]
            self.load_extra(state["extra"])
        model.train()
        it = batches(len(token_ids), size, config.epochs, ctx.seed, step)
        for rows in ctx.progress(it, desc="train", total=steps - step):
            if step >= steps:
                break
            loss = self.step_loss([token_ids[i] for i in rows], step)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            average_gradients(model)
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optim.step()
            sched.step()
            step += 1
            if step % config.eval_steps == 0:
                dev = stsb_dev_spearman(
                    encode, ctx.data_root, config.eval_batch_size, config.dev_pairs
                )
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
                        "extra": self.extra_state(),
                    }
                )
        if best_state is None:  # fewer steps than eval_steps: score the last weights
            best = stsb_dev_spearman(
                encode, ctx.data_root, config.eval_batch_size, config.dev_pairs
            )
        else:
            encoder.load_state_dict(best_state)
        return best, history


def score(
    encoder: nn.Module, tokenizer: Any, config: SentenceConfig, ctx: RunContext
) -> dict[str, float]:
    """The STS table (Spearman ×100, 'all' for STS12–16) of the encoder's [CLS].

    Every pair unless the config's ``sts_pairs`` cuts each subset (smoke recipes).
    """
    encode = sts_encoder(encoder, tokenizer, ctx.device)
    return evaluate_sts(
        encode, ctx.data_root, batch_size=config.eval_batch_size, max_pairs=config.sts_pairs
    )


def setup(
    config: SentenceConfig, ctx: RunContext
) -> tuple[list[str], dict[str, str], Any, nn.Module]:
    """Set the threads, read the data, load the encoder.

    Returns (lines, file checksums, tokenizer, encoder on ``ctx.device``).
    """
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    lines, files = load_data(config, ctx)
    tokenizer, encoder = load_encoder(config.model_name_or_path, config.dropout)
    return lines, files, tokenizer, encoder.to(ctx.device)


def cache_dir(ctx: RunContext) -> Path:
    """Where token ids are cached: shared by a paper's runs (next to their run folders)."""
    return ctx.run_dir.parent / "token-cache"
