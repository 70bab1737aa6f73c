"""Smoke run of every arm on tiny generated Fashion-MNIST files, and the dense task's parts."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common.records import load_records
from common.runner import main
from tests.support.datasets import spec_for_local_files, temporary_dataset

from .__main__ import ENTRY
from .augment import byol_views
from .data import FILES, read_idx
from .dense import compose_canvases, dense_probe_miou, mean_iou

PAPER = ENTRY.folder.name  # records are filed under the folder's name (a fork has its own)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def write_tiny_fashion_mnist(root: Path) -> list[str]:
    rng = np.random.default_rng(0)
    for part, n in (("train", 60), ("test", 30)):
        images, labels = FILES[part]
        write_idx(root / images, rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / labels, rng.integers(0, 10, n))
    return [p for pair in FILES.values() for p in pair]


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


def test_idx_roundtrip(tmp_path: Path) -> None:
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    write_idx(tmp_path / "x.gz", images)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), images)


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


def test_knn_and_linear_probe_on_separable_features() -> None:
    from .evaluate import knn_top1, linear_top1

    bank = torch.tensor([[1.0, 0.0], [0.9, 0.2], [0.0, 1.0], [0.1, 0.9]])
    bank_labels = torch.tensor([0, 0, 1, 1])
    queries = torch.tensor([[1.0, 0.1], [0.2, 1.0], [0.95, 0.0]])
    assert knn_top1(bank, bank_labels, queries, torch.tensor([0, 1, 0]), 2, k=3) == 100.0
    assert knn_top1(bank, bank_labels, queries, torch.tensor([1, 0, 1]), 2, k=3) == 0.0
    assert linear_top1(bank, bank_labels, queries, torch.tensor([0, 1, 0]), 2, steps=100) == 100.0
