"""ESimCSE's repetition and momentum queue behave as the official code."""

from __future__ import annotations

import random
from pathlib import Path

import torch

from common.text import load_encoder
from tests.support.sentences import WORDS, save_tiny_bert

from .model import ESimCSE, repeat_subwords


def test_repetition_keeps_order_and_special_tokens() -> None:
    rng = random.Random(0)
    ids = [101, *range(1000, 1020), 102]  # L = 22 -> at most min(10, 7) - 1 = 6 repeats
    counts = set()
    for _ in range(300):
        out = repeat_subwords(ids, 0.32, rng)
        assert out[0] == 101 and out[1] != 101 and out[-1] == 102 and out[-2] != 102
        dedup = [t for i, t in enumerate(out) if i == 0 or out[i - 1] != t]
        assert dedup == ids  # only in-place duplicates
        counts.add(len(out) - len(ids))
    assert counts == set(range(7))
    assert repeat_subwords([101, 5, 102], 0.32, rng) == [101, 5, 102]  # int(0.96) = 0


def test_momentum_update_and_queue(tmp_path: Path) -> None:
    tokenizer, encoder = load_encoder(str(save_tiny_bert(tmp_path / "bert", WORDS)), 0.1)
    model = ESimCSE(encoder, 32, 0.05, momentum=0.9, neg_size=5)
    online = next(model.encoder.parameters())
    before = next(model.momentum_encoder.parameters()).detach().clone()
    with torch.no_grad():
        online.add_(1.0)
    rows = [tokenizer(s)["input_ids"] for s in ["a man runs", "the cat eats", "a dog"]]
    loss = model.loss(rows, rows, tokenizer.pad_token_id, torch.device("cpu"))
    after = next(model.momentum_encoder.parameters())
    torch.testing.assert_close(after, 0.9 * before + 0.1 * online.detach())
    assert model.queue.shape == (3, 32) and not model.queue.requires_grad
    loss.backward()
    assert next(model.momentum_encoder.parameters()).grad is None
    model.loss(rows, rows, tokenizer.pad_token_id, torch.device("cpu"))
    assert model.queue.shape == (5, 32)  # FIFO, capped at neg_size
