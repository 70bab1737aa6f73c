"""Interactions and item content for the two settings of this folder.

Amazon Baby / Sports / Clothing: the official fixed splits (``train.npy``, ``valid.npy``,
``test.npy``: int64 arrays of shape (2, N), row 0 user ids, row 1 item ids, both 0-based and
contiguous) and the item features the official loader reads from the same folder:
``image_feat.npy`` (n_items x 4096, VGG features as MMRec builds them) and ``text_feat.npy``
(n_items x 384, all-MiniLM-L6-v2 sentence embeddings). The features are published only on
Hugging Face (MrShouxingMa/Baby, /Sports, /Clothing); the registry verifies a download against
the sha256 Hugging Face publishes in its ``X-Linked-Etag`` header (no checksum is published in
the official repository or README), then checks the shape against the split.

MovieLens-100K (RecBole's atomic files): a seeded per-user random 8:1:1 split of all 100,000
ratings as implicit feedback; a text modality built as MMRec builds ``text_feat.npy``
(all-MiniLM-L6-v2, mean pooling, L2-normalised, over one sentence per item) and, in place of
images, a knowledge-graph modality: a seeded truncated SVD of the item x entity incidence
matrix (the item's linked Freebase entity and its one-hop neighbours in ``ml-100k.kg``). The KG
modality is NOT visual; it stands in for the second modality only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import svds
from torch import Tensor

from common.data import checksums, ensure_files, register_folder_datasets
from common.errors import DataError
from common.interactions import Interactions

AMAZON = ("baby", "sports", "clothing")
SPLITS = ("train", "valid", "test")
VISUAL_DIM, TEXT_DIM = 4096, 384
ML100K = "movielens-100k"
ML100K_FILES = {ext: f"movielens/ml-100k/ml-100k.{ext}" for ext in ("inter", "item", "kg", "link")}

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here


@dataclass(frozen=True)
class Dataset:
    n_users: int
    n_items: int
    train: Interactions
    valid: Interactions
    test: Interactions
    visual: Tensor | None  # n_items x d_v, or None (ID-only variants need no features)
    text: Tensor | None  # n_items x d_t
    files: dict[str, str]  # relative path -> verified checksum
    notes: tuple[str, ...] = ()


def split_files(name: str) -> list[str]:
    return [f"rearm/{name}/{part}.npy" for part in SPLITS]


def feature_files(name: str) -> list[str]:
    return [f"rearm/{name}/image_feat.npy", f"rearm/{name}/text_feat.npy"]


def read_split(path: Path) -> Interactions:
    """One official split file: an int array of shape (2, N) (users, items)."""
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path}: not a plain numeric .npy array ({exc})") from exc
    if array.ndim != 2 or array.shape[0] != 2 or array.dtype.kind not in "iu":
        raise DataError(
            f"{path}: expected an int array of shape (2, N), got {array.dtype} {array.shape}"
        )
    if array.size and array.min() < 0:
        raise DataError(f"{path}: negative ids")
    data = torch.from_numpy(array.astype(np.int64))
    return Interactions(data[0].clone(), data[1].clone())


def sizes_of(parts: list[Interactions]) -> tuple[int, int]:
    """The official loader's n_users and n_items: distinct ids over the three splits; they must
    be 0..n-1 (its graphs index by id)."""
    users = torch.unique(torch.cat([p.user for p in parts]))
    items = torch.unique(torch.cat([p.item for p in parts]))
    for what, ids in (("user", users), ("item", items)):
        if int(ids[-1]) != len(ids) - 1:
            raise DataError(f"{what} ids are not contiguous 0..{len(ids) - 1} (max {int(ids[-1])})")
    return len(users), len(items)


def read_features(path: Path, n_items: int, dim: int) -> Tensor:
    """An official feature matrix (float n_items x dim); a wrong shape is a one-line error."""
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path}: not a plain numeric .npy array ({exc})") from exc
    if array.shape != (n_items, dim) or array.dtype.kind != "f":
        raise DataError(
            f"{path}: expected float ({n_items}, {dim}), got {array.dtype} {array.shape}"
        )
    if not np.isfinite(array).all():
        raise DataError(f"{path}: non-finite values")
    return torch.from_numpy(array.astype(np.float32))


def load_amazon(name: str, data_root: Path, features: bool) -> Dataset:
    registry = f"rearm-{name}"
    files = ensure_files(registry, data_root, split_files(name))
    train, valid, test = (read_split(files[rel]) for rel in split_files(name))
    n_users, n_items = sizes_of([train, valid, test])
    sums = checksums(files, registry)
    visual = text = None
    if features:
        feat_registry = f"rearm-{name}-features"
        rels = feature_files(name)
        try:
            found = ensure_files(feat_registry, data_root, rels)
        except DataError as exc:
            raise DataError(
                f"the {name} item features are missing ({exc}); download image_feat.npy and "
                f"text_feat.npy from https://huggingface.co/datasets/MrShouxingMa/"
                f"{name.capitalize()} into <data root>/rearm/{name}/ with each file's sha256 "
                "(Hugging Face's file page) in <file>.sha256"
            ) from None
        visual = read_features(found[rels[0]], n_items, VISUAL_DIM)
        text = read_features(found[rels[1]], n_items, TEXT_DIM)
        sums.update(checksums(found, feat_registry))
    return Dataset(n_users, n_items, train, valid, test, visual, text, sums)


# ---------------------------------------------------------------------------------------------
# MovieLens-100K


def read_atomic(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header field names and rows of a RecBole atomic file (tab-separated)."""
    with path.open(encoding="utf-8") as handle:
        names = [h.split(":")[0] for h in handle.readline().rstrip("\n").split("\t")]
        rows = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    for number, row in enumerate(rows, 2):
        if len(row) != len(names):
            raise DataError(f"{path}:{number}: {len(row)} fields, header has {len(names)}")
    return names, rows


def _column(names: list[str], rows: list[list[str]], field: str, path: Path) -> list[str]:
    if field not in names:
        raise DataError(f"{path}: no {field} column (header {names})")
    j = names.index(field)
    return [r[j] for r in rows]


def seeded_split(user: Tensor, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Indices of train / valid / test: each user's interactions in a seeded random order;
    floor(10%) to validation, floor(10%) to test, the rest to training."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(user), generator=gen)
    order = order[torch.sort(user[order], stable=True).indices]
    counts = torch.bincount(user)
    start = torch.cumsum(counts, 0) - counts
    position = torch.arange(len(user)) - start[user[order]]
    n = counts[user[order]]
    held = torch.div(n, 10, rounding_mode="floor")
    valid_from, test_from = n - 2 * held, n - held
    return (
        order[position < valid_from],
        order[(position >= valid_from) & (position < test_from)],
        order[position >= test_from],
    )


def item_sentence(title: str, year: str, genres: str) -> str:
    """MMRec's ``3feat-encoder`` sentence (title + ' ' + brand + ' ' + each category + ' ' +
    description) with MovieLens's fields in those places: title, release year, genres."""
    return title + " " + year + " " + "".join(g + " " for g in genres.split())


TextEncoder = Callable[[list[str]], Tensor]


def minilm_encoder(batch_size: int = 64) -> TextEncoder:
    """all-MiniLM-L6-v2 as sentence-transformers runs it (modules.json: Transformer with
    max_seq_length 256, mean pooling over the attention mask, Normalize), offline."""
    from common.text import load_encoder

    tokenizer, model = load_encoder("all-minilm-l6-v2")
    model.eval()

    @torch.inference_mode()
    def encode(sentences: list[str]) -> Tensor:
        out = []
        for start in range(0, len(sentences), batch_size):
            batch = tokenizer(
                sentences[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=1))
        return torch.cat(out)

    return encode


def kg_features(
    item_entity: list[tuple[int, str]],
    triples: list[tuple[str, str]],
    n_items: int,
    dim: int,
    seed: int,
) -> Tensor:
    """Rows U_k·S_k of a seeded truncated SVD of the binary item x entity matrix, where an item's
    entities are its linked entity and every entity one KG edge away (either direction)."""
    neighbours: dict[str, set[str]] = {}
    for head, tail in triples:
        neighbours.setdefault(head, set()).add(tail)
        neighbours.setdefault(tail, set()).add(head)
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for item, entity in item_entity:
        for e in sorted({entity} | neighbours.get(entity, set())):
            rows.append(item)
            cols.append(vocabulary.setdefault(e, len(vocabulary)))
    if not rows:
        raise DataError("no item is linked to the knowledge graph")
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_items, len(vocabulary)))
    matrix.data[:] = 1.0  # an entity reached twice counts once
    k = min(dim, min(matrix.shape) - 1)
    v0 = np.random.default_rng(seed).standard_normal(min(matrix.shape))
    u, s, _ = svds(matrix.astype(np.float64), k=k, v0=v0)
    order = np.argsort(-s)
    return torch.from_numpy((u[:, order] * s[order]).astype(np.float32))


def load_movielens(
    data_root: Path,
    split_seed: int,
    features: bool,
    kg_dim: int,
    cache: Path | None,
    encoder: Callable[[], TextEncoder] | None = None,
) -> Dataset:
    rels = list(ML100K_FILES.values()) if features else [ML100K_FILES["inter"]]
    files = ensure_files(ML100K, data_root, rels)
    inter = files[ML100K_FILES["inter"]]
    names, rows = read_atomic(inter)
    user_tok = _column(names, rows, "user_id", inter)
    item_tok = _column(names, rows, "item_id", inter)
    if features:  # items numbered in .item order, so that features and ids agree
        item_path = files[ML100K_FILES["item"]]
        inames, irows = read_atomic(item_path)
        item_ids = _column(inames, irows, "item_id", item_path)
    else:
        item_ids = sorted(set(item_tok), key=int)
    item_index = {tok: i for i, tok in enumerate(item_ids)}
    unknown = set(item_tok) - set(item_index)
    if unknown:
        raise DataError(f"{inter}: items {sorted(unknown)[:5]} are not in the item file")
    user_index = {tok: i for i, tok in enumerate(sorted(set(user_tok), key=int))}
    user = torch.tensor([user_index[t] for t in user_tok])
    item = torch.tensor([item_index[t] for t in item_tok])
    parts = [Interactions(user[p], item[p]) for p in seeded_split(user, split_seed)]
    visual = text = None
    if features:
        titles = _column(inames, irows, "movie_title", item_path)
        years = _column(inames, irows, "release_year", item_path)
        genres = _column(inames, irows, "class", item_path)
        sentences = [item_sentence(*fields) for fields in zip(titles, years, genres, strict=True)]
        text = cached_text_features(sentences, cache, encoder or minilm_encoder)
        link_path, kg_path = files[ML100K_FILES["link"]], files[ML100K_FILES["kg"]]
        lnames, lrows = read_atomic(link_path)
        linked = [
            (item_index[i], e)
            for i, e in zip(
                _column(lnames, lrows, "item_id", link_path),
                _column(lnames, lrows, "entity_id", link_path),
                strict=True,
            )
            if i in item_index
        ]
        knames, krows = read_atomic(kg_path)
        triples = list(
            zip(
                _column(knames, krows, "head_id", kg_path),
                _column(knames, krows, "tail_id", kg_path),
                strict=True,
            )
        )
        visual = kg_features(linked, triples, len(item_ids), kg_dim, split_seed)
    notes = (f"ml-100k split: seeded per-user random 8:1:1 (split_seed {split_seed})",)
    train, valid, test = parts
    return Dataset(
        len(user_index),
        len(item_ids),
        train,
        valid,
        test,
        visual,
        text,
        checksums(files, ML100K),
        notes,
    )


def cached_text_features(
    sentences: list[str], cache: Path | None, encoder: Callable[[], TextEncoder]
) -> Tensor:
    """MiniLM features of ``sentences``, computed once and kept in ``cache`` (keyed by the
    sentences' hash, so another item file never reads stale features)."""
    import hashlib

    key = hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:16]
    path = cache / f"text_feat-{key}.npy" if cache is not None else None
    if path is not None and path.is_file():
        return torch.from_numpy(np.load(path))
    feats = encoder()(sentences).float()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part.npy")
        np.save(tmp, feats.numpy())
        tmp.replace(path)
    return feats


def first_users(data: Dataset, n: int) -> Dataset:
    """The interactions of users 0..n−1 only (a slice for smoke runs); every item is kept."""
    if n >= data.n_users:
        return data

    def cut(p: Interactions) -> Interactions:
        keep = p.user < n
        return Interactions(p.user[keep], p.item[keep])

    return replace(
        data,
        n_users=n,
        train=cut(data.train),
        valid=cut(data.valid),
        test=cut(data.test),
        notes=(*data.notes, f"sliced to the first {n} users"),
    )


def load(
    name: str,
    data_root: Path,
    *,
    features: bool,
    split_seed: int,
    kg_dim: int,
    cache: Path | None,
    max_users: int | None = None,
) -> Dataset:
    if name in AMAZON:
        data = load_amazon(name, data_root, features)
    elif name == "ml-100k":
        data = load_movielens(data_root, split_seed, features, kg_dim, cache)
    else:
        raise DataError(f"no loader for dataset {name!r}; choose from {[*AMAZON, 'ml-100k']}")
    return first_users(data, max_users) if max_users is not None else data
