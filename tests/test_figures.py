import re

import numpy as np
import plotly.graph_objects as go
import pytest

from analysis import figures

LAYERS = ["embeddings", "encoder.layer.0", "encoder.layer.1"]


def test_projection_grid_panels_hover_and_pending():
    texts = ["a <b>bold</b> parachute", "a field", "a skydiver under a canopy", "a man on a hill"]
    kinds = ["positive", "negative", "implicit", "neutral"]
    coords = np.arange(8, dtype=float).reshape(4, 2)
    fig = figures.projection_grid([coords, None, coords], LAYERS, texts, kinds, title="t", note="subsampled!")
    points = [t for t in fig.data if t.mode == "markers"]
    assert len(points) == 2 * 4  # two drawn panels × four kinds
    assert sum(bool(t.showlegend) for t in points) == 4  # each kind in the legend once
    positive = next(t for t in points if t.name == "positive")
    assert positive.marker.color == figures.KIND_COLORS["positive"]
    assert list(positive.hovertext) == ["a &lt;b&gt;bold&lt;/b&gt; parachute"]  # escaped, not rendered
    assert any(t.mode == "text" and t.text == ("computing…",) for t in fig.data)
    assert any(a.text == "subsampled!" for a in fig.layout.annotations)
    assert [a.text for a in fig.layout.annotations][:3] == [
        "embeddings",
        "1: encoder.layer.0",
        "2: encoder.layer.1",
    ]


def test_projection_grid_checks_shapes():
    with pytest.raises(ValueError, match="panel 0: expected coordinates of shape"):
        figures.projection_grid([np.zeros((3, 2))], LAYERS[:1], ["a", "b"], ["positive", "negative"])
    with pytest.raises(ValueError, match="2 panels for 3 layers"):
        figures.projection_grid([None, None], LAYERS, [], [])
    with pytest.raises(ValueError, match="unknown point kinds"):
        figures.projection_grid([None], LAYERS[:1], ["a"], ["concept"])


def test_separability_curve_series_band_and_chosen_layer():
    err = [0.0, 0.1, None]
    fig = figures.separability_curve(
        LAYERS,
        probe_error=err,
        probe_ci=([0.0, 0.05, None], [0.02, 0.2, None]),
        transfer_error=[0.4, 0.2, 0.1],
        fisher=[3.0, 1.0, 0.0],
        silhouette=[0.1, 0.05, 0.0],
        chosen_layer=2,
    )
    names = [t.name for t in fig.data]
    assert "probe error (pairs, k-fold)" in names and "transfer error (implicit vs neutral)" in names
    band = next(t for t in fig.data if t.fill == "toself")
    assert list(band.y) == [0.02, 0.2, 0.05, 0.0]  # the pending layer is left out of the band
    fisher = next(t for t in fig.data if t.name.startswith("Fisher"))
    np.testing.assert_allclose(fisher.y, [0.75, 0.5, 0.0])
    assert fisher.yaxis == "y2"
    assert any(s.type == "line" and s.x0 == 2 for s in fig.layout.shapes)
    assert any("chosen: 2" in (a.text or "") for a in fig.layout.annotations)
    assert list(fig.layout.xaxis.ticktext) == ["emb", "1", "2"]


def test_separability_curve_checks_input():
    with pytest.raises(ValueError, match="probe_error: expected 3 values"):
        figures.separability_curve(LAYERS, probe_error=[0.1, 0.2])
    with pytest.raises(ValueError, match="chosen layer 3 is outside 0..2"):
        figures.separability_curve(LAYERS, probe_error=[0.1, 0.2, 0.3], chosen_layer=3)


def test_layer_probability_chart():
    probs = [[0.3, 0.3, 0.4], [0.1, 0.1, 0.8]]
    fig = figures.layer_probability_chart([0, 100], probs, LAYERS, chosen=2)
    assert len(fig.data) == 3
    assert fig.data[2].name.endswith("(chosen)") and fig.data[2].line.width > fig.data[0].line.width
    assert list(fig.data[2].y) == [0.4, 0.8]
    with pytest.raises(ValueError, match=r"expected shape \(n_steps=2, n_layers=3\)"):
        figures.layer_probability_chart([0, 100], np.array(probs).T, LAYERS)


def test_loss_chart_puts_tau_on_second_axis():
    fig = figures.loss_chart([0, 1, 2], {"L_SAE": [3, 2, 1], "L_con": [1, 0.5, 0.2]}, tau=[1.0, 0.55, 0.1])
    assert [t.name for t in fig.data] == ["L_SAE", "L_con", "τ"]
    assert fig.data[2].yaxis == "y2" and fig.data[0].yaxis in (None, "y")
    with pytest.raises(ValueError, match="tau: expected 3 values"):
        figures.loss_chart([0, 1, 2], {"L_SAE": [3, 2, 1]}, tau=[1.0])


def test_mask_histograms_count_high_spec():
    spec = np.array([0.9, 0.8, 0.1, 0.0])
    fig = figures.mask_histograms(1 - spec, spec)
    assert len(fig.data) == 2 and all(isinstance(t, go.Histogram) for t in fig.data)
    assert "m_spec > 0.5 for 2 of 4 features" in fig.layout.title.text
    with pytest.raises(ValueError, match="m_shared has 3 features but m_spec has 4"):
        figures.mask_histograms(np.zeros(3), spec)


def test_feature_bars():
    fig = figures.feature_bars([7, 42], [1.0, 2.0], [0.1, 0.0], [0.9, 1.0])
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert [t.name for t in bars] == ["positive prompts", "negative prompts"]
    assert list(bars[0].x) == ["#7", "#42"] and list(bars[0].y) == [1.0, 2.0]
    assert fig.data[-1].yaxis == "y2"
    with pytest.raises(ValueError, match="negative prompts: expected 2 values"):
        figures.feature_bars([7, 42], [1.0, 2.0], [0.1], [0.9, 1.0])


def test_save_html_is_self_contained(tmp_path):
    path = figures.save_html(figures.loss_chart([0], {"L": [1.0]}, [1.0]), tmp_path / "x.html")
    text = path.read_text()
    assert path.stat().st_size > 1_000_000  # plotly.js is inside
    assert not re.search(r"<script[^>]*\bsrc=", text)  # nothing to fetch: it opens offline
