"""Plotly figures for the layer map, the layer search, the SAE features and the γ sweep, in one style.

Every function takes plain numbers (lists / arrays), not the classes of the modules that produce
them, so the app, the CLI and a notebook can all draw from JSON. NaN (or None) marks a value that is
not computed yet: the line has a gap there, so a streaming UI can redraw the same figure as results
arrive. Figures autosize to their container's width with a fixed height suited to a web page.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

__all__ = [
    "KIND_COLORS",
    "SERIES_COLORS",
    "TEMPLATE",
    "SWEEP_SERIES",
    "block_colors",
    "feature_bars",
    "feature_histogram",
    "gamma_sweep_chart",
    "layer_labels",
    "layer_probability_chart",
    "loss_chart",
    "mask_histograms",
    "projection_grid",
    "save_html",
    "separability_curve",
    "token_bars",
]

KIND_COLORS = {"positive": "#d62728", "negative": "#1f77b4", "implicit": "#ff7f0e", "neutral": "#2ca02c"}
"""Point colour by prompt kind: with the concept (warm) or without (cool / green)."""
SERIES_COLORS = {
    "probe": "#1f77b4",
    "transfer": "#d62728",
    "fisher": "#2ca02c",
    "silhouette": "#9467bd",
    "chosen": "#444444",
    "tau": "#7f7f7f",
}
"""Line colour by quantity, the same in every figure."""
SWEEP_SERIES = {
    "leakage_positive": ("leakage: positive prompts", KIND_COLORS["positive"]),
    "leakage_implicit": ("leakage: held-out paraphrases", KIND_COLORS["implicit"]),
    "leakage_implicit_calibration": ("leakage: calibration paraphrases", "#e6a157"),
    "preservation_negative": ("preservation: negative prompts", KIND_COLORS["negative"]),
    "preservation_unrelated": ("preservation: unrelated prompts", KIND_COLORS["neutral"]),
    "preservation_lookalike": ("preservation: look-alikes", "#9467bd"),
}
"""(legend name, colour) of each γ-sweep series, keyed like ``clear_core.evaluation.GammaRow``."""
_OWN_TICKS = dict(tickmode="array", tickvals=[0, 0.25, 0.5, 0.75, 1])
"""Round ticks for a [0, 1] secondary axis (plotly otherwise syncs them to the first axis' grid)."""
HEIGHT = 420
"""Height in pixels of a single chart; grids grow by rows."""

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font=dict(family="Inter, Helvetica, Arial, sans-serif", size=13, color="#222"),
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=list(SERIES_COLORS.values()),
        margin=dict(l=60, r=60, t=100, b=60),
        hoverlabel=dict(font_size=12),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        xaxis=dict(showgrid=True, gridcolor="#eee", zeroline=False, linecolor="#999", ticks="outside"),
        yaxis=dict(showgrid=True, gridcolor="#eee", zeroline=False, linecolor="#999", ticks="outside"),
    )
)


def _figure(fig: go.Figure, title: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=dict(text=title, x=0.01), height=height, autosize=True)
    return fig


def _values(values: Sequence[float | None] | np.ndarray | None, n: int, name: str) -> np.ndarray | None:
    """A float array of length ``n`` (None → NaN), or a ValueError naming the argument."""
    if values is None:
        return None
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected {n} values (one per layer, step or γ), got shape {arr.shape}")
    return arr


def _hover(text: str, width: int = 60) -> str:
    return "<br>".join(textwrap.wrap(html.escape(text), width)) or " "


def layer_labels(layer_names: Sequence[str]) -> list[str]:
    """Short tick labels: "emb" for the embeddings, then the block number, the module's own (block b
    is ``encoder.layer.b``; README "Block numbers")."""
    return ["emb" if name == "embeddings" else str(i - 1) for i, name in enumerate(layer_names)]


def save_html(fig: go.Figure, path: str | Path) -> Path:
    """Write a self-contained page (plotly.js inline) that opens offline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True, full_html=True, config={"displaylogo": False})
    return path


# ------------------------------------------------------------------------------- layer map
def projection_grid(
    panels: Sequence[np.ndarray | None],
    layer_names: Sequence[str],
    texts: Sequence[str],
    kinds: Sequence[str],
    title: str = "",
    note: str | None = None,
    columns: int = 4,
) -> go.Figure:
    """Small multiples, one panel per layer: ``panels[i]`` is (n_points, 2) or None (not computed yet).

    Points are coloured by kind (positive / negative / implicit / neutral); hovering shows the prompt.
    """
    if len(panels) != len(layer_names):
        raise ValueError(f"{len(panels)} panels for {len(layer_names)} layers")
    if len(texts) != len(kinds):
        raise ValueError(f"{len(texts)} prompt texts for {len(kinds)} kinds")
    unknown = set(kinds) - set(KIND_COLORS)
    if unknown:
        raise ValueError(f"unknown point kinds {sorted(unknown)}; expected {', '.join(KIND_COLORS)}")
    rows = -(-len(panels) // columns)
    # the module path names the block by its own number (block b is encoder.layer.b): no second number
    fig = make_subplots(
        rows, columns, subplot_titles=list(layer_names), horizontal_spacing=0.03, vertical_spacing=0.08
    )
    kinds_arr, hover = np.asarray(kinds), np.array([_hover(t) for t in texts], dtype=object)
    for i, coords in enumerate(panels):
        row, col = divmod(i, columns)
        if coords is None:
            _pending(fig, row + 1, col + 1)
            continue
        coords = np.asarray(coords)
        if coords.shape != (len(texts), 2):
            raise ValueError(
                f"panel {i}: expected coordinates of shape ({len(texts)}, 2), got {coords.shape}"
            )
        for kind in (k for k in KIND_COLORS if k in set(kinds)):
            sel = kinds_arr == kind
            marker = dict(color=KIND_COLORS[kind], size=5, opacity=0.75)
            trace = go.Scatter(
                x=coords[sel, 0],
                y=coords[sel, 1],
                mode="markers",
                marker=marker,
                name=kind,
                legendgroup=kind,
                showlegend=i == 0,
                hovertext=hover[sel],
                hoverinfo="text",
            )
            fig.add_trace(trace, row=row + 1, col=col + 1)
    fig.update_xaxes(showticklabels=False, showgrid=False, ticks="")  # projection axes have no units
    fig.update_yaxes(showticklabels=False, showgrid=False, ticks="")
    if note:
        fig.add_annotation(
            text=note, xref="paper", yref="paper", x=0, y=-0.04, showarrow=False, yanchor="top"
        )
    # the legend sits in its own band between the title and the first row's panel titles (at the
    # template's place it covered them)
    height, top = 150 + 260 * rows, 130
    fig = _figure(fig, title, height=height)
    fig.update_layout(
        margin=dict(t=top),
        legend=dict(orientation="h", yanchor="bottom", y=1 + 30 / (height - top - 60), x=0, xanchor="left"),
    )
    return fig


def _pending(fig: go.Figure, row: int, col: int) -> None:
    fig.add_trace(
        go.Scatter(x=[0], y=[0], mode="text", text=["computing…"], showlegend=False), row=row, col=col
    )


def _band(fig: go.Figure, x, low, high, color: str, name: str) -> None:
    """A shaded interval between ``low`` and ``high`` (drawn as one closed polygon)."""
    keep = ~(np.isnan(low) | np.isnan(high))
    xs = np.concatenate([x[keep], x[keep][::-1]])
    ys = np.concatenate([high[keep], low[keep][::-1]])
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            fill="toself",
            fillcolor=color,
            opacity=0.18,
            line=dict(width=0),
            hoverinfo="skip",
            name=name,
            legendgroup=name,
            showlegend=False,
        ),
        secondary_y=False,
    )


def separability_curve(
    layer_names: Sequence[str],
    probe_error: Sequence[float | None] | None = None,
    probe_ci: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
    transfer_error: Sequence[float | None] | None = None,
    transfer_ci: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
    fisher: Sequence[float | None] | None = None,
    silhouette: Sequence[float | None] | None = None,
    chosen_layer: int | None = None,
    title: str = "Where is the concept separable?",
) -> go.Figure:
    """Probe and transfer error (± 95% CI band) against depth; training-free scores on a second axis.

    The Fisher ratio F is drawn as F / (1 + F) so that it shares the [0, 1] axis with the silhouette
    (hover shows F itself). ``chosen_layer`` (a layer index) is marked with a vertical line.
    """
    n, labels = len(layer_names), layer_labels(layer_names)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    _error_line(fig, layer_names, "probe", "probe error (pairs, k-fold)", probe_error, probe_ci)
    _error_line(
        fig, layer_names, "transfer", "transfer error (implicit vs neutral)", transfer_error, transfer_ci
    )
    fisher = _values(fisher, n, "fisher")
    if fisher is not None:
        hover = "Fisher ratio %{customdata:.2f}<extra></extra>"
        _score_line(fig, fisher / (1 + fisher), "Fisher F/(1+F)", "fisher", hover, customdata=fisher)
    silhouette = _values(silhouette, n, "silhouette")
    if silhouette is not None:
        _score_line(fig, silhouette, "silhouette", "silhouette", "silhouette %{y:.3f}<extra></extra>")
    _mark_chosen(fig, chosen_layer, n, labels)
    fig.update_xaxes(
        tickvals=np.arange(n), ticktext=labels, title="block (emb = embeddings; block b is …layer.b)"
    )
    fig.update_yaxes(title="error (1 − accuracy)", range=[-0.02, 0.62], secondary_y=False)
    fig.update_yaxes(
        title="separability (no training)",
        range=[-0.05, 1.05],
        **_OWN_TICKS,
        showgrid=False,
        secondary_y=True,
    )
    return _figure(fig, title)


def _error_line(fig: go.Figure, layer_names: Sequence[str], key: str, name: str, error, ci) -> None:
    """An error curve on the first axis, with its interval as a band when ``ci`` = (low, high) is given."""
    n = len(layer_names)
    error = _values(error, n, f"{key}_error")
    if error is None:
        return
    x = np.arange(n)
    if ci is not None:
        low, high = _values(ci[0], n, f"{key}_ci low"), _values(ci[1], n, f"{key}_ci high")
        _band(fig, x, low, high, SERIES_COLORS[key], name)
    line = go.Scatter(
        x=x,
        y=error,
        name=name,
        legendgroup=name,
        mode="lines+markers",
        line=dict(color=SERIES_COLORS[key], width=2.5),
        customdata=list(layer_names),
        hovertemplate="%{customdata}<br>error %{y:.3f}<extra></extra>",
    )
    fig.add_trace(line, secondary_y=False)


def _score_line(fig: go.Figure, y: np.ndarray, name: str, key: str, hover: str, customdata=None) -> None:
    """A dotted training-free score on the second axis."""
    line = dict(color=SERIES_COLORS[key], dash="dot")
    trace = go.Scatter(
        x=np.arange(len(y)), y=y, name=name, line=line, customdata=customdata, hovertemplate=hover
    )
    fig.add_trace(trace, secondary_y=True)


def _mark_chosen(fig: go.Figure, chosen: int | None, n: int, labels: Sequence[str]) -> None:
    if chosen is None:
        return
    if not 0 <= chosen < n:
        raise ValueError(f"chosen layer {chosen} is outside 0..{n - 1}")
    fig.add_vline(
        x=chosen,
        line=dict(color=SERIES_COLORS["chosen"], dash="dash", width=1.5),
        annotation_text=f"chosen: block {labels[chosen]}",
        annotation_position="top",
    )


# ---------------------------------------------------------------------------------- search
def layer_probability_chart(
    steps: Sequence[int],
    probs: Sequence[Sequence[float]],
    layer_names: Sequence[str],
    chosen: int | None = None,
) -> go.Figure:
    """Layer probabilities during the search (paper Fig. 5): ``probs[s][l]`` is p(layer l) at ``steps[s]``.

    ``probs`` is (n_steps, n_layers); ``chosen`` (an index into ``layer_names``) is drawn thicker.
    """
    p = np.asarray(probs, dtype=float)
    if p.shape != (len(steps), len(layer_names)):
        raise ValueError(
            f"probs: expected shape (n_steps={len(steps)}, n_layers={len(layer_names)}), got {p.shape}"
        )
    if chosen is not None and not 0 <= chosen < len(layer_names):
        raise ValueError(f"chosen layer {chosen} is outside 0..{len(layer_names) - 1}")
    colors = block_colors(len(layer_names))
    fig = go.Figure()
    mode = _line_mode(len(steps))
    for i, name in enumerate(layer_names):
        width = 4 if i == chosen else 1.6
        label = f"{name} (chosen)" if i == chosen else name
        fig.add_trace(
            go.Scatter(
                x=list(steps), y=p[:, i], name=label, mode=mode, line=dict(color=colors[i], width=width)
            )
        )
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="layer probability", range=[0, 1.02])
    fig.update_layout(legend=dict(orientation="v", y=1, x=1.02, yanchor="top"))
    return _figure(fig, "Layer probabilities during the search")


def block_colors(n: int) -> list[str]:
    """``n`` colours that neighbouring blocks never share: a qualitative palette (10 colours up to 10
    blocks, 24 beyond), not a colour scale, whose neighbours (blocks 0/1, 2/3) look alike."""
    palette = qualitative.D3 if n <= len(qualitative.D3) else qualitative.Dark24
    return [palette[i % len(palette)] for i in range(n)]


def _line_mode(n_points: int) -> str:
    """A line needs two points: the first update of a live chart draws markers, or nothing shows."""
    return "lines" if n_points > 1 else "markers"


def loss_chart(
    steps: Sequence[int], losses: Mapping[str, Sequence[float]], tau: Sequence[float]
) -> go.Figure:
    """Each loss against the step; the Gumbel-softmax temperature τ on a second axis."""
    n = len(steps)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, values in losses.items():
        fig.add_trace(
            go.Scatter(
                x=list(steps), y=_values(values, n, f"losses[{name!r}]"), name=name, mode=_line_mode(n)
            )
        )
    tau = _values(tau, n, "tau")
    tau_line = dict(color=SERIES_COLORS["tau"], dash="dash")
    fig.add_trace(
        go.Scatter(x=list(steps), y=tau, name="τ", line=tau_line, mode=_line_mode(n)), secondary_y=True
    )
    top = max(1.0, float(np.nanmax(tau))) if n else 1.0
    fig.update_yaxes(title="temperature τ", range=[0, 1.05 * top], showgrid=False, secondary_y=True)
    fig.update_yaxes(tickmode="auto", nticks=6, secondary_y=True)  # not synced to the loss axis
    return _figure(fig, "Search losses")


def mask_histograms(m_shared: np.ndarray, m_spec: np.ndarray) -> go.Figure:
    """Histograms of the shared and concept-specific feature masks (both in [0, 1], one per SAE feature).

    The title counts features with m_spec > 0.5: when that is most of them the mask erases almost
    everything (DESIGN.md, "The paper's mask, taken literally, over-erases").
    """
    shared, spec = np.ravel(m_shared).astype(float), np.ravel(m_spec).astype(float)
    if shared.shape != spec.shape:
        raise ValueError(f"m_shared has {shared.size} features but m_spec has {spec.size}")
    fig = make_subplots(1, 2, subplot_titles=("m_shared", "m_spec"), horizontal_spacing=0.18)
    bins = dict(start=0, end=1.0001, size=0.02)
    for col, (name, values) in enumerate((("m_shared", shared), ("m_spec", spec)), start=1):
        color = SERIES_COLORS["probe" if col == 1 else "transfer"]
        fig.add_trace(
            go.Histogram(x=values, xbins=bins, name=name, marker_color=color, showlegend=False), 1, col
        )
    fig.update_xaxes(title="mask value", range=[0, 1])
    fig.update_yaxes(type="log", dtick=1)  # powers of ten only
    fig.update_yaxes(title="features", row=1, col=1)  # one title: a second one sat on the first panel
    high = int((spec > 0.5).sum())
    return _figure(fig, f"Feature masks: m_spec > 0.5 for {high:,} of {spec.size:,} features")


def feature_bars(
    feature_ids: Sequence[int],
    pos_mean: Sequence[float],
    neg_mean: Sequence[float],
    spec: Sequence[float],
    title: str = "Top concept features",
) -> go.Figure:
    """Mean activation of the top SAE features on positive vs negative prompts, with m_spec as markers."""
    n = len(feature_ids)
    labels = [f"#{int(f)}" for f in feature_ids]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, values, key in (
        ("positive prompts", pos_mean, "positive"),
        ("negative prompts", neg_mean, "negative"),
    ):
        bars = go.Bar(x=labels, y=_values(values, n, name), name=name, marker_color=KIND_COLORS[key])
        fig.add_trace(bars, secondary_y=False)
    marker = dict(symbol="diamond", size=9, color=SERIES_COLORS["chosen"])
    spec_trace = go.Scatter(
        x=labels, y=_values(spec, n, "spec"), name="m_spec", mode="markers", marker=marker
    )
    fig.add_trace(spec_trace, secondary_y=True)
    fig.update_layout(barmode="group")
    fig.update_xaxes(title=dict(text="SAE feature", standoff=8), type="category", automargin=True)
    fig.update_yaxes(title="mean activation", secondary_y=False)
    fig.update_yaxes(title="m_spec", range=[0, 1.05], showgrid=False, secondary_y=True, **_OWN_TICKS)
    # rotated feature ids take ~50 px under the axis: the legend goes further down
    return _legend_below(_figure(fig, title, height=HEIGHT + 40), y=-0.42, bottom=150)


def _legend_below(fig: go.Figure, y: float = -0.28, bottom: int = 110) -> go.Figure:
    """Legend under the x-axis title: in a narrow chart a legend above the plot wraps into the title."""
    fig.update_layout(
        legend=dict(orientation="h", yanchor="top", y=y, xanchor="left", x=0), margin=dict(t=60, b=bottom)
    )
    return fig


def feature_histogram(pos_values: Sequence[float], neg_values: Sequence[float], feature: int) -> go.Figure:
    """Overlaid histograms of one feature's per-prompt peak activation on positive vs negative prompts.

    A concept feature separates the two: the positive prompts sit to the right, the negative ones at 0.
    Both histograms share one set of bins so their bars line up.
    """
    pos, neg = np.ravel(pos_values).astype(float), np.ravel(neg_values).astype(float)
    both = np.concatenate([pos, neg])
    low, high = (min(0.0, float(both.min())), float(both.max())) if both.size else (0.0, 0.0)
    width = (high - low) or 1.0
    bins = dict(start=low, end=low + width * 1.0001, size=width / 30)
    fig = go.Figure()
    for name, values, key in (("positive prompts", pos, "positive"), ("negative prompts", neg, "negative")):
        fig.add_trace(
            go.Histogram(x=values, xbins=bins, name=name, marker_color=KIND_COLORS[key], opacity=0.6)
        )
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="peak activation over the prompt's tokens")
    fig.update_yaxes(title="prompts")
    return _legend_below(_figure(fig, f"Feature #{int(feature)}: peak activation per prompt"))


def token_bars(labels: Sequence[str], values: Sequence[float], title: str, x_title: str) -> go.Figure:
    """Horizontal bars, the first label at the top (pass them largest first); empty input says so."""
    n = len(labels)
    values = _values(values, n, "values")
    bars = go.Bar(
        x=values,
        y=[str(label) for label in labels],
        orientation="h",
        marker_color=KIND_COLORS["positive"],
        hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        showlegend=False,
    )
    fig = go.Figure(bars)
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(type="category", autorange="reversed", showgrid=False, automargin=True)
    if not n:
        fig.add_annotation(text="nothing to show", xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False)
    return _figure(fig, title, height=max(HEIGHT, 160 + 24 * n))


# --------------------------------------------------------------------------------- erasure
def gamma_sweep_chart(
    gammas: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    chosen: float | None = None,
    preserve_min: float | None = None,
    lookalike_min: float | None = None,
    title: str = "Leakage and preservation against γ",
    note: str | None = None,
) -> go.Figure:
    """Leakage (share still detected, first axis) and preservation (cosine kept, dotted, second axis)
    against γ, the chosen γ as a vertical line and the preservation floor as a dashed horizontal one
    (``lookalike_min``: the look-alikes' own floor, in their colour). ``note`` (the sample the sweep
    was measured on) is the subtitle; the legend sits under the chart, clear of the chosen-γ label.

    ``series`` maps keys of :data:`SWEEP_SERIES` (the fields of a γ-sweep row) to one value per γ;
    a series that is all None (implicit leakage in a calibration, which never sees them) is left out.
    """
    unknown = set(series) - set(SWEEP_SERIES)
    if unknown:
        raise ValueError(
            f"unknown γ-sweep series {sorted(unknown)}; expected some of {', '.join(SWEEP_SERIES)}"
        )
    n, x = len(gammas), np.asarray(gammas, dtype=float)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    kept = [m for m in (preserve_min, lookalike_min) if m is not None]
    for key in (k for k in SWEEP_SERIES if k in series):
        y = _values(series[key], n, key)
        if np.isnan(y).all():
            continue
        name, color = SWEEP_SERIES[key]
        preservation = key.startswith("preservation")
        kept += list(y[~np.isnan(y)]) if preservation else []
        trace = go.Scatter(
            x=x,
            y=y,
            name=name,
            mode="lines+markers",
            line=dict(color=color, width=2.5, dash="dot" if preservation else "solid"),
            hovertemplate=f"γ %{{x:g}}<br>{'cosine' if preservation else 'detected'} %{{y:.3f}}<extra></extra>",
        )
        fig.add_trace(trace, secondary_y=preservation)
    if chosen is not None:
        fig.add_vline(
            x=chosen,
            line=dict(color=SERIES_COLORS["chosen"], dash="dash", width=1.5),
            annotation_text=f"chosen γ = {chosen:g}",
            annotation_position="top",
            # just above the plot area: a floor near cosine 1 (a gated eraser) has its label at the top
            annotation=dict(y=1.0, yref="paper", yanchor="bottom"),
        )
    if preserve_min is not None:
        fig.add_hline(
            y=preserve_min,
            line=dict(color=SERIES_COLORS["tau"], dash="dash", width=1.5),
            annotation_text=f"preservation floor: cosine {preserve_min:g} (right axis) →",
            annotation_position="bottom left",  # the look-alike floor's label takes the right end
            secondary_y=True,
        )
    if lookalike_min is not None and "preservation_lookalike" in series:
        fig.add_hline(
            y=lookalike_min,
            line=dict(color=SWEEP_SERIES["preservation_lookalike"][1], dash="dash", width=1.5),
            annotation_text=f"look-alike floor: cosine {lookalike_min:g} →",
            annotation_position="bottom right",  # below its line: above it, it meets the chosen γ's label
            secondary_y=True,
        )
    low = min(kept, default=0.9)
    fig.update_xaxes(title="γ (erasure strength)")
    fig.update_yaxes(title="leakage: share still detected", range=[-0.02, 1.02], secondary_y=False)
    # the floor is drawn against the right axis: give that axis its own dotted grid, so the line is
    # read against cosine values and not against the leakage gridlines of the left axis
    fig.update_yaxes(
        title="preservation: cosine to the original",
        range=[max(0.0, low - 0.02), 1.005],
        tickmode="auto",
        nticks=6,
        showgrid=True,
        griddash="dot",
        gridcolor="#ddd",
        secondary_y=True,
    )
    fig.update_yaxes(showgrid=False, secondary_y=False)
    fig = _legend_below(_figure(fig, title, height=HEIGHT + 60))
    if note:
        fig.update_layout(title=dict(subtitle=dict(text=html.escape(note), font=dict(size=12, color="#666"))))
        fig.update_layout(margin=dict(t=90))
    return fig
