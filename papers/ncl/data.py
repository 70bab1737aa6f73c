"""User–item interactions in RecBole's atomic format, filtered and split as RecBole does.

NCL runs on RecBole: it reads ``<name>.inter`` (tab-separated, header ``field:type``), drops
interactions outside ``val_interval`` (ml-1m, yelp, amazon-books: rating >= 3), then repeats the
``user_inter_num_interval`` / ``item_inter_num_interval`` filter until it changes nothing (a
k-core), re-numbers users and items by first appearance, and splits each user's interactions in a
random order 8:1:1 (``RS`` + ``RO``, grouped by user). The split counts follow RecBole's
``_calcu_split_ids``: floor(ratio·n) for validation and test, the rest to training, then a
validation or test share that would be 0 < ratio·n < 1 takes one interaction from training while
training keeps more than one.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from common.data import checksums, ensure_files, register_folder_datasets
from common.errors import DataError
from common.interactions import Interactions

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here

# --dataset name -> (registry name, file under the data root): RecBole's atomic .inter file, or
# GroupLens's ml-1m.zip (its ratings.dat is what RecBole's ml-1m.inter is converted from).
FILES = {
    "ml-100k": ("movielens-100k", "movielens/ml-100k/ml-100k.inter"),
    "ml-1m": ("movielens-1m", "movielens/ml-1m.zip"),
}
ML1M_RATINGS = "ml-1m/ratings.dat"  # UserID::MovieID::Rating::Timestamp
SPLIT_RATIOS = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class Filter:
    """RecBole's filters as NCL's ``properties/<dataset>.yaml`` set them."""

    min_rating: float | None = None  # val_interval rating: "[min_rating,inf)"
    min_user_inter: int = 0  # user_inter_num_interval: "[min_user_inter,inf)"
    min_item_inter: int = 0  # item_inter_num_interval


@dataclass(frozen=True)
class GraphData:
    n_users: int
    n_items: int
    train: Interactions
    valid: Interactions
    test: Interactions
    files: dict[str, str]  # relative path -> checksum


def read_atomic_inter(path: Path) -> tuple[list[str], list[str], np.ndarray | None]:
    """User tokens, item tokens and ratings (None without a rating column) of a ``.inter`` file."""
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        names = [h.split(":")[0] for h in header]
        if "user_id" not in names or "item_id" not in names:
            raise DataError(f"{path}: header {header} lacks user_id:token and item_id:token")
        u, i = names.index("user_id"), names.index("item_id")
        r = names.index("rating") if "rating" in names else None
        users, items, ratings = [], [], []
        for number, line in enumerate(handle, 2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(names):
                raise DataError(f"{path}:{number}: {len(parts)} fields, header has {len(names)}")
            users.append(parts[u])
            items.append(parts[i])
            if r is not None:
                ratings.append(parts[r])
    if not users:
        raise DataError(f"{path} holds no interactions")
    return users, items, (np.asarray(ratings, dtype=np.float64) if r is not None else None)


def read_grouplens_zip(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """User tokens, item tokens and ratings of ``ml-1m/ratings.dat`` inside GroupLens's zip."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(ML1M_RATINGS) as raw:
            rows = [line.split("::") for line in io.TextIOWrapper(raw, encoding="latin-1")]
    except (KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not GroupLens's ml-1m.zip with {ML1M_RATINGS}: {exc}") from exc
    if not rows or any(len(r) != 4 for r in rows):
        raise DataError(f"{path}:{ML1M_RATINGS}: expected UserID::MovieID::Rating::Timestamp lines")
    return [r[0] for r in rows], [r[1] for r in rows], np.asarray([r[2] for r in rows], float)


def _codes(tokens: np.ndarray) -> np.ndarray:
    """0-based ids in order of first appearance (pandas.factorize, as RecBole's remapping)."""
    _, first, inverse = np.unique(tokens, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse]


def apply_filter(
    users: np.ndarray, items: np.ndarray, ratings: np.ndarray | None, spec: Filter
) -> np.ndarray:
    """Indices of the interactions kept: rating filter, then the k-core loop of RecBole."""
    keep = np.ones(len(users), dtype=bool)
    if spec.min_rating is not None:
        if ratings is None:
            raise DataError("a rating filter was asked for, but the file has no rating column")
        keep &= ratings >= spec.min_rating
    u, i = _codes(users), _codes(items)
    while spec.min_user_inter > 0 or spec.min_item_inter > 0:
        # RecBole counts both sides on the same snapshot, then drops both at once, until stable
        user_count = np.bincount(u[keep], minlength=u.max() + 1)
        item_count = np.bincount(i[keep], minlength=i.max() + 1)
        drop = keep & (
            (user_count[u] < spec.min_user_inter) | (item_count[i] < spec.min_item_inter)
        )
        if not drop.any():
            break
        keep &= ~drop
    return np.flatnonzero(keep)


def split_counts(n: np.ndarray, ratios: tuple[float, ...] = SPLIT_RATIOS) -> np.ndarray:
    """Per user, [train, valid, test] counts as RecBole's ``_calcu_split_ids``."""
    counts = np.zeros((len(n), len(ratios)), dtype=np.int64)
    for row, total in enumerate(n.tolist()):
        cnt = [math.floor(r * total) for r in ratios]  # int(r * total) for positive numbers
        cnt[0] = total - sum(cnt[1:])
        for k in range(1, len(ratios)):
            if cnt[0] <= 1:
                break
            if 0 < ratios[-k] * total < 1:
                cnt[-k] += 1
                cnt[0] -= 1
        counts[row] = cnt
    return counts


def split_by_user(user: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Indices of train, valid and test: each user's interactions in a random order, 8:1:1."""
    order = torch.randperm(len(user), generator=gen)
    order = order[torch.sort(user[order], stable=True).indices]  # grouped by user, random within
    n_per_user = torch.bincount(user, minlength=int(user.max()) + 1).numpy()
    counts = split_counts(n_per_user)
    start = np.concatenate([[0], np.cumsum(n_per_user)[:-1]])
    position = torch.arange(len(user)) - torch.from_numpy(start)[user[order]]
    train_end = torch.from_numpy(counts[:, 0])[user[order]]
    valid_end = train_end + torch.from_numpy(counts[:, 1])[user[order]]
    return order[position < train_end], order[(position >= train_end) & (position < valid_end)], \
        order[position >= valid_end]  # fmt: skip


Split = tuple[int, int, Interactions, Interactions, Interactions]


def build(users: np.ndarray, items: np.ndarray, ratings: np.ndarray | None, spec: Filter,
          split_seed: int) -> Split:  # fmt: skip
    kept = apply_filter(users, items, ratings, spec)
    if len(kept) == 0:
        raise DataError("no interaction survives the dataset filter")
    user = torch.from_numpy(_codes(users[kept]))
    item = torch.from_numpy(_codes(items[kept]))
    everything = Interactions(user, item)
    parts = split_by_user(user, torch.Generator().manual_seed(split_seed))
    n_users, n_items = int(user.max()) + 1, int(item.max()) + 1
    return n_users, n_items, *(everything.subset(p) for p in parts)  # type: ignore[return-value]


def load_dataset(name: str, data_root: Path, spec: Filter, split_seed: int) -> GraphData:
    if name not in FILES:
        raise DataError(f"no loader for dataset {name!r}; choose from {sorted(FILES)}")
    registry_name, rel = FILES[name]
    files = ensure_files(registry_name, data_root, [rel])
    reader = read_grouplens_zip if rel.endswith(".zip") else read_atomic_inter
    users, items, ratings = reader(files[rel])
    n_users, n_items, train, valid, test = build(
        np.asarray(users), np.asarray(items), ratings, spec, split_seed
    )
    return GraphData(n_users, n_items, train, valid, test, checksums(files, registry_name))
