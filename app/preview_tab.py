"""Step 5, Erase & preview: what the erased encoder output looks like for any prompt, at any γ.

For one prompt: the concept probe's verdict before and after, the cosine between original and erased
outputs, reconstruction error and activation-norm drift at the block, where on the prompt the edit
lands and which SAE features were subtracted (:func:`clear_core.preview.preview_prompt`). For the
concept as a whole: leakage and preservation at this γ, measured by :mod:`clear_core.measure` on the
sample ``python -m clear_core evaluate`` measures (the numbers are the same, and the sample is named
next to them), with a :class:`clear_core.measure.Measurer` cached in the session so that moving γ
encodes only the erased side, and a γ seen before costs nothing. The γ sweep of the eraser's calibration is drawn by
:func:`calibration_chart`, named as what it is: the calibration's own, smaller sample.

Original-vs-erased clips sit next to the γ slider: moving it re-renders the erased clip first (the
original comes from the cache), then the scores and, on the CPU testbed, the concept's generative rate
over a few seeds with 95% intervals (:func:`rate_over_seeds`). Every result group remembers what it was
computed from (:func:`app.state.result_key`) and :func:`stale_note` says when the page has moved on.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np

from app.common import ProgressFn, block_label, encoder_for, require_eraser, user_errors
from app.generation import get_pipeline, preview_cache, render_settings
from app.outputs import Outputs, keep
from app.state import Session, result_key
from clear_core.validation import check_gamma

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from clear_core.encoders import TextEncoder
    from clear_core.erasure import Eraser
    from clear_core.measure import Measurer
    from clear_core.preview import PromptPreview

__all__ = [
    "DETECTORS",
    "EraseOutputs",
    "calibration_chart",
    "clear_media",
    "erase_after_clips",
    "erase_prompt",
    "example_prompt",
    "fill_prompt",
    "generate_media",
    "measurer",
    "rate_over_seeds",
    "rerender_media",
    "stale_note",
]


def calibration_chart(eraser: Eraser) -> go.Figure | None:
    """The γ sweep of the eraser's calibration (plotly figure), its default γ and the preservation
    floors marked (unrelated prompts, and look-alikes when the eraser protected some: their own curve
    and floor), titled with the calibration's sample; None when it was not calibrated."""
    from analysis.figures import SWEEP_SERIES, gamma_sweep_chart

    calibration = eraser.meta.get("calibration") or {}
    rows = calibration.get("rows") or []
    if not rows:
        return None
    series = {key: [r.get(key) for r in rows] for key in SWEEP_SERIES}
    n_implicit = calibration.get("n_implicit") or 0
    sample = (
        f"calibration sample: {calibration.get('n_pairs', '?')} pairs"
        + (f", {n_implicit} calibration paraphrases" if n_implicit else "")
        + f", {calibration.get('n_unrelated', '?')} unrelated prompts"
        + (f", {calibration['n_lookalike']} look-alike prompts" if calibration.get("n_lookalike") else "")
    )
    return gamma_sweep_chart(
        [r["gamma"] for r in rows],
        series,
        chosen=eraser.gamma,
        preserve_min=calibration.get("preserve_min"),
        lookalike_min=calibration.get("lookalike_min"),
        title=f"Calibration of the {eraser.concept} eraser: leakage and preservation against γ",
        note=sample,
    )


def check_prompt(prompt: str | None) -> str:
    """The prompt, refused when empty, invisible or over 2,000 characters (the one rule of
    clear_core.concepts, as on the CLI) — checked before any model work, so a huge paste never ties
    up a worker."""
    from clear_core.concepts import check_prompt as check

    return check("" if prompt is None else str(prompt), "prompt")


def _percent(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _quote(prompt: str, width: int = 60) -> str:
    short = prompt if len(prompt) <= width else prompt[: width - 1] + "…"
    return "*" + short.replace("*", "\\*").replace("_", "\\_") + "*"


def measurer(session: Session, encoder: TextEncoder, eraser: Eraser) -> tuple[Measurer | None, Session]:
    """The session's :class:`clear_core.measure.Measurer` for this eraser on the loaded pairs, built
    on first use and then reused while the model, the eraser and the sample stay the same; (None,
    session) when the loaded pairs are another concept's. The session passed in is not changed."""
    from clear_core.measure import Measurer, evaluation_sample

    c = session.concept
    if c is None or c.name != eraser.concept:
        return None, session
    sample = evaluation_sample(c, eraser, session.implicit)
    key = (encoder.model_id, encoder.revision, eraser.digest(), sample.key())
    cached = session.baseline
    if cached is not None and cached.key() == key:
        return cached, session
    built = Measurer(encoder, eraser, sample)
    return built, session.with_(baseline=built)


def _scores_text(eraser: Eraser, measurement: Any, gamma: float) -> str:
    base, row, sample = measurement.unerased, measurement.row(gamma), measurement.sample
    n = sample.counts()
    text = (
        f"**Leakage at γ = {gamma:g}** (share still detected as *{eraser.concept}*): positive prompts "
        f"**{_percent(row.leakage_positive)}** of {n['pairs']} (unerased {_percent(base.leakage_positive)})"
        + (
            f", held-out paraphrases **{_percent(row.leakage_implicit)}** of {n['implicit']} "
            f"(unerased {_percent(base.leakage_implicit)})"
            if row.leakage_implicit is not None
            else ""
        )
        + f"\n\n**Preservation** (cosine original vs erased): negative prompts "
        f"**{row.preservation_negative:.3f}**, unrelated prompts **{row.preservation_unrelated:.3f}** "
        f"of {n['unrelated']} (worst {row.min_preservation_unrelated:.3f})."
    )
    if sample.lookalikes:
        text += (
            f"\n\n**Look-alikes kept** ({', '.join(sample.lookalike_names)}; {n['lookalike']} held-out "
            f"prompts): cosine original vs erased **{row.preservation_lookalike:.3f}**; told apart from "
            f"*the concept* **{_percent(row.lookalike_told_apart)}** "
            f"(unerased {_percent(base.lookalike_told_apart)})."
        )
    text += (
        f"\n\n<sub>Sample: {sample.describe()}. `python -m clear_core evaluate --concept … --eraser … "
        f"--gamma {gamma:g}` measures the same sample and prints the same numbers.</sub>"
    )
    return text


@dataclass
class EraseOutputs(Outputs):
    """What :func:`erase_prompt` updates."""

    scores: Any = keep()
    """Markdown: the concept's leakage and preservation at this γ, with their sample."""
    this: Any = keep()
    """Markdown: this prompt before and after."""
    tokens: Any = keep()
    """Where the edit lands: (token, relative change) pairs."""
    subtracted: Any = keep()
    """Bar chart of the subtracted SAE features."""
    numbers: Any = keep()
    """Every number (:meth:`clear_core.preview.PromptPreview.to_json`)."""
    key: Any = keep()
    """What the scores were computed from (:func:`app.state.result_key`)."""
    session: Any = keep()
    """The session, with its measurer cached."""


def _this_text(preview: PromptPreview, eraser: Eraser) -> str:
    x = preview.explanation
    verdict = ""
    if preview.concept_probability is not None:
        p0, p1 = preview.concept_probability
        verdict = f"concept probability **{p0:.2f} → {p1:.2f}**; "
    block = block_label(eraser.layer, eraser.layer_name)
    recon = "" if x.recon_error is None else f"SAE reconstruction error **{x.recon_error:.3f}**, "
    return (
        f"**This prompt** ({_quote(x.prompt)}, γ = {x.gamma:g}): {verdict}cosine original vs erased output "
        f"**{x.cosine:.3f}**; at {block}: {recon}activation-norm drift **{100 * x.norm_drift:+.1f}%**."
    )


def _preview_outputs(preview: PromptPreview, eraser: Eraser, session: Session) -> EraseOutputs:
    """The Erase tab's results, formatted from the engine's :class:`PromptPreview`."""
    from analysis.figures import token_bars

    x, gamma = preview.explanation, preview.gamma
    if preview.measurement is not None:
        scores = _scores_text(eraser, preview.measurement, gamma)
    else:
        scores = (
            f"Load the pairs of *{eraser.concept}* in the Concept tab to see leakage and preservation "
            "on the whole concept."
        )
    peak = max(x.token_erased, default=0.0) or 1.0
    return EraseOutputs(
        scores=scores,
        this=_this_text(preview, eraser),
        tokens=[(f"{t} ", round(v / peak, 3) if v > 0 else None) for t, v in zip(x.tokens, x.token_erased)],
        subtracted=token_bars(
            [f"#{f}" for f, _ in x.subtracted],
            [a for _, a in x.subtracted],
            title=f"Subtracted SAE features at γ = {gamma:g}",
            x_title="amount subtracted (γ · Σ over tokens of activation · m_spec)",
        ),
        numbers=preview.to_json(),
        key=result_key(session, x.prompt, gamma),
        session=session,
    )


def erase_prompt(prompt: str, gamma: float, session: Session, progress: ProgressFn = gr.Progress()) -> tuple:
    """Erase one prompt (:func:`clear_core.preview.preview_prompt`): :class:`EraseOutputs` as a tuple.
    The session comes back with its measurer cached (see :func:`measurer`)."""
    with user_errors():
        from clear_core.preview import preview_prompt

        eraser = require_eraser(session)
        prompt = check_prompt(prompt)
        gamma = check_gamma(eraser.gamma if gamma is None else gamma, "γ")
        progress(0.0, desc="loading the model…")
        encoder = encoder_for(session)
        eraser.check_encoder(encoder)
        fresh = session.baseline is None or session.baseline.eraser is not eraser
        progress(0.1, desc="unerased outputs of the sample and the leakage probe" if fresh else "measuring")
        m, new = measurer(session, encoder, eraser)
        progress(0.3, desc="erasing the prompt")
        preview = preview_prompt(
            encoder, eraser, prompt, gamma, m, progress=lambda f, message: progress(f, desc=message)
        )
        return _preview_outputs(preview, eraser, new).values()


_RENDERS = {"running": 0}
_RENDERS_CHANGED = threading.Condition()
CLIP_HEAD_START_S = 0.3
"""How long the scores of a γ move wait for the clip's render to begin (both leave together)."""
CLIP_WAIT_S = 5.0
"""The longest the scores of a γ move wait for clips being rendered to finish."""


@contextmanager
def _rendering():
    """Marks a clip render in progress (see :func:`erase_after_clips`)."""
    with _RENDERS_CHANGED:
        _RENDERS["running"] += 1
    try:
        yield
    finally:
        with _RENDERS_CHANGED:
            _RENDERS["running"] -= 1
            _RENDERS_CHANGED.notify_all()


def erase_after_clips(
    prompt: str, gamma: float, session: Session, progress: ProgressFn = gr.Progress()
) -> tuple:
    """:func:`erase_prompt` for a γ move: the clip next to the slider goes first. The scores wait a
    moment for the re-render to start and then (at most :data:`CLIP_WAIT_S`) for it to finish, so on a
    small CPU the two do not halve each other's speed; the clip is what the eye follows."""
    time.sleep(CLIP_HEAD_START_S)
    with _RENDERS_CHANGED:
        _RENDERS_CHANGED.wait_for(lambda: _RENDERS["running"] == 0, timeout=CLIP_WAIT_S)
    return erase_prompt(prompt, gamma, session, progress)


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
) -> tuple[str, str, str, list[str], str, dict]:
    """Original and erased clips with the same seed and the same initial latents: (original mp4,
    erased mp4, frame strip PNG, downloads, info, what they were computed from). Clips come from the
    shared cache when this (pipeline, prompt, seed, steps, eraser, γ) was rendered before, so moving γ
    back is instant; a new γ re-renders only the erased clip, from the cached encoder prefix."""
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

            with _rendering():
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
            f"Clips of {_quote(prompt)} · **γ = {gamma:g}** · seed {int(seed)} · {int(steps)} steps · "
            f"the *{eraser.concept}* eraser at {block_label(eraser.layer, eraser.layer_name)} · "
            f"`{pipeline}` · same initial latents · {timing}. The eraser also applies to the (empty) "
            "negative prompt."
        )
    files = [str(original.video), str(original.meta), str(erased.video), str(erased.meta)]
    key = {**result_key(session, prompt, gamma, seed), "pipeline": pipeline, "steps": int(steps)}
    return str(original.video), str(erased.video), str(strip), files, info, key


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
        return (gr.skip(),) * 6
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
    95% Wilson intervals: (chart update, note, numbers update, what they were computed from). Another
    pipeline hides the chart at once (no model work); a concept the testbed detector cannot see gets a
    one-line note instead of a chart."""
    hidden = gr.update(visible=False, value=None)
    if str(pipeline or "").strip() != "testbed" or session.eraser is None:
        return hidden, "", hidden, None
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
                None,
            )
        progress(0.0, desc="loading the testbed and its detector…")
        numbers = seed_rates(
            get_pipeline("testbed"), testbed_detector(), prompt, eraser, gamma, seed, steps, progress=progress
        )
    arms = [k for k in numbers if k != "setup"]
    a, b = (numbers[k] for k in arms)
    note = (
        f"Testbed detector on {_quote(prompt)}, {a['clips']} seeds from {seed}: the concept shows in "
        f"**{a['clips_with_concept']}/{a['clips']}** original clips and **{b['clips_with_concept']}/{b['clips']}** "
        f"erased ones (γ = {gamma:g}; a clip counts when the concept is in at least half its frames); "
        "whiskers are 95% Wilson intervals over the clips."
    )
    shown = gr.update(visible=True, value=seed_rate_chart(numbers))
    key = {**result_key(session, prompt, gamma, seed), "pipeline": "testbed"}
    return shown, note, gr.update(visible=True, value=numbers), key


@lru_cache(maxsize=32)
def _drawn_paraphrase(prompts: tuple[str, ...], slug: str) -> str | None:
    """The paraphrase whose seed-0 testbed clip shows the concept in the most frames (None when none
    does, or the testbed cannot draw ``slug``): an "implicit" example that draws something."""
    from app.measure import paraphrase_frame_shares

    try:
        shares = paraphrase_frame_shares(list(prompts), slug)
    except ValueError:  # no testbed attribute for this concept
        return None
    best = int(np.argmax(shares))
    return prompts[best] if shares[best] > 0 else None


def example_prompt(kind: str, session: Session, pipeline: str | None = None) -> str:
    """A prompt of the loaded concept: "explicit" (a positive), "implicit" (a held-out paraphrase, else a
    positive) or "unrelated" (from the unrelated set). On the testbed the implicit example is the
    paraphrase the testbed draws the concept for most often (many paraphrases draw nothing there)."""
    from clear_core.concepts import unrelated_prompts

    with user_errors():
        if kind == "unrelated":
            return unrelated_prompts()[0]
        concept = session.concept
        if concept is None:
            raise ValueError("no prompt pairs yet: pick a built-in pack or enter pairs in the Concept tab")
        if kind == "implicit" and session.implicit:
            if str(pipeline or "").strip() == "testbed":
                drawn = _drawn_paraphrase(tuple(session.implicit), concept.name)
                if drawn is not None:
                    return drawn
            return session.implicit[0]
        return concept.positives[0 if kind == "explicit" else min(1, len(concept) - 1)]


def fill_prompt(prompt: str, session: Session) -> str:
    """Entering the tab with an empty prompt: start from an explicit prompt of the loaded concept."""
    if prompt and prompt.strip():
        return prompt
    return session.concept.positives[0] if session.concept is not None else ""


_RESULT_FIELDS = {
    "concept": "set of pairs",
    "pairs": "set of pairs",
    "eraser": "eraser",
    "gamma": "γ",
    "seed": "seed",
}


def _changed(key: dict | None, now: dict) -> list[str]:
    if not key:
        return []
    out = [label for field, label in _RESULT_FIELDS.items() if field in key and key[field] != now[field]]
    if key.get("prompt") != now["prompt"]:
        out.append("prompt")
    if "pipeline" in key and key["pipeline"] != now.get("pipeline"):
        out.append("pipeline")
    return list(dict.fromkeys(out))


def stale_note(
    prompt: str,
    gamma: float,
    seed: float,
    pipeline: str,
    scores_key: dict | None,
    media_key: dict | None,
    rate_key: dict | None,
    session: Session,
) -> str:
    """A warning above the results when what they were computed from (:func:`app.state.result_key`)
    is no longer what the page shows ("" when every result is current)."""
    try:
        g = None if gamma is None else float(gamma)
        s = None if seed is None else int(seed)
    except (TypeError, ValueError):
        g, s = None, None
    now = {**result_key(session, prompt or "", g, s), "pipeline": str(pipeline or "").strip()}
    notes = []
    scores = [c for c in _changed(scores_key, now) if c != "seed"]
    if scores:
        notes.append(f"the scores are for a different {', '.join(scores)} (press **Erase**)")
    media = _changed(media_key, now)
    if media:
        notes.append(f"the clips are for a different {', '.join(media)} (press **Generate**)")
    rate = _changed(rate_key, now)
    if rate:
        notes.append(f"the rate over seeds is for a different {', '.join(rate)} (press **Rate over seeds**)")
    return ("⚠️ Out of date: " + "; ".join(notes) + ".") if notes else ""


def clear_media() -> tuple:
    """Empty the clips and everything measured on them (another pipeline: they are not its clips).

    Order: original, erased, strip, downloads, media info, media key, rate chart, rate note, rate
    numbers, rate key, detections strip, measure chart, measure numbers."""
    hidden = gr.update(visible=False, value=None)
    return (None, None, None, None, "", None, hidden, "", hidden, None, None, None, None)


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
