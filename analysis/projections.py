"""2-D views of pooled activations per layer: PCA (instant), t-SNE and UMAP (seeded).

Every layer is fitted on its own, on the same points, so panels are comparable point for point.
Before any method the features are standardised: residual streams carry a few huge "rogue"
dimensions that would otherwise be the whole picture. t-SNE and UMAP then start from the top
``PRE_DIMS`` principal components (the usual practice; it also bounds their cost by d).

Above ``max_points`` a stratified subsample (the same share of every kind: positive, negative,
implicit, neutral; fixed seed) is projected, and :attr:`Subsample.note` says so: a projection is
never thinned silently.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

__all__ = [
    "METHODS",
    "PRE_DIMS",
    "Projection",
    "Subsample",
    "check_method",
    "project",
    "project_layers",
    "subsample",
]

METHODS = ("pca", "tsne", "umap")
PRE_DIMS = 50
"""Principal components that t-SNE and UMAP start from."""


@dataclass
class Subsample:
    """Which points are projected, and the note to show when that is not all of them."""

    indices: np.ndarray
    """(n_points,) sorted indices into the full set."""
    n_total: int
    """How many points there were."""
    note: str | None
    """Visible note when subsampled; None when every point is shown."""


@dataclass
class Projection:
    """One panel: the 2-D coordinates of one layer by one method."""

    method: str
    """"pca", "tsne" or "umap"."""
    layer: int
    """Layer index (0 = embeddings)."""
    coords: np.ndarray
    """(n_points, 2) float coordinates, rows matching the subsample's indices."""
    seconds: float
    """Time to fit this panel."""


def check_method(method: str) -> str:
    """The method name, or a ValueError listing the ones that exist."""
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; expected one of {', '.join(METHODS)}")
    return method


def subsample(kinds: Sequence[str], max_points: int = 600, seed: int = 0) -> Subsample:
    """Keep at most ``max_points`` points, the same fraction of every kind (largest remainders)."""
    if max_points < 10:
        raise ValueError(f"max_points must be ≥ 10, got {max_points}")
    kinds = np.asarray(kinds)
    n = len(kinds)
    if n <= max_points:
        return Subsample(np.arange(n), n, None)
    rng = np.random.default_rng(seed)
    names, counts = np.unique(kinds, return_counts=True)
    quota = counts * max_points / n
    take = np.floor(quota).astype(int)
    take[np.argsort(take - quota)[: max_points - take.sum()]] += 1  # hand out the remainder
    chosen = [rng.choice(np.flatnonzero(kinds == k), size=t, replace=False) for k, t in zip(names, take)]
    indices = np.sort(np.concatenate(chosen))
    note = f"Showing {len(indices)} of {n} prompts (random, same share of each kind, seed {seed})."
    return Subsample(indices, n, note)


def _prepare(X: np.ndarray, dims: int, seed: int) -> np.ndarray:
    Z = StandardScaler().fit_transform(X.astype(np.float64))
    dims = min(dims, Z.shape[0] - 1, Z.shape[1])
    return PCA(n_components=dims, svd_solver="full", random_state=seed).fit_transform(Z)


def project(X: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """(n, 2) coordinates of ``X: (n, d)`` by ``method``; identical for identical input and seed."""
    check_method(method)
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected one layer's vectors of shape (n_points, d), got {X.shape}")
    if X.shape[0] < 4:
        raise ValueError(f"need at least 4 points to project, got {X.shape[0]}")
    with threadpool_limits(1):  # small problems; multi-threaded BLAS spins on a shared CPU (probes.py)
        return _project(X, method, seed)


def _project(X: np.ndarray, method: str, seed: int) -> np.ndarray:
    if method == "pca":
        return _prepare(X, 2, seed)
    Z = _prepare(X, PRE_DIMS, seed)
    if method == "tsne":
        perplexity = float(min(30.0, (len(Z) - 1) / 3))
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=1)
        return tsne.fit_transform(Z)
    import umap  # slow import (numba); only when asked for

    n_neighbors = int(min(15, len(Z) - 1))
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, random_state=seed, n_jobs=1)
    return np.asarray(reducer.fit_transform(Z))


def project_layers(
    X: np.ndarray, method: str, indices: np.ndarray | None = None, seed: int = 0
) -> Iterator[Projection]:
    """One :class:`Projection` per layer of ``X: (n, n_layers, d)``, on rows ``indices`` (all if None).

    A generator, so a caller can show each panel as soon as it is fitted.
    """
    check_method(method)
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"expected pooled activations of shape (n_prompts, n_layers, d), got {X.shape}")
    rows = np.arange(X.shape[0]) if indices is None else np.asarray(indices)
    for layer in range(X.shape[1]):
        start = time.perf_counter()
        coords = project(X[rows, layer], method, seed)
        yield Projection(method, layer, coords, time.perf_counter() - start)
