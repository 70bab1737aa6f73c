"""common.text: padding, tokenise-once caching, [CLS] pooling, the evaluation encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.errors import ClreproError, DataError
from common.text import (
    STAND_IN,
    cls_pool,
    load_encoder,
    pad_batch,
    read_lines,
    resolve_model_path,
    sts_encoder,
    tokenize_lines,
)
from tests.support.sentences import WORDS, save_tiny_bert


def test_pad_batch() -> None:
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_resolve_and_missing_model(tmp_path: Path) -> None:
    assert resolve_model_path("some/model") == "some/model"
    assert Path(resolve_model_path(STAND_IN)).is_dir()
    with pytest.raises(ClreproError):
        load_encoder(str(tmp_path / "nothing-here"))


def test_read_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("a man\n\nthe cat\n")
    assert read_lines(path) == ["a man", " ", "the cat"]
    with pytest.raises(DataError):
        read_lines(tmp_path / "missing.txt")


def test_tokenize_cache_and_pooling(tmp_path: Path) -> None:
    tokenizer, encoder = load_encoder(str(save_tiny_bert(tmp_path / "bert", WORDS)), 0.1)
    lines = ["a man plays the ball", "the cat"]
    ids = tokenize_lines(tokenizer, lines, 4, tmp_path / "cache")
    assert [len(x) for x in ids] == [4, 4]  # truncated to max_length, [CLS] ... [SEP]
    assert ids[0][0] == tokenizer.cls_token_id and ids[0][-1] == tokenizer.sep_token_id
    assert len(list((tmp_path / "cache").glob("tokens-*.pt"))) == 1
    assert tokenize_lines(tokenizer, lines, 4, tmp_path / "cache") == ids
    encode = sts_encoder(encoder, tokenizer, torch.device("cpu"))
    encoder.train()
    emb = encode(["a man plays", "the cat eats food"])
    assert encoder.training  # mode restored
    assert emb.shape == (2, 32)
    encoder.eval()
    one = tokenizer(["a man plays"], return_tensors="pt")
    with torch.no_grad():
        ref = cls_pool(encoder, one["input_ids"], one["attention_mask"])
    torch.testing.assert_close(emb[0], ref[0], atol=1e-5, rtol=1e-5)  # padding does not leak
