"""Fashion-MNIST in its official IDX layout (checksum-verified through ``common.data``).

Images come back as float tensors in [0, 1], [N, 1, 28, 28]. A seeded validation part is carved
from the training images for model selection; the test split is used once, at the end.
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.data import register_folder_datasets
from common.vision import ImageData, Split, read_fashion_mnist

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here


def _take(split: Split, index: torch.Tensor) -> Split:
    return Split(split.images[index], split.labels[index])


def load_fashion_mnist(
    data_root: Path,
    *,
    train_size: int | None,
    test_size: int | None,
    valid_fraction: float,
    split_seed: int = 0,
) -> ImageData:
    parts, files = read_fashion_mnist(data_root)
    gen = torch.Generator().manual_seed(split_seed)
    train = parts["train"]
    order = torch.randperm(len(train.labels), generator=gen)
    if train_size is not None:
        order = order[:train_size]
    n_valid = int(len(order) * valid_fraction)
    test = parts["test"]
    if test_size is not None and test_size < len(test.labels):
        test = _take(test, torch.randperm(len(test.labels), generator=gen)[:test_size])
    return ImageData(
        train=_take(train, order[n_valid:]),
        valid=_take(train, order[:n_valid]),
        test=test,
        num_classes=10,
        files=files,
    )
