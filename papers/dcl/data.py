"""Image datasets in their official formats: CIFAR-10 python batches and Fashion-MNIST IDX.

Images come back as float tensors in [0, 1], [N, C, H, W]. A validation split for model
selection is carved from the training images (never the test split).
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.data import register_folder_datasets
from common.errors import DataError
from common.vision import ImageData, Split, read_cifar10, read_fashion_mnist

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here


def _subset(split: Split, size: int | None, seed: int) -> Split:
    if size is None or size >= len(split.labels):
        return split
    keep = torch.randperm(len(split.labels), generator=torch.Generator().manual_seed(seed))[:size]
    return Split(split.images[keep], split.labels[keep])


def _carve_validation(train: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    order = torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(seed))
    n_valid = int(len(order) * fraction)

    def pick(idx: torch.Tensor) -> Split:
        return Split(train.images[idx], train.labels[idx])

    return pick(order[n_valid:]), pick(order[:n_valid])


def load_images(
    name: str,
    data_root: Path,
    *,
    train_size: int | None,
    test_size: int | None,
    valid_fraction: float,
    split_seed: int = 0,
    cifar_copy: str = "full",
) -> ImageData:
    """Train (minus a seeded validation part), validation and test splits of ``name``."""
    if name == "cifar10":
        splits, sums = read_cifar10(data_root, cifar_copy)
    elif name == "fashion-mnist":
        splits, sums = read_fashion_mnist(data_root)
    else:
        raise DataError(f"unknown image dataset {name!r}; choose cifar10 or fashion-mnist")
    train, test = splits["train"], splits["test"]
    train, valid = _carve_validation(
        _subset(train, train_size, split_seed), valid_fraction, split_seed
    )
    return ImageData(train, valid, _subset(test, test_size, split_seed + 1), 10, sums)
