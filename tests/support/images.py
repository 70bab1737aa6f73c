"""Tiny image files in official layouts, written by tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from common.vision import FASHION_MNIST_FILES


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
