"""The documented format of ``analysis.json`` (written by ``analyze`` / :func:`write_layer_map`).

Per-layer arrays have one entry per layer: index 0 is "embeddings", index i ≥ 1 the output of block i.
``null`` in a per-layer array means "not computed" (a partial result saved mid-stream, or no implicit
prompts for the transfer error). Projection coordinates are given for the projected points only, in
the order of ``points`` (a subsample when ``points.note`` is set).

Example (MiniLM, abridged)::

    {
      "schema_version": 1,
      "concept": "parachute", "model_id": "minilm",
      "layer_names": ["embeddings", "encoder.layer.0", ...],
      "config": {"pooling": "mean", "k_folds": 5, "methods": ["pca", "umap"], "max_points": 600,
                 "seed": 0, "probe_dims": null},
      "counts": {"pairs": 500, "implicit": 40},
      "probe": {"error": [0.01, ...], "ci_low": [...], "ci_high": [...], "n_test": 1000},
      "transfer": {"error": [...], "ci_low": [...], "ci_high": [...], "auc": [...], "n_test": 80},
      "context": {"error": [0.45, ...], "ci_low": [...], "ci_high": [...], "n_test": 1000},
      "separability": {"fisher": [...], "silhouette": [...]},
      "points": {"text": [...], "kind": ["positive", ...], "index": [...], "note": null},
      "projections": {"pca": [[[x, y], ...], ...], "umap": [...]},
      "chosen_layer": null, "complete": true, "timings": {"capture": 3.1, ...}
    }
"""

from __future__ import annotations

from typing import Any

import jsonschema

__all__ = ["ANALYSIS_SCHEMA", "SCHEMA_VERSION", "validate_analysis"]

SCHEMA_VERSION = 1

_NUM_OR_NULL = {"type": ["number", "null"]}
_LAYER_VALUES = {"type": "array", "items": _NUM_OR_NULL}
_PROBE = {
    "type": "object",
    "description": "Error (1 − accuracy) per layer with its 95% Wilson interval over n_test predictions.",
    "required": ["error", "ci_low", "ci_high", "n_test"],
    "properties": {
        "error": _LAYER_VALUES,
        "ci_low": _LAYER_VALUES,
        "ci_high": _LAYER_VALUES,
        "auc": {**_LAYER_VALUES, "description": "ROC AUC of the probe's scores (transfer only)."},
        "auc_ci_low": {**_LAYER_VALUES, "description": "95% interval of the AUC (Hanley-McNeil; optional)."},
        "auc_ci_high": _LAYER_VALUES,
        "n_test": {"type": "integer", "minimum": 1},
    },
    "additionalProperties": False,
}
_PANELS = {
    "type": "array",
    "description": "One entry per layer: (n_points, 2) coordinates, or null when not computed.",
    "items": {
        "oneOf": [
            {"type": "null"},
            {
                "type": "array",
                "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            },
        ]
    },
}

ANALYSIS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "CLEAR Workbench layer map (analysis.json)",
    "type": "object",
    "required": [
        "schema_version",
        "concept",
        "model_id",
        "layer_names",
        "config",
        "counts",
        "probe",
        "transfer",
        "separability",
        "points",
        "projections",
        "chosen_layer",
        "complete",
        "timings",
    ],  # fmt: skip
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "concept": {"type": "string", "minLength": 1},
        "model_id": {"type": "string"},
        "layer_names": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "config": {
            "type": "object",
            "required": ["pooling", "k_folds", "methods", "max_points", "seed", "probe_dims"],
            "properties": {
                "pooling": {"enum": ["mean", "max"]},
                "k_folds": {"type": "integer", "minimum": 2},
                "methods": {"type": "array", "items": {"enum": ["pca", "tsne", "umap"]}},
                "max_points": {"type": "integer", "minimum": 10},
                "seed": {"type": "integer"},
                "probe_dims": {"type": ["integer", "null"], "minimum": 1},
            },
            "additionalProperties": False,
        },
        "counts": {
            "type": "object",
            "required": ["pairs", "implicit"],
            "properties": {
                "pairs": {"type": "integer", "minimum": 1},
                "implicit": {"type": "integer", "minimum": 0, "description": "implicit prompts (= neutral)"},
            },
            "additionalProperties": False,
        },
        "probe": _PROBE,
        "transfer": {"oneOf": [{"type": "null"}, _PROBE]},
        "context": {
            "oneOf": [{"type": "null"}, _PROBE],
            "description": "Word-blind probe: pairs pooled over the tokens both prompts share (optional; "
            "absent in files written before it existed).",
        },
        "separability": {
            "type": "object",
            "required": ["fisher", "silhouette"],
            "properties": {
                "fisher": {**_LAYER_VALUES, "description": "cross-fitted Fisher ratio (≥ 0)"},
                "silhouette": {**_LAYER_VALUES, "description": "silhouette of the two classes, in [-1, 1]"},
            },
            "additionalProperties": False,
        },
        "points": {
            "type": "object",
            "required": ["text", "kind", "index", "note"],
            "properties": {
                "text": {"type": "array", "items": {"type": "string"}},
                "kind": {"type": "array", "items": {"enum": ["positive", "negative", "implicit", "neutral"]}},
                "index": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "note": {"type": ["string", "null"], "description": "set when the points are a subsample"},
            },
            "additionalProperties": False,
        },
        "projections": {
            "type": "object",
            "propertyNames": {"enum": ["pca", "tsne", "umap"]},
            "additionalProperties": _PANELS,
        },
        "chosen_layer": {"type": ["integer", "null"], "minimum": 0},
        "complete": {"type": "boolean"},
        "timings": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
    },
}


def validate_analysis(obj: Any) -> None:
    """Raise ValueError (naming the offending field) unless ``obj`` is a valid analysis.json object.

    Beyond the JSON schema it checks what a schema cannot: every per-layer array has one entry per
    layer, every panel one row per point, and the chosen layer exists.
    """
    try:
        jsonschema.validate(obj, ANALYSIS_SCHEMA)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "<root>"
        raise ValueError(f"analysis.json is invalid at {where}: {err.message}") from None
    n_layers = len(obj["layer_names"])
    per_layer = {f"probe/{k}": v for k, v in obj["probe"].items() if k != "n_test"}
    for name in ("transfer", "context"):
        if obj.get(name) is not None:
            per_layer.update({f"{name}/{k}": v for k, v in obj[name].items() if k != "n_test"})
    per_layer.update({f"separability/{k}": v for k, v in obj["separability"].items()})
    per_layer.update({f"projections/{k}": v for k, v in obj["projections"].items()})
    for where, values in per_layer.items():
        if len(values) != n_layers:
            raise ValueError(
                f"analysis.json is invalid at {where}: {len(values)} entries for {n_layers} layers"
            )
    points = obj["points"]
    n_points = len(points["text"])
    if len(points["kind"]) != n_points or len(points["index"]) != n_points:
        raise ValueError("analysis.json is invalid at points: text, kind and index differ in length")
    for method, panels in obj["projections"].items():
        for layer, panel in enumerate(panels):
            if panel is not None and len(panel) != n_points:
                raise ValueError(
                    f"analysis.json is invalid at projections/{method}/{layer}: "
                    f"{len(panel)} coordinates for {n_points} points"
                )
    chosen = obj["chosen_layer"]
    if chosen is not None and chosen >= n_layers:
        raise ValueError(f"analysis.json is invalid at chosen_layer: {chosen} is not below {n_layers}")
