"""CoCoSoDa's retrieval protocol (official ``run.py::evaluate``), computed faster.

Every test query is scored against every function of the pool by the dot product of the
L2-normalised mean-pooled vectors; the gold function's rank counts only within the top 1,000
(reciprocal rank 0 beyond). Reported: MRR and R@1/5/10 (the official ``cal_r1_r5_r10``:
reciprocal rank ≥ 1, ≥ 0.2, ≥ 0.1), as fractions.

Speed: each distinct text is tokenised and encoded once, in batches of similar length (the
official code pads every input to 256/128 tokens and encodes in file order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from common.text import pad_batch

from .data import Pair
from .model import mean_pool

TOP_K = 1000


def reciprocal_ranks(scores: Tensor, positives: Tensor, top_k: int | None = None) -> Tensor:
    """Per query 1/rank of its positive candidate (1-based; rank = 1 + #candidates scoring
    strictly higher), 0 when the rank exceeds ``top_k``."""
    if scores.dim() != 2 or positives.shape != (scores.shape[0],):
        raise ValueError("scores must be [queries, candidates] and positives [queries]")
    positive_scores = scores.gather(1, positives.long().unsqueeze(1))
    ranks = (scores > positive_scores).sum(dim=1) + 1
    rr = 1.0 / ranks.to(torch.float64)
    if top_k is not None:
        rr = torch.where(ranks <= top_k, rr, torch.zeros_like(rr))
    return rr


def token_ids(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """``[CLS] (<encoder-only> [SEP]) tokens [SEP]`` truncated to ``max_length``.

    UniXcoder's ``<encoder-only>`` marker (with its [SEP]) is added when the vocabulary has it,
    as the official ``convert_examples_to_features_unixcoder``; other encoders get [CLS] .. [SEP].
    """
    prefix = [tokenizer.cls_token_id]
    marker = tokenizer.convert_tokens_to_ids("<encoder-only>")
    if marker is not None and marker != tokenizer.unk_token_id:
        prefix += [marker, tokenizer.sep_token_id]
    room = max_length - len(prefix) - 1
    body = tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
    return [[*prefix, *ids[:room], tokenizer.sep_token_id] for ids in body]


def prefix_length(tokenizer: Any) -> int:
    """Tokens before the text (1, or 3 with UniXcoder's marker): augmentation skips them."""
    return len(token_ids(tokenizer, ["x"], 8)[0]) - 2


@torch.inference_mode()
def encode(
    encoder: nn.Module, rows: Sequence[Sequence[int]], pad_id: int, device: torch.device,
    batch_size: int = 64,
) -> Tensor:  # fmt: skip
    """Normalised mean-pooled vectors [len(rows), hidden]; identical rows encoded once."""
    distinct: dict[tuple[int, ...], int] = {}
    where = [distinct.setdefault(tuple(r), len(distinct)) for r in rows]
    unique = list(distinct)
    order = sorted(range(len(unique)), key=lambda i: len(unique[i]))
    was_training = encoder.training
    encoder.eval()
    out: Tensor | None = None
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids, mask = pad_batch([unique[i] for i in chunk], pad_id)
            vec = mean_pool(encoder, ids.to(device), mask.to(device)).float().cpu()
            if out is None:
                out = torch.empty(len(unique), vec.shape[1])
            out[torch.tensor(chunk)] = vec
    finally:
        encoder.train(was_training)
    assert out is not None
    return out[torch.tensor(where)]


def retrieval_metrics(
    queries: Tensor, codes: Tensor, gold: Tensor, top_k: int | None = TOP_K
) -> dict[str, float]:
    """MRR (gold ranked beyond ``top_k`` counts 0) and R@1/5/10 of normalised vectors."""
    rr = reciprocal_ranks(queries @ codes.T, gold, top_k)
    return {
        "MRR": float(rr.mean()),
        "R@1": float((rr >= 1.0).double().mean()),
        "R@5": float((rr >= 0.2).double().mean()),
        "R@10": float((rr >= 0.1).double().mean()),
    }


def evaluate_pairs(
    encoder: nn.Module, tokenizer: Any, queries: Sequence[Pair], pool: Sequence[Pair],
    code_length: int, nl_length: int, device: torch.device, batch_size: int = 64,
) -> dict[str, float]:  # fmt: skip
    """Score each query's gold function among ``pool`` (which must hold every gold key)."""
    index = {p.key: i for i, p in enumerate(pool)}
    missing = [q.key for q in queries if q.key not in index]
    if missing:
        raise ValueError(f"{len(missing)} gold functions are not in the pool, e.g. {missing[0]}")
    pad = int(tokenizer.pad_token_id)
    q_rows = token_ids(tokenizer, [q.query for q in queries], nl_length)
    c_rows = token_ids(tokenizer, [p.code for p in pool], code_length)
    q_vec = encode(encoder, q_rows, pad, device, batch_size)
    c_vec = encode(encoder, c_rows, pad, device, batch_size)
    gold = torch.tensor([index[q.key] for q in queries])
    return retrieval_metrics(q_vec, c_vec, gold)
