"""Per-layer linear probes and training-free separability scores on pooled activations.

Everything works on ``X: (n_prompts, n_layers, d)`` float arrays, one pooled vector per prompt and
layer (``Activations.pooled("mean" | "max")``), with binary labels ``y: (n_prompts,)`` (1 = concept).

Decisions written down (DESIGN.md, "Pitfalls"):

* **Error and its interval.** Error = 1 − accuracy over every out-of-fold prediction, so each prompt is
  predicted exactly once; the 95% Wilson interval uses n = number of test predictions. Folds are
  correlated, so the interval is a little optimistic, but it is honest about small sets.
* **Pairs stay together.** With ``groups`` (the pair id) a positive and its negative always land in
  the same fold (StratifiedGroupKFold), so a probe cannot score by memorising a scene it saw in
  training with the other label.
* **Probe.** Standardise, then L2-regularised logistic regression (lbfgs) on every dimension.
  Optionally (``max_dims``) a PCA fitted on the training fold only comes first. Measured: on MiniLM
  (500 pairs) the full probe was *faster* (0.36 s vs 1.45 s for all layers, probe + transfer) with the
  same errors (max |Δ| 0.025, within the interval), and on a 4800 × 4096 synthetic block a fit took
  1.1 s either way; so the default is no PCA, which also cannot drop a low-variance concept direction.
* **Fisher ratio, cross-fitted.** Along the mean-difference direction, (m₁ − m₀)² / (v₁ + v₀). The
  in-sample version is biased upwards by ≈ d / n (the direction fits the noise), which on 500 pairs
  of a 384-d encoder is as large as a real effect. So the direction comes from one half of the groups
  and is scored on the other, and the two halves are averaged: ≈ 0 for shuffled labels.
* **One BLAS thread.** Every fit runs under ``threadpool_limits(1)``. The problems are small (≤ a few
  thousand rows), and on a shared 2-core machine multi-threaded OpenBLAS spins against other processes:
  one 5-fold layer took 3–24 s with 2 threads and 0.2–0.3 s with 1 while another job was running.
* **Word-blind (context) probe.** Explicit pairs differ by the concept's own words, so a probe on
  mean-pooled states reads the word and scores ~0 error at every layer, embeddings included: it cannot
  say where the *concept* is encoded. The context probe pools only the tokens *before* the first
  token where a pair's prompts differ (:func:`context_masks`; "[CLS] a stunt performer" of "... with
  a parachute over a desert"). They are the same tokens at the same positions in both prompts, so at
  the embeddings the two classes are identical (error = chance) and any separation deeper down was
  written there by attention from the concept's tokens. (Pooling every shared token instead leaks:
  tokens after the inserted words sit at shifted positions, which absolute position embeddings
  expose; measured on MiniLM, 0 error at the embeddings.)
* **Silhouette** of the two classes with Euclidean distance on the raw pooled vectors (subsampled
  above ``max_points`` so the cost stays O(max_points²)); near 0 means the classes overlap.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, silhouette_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

__all__ = [
    "ProbeResult",
    "SeparabilityScores",
    "auc_interval",
    "check_labelled",
    "fisher_ratio",
    "fold_indices",
    "make_probe",
    "probe_errors",
    "probe_layer",
    "separability_scores",
    "context_masks",
    "shared_token_masks",
    "transfer_layer",
    "wilson_interval",
]

Z95 = 1.959963984540054


@dataclass
class ProbeResult:
    """Per-layer probe error with its 95% Wilson interval; NaN marks a layer not computed."""

    error: np.ndarray
    """(n_layers,) 1 − accuracy."""
    ci_low: np.ndarray
    """(n_layers,) lower end of the 95% Wilson interval."""
    ci_high: np.ndarray
    """(n_layers,) upper end."""
    n_test: int
    """Test predictions per layer (the n of the interval)."""
    auc: np.ndarray | None = None
    """(n_layers,) ROC AUC of the probe's scores (threshold-free); None when not computed."""
    auc_ci_low: np.ndarray | None = None
    """(n_layers,) lower end of the AUC's 95% interval (:func:`auc_interval`); None with ``auc``."""
    auc_ci_high: np.ndarray | None = None
    """(n_layers,) upper end."""


@dataclass
class SeparabilityScores:
    """Training-free separability per layer."""

    fisher: np.ndarray
    """(n_layers,) cross-fitted Fisher ratio along the mean-difference direction (0 = none)."""
    silhouette: np.ndarray
    """(n_layers,) silhouette of the two classes, in [-1, 1]."""


# ------------------------------------------------------------------------------------ checks
def check_labelled(X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, k: int = 2) -> None:
    """Raise ValueError unless ``X`` is (n, layers, d), ``y`` binary (n,) and each class has ≥ k examples.

    With ``groups`` each class must also span ≥ k groups, or a group k-fold cannot put it in every fold.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 3:
        raise ValueError(f"expected pooled activations of shape (n_prompts, n_layers, d), got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"expected {X.shape[0]} labels (one per prompt), got shape {y.shape}")
    classes = set(np.unique(y).tolist())
    if not classes <= {0, 1}:
        raise ValueError(f"labels must be 0 (without the concept) or 1 (with it), got {sorted(classes)}")
    if len(classes) < 2:
        raise ValueError(f"need prompts of both classes, got only class {classes.pop()} ({len(y)} prompts)")
    if groups is not None and np.asarray(groups).shape != y.shape:
        raise ValueError(f"expected {len(y)} group ids, got shape {np.asarray(groups).shape}")
    for label in (0, 1):
        members = y == label
        count = int(members.sum()) if groups is None else len(np.unique(np.asarray(groups)[members]))
        if count < k:
            unit = "examples" if groups is None else "pairs"
            raise ValueError(f"class {label} has {count} {unit}; {k}-fold probes need at least {k}")
    if not np.isfinite(X).all():
        raise ValueError("pooled activations contain NaN or infinite values")


def wilson_interval(errors: np.ndarray | float, n: int, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) Wilson score interval of an error rate measured on ``n`` predictions."""
    if n < 1:
        raise ValueError(f"need at least one prediction for an interval, got n = {n}")
    p = np.asarray(errors, dtype=float)
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    # the interval always contains p; minimum/maximum remove rounding (2.8e-17 above an error of 0)
    return np.clip(np.minimum(centre - half, p), 0, 1), np.clip(np.maximum(centre + half, p), 0, 1)


def auc_interval(auc: float, n_pos: int, n_neg: int, z: float = Z95) -> tuple[float, float]:
    """95% interval of a ROC AUC from ``n_pos`` and ``n_neg`` scored examples (Hanley & McNeil 1982).

    The transfer error's Wilson interval is wide on a pack's few dozen implicit prompts and depends on
    the threshold; the AUC uses every score, and its interval says how much the depth curve can be read.
    """
    if n_pos < 1 or n_neg < 1:
        raise ValueError(f"need examples of both classes, got {n_pos} and {n_neg}")
    a = float(auc)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    half = z * np.sqrt(max(var, 0.0))
    return max(a - half, 0.0), min(a + half, 1.0)


# ------------------------------------------------------------------------------------ probes
def make_probe(n_train: int, d: int, max_dims: int | None = None, seed: int = 0, c: float = 1.0) -> Pipeline:
    """Standardise → PCA to ≤ ``max_dims`` (only if given and smaller than d) → logistic regression."""
    steps: list = [StandardScaler()]
    dims = d if max_dims is None else min(max_dims, d, n_train - 1)
    if dims < d:
        steps.append(PCA(n_components=dims, svd_solver="randomized", random_state=seed))
    steps.append(LogisticRegression(C=c, max_iter=300))
    return make_pipeline(*steps)


def fold_indices(
    y: np.ndarray, groups: np.ndarray | None, k: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` stratified (train, test) splits; with ``groups`` no group is split between them."""
    if groups is None:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), y))
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y, groups))


def probe_layer(
    X: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    max_dims: int | None = None,
    seed: int = 0,
) -> float:
    """Out-of-fold error of the probe on one layer, ``X: (n, d)``; each prompt is predicted once."""
    wrong = 0
    tested = 0
    with threadpool_limits(1):
        for train, test in folds:
            probe = make_probe(len(train), X.shape[1], max_dims, seed).fit(X[train], y[train])
            wrong += int((probe.predict(X[test]) != y[test]).sum())
            tested += len(test)
    return wrong / tested


def probe_errors(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None = None,
    k: int = 5,
    seed: int = 0,
    max_dims: int | None = None,
) -> ProbeResult:
    """k-fold probe error for every layer of ``X: (n, n_layers, d)`` (see the module docstring)."""
    X, y = np.asarray(X), np.asarray(y)
    check_labelled(X, y, groups, k)
    folds = fold_indices(y, groups, k, seed)
    error = np.array([probe_layer(X[:, i], y, folds, max_dims, seed) for i in range(X.shape[1])])
    low, high = wilson_interval(error, len(y))
    return ProbeResult(error, low, high, n_test=len(y))


def transfer_layer(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    max_dims: int | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """(error, AUC) of a probe trained on one layer's pairs and tested on other prompts, all ``(n, d)``.

    The AUC ignores the threshold, which a shift between the pairs and the paraphrases can move.
    """
    with threadpool_limits(1):
        probe = make_probe(len(X_train), X_train.shape[1], max_dims, seed).fit(X_train, y_train)
        error = float((probe.predict(X_test) != y_test).mean())
        auc = float(roc_auc_score(y_test, probe.decision_function(X_test)))
    return error, auc


def shared_token_masks(pos_ids: Sequence[int], neg_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(pos_mask, neg_mask): True on the tokens a positive and its negative share, in order.

    The longest matching blocks of the two id sequences (difflib, no junk heuristic): the inserted or
    replaced concept tokens are False, everything both prompts say (special tokens included) True.
    """
    pos_mask, neg_mask = np.zeros(len(pos_ids), bool), np.zeros(len(neg_ids), bool)
    matcher = difflib.SequenceMatcher(None, list(pos_ids), list(neg_ids), autojunk=False)
    for block in matcher.get_matching_blocks():
        pos_mask[block.a : block.a + block.size] = True
        neg_mask[block.b : block.b + block.size] = True
    return pos_mask, neg_mask


def context_masks(pos_ids: Sequence[int], neg_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(pos_mask, neg_mask) of the word-blind probe: the common prefix of the two id sequences.

    When the prompts differ at their first token (no BOS/CLS and the concept word first), the prefix
    is empty and the shared tokens (:func:`shared_token_masks`) are used instead; for encoders with
    relative positions (T5) those sit at unshifted embeddings anyway.
    """
    n = 0
    for a, b in zip(pos_ids, neg_ids):
        if a != b:
            break
        n += 1
    if n == 0:
        return shared_token_masks(pos_ids, neg_ids)
    pos_mask, neg_mask = np.zeros(len(pos_ids), bool), np.zeros(len(neg_ids), bool)
    pos_mask[:n] = neg_mask[:n] = True
    return pos_mask, neg_mask


# ------------------------------------------------------------------------ cheap separability
def fisher_ratio(X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, seed: int = 0) -> float:
    """Cross-fitted Fisher ratio of one layer ``X: (n, d)`` along the mean-difference direction."""
    halves = fold_indices(y, groups, 2, seed)
    ratios = []
    for fit, score in halves:
        direction = X[fit][y[fit] == 1].mean(0) - X[fit][y[fit] == 0].mean(0)
        norm = np.linalg.norm(direction)
        if norm == 0:
            ratios.append(0.0)
            continue
        proj = X[score] @ (direction / norm)
        pos, neg = proj[y[score] == 1], proj[y[score] == 0]
        spread = pos.var() + neg.var()
        gap = pos.mean() - neg.mean()
        # a signed gap: a direction that points the wrong way on held-out data counts as no separation
        ratios.append(max(gap, 0.0) ** 2 / spread if spread > 0 else 0.0)
    return float(np.mean(ratios))


def separability_scores(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None = None,
    seed: int = 0,
    max_points: int = 1000,
) -> SeparabilityScores:
    """Fisher ratio and silhouette for every layer of ``X: (n, n_layers, d)``; no training."""
    X, y = np.asarray(X), np.asarray(y)
    check_labelled(X, y, groups, 2)
    sample = min(max_points, len(y))
    with threadpool_limits(1):
        fisher = np.array([fisher_ratio(X[:, i], y, groups, seed) for i in range(X.shape[1])])
        silhouette = np.array(
            [silhouette_score(X[:, i], y, sample_size=sample, random_state=seed) for i in range(X.shape[1])]
        )
    return SeparabilityScores(fisher, silhouette)
