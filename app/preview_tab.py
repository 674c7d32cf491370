"""Step 5, Erase & preview: what the erased encoder output looks like for any prompt, at any γ.

For one prompt: the concept probe's verdict before and after, the cosine between original and erased
outputs, reconstruction error and activation-norm drift at the block, where on the prompt the edit
lands and which SAE features were subtracted (:func:`analysis.features.explain_prompt`). For the
concept as a whole: leakage and preservation at this γ (:func:`clear_core.evaluation.evaluate`).
Original-vs-erased media appear when a generation backend is installed (:mod:`app.generation`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np
import pandas as pd

from app.common import ProgressFn, encoder_for, require_eraser, user_errors
from app.generation import NO_PIPELINE, find_backend
from app.state import Session

if TYPE_CHECKING:
    from clear_core.encoders import TextEncoder
    from clear_core.erasure import Eraser

__all__ = ["EVAL_PAIRS", "erase_prompt", "generate_media", "matching_pairs"]

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


def _probe(session: Session, encoder: TextEncoder, eraser: Eraser, pairs) -> tuple[Any, Session]:
    """The concept probe on original outputs, cached in the session per (model, concept, pairs)."""
    from clear_core.evaluation import fit_probe

    key = (encoder.model_id, eraser.concept, len(pairs[0]), pairs[0][0])
    if session.probe is not None and session.probe[0] == key:
        return session.probe[1], session
    probe = fit_probe(encoder.encode(pairs[0]), encoder.encode(pairs[1]))
    return probe, session.with_(probe=(key, probe))


def _percent(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def erase_prompt(
    prompt: str, gamma: float, session: Session, progress: ProgressFn = gr.Progress()
) -> tuple[str, str, list, pd.DataFrame, dict, Session]:
    """Erase one prompt: (set-level scores, this prompt, token map, subtracted features, numbers, session)."""
    with user_errors():
        from analysis.features import explain_prompt
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
            progress(0.3, desc="concept probe")
            probe, new = _probe(session, encoder, eraser, pairs)
            original = encoder.encode([prompt])
            with eraser.applied(encoder, gamma=gamma):
                erased = encoder.encode([prompt])
            p0, p1 = probe.model.predict_proba(np.concatenate([original, erased]))[:, 1]
            numbers["prompt"]["concept_probability"] = {"original": float(p0), "erased": float(p1)}
            progress(0.5, desc=f"leakage and preservation at γ = {gamma:g}")
            report = evaluate(
                encoder,
                eraser,
                *pairs,
                implicit=session.implicit or None,
                unrelated=unrelated_prompts(),
                gammas=(0.0, gamma) if gamma else (0.0,),
            )
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
    subtracted = pd.DataFrame(
        [{"feature": f"#{f}", "amount": a} for f, a in x.subtracted], columns=["feature", "amount"]
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
