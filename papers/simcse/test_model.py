"""SimCSE's loss and embedding follow the official cl_forward / cls_before_pooler."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from common.text import cls_pool, load_encoder, pad_batch
from tests.support.sentences import WORDS, save_tiny_bert

from .model import SimCSE

SENTENCES = ["a man runs", "the cat eats food", "a dog plays the ball", "the woman"]


def _batch(tokenizer: object, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [tokenizer(s)["input_ids"] for s in sentences]  # type: ignore[operator]
    return pad_batch(rows, tokenizer.pad_token_id)  # type: ignore[attr-defined]


def test_loss_is_in_batch_infonce_over_head_outputs(tmp_path: Path) -> None:
    tokenizer, encoder = load_encoder(str(save_tiny_bert(tmp_path / "bert", WORDS)), 0.0)
    model = SimCSE(encoder, 32, temperature=0.05)
    ids, mask = _batch(tokenizer, SENTENCES)
    z = model.mlp(cls_pool(encoder, ids, mask))  # no dropout: both views equal
    logits = F.cosine_similarity(z[:, None], z[None], dim=-1) / 0.05
    expected = F.cross_entropy(logits, torch.arange(len(SENTENCES)))
    torch.testing.assert_close(model.loss(ids, mask), expected, rtol=1e-5, atol=1e-5)


def test_dropout_makes_two_views_and_embed_skips_head(tmp_path: Path) -> None:
    tokenizer, encoder = load_encoder(str(save_tiny_bert(tmp_path / "bert", WORDS)), 0.1)
    model = SimCSE(encoder, 32, temperature=0.05)
    ids, mask = _batch(tokenizer, SENTENCES)
    model.train()
    h = cls_pool(encoder, torch.cat([ids, ids]), torch.cat([mask, mask]))
    assert not torch.allclose(h[:4], h[4:])  # dropout noise is the augmentation
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.embed(ids, mask), cls_pool(encoder, ids, mask))
