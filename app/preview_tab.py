"""Step 5, Erase & preview: what the erased encoder output looks like for any prompt, at any γ.

For one prompt: the concept probe's verdict before and after, the cosine between original and erased
outputs, reconstruction error and activation-norm drift at the block, where on the prompt the edit
lands and which SAE features were subtracted (:func:`analysis.features.explain_prompt`). For the
concept as a whole: leakage and preservation at this γ (:func:`clear_core.evaluation.evaluate`),
against a :class:`clear_core.evaluation.Baseline` cached in the session, so that moving γ re-encodes
only the erased prompts; the look-alikes the eraser protected are scored on their held-out prompts
(:func:`lookalike_prompts`). The γ sweep of the eraser's calibration, with the look-alikes'
own curve and floor, is drawn by :func:`calibration_chart`. Original-vs-erased media appear when a
generation backend is installed (:mod:`app.generation`); on the CPU testbed they are followed by the
concept's generative rate over a few seeds with 95% intervals (:func:`rate_over_seeds`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np

from app.common import ProgressFn, block_label, encoder_for, require_eraser, user_errors
from app.generation import get_pipeline, preview_cache, render_settings
from app.state import Session
from clear_core.validation import check_gamma

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
    "rate_over_seeds",
    "rerate_media",
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
    lookalikes: list[str] | None = None,
) -> tuple[Baseline, Session]:
    """Original outputs and leakage probe of these prompts: (baseline, session that caches it).

    Reused while the model and every prompt set stay the same; the session passed in is not changed.
    """
    from clear_core.evaluation import Baseline

    key = (
        encoder.model_id,
        encoder.revision,
        *(tuple(p or ()) for p in (positives, negatives, implicit, unrelated, lookalikes)),
    )
    if session.baseline is not None and session.baseline[0] == key:
        return session.baseline[1], session
    baseline = Baseline.build(encoder, positives, negatives, implicit, unrelated, lookalikes=lookalikes)
    return baseline, session.with_(baseline=(key, baseline))


EVAL_LOOKALIKES = 16
"""Held-out prompts per look-alike in the preview's scores (each is encoded again per γ)."""


def lookalike_prompts(session: Session, eraser: Eraser) -> tuple[list[str], list[str]]:
    """(names, held-out prompts) of the look-alikes the eraser protected (``eraser.meta["preserve"]``),
    written from the session's pairs with the search's seed, so none was seen by the mask or the
    calibration; ([], []) when it protected none or they cannot be written from these pairs."""
    from clear_core.lookalikes import preserve_set

    record = eraser.meta.get("preserve") or {}
    names = [n for n in record.get("lookalikes", []) if n != "file"]
    if not names or session.concept is None or session.concept.name != eraser.concept:
        return [], []
    seed = record.get("seed", (eraser.meta.get("search") or {}).get("seed", 0))
    try:
        held_out = preserve_set(session.concept, names, seed=int(seed)).held_out
    except ValueError:
        return [], []
    prompts = [p for n in names for p in held_out.get(n, [])[:EVAL_LOOKALIKES]]
    return (names, prompts) if len(prompts) >= 4 else ([], [])


def calibration_chart(eraser: Eraser) -> go.Figure | None:
    """The γ sweep of the eraser's calibration (plotly figure), its default γ and the preservation
    floors marked (unrelated prompts, and look-alikes when the eraser protected some: their own curve
    and floor); None when it was not calibrated."""
    from analysis.figures import SWEEP_SERIES, gamma_sweep_chart

    calibration = eraser.meta.get("calibration") or {}
    rows = calibration.get("rows") or []
    if not rows:
        return None
    series = {key: [r.get(key) for r in rows] for key in SWEEP_SERIES}
    return gamma_sweep_chart(
        [r["gamma"] for r in rows],
        series,
        chosen=eraser.gamma,
        preserve_min=calibration.get("preserve_min"),
        lookalike_min=calibration.get("lookalike_min"),
    )


def check_prompt(prompt: str | None) -> str:
    """The prompt, refused when empty, invisible or over 2,000 characters (the one rule of
    clear_core.concepts, as on the CLI) — checked before any model work, so a huge paste never ties
    up a worker."""
    from clear_core.concepts import check_prompt as check

    return check("" if prompt is None else str(prompt), "prompt")


def _percent(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def lookalike_scores(names: list[str], n: int, base: Any, row: Any) -> str:
    """The preview's look-alike paragraph: how much of each protected neighbour survives (cosine) and
    whether a probe still tells it apart from the concept, unerased vs at this γ."""
    return (
        f"\n\n**Look-alikes kept** ({', '.join(names)}; {n} held-out prompts): cosine original vs erased "
        f"**{row.preservation_lookalike:.3f}**; told apart from *the concept* "
        f"**{_percent(row.lookalike_told_apart)}** (unerased {_percent(base.lookalike_told_apart)})."
    )


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
        prompt = check_prompt(prompt)
        gamma = check_gamma(eraser.gamma if gamma is None else gamma, "γ")
        progress(0.0, desc="loading the model…")
        encoder = encoder_for(session)
        eraser.check_encoder(encoder)
        progress(0.1, desc="erasing the prompt")
        x = explain_prompt(eraser, encoder, prompt, gamma)
        numbers: dict[str, Any] = {
            "gamma": gamma,
            "block": eraser.layer - 1,
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
            names, lookalikes = lookalike_prompts(session, eraser)
            baseline, new = evaluation_baseline(
                session,
                encoder,
                *pairs,
                implicit=session.implicit or None,
                unrelated=unrelated_prompts(),
                lookalikes=lookalikes or None,
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
            if lookalikes:
                numbers["scores"]["lookalikes"] = {"names": names, "n_held_out": len(lookalikes)}
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
                + (lookalike_scores(names, len(lookalikes), base, row) if lookalikes else "")
            )
            verdict = f"concept probability **{p0:.2f} → {p1:.2f}**; "
        else:
            scores = (
                f"Load the pairs of *{eraser.concept}* in the Concept tab to see leakage and preservation "
                "on the whole concept."
            )
            verdict = ""
    block = block_label(eraser.layer, eraser.layer_name)
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


def _check_media(prompt, gamma, seed, steps, eraser: Eraser) -> tuple[str, float, int, int]:
    """(prompt, γ, seed, steps) of the video panel, each checked (ValueError naming the bad one)."""
    prompt = check_prompt(prompt)
    gamma = check_gamma(eraser.gamma if gamma is None else gamma, "γ")
    if seed is None or not float(seed).is_integer() or seed < 0:
        raise ValueError(f"the seed must be a whole number ≥ 0, got {seed}")
    if steps is None or not float(steps).is_integer() or not 1 <= steps <= 100:
        raise ValueError(f"steps must be a whole number in 1..100, got {steps}")
    return prompt, gamma, int(seed), int(steps)


def generate_media(
    prompt: str,
    gamma: float,
    seed: float,
    pipeline: str,
    steps: float,
    session: Session,
    progress: ProgressFn = gr.Progress(),
) -> tuple[str, str, str, list[str], str]:
    """Original and erased clips with the same seed and the same initial latents: (original mp4,
    erased mp4, frame strip PNG, downloads, info). Clips come from the shared cache when this
    (pipeline, prompt, seed, steps, eraser, γ) was rendered before, so moving γ back is instant."""
    with user_errors():
        from clear_core.generation.media import contact_sheet

        eraser = require_eraser(session)
        prompt, gamma, seed, steps = _check_media(prompt, gamma, seed, steps, eraser)
        if not pipeline or not str(pipeline).strip():
            raise ValueError("choose a pipeline: 'testbed', a diffusers folder or a Hugging Face id")
        pipeline = str(pipeline).strip()
        progress(0.0, desc=f"loading pipeline {pipeline}…")
        pipe = get_pipeline(pipeline)
        settings = render_settings(pipeline, int(steps))
        cache = preview_cache()
        clips = []
        for i, (label, erasers) in enumerate((("original", []), (f"erased γ={gamma:g}", [(eraser, gamma)]))):

            def step(k: int, n: int, _i: int = i, _label: str = label) -> None:
                progress((_i + k / n) / 2, desc=f"{_label}: denoising step {k}/{n}")

            clips.append(cache.clip(pipe, pipeline, prompt, int(seed), settings, erasers, progress=step))
        original, erased = clips
        strip = contact_sheet(
            erased.video.parent / "strip.png",
            [original.frames, erased.frames],
            ["original", f"erased γ={gamma:g}"],
        )
        timing = " · ".join(
            f"{name}: {'cached' if c.cached else f'{c.seconds:.2f} s'}"
            for name, c in zip(("original", "erased"), clips)
        )
        info = (
            f"`{pipeline}` · seed {int(seed)} · {int(steps)} steps · same initial latents · {timing}. "
            f"The eraser also applies to the (empty) negative prompt."
        )
    return (
        str(original.video),
        str(erased.video),
        str(strip),
        [str(original.video), str(original.meta), str(erased.video), str(erased.meta)],
        info,
    )


def rerender_media(
    auto: bool,
    current: str | None,
    prompt: str,
    gamma: float,
    seed: float,
    pipeline: str,
    steps: float,
    session: Session,
    progress: ProgressFn = gr.Progress(),
):
    """γ slider released: re-render the erased clip (cached γ values come back at once) when videos
    are showing and re-rendering is on; otherwise leave the panel as it is."""
    if not auto or not current or session.eraser is None:
        return (gr.skip(),) * 5
    return generate_media(prompt, gamma, seed, pipeline, steps, session, progress)


def rate_over_seeds(
    prompt: str,
    gamma: float,
    seed: float,
    pipeline: str,
    steps: float,
    session: Session,
    progress: ProgressFn = gr.Progress(),
) -> tuple[dict, str, dict]:
    """After the clips: on the testbed, the generative rate of the eraser's concept over
    :data:`app.measure.RATE_SEEDS` seeds of the prompt, original vs erased from the same latents, with
    95% Wilson intervals: (chart update, note, numbers update). Another pipeline hides the chart at once (no
    model work); a concept the testbed detector cannot see gets a one-line note instead of a chart."""
    hidden = gr.update(visible=False, value=None)
    if str(pipeline or "").strip() != "testbed" or session.eraser is None:
        return hidden, "", hidden
    with user_errors():
        from app.measure import seed_rate_chart, seed_rates, testbed_detector
        from clear_core.testbed.detector import concept_attribute

        eraser = session.eraser
        prompt, gamma, seed, steps = _check_media(prompt, gamma, seed, steps, eraser)
        try:
            concept_attribute(eraser.concept)
        except ValueError:
            return (
                hidden,
                f"*No rate over seeds: the testbed detector has no attribute for* `{eraser.concept}` "
                "*(only the built-in packs' concepts are drawn in the testbed world).*",
                hidden,
            )
        progress(0.0, desc="loading the testbed and its detector…")
        numbers = seed_rates(
            get_pipeline("testbed"), testbed_detector(), prompt, eraser, gamma, seed, steps, progress=progress
        )
    arms = [k for k in numbers if k != "setup"]
    a, b = (numbers[k] for k in arms)
    note = (
        f"Testbed detector, {a['clips']} seeds from {seed}: the concept shows in "
        f"**{a['clips_with_concept']}/{a['clips']}** original clips and **{b['clips_with_concept']}/{b['clips']}** "
        f"erased ones (γ = {gamma:g}; a clip counts when the concept is in at least half its frames); "
        "whiskers are 95% Wilson intervals over the clips."
    )
    shown = gr.update(visible=True, value=seed_rate_chart(numbers))
    return shown, note, gr.update(visible=True, value=numbers)


def rerate_media(
    auto: bool,
    current: str | None,
    prompt: str,
    gamma: float,
    seed: float,
    pipeline: str,
    steps: float,
    session: Session,
    progress: ProgressFn = gr.Progress(),
):
    """γ slider released: follow the rate over seeds the way :func:`rerender_media` follows the clips."""
    if not auto or not current or session.eraser is None:
        return (gr.skip(),) * 3
    return rate_over_seeds(prompt, gamma, seed, pipeline, steps, session, progress)


def example_prompt(kind: str, session: Session) -> str:
    """A prompt of the loaded concept: "explicit" (a positive), "implicit" (a held-out paraphrase, else a
    positive) or "unrelated" (from the unrelated set)."""
    from clear_core.concepts import unrelated_prompts

    with user_errors():
        if kind == "unrelated":
            return unrelated_prompts()[0]
        concept = session.concept
        if concept is None:
            raise ValueError("no prompt pairs yet: pick a built-in pack or enter pairs in the Concept tab")
        if kind == "implicit" and session.implicit:
            return session.implicit[0]
        return concept.positives[0 if kind == "explicit" else min(1, len(concept) - 1)]


def fill_prompt(prompt: str, session: Session) -> str:
    """Entering the tab with an empty prompt: start from an explicit prompt of the loaded concept."""
    if prompt and prompt.strip():
        return prompt
    return session.concept.positives[0] if session.concept is not None else ""


DETECTORS = ["testbed", "nudenet", "faces:REFS", "clip:PATH"]
"""Detector choices of the Measure button ("testbed" means the testbed detector for the eraser's concept)."""


def measure_media(original: str | None, erased: str | None, detector: str, session: Session):
    """Measure: run ``detector`` over the clips on show (frame strip with detections, rate chart, numbers)."""
    from app.measure import on_measure

    spec = (detector or "").strip()
    concept = session.eraser.concept if session.eraser is not None else None
    if spec == "testbed":
        if concept is None:
            raise gr.Error("no eraser yet: the testbed detector looks for the eraser's concept")
        spec = f"testbed:{concept}"
    return on_measure(original, erased, spec, concept=concept)
