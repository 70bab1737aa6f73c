"""Fine-tune a code-search encoder (``base`` or CoCoSoDa's multimodal loss) and score it with
the official protocol on CodeSearchNet Ruby (and CoSQA dev as a second test).

Recipe (official ``run_fine_tune.sh`` / ``run.py::train``): batch 128 (last partial batch
dropped), lr 2e-5, AdamW (eps 1e-8, weight decay 0.01 except biases and LayerNorm weights),
linear decay to 0 with no warm-up, gradient clipping at 1.0, 5 epochs, code length 256, query
length 128; after every epoch the validation MRR, the best epoch's weights scored on the test.
CoCoSoDa's multimodal loss (``run_cocosoda.sh``): K = 1024, m = 0.999, τ = 0.07 then ×20.
Here the training pairs are CodeSearchNet Ruby *valid* minus a fixed held-out slice used for
model selection (the train split's code is not on hand); see README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from common.config import StrictModel, declared_variant
from common.errors import ClreproError
from common.records import Training
from common.runner import RunContext, RunOutcome
from common.seeding import epoch_generator
from common.text import STAND_IN, load_encoder, pad_batch

from .data import Pair, load_cosqa, load_ruby, pool_of, slice_pairs, slice_retrieval
from .evaluate import evaluate_pairs, prefix_length, token_ids
from .model import RUBY_TYPE_TOKENS, CoCoSoDa, base_loss, mean_pool, soft_augment

SELECTION = "best validation MRR (held-out slice of Ruby valid, over its own functions) per epoch"


class Config(StrictModel):
    variant: Annotated[str, declared_variant(Path(__file__).parent)] = "cocosoda"
    model_name_or_path: str = Field("microsoft/unixcoder-base", description="HF name or folder")
    train_split: Literal["train", "valid"] = Field(
        "train", description="train: the official train.jsonl; valid: Ruby valid minus holdout"
    )
    holdout: int = Field(200, ge=2, description="valid pairs held out for model selection")
    split_seed: int = Field(0, ge=0, description="fixed permutation choosing the held-out slice")
    code_length: int = Field(256, ge=8)
    nl_length: int = Field(128, ge=8)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(2e-5, gt=0)
    epochs: int = Field(5, ge=1)
    max_steps: int | None = Field(None, ge=1, description="cap on optimizer steps (budget)")
    weight_decay: float = Field(0.01, ge=0)
    adam_eps: float = Field(1e-8, gt=0)
    max_grad_norm: float = Field(1.0, gt=0)
    queue_size: int = Field(1024, ge=1)
    momentum: float = Field(0.999, ge=0, lt=1)
    temperature: float = Field(0.07, gt=0, description="divides the logits; ×20 follows")
    aug_prob: float = Field(0.1, ge=0, le=1, description="run.py --mlm_probability")
    cosqa: bool = Field(True, description="also score CoSQA dev (label-1 pairs)")
    eval_batch_size: int = Field(64, ge=1)
    threads: int | None = Field(1, ge=1)
    budget_note: str = ""
    # smoke only: seeded slices (split_seed) of the real data; None keeps everything
    eval_queries: int | None = Field(None, ge=1, description="test queries kept (Ruby, CoSQA)")
    eval_pool: int | None = Field(
        None, ge=1, description="functions kept: the kept queries' gold plus distractors"
    )
    train_pairs: int | None = Field(None, ge=2, description="training pairs kept")

    @model_validator(mode="after")
    def _slices(self) -> Config:
        queries, pool = self.eval_queries, self.eval_pool
        if queries is not None and pool is not None and pool < queries:
            raise ValueError("eval_pool must be at least eval_queries (the gold functions)")
        return self


def split_valid(valid: list[Pair], holdout: int, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(training pairs, held-out pairs): a fixed permutation, the same for every run seed."""
    if holdout >= len(valid):
        raise ClreproError(f"holdout={holdout} leaves no training pairs of {len(valid)}")
    order = torch.randperm(len(valid), generator=torch.Generator().manual_seed(seed)).tolist()
    return [valid[i] for i in order[holdout:]], [valid[i] for i in order[:holdout]]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """run.py's groups: no decay for biases and LayerNorm weights; key encoders excluded."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if ("bias" in name or "LayerNorm.weight" in name) else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


Retrieval = tuple[list[Pair], list[Pair]]  # (queries, candidate pool)


def eval_sets(config: Config, test: list[Pair], pool: list[Pair],
              cosqa: list[Pair] | None) -> dict[str, Retrieval]:  # fmt: skip
    """Ruby test queries over the pool; CoSQA queries over CoSQA's functions (sliced as the
    config says: the smoke recipe's seeded slices, everything otherwise)."""
    args = (config.eval_queries, config.eval_pool, config.split_seed)
    out = {"": slice_retrieval(test, pool, *args)}
    if cosqa is not None:
        out["CoSQA "] = slice_retrieval(cosqa, pool_of(cosqa), *args)
    return out


def scores(
    encoder: nn.Module, tokenizer: Any, config: Config, ctx: RunContext,
    sets: dict[str, Retrieval],
) -> dict[str, float]:  # fmt: skip
    """Test metrics of each set, named by its prefix."""
    args = (config.code_length, config.nl_length, ctx.device, config.eval_batch_size)
    out: dict[str, float] = {}
    for prefix, (queries, pool) in sets.items():
        metrics = evaluate_pairs(encoder, tokenizer, queries, pool, *args)
        out.update({f"{prefix}{k}": v for k, v in metrics.items()})
    return out


def deviations(config: Config, ruby: Retrieval, codebase: int) -> list[str]:
    queries, pool = ruby
    out = [f"candidate pool: {len(pool)} functions (Ruby test + valid on hand) of the {codebase} "
           "in CoCoSoDa's Ruby codebase list"]  # fmt: skip
    if config.eval_queries is not None or config.eval_pool is not None:
        out.append(f"smoke slice: {len(queries)} test queries over {len(pool)} functions "
                   "(seeded, gold kept), CoSQA sliced alike")  # fmt: skip
    if config.train_pairs is not None:
        out.append(f"smoke slice: at most {config.train_pairs} training pairs (seeded)")
    if config.model_name_or_path != "microsoft/unixcoder-base":
        note = f"encoder {config.model_name_or_path} instead of microsoft/unixcoder-base"
        if config.model_name_or_path == STAND_IN:
            note += " (its training data includes CodeSearchNet: contaminated)"
        out.append(note)
    if config.budget_note:
        out.append(config.budget_note)
    return out


def run(config: Config, ctx: RunContext) -> RunOutcome:
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if config.train_split == "train" and config.variant != "zero-shot":
        raise ClreproError(
            "the Ruby train split's code is not on hand (only its URL list): use train_split=valid"
        )
    ruby = load_ruby(ctx.data_root)
    files = dict(ruby.files)
    cosqa = None
    if config.cosqa:
        cosqa, cosqa_files = load_cosqa(ctx.data_root)
        files.update(cosqa_files)
    sets = eval_sets(config, ruby.test, pool_of(ruby.test, ruby.valid), cosqa)
    tokenizer, encoder = load_encoder(config.model_name_or_path)
    encoder.to(ctx.device)
    devs = deviations(config, sets[""], ruby.codebase_urls)
    if config.variant == "zero-shot":
        test = scores(encoder, tokenizer, config, ctx, sets)
        return RunOutcome(
            validation={}, test=test, selection_rule="none (no training)", dataset_files=files,
            training=Training(stopped_by="not-trained", note="the encoder as loaded"),
            origin="pretrained-baseline", deviations=devs,
        )  # fmt: skip
    train_pairs, held_out = split_valid(ruby.valid, config.holdout, config.split_seed)
    train_pairs = slice_pairs(train_pairs, config.train_pairs, config.split_seed)
    best, _curve, training = fit(encoder, tokenizer, config, ctx, train_pairs, held_out)
    test = scores(encoder, tokenizer, config, ctx, sets)
    devs.append(
        f"training pairs: {len(train_pairs)} of Ruby valid (the train split's 24,927 are not on "
        f"hand); {len(held_out)} held out for selection"
    )
    return RunOutcome(
        validation={"MRR": best}, test=test, selection_rule=SELECTION, dataset_files=files,
        training=training, deviations=devs,
    )  # fmt: skip


def build(
    encoder: nn.Module, config: Config, device: torch.device, planned: int
) -> tuple[nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The trained module (the encoder for ``base``, else :class:`CoCoSoDa` around it), AdamW
    with run.py's groups and the linear decay to 0 over ``planned`` steps."""
    hf_config: Any = encoder.config  # a transformers PretrainedConfig
    model: nn.Module = encoder
    if config.variant != "base":
        model = CoCoSoDa(
            encoder, int(hf_config.hidden_size), config.queue_size, config.momentum,
            config.temperature, use_queue=config.variant != "cocosoda-no-queue",
        ).to(device)  # fmt: skip
    optim = torch.optim.AdamW(
        param_groups(model, config.weight_decay), lr=config.lr, eps=config.adam_eps
    )
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: max(0.0, 1.0 - s / planned))
    return model, optim, sched


def augment_options(tokenizer: Any, p: float) -> dict[str, Any]:
    """:func:`soft_augment`'s tokenizer-dependent keywords (prefix, specials, type tokens)."""
    types = [tokenizer.convert_tokens_to_ids(t) for t in RUBY_TYPE_TOKENS]
    return dict(
        start=prefix_length(tokenizer), special_ids=sorted(set(tokenizer.all_special_ids)),
        mask_id=tokenizer.mask_token_id, vocab_size=len(tokenizer), p=p,
        type_ids=[t for t in types if t is not None and t != tokenizer.unk_token_id],
    )  # fmt: skip


Batch = tuple[Tensor, Tensor]  # padded ids, attention mask


def batch_loss(
    model: nn.Module, variant: str, code: Batch, nl: Batch, step: int,
    augment: dict[str, Any] | None, device: torch.device,
) -> Tensor:  # fmt: skip
    """The loss of one batch at training step ``step`` (1-based); ``augment`` holds
    :func:`soft_augment`'s keywords with its ``generator`` (None: no augmentation)."""
    if variant == "base":
        q = mean_pool(model, nl[0].to(device), nl[1].to(device))
        return base_loss(q, mean_pool(model, code[0].to(device), code[1].to(device)))
    aug_code, aug_nl = code[0], nl[0]
    if augment is not None:
        aug_code = soft_augment(code[0], code[1], step, is_code=True, **augment)
        aug_nl = soft_augment(nl[0], nl[1], step, is_code=False, **augment)
    loss: Tensor = model(
        (code[0].to(device), code[1].to(device)), (aug_code.to(device), code[1].to(device)),
        (nl[0].to(device), nl[1].to(device)), (aug_nl.to(device), nl[1].to(device)),
    )  # fmt: skip
    return loss


def update(
    model: nn.Module, loss: Tensor, optim: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LambdaLR, max_grad_norm: float,
) -> None:  # fmt: skip
    """Backward, clipping at ``max_grad_norm`` (trained parameters), AdamW and schedule step."""
    optim.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(
        [p for p in model.parameters() if p.requires_grad], max_grad_norm
    )
    optim.step()
    sched.step()


def fit(
    encoder: nn.Module, tokenizer: Any, config: Config, ctx: RunContext,
    train_pairs: list[Pair], held_out: list[Pair],
) -> tuple[float, list[float], Training]:  # fmt: skip
    """Train ``encoder`` in place; it ends holding the best-validation epoch's weights."""
    pad = int(tokenizer.pad_token_id)
    code_ids = token_ids(tokenizer, [p.code for p in train_pairs], config.code_length)
    nl_ids = token_ids(tokenizer, [p.query for p in train_pairs], config.nl_length)
    per_epoch = len(train_pairs) // config.batch_size  # drop_last=True as run.py
    if per_epoch == 0:
        raise ClreproError(f"batch_size={config.batch_size} exceeds the {len(train_pairs)} pairs")
    planned = per_epoch * config.epochs
    total = min(planned, config.max_steps) if config.max_steps is not None else planned
    model, optim, sched = build(encoder, config, ctx.device, planned)
    augment = augment_options(tokenizer, config.aug_prob)
    soda = config.variant not in ("base", "cocosoda-no-soda")
    step, epoch, best, best_epoch = 0, 0, float("-inf"), 0
    curve: list[float] = []
    best_state: dict[str, Tensor] | None = None
    state = ctx.load_checkpoint()
    if state is not None:
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, epoch, best, best_epoch = (
            state["step"],
            state["epoch"],
            state["best"],
            state["best_epoch"],
        )
        curve, best_state = state["curve"], state["best_state"]
    model.train()
    while epoch < config.epochs and step < total:
        order = torch.randperm(
            len(train_pairs), generator=epoch_generator(ctx.seed, epoch)
        ).tolist()
        augment["generator"] = epoch_generator(ctx.seed + 7919, epoch)  # augmentation draws
        for b in ctx.progress(range(per_epoch), desc=f"epoch {epoch + 1}"):
            if step >= total:
                break
            rows = order[b * config.batch_size : (b + 1) * config.batch_size]
            code = pad_batch([code_ids[i] for i in rows], pad)
            nl = pad_batch([nl_ids[i] for i in rows], pad)
            loss = batch_loss(
                model, config.variant, code, nl, step + 1, augment if soda else None, ctx.device
            )
            update(model, loss, optim, sched, config.max_grad_norm)
            step += 1
        epoch += 1
        val = evaluate_pairs(
            encoder, tokenizer, held_out, held_out, config.code_length, config.nl_length,
            ctx.device, config.eval_batch_size,
        )["MRR"]  # fmt: skip
        curve.append(val)
        ctx.log_metrics(step, {"valid_MRR": val, "loss": float(loss.item())}, "eval")
        if val > best:
            best, best_epoch = val, epoch
            best_state = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
        ctx.save_checkpoint({
            "model": model.state_dict(), "optimizer": optim.state_dict(),
            "scheduler": sched.state_dict(), "step": step, "epoch": epoch, "best": best,
            "best_epoch": best_epoch, "curve": curve, "best_state": best_state,
        })  # fmt: skip
    assert best_state is not None
    encoder.load_state_dict(best_state)
    cut = total < planned
    training = Training(
        stopped_by="budget" if cut or ctx.stopped_by_cap(config) else "recipe-epochs",
        epochs=epoch, best_epoch=best_epoch, curve={"valid MRR": curve},
        note=f"{step} of the {planned} steps ({per_epoch} per epoch over {len(train_pairs)} pairs)",
    )  # fmt: skip
    return best, curve, training
