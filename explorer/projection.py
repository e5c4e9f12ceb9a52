"""Placing latent codes on the 2-D maps and finding neighbours in latent space.

PCA is a linear map, so any code projects exactly. t-SNE has no transform: a new code is placed at
the distance-weighted mean of the map positions of its k nearest test codes (sub-millisecond;
openTSNE's optimising transform takes ~11 s for one point, see REFERENCE.md).
"""

from __future__ import annotations

import numpy as np

from common.atlas_format import Atlas

PROJECTIONS = ("PCA", "t-SNE")


def pca_project(z: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Codes z [B, D] (or [D]) -> PCA coordinates [B, 2] (or [2]) with the atlas's mean [D] and components [2, D]."""
    return (np.asarray(z, dtype=np.float32) - mean) @ components.T


def nearest(z: np.ndarray, mu: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices [k] of the k test codes in mu [N, D] closest to z [D] (Euclidean), nearest first, and their distances."""
    d2 = ((mu - np.asarray(z, dtype=np.float32)) ** 2).sum(1)
    k = min(k, len(mu))
    idx = np.argpartition(d2, k - 1)[:k]
    idx = idx[np.argsort(d2[idx])]
    return idx, np.sqrt(d2[idx])


def knn_place(z: np.ndarray, mu: np.ndarray, coords: np.ndarray, k: int = 10) -> np.ndarray:
    """Map position [2] for code z [D]: inverse-distance weighted mean of its k nearest neighbours' coords [N, 2]."""
    idx, dist = nearest(z, mu, k)
    w = 1.0 / np.maximum(dist, 1e-6)
    return (coords[idx] * w[:, None]).sum(0) / w.sum()


def map_coords(atlas: Atlas, projection: str) -> np.ndarray:
    """The atlas's [N, 2] coordinates for 'PCA' or 't-SNE'."""
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
    return atlas.pca if projection == "PCA" else atlas.tsne


def place(z: np.ndarray, atlas: Atlas, projection: str) -> np.ndarray:
    """Where code z [D] lands on the chosen map, [2]: exact for PCA, k-NN placement for t-SNE."""
    if projection == "PCA":
        return pca_project(z, atlas.pca_mean, atlas.pca_components)
    return knn_place(z, atlas.mu, atlas.tsne)
