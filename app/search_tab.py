"""Step 3, Search: the Gumbel-softmax layer search with live charts, ablations, and the calibrated eraser.

:func:`run_search` drives :class:`clear_core.workflow.ClearRun` (the same class as the command line)
and streams the layer probabilities over steps (the paper's Fig. 5), the losses and τ while it runs.
"Stop" ends the search early; the run still builds an eraser from the state reached and calibrates
it, so stopping never throws work away. The session changes only on the last yield.

The Keep box names the look-alikes to protect (EraserOptions.preserve, the CLI's
``--preserve``): a pack's built-in list is filled in when its pairs load, an empty box protects
nothing. The summary says what was protected, and warns, naming the runner-up block, when the search
did not settle on one block (``layer_uncertainty``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from app import models
from app.common import (
    ProgressFn,
    block_label,
    encoder_for,
    require_concept,
    session_status,
    user_errors,
    warn_if_small,
)
from app.layer_tab import chosen_layer, layer_map_figures
from app.outputs import Outputs, keep
from app.preview_tab import calibration_chart
from app.state import Session, pairs_key

if TYPE_CHECKING:
    from clear_core.search import SearchEvent
    from clear_core.workflow import RunResult

__all__ = [
    "CalibrationCost",
    "GAMMA_MAX",
    "KINDS",
    "METHODS",
    "SearchOutputs",
    "calibration_cost",
    "check_search",
    "default_keep",
    "eraser_options",
    "parse_gammas",
    "parse_keep",
    "keep_summary",
    "run_search",
    "search_figures",
    "search_summary",
    "seconds_per_prompt",
    "stop_search",
    "undecided_warning",
]

JOB = "search"
KINDS = {"SAE (CLEAR)": "sae", "steering vector (dense baseline)": "steering"}
"""Eraser kinds as labelled in the UI (EraserOptions.kind)."""
METHODS = {"Gumbel-softmax search": "search", "brute force (one SAE per block)": "brute_force"}
"""Layer selection as labelled in the UI (EraserOptions.method)."""
GAMMA_MAX = 20.0
"""Largest γ the UI offers (the γ slider's range; the paper's best γ ≈ 10 sits inside it)."""
EMIT_EVERY_S = 0.4
"""Minimum seconds between two chart updates (keeps the page light on long searches)."""


def parse_gammas(text: str | None) -> tuple[float, ...]:
    """The calibration grid from "0, 0.5, 1, 2" (ValueError naming the bad entry)."""
    values = []
    for part in (text or "").replace(";", ",").split(","):
        if not part.strip():
            continue
        try:
            values.append(float(part))
        except ValueError:
            raise ValueError(
                f"γ grid: {part.strip()!r} is not a number; expected e.g. 0, 0.5, 1, 2, 4"
            ) from None
    out_of_range = [v for v in values if not 0 <= v <= GAMMA_MAX]
    if out_of_range:
        raise ValueError(f"γ grid: {out_of_range[0]:g} is outside 0..{GAMMA_MAX:g}")
    if not any(v > 0 for v in values):
        raise ValueError("γ grid: give at least one γ > 0, e.g. 0, 0.5, 1, 2, 4")
    return tuple(sorted(set(values)))


def default_keep(session: Session | None) -> str:
    """The Keep box's text for the session's concept: its pack's built-in look-alikes, comma-separated
    ("" for a concept without a built-in list)."""
    from clear_core.lookalikes import default_preserve

    concept = session.concept if session is not None else None
    return ", ".join(default_preserve(concept.name)) if concept is not None else ""


def parse_keep(text: str | None) -> tuple[str, ...]:
    """EraserOptions.preserve from the Keep box: the names listed (an empty box switches protection
    off, like the CLI's ``--no-preserve``); ValueError on a name listed twice or an invisible one."""
    from clear_core.lookalikes import parse_preserve

    try:
        return tuple(parse_preserve(text or ""))
    except ValueError as err:
        raise ValueError(f"Keep (look-alikes): {str(err).removeprefix('preserve list: ')}") from None


def check_keep(concept, options) -> None:
    """Write the look-alike prompts once, before any model work, with the call the run makes
    (:func:`clear_core.lookalikes.resolve_preserve` on the fit pairs): a name that cannot be swapped
    into the concept's pairs, or a gate with nothing to keep, fails here in one line, in the app's words
    (the library's name the CLI's flags)."""
    from clear_core.lookalikes import resolve_preserve
    from clear_core.splits import split_pairs

    split = split_pairs(concept, options.holdout)
    try:
        resolve_preserve(
            concept,
            options.preserve,
            options.preserve_prompts,
            kind=options.kind,
            mask=options.mask,
            gate=options.gate,
            held_out_pairs=split.held_out_indices if len(split.held_out) else None,
        )
    except ValueError as err:
        message = str(err)
        if message.startswith("the look-alike gate needs"):
            fix = "the Keep box is empty" if options.preserve == () else "this concept has no look-alikes"
            raise ValueError(
                f"Look-alike gate: {fix}, so there is nothing to gate for; name some in Keep, or untick it"
            ) from None
        message = message.split("; give whole")[0].removeprefix("preserve list: ")
        fix = "empty the box" if message.startswith("concept ") else "remove it from the list"
        raise ValueError(f"Keep (look-alikes): {message}; {fix}") from None


def search_figures(
    history: list[SearchEvent], layer_names: list[str], candidates: list[int], chosen: int | None = None
) -> tuple[Any, Any]:
    """(layer probability chart, loss chart) of the events so far; ``chosen`` is a layer index.

    (None, None) before the first event (an empty plot).
    """
    from analysis.figures import layer_probability_chart, loss_chart

    if not history:
        return None, None
    names = [layer_names[c] for c in candidates]
    steps = [e.step for e in history]
    pick = candidates.index(chosen) if chosen in candidates else None
    prob_fig = layer_probability_chart(steps, [e.probs for e in history], names, pick)
    losses = {
        "L_SAE": [e.loss_sae for e in history],
        "L_con": [e.loss_con for e in history],
        "L_CLEAR": [e.loss_clear for e in history],
    }
    return prob_fig, loss_chart(steps, losses, [e.tau for e in history])


def undecided_warning(result: RunResult) -> str | None:
    """A markdown warning when the search did not settle on one block (``layer_uncertainty`` in
    eraser.json, clear_core/search.py: the chosen block below p = 0.5 or under twice the runner-up),
    naming the runner-up; None when it did, for brute force (one SAE per block, no distribution) and
    for a single candidate."""
    e, s = result.eraser, result.search
    if result.brute_force is not None or len(s.candidates) < 2:
        return None
    u = e.meta.get("layer_uncertainty") or s.uncertainty.to_json()
    if u.get("decisive", True):
        return None
    order = sorted(range(len(s.probs)), key=lambda i: s.probs[i], reverse=True)
    top, runner = s.candidates[order[0]], s.candidates[order[1]]
    more = min(3000, max(2 * s.config.steps, 600))
    return (
        f"⚠️ **Undecided search**: block {top - 1} has p = {s.probs[order[0]]:.2f}, the runner-up "
        f"**{block_label(runner, s.layer_names[runner])}** p = {s.probs[order[1]]:.2f} "
        f"(margin {u.get('margin', s.probs[order[0]] - s.probs[order[1]]):.2f}). Do not trust the block yet: "
        f"search again with more steps (e.g. {more:,}), or choose **brute force (one SAE per block)** "
        "under *Ablations* to compare the blocks directly."
    )


def keep_summary(result: RunResult) -> str:
    """One line: which look-alikes the eraser protected (``eraser.meta["preserve"]``), or why none."""
    e = result.eraser
    record = e.meta.get("preserve") or {}
    names = record.get("lookalikes") or []
    if names:
        n = sum((record.get("n_protect") or {}).values())
        floor = record.get("lookalike_min")
        return (
            f"Look-alikes kept: **{', '.join(names)}** ({n} prompts protected in the "
            + ("search and the mask" if record.get("in_search") else "mask")
            + ("; gated: a token is erased only beyond what they use" if record.get("gate") else "")
            + (f"; the γ calibration keeps them at cosine ≥ {floor:g}" if floor is not None else "")
            + "; the other half of their prompts is held out for the preview)."
        )
    if e.kind != "sae":
        return "Look-alikes: not protected (a steering vector cannot; the contrastive SAE eraser does)."
    if e.mask != "contrastive":
        return "Look-alikes: not protected (the paper's mask cannot; the contrastive mask does)."
    return "Look-alikes: none protected (the Keep list was empty)."


def probe_summary(e) -> str:
    """One line on the probe gate (``EraserOptions.probe_gate``): its strength and what it catches, or
    why it was switched off; "" when the run did not ask for it."""
    skipped = e.meta.get("probe_gate_skipped")
    if skipped:
        return f"Probe gate: **off** ({skipped.removeprefix('probe gate off: ')})."
    if getattr(e, "probe", None) is None:
        return ""
    record = e.meta.get("probe_gate") or {}
    line = (
        f"Probe gate: a prompt it calls *{e.concept}* is erased "
        f"{'at least at' if e.probe_strength < 1 else 'at'} **{e.probe_strength:.3g}·γ** on every token; the "
        "gates decide for the others"
    )
    caught = record.get("calibration_negatives_caught")
    if caught is not None:
        line += f". It calls {caught:.0%} of the calibration pairs' negatives the concept"
        from clear_core.workflow import PROBE_NEGATIVES_WARN

        if caught >= PROBE_NEGATIVES_WARN:
            line += ": **the scenes of prompts like them will change** (review them)"
    dropped = record.get("reference_dropped")
    if dropped:
        line += f". Built-in packs it did not take as concept-free: {', '.join(dropped)}"
    return line + "."


def search_summary(result: RunResult) -> str:
    """Markdown: which block, how sure, which γ, what was protected, and how the run went."""
    e, s = result.eraser, result.search
    p = s.probs[s.candidates.index(s.layer)] if s.layer in s.candidates else float("nan")
    steps = result.history[-1].step if result.history else 0
    how = "stopped early" if result.cancelled else "finished"
    lines = [
        f"### Erase *{e.concept}* at {block_label(e.layer, e.layer_name)}",
        f"The search {how} after {steps} of {s.config.steps} steps in {result.elapsed:.1f} s "
        f"(seed {s.config.seed}); p(block {s.layer - 1}) = {p:.2f}.",
    ]
    warning = undecided_warning(result)
    if warning:
        lines.append(warning)
    if e.layer != s.layer:
        lines.append(f"The eraser was placed at block {e.layer - 1} by request, not at the search's choice.")
    if e.kind == "sae":
        n_spec = int((e.m_spec > 0.5).sum())
        lines.append(
            f"{e.mask.capitalize()} mask: {n_spec:,} of {e.m_spec.numel():,} SAE features are concept-specific "
            "(m_spec > 0.5)."
        )
    else:
        lines.append("Steering-vector baseline: one dense direction subtracted from every token.")
    lines.append(keep_summary(result))
    probe = probe_summary(result.eraser)
    if probe:
        lines.append(probe)
    if result.calibration is not None:
        cal = result.eraser.meta.get("calibration", {})
        lookalike = ""
        if cal.get("lookalike_min") is not None:
            lookalike = f" and look-alikes at cosine ≥ {cal['lookalike_min']:g}"
        lines.append(
            f"Default γ = **{e.gamma:g}**: the lowest leakage among the γ that keep unrelated prompts at "
            f"cosine ≥ {cal.get('preserve_min', 0.95):g}{lookalike} (calibrated on {cal.get('n_pairs', '?')} pairs)."
        )
    return "\n\n".join(lines)


def eraser_options(
    kind: str,
    mask: str,
    method: str,
    calibration_pairs: float,
    gammas_text: str,
    keep_text: str | None = None,
    gate: bool = False,
    probe_gate: bool = False,
):
    """The engine's EraserOptions from the UI's labels (ValueError on a bad value). ``keep_text`` is
    the Keep box: None leaves the pack's built-in look-alikes (EraserOptions.preserve = None), "" keeps
    none, else the names listed. ``gate``: the look-alike gate (``EraserOptions.gate``); ``probe_gate``:
    the probe gate (``EraserOptions.probe_gate``)."""
    from clear_core.workflow import EraserOptions

    if probe_gate and (KINDS.get(kind, kind) != "sae" or mask != "contrastive"):
        raise ValueError("Probe gate: it needs the SAE (CLEAR) eraser with the contrastive mask; untick it")
    return EraserOptions(
        kind=KINDS.get(kind, kind),
        mask=mask,
        method=METHODS.get(method, method),
        calibration_pairs=int(calibration_pairs),
        gammas=parse_gammas(gammas_text),
        preserve=None if keep_text is None else parse_keep(keep_text),
        gate=bool(gate),
        probe_gate=bool(probe_gate),
    )


def _eta(event: SearchEvent, calibration_s: float) -> str:
    """Time left: the search's remaining steps at its pace so far, plus the γ calibration after it
    (a large share of a default run, so leaving it out promised the end far too early)."""
    if event.step == 0:
        return ""
    left = event.elapsed / event.step * (event.total - event.step) + calibration_s
    return f", about {left:.0f} s left (calibration included)" if left >= 1 else ""


@dataclass(frozen=True)
class CalibrationCost:
    """What the γ calibration encodes, counted as the code runs it: ``clear_core.evaluation.evaluate``
    encodes the calibration prompts once unerased, then ``clear_core.prefix.encode_gammas`` runs the
    blocks up to the eraser's once more (the recorded prefix) and the blocks above it once per γ > 0
    (every γ in one batch)."""

    prompts: int
    """Calibration prompts: the calibration pairs' two sides, the calibration halves of the
    paraphrases and the unrelated prompts, the look-alikes' protect-half prompts."""
    gammas: int
    """Distinct γ > 0 in the grid (γ = 0 reuses the unerased outputs)."""
    n_blocks: int
    """The encoder's blocks (each taken to cost the same; the embeddings and pooling are cheap)."""
    sweeps: int = 1
    """γ sweeps over the same prompts (2 with the probe gate: the gates' own, the probe's alone)."""
    checks: int = 0
    """Passes at one γ over the same prompts (1 with the probe gate: the gates and the probe together;
    up to 3 where the first strength it tries costs a floor)."""

    def encodes(self, layer: int) -> float:
        """Full encodes per prompt for an eraser at ``layer`` (1..n_blocks)."""
        below = min(max(layer, 1), self.n_blocks) / self.n_blocks
        return 1 + self.sweeps * (below + self.gammas * (1 - below)) + self.checks

    def seconds(self, per_prompt: float, layers: Sequence[int]) -> float:
        """Estimated seconds at ``per_prompt`` seconds per full encode of one prompt, with the eraser
        at the dearest of ``layers`` (the block chosen, or the candidates while it is not known)."""
        return per_prompt * self.prompts * max(self.encodes(layer) for layer in layers)


def calibration_cost(run) -> CalibrationCost:
    """The :class:`CalibrationCost` of a :class:`clear_core.workflow.ClearRun` (zero prompts when it
    does not calibrate); the prompts are counted as ``ClearRun._calibrate`` picks them."""
    from clear_core.splits import alternate
    from clear_core.workflow import CALIBRATION_LOOKALIKES

    opts = run.options
    gammas = len({g for g in opts.gammas if g > 0})
    if not opts.calibrate:
        return CalibrationCost(0, gammas, run.encoder.n_blocks)
    pairs = min(opts.calibration_pairs, len(run.split.fit))
    implicit = len(alternate(run.implicit)[0]) if opts.calibrate_on_implicit else 0
    lookalikes = 0
    if run.preserve and opts.kind == "sae":
        protect = run.preserve.protect
        lookalikes = sum(len(protect[n][:CALIBRATION_LOOKALIKES]) for n in run.preserve.names)
    prompts = 2 * pairs + implicit + len(alternate(run.unrelated)[0]) + lookalikes
    probe = opts.probe_gate and opts.kind == "sae"
    return CalibrationCost(prompts, gammas, run.encoder.n_blocks, 1 + probe, int(probe))


def seconds_per_prompt(encoder) -> float:
    """Seconds this encoder takes to encode one prompt now (timed on 16 unrelated prompts, after a
    warm-up: ~0.1 s on MiniLM)."""
    from clear_core.concepts import unrelated_prompts

    sample = unrelated_prompts()[:16]
    encoder.encode(sample[:4])  # warm up
    start = time.perf_counter()
    encoder.encode(sample)
    return (time.perf_counter() - start) / len(sample)


def _likely_layer(event: SearchEvent | None, candidates: list[int], brute: bool) -> list[int]:
    """The eraser's block as far as the search knows it: the most probable candidate so far (the one
    it ends on), or every candidate before the first event and for brute force."""
    if event is None or brute or len(event.probs) != len(candidates):
        return candidates
    return [candidates[max(range(len(event.probs)), key=event.probs.__getitem__)]]


def _settings(
    steps,
    d_sae,
    seed,
    use_con,
    kind,
    mask,
    method,
    calibration_pairs,
    gammas_text,
    keep_text,
    gate=False,
    probe_gate=False,
):
    """(SearchConfig, EraserOptions) from the form, every number checked (ValueError on a bad one)."""
    from clear_core.search import SearchConfig
    from clear_core.validation import check_int

    search = SearchConfig(
        steps=check_int(steps, "steps", minimum=1),
        d_sae=check_int(d_sae, "SAE features (d_sae)", minimum=1),
        seed=check_int(seed, "seed", minimum=0),
        use_con=bool(use_con),
    )
    return search, eraser_options(
        kind, mask, method, calibration_pairs, gammas_text, keep_text, gate, probe_gate
    )


def check_search(
    steps,
    d_sae,
    seed,
    use_con,
    kind,
    mask,
    method,
    calibration_pairs,
    gammas_text,
    keep_text,
    session: Session,
    gate: bool = False,
    probe_gate: bool = False,
) -> None:
    """The light half of "Start search", run outside the heavy queue: a missing concept, a bad number,
    a look-alike that cannot be written or a model that failed to load is reported at once, not after
    another visitor's search."""
    with user_errors():
        concept = require_concept(session)
        warn_if_small(concept)
        _search, options = _settings(
            steps,
            d_sae,
            seed,
            use_con,
            kind,
            mask,
            method,
            calibration_pairs,
            gammas_text,
            keep_text,
            gate,
            probe_gate,
        )
        check_keep(concept, options)
        error = models.load_error(session.model)
        if error:
            raise ValueError(f"the model {session.model!r} failed to load: {error}")


@dataclass
class SearchOutputs(Outputs):
    """What one yield of :func:`run_search` updates (a field left out keeps what the page shows)."""

    probs: Any = keep()
    """Layer probabilities over steps."""
    losses: Any = keep()
    """Losses and τ over steps."""
    status: Any = keep()
    """The search's status line."""
    summary: Any = keep()
    """Markdown: the block, the γ, what was protected (:func:`search_summary`)."""
    calibration: Any = keep()
    """The Erase tab's calibration chart."""
    separability: Any = keep()
    """The Layer map's separability figure, with the chosen block marked."""
    projections: Any = keep()
    """The Layer map's projections, with the chosen block marked."""
    gamma: Any = keep()
    """The Erase tab's γ slider: the calibrated default."""
    session_status: Any = keep()
    """The status line under the title."""
    session: Any = keep()
    """The session (changed on the last yield only)."""


def _run_settings(search, options, concept, encoder, run) -> dict:
    """What the export records about the run: its settings, and what it read besides the pairs, so
    that the report's command line repeats it exactly (app/report.py)."""
    return {
        "search": search.to_json(),
        "options": {**dataclasses.asdict(options), "gammas": list(options.gammas)},
        "concept": concept.name,
        "n_pairs": len(concept),
        "model_id": encoder.model_id,
        "model_revision": encoder.revision,
        "pairs": concept.to_text("jsonl"),
        "implicit": list(run.implicit),
        "preserve": list(run.preserve.names) if run.preserve else [],
    }


def _finished(run, session: Session, settings: dict, layer_names: list[str], brute: bool) -> SearchOutputs:
    """The last yield: the session with the new eraser, and every figure it changes."""
    result = run.result
    new = session.with_eraser(
        result.eraser, "search", pairs_key(session.concept), run=result, run_settings=settings
    )
    history = result.search.history if brute else result.history
    probs, losses = search_figures(history, layer_names, result.search.candidates, result.eraser.layer)
    out = SearchOutputs(
        probs=probs,
        losses=losses,
        status=f"**done**: {'stopped early, ' if result.cancelled else ''}{result.elapsed:.1f} s",
        summary=search_summary(result),
        calibration=calibration_chart(result.eraser),
        gamma=result.eraser.gamma,
        session_status=session_status(new),
        session=new,
    )
    if new.layer_map is not None:
        out.separability, out.projections = layer_map_figures(
            new.layer_map, chosen=chosen_layer(new, new.layer_map)
        )
    return out


def run_search(
    steps: float,
    d_sae: float,
    seed: float,
    use_con: bool,
    kind: str,
    mask: str,
    method: str,
    calibration_pairs: float,
    gammas_text: str,
    keep_text: str | None,
    session: Session,
    gate: bool = False,
    probe_gate: bool = False,
    progress: ProgressFn = gr.Progress(),
) -> Iterator[tuple]:
    """Yields :class:`SearchOutputs` as tuples (Gradio's form): the live charts and status while the
    run goes, then everything it changed; only the last yield changes the session."""
    with user_errors():
        from clear_core.workflow import ClearRun

        concept = require_concept(session)
        search, options = _settings(
            steps,
            d_sae,
            seed,
            use_con,
            kind,
            mask,
            method,
            calibration_pairs,
            gammas_text,
            keep_text,
            gate,
            probe_gate,
        )
        check_keep(concept, options)
        progress(0.0, desc="loading the model…")
        encoder = encoder_for(session)
        # the session's own paraphrases (none is none): a concept named like a pack never borrows the
        # pack's paraphrases behind the visitor's back
        run = ClearRun(encoder, concept, search=search, options=options, implicit=list(session.implicit))
        cost = calibration_cost(run)
        per_prompt = seconds_per_prompt(encoder) if cost.prompts else 0.0
        calibration_start = None
        session.control.reset(JOB)
        history: list[SearchEvent] = []
        brute = options.method == "brute_force"
        layer_names = encoder.layer_names
        candidates = list(search.layers or range(1, len(layer_names)))
        last_emit = 0.0
        for stage in run.run(should_stop=lambda: session.control.should_stop(JOB)):
            progress(stage.fraction, desc=stage.message)
            message = f"**{stage.name}**: {stage.message}"
            if stage.event is not None:
                history.append(stage.event)
            layers = _likely_layer(history[-1] if history else None, candidates, brute)
            calibration_s = cost.seconds(per_prompt, layers)
            if stage.name == "calibrate":
                calibration_start = calibration_start or time.perf_counter()
                left = calibration_s - (time.perf_counter() - calibration_start)
                message += f", about {left:.0f} s left" if left >= 1 else ""
            if stage.event is not None:
                message += _eta(stage.event, calibration_s)
                now = time.perf_counter()
                if now - last_emit < EMIT_EVERY_S and stage.event.step < stage.event.total:
                    continue
                last_emit = now
                update = SearchOutputs(status=message)
                if not brute:  # brute force trains one SAE per block: its one "probability" says nothing
                    update.probs, update.losses = search_figures(history, layer_names, candidates)
                yield update.values()
            elif stage.name != "done":
                yield SearchOutputs(status=message).values()
        settings = _run_settings(search, options, concept, encoder, run)
        yield _finished(run, session, settings, layer_names, brute).values()


def stop_search(session: Session) -> str:
    """Ask this session's running search to stop; the eraser is built from the state reached."""
    session.control.request_stop(JOB)
    return "**stopping**: the eraser will be built from the state reached…"
