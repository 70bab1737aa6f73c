"""Fashion-MNIST in its official IDX layout (checksum-verified through ``common.data``).

Images come back as float tensors in [0, 1], [N, 1, 28, 28]. A seeded validation part is carved
from the training images for model selection; the test split is used once, at the end.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.data import checksums, ensure_files, register_folder_datasets
from common.errors import DataError

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here

FOLDER = "images/fashion-mnist"
FILES = {
    "train": (f"{FOLDER}/train-images-idx3-ubyte.gz", f"{FOLDER}/train-labels-idx1-ubyte.gz"),
    "test": (f"{FOLDER}/t10k-images-idx3-ubyte.gz", f"{FOLDER}/t10k-labels-idx1-ubyte.gz"),
}


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # [N, C, H, W] in [0, 1]
    labels: torch.Tensor  # [N] long


@dataclass(frozen=True)
class Images:
    train: Split
    valid: Split
    test: Split
    num_classes: int
    files: dict[str, str]


def read_idx(path: Path) -> np.ndarray:
    """A gzip-compressed unsigned-byte IDX array (magic 0x0000 08 <ndim>, big-endian sizes)."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says {shape}, body holds {body.size} values")
    return body.reshape(shape)


def _take(split: Split, index: torch.Tensor) -> Split:
    return Split(split.images[index], split.labels[index])


def load_fashion_mnist(
    data_root: Path,
    *,
    train_size: int | None,
    test_size: int | None,
    valid_fraction: float,
    split_seed: int = 0,
) -> Images:
    paths = ensure_files("fashion-mnist", data_root, [*FILES["train"], *FILES["test"]])
    parts = {}
    for name, (images, labels) in FILES.items():
        x = torch.from_numpy(read_idx(paths[images]).copy()).float()[:, None] / 255.0
        y = torch.from_numpy(read_idx(paths[labels]).astype(np.int64))
        if len(x) != len(y):
            raise DataError(f"Fashion-MNIST {name}: {len(x)} images but {len(y)} labels")
        parts[name] = Split(x, y)
    gen = torch.Generator().manual_seed(split_seed)
    train = parts["train"]
    order = torch.randperm(len(train.labels), generator=gen)
    if train_size is not None:
        order = order[:train_size]
    n_valid = int(len(order) * valid_fraction)
    test = parts["test"]
    if test_size is not None and test_size < len(test.labels):
        test = _take(test, torch.randperm(len(test.labels), generator=gen)[:test_size])
    return Images(
        train=_take(train, order[n_valid:]),
        valid=_take(train, order[:n_valid]),
        test=test,
        num_classes=10,
        files=checksums(paths, "fashion-mnist"),
    )
