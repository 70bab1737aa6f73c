"""Smoke run of every arm on tiny generated Fashion-MNIST and CIFAR-10 files, and the dense
task's parts."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from common.records import config_identity, load_records
from common.runner import main, resolve_config
from tests.support.datasets import spec_for_local_files, temporary_dataset
from tests.support.images import write_tiny_cifar, write_tiny_fashion_mnist

from .__main__ import ENTRY
from .augment import byol_views
from .dense import compose_canvases, dense_probe_miou, mean_iou

PAPER = ENTRY.folder.name  # records are filed under the folder's name (a fork has its own)


def test_smoke_every_arm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = write_tiny_fashion_mnist(data)
    with temporary_dataset(spec_for_local_files("fashion-mnist", data, files)):
        argv = ["--scale", "smoke", "--data-root", str(data), "--results-dir",
                str(tmp_path / "r"), "--work-dir", str(tmp_path / "w")]  # fmt: skip
        assert main(ENTRY, argv) == 0
    records = load_records(tmp_path / "r", PAPER)
    assert sorted(r.variant for r in records) == ["byol", "pixpro", "pixpro-ins", "simclr"]
    for rec in records:
        assert set(rec.metrics.test) == {"dense mIoU", "linear top-1", "kNN top-1"}
        assert all(0 <= v <= 100 for v in rec.metrics.test.values())
        assert rec.training.stopped_by == "budget"  # 2 epochs, no patience: below the recipe


def test_smoke_cifar_colour_images(tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = write_tiny_cifar(data)
    with temporary_dataset(spec_for_local_files("cifar10-subset", data, files)):
        argv = ["--scale", "smoke", "--dataset", "cifar10", "--variants", "pixpro,byol",
                "--data-root", str(data), "--results-dir", str(tmp_path / "r"),
                "--work-dir", str(tmp_path / "w")]  # fmt: skip
        assert main(ENTRY, argv) == 0
    records = load_records(tmp_path / "r", PAPER)
    assert sorted(r.variant for r in records) == ["byol", "pixpro"]
    for rec in records:
        assert rec.dataset == "cifar10" and rec.config["cifar_copy"] == "subset"
        assert rec.training.epochs is not None
        assert rec.training.best_epoch == rec.training.epochs - 1  # scored at the last epoch
        assert rec.metrics.validation["kNN top-1"] == rec.training.curve["valid kNN top-1"][-1]
        assert set(rec.dataset_files) == set(files)
        assert any("CIFAR-10" in d for d in rec.deviations)


def test_fashion_mnist_configs_keep_the_identity_of_their_records() -> None:
    """A field added for CIFAR-10 must not change what the Fashion-MNIST records were run with
    (the runner matches a seed to its record by this identity: --resume would run it again)."""
    records = [r for r in load_records(Path(__file__).resolve().parents[2] / "results", PAPER)
               if r.dataset == "fashion-mnist" and r.scale == "reduced"]  # fmt: skip
    for rec in records:
        config = resolve_config(ENTRY, "reduced", "fashion-mnist", rec.variant, ())
        assert config_identity(config.model_dump(mode="json")) == config_identity(rec.config)


def test_pasted_canvas_labels_follow_the_item_on_top() -> None:
    gen = torch.Generator().manual_seed(0)
    colours = torch.tensor([0.1, 0.4, 0.7, 0.9])
    items = colours.view(4, 1, 1, 1).expand(4, 3, 32, 32).clone()  # flat, no background
    labels = torch.tensor([2, 4, 6, 8])
    canvases, target = compose_canvases(items, labels, 20, gen, blend="paste")
    assert canvases.shape == (20, 3, 64, 64) and target.shape == (20, 64, 64)
    # every item covers its whole square, dark or not: the label is the colour's item + 1
    covered = target > 0
    assert torch.equal(covered, canvases[:, 0] > 0)
    by_colour = {round(float(c), 3): int(lab) + 1 for c, lab in zip(colours, labels, strict=True)}
    for value, label in by_colour.items():
        assert bool(((canvases[:, 0] - value).abs() < 1e-6).eq(target == label).all())
    assert bool((target == 0).any()) and len(target.unique()) > 2


def test_canvas_labels_follow_the_pasted_items() -> None:
    gen = torch.Generator().manual_seed(0)
    items = torch.zeros(4, 1, 28, 28)
    items[:, :, 6:22, 6:22] = 1.0  # bright squares on black
    labels = torch.tensor([3, 5, 7, 9])
    canvases, target = compose_canvases(items, labels, 20, gen, threshold=0.2)
    assert canvases.shape == (20, 1, 64, 64) and target.shape == (20, 64, 64)
    bright = canvases[:, 0] > 0.2
    assert torch.equal(target > 0, bright)  # labelled exactly where an item is bright
    assert set(target.unique().tolist()) <= {0, 4, 6, 8, 10}  # class + 1, background 0
    assert bool((target == 0).any()) and len(target.unique()) > 2


def test_mean_iou_hand_computed() -> None:
    target = torch.tensor([[0, 0, 1, 1]])
    prediction = torch.tensor([[0, 1, 1, 1]])
    # class 0: 1/2, class 1: 2/3 -> 58.33
    assert abs(mean_iou(prediction, target, 3) - 100 * (0.5 + 2 / 3) / 2) < 1e-9
    assert mean_iou(target, target, 3) == 100.0


def test_dense_probe_reads_informative_features() -> None:
    gen = torch.Generator().manual_seed(1)
    target = torch.randint(0, 11, (6, 8, 8), generator=gen)
    onehot = F.one_hot(target, 11).permute(0, 3, 1, 2).float()
    assert dense_probe_miou(onehot, target, onehot, target, steps=150, lr=0.1) > 99
    noise = torch.randn(6, 11, 8, 8, generator=gen)
    assert dense_probe_miou(noise[:3], target[:3], noise[3:], target[3:], steps=50) < 50


def test_views_differ_and_stay_in_range() -> None:
    x = torch.rand(6, 1, 28, 28)
    v1, v2, b1, b2 = byol_views(x, 16, 0.08, torch.Generator().manual_seed(0))
    assert v1.shape == v2.shape == (6, 1, 16, 16) and b1.shape == b2.shape == (6, 4)
    assert float(v1.min()) >= 0 and float(v1.max()) <= 1 and not torch.allclose(v1, v2)
    assert bool((b1 >= 0).all()) and bool((b1 <= 1).all())
