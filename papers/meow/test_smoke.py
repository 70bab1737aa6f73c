"""End-to-end smoke run of MEOW, AdaMEOW and the embedding scorer on a tiny generated graph."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from common.runner import main
from tests.support.datasets import spec_for_local_files, temporary_dataset
from tests.support.smoke import smoke_over_budget

from .__main__ import ENTRY
from .data import RATIOS, load_graph, node_subset, subgraph

N_PAPERS, N_AUTHORS, N_SUBJECTS, N_WORDS = 60, 40, 6, 30
TARGET_NODES = {"acm": 4_019, "imdb": 4_275, "dblp": 4_057, "aminer": 6_564}  # the real graphs
TRAINED = {"meow", "adameow"}
# A few seconds of CPU (the recipe asks a third or less of each); the whole ACM graph asks
# 32 million AdaMEOW pair weights (13 s an epoch here).
SMOKE_BUDGET = {"node-epochs": 12_000, "pair weights": 4_000_000, "probe steps": 2_000}


def smoke_work(dataset: str, variant: str, config: Any) -> dict[str, int]:
    """Target nodes x epochs trained, AdaMEOW's pair weights (n^2 an epoch), probe steps."""
    n = min(config.max_nodes or TARGET_NODES[dataset], TARGET_NODES[dataset])
    epochs = config.adameow.epochs if variant == "adameow" else config.epochs
    epochs = epochs if variant in TRAINED else 0
    pairs = n * n * epochs if variant == "adameow" else 0
    probe = config.probe_runs * config.probe_iterations * len(RATIOS)
    return {"node-epochs": n * epochs, "pair weights": pairs, "probe steps": probe}


def test_smoke_recipe_fits_its_budget() -> None:
    assert smoke_over_budget(ENTRY, smoke_work, SMOKE_BUDGET) == {}


def write_tiny_acm(root: Path, seed: int = 0) -> list[str]:
    """A random paper-author-subject graph in MEOW's ACM layout; returns the relative paths."""
    rng = np.random.default_rng(seed)
    folder = root / "hetero" / "acm"
    folder.mkdir(parents=True)
    labels = np.arange(N_PAPERS) % 3
    pa = sp.csr_matrix(
        (
            np.ones(N_PAPERS * 2),
            (np.repeat(np.arange(N_PAPERS), 2), rng.integers(0, N_AUTHORS, N_PAPERS * 2)),
        ),
        shape=(N_PAPERS, N_AUTHORS),
    )
    pa.data[:] = 1
    ps = sp.csr_matrix(
        (np.ones(N_PAPERS), (np.arange(N_PAPERS), labels * 2 + rng.integers(0, 2, N_PAPERS))),
        shape=(N_PAPERS, N_SUBJECTS),
    )
    p_feat = sp.csr_matrix((rng.random((N_PAPERS, N_WORDS)) < 0.2).astype(np.float64))
    a_feat = sp.csr_matrix((rng.random((N_AUTHORS, N_WORDS)) < 0.2).astype(np.float64))
    for name, m in {
        "nei_a": pa,
        "nei_s": ps,
        "p_feat": p_feat,
        "a_feat": a_feat,
        "pap": pa @ pa.T,
        "psp": ps @ ps.T,
    }.items():
        sp.save_npz(folder / f"{name}.npz", sp.csr_matrix(m))
    np.save(folder / "labels.npy", labels)
    order = rng.permutation(N_PAPERS)
    for r in RATIOS:
        np.save(folder / f"train_{r}.npy", order[:12])
        np.save(folder / f"val_{r}.npy", order[12:36])
        np.save(folder / f"test_{r}.npy", order[36:])
    return sorted(str(p.relative_to(root)) for p in folder.iterdir())


def _records(results: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in (results / "runs" / ENTRY.folder.name / "acm").glob("*.json"):
        record = json.loads(path.read_text())
        out[record["variant"]] = record
    return out


def test_smoke_end_to_end(tmp_path: Path) -> None:
    """Every variant on a 40-node slice of the tiny graph, as the smoke recipe slices real ones."""
    data = tmp_path / "data"
    paths = write_tiny_acm(data)
    embeddings = tmp_path / "emb.pkl"
    with embeddings.open("wb") as handle:
        pickle.dump(np.random.default_rng(1).random((N_PAPERS, 8)).astype(np.float32), handle)
    results = tmp_path / "results"
    with temporary_dataset(spec_for_local_files("hetero-acm", data, paths)):
        status = main(
            ENTRY,
            [
                "--dataset",
                "acm",
                "--scale",
                "smoke",
                "--data-root",
                str(data),
                "--results-dir",
                str(results),
                "--work-dir",
                str(tmp_path / "work"),
                "--embeddings",
                str(embeddings),
                "max_nodes=40",
            ],
        )
    assert status == 0
    records = _records(results)
    assert set(records) == {"meow", "adameow", "meow-official-embeddings", "raw-features"}
    keys = {f"{m}@{r}" for m in ("Ma-F1", "Mi-F1", "AUC") for r in RATIOS} | {"NMI", "ARI"}
    for record in records.values():
        assert set(record["metrics"]["test"]) == keys
        assert all(
            math.isfinite(v) and -100 <= v <= 100 for v in record["metrics"]["test"].values()
        )  # ARI can be < 0
    assert records["meow-official-embeddings"]["origin"] == "official-embeddings"
    assert records["meow"]["origin"] == "trained"
    assert records["raw-features"]["origin"] == "pretrained-baseline"
    for record in records.values():
        assert any("40 of the 60 target nodes" in d for d in record["deviations"])


def test_a_node_slice_is_the_graph_on_those_nodes(tmp_path: Path) -> None:
    paths = write_tiny_acm(tmp_path)
    with temporary_dataset(spec_for_local_files("hetero-acm", tmp_path, paths)):
        graph = load_graph("acm", tmp_path)
    keep = node_subset(graph.labels, graph.splits, 20)
    assert len(keep) == 20 and np.array_equal(keep, node_subset(graph.labels, graph.splits, 20))
    assert set(graph.splits[20]["train"]) <= set(keep)  # every training node first
    part = subgraph(graph, keep)
    assert np.array_equal(part.target_features, graph.target_features[keep])
    for whole, sliced in zip(graph.metapaths, part.metapaths, strict=True):
        assert np.array_equal(sliced.counts.toarray(), whole.counts.toarray()[np.ix_(keep, keep)])
    for context, cut in zip(graph.contexts, part.contexts, strict=True):
        assert np.array_equal(cut.factors[0].toarray(), context.factors[0].toarray()[keep])
        assert np.array_equal(cut.inv_count, context.inv_count[keep])
    for r in RATIOS:
        for name, ids in graph.splits[r].items():
            assert np.array_equal(keep[part.splits[r][name]], ids[np.isin(ids, keep)])
