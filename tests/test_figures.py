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
        "encoder.layer.0",  # block b is encoder.layer.b: one number, not two
        "encoder.layer.1",
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
    assert any("chosen: block 1" in (a.text or "") for a in fig.layout.annotations)
    assert list(fig.layout.xaxis.ticktext) == ["emb", "0", "1"]  # block b is encoder.layer.b


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


def test_feature_bars_title():
    assert figures.feature_bars([7], [1.0], [0.0], [1.0]).layout.title.text == "Top concept features"
    fig = figures.feature_bars([7], [1.0], [0.0], [1.0], title="Feature #7: mean activation")
    assert fig.layout.title.text == "Feature #7: mean activation"


def test_gamma_sweep_chart_axes_chosen_gamma_and_floor():
    series = {
        "leakage_positive": [0.9, 0.4, 0.1],
        "leakage_implicit": [None, None, None],  # a calibration never sees the paraphrases
        "preservation_negative": [1.0, 0.98, None],
        "preservation_unrelated": [1.0, 0.97, 0.9],
    }
    fig = figures.gamma_sweep_chart([0, 1, 2], series, chosen=1, preserve_min=0.95)
    assert [t.name for t in fig.data] == [
        "leakage: positive prompts",
        "preservation: negative prompts",
        "preservation: unrelated prompts",
    ]
    assert [t.yaxis for t in fig.data] == ["y", "y2", "y2"]  # cosines on their own axis
    assert fig.data[0].line.color == figures.KIND_COLORS["positive"] and fig.data[2].line.dash == "dot"
    assert list(fig.data[0].x) == [0, 1, 2] and np.isnan(fig.data[1].y[2])
    vertical = [s for s in fig.layout.shapes if s.x0 == s.x1 == 1]
    floor = [s for s in fig.layout.shapes if s.y0 == s.y1 == 0.95]
    assert len(vertical) == 1 and len(floor) == 1
    assert floor[0].yref == "y2" and floor[0].line.dash == "dash"
    assert {a.text for a in fig.layout.annotations} == {
        "chosen γ = 1",
        "preservation floor: cosine 0.95 (right axis) →",
    }
    assert fig.layout.yaxis2.range[0] <= 0.9  # the worst cosine is on the chart
    bare = figures.gamma_sweep_chart([0, 1], {"leakage_positive": [0.5, 0.2]})
    assert len(bare.data) == 1 and not bare.layout.shapes
    with pytest.raises(ValueError, match=r"unknown γ-sweep series \['leakage'\]"):
        figures.gamma_sweep_chart([0, 1], {"leakage": [0.5, 0.2]})
    with pytest.raises(ValueError, match="preservation_negative: expected 2 values"):
        figures.gamma_sweep_chart([0, 1], {"preservation_negative": [1.0]})


def test_token_bars_are_horizontal_first_label_on_top():
    fig = figures.token_bars(["▁parachute", "#12"], [0.8, 0.3], "Nearest tokens", "cosine")
    (bars,) = fig.data
    assert isinstance(bars, go.Bar) and bars.orientation == "h"
    assert list(bars.y) == ["▁parachute", "#12"] and list(bars.x) == [0.8, 0.3]
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.xaxis.title.text == "cosine"
    assert fig.layout.title.text == "Nearest tokens"
    empty = figures.token_bars([], [], "Subtracted", "amount")
    assert len(empty.data[0].y) == 0 and empty.layout.annotations[0].text == "nothing to show"
    with pytest.raises(ValueError, match="values: expected 2 values"):
        figures.token_bars(["a", "b"], [1.0], "t", "x")


def test_feature_histogram_overlays_positive_and_negative_on_shared_bins():
    fig = figures.feature_histogram([2.0, 3.0, 2.5], np.zeros(4), feature=42)
    pos, neg = fig.data
    assert (pos.name, neg.name) == ("positive prompts", "negative prompts")
    assert pos.marker.color == figures.KIND_COLORS["positive"] and len(neg.x) == 4
    assert pos.xbins == neg.xbins and pos.xbins.start == 0 and pos.xbins.end > 3.0
    assert fig.layout.barmode == "overlay" and "#42" in fig.layout.title.text


def test_save_html_is_self_contained(tmp_path):
    path = figures.save_html(figures.loss_chart([0], {"L": [1.0]}, [1.0]), tmp_path / "x.html")
    text = path.read_text()
    assert path.stat().st_size > 1_000_000  # plotly.js is inside
    assert not re.search(r"<script[^>]*\bsrc=", text)  # nothing to fetch: it opens offline


def test_the_first_live_update_is_visible():
    # one step: a line of one point draws nothing, so the first update shows markers
    one = figures.layer_probability_chart([1], [[0.5, 0.5]], ["encoder.layer.0", "encoder.layer.1"])
    assert {t.mode for t in one.data} == {"markers"}
    two = figures.layer_probability_chart([1, 2], [[0.5, 0.5], [0.4, 0.6]], ["a", "b"])
    assert {t.mode for t in two.data} == {"lines"}
    losses = figures.loss_chart([1], {"L_SAE": [0.3]}, [1.0])
    assert {t.mode for t in losses.data} == {"markers"}


def test_neighbouring_blocks_get_distinct_colours_and_legends_clear_the_labels():
    from analysis.figures import block_colors, gamma_sweep_chart, layer_probability_chart, projection_grid

    assert len(set(block_colors(6))) == 6 and len(set(block_colors(24))) == 24
    probs = layer_probability_chart([1, 2], [[0.5, 0.5], [0.4, 0.6]], ["a", "b"])
    assert probs.data[0].line.color != probs.data[1].line.color
    sweep = gamma_sweep_chart([0, 1], {"leakage_positive": [1, 0]}, chosen=1, note="64 pairs")
    assert sweep.layout.legend.y < 0 and sweep.layout.title.subtitle.text == "64 pairs"  # under the chart
    grid = projection_grid([None, None], ["embeddings", "block.0"], ["p"], ["positive"])
    assert grid.layout.legend.y > 1 and grid.layout.margin.t >= 120  # its own band above panel titles
