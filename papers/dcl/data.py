"""Image datasets in their official formats: CIFAR-10 python batches and Fashion-MNIST IDX.

Images come back as float tensors in [0, 1], [N, C, H, W]. A validation split for model
selection is carved from the training images (never the test split).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from common.data import checksums, ensure_files, register_folder_datasets
from common.errors import DataError
from common.vision import ImageData, Split, read_fashion_mnist

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here

# CIFAR-10 copies: the full official archive (downloaded and extracted, md5-verified) or the
# real 5,170/1,017-image subset on hand offline, both in the official python-batch layout.
CIFAR_COPIES = {
    "full": ("cifar10", "images/cifar-10/cifar-10-batches-py"),
    "subset": ("cifar10-subset", "images/cifar-10-subset/cifar-10-batches-py"),
}


def read_cifar_batch(path: Path) -> Split:
    """One official CIFAR-10 python batch (a pickled dict with ``data`` N×3072 and ``labels``)."""
    try:
        with path.open("rb") as handle:
            batch = pickle.load(handle, encoding="latin1")
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
        raise DataError(f"{path} is not a CIFAR-10 python batch: {exc}") from exc
    return Split(torch.from_numpy(data).float() / 255.0, torch.from_numpy(labels))


def _cat(splits: list[Split]) -> Split:
    return Split(torch.cat([s.images for s in splits]), torch.cat([s.labels for s in splits]))


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
        spec_name, folder = CIFAR_COPIES[cifar_copy]
        train_files = [f"{folder}/data_batch_{i}" for i in range(1, 6)]
        files = ensure_files(spec_name, data_root, [*train_files, f"{folder}/test_batch"])
        train = _cat([read_cifar_batch(files[p]) for p in train_files])
        test = read_cifar_batch(files[f"{folder}/test_batch"])
        sums = checksums(files, spec_name)
    elif name == "fashion-mnist":
        splits, sums = read_fashion_mnist(data_root)
        train, test = splits["train"], splits["test"]
    else:
        raise DataError(f"unknown image dataset {name!r}; choose cifar10 or fashion-mnist")
    train, valid = _carve_validation(
        _subset(train, train_size, split_seed), valid_fraction, split_seed
    )
    return ImageData(train, valid, _subset(test, test_size, split_seed + 1), 10, sums)
