"""Spherical-ish K-means of MEOW with faiss-cpu (jianxiangyu/MEOW ``module/cluster.py``).

faiss ``Clustering`` with an inner-product index, 20 iterations, 5 restarts, seed = position of
K in the list (as the official code: the same seeds every epoch), at most 4000 and at least 5
points per centroid. Assignment: the highest inner product. Per-cluster concentration (PCL):
``φ_k = mean_i sqrt(D_i) / log(n_k + 5)`` with ``D_i`` the inner product of a member with its
centroid; single-point clusters get the maximum; clipped to the 10th–90th percentiles and
rescaled to mean ``τ``. Centroids are L2-normalised afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
import torch


@dataclass
class Clustering:
    assignment: torch.Tensor  # (N,) long
    centroids: torch.Tensor  # (K, d), L2-normalised
    density: torch.Tensor  # (K,) per-cluster temperature


def run_kmeans(
    x: torch.Tensor, ks: list[int], tau: float, niter: int = 20, nredo: int = 5
) -> list[Clustering]:
    data = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
    d = data.shape[1]
    faiss.omp_set_num_threads(max(1, torch.get_num_threads()))
    results = []
    for seed, k in enumerate(ks):
        clus = faiss.Clustering(d, k)
        clus.verbose = False
        clus.niter = niter
        clus.nredo = nredo
        clus.seed = seed
        clus.max_points_per_centroid = 4000
        clus.min_points_per_centroid = 5
        index = faiss.IndexFlatIP(d)
        clus.train(data, index)
        sims, ids = index.search(data, 1)
        assign = ids[:, 0].astype(np.int64)
        centroids = faiss.vector_to_array(clus.centroids).reshape(k, d)
        results.append(
            Clustering(
                assignment=torch.from_numpy(assign),
                centroids=torch.nn.functional.normalize(torch.from_numpy(centroids), dim=1),
                density=torch.from_numpy(concentration(sims[:, 0], assign, k, tau)).float(),
            )
        )
    return results


def concentration(sims: np.ndarray, assign: np.ndarray, k: int, tau: float) -> np.ndarray:
    """PCL's per-cluster temperature, vectorised with ``bincount``.

    ``sqrt`` of a negative inner product is NaN in the official code; it is clamped at 0 here.
    """
    sizes = np.bincount(assign, minlength=k)
    root = np.sqrt(np.maximum(sims.astype(np.float64), 0.0))
    sums = np.bincount(assign, weights=root, minlength=k)
    density = np.zeros(k)
    big = sizes > 1
    density[big] = sums[big] / sizes[big] / np.log(sizes[big] + 5)
    density[~big] = density.max()
    density = density.clip(np.percentile(density, 10), np.percentile(density, 90))
    weights: np.ndarray = tau * density / density.mean()
    return weights
