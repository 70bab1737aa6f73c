"""common.sentence_training: seeded batches (resume, torchrun shares), step counts, the config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import Field
from torch import nn

import common.sentence_training as st
from common.config import build_config
from common.errors import ConfigError
from common.seeding import epoch_generator


def _torchrun(monkeypatch: pytest.MonkeyPatch, process: int, processes: int) -> None:
    """Pretend to be process ``process`` of ``processes`` under torchrun."""
    monkeypatch.setattr(st, "is_distributed", lambda: True)
    monkeypatch.setattr(st, "rank", lambda: process)
    monkeypatch.setattr(st, "world_size", lambda: processes)


def test_batches_cover_every_line_once_per_epoch_in_seeded_order() -> None:
    steps = list(st.batches(10, 4, epochs=2, seed=3))
    assert [len(s) for s in steps] == [4, 4, 2, 4, 4, 2]  # the last batch of an epoch partial
    for epoch in range(2):
        seen = [i for s in steps[3 * epoch : 3 * epoch + 3] for i in s]
        assert sorted(seen) == list(range(10))
        assert seen == torch.randperm(10, generator=epoch_generator(3, epoch)).tolist()
    assert steps == list(st.batches(10, 4, epochs=2, seed=3))
    assert steps != list(st.batches(10, 4, epochs=2, seed=4))


def test_batches_resume_with_the_same_remaining_order() -> None:
    steps = list(st.batches(10, 4, epochs=2, seed=0))
    for start in range(len(steps) + 1):
        assert list(st.batches(10, 4, epochs=2, seed=0, start_step=start)) == steps[start:]


def test_batches_under_torchrun_split_full_global_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    single = list(st.batches(10, 4, epochs=1, seed=1))
    shares = []
    for process in range(2):
        _torchrun(monkeypatch, process, 2)
        shares.append(list(st.batches(10, 2, epochs=1, seed=1)))
    # 10 lines, global batch 2 x 2 = 4: two full steps, the 2 left-over lines dropped
    assert [a + b for a, b in zip(*shares, strict=True)] == single[:2]
    assert all(len(s) == 2 for share in shares for s in share)


def test_per_process_count_scales_the_step() -> None:
    # WhitenedCSE's replicas: 2 x 4 sentences per step are one batch of 8 lines
    assert list(st.batches(16, 2 * 4, epochs=1, seed=5)) == [
        torch.randperm(16, generator=epoch_generator(5, 0)).tolist()[i : i + 8] for i in (0, 8)
    ]
    assert st.total_steps(16, 2 * 4, epochs=1) == 2


def test_total_steps_ceil_alone_floor_under_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    assert st.total_steps(10, 4, epochs=1) == 3
    assert st.total_steps(10, 4, epochs=3) == 9
    assert st.total_steps(10, 4, epochs=3, max_steps=5) == 5
    assert st.total_steps(10, 4, epochs=1, max_steps=50) == 3
    assert st.total_steps(8, 4, epochs=1) == 2
    _torchrun(monkeypatch, 0, 2)
    assert st.total_steps(10, 2, epochs=1) == 2
    assert st.total_steps(10, 2, epochs=3, max_steps=4) == 4
    assert st.total_steps(10, 3, epochs=1) == 1
    for n_lines, per_process, epochs in [(10, 2, 1), (17, 3, 2), (8, 2, 3)]:
        steps = st.total_steps(n_lines, per_process, epochs)
        assert steps == len(list(st.batches(n_lines, per_process, epochs, seed=0)))


def test_average_gradients_is_a_no_op_alone() -> None:
    layer = nn.Linear(2, 1)
    layer(torch.ones(1, 2)).sum().backward()
    before = [p.grad.clone() for p in layer.parameters() if p.grad is not None]
    st.average_gradients(layer)
    after = [p.grad for p in layer.parameters() if p.grad is not None]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


class _Paper(st.SentenceConfig):
    # an override repeats the constraint: a bare ``batch_size: int = 128`` would drop ge=2
    batch_size: int = Field(128, ge=2, description="sentences per replica per step")
    replicas: int = Field(2, ge=1)


def test_config_defaults_overrides_and_unknown_keys() -> None:
    base = st.SentenceConfig()
    assert (base.batch_size, base.lr, base.eval_steps, base.max_steps) == (64, 3e-5, 125, None)
    paper = build_config(_Paper, {"lr": 1e-5})
    assert (paper.batch_size, paper.replicas, paper.lr) == (128, 2, 1e-5)
    with pytest.raises(ConfigError, match="replicas"):
        build_config(st.SentenceConfig, {"replicas": 2})
    with pytest.raises(ConfigError, match="batch_size"):
        build_config(_Paper, {"batch_size": 1})


def test_deviations_name_the_step_size() -> None:
    config = st.SentenceConfig(max_steps=24, budget_note="small budget")
    assert "training capped at 24 steps of batch 64" in st.deviations(config)
    assert "training capped at 24 steps of 2 x 64 sentences" in st.deviations(
        config, "2 x 64 sentences"
    )
    assert st.deviations(config)[-1] == "small budget"
    assert not any("capped" in d for d in st.deviations(st.SentenceConfig()))


def test_the_paper_recipe_reads_the_full_corpus_and_says_so_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.error
    from types import SimpleNamespace

    import common.data
    from common.errors import DataError

    def offline(request: object) -> object:
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(common.data, "_no_redirect_open", offline)

    config = st.SentenceConfig()
    assert config.corpus == "full"
    assert not any("11,914" in d for d in st.deviations(config))
    assert any("11,914" in d for d in st.deviations(st.SentenceConfig(corpus="prefix")))
    ctx = SimpleNamespace(data_root=tmp_path)
    with pytest.raises(DataError, match=r"huggingface\.co"):
        st.load_data(config, ctx)  # type: ignore[arg-type]
