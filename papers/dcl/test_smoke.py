"""Smoke run on tiny generated images in the official layouts, and the parts against references."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from common.data import get_dataset
from common.records import config_identity, load_records
from common.runner import main, resolve_config
from common.vision import CIFAR_COPIES
from tests.support.datasets import spec_for_local_files, temporary_dataset
from tests.support.images import write_tiny_cifar
from tests.support.smoke import smoke_over_budget

from .__main__ import ENTRY
from .augment import simclr_view
from .data import load_images
from .plot import render
from .train import Config

# Training and test images of the real files (the CIFAR-10 copy on hand, or the official one).
SIZES = {
    ("cifar10", "subset"): (5_170, 1_017),
    ("cifar10", "full"): (50_000, 10_000),
    ("fashion-mnist", "subset"): (60_000, 10_000),  # one copy: cifar_copy does not apply
    ("fashion-mnist", "full"): (60_000, 10_000),
}
# A few seconds of CPU with the small CNN (the recipe asks a quarter or less of each).
SMOKE_BUDGET = {"augmented views": 2_000, "images embedded": 3_000, "probe image-steps": 3_000}


def smoke_work(dataset: str, variant: str, config: Any) -> dict[str, int]:
    """Views trained on, images through the backbone (kNN each epoch and at the end), probe."""
    train, test = SIZES[dataset, config.cifar_source]
    train, test = min(config.train_size or train, train), min(config.test_size or test, test)
    return {
        "augmented views": 2 * train * config.epochs,
        "images embedded": config.epochs * train + 2 * (train + test),
        "probe image-steps": config.probe_steps * train,
    }


def test_smoke_recipe_fits_its_budget() -> None:
    assert smoke_over_budget(ENTRY, smoke_work, SMOKE_BUDGET) == {}


def test_smoke_cifar_all_losses_and_plot(tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = write_tiny_cifar(data)
    with temporary_dataset(spec_for_local_files("cifar10-subset", data, files)):
        argv = ["--scale", "smoke", "--data-root", str(data), "--results-dir",
                str(tmp_path / "r"), "--work-dir", str(tmp_path / "w")]  # fmt: skip
        assert main(ENTRY, argv) == 0
    records = load_records(tmp_path / "r", ENTRY.folder.name)
    assert sorted(r.variant for r in records) == ["dcl", "dclw", "simclr"]
    for rec in records:
        assert set(rec.metrics.test) == {"kNN top-1", "linear top-1"}
        assert all(0 <= v <= 100 for v in rec.metrics.test.values())
        curve = rec.training.curve["valid kNN top-1"]
        assert (
            len(curve) == rec.training.epochs and max(curve) == rec.metrics.validation["kNN top-1"]
        )  # the curve shows the plateau; its best epoch is the one selected
        assert rec.training.stopped_by == "budget"  # smoke: 2 of the paper's 200 epochs
    assert render(tmp_path / "r", "smoke") is not None


def test_full_cifar_comes_from_the_verified_archive(tmp_path: Path) -> None:
    """The paper recipe reads the full copy: members extracted from the md5-checked archive."""
    import hashlib
    import tarfile

    staging = tmp_path / "staging"
    files = write_tiny_cifar(staging, per_batch=30, copy="full")
    folder = CIFAR_COPIES["full"][1]
    archive = tmp_path / "data" / Path(folder).parent / "cifar-10-python.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        for rel in files:
            tar.add(staging / rel, arcname=f"cifar-10-batches-py/{Path(rel).name}")
    real = get_dataset("cifar10")

    def md5(path: Path) -> str:
        return hashlib.md5(path.read_bytes()).hexdigest()

    members = [
        replace(real.file(rel), md5=md5(staging / rel)) for rel in files
    ]  # same paths and archive as the registry; checksums of the generated stand-ins
    stand_in = replace(real.files[0], size=archive.stat().st_size, md5=md5(archive))
    spec = replace(real, files=(stand_in, *members))
    with temporary_dataset(spec):
        data = load_images("cifar10", tmp_path / "data", train_size=None, test_size=None,
                           valid_fraction=0.1)  # fmt: skip
    assert len(data.train.labels) + len(data.valid.labels) == 150
    assert len(data.test.labels) == 30
    assert all(value.startswith("md5:") for value in data.files.values())


@pytest.mark.parametrize("channels", [1, 3])
def test_views_stay_in_range_and_differ(channels: int) -> None:
    x = torch.rand(16, channels, 12, 12)
    gen = torch.Generator().manual_seed(1)
    a, b = simclr_view(x, gen), simclr_view(x, gen)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("dataset", ["cifar10", "fashion-mnist"])
@pytest.mark.parametrize("variant", ["simclr", "dcl", "dclw"])
def test_reduced_recipe_is_the_papers_schedule_on_a_smaller_problem(
    dataset: str, variant: str
) -> None:
    """Reduced = smaller, not shorter: the paper's epochs, optimizer and loss settings, so a run
    that completes them ends by the paper's own rule (not `budget`, i.e. not truncated)."""
    paper = resolve_config(ENTRY, "full", dataset, variant, ())
    reduced = resolve_config(ENTRY, "reduced", dataset, variant, ())
    kept = ("epochs", "optimizer", "lr", "momentum", "weight_decay", "temperature", "sigma")
    assert {k: getattr(reduced, k) for k in kept} == {k: getattr(paper, k) for k in kept}
    assert isinstance(reduced, Config)
    assert reduced.train_size is not None and reduced.backbone == "small"


def test_reduced_configs_keep_the_identity_of_their_records() -> None:
    """The runner matches a seed to its record by the config's identity; a field added later
    (``cifar_copy``) must leave it unchanged, else --resume would run every recorded seed again."""
    results = Path(__file__).resolve().parents[2] / "results"
    records = [r for r in load_records(results, ENTRY.folder.name) if r.scale == "reduced"]
    for rec in records:
        overrides = (f"batch_size={rec.config['batch_size']}",)
        config = resolve_config(ENTRY, "reduced", rec.dataset, rec.variant, overrides)
        assert config_identity(config.model_dump(mode="json")) == config_identity(rec.config)
