"""End-to-end smoke runs on tiny generated data (both settings), plus resume == uninterrupted."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from common.records import load_records
from common.runner import RunContext, main
from tests.support.datasets import spec_for_local_files, temporary_dataset
from tests.support.smoke import smoke_over_budget

from . import data as data_module
from .__main__ import ENTRY

USERS = {"ml-100k": 943, "baby": 19_445, "sports": 35_598, "clothing": 39_387}  # the real sets
# Smoke trains the first 40 users for 3 epochs per variant; the recipe trains every user for up
# to 1,000 epochs.
SMOKE_BUDGET = {"user-epochs": 1_000}


def smoke_work(dataset: str, variant: str, config: Any) -> dict[str, int]:
    users = min(config.data.max_users or USERS[dataset], USERS[dataset])
    return {"user-epochs": users * config.epochs}


def test_smoke_recipe_fits_its_budget() -> None:
    assert smoke_over_budget(ENTRY, smoke_work, SMOKE_BUDGET) == {}


PAPER = ENTRY.folder.name  # records are filed under the folder's name (a fork has its own)
ML = data_module.ML100K_FILES


def write_tiny_movielens(root: Path, users: int = 30, items: int = 40) -> None:
    rng = random.Random(0)
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user in range(1, users + 1):
        for item in rng.sample(range(1, items + 1), rng.randint(10, 20)):
            inter.append(f"{user}\t{item}\t{rng.randint(1, 5)}\t{rng.randint(0, 10**9)}")
    genres = ["Action", "Comedy", "Drama", "Horror", "Romance"]
    items_file = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    link = ["item_id:token\tentity_id:token"]
    kg = ["head_id:token\trelation_id:token\ttail_id:token"]
    for i in range(1, items + 1):
        items_file.append(f"{i}\tMovie {i}\t{1990 + i % 9}\t{' '.join(rng.sample(genres, 2))}")
        if i % 7:  # some items have no entity
            link.append(f"{i}\tm.{i}")
            for e in rng.sample(range(25), 4):
                kg.append(f"m.{i}\tfilm.rel{e % 3}\te.{e}")
    for ext, lines in (("inter", inter), ("item", items_file), ("link", link), ("kg", kg)):
        (root / ML[ext]).parent.mkdir(parents=True, exist_ok=True)
        (root / ML[ext]).write_text("\n".join(lines) + "\n")


def write_tiny_amazon(
    root: Path, name: str = "baby", users: int = 30, items: int = 25, features: bool = True
) -> list[str]:
    """Official-format splits (int64 (2, N)) and feature files (float32 n_items x 4096 / 384)."""
    rng = np.random.default_rng(0)
    parts: dict[str, list[tuple[int, int]]] = {"train": [], "valid": [], "test": []}
    for u in range(users):
        chosen = rng.choice(items, size=8, replace=False)
        parts["train"] += [(u, int(i)) for i in chosen[:6]]
        parts["valid"].append((u, int(chosen[6])))
        parts["test"].append((u, int(chosen[7])))
    for i in range(items):  # every item id occurs somewhere (the official ids are contiguous)
        parts["train"].append((i % users, i))
    rels = data_module.split_files(name)
    for rel, part in zip(rels, ("train", "valid", "test"), strict=True):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / rel, np.asarray(parts[part], dtype=np.int64).T)
    if features:
        vis, txt = data_module.feature_files(name)
        np.save(root / vis, rng.standard_normal((items, 4096)).astype(np.float32))
        np.save(root / txt, rng.standard_normal((items, 384)).astype(np.float32))
        rels += [vis, txt]
    return rels


def fake_encoder() -> data_module.TextEncoder:
    def encode(sentences: list[str]) -> torch.Tensor:
        gen = torch.Generator().manual_seed(len(sentences))
        return torch.nn.functional.normalize(torch.randn(len(sentences), 384, generator=gen))

    return encode


def _argv(tmp_path: Path, work: str, *extra: str) -> list[str]:
    return [
        "--scale",
        "smoke",
        "--data-root",
        str(tmp_path / "data"),
        "--results-dir",
        str(tmp_path / "results"),
        "--work-dir",
        str(tmp_path / work),
        *extra,
    ]


@pytest.fixture()
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(data_module, "minilm_encoder", fake_encoder)
    write_tiny_movielens(tmp_path / "data")
    rels = write_tiny_amazon(tmp_path / "data")
    ml = spec_for_local_files(data_module.ML100K, tmp_path / "data", list(ML.values()))
    split = spec_for_local_files("rearm-baby", tmp_path / "data", rels[:3])
    feats = spec_for_local_files("rearm-baby-features", tmp_path / "data", rels[3:])
    with temporary_dataset(ml), temporary_dataset(split), temporary_dataset(feats):
        yield tmp_path


def test_smoke_every_variant_on_movielens(tiny: Path) -> None:
    assert main(ENTRY, _argv(tiny, "w")) == 0
    records = load_records(tiny / "results", PAPER)
    assert sorted(r.variant for r in records) == sorted(ENTRY_VARIANTS)
    for rec in records:
        assert set(rec.metrics.test) == {
            f"{m}@{k}" for m in ("Recall", "NDCG", "Precision") for k in (5, 10)
        }
        assert all(0 <= v <= 1 for v in rec.metrics.test.values())
        assert rec.dataset_files[ML["inter"]] and rec.scale == "smoke"
        assert len(rec.training.curve["valid Recall@10"]) == rec.training.epochs
    cached = list((tiny / "w").rglob("text_feat-*.npy"))
    assert len(cached) == 1  # MiniLM features computed once, shared by the variants


ENTRY_VARIANTS = [
    "rearm",
    "lightgcn",
    "rearm-no-meta",
    "rearm-no-orth",
    "rearm-no-homo",
    "rearm-text",
    "bpr",
]


def test_smoke_amazon_official_format(tiny: Path) -> None:
    assert (
        main(ENTRY, _argv(tiny, "a", "--dataset", "baby", "--variants", "rearm,lightgcn,bpr")) == 0
    )
    records = load_records(tiny / "results", PAPER)
    assert sorted(r.variant for r in records) == ["bpr", "lightgcn", "rearm"]
    rearm = next(r for r in records if r.variant == "rearm")
    assert "rearm/baby/image_feat.npy" in rearm.dataset_files


def test_resume_equals_uninterrupted(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(ENTRY, _argv(tiny, "straight", "--variants", "rearm")) == 0
    original = RunContext.save_checkpoint
    calls = {"n": 0}

    def crash_after_second_epoch(self: RunContext, state: dict) -> None:  # type: ignore[type-arg]
        original(self, state)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunContext, "save_checkpoint", crash_after_second_epoch)
    assert main(ENTRY, _argv(tiny, "crashed", "--variants", "rearm")) == 130
    monkeypatch.setattr(RunContext, "save_checkpoint", original)
    assert main(ENTRY, _argv(tiny, "crashed", "--variants", "rearm", "--resume")) == 0
    straight, resumed = sorted(load_records(tiny / "results", PAPER), key=lambda r: r.resumed)
    assert resumed.resumed and not straight.resumed
    assert resumed.metrics.test == straight.metrics.test
    assert resumed.metrics.validation == straight.metrics.validation


def test_bad_config_value_is_one_line(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(ENTRY, _argv(tiny, "w", "--variants", "rearm", "s_drop=1.5")) == 2
    err = capsys.readouterr().err.strip()
    assert "s_drop" in err and len(err.splitlines()) == 1


def test_tune_bpr_reg_weight_on_validation(tiny: Path) -> None:
    from .tune import main as tune

    out = tiny / "tuning"
    argv = ["--variant", "bpr", "--dataset", "baby", "--scale", "smoke", "--data-root",
            str(tiny / "data"), "--out", str(out), "--work-dir", str(tiny / "tw"),
            "--regs", "1.0,0.001", "topk=[10,20]", "valid_metric=Recall@20"]  # fmt: skip
    assert tune(argv) == 0
    records = load_records(out, PAPER)
    assert sorted(r.config["baseline"]["reg_weight"] for r in records) == [0.001, 1.0]
    assert {r.variant for r in records} == {"bpr"}
    # the highest validation Recall@20, a tie going to the smaller weight (tiny data ties often)
    best = max(records, key=lambda r: (r.metrics.validation["Recall@20"],
                                       -r.config["baseline"]["reg_weight"]))  # fmt: skip
    choice = json.loads((out / "choice.json").read_text())
    assert choice["reg"] == best.config["baseline"]["reg_weight"]
    assert "**" in (out / "grid.md").read_text()
    assert tune(argv) == 0  # every point recorded: nothing runs again
    assert len(load_records(out, PAPER)) == 2
