"""Step 5, Erase & preview: what the erased encoder output looks like for any prompt, at any γ.

For one prompt: the concept probe's verdict before and after, the cosine between original and erased
outputs, reconstruction error and activation-norm drift at the block, where on the prompt the edit
lands and which SAE features were subtracted (:func:`analysis.features.explain_prompt`). For the
concept as a whole: leakage and preservation at this γ (:func:`clear_core.evaluation.evaluate`),
against a :class:`clear_core.evaluation.Baseline` cached in the session, so that moving γ re-encodes
only the erased prompts. The γ sweep of the eraser's calibration is drawn by :func:`calibration_chart`.
Original-vs-erased media appear when a generation backend is installed (:mod:`app.generation`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np

from app.common import ProgressFn, encoder_for, require_eraser, user_errors
from app.generation import NO_PIPELINE, find_backend
from app.state import Session

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from clear_core.encoders import TextEncoder
    from clear_core.erasure import Eraser
    from clear_core.evaluation import Baseline

__all__ = [
    "EVAL_PAIRS",
    "calibration_chart",
    "erase_prompt",
    "evaluation_baseline",
    "generate_media",
    "matching_pairs",
]

EVAL_PAIRS = 32
"""Pairs (an evenly spaced subset) behind the set-level scores: enough to read, fast enough to redo per γ."""


def matching_pairs(session: Session, eraser: Eraser) -> tuple[list[str], list[str]] | None:
    """(positives, negatives) of the session's pairs when they are the eraser's concept, else None."""
    c = session.concept
    if c is None or c.name != eraser.concept:
        return None
    step = max(1, len(c) // EVAL_PAIRS)
    pairs = c.pairs[::step][:EVAL_PAIRS]
    return [p.positive for p in pairs], [p.negative for p in pairs]


def evaluation_baseline(
    session: Session,
    encoder: TextEncoder,
    positives: list[str],
    negatives: list[str],
    implicit: list[str] | None = None,
    unrelated: list[str] | None = None,
) -> tuple[Baseline, Session]:
    """Original outputs and leakage probe of these prompts: (baseline, session that caches it).

    Reused while the model and every prompt set stay the same; the session passed in is not changed.
    """
    from clear_core.evaluation import Baseline

    key = (
        encoder.model_id,
        encoder.revision,
        *(tuple(p or ()) for p in (positives, negatives, implicit, unrelated)),
    )
    if session.baseline is not None and session.baseline[0] == key:
        return session.baseline[1], session
    baseline = Baseline.build(encoder, positives, negatives, implicit, unrelated)
    return baseline, session.with_(baseline=(key, baseline))


def calibration_chart(eraser: Eraser) -> go.Figure | None:
    """The γ sweep of the eraser's calibration (plotly figure), its default γ and the preservation
    floor marked; None when it was not calibrated."""
    from analysis.figures import SWEEP_SERIES, gamma_sweep_chart

    calibration = eraser.meta.get("calibration") or {}
    rows = calibration.get("rows") or []
    if not rows:
        return None
    series = {key: [r.get(key) for r in rows] for key in SWEEP_SERIES}
    return gamma_sweep_chart(
        [r["gamma"] for r in rows], series, chosen=eraser.gamma, preserve_min=calibration.get("preserve_min")
    )


def _percent(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def erase_prompt(
    prompt: str, gamma: float, session: Session, progress: ProgressFn = gr.Progress()
) -> tuple[str, str, list, go.Figure, dict, Session]:
    """Erase one prompt: (set-level scores, this prompt, token map, subtracted-feature bars, numbers,
    session). The session comes back with the evaluation baseline cached (see :func:`evaluation_baseline`)."""
    with user_errors():
        from analysis.features import explain_prompt
        from analysis.figures import token_bars
        from clear_core.concepts import unrelated_prompts
        from clear_core.evaluation import evaluate

        eraser = require_eraser(session)
        gamma = float(eraser.gamma if gamma is None else gamma)
        progress(0.0, desc="loading the model…")
        encoder = encoder_for(session)
        eraser.check_encoder(encoder)
        progress(0.1, desc="erasing the prompt")
        x = explain_prompt(eraser, encoder, prompt, gamma)
        numbers: dict[str, Any] = {
            "gamma": gamma,
            "block": eraser.layer,
            "block_name": eraser.layer_name,
            "prompt": {
                "cosine_original_vs_erased": x.cosine,
                "recon_error": x.recon_error,
                "norm_drift": x.norm_drift,
                "subtracted": [{"feature": f, "amount": a} for f, a in x.subtracted],
            },
        }
        pairs = matching_pairs(session, eraser)
        new = session
        if pairs is not None:
            progress(0.3, desc="original outputs and concept probe")
            baseline, new = evaluation_baseline(
                session, encoder, *pairs, implicit=session.implicit or None, unrelated=unrelated_prompts()
            )
            original = encoder.encode([prompt])
            with eraser.applied(encoder, gamma=gamma):
                erased = encoder.encode([prompt])
            p0, p1 = baseline.probe.probability(np.concatenate([original, erased]))
            numbers["prompt"]["concept_probability"] = {"original": float(p0), "erased": float(p1)}
            progress(0.5, desc=f"leakage and preservation at γ = {gamma:g}")
            report = evaluate(encoder, eraser, baseline=baseline, gammas=(0.0, gamma) if gamma else (0.0,))
            base, row = report.rows[0], report.rows[-1]
            numbers["scores"] = {"baseline": vars(base), "erased": vars(row), "n_pairs": len(pairs[0])}
            scores = (
                f"**Leakage** (share still detected as *{eraser.concept}*): positive prompts "
                f"**{_percent(row.leakage_positive)}** (unerased {_percent(base.leakage_positive)})"
                + (
                    f", held-out paraphrases **{_percent(row.leakage_implicit)}** "
                    f"(unerased {_percent(base.leakage_implicit)})"
                    if row.leakage_implicit is not None
                    else ""
                )
                + f"\n\n**Preservation** (cosine original vs erased): negative prompts "
                f"**{row.preservation_negative:.3f}**, unrelated prompts **{row.preservation_unrelated:.3f}** "
                f"(worst {row.min_preservation_unrelated:.3f}). On {len(pairs[0])} pairs at γ = {gamma:g}."
            )
            verdict = f"concept probability **{p0:.2f} → {p1:.2f}**; "
        else:
            scores = (
                f"Load the pairs of *{eraser.concept}* in the Concept tab to see leakage and preservation "
                "on the whole concept."
            )
            verdict = ""
    block = f"block {eraser.layer} (`{eraser.layer_name}`)"
    recon = "" if x.recon_error is None else f"SAE reconstruction error **{x.recon_error:.3f}**, "
    this = (
        f"This prompt: {verdict}cosine original vs erased output **{x.cosine:.3f}**; at {block}: "
        f"{recon}activation-norm drift **{100 * x.norm_drift:+.1f}%**."
    )
    peak = max(x.token_erased, default=0.0) or 1.0
    tokens = [(f"{t} ", round(v / peak, 3) if v > 0 else None) for t, v in zip(x.tokens, x.token_erased)]
    subtracted = token_bars(
        [f"#{f}" for f, _ in x.subtracted],
        [a for _, a in x.subtracted],
        title=f"Subtracted SAE features at γ = {gamma:g}",
        x_title="amount subtracted (γ · Σ over tokens of activation · m_spec)",
    )
    return scores, this, tokens, subtracted, numbers, new


def generate_media(prompt: str, gamma: float, seed: float, session: Session) -> tuple[str, str, str]:
    """Original and erased media with the same seed: (original path, erased path, info)."""
    with user_errors():
        eraser = require_eraser(session)
        backend = find_backend()
        if backend is None:
            raise ValueError(NO_PIPELINE.replace("**", ""))
        if not prompt or not prompt.strip():
            raise ValueError("enter a prompt to render")
        pair = backend.generate(prompt, eraser, float(gamma), int(seed))
    return pair.original, pair.erased, pair.info or backend.name
