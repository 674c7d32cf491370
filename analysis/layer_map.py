"""The layer map: where across the encoder's depth a concept becomes separable (paper Fig. 2, Table 11).

:func:`iter_layer_map` streams progressively refined :class:`LayerMapResult` snapshots so that a UI can
redraw as they arrive:

1. ``"scores"`` — training-free separability (Fisher ratio, silhouette) and PCA panels, in about a
   second once the activations are cached;
2. ``"probe"`` — k-fold probe error on the pairs, one layer per snapshot. Explicit pairs differ by the
   concept's own words, so this *explicit* probe error is ~0 at every layer (embeddings included) and
   says only that the word can be read; it is kept, labelled as such;
2b. ``"context"`` — the word-blind probe: the same grouped k-fold, on each prompt pooled over the
   tokens before the first one where it differs from its pair (:func:`analysis.probes.context_masks`),
   identical tokens at identical positions, so the concept's own tokens are never seen. At chance at
   the embeddings, it falls where attention writes the concept into its context: with 2 × n_pairs test
   predictions its interval is tight, and it is the headline depth curve next to the transfer error;
3. ``"transfer"`` — trained on all pairs, tested on implicit prompts vs matched neutral prompts, one
   layer per snapshot (only with implicit prompts: a concept word makes every layer separable, so
   this is the curve that says where the *concept*, not the word, is encoded);
4. ``"projection:<method>"`` — each slower projection (t-SNE, UMAP), one panel per snapshot;
5. ``"done"`` — the final result (``complete`` is True).

Activations come from ``encoder.capture`` (the on-disk cache makes a second run start at step 1).
Positives, negatives, implicit and neutral prompts are captured separately, so adding implicit
prompts later does not recompute the pairs. All statistics are per prompt: activations are pooled over
real tokens (``LayerMapConfig.pooling``). Layer 0 is the embedding output, layer i the output of block i.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis import figures
from analysis.probes import (
    ProbeResult,
    SeparabilityScores,
    auc_interval,
    context_masks,
    fold_indices,
    probe_layer,
    separability_scores,
    transfer_layer,
    wilson_interval,
)
from analysis.projections import METHODS, project_layers, subsample
from analysis.schema import SCHEMA_VERSION, validate_analysis
from clear_core.concepts import ConceptSet
from clear_core.encoders import CaptureConfig, TextEncoder

__all__ = [
    "LayerMapConfig",
    "LayerMapResult",
    "PointSet",
    "iter_layer_map",
    "projection_figure",
    "run_layer_map",
    "separability_figure",
    "write_layer_map",
]

ProgressFn = Callable[[str, float], None]
KINDS = ("positive", "negative", "implicit", "neutral")


@dataclass
class LayerMapConfig:
    """What the layer map computes; the CLI and the app both build one of these."""

    pooling: str = "mean"
    """One vector per prompt: "mean" over its real tokens, or "max" (per dimension)."""
    k_folds: int = 5
    """Folds of the probe's cross-validation; each class needs at least this many pairs."""
    methods: tuple[str, ...] = ("pca", "umap")
    """Projections to draw ("pca", "tsne", "umap"); PCA is always computed first, as the instant view."""
    max_points: int = 600
    """Above this many prompts the projections show a stratified subsample (and say so)."""
    seed: int = 0
    """Seed of the folds, the subsample, t-SNE and UMAP: the same seed gives the same result."""
    probe_dims: int | None = None
    """Principal components the probe sees (fitted per training fold); None (default) uses every dimension."""
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    """How activations are captured and cached."""

    def __post_init__(self) -> None:
        if self.pooling not in ("mean", "max"):
            raise ValueError(f"pooling must be 'mean' or 'max', got {self.pooling!r}")
        if isinstance(self.k_folds, bool) or not isinstance(self.k_folds, int) or self.k_folds < 2:
            raise ValueError(f"k_folds must be an integer ≥ 2, got {self.k_folds!r}")
        if isinstance(self.methods, str):
            raise ValueError(f"methods must be a list of names, got the string {self.methods!r}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown projection method(s) {unknown}; expected some of {', '.join(METHODS)}")
        self.methods = tuple(dict.fromkeys(["pca", *self.methods]))
        if self.max_points < 10:
            raise ValueError(f"max_points must be ≥ 10, got {self.max_points}")
        if self.probe_dims is not None and self.probe_dims < 1:
            raise ValueError(f"probe_dims must be ≥ 1 or None, got {self.probe_dims}")

    def to_json(self) -> dict[str, Any]:
        """The fields recorded in analysis.json (the capture settings are not: they do not change results)."""
        out = {k: v for k, v in asdict(self).items() if k != "capture"}
        out["methods"] = list(self.methods)
        return out


@dataclass
class PointSet:
    """The prompts shown in the projections (all of them, or a subsample)."""

    texts: list[str]
    """Prompt text of each point (shown on hover)."""
    kinds: list[str]
    """"positive", "negative", "implicit" or "neutral" per point."""
    indices: list[int]
    """Index of each point among all prompts (positives, negatives, implicit, neutral, in that order)."""
    note: str | None = None
    """Visible note when the points are a subsample."""


@dataclass
class LayerMapResult:
    """A snapshot of the layer map; NaN in a per-layer array (None for a panel) means "not yet"."""

    concept: str
    """Concept name."""
    model_id: str
    """Encoder that produced the activations."""
    layer_names: list[str]
    """"embeddings", then the module path of each block."""
    config: LayerMapConfig
    """The settings used."""
    n_pairs: int
    """Positive/negative pairs (the probe sees 2 × n_pairs prompts)."""
    n_implicit: int
    """Implicit prompts (and as many matched neutral prompts); 0 when none were given."""
    probe: ProbeResult
    """k-fold probe error on the pairs, per layer."""
    transfer: ProbeResult | None
    """Probe trained on the pairs, tested on implicit vs neutral; None without implicit prompts."""
    separability: SeparabilityScores
    """Fisher ratio and silhouette per layer."""
    points: PointSet
    """The projected prompts."""
    projections: dict[str, list[np.ndarray | None]]
    """Method → per layer (n_points, 2) coordinates or None."""
    chosen_layer: int | None = None
    """Layer picked by a search, marked in the figures; set it with ``dataclasses.replace``."""
    context: ProbeResult | None = None
    """Word-blind probe error per layer (pairs pooled over their common prefix only); None when the
    tokenizer's tokens do not line up with the capture's, or in results saved before it existed."""
    complete: bool = False
    """True on the final snapshot."""
    stage: str = "scores"
    """Which stage produced this snapshot (see the module docstring); not saved."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent per stage."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict following :data:`analysis.schema.ANALYSIS_SCHEMA` (NaN becomes null)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "concept": self.concept,
            "model_id": self.model_id,
            "layer_names": list(self.layer_names),
            "config": self.config.to_json(),
            "counts": {"pairs": self.n_pairs, "implicit": self.n_implicit},
            "probe": _probe_json(self.probe),
            "transfer": None if self.transfer is None else _probe_json(self.transfer),
            "context": None if self.context is None else _probe_json(self.context),
            "separability": {
                "fisher": _nulls(self.separability.fisher),
                "silhouette": _nulls(self.separability.silhouette),
            },
            "points": {
                "text": list(self.points.texts),
                "kind": list(self.points.kinds),
                "index": [int(i) for i in self.points.indices],
                "note": self.points.note,
            },
            "projections": {m: [_coords_json(c) for c in panels] for m, panels in self.projections.items()},
            "chosen_layer": self.chosen_layer,
            "complete": self.complete,
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> LayerMapResult:
        """Rebuild a result from :meth:`to_json` output (validated first; ValueError if invalid)."""
        validate_analysis(obj)
        cfg = obj["config"]
        config = LayerMapConfig(**{**cfg, "methods": tuple(cfg["methods"])})
        return cls(
            concept=obj["concept"],
            model_id=obj["model_id"],
            layer_names=list(obj["layer_names"]),
            config=config,
            n_pairs=obj["counts"]["pairs"],
            n_implicit=obj["counts"]["implicit"],
            probe=_probe_from(obj["probe"]),
            transfer=None if obj["transfer"] is None else _probe_from(obj["transfer"]),
            separability=SeparabilityScores(
                _floats(obj["separability"]["fisher"]), _floats(obj["separability"]["silhouette"])
            ),
            points=PointSet(
                obj["points"]["text"], obj["points"]["kind"], obj["points"]["index"], obj["points"]["note"]
            ),
            projections={
                m: [None if c is None else np.asarray(c, dtype=float).reshape(-1, 2) for c in panels]
                for m, panels in obj["projections"].items()
            },
            chosen_layer=obj["chosen_layer"],
            context=None if obj.get("context") is None else _probe_from(obj["context"]),
            complete=obj["complete"],
            stage="done" if obj["complete"] else "partial",
            timings=dict(obj["timings"]),
        )


# ----------------------------------------------------------------------------------- json helpers
def _nulls(values: np.ndarray | None) -> list[float | None] | None:
    if values is None:
        return None
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, dtype=float)]


def _floats(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _coords_json(coords: np.ndarray | None) -> list[list[float]] | None:
    return None if coords is None else np.round(np.asarray(coords, dtype=float), 4).tolist()


def _probe_json(probe: ProbeResult) -> dict[str, Any]:
    out = {"error": _nulls(probe.error), "ci_low": _nulls(probe.ci_low), "ci_high": _nulls(probe.ci_high)}
    if probe.auc is not None:
        out["auc"] = _nulls(probe.auc)
    if probe.auc_ci_low is not None:
        out["auc_ci_low"], out["auc_ci_high"] = _nulls(probe.auc_ci_low), _nulls(probe.auc_ci_high)
    return {**out, "n_test": int(probe.n_test)}


def _probe_from(obj: dict[str, Any]) -> ProbeResult:
    auc = _floats(obj["auc"]) if "auc" in obj else None
    low = _floats(obj["auc_ci_low"]) if "auc_ci_low" in obj else None
    high = _floats(obj["auc_ci_high"]) if "auc_ci_high" in obj else None
    return ProbeResult(
        _floats(obj["error"]), _floats(obj["ci_low"]), _floats(obj["ci_high"]), obj["n_test"], auc, low, high
    )


def _pending_probe(n_layers: int, n_test: int, with_auc: bool = False) -> ProbeResult:
    nan = np.full(n_layers, np.nan)
    auc = [nan.copy() if with_auc else None for _ in range(3)]
    return ProbeResult(nan.copy(), nan.copy(), nan.copy(), n_test, *auc)


# ------------------------------------------------------------------------------------ inputs
@dataclass
class _Data:
    """Pooled activations of every prompt, with what the stages need."""

    X: np.ndarray  # (n_prompts, n_layers, d): positives, negatives, implicit, neutral
    X_context: np.ndarray | None  # (2 n_pairs, n_layers, d): pairs pooled over their shared tokens
    texts: list[str]
    kinds: np.ndarray  # (n_prompts,)
    layer_names: list[str]
    n_pairs: int
    n_implicit: int

    @property
    def pairs(self) -> slice:
        return slice(0, 2 * self.n_pairs)

    @property
    def y_pairs(self) -> np.ndarray:
        return np.repeat([1, 0], self.n_pairs)

    @property
    def groups(self) -> np.ndarray:
        return np.tile(np.arange(self.n_pairs), 2)

    @property
    def evaluation(self) -> slice:
        return slice(2 * self.n_pairs, len(self.texts))

    @property
    def y_eval(self) -> np.ndarray:
        return np.repeat([1, 0], self.n_implicit)


def _check_inputs(
    concept: ConceptSet, implicit: Sequence[str] | None, neutral: Sequence[str] | None, config: LayerMapConfig
) -> tuple[list[str], list[str]]:
    if not hasattr(concept, "positives") or not hasattr(concept, "negatives"):
        raise ValueError(
            f"concept must be a ConceptSet (positive/negative pairs), got {type(concept).__name__}"
        )
    n = len(concept.positives)
    if n < config.k_folds:
        raise ValueError(
            f"concept {concept.name!r} has {n} pair(s); {config.k_folds}-fold probes need at least "
            f"{config.k_folds} positive and {config.k_folds} negative prompts (add pairs or lower k_folds)"
        )
    if isinstance(implicit, str) or isinstance(neutral, str):
        raise ValueError("implicit and neutral must be lists of prompts, not a single string")
    implicit, neutral = list(implicit or []), list(neutral or [])
    if bool(implicit) != bool(neutral):
        given, missing = ("implicit", "neutral") if implicit else ("neutral", "implicit")
        raise ValueError(
            f"{given} prompts were given without {missing} prompts; the transfer test needs both"
        )
    if len(implicit) != len(neutral):
        raise ValueError(
            f"{len(implicit)} implicit prompts but {len(neutral)} neutral prompts; "
            "each implicit prompt needs its matched neutral prompt (same line)"
        )
    return implicit, neutral


def _token_ids(encoder: TextEncoder, acts, batch: int = 256) -> list[np.ndarray] | None:
    """Each captured prompt's token ids, aligned with its captured rows; None if they do not line up."""
    tokenize = getattr(encoder, "tokenize", None)
    if tokenize is None:
        return None
    out = []
    for start in range(0, acts.n_prompts, batch):
        ids = tokenize(acts.prompts[start : start + batch])["input_ids"].cpu().numpy()
        for row, length in zip(ids, acts.lengths[start : start + batch]):
            if length > len(row):
                return None
            out.append(row[:length])
    return out


def _context_pool(encoder: TextEncoder, pos, neg, pooling: str) -> np.ndarray | None:
    """(2n, n_layers, d): positives then negatives, each pooled over its pair's common prefix."""
    pos_ids, neg_ids = _token_ids(encoder, pos), _token_ids(encoder, neg)
    if pos_ids is None or neg_ids is None:
        return None
    keep = {"pos": [], "neg": []}
    for a, b in zip(pos_ids, neg_ids):
        ma, mb = context_masks(a, b)
        keep["pos"].append(ma if ma.any() else np.ones_like(ma))
        keep["neg"].append(mb if mb.any() else np.ones_like(mb))
    out = []
    for acts, masks in ((pos, keep["pos"]), (neg, keep["neg"])):
        rows = np.concatenate([acts.offsets[i] + np.flatnonzero(m) for i, m in enumerate(masks)])
        counts = np.array([m.sum() for m in masks])
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        pooled = np.empty((acts.n_prompts, acts.n_layers, acts.d_model), dtype=np.float32)
        for layer in range(acts.n_layers):
            x = acts.layer(layer)[rows]
            if pooling == "mean":
                pooled[:, layer] = np.add.reduceat(x, starts, axis=0) / counts[:, None]
            else:
                pooled[:, layer] = np.maximum.reduceat(x, starts, axis=0)
        out.append(pooled)
    return np.concatenate(out)


def _capture(
    encoder: TextEncoder,
    groups: Sequence[tuple[str, list[str]]],
    config: LayerMapConfig,
    report: Callable[[str, float], None],
) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """Capture and pool each prompt group separately (one cache entry each); also the pairs' word-blind
    (shared-token) pooling."""
    total = sum(len(p) for _, p in groups)
    pooled, done, names, captured = [], 0, [], {}
    for kind, prompts in groups:
        if not prompts:
            continue

        def step(i: int, n: int, kind: str = kind, before: int = done) -> None:
            report(f"capturing {kind} prompts ({i}/{n})", (before + i) / total)

        acts = encoder.capture(prompts, config.capture, progress=step)
        pooled.append(acts.pooled(config.pooling))
        names = acts.layer_names
        captured[kind] = acts
        done += len(prompts)
    context = _context_pool(encoder, captured["positive"], captured["negative"], config.pooling)
    return np.concatenate(pooled), names, context


# ------------------------------------------------------------------------------------ stages
class _Progress:
    """Maps each stage's own 0..1 onto the whole run's fraction."""

    def __init__(self, fn: ProgressFn | None, methods: Sequence[str]) -> None:
        self.fn = fn
        self.spans = {
            "capture": (0.0, 0.3),
            "scores": (0.3, 0.35),
            "probe": (0.35, 0.5),
            "context": (0.5, 0.6),
            "transfer": (0.6, 0.7),
        }
        slow = [m for m in methods if m != "pca"]
        width = 0.3 / max(len(slow), 1)
        for i, m in enumerate(slow):
            self.spans[f"projection:{m}"] = (0.7 + i * width, 0.7 + (i + 1) * width)

    def __call__(self, stage: str, message: str, fraction: float) -> None:
        if self.fn is not None:
            lo, hi = self.spans.get(stage, (1.0, 1.0))
            self.fn(message, lo + (hi - lo) * min(max(fraction, 0.0), 1.0))


def iter_layer_map(
    encoder: TextEncoder,
    concept: ConceptSet,
    implicit: Sequence[str] | None = None,
    neutral: Sequence[str] | None = None,
    config: LayerMapConfig | None = None,
    progress: ProgressFn | None = None,
) -> Iterator[LayerMapResult]:
    """Ever more complete :class:`LayerMapResult` snapshots (stages in the module docstring).

    Bad input raises ValueError here, at the call, before any capture; the work happens as the
    returned generator is iterated (``close()`` it to stop early). Each snapshot is an independent
    copy, safe to keep. ``implicit[i]`` and ``neutral[i]`` are the same scene with and without the
    concept (give both or neither). ``progress(message, fraction)`` is called as the work advances.
    """
    config = config or LayerMapConfig()
    implicit, neutral = _check_inputs(concept, implicit, neutral, config)
    return _stream(encoder, concept, implicit, neutral, config, _Progress(progress, config.methods))


def _stream(
    encoder: TextEncoder,
    concept: ConceptSet,
    implicit: list[str],
    neutral: list[str],
    config: LayerMapConfig,
    report: _Progress,
) -> Iterator[LayerMapResult]:
    start = time.perf_counter()
    groups = [
        ("positive", concept.positives),
        ("negative", concept.negatives),
        ("implicit", implicit),
        ("neutral", neutral),
    ]
    X, layer_names, X_context = _capture(
        encoder, groups, config, lambda msg, frac: report("capture", msg, frac)
    )
    n, m = len(concept.positives), len(implicit)
    kinds = np.repeat(KINDS, [n, n, m, m])
    texts = [*concept.positives, *concept.negatives, *implicit, *neutral]
    data = _Data(X, X_context, texts, kinds, layer_names, n, m)
    state = _initial_state(encoder, concept, data, config, timings={"capture": time.perf_counter() - start})
    yield from _run_stages(state, data, config, report)


def _initial_state(encoder, concept, data: _Data, config: LayerMapConfig, timings: dict) -> LayerMapResult:
    n_layers = len(data.layer_names)
    sub = subsample(data.kinds, config.max_points, config.seed)
    points = PointSet(
        [data.texts[i] for i in sub.indices], data.kinds[sub.indices].tolist(), sub.indices.tolist(), sub.note
    )
    nan = np.full(n_layers, np.nan)
    return LayerMapResult(
        concept=concept.name,
        model_id=getattr(encoder, "model_id", ""),
        layer_names=list(data.layer_names),
        config=config,
        n_pairs=data.n_pairs,
        n_implicit=data.n_implicit,
        probe=_pending_probe(n_layers, 2 * data.n_pairs),
        transfer=_pending_probe(n_layers, 2 * data.n_implicit, with_auc=True) if data.n_implicit else None,
        context=_pending_probe(n_layers, 2 * data.n_pairs) if data.X_context is not None else None,
        separability=SeparabilityScores(nan.copy(), nan.copy()),
        points=points,
        projections={method: [None] * n_layers for method in config.methods},
        timings=timings,
    )


def _run_stages(
    state: LayerMapResult, data: _Data, config: LayerMapConfig, report: _Progress
) -> Iterator[LayerMapResult]:
    X_pairs, y, groups = data.X[data.pairs], data.y_pairs, data.groups
    n_layers = X_pairs.shape[1]
    rows = np.asarray(state.points.indices)

    with _timed(state, "scores"):
        report("scores", "separability scores", 0.0)
        state.separability = separability_scores(X_pairs, y, groups, config.seed)
        state.projections["pca"] = [p.coords for p in project_layers(data.X, "pca", rows, config.seed)]
    state.stage = "scores"
    yield copy.deepcopy(state)

    folds = fold_indices(y, groups, config.k_folds, config.seed)
    for layer in range(n_layers):
        with _timed(state, "probe"):
            report("probe", f"probe: layer {layer + 1}/{n_layers}", layer / n_layers)
            error = probe_layer(X_pairs[:, layer], y, folds, config.probe_dims, config.seed)
            _set(state.probe, layer, error)
        state.stage = "probe"
        yield copy.deepcopy(state)

    if state.context is not None:
        for layer in range(n_layers):
            with _timed(state, "context"):
                report("context", f"word-blind probe: layer {layer + 1}/{n_layers}", layer / n_layers)
                error = probe_layer(data.X_context[:, layer], y, folds, config.probe_dims, config.seed)
                _set(state.context, layer, error)
            state.stage = "context"
            yield copy.deepcopy(state)

    if state.transfer is not None:
        X_eval = data.X[data.evaluation]
        for layer in range(n_layers):
            with _timed(state, "transfer"):
                report("transfer", f"transfer: layer {layer + 1}/{n_layers}", layer / n_layers)
                error, auc = transfer_layer(
                    X_pairs[:, layer], y, X_eval[:, layer], data.y_eval, config.probe_dims, config.seed
                )
                _set(state.transfer, layer, error, auc)
            state.stage = "transfer"
            yield copy.deepcopy(state)

    for method in (m for m in config.methods if m != "pca"):
        stage = f"projection:{method}"
        report(stage, f"{method}: layer 1/{n_layers}", 0.0)
        panels = project_layers(data.X, method, rows, config.seed)
        for layer in range(n_layers):
            with _timed(state, method):
                state.projections[method][layer] = next(panels).coords
                report(stage, f"{method}: layer {layer + 1}/{n_layers}", (layer + 1) / n_layers)
            state.stage = stage
            yield copy.deepcopy(state)

    state.complete, state.stage = True, "done"
    report("done", "done", 1.0)
    yield copy.deepcopy(state)


def _set(probe: ProbeResult, layer: int, error: float, auc: float | None = None) -> None:
    low, high = wilson_interval(error, probe.n_test)
    probe.error[layer], probe.ci_low[layer], probe.ci_high[layer] = error, low, high
    if auc is not None and probe.auc is not None:
        probe.auc[layer] = auc
        if probe.auc_ci_low is not None:
            half = probe.n_test // 2  # transfer: as many implicit as neutral prompts
            probe.auc_ci_low[layer], probe.auc_ci_high[layer] = auc_interval(auc, half, probe.n_test - half)


@contextmanager
def _timed(state: LayerMapResult, key: str) -> Iterator[None]:
    """Adds the time spent inside the block to ``state.timings[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        state.timings[key] = state.timings.get(key, 0.0) + time.perf_counter() - start


def run_layer_map(
    encoder: TextEncoder,
    concept: ConceptSet,
    implicit: Sequence[str] | None = None,
    neutral: Sequence[str] | None = None,
    config: LayerMapConfig | None = None,
    progress: ProgressFn | None = None,
) -> LayerMapResult:
    """The final result of :func:`iter_layer_map` (``progress(message, fraction)`` is called as it runs)."""
    return deque(iter_layer_map(encoder, concept, implicit, neutral, config, progress), maxlen=1)[0]


# ------------------------------------------------------------------------------------ output
def separability_figure(result: LayerMapResult):
    """The probe / transfer / separability curve of a result (a plotly Figure)."""
    transfer = result.transfer
    return figures.separability_curve(
        result.layer_names,
        probe_error=result.probe.error,
        probe_ci=(result.probe.ci_low, result.probe.ci_high),
        transfer_error=None if transfer is None else transfer.error,
        transfer_ci=None if transfer is None else (transfer.ci_low, transfer.ci_high),
        fisher=result.separability.fisher,
        silhouette=result.separability.silhouette,
        chosen_layer=result.chosen_layer,
        title=f"{result.concept}: where is it separable? ({result.model_id}, {result.config.pooling}-pooled)",
    )


def projection_figure(result: LayerMapResult, method: str):
    """Small multiples of one projection method, every layer (a plotly Figure)."""
    if method not in result.projections:
        raise ValueError(f"no {method!r} projections in this result; it has {', '.join(result.projections)}")
    return figures.projection_grid(
        result.projections[method],
        result.layer_names,
        result.points.texts,
        result.points.kinds,
        title=f"{result.concept}: {method.upper() if method == 'pca' else method} per layer ({result.model_id})",
        note=result.points.note,
    )


def write_layer_map(result: LayerMapResult, out_dir: str | Path) -> list[Path]:
    """Write ``analysis.json``, ``separability.html`` and ``projections_<method>.html`` (self-contained).

    To mark a search's block, pass ``dataclasses.replace(result, chosen_layer=l)``. The JSON is
    validated before anything is written. Returns the paths written.
    """
    out = Path(out_dir)
    obj = result.to_json()
    validate_analysis(obj)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "analysis.json"
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1, allow_nan=False), encoding="utf-8")
    paths = [path, figures.save_html(separability_figure(result), out / "separability.html")]
    for method in result.projections:
        paths.append(figures.save_html(projection_figure(result, method), out / f"projections_{method}.html"))
    return paths
