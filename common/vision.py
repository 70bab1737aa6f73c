"""Image data and augmentation pieces that the vision papers (dcl, pixpro) share.

* IDX files (MNIST, Fashion-MNIST) and the official Fashion-MNIST train/test splits, and the
  CIFAR-10 python batches (the full official archive or the real subset on hand offline), read
  checksum-verified through :mod:`common.data` as float images in [0, 1] and long labels;
* batched-tensor augmentation primitives (no torchvision, which does not load beside the CPU
  torch here): a random resized crop with horizontal flip as one affine resampling (returning
  each crop's box) and random grayscale. Every random draw comes from the caller's generator,
  in a fixed order, so a paper's views are reproducible.
"""

from __future__ import annotations

import gzip
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from common.data import checksums, ensure_files
from common.errors import DataError

FASHION_MNIST = "fashion-mnist"  # the dataset in common/datasets.toml
FASHION_MNIST_DIR = "images/fashion-mnist"
FASHION_MNIST_FILES = {
    "train": (
        f"{FASHION_MNIST_DIR}/train-images-idx3-ubyte.gz",
        f"{FASHION_MNIST_DIR}/train-labels-idx1-ubyte.gz",
    ),
    "test": (
        f"{FASHION_MNIST_DIR}/t10k-images-idx3-ubyte.gz",
        f"{FASHION_MNIST_DIR}/t10k-labels-idx1-ubyte.gz",
    ),
}
# CIFAR-10 copies (common/datasets.toml): the full official archive (downloaded and extracted,
# md5-verified) or the real 5,170/1,017-image subset on hand offline, both in the official
# python-batch layout.
CIFAR_COPIES = {
    "full": ("cifar10", "images/cifar-10/cifar-10-batches-py"),
    "subset": ("cifar10-subset", "images/cifar-10-subset/cifar-10-batches-py"),
}
_LUMA = torch.tensor([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Split:
    images: Tensor  # [N, C, H, W] float in [0, 1]
    labels: Tensor  # [N] long


@dataclass(frozen=True)
class ImageData:
    """A paper's splits of an image dataset and the verified checksums of the files read."""

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


def read_fashion_mnist(data_root: Path) -> tuple[dict[str, Split], dict[str, str]]:
    """The official ``train`` and ``test`` splits ([N, 1, 28, 28] in [0, 1]) and the verified
    checksums of the four files."""
    files = [path for pair in FASHION_MNIST_FILES.values() for path in pair]
    paths = ensure_files(FASHION_MNIST, data_root, files)
    splits = {}
    for name, (images, labels) in FASHION_MNIST_FILES.items():
        x = torch.from_numpy(read_idx(paths[images]).copy()).float()[:, None] / 255.0
        y = torch.from_numpy(read_idx(paths[labels]).astype(np.int64))
        if len(x) != len(y):
            raise DataError(f"Fashion-MNIST {name}: {len(x)} images but {len(y)} labels")
        splits[name] = Split(x, y)
    return splits, checksums(paths, FASHION_MNIST)


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


def read_cifar10(data_root: Path, copy: str = "full") -> tuple[dict[str, Split], dict[str, str]]:
    """The ``train`` (data_batch_1..5 in order) and ``test`` splits ([N, 3, 32, 32] in [0, 1]) of
    one of :data:`CIFAR_COPIES`, and the verified checksums of the six files."""
    if copy not in CIFAR_COPIES:
        raise DataError(f"unknown CIFAR-10 copy {copy!r}; choose from {sorted(CIFAR_COPIES)}")
    name, folder = CIFAR_COPIES[copy]
    train_files = [f"{folder}/data_batch_{i}" for i in range(1, 6)]
    paths = ensure_files(name, data_root, [*train_files, f"{folder}/test_batch"])
    parts = [read_cifar_batch(paths[f]) for f in train_files]
    train = Split(torch.cat([s.images for s in parts]), torch.cat([s.labels for s in parts]))
    test = read_cifar_batch(paths[f"{folder}/test_batch"])
    return {"train": train, "test": test}, checksums(paths, name)


def uniform(n: int, low: float, high: float, gen: torch.Generator) -> Tensor:
    """``n`` draws from U(low, high)."""
    return low + (high - low) * torch.rand(n, generator=gen)


def coin(n: int, p: float, gen: torch.Generator) -> Tensor:
    """``n`` draws of a p-coin, shaped [n, 1, 1, 1] to select whole images."""
    return (torch.rand(n, generator=gen) < p).view(-1, 1, 1, 1)


def random_resized_crop(
    x: Tensor,
    size: tuple[int, int],
    scale: tuple[float, float],
    gen: torch.Generator,
    padding_mode: str,
    flip_p: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """Random resized crops (area fraction in ``scale``, aspect ratio 3/4–4/3) of ``x``
    [B, C, H, W], flipped horizontally with probability ``flip_p``, resampled to ``size``
    (height, width) in one affine step; and each crop's box ``(x_left, y_top, x_right,
    y_bottom)`` [B, 4] in the source's [0, 1] coordinates, x entries swapped when flipped."""
    b = x.shape[0]
    area = uniform(b, *scale, gen)
    ratio = torch.exp(uniform(b, math.log(3 / 4), math.log(4 / 3), gen))
    w = torch.sqrt(area * ratio).clamp(max=1.0)  # fraction of the image width
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (1 - w) * uniform(b, -1, 1, gen)  # centre in [-1, 1] coordinates
    cy = (1 - h) * uniform(b, -1, 1, gen)
    flip = torch.rand(b, generator=gen) < flip_p
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w * torch.where(flip, -1.0, 1.0), cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, [b, x.shape[1], *size], align_corners=False)
    views = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    left, right = (1 + cx - w) / 2, (1 + cx + w) / 2
    top, bottom = (1 + cy - h) / 2, (1 + cy + h) / 2
    boxes = torch.stack(
        [torch.where(flip, right, left), top, torch.where(flip, left, right), bottom], dim=1
    )
    return views, boxes


def to_gray(x: Tensor) -> Tensor:
    """Luma (ITU-R 601) of RGB images, [B, 1, H, W]; grayscale images as they are."""
    if x.shape[1] == 1:
        return x
    return (x * _LUMA.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)


def random_grayscale(x: Tensor, p: float, gen: torch.Generator) -> Tensor:
    """Each RGB image turned to gray (on every channel) with probability ``p``."""
    if x.shape[1] == 1:
        return x
    return torch.where(coin(x.shape[0], p, gen), to_gray(x).expand_as(x), x)
