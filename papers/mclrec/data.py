"""Sequential-recommendation data in the CoSeRec/ICLRec/MCLRec text format.

One line per user: ``user item item ...`` in time order, item ids 1..n (0 is padding). The
official MCLRec code converts these files to RecBole atomic files; RecBole re-numbers items by
first appearance, which on these files is the identity (checked in the tests), so ids are kept.

Leave-one-out, as RecBole's sequential ``LS`` split: every prefix is a sample (history = the
items before position t, truncated to the last ``max_len``, target = item t, t >= 1); a user's
last sample is the test sample, the one before it the validation sample, the rest train.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.data import checksums, ensure_files, register_folder_datasets
from common.errors import DataError

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here

FILES = {
    "beauty": ("seqrec-beauty", "seqrec/Beauty.txt"),
    "sports": ("seqrec-sports", "seqrec/Sports_and_Outdoors.txt"),
    "toys": ("seqrec-toys", "seqrec/Toys_and_Games.txt"),
    "yelp": ("seqrec-yelp", "seqrec/Yelp.txt"),
}


@dataclass(frozen=True)
class Samples:
    """Padded histories (left-aligned, right-padded with 0), their lengths and targets."""

    history: torch.Tensor  # [N, max_len] long
    length: torch.Tensor  # [N] long, >= 1
    target: torch.Tensor  # [N] long

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, index: torch.Tensor) -> Samples:
        return Samples(self.history[index], self.length[index], self.target[index])


@dataclass(frozen=True)
class SeqRecData:
    n_items: int  # largest item id; scores cover ids 0..n_items (0 masked)
    train: Samples
    valid: Samples
    test: Samples
    files: dict[str, str]  # relative path -> sha256


def read_sequences(path: Path) -> list[list[int]]:
    sequences = []
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            try:
                items = [int(x) for x in parts[1:]]
            except ValueError:
                raise DataError(
                    f"{path}:{number}: expected 'user item item ...' integers"
                ) from None
            if len(items) < 3:
                raise DataError(f"{path}:{number}: a user needs >= 3 items for leave-one-out")
            sequences.append(items)
    if not sequences:
        raise DataError(f"{path} holds no users")
    return sequences


def _samples(rows: list[tuple[list[int], int]], max_len: int) -> Samples:
    history = np.zeros((len(rows), max_len), dtype=np.int64)
    length = np.empty(len(rows), dtype=np.int64)
    target = np.empty(len(rows), dtype=np.int64)
    for i, (hist, tgt) in enumerate(rows):
        hist = hist[-max_len:]
        history[i, : len(hist)] = hist
        length[i], target[i] = len(hist), tgt
    return Samples(torch.from_numpy(history), torch.from_numpy(length), torch.from_numpy(target))


def split_leave_one_out(sequences: list[list[int]], max_len: int) -> tuple[Samples, ...]:
    train, valid, test = [], [], []
    for seq in sequences:
        n = len(seq)
        train += [(seq[:t], seq[t]) for t in range(1, n - 2)]
        valid.append((seq[: n - 2], seq[n - 2]))
        test.append((seq[: n - 1], seq[n - 1]))
    return _samples(train, max_len), _samples(valid, max_len), _samples(test, max_len)


def subset_users(sequences: list[list[int]], fraction: float, seed: int) -> list[list[int]]:
    """A seeded random ``fraction`` of the users, each with all of their items (file order kept).

    The reduced recipe shrinks the problem, not the training: fewer users, every prefix of each.
    """
    if fraction >= 1.0:
        return sequences
    gen = torch.Generator().manual_seed(seed)
    keep = torch.randperm(len(sequences), generator=gen)[: kept_users(len(sequences), fraction)]
    return [sequences[i] for i in sorted(keep.tolist())]


def kept_users(n_users: int, fraction: float) -> int:
    """How many of ``n_users`` a ``user_fraction`` keeps (at least one)."""
    return n_users if fraction >= 1.0 else max(1, int(n_users * fraction))


def load_dataset(
    name: str, data_root: Path, max_len: int, user_fraction: float = 1.0, subset_seed: int = 0
) -> SeqRecData:
    registry_name, rel = FILES[name]
    files = ensure_files(registry_name, data_root, [rel])
    all_sequences = read_sequences(files[rel])
    sequences = subset_users(all_sequences, user_fraction, subset_seed)
    train, valid, test = split_leave_one_out(sequences, max_len)
    n_items = max(max(s) for s in all_sequences)  # the item set is kept whole
    return SeqRecData(n_items, train, valid, test, checksums(files, registry_name))
