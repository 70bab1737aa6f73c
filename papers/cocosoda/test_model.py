"""CoCoSoDa's loss, queues, momentum keys and soft augmentation against naive references."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from common.text import load_encoder, pad_batch
from tests.support.sentences import save_tiny_bert

from .model import CoCoSoDa, base_loss, mean_pool, multimodal_logits, multimodal_loss, soft_augment
from .testdata import WORDS


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def naive_multimodal(code: Tensor, nl: Tensor, code_aug: Tensor, nl_aug: Tensor,
                     queues: dict[str, Tensor], tau: float, scale: float) -> float:  # fmt: skip
    """run.py's loss written out: for each of the 4 blocks and each row i, the softmax
    cross-entropy over [in-batch keys, queue] of scale * (a_i . k / tau), gold = key i."""
    blocks = [
        (code, nl, queues["nl"]),
        (code, nl_aug, queues["masked_nl"]),
        (nl, code, queues["code"]),
        (nl, code_aug, queues["masked_code"]),
    ]
    total, count = 0.0, 0
    for anchors, keys, queue in blocks:
        for i in range(anchors.shape[0]):
            cands = [float(anchors[i] @ k) for k in keys] + [float(anchors[i] @ k) for k in queue]
            logits = [scale * c / tau for c in cands]
            top = max(logits)
            lse = top + math.log(sum(math.exp(v - top) for v in logits))
            total += lse - logits[i]
            count += 1
    return total / count


def test_multimodal_loss_matches_naive_reference() -> None:
    b, d, k = 5, 8, 7
    code, nl, ca, na = (_unit(b, d, s) for s in range(4))
    queues = {
        n: _unit(k, d, 10 + i) for i, n in enumerate(["code", "nl", "masked_code", "masked_nl"])
    }
    got = multimodal_loss(multimodal_logits(code, nl, ca, na, queues, 0.07), b)
    want = naive_multimodal(
        code.double(),
        nl.double(),
        ca.double(),
        na.double(),
        {n: q.double() for n, q in queues.items()},
        0.07,
        20.0,
    )
    assert abs(float(got) - want) < 1e-3 * max(1.0, abs(want))
    # the effective temperature is 0.07 / 20 = 0.0035, not 0.07
    wrong = naive_multimodal(
        code.double(),
        nl.double(),
        ca.double(),
        na.double(),
        {n: q.double() for n, q in queues.items()},
        0.07,
        1.0,
    )
    assert abs(float(got) - wrong) > 1e-2
    # without queues: the [B, B] blocks only
    empty = {n: q[:0] for n, q in queues.items()}
    got = multimodal_loss(multimodal_logits(code, nl, ca, na, None, 0.07), b)
    want = naive_multimodal(code.double(), nl.double(), ca.double(), na.double(), empty, 0.07, 20.0)
    assert abs(float(got) - want) < 1e-3 * max(1.0, abs(want))


def test_blocks_pair_the_right_queue() -> None:
    b, d, k = 3, 6, 4
    code, nl, ca, na = (_unit(b, d, s) for s in range(4))
    names = ["code", "nl", "masked_code", "masked_nl"]
    queues = {n: _unit(k, d, 20 + i) for i, n in enumerate(names)}
    logits = multimodal_logits(code, nl, ca, na, queues, 0.5)
    expect = [
        (code, nl, "nl"),
        (code, na, "masked_nl"),
        (nl, code, "code"),
        (nl, ca, "masked_code"),
    ]
    for block, (anchor, keys, queue) in enumerate(expect):
        rows = logits[block * b : (block + 1) * b]
        torch.testing.assert_close(rows[:, :b], anchor @ keys.T / 0.5)
        torch.testing.assert_close(rows[:, b:], anchor @ queues[queue].T / 0.5)


def test_base_loss_matches_naive_reference() -> None:
    nl, code = _unit(4, 8, 0).double(), _unit(4, 8, 1).double()
    want = 0.0
    for i in range(4):
        logits = [20.0 * float(nl[i] @ code[j]) for j in range(4)]
        want += math.log(sum(math.exp(v) for v in logits)) - logits[i]
    assert abs(float(base_loss(nl, code)) - want / 4) < 1e-9


def _tiny(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_encoder(str(save_tiny_bert(tmp_path / "bert", WORDS)), 0.0)


def test_momentum_keys_queues_and_gradients(tmp_path: Path) -> None:
    tokenizer, encoder = _tiny(tmp_path)
    model = CoCoSoDa(encoder, 32, queue_size=6, momentum=0.9, temperature=0.07)
    before = next(model.code_key.parameters()).detach().clone()
    online = next(model.encoder.parameters())
    with torch.no_grad():
        online.add_(torch.randn(online.shape, generator=torch.Generator().manual_seed(0)))
    code = pad_batch(
        [
            tokenizer(s)["input_ids"]
            for s in [
                "def sum list end",
                "def read file end",
                "def open value end",
                "def get name end",
            ]
        ],
        tokenizer.pad_token_id,
    )
    nl = pad_batch(
        [tokenizer(s)["input_ids"] for s in ["sum", "read a file", "open", "get name"]],
        tokenizer.pad_token_id,
    )
    old = {n: q.clone() for n, q in model.queues().items()}
    loss = model(code, code, nl, nl)
    for key in (model.code_key, model.nl_key):
        torch.testing.assert_close(next(key.parameters()), 0.9 * before + 0.1 * online.detach())
    loss.backward()
    assert online.grad is not None and torch.isfinite(online.grad).all()
    assert all(p.grad is None for p in model.code_key.parameters())
    # FIFO: rows 0..3 replaced; code/nl queues get the query encoder's vectors of the inputs
    with torch.no_grad():
        c = mean_pool(model.encoder, *code)
        q = mean_pool(model.encoder, *nl)
    torch.testing.assert_close(model.code_queue[:4], c)
    torch.testing.assert_close(model.nl_queue[:4], q)
    torch.testing.assert_close(model.code_queue[4:], old["code"][4:])
    assert int(model.queue_ptr) == 4
    model(code, code, nl, nl)  # wraps around: rows 4, 5, 0, 1
    assert int(model.queue_ptr) == 2
    # ablation without queues leaves them untouched
    plain = CoCoSoDa(encoder, 32, 6, 0.9, 0.07, use_queue=False)
    start = plain.code_queue.clone()
    plain(code, code, nl, nl)
    torch.testing.assert_close(plain.code_queue, start)


def _aug(ids: Tensor, mask: Tensor, step: int, is_code: bool, seed: int = 0, p: float = 0.1,
         types: tuple[int, ...] = (7,)) -> Tensor:  # fmt: skip
    return soft_augment(
        ids,
        mask,
        step,
        is_code=is_code,
        start=2,
        special_ids=[0, 2, 3],
        mask_id=4,
        vocab_size=50,
        type_ids=list(types),
        p=p,
        generator=torch.Generator().manual_seed(seed),
    )


def test_soft_augmentation_cycle() -> None:
    n, length = 400, 30
    ids = torch.randint(8, 50, (n, length), generator=torch.Generator().manual_seed(1))
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    ids[:, -5:-1] = 0  # padding
    mask = (ids != 0).long()
    ids[:, 10] = 7  # one type token per row
    # step 0 mod 4: dynamic masking of code and query, never prefix / special / pad positions
    for is_code in (True, False):
        out = _aug(ids, mask, 4, is_code)
        changed = out != ids
        assert not changed[:, :2].any() and not changed[:, -5:].any()  # prefix, pad
        rate = float(changed[:, 2:-5].double().mean())
        # P(changed) = p (0.8 + 0.1 * P(random id differs)) ~ 0.089
        assert 0.07 < rate < 0.11, rate
        assert float((out[changed] == 4).double().mean()) > 0.8
    # steps 1 and 2 mod 4: no-ops as upstream
    for step in (1, 2, 5, 6):
        assert torch.equal(_aug(ids, mask, step, True, p=1.0), ids)
    # step 3 mod 4: the drawn type token in the code becomes [MASK] w.p. 0.8 p; query untouched
    out = _aug(ids, mask, 3, True, p=1.0)
    changed = out != ids
    assert changed.any() and (changed.nonzero()[:, 1] == 10).all() and (out[changed] == 4).all()
    assert 0.7 < float(changed[:, 10].double().mean()) < 0.9
    assert torch.equal(_aug(ids, mask, 3, False, p=1.0), ids)
