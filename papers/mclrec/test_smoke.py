"""End-to-end smoke run on tiny generated data, plus resume == uninterrupted."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from common.records import load_records
from common.runner import main
from tests.support.datasets import spec_for_local_files, temporary_dataset
from tests.support.smoke import run_straight_and_resumed, smoke_over_budget

from .__main__ import ENTRY
from .data import kept_users

REL = "seqrec/Beauty.txt"
PAPER = ENTRY.folder.name  # records are filed under the folder's name (a fork has its own)


# The real files' sizes (users, items, interactions; the shared data README).
SIZES = {
    "beauty": (22_363, 12_101, 198_502),
    "sports": (35_598, 18_357, 296_337),
    "toys": (19_412, 11_924, 167_597),
    "yelp": (30_431, 20_033, 316_354),
}
PASSES = {"sasrec": 1, "cl4srec": 3, "mclrec": 8}  # encoder passes per training sample
# About 10 s of CPU (the recipe asks about half: ~7 s in all on Beauty); all of Beauty asks
# 200 times the samples and took 26 min.
SMOKE_BUDGET = {"encoder passes over samples": 50_000, "user-item scores": 50_000_000}


def smoke_work(dataset: str, variant: str, config: Any) -> dict[str, int]:
    """Training samples (every prefix of the kept users) x epochs x passes; ranking scores."""
    users, items, interactions = SIZES[dataset]
    kept = kept_users(users, config.user_fraction)
    samples = kept * (interactions - 3 * users) // users  # a user of n items: n - 3 samples
    return {
        "encoder passes over samples": samples * config.epochs * PASSES[variant],
        "user-item scores": kept * items * (config.epochs + 1),  # validation each epoch, test
    }


def write_tiny_beauty(root: Path, users: int = 4_000, items: int = 30) -> None:
    """Random sequences; the smoke recipe keeps a seeded 0.5% of the users (20 of these)."""
    rng = random.Random(0)
    lines = []
    for user in range(1, users + 1):
        length = rng.randint(5, 12)
        lines.append(" ".join(map(str, [user, *(rng.randint(1, items) for _ in range(length))])))
    (root / "seqrec").mkdir(parents=True, exist_ok=True)
    (root / REL).write_text("\n".join(lines) + "\n")


def _argv(tmp_path: Path, work: str, *extra: str) -> list[str]:
    return ["--scale", "smoke", "--data-root", str(tmp_path / "data"),
            "--results-dir", str(tmp_path / "results"), "--work-dir", str(tmp_path / work),
            *extra]  # fmt: skip


@pytest.fixture()
def tiny(tmp_path: Path):  # type: ignore[no-untyped-def]
    write_tiny_beauty(tmp_path / "data")
    with temporary_dataset(spec_for_local_files("seqrec-beauty", tmp_path / "data", [REL])):
        yield tmp_path


def test_smoke_recipe_fits_its_budget() -> None:
    """``--scale smoke`` on each real dataset (every variant) stays within seconds of work."""
    assert smoke_over_budget(ENTRY, smoke_work, SMOKE_BUDGET) == {}


def test_smoke_all_variants(tiny: Path) -> None:
    assert main(ENTRY, _argv(tiny, "w")) == 0
    records = load_records(tiny / "results", PAPER)
    assert sorted(r.variant for r in records) == ["cl4srec", "mclrec", "sasrec"]
    for rec in records:
        assert set(rec.metrics.test) == {"HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20"}
        assert all(0 <= v <= 1 for v in rec.metrics.test.values())
        assert "MRR@10" in rec.metrics.validation
        assert rec.dataset_files[REL] and rec.scale == "smoke"


def test_resume_equals_uninterrupted(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_straight_and_resumed(
        ENTRY, lambda work: _argv(tiny, work, "--variants", "mclrec"), monkeypatch
    )
    straight, resumed = sorted(load_records(tiny / "results", PAPER), key=lambda r: r.resumed)
    assert resumed.resumed and not straight.resumed
    assert resumed.metrics.test == straight.metrics.test
    assert resumed.metrics.validation == straight.metrics.validation


def test_bad_checkpoint_is_a_clear_error(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tiny / "bogus.pth"
    bogus.write_bytes(b"not a checkpoint")
    argv = _argv(tiny, "w", "--variants", "mclrec", "--checkpoint", str(bogus))
    argv[argv.index("smoke")] = "full"
    assert main(ENTRY, argv) == 2
    assert "not a RecBole checkpoint" in capsys.readouterr().err


def test_tune_runs_the_grid_once_and_picks_on_validation(tiny: Path) -> None:
    from .tune import main as tune

    out = tiny / "tuning"
    argv = ["--dataset", "beauty", "--scale", "smoke", "--data-root", str(tiny / "data"),
            "--out", str(out), "--work-dir", str(tiny / "tw"), "--lams", "0.01,0.1",
            "--betas", "0.05"]  # fmt: skip
    assert tune(argv) == 0
    records = load_records(out, PAPER)
    assert sorted((r.config["lam"], r.config["beta"]) for r in records) == [(0.01, 0.05),
                                                                           (0.1, 0.05)]  # fmt: skip
    best = max(records, key=lambda r: r.metrics.validation["MRR@10"])
    choice = json.loads((out / "choice.json").read_text())
    assert (choice["lam"], choice["beta"]) == (best.config["lam"], best.config["beta"])
    assert "**" in (out / "grid.md").read_text()
    assert tune(argv) == 0  # every point recorded: nothing runs again
    assert len(load_records(out, PAPER)) == 2
    wider = [*argv, "--no-run"]
    wider[wider.index("--betas") + 1] = "0.05,0.5"
    assert tune(wider) == 0  # a wider table from what is recorded, nothing run
    assert len(load_records(out, PAPER)) == 2
    assert "—" in (out / "grid.md").read_text()


def test_tune_rejects_overriding_the_searched_weights(tiny: Path) -> None:
    from .tune import main as tune

    with pytest.raises(SystemExit) as exit_info:
        tune(["--dataset", "beauty", "--scale", "smoke", "--out", str(tiny / "t"), "lam=0.2"])
    assert exit_info.value.code == 2


def test_profile_splits_a_batch_by_operator_kind_and_the_ranking_in_three(tiny: Path) -> None:
    from .benchmark import OP_KINDS, profile_evaluation, profile_training
    from .data import load_dataset

    data = load_dataset("beauty", tiny / "data", 50, user_fraction=0.2)  # > 2 batches
    shares = profile_training("mclrec", data, batches=1)
    kinds = [*OP_KINDS, "other element-wise and bookkeeping"]
    assert sum(shares[k] for k in kinds) == pytest.approx(1.0)
    assert all(shares[k] >= 0 for k in kinds)
    assert shares["matrix products"] > 0 and shares["dropout masks (random numbers)"] > 0
    assert shares["operator calls per batch"] > 100
    parts = profile_evaluation(data, batch_size=7)
    assert set(parts) == {"encoder", "score matrix", "top-k and metrics"}
    assert all(seconds > 0 for seconds in parts.values())
