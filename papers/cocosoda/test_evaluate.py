"""The retrieval protocol against a transcription of the official ``run.py::evaluate`` loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.text import load_encoder, pad_batch
from tests.support.sentences import save_tiny_bert

from .evaluate import encode, reciprocal_ranks, retrieval_metrics, token_ids
from .model import mean_pool
from .testdata import WORDS


def official_loop(nl: np.ndarray, code: np.ndarray, nl_urls: list[str], code_urls: list[str]):  # type: ignore[no-untyped-def]
    """Sort the pool by score, walk its first 1,000 entries, 1/rank of the gold URL or 0."""
    order = np.argsort(nl @ code.T, axis=-1)[:, ::-1]
    ranks = []
    for url, row in zip(nl_urls, order, strict=True):
        rr = 0.0
        for position, idx in enumerate(row[:1000], 1):
            if code_urls[idx] == url:
                rr = 1.0 / position
                break
        ranks.append(rr)
    r = np.array(ranks)
    return {
        "MRR": r.mean(),
        "R@1": (r >= 1).mean(),
        "R@5": (r >= 0.2).mean(),
        "R@10": (r >= 0.1).mean(),
    }


def test_metrics_match_the_official_loop_with_the_top_1000_cut() -> None:
    gen = torch.Generator().manual_seed(0)
    pool, queries = 1500, 60
    code = F.normalize(torch.randn(pool, 16, generator=gen), dim=1)
    gold = torch.randint(pool, (queries,), generator=gen)
    noise = torch.randn(queries, 16, generator=gen)
    nl = F.normalize(code[gold] * torch.linspace(0.0, 3.0, queries)[:, None] + noise, dim=1)
    got = retrieval_metrics(nl, code, gold)
    urls = [f"u{i}" for i in range(pool)]
    want = official_loop(nl.double().numpy(), code.double().numpy(), [urls[g] for g in gold], urls)
    assert got == pytest.approx({k: float(v) for k, v in want.items()}, abs=1e-9)
    # the cut matters here: some golds rank beyond 1,000 and count 0
    uncut = retrieval_metrics(nl, code, gold, top_k=None)
    assert uncut["MRR"] > got["MRR"]


def test_encode_dedups_and_buckets_without_changing_vectors(tmp_path: Path) -> None:
    tokenizer, encoder = load_encoder(str(save_tiny_bert(tmp_path / "bert", WORDS)), 0.1)
    encoder.train()  # encode must switch dropout off and restore the mode
    texts = ["def sum list end", "read", "def sum list end", "open the file of user name", "a"]
    rows = token_ids(tokenizer, texts, 8)
    assert rows[3][0] == tokenizer.cls_token_id and rows[3][-1] == tokenizer.sep_token_id
    assert len(rows[3]) == 8  # truncated to the length, [SEP] kept
    got = encode(encoder, rows, tokenizer.pad_token_id, torch.device("cpu"), batch_size=2)
    assert encoder.training
    encoder.eval()
    with torch.no_grad():
        want = torch.cat([mean_pool(encoder, *pad_batch([r], 0)) for r in rows])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.norm(dim=1), torch.ones(len(rows)))


def test_reciprocal_ranks_by_hand() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.1, 0.2, 0.3]])
    positives = torch.tensor([0, 1, 0])  # ranks 1, 2, 3
    assert reciprocal_ranks(scores, positives).tolist() == pytest.approx([1, 1 / 2, 1 / 3])
    assert reciprocal_ranks(scores, positives, top_k=2).tolist() == pytest.approx([1, 1 / 2, 0])
