"""The image pieces the vision papers share: IDX files, Fashion-MNIST, crops, kNN, linear probe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from common.errors import DataError
from common.eval.probes import knn_top1, linear_probe_top1
from common.vision import (
    FASHION_MNIST,
    random_grayscale,
    random_resized_crop,
    read_fashion_mnist,
    read_idx,
)
from tests.support.datasets import spec_for_local_files, temporary_dataset
from tests.support.images import write_idx, write_tiny_fashion_mnist


def test_idx_roundtrip(tmp_path: Path) -> None:
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    write_idx(tmp_path / "x.gz", images)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), images)


def test_a_truncated_idx_file_is_an_error(tmp_path: Path) -> None:
    write_idx(tmp_path / "x.gz", np.zeros((2, 3, 3)))
    import gzip

    raw = gzip.decompress((tmp_path / "x.gz").read_bytes())
    (tmp_path / "x.gz").write_bytes(gzip.compress(raw[:-1]))
    with pytest.raises(DataError, match=r"header says \[2, 3, 3\], body holds 17 values"):
        read_idx(tmp_path / "x.gz")


def test_fashion_mnist_splits_are_read_verified(tmp_path: Path) -> None:
    files = write_tiny_fashion_mnist(tmp_path, train=6, test=4)
    with temporary_dataset(spec_for_local_files(FASHION_MNIST, tmp_path, files)):
        splits, sums = read_fashion_mnist(tmp_path)
    assert splits["train"].images.shape == (6, 1, 28, 28) and splits["test"].labels.shape == (4,)
    assert float(splits["train"].images.max()) <= 1.0 and splits["test"].labels.dtype == torch.long
    assert sorted(sums) == sorted(files)
    raw = read_idx(tmp_path / files[0])
    assert torch.equal(splits["train"].images[:, 0] * 255, torch.from_numpy(raw.copy()).float())


def test_knn_hand_computed() -> None:
    # Bank: two class-0 points near +x, one class-1 point at +y. Query near +x -> class 0.
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    queries = torch.tensor([[1.0, 0.05], [0.05, 1.0]])
    assert knn_top1(bank, labels, queries, torch.tensor([0, 1]), 2, k=2) == 100.0


def test_knn_votes_are_weighted_by_exp_similarity_over_temperature() -> None:
    # k = 3: one class-1 point on the query (cos 1), two class-0 points at cos 0.8. A plain
    # majority says class 0; τ = 0.1 weighs exp(10) = 22026 against 2·exp(8) = 5962: class 1;
    # τ = 1 weighs e = 2.72 against 2·e^0.8 = 4.45: class 0 again.
    bank = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.8, -0.6]])
    labels = torch.tensor([1, 0, 0])
    query, label = torch.tensor([[1.0, 0.0]]), torch.tensor([1])
    assert knn_top1(bank, labels, query, label, 2, k=3, temperature=0.1) == 100.0
    assert knn_top1(bank, labels, query, label, 2, k=3, temperature=1.0) == 0.0


def test_knn_and_linear_probe_on_separable_features() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.2], [0.0, 1.0], [0.1, 0.9]])
    bank_labels = torch.tensor([0, 0, 1, 1])
    queries = torch.tensor([[1.0, 0.1], [0.2, 1.0], [0.95, 0.0]])
    assert knn_top1(bank, bank_labels, queries, torch.tensor([0, 1, 0]), 2, k=3) == 100.0
    assert knn_top1(bank, bank_labels, queries, torch.tensor([1, 0, 1]), 2, k=3) == 0.0
    right = torch.tensor([0, 1, 0])
    assert linear_probe_top1(bank, bank_labels, queries, right, 2, steps=100) == 100.0


@pytest.mark.parametrize("padding", ["reflection", "border"])
def test_crops_keep_orientation_or_mirror_it_and_boxes_say_which(padding: str) -> None:
    # A horizontal ramp stays monotonic along each row: increasing, or decreasing if flipped;
    # a flipped crop's box has x_left > x_right.
    ramp = torch.linspace(0, 1, 16).expand(8, 3, 16, 16).contiguous()
    gen = torch.Generator().manual_seed(0)
    out, boxes = random_resized_crop(ramp, (16, 16), (0.5, 1.0), gen, padding)
    steps = out[:, 0, 8, 1:] - out[:, 0, 8, :-1]
    increasing = torch.tensor([bool((row >= -1e-5).all()) for row in steps])
    decreasing = torch.tensor([bool((row <= 1e-5).all()) for row in steps])
    assert bool((increasing | decreasing).all())
    assert set(increasing.tolist()) == {True, False}  # both flips occur
    assert torch.equal(boxes[:, 0] > boxes[:, 2], ~increasing)
    assert bool((boxes >= 0).all()) and bool((boxes <= 1).all())


def test_random_grayscale_greys_a_p_share_of_colour_images() -> None:
    x = torch.rand(400, 3, 4, 4)
    out = random_grayscale(x, 0.25, torch.Generator().manual_seed(0))
    grey = (out[:, 0] == out[:, 1]).flatten(1).all(dim=1) & (out[:, 1] == out[:, 2]).flatten(1).all(
        1
    )
    assert 0.18 < float(grey.float().mean()) < 0.32
    assert torch.equal(out[~grey], x[~grey])
    single = torch.rand(5, 1, 4, 4)
    assert random_grayscale(single, 1.0, torch.Generator()) is single
