"""Tiny image files in official layouts, written by tests."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from common.vision import CIFAR_COPIES, FASHION_MNIST_FILES


def write_idx(path: Path, array: np.ndarray) -> None:
    """``array`` as a gzip-compressed unsigned-byte IDX file (the MNIST format)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def write_tiny_fashion_mnist(root: Path, train: int = 60, test: int = 30) -> list[str]:
    """Random Fashion-MNIST-shaped train and test files under ``root``; their paths."""
    rng = np.random.default_rng(0)
    for part, n in (("train", train), ("test", test)):
        images, labels = FASHION_MNIST_FILES[part]
        write_idx(root / images, rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / labels, rng.integers(0, 10, n))
    return [path for pair in FASHION_MNIST_FILES.values() for path in pair]


def write_tiny_cifar(root: Path, per_batch: int = 12, copy: str = "subset") -> list[str]:
    """Random CIFAR-10 python batches (data_batch_1..5, test_batch) of one of the copies under
    ``root``; their paths."""
    folder = CIFAR_COPIES[copy][1]
    names = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    rng = np.random.default_rng(0)
    for name in names:
        (root / folder).mkdir(parents=True, exist_ok=True)
        batch = {"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 "labels": [int(v) for v in rng.integers(0, 10, per_batch)]}  # fmt: skip
        (root / folder / name).write_bytes(pickle.dumps(batch))
    return [f"{folder}/{name}" for name in names]
