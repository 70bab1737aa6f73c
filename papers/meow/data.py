"""Heterogeneous graphs of MEOW: ACM and IMDB (MEOW layout), DBLP and AMiner (HeCo layout).

Every dataset becomes a :class:`HeteroGraph`: row-normalised target features, one feature
matrix per neighbour type, the count matrices of the meta-paths (needed by PathSim), the
*context* matrices that average the features of a neighbour type reached along a meta-path
(Yu et al., MEOW, Sec. "fine-grained view"), labels and the fixed 20/40/60 splits.

DBLP (HeCo layout) lacks ``aptpa.npz`` and the MEOW context matrices ``nei_ap/apc/apcp/apt/aptp``;
they are rebuilt from ``pa.txt``, ``pc.txt`` and ``pt.txt`` with sparse products. The meta-path
matrices are rebuilt as *counts* (as in MEOW's ACM/IMDB files): HeCo's ``apa.npz`` and
``apcpa.npz`` are boolean, which would make every PathSim score equal; a test checks that the
rebuilt counts have exactly HeCo's non-zero pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from common.data import checksums, ensure_files, register_folder_datasets
from common.errors import DataError

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here

RATIOS = (20, 40, 60)
DATASETS = {
    "acm": "hetero-acm",
    "imdb": "hetero-imdb",
    "dblp": "hetero-dblp",
    "aminer": "hetero-aminer",
}
_FOLDER = {
    "acm": "hetero/acm",
    "imdb": "hetero/imdb",
    "dblp": "hetero/heco-dblp",
    "aminer": "hetero/heco-aminer",
}


@dataclass(frozen=True)
class Context:
    """Mean of a neighbour type's hidden features along a meta-path: ``diag(1/c) F_1 ... F_m X``.

    ``factors`` are sparse matrices whose product is the (binary) reachability matrix from the
    targets to the nodes of ``node_type``; ``inv_count`` is 1 / (number of reached nodes, or 1).
    Keeping a product factorised avoids materialising a dense reachability (DBLP's A-P-C-P).
    """

    node_type: int
    factors: tuple[sp.csr_matrix, ...]
    inv_count: np.ndarray


@dataclass(frozen=True)
class MetaPath:
    """A meta-path: its count matrix and the context terms ``(context index, agg index)``."""

    name: str
    counts: sp.csr_matrix
    terms: tuple[tuple[int, int], ...]


@dataclass
class HeteroGraph:
    """One heterogeneous graph, ready for MEOW."""

    name: str
    target_features: np.ndarray
    type_features: list[np.ndarray | int]  # dense features, or an int n for identity features
    contexts: list[Context]
    metapaths: list[MetaPath]
    labels: np.ndarray
    splits: dict[int, dict[str, np.ndarray]]
    files: dict[str, str] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    @property
    def num_agg(self) -> int:
        return 1 + max(a for mp in self.metapaths for _, a in mp.terms)


def row_normalize(matrix: sp.spmatrix | np.ndarray) -> np.ndarray:
    """Divide each row by its sum (rows summing to 0 stay 0), as the official preprocessing."""
    dense = np.asarray(matrix if isinstance(matrix, np.ndarray) else matrix.todense(), np.float64)
    sums = dense.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        inv = np.where(sums != 0, 1.0 / sums, 0.0)
    return (dense * inv).astype(np.float32)


def binary(matrix: sp.spmatrix) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data[:] = 1.0
    out.eliminate_zeros()
    return out


def context(node_type: int, *factors: sp.spmatrix) -> Context:
    """A context whose row counts are computed through the factors (no dense product)."""
    csr = tuple(sp.csr_matrix(f, dtype=np.float32) for f in factors)
    counts = np.ones(csr[-1].shape[1], dtype=np.float64)
    for f in reversed(csr):
        counts = f @ counts
    inv = np.where(counts > 0, 1.0 / np.maximum(counts, 1e-12), 1.0).astype(np.float32)
    return Context(node_type, csr, inv)


def _relation(path: Path, shape: tuple[int, int]) -> sp.csr_matrix:
    """A bipartite relation from an edge list ``src dst`` (0-based ids), binary."""
    edges = np.loadtxt(path, dtype=np.int64, ndmin=2)
    if edges.shape[1] != 2 or edges.min() < 0 or (edges.max(axis=0) >= np.array(shape)).any():
        raise DataError(f"{path} is not an edge list of shape {shape} with 0-based ids")
    data = np.ones(len(edges), dtype=np.float32)
    return binary(sp.csr_matrix((data, (edges[:, 0], edges[:, 1])), shape=shape))


def _labels(path: Path) -> np.ndarray:
    """Class ids 0..C-1 (IMDB's file uses 1..3; the official one-hot encoder remaps them too)."""
    raw = np.load(path)
    if raw.ndim != 1:
        raise DataError(f"{path} should hold one label per target node, got shape {raw.shape}")
    return np.unique(raw, return_inverse=True)[1].astype(np.int64)


def _splits(folder: Path) -> dict[int, dict[str, np.ndarray]]:
    return {
        r: {
            part: np.load(folder / f"{part}_{r}.npy").astype(np.int64)
            for part in ("train", "val", "test")
        }
        for r in RATIOS
    }


def _npz(path: Path) -> sp.csr_matrix:
    return sp.csr_matrix(sp.load_npz(path), dtype=np.float32)


def _split_names() -> list[str]:
    return [f"{p}_{r}.npy" for p in ("train", "val", "test") for r in RATIOS]


def _acm(root: Path) -> HeteroGraph:
    d = root / _FOLDER["acm"]
    nei_a, nei_s = _npz(d / "nei_a.npz"), _npz(d / "nei_s.npz")
    return HeteroGraph(
        name="acm",
        target_features=row_normalize(sp.load_npz(d / "p_feat.npz")),
        type_features=[row_normalize(sp.load_npz(d / "a_feat.npz")), nei_s.shape[1]],
        contexts=[context(0, binary(nei_a)), context(1, binary(nei_s))],
        metapaths=[
            MetaPath("pap", _npz(d / "pap.npz"), ((0, 0),)),
            MetaPath("psp", _npz(d / "psp.npz"), ((1, 1),)),
        ],
        labels=_labels(d / "labels.npy"),
        splits=_splits(d),
    )


def _imdb(root: Path) -> HeteroGraph:
    d = root / _FOLDER["imdb"]
    neis = [_npz(d / f"nei_{t}.npz") for t in ("a", "d", "k")]
    return HeteroGraph(
        name="imdb",
        target_features=row_normalize(sp.load_npz(d / "m_feat.npz")),
        type_features=[n.shape[1] for n in neis],
        contexts=[context(i, binary(n)) for i, n in enumerate(neis)],
        metapaths=[
            MetaPath(name, _npz(d / f"{name}.npz"), ((i, i),))
            for i, name in enumerate(("mam", "mdm", "mkm"))
        ],
        labels=_labels(d / "labels.npy"),
        splits=_splits(d),
    )


def dblp_relations(folder: Path) -> dict[str, sp.csr_matrix]:
    """A-P, P-C and P-T of HeCo's DBLP (4057 authors, 14328 papers, 7723 terms, 20 venues)."""
    n_a, n_p, n_t, n_c = 4057, 14328, 7723, 20
    pa = _relation(folder / "pa.txt", (n_p, n_a))
    return {
        "ap": sp.csr_matrix(pa.T),
        "pc": _relation(folder / "pc.txt", (n_p, n_c)),
        "pt": _relation(folder / "pt.txt", (n_p, n_t)),
    }


def dblp_metapath_counts(rel: dict[str, sp.csr_matrix]) -> dict[str, sp.csr_matrix]:
    """Path-count matrices APA, APCPA and APTPA (sparse products, never dense)."""
    ap, pc, pt = rel["ap"], rel["pc"], rel["pt"]
    apc, apt = ap @ pc, ap @ pt
    return {
        "apa": sp.csr_matrix(ap @ ap.T),
        "apcpa": sp.csr_matrix(apc @ apc.T),
        "aptpa": sp.csr_matrix(apt @ apt.T),
    }


def _dblp(root: Path) -> HeteroGraph:
    d = root / _FOLDER["dblp"]
    rel = dblp_relations(d)
    ap, pc, pt = rel["ap"], rel["pc"], rel["pt"]
    apc, apt = binary(ap @ pc), binary(ap @ pt)
    counts = dblp_metapath_counts(rel)
    # types: 0 paper, 1 term, 2 venue. Each paper has one venue, so A-P-C-P reachability is
    # exactly binary(APC) @ CP and stays factorised; A-P-T-P has to be materialised (binary).
    contexts = [
        context(0, ap),
        context(2, apc),
        context(0, apc, sp.csr_matrix(pc.T)),
        context(1, apt),
        context(0, binary(apt @ pt.T)),
    ]
    t_feat = np.load(d / "t_feat.npz")
    t_dense = t_feat[t_feat.files[0]] if hasattr(t_feat, "files") else t_feat
    return HeteroGraph(
        name="dblp",
        target_features=row_normalize(sp.load_npz(d / "a_feat.npz")),
        type_features=[
            row_normalize(sp.load_npz(d / "p_feat.npz")),
            np.asarray(t_dense, dtype=np.float32),
            pc.shape[1],
        ],
        contexts=contexts,
        metapaths=[
            MetaPath("apa", counts["apa"], ((0, 0),)),
            MetaPath("apcpa", counts["apcpa"], ((0, 1), (1, 2), (2, 3))),
            MetaPath("aptpa", counts["aptpa"], ((0, 4), (3, 5), (4, 6))),
        ],
        labels=_labels(d / "labels.npy"),
        splits=_splits(d),
    )


_LOADERS = {"acm": _acm, "imdb": _imdb, "dblp": _dblp}


def load_graph(dataset: str, data_root: Path) -> HeteroGraph:
    """Verify the files (checksums, download where possible) and build the graph."""
    if dataset not in _LOADERS:
        raise DataError(
            f"dataset {dataset!r} cannot be trained on here (AMiner has no node features in the "
            "HeCo layout); use it with --variants meow-official-embeddings"
        )
    spec, folder = DATASETS[dataset], _FOLDER[dataset]
    paths = ensure_files(spec, data_root, [f"{folder}/{n}" for n in names_for(dataset)])
    graph = _LOADERS[dataset](data_root)
    graph.files = checksums(paths, spec)
    return graph


def names_for(dataset: str) -> list[str]:
    """The files (relative to the dataset folder) a dataset's loader reads."""
    base = {
        "acm": ["nei_a.npz", "nei_s.npz", "p_feat.npz", "a_feat.npz", "pap.npz", "psp.npz"],
        "imdb": [
            "m_feat.npz",
            "nei_a.npz",
            "nei_d.npz",
            "nei_k.npz",
            "mam.npz",
            "mdm.npz",
            "mkm.npz",
        ],
        "dblp": ["a_feat.npz", "p_feat.npz", "t_feat.npz", "pa.txt", "pc.txt", "pt.txt"],
        "aminer": [],
    }[dataset]
    return ["labels.npy", *base, *_split_names()]


def node_subset(
    labels: np.ndarray, splits: dict[int, dict[str, np.ndarray]], max_nodes: int, seed: int = 0
) -> np.ndarray:
    """At most ``max_nodes`` target nodes (sorted ids), seeded: training nodes of every split
    first, so each class keeps labelled nodes, then other nodes. A smoke recipe's slice."""
    rng = np.random.default_rng(seed)
    train = np.unique(np.concatenate([s["train"] for s in splits.values()]))
    rest = np.setdiff1d(np.arange(labels.shape[0]), train)
    order = np.concatenate([rng.permutation(train), rng.permutation(rest)])
    return np.sort(order[:max_nodes])


def restrict_splits(
    splits: dict[int, dict[str, np.ndarray]], keep: np.ndarray, n_nodes: int
) -> dict[int, dict[str, np.ndarray]]:
    """The splits' nodes that are in ``keep``, renumbered as positions in ``keep``."""
    position = np.full(n_nodes, -1, dtype=np.int64)
    position[keep] = np.arange(keep.shape[0])
    return {
        r: {part: position[ids][position[ids] >= 0] for part, ids in parts.items()}
        for r, parts in splits.items()
    }


def subgraph(graph: HeteroGraph, keep: np.ndarray) -> HeteroGraph:
    """The graph on the target nodes ``keep`` (neighbour types whole), splits renumbered."""
    return HeteroGraph(
        name=graph.name,
        target_features=graph.target_features[keep],
        type_features=graph.type_features,
        contexts=[
            Context(c.node_type, (c.factors[0][keep], *c.factors[1:]), c.inv_count[keep])
            for c in graph.contexts
        ],
        metapaths=[
            MetaPath(m.name, sp.csr_matrix(m.counts[keep][:, keep]), m.terms)
            for m in graph.metapaths
        ],
        labels=graph.labels[keep],
        splits=restrict_splits(graph.splits, keep, graph.num_nodes),
        files=graph.files,
    )


@dataclass
class LabelledNodes:
    """Labels and splits only (to score frozen embeddings)."""

    labels: np.ndarray
    splits: dict[int, dict[str, np.ndarray]]
    files: dict[str, str]


def load_labels(dataset: str, data_root: Path) -> LabelledNodes:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    spec, folder = DATASETS[dataset], _FOLDER[dataset]
    names = ["labels.npy", *_split_names()]
    paths = ensure_files(spec, data_root, [f"{folder}/{n}" for n in names])
    d = data_root / folder
    return LabelledNodes(
        labels=_labels(d / "labels.npy"),
        splits=_splits(d),
        files=checksums(paths, spec),
    )
