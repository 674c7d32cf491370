"""Step 4, Features & masks: what the eraser's SAE features are and which of them it subtracts.

Thin wrappers over :mod:`analysis.features` and :mod:`analysis.figures`. Statistics are on the
session's prompt pairs: the search's own captures when the eraser came from this session's search,
otherwise a fresh (cached) capture of the pairs loaded in the Concept tab.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from app.common import ProgressFn, block_label, encoder_for, require_concept, require_eraser, user_errors
from app.state import Session

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from analysis.features import TokenActivations
    from clear_core.encoders import Activations, TextEncoder

__all__ = [
    "ACTIVATION_BINS",
    "ACTIVATION_COLORS",
    "analyse_features",
    "concept_activations",
    "feature_detail",
    "highlight_tokens",
    "sae_health_markdown",
    "word_pieces",
]

TOP_K = 50
"""Features listed in the ranking."""
TOP_BARS = 20
"""Features drawn in the bar chart."""
ACTIVATION_BINS = ((2 / 3, "strong"), (1 / 3, "medium"), (0.05, "weak"))
"""(floor relative to the strongest token shown, label): how firing tokens are labelled."""
ACTIVATION_COLORS = {"strong": "#d62728", "medium": "#f4a3a3", "weak": "#fde0e0"}
"""Colours of those labels (the positive-prompt red of analysis.figures, fading)."""


def concept_activations(session: Session, encoder: TextEncoder, progress: ProgressFn | None = None):
    """(positive, negative) captures of the session's pairs, reusing the search's when they match."""
    run = session.run
    if run is not None and run.eraser is session.eraser:
        return run.pos, run.neg
    from clear_core.encoders import CaptureConfig

    concept = require_concept(session)

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(done / max(total, 1) / 2, desc=f"capturing prompts ({done}/{total})")

    pos = encoder.capture(concept.positives, CaptureConfig(), progress=report)
    neg = encoder.capture(concept.negatives, CaptureConfig())
    return pos, neg


def sae_health_markdown(eraser, pos: Activations, neg: Activations) -> str:
    """FVU, L0 and dead features of the eraser's SAE, on positive and on negative prompts."""
    from analysis.features import sae_health

    d_sae = eraser.sae.config.d_sae
    lines = [f"**SAE health** at {block_label(eraser.layer, eraser.layer_name)}, {d_sae:,} features:"]
    for label, acts in (("positive prompts", pos), ("negative prompts", neg)):
        s = sae_health(eraser, acts)
        lines.append(
            f"- {label} ({s.n_rows:,} tokens): FVU **{s.fvu:.3f}** (fraction of variance unexplained), "
            f"L0 **{s.l0:.1f}** active features per token, **{s.dead:,}** features never fire"
        )
    return "\n".join(lines)


def analyse_features(
    session: Session, progress: ProgressFn = gr.Progress()
) -> tuple[Any, Any, str, Any, Session]:
    """Rank the SAE's features: (mask histograms, top-feature bars, health, feature dropdown, session)."""
    with user_errors():
        from analysis.features import feature_table
        from analysis.figures import feature_bars, mask_histograms

        eraser = require_eraser(session)
        if eraser.kind != "sae":
            raise ValueError("this view needs an SAE eraser; a steering eraser has no features")
        progress(0.0, desc="loading the model…")
        encoder = encoder_for(session)
        eraser.check_encoder(encoder)
        pos, neg = concept_activations(session, encoder, progress)
        progress(0.6, desc="ranking features")
        table = feature_table(eraser, pos, neg, top_k=TOP_K)
        shared = eraser.m_shared if eraser.m_shared is not None else 1 - eraser.m_spec
        masks = mask_histograms(shared.numpy(), eraser.m_spec.numpy())
        k = min(TOP_BARS, len(table.ids))
        bars = feature_bars(table.ids[:k], table.pos_mean[:k], table.neg_mean[:k], table.spec[:k])
        progress(0.8, desc="SAE health")
        health = sae_health_markdown(eraser, pos, neg)
        choices = [
            (f"#{int(i)} · m_spec {s:.2f} · positive {p:.2f} / negative {n:.2f}", int(i))
            for i, s, p, n in zip(table.ids, table.spec, table.pos_mean, table.neg_mean)
        ]
    new = session.with_(features=table)
    dropdown = gr.update(choices=choices, value=choices[0][1] if choices else None)
    return masks, bars, health, dropdown, new


def highlight_tokens(
    items: list[TokenActivations], peak: float | None = None
) -> list[tuple[str, str | None]]:
    """HighlightedText value: every token labelled by how strongly the feature fires on it, one prompt
    a line. Activations are binned relative to ``peak`` (default: the strongest token shown; pass one
    peak to several lists to make them comparable), see :data:`ACTIVATION_BINS`."""
    peak = peak or max((t.peak for t in items), default=0.0) or 1.0
    out: list[tuple[str, str | None]] = []
    for t in items:
        for text, value in zip(word_pieces(t.tokens), t.values):
            label = next((name for floor, name in ACTIVATION_BINS if value / peak >= floor), None)
            out.append((text, label if value > 0 else None))
        out.append((f" (peak {t.peak:.2f})\n", None))
    return out


def word_pieces(tokens: list[str]) -> list[str]:
    """Tokens as they read in the prompt, one string per token (so each keeps its own colour): a
    WordPiece continuation ``##s`` or a SentencePiece/BPE piece without its word-start mark is glued
    to the token before it, and the marks themselves (``##``, ``▁``, ``</w>``) are not shown."""
    sentencepiece = any(tok.startswith("▁") for tok in tokens)
    bpe = any(tok.endswith("</w>") for tok in tokens)  # CLIP: a word's last piece ends in </w>
    out: list[str] = []
    for i, tok in enumerate(tokens):
        previous = tokens[i - 1] if i else ""
        if tok.startswith("##"):
            text, new_word = tok[2:], False
        elif sentencepiece:
            text, new_word = tok.removeprefix("▁"), tok.startswith(("▁", "<"))
        elif bpe:
            text, new_word = tok, previous.endswith(("</w>", "|>")) or tok.startswith("<|")
        else:
            text, new_word = tok, True
        out.append((" " if new_word and out else "") + text.removesuffix("</w>"))
    return out


def feature_detail(feature: float | None, session: Session) -> tuple[Any, go.Figure, list, list, go.Figure]:
    """One feature: (positive vs negative bars, per-prompt peak histogram, top positive prompts, top
    negative prompts, nearest vocabulary tokens)."""
    with user_errors():
        from analysis.features import nearest_tokens, top_prompts
        from analysis.figures import feature_bars, feature_histogram, token_bars

        eraser = require_eraser(session)
        if feature is None:
            raise ValueError("choose a feature first (run “Analyse features”)")
        feature = int(feature)
        encoder = encoder_for(session)
        pos, neg = concept_activations(session, encoder)
        table = session.features
        if table is not None and feature in set(table.ids.tolist()):
            i = table.ids.tolist().index(feature)
            bars = feature_bars(
                [feature],
                [table.pos_mean[i]],
                [table.neg_mean[i]],
                [table.spec[i]],
                title=f"Feature #{feature}: mean activation",
            )
        else:
            bars = None
        tok = encoder.tokenizer
        # every prompt, strongest first: the first five are shown, all of them make the histogram
        all_pos = top_prompts(eraser, pos, feature, k=pos.n_prompts, tokenizer=tok)
        all_neg = top_prompts(eraser, neg, feature, k=neg.n_prompts, tokenizer=tok)
        histogram = feature_histogram([t.peak for t in all_pos], [t.peak for t in all_neg], feature)
        near = nearest_tokens(eraser, encoder, feature, k=12)
    nearest = token_bars(
        [t for t, _ in near],
        [c for _, c in near],
        title=f"Feature #{feature}: nearest vocabulary tokens",
        x_title="cosine to the decoder direction",
    )
    top_pos, top_neg = all_pos[:5], all_neg[:5]
    peak = max((t.peak for t in top_pos + top_neg), default=0.0)  # one scale for both lists
    return bars, histogram, highlight_tokens(top_pos, peak), highlight_tokens(top_neg, peak), nearest
