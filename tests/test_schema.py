import copy

import pytest

from analysis.schema import ANALYSIS_SCHEMA, validate_analysis

LAYERS = ["embeddings", "encoder.layer.0"]


def valid() -> dict:
    probe = {"error": [0.0, 0.1], "ci_low": [0.0, 0.05], "ci_high": [0.1, 0.2], "n_test": 40}
    return {
        "schema_version": 1,
        "concept": "parachute",
        "model_id": "minilm",
        "layer_names": LAYERS,
        "config": {
            "pooling": "mean",
            "k_folds": 5,
            "methods": ["pca"],
            "max_points": 600,
            "seed": 0,
            "probe_dims": 128,
        },
        "counts": {"pairs": 20, "implicit": 0},
        "probe": probe,
        "transfer": None,
        "separability": {"fisher": [1.0, None], "silhouette": [0.1, None]},
        "points": {"text": ["a", "b"], "kind": ["positive", "negative"], "index": [0, 20], "note": None},
        "projections": {"pca": [[[0, 1], [1, 0]], None]},
        "chosen_layer": None,
        "complete": False,
        "timings": {"scores": 0.2},
    }


def test_valid_object_passes():
    validate_analysis(valid())
    assert set(ANALYSIS_SCHEMA["required"]) == set(valid())


def _with(path: str, value):
    obj = copy.deepcopy(valid())
    *parents, last = path.split("/")
    target = obj
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return obj


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        ("concept", KeyError, "at <root>: 'concept' is a required property"),
        ("config/pooling", "sum", "at config/pooling"),
        ("probe/error", [0.1], "at probe/error: 1 entries for 2 layers"),
        ("separability/fisher", [1.0, "high"], "at separability/fisher/1"),
        ("points/kind", ["positive", "other"], "at points/kind/1"),
        ("points/index", [0], "points: text, kind and index differ in length"),
        ("projections/pca", [[[0, 1]], None], "at projections/pca/0: 1 coordinates for 2 points"),
        ("projections/mds", [None, None], "at projections"),
        ("chosen_layer", 2, "at chosen_layer: 2 is not below 2"),
        ("schema_version", 2, "at schema_version"),
        ("extra", 1, "Additional properties"),
    ],
)
def test_invalid_objects_name_the_field(path, value, match):
    with pytest.raises(ValueError, match=match):
        validate_analysis(_with(path, value))
