"""Fashion-MNIST (official IDX files) and CIFAR-10 (official python batches), checksum-verified
through ``common.data``.

Images come back as float tensors in [0, 1], [N, C, H, W]. A seeded validation part is carved
from the training images for model selection; the test split is used once, at the end.
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.data import register_folder_datasets
from common.errors import DataError
from common.vision import ImageData, Split, read_cifar10, read_fashion_mnist

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here
DATASETS = ("fashion-mnist", "cifar10")


def _take(split: Split, index: torch.Tensor) -> Split:
    return Split(split.images[index], split.labels[index])


def load_images(
    name: str,
    data_root: Path,
    *,
    train_size: int | None,
    test_size: int | None,
    valid_fraction: float,
    split_seed: int = 0,
    cifar_copy: str = "subset",
) -> ImageData:
    """A seeded ``train_size`` of the training images (all when None or more than there are),
    ``valid_fraction`` of them held out for validation, and a seeded ``test_size`` of the test
    split. ``cifar_copy`` chooses the CIFAR-10 copy (``common.vision.CIFAR_COPIES``)."""
    if name == "fashion-mnist":
        parts, files = read_fashion_mnist(data_root)
    elif name == "cifar10":
        parts, files = read_cifar10(data_root, cifar_copy)
    else:
        raise DataError(f"unknown image dataset {name!r}; choose from {list(DATASETS)}")
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
