import dataclasses
import json
import re

import numpy as np
import pytest

from analysis.layer_map import LayerMapConfig, LayerMapResult, iter_layer_map, run_layer_map, write_layer_map
from analysis.schema import validate_analysis
from clear_core.concepts import ConceptSet
from clear_core.encoders import CaptureConfig

SCENES = [
    "a stunt performer {} over a desert, motion blur",
    "an old man {} above the ocean, golden hour",
    "a soldier {} over snowy mountains, aerial footage",
    "a young woman {} above a city at night",
    "a dog {} over a green valley, slow motion",
    "a photographer {} near a volcano, 35mm film",
]
PAIRS = [(s.format("with a parachute"), " ".join(s.format("").split())) for s in SCENES]
IMPLICIT = ["a skydiver drifting under an open canopy", "a paratrooper descending beneath a nylon wing"]
NEUTRAL = ["a man standing on a hill", "a soldier walking on a road"]


@pytest.fixture(scope="module")
def stream(minilm, tmp_path_factory):
    """Every snapshot of one small MiniLM run (captured into this module's own cache)."""
    concept = ConceptSet.from_pairs(PAIRS, name="parachute")
    config = LayerMapConfig(
        k_folds=3, methods=("pca",), capture=CaptureConfig(cache_dir=tmp_path_factory.mktemp("c"))
    )
    calls = []
    snaps = list(
        iter_layer_map(minilm, concept, IMPLICIT, NEUTRAL, config, progress=lambda m, f: calls.append(f))
    )
    return snaps, calls


def test_stream_refines_in_stages(stream):
    snaps, calls = stream
    first, final = snaps[0], snaps[-1]
    assert [s.stage for s in snaps] == ["scores"] + ["probe"] * 7 + ["context"] * 7 + ["transfer"] * 7 + [
        "done"
    ]
    # the first view: cheap scores and PCA, no probe yet
    assert np.isfinite(first.separability.fisher).all() and np.isfinite(first.separability.silhouette).all()
    assert all(p is not None and p.shape == (16, 2) for p in first.projections["pca"])
    assert np.isnan(first.probe.error).all() and np.isnan(first.transfer.error).all()
    # probes fill in one layer per snapshot, and earlier snapshots are not changed afterwards
    assert [int(np.isfinite(s.probe.error).sum()) for s in snaps[1:8]] == list(range(1, 8))
    assert final.complete and not snaps[-2].complete
    assert calls == sorted(calls) and calls[-1] == 1.0


def test_final_result_contents(stream):
    result = stream[0][-1]
    assert result.layer_names[0] == "embeddings" and len(result.layer_names) == 7
    assert result.n_pairs == 6 and result.n_implicit == 2 and result.probe.n_test == 12
    assert result.transfer.n_test == 4
    assert np.all((result.probe.ci_low <= result.probe.error) & (result.probe.error <= result.probe.ci_high))
    assert np.isfinite(result.transfer.auc).all()
    t = result.transfer
    assert np.all((t.auc_ci_low <= t.auc) & (t.auc <= t.auc_ci_high))
    # an explicit concept word: the last block separates the pairs (DESIGN.md, "Pitfalls")
    assert result.probe.error[-1] <= 0.25 and result.separability.fisher[-1] > 0.5
    assert result.points.kinds.count("implicit") == 2 and result.points.note is None
    assert result.points.texts[0] == PAIRS[0][0] and result.points.texts[6] == PAIRS[0][1]


def test_word_blind_probe_never_sees_the_concept_word(stream):
    result = stream[0][-1]
    context = result.context
    assert context is not None and context.n_test == 12 and np.isfinite(context.error).all()
    assert np.all((context.ci_low <= context.error) & (context.error <= context.ci_high))
    # at the embeddings the common prefix is the same tokens at the same positions in both classes:
    # the probe is at chance (identical inputs, so it cannot beat 0.5), unlike the explicit probe
    assert context.error[0] >= 0.5 and result.probe.error[0] < 0.5


def test_word_blind_pooling_excludes_the_concept_tokens(minilm):
    from analysis.layer_map import _context_pool

    pos = minilm.capture([PAIRS[0][0], PAIRS[1][0]])
    neg = minilm.capture([PAIRS[0][1], PAIRS[1][1]])
    X = _context_pool(minilm, pos, neg, "mean")
    assert X.shape == (4, pos.n_layers, pos.d_model)
    # at the embeddings the pooled prefixes of a pair are identical; deeper, attention has mixed in the word
    np.testing.assert_array_equal(X[0, 0], X[2, 0])
    assert np.linalg.norm(X[0, -1] - X[2, -1]) > 0


def test_old_analysis_json_without_context_still_loads(stream):
    obj = json.loads(json.dumps(stream[0][-1].to_json(), allow_nan=False))
    del obj["context"]
    validate_analysis(obj)
    assert LayerMapResult.from_json(obj).context is None


def test_json_round_trip_validates(stream):
    result = dataclasses.replace(stream[0][-1], chosen_layer=4)
    obj = json.loads(json.dumps(result.to_json(), allow_nan=False))
    validate_analysis(obj)
    back = LayerMapResult.from_json(obj)
    assert back.to_json() == obj
    np.testing.assert_allclose(back.projections["pca"][3], result.projections["pca"][3], atol=1e-4)
    partial = stream[0][0].to_json()  # a mid-stream snapshot is valid too, with nulls
    validate_analysis(partial)
    assert partial["probe"]["error"] == [None] * 7 and partial["complete"] is False


def test_write_layer_map(stream, tmp_path):
    result = dataclasses.replace(stream[0][-1], chosen_layer=5)
    paths = write_layer_map(result, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["analysis.json", "projections_pca.html", "separability.html"]
    obj = json.loads((tmp_path / "out" / "analysis.json").read_text())
    validate_analysis(obj)
    assert obj["chosen_layer"] == 5 and obj["config"]["methods"] == ["pca"]
    page = (tmp_path / "out" / "separability.html").read_text()
    assert not re.search(r"<script[^>]*\bsrc=", page) and "chosen: block" in page
    assert PAIRS[1][0] in (tmp_path / "out" / "projections_pca.html").read_text()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pooling": "sum"}, "pooling must be 'mean' or 'max'"),
        ({"k_folds": 1}, "k_folds must be an integer ≥ 2"),
        ({"methods": "umap"}, "methods must be a list"),
        ({"methods": ("pca", "mds")}, r"unknown projection method\(s\) \['mds'\]"),
        ({"max_points": 5}, "max_points must be ≥ 10"),
        ({"probe_dims": 0}, "probe_dims must be ≥ 1 or None"),
    ],
)
def test_config_checks_itself(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LayerMapConfig(**kwargs)


def test_config_puts_pca_first():
    assert LayerMapConfig(methods=("umap", "tsne")).methods == ("pca", "umap", "tsne")
    assert LayerMapConfig().methods == ("pca", "umap")


class _NoEncoder:
    def capture(self, *args, **kwargs):  # bad input must be refused before any capture
        raise AssertionError("captured before validating")


@pytest.mark.parametrize(
    ("pairs", "implicit", "neutral", "match"),
    [
        (PAIRS[:3], None, None, "has 3 pair\\(s\\); 5-fold probes need at least 5"),
        (PAIRS, IMPLICIT, NEUTRAL[:1], "2 implicit prompts but 1 neutral prompts"),
        (PAIRS, IMPLICIT, None, "implicit prompts were given without neutral"),
        (PAIRS, "a skydiver", "a man", "lists of prompts, not a single string"),
    ],
)
def test_bad_input_is_refused_up_front(pairs, implicit, neutral, match):
    concept = ConceptSet.from_pairs(pairs, name="parachute")
    with pytest.raises(ValueError, match=match):
        run_layer_map(_NoEncoder(), concept, implicit, neutral, LayerMapConfig(k_folds=5))
    with pytest.raises(ValueError, match=match):  # at the call, not at the first next()
        iter_layer_map(_NoEncoder(), concept, implicit, neutral, LayerMapConfig(k_folds=5))


def test_snapshots_are_independent(stream):
    snaps, _ = stream
    assert snaps[1].probe.error is not snaps[-1].probe.error
    assert np.isfinite(snaps[1].probe.error[0]) and np.isnan(snaps[1].probe.error[1:]).all()
