"""One CLEAR run, end to end: capture the pairs, search the block, build the eraser, calibrate γ.

The command line and the app both drive :class:`ClearRun`, so they cannot drift apart. ``run()``
yields :class:`Stage` updates (with the search's :class:`SearchEvent` while it trains) for progress
bars and live charts; stopping early (``should_stop`` or closing the generator) still leaves a
usable :attr:`ClearRun.result` built from the state reached.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from clear_core.build import (
    build_eraser,
    fitted_probe,
    leace_eraser,
    probe_gate,
    probe_logits,
    same_concept_packs,
    steering_eraser,
)
from clear_core.concepts import ConceptSet, builtin_packs, load_implicit, unrelated_prompts
from clear_core.config import EraserOptions, SearchConfig
from clear_core.encoders import Activations, CaptureConfig, TextEncoder
from clear_core.erasure import Eraser
from clear_core.evaluation import Baseline, Report, calibrate_gamma, evaluate
from clear_core.io import atomic_path
from clear_core.lookalikes import PreserveSet, resolve_preserve
from clear_core.search import (
    BruteForceResult,
    LayerSearch,
    SearchEvent,
    SearchResult,
    block_verdict,
    brute_force_search,
    layer_scales,
)
from clear_core.splits import PairSplit, alternate, reference_packs, split_pairs, splits_record
from clear_core.validation import ClearWarning

__all__ = ["MIN_PAIRS", "ClearRun", "EraserOptions", "RunResult", "Stage", "save_run"]

MIN_PAIRS = 8
"""Fewer pairs than this still run, with a warning: the statistics behind every result are too thin."""


@dataclass
class Stage:
    """A progress update."""

    name: str
    """"capture", "search", "verdict", "calibrate", "held-out" or "done"."""
    fraction: float
    """Overall progress in [0, 1]."""
    message: str
    """One line for a status bar."""
    event: SearchEvent | None = None
    """The search's event, during "search"."""


@dataclass
class RunResult:
    """Everything a run produced."""

    eraser: Eraser
    search: SearchResult
    """The search (for brute force: the chosen block's own single-layer search)."""
    calibration: Report | None
    """The γ sweep on the calibration prompts (what chose γ; not a result to report)."""
    pos: Activations
    """Capture of the fit positives."""
    neg: Activations
    """Capture of the fit negatives."""
    brute_force: BruteForceResult | None = None
    history: list[SearchEvent] = field(default_factory=list)
    cancelled: bool = False
    elapsed: float = 0.0
    preserve: PreserveSet | None = None
    """The look-alikes the eraser protected (None: nothing protected)."""
    split: PairSplit | None = None
    """The concept's fit / held-out pairs (clear_core/splits.py)."""
    held_out: Report | None = None
    """The eraser at γ 0 and its default γ on prompts the run never used: held-out pairs, the held-out
    halves of the implicit, unrelated and look-alike prompts (None when nothing was held out)."""


class ClearRun:
    """A configured run; iterate :meth:`run`, then read :attr:`result`.

    Every prompt set that decides something is split (clear_core/splits.py): the search, masks, gates
    and γ calibration see the fit pairs and the calibration halves; :attr:`RunResult.held_out` and
    ``eraser.json``'s ``held_out`` are measured on the rest.
    """

    def __init__(
        self,
        encoder: TextEncoder,
        concept: ConceptSet,
        search: SearchConfig | None = None,
        options: EraserOptions | None = None,
        capture: CaptureConfig | None = None,
        unrelated: Sequence[str] | None = None,
        implicit: Sequence[str] | None = None,
        search_result: SearchResult | None = None,
    ) -> None:
        """``implicit``: prompts that evoke the concept without naming it; None loads a built-in pack's
        own (when ``concept.name`` is a built-in slug). Half calibrates γ, half is held out.
        ``search_result``: a search already run on these pairs (``Eraser.search_result()`` of an
        eraser): the run builds its eraser from that SAE instead of searching again, so variants of one
        search (another block, another mask) go through the same code path."""
        if len(concept) < 2:
            raise ValueError(
                f"concept {concept.name!r} has {len(concept)} pair(s); a search needs at least 2"
            )
        if len(concept) < MIN_PAIRS:
            warnings.warn(
                f"concept {concept.name!r} has only {len(concept)} pairs: below {MIN_PAIRS} the search, the "
                "masks and the γ calibration rest on too few prompts to trust (the paper uses 500-3000)",
                ClearWarning,
                stacklevel=2,
            )
        self.encoder, self.concept = encoder, concept
        self.search_config = search or SearchConfig()
        self.options = options or EraserOptions()
        self.capture_config = capture or CaptureConfig()
        self.unrelated = list(unrelated) if unrelated is not None else unrelated_prompts()
        if implicit is None and concept.name in builtin_packs():
            implicit = load_implicit(concept.name)[0]
        self.implicit = list(implicit or [])
        opts = self.options
        self.split = split_pairs(concept, opts.holdout)
        self._sweep_probe = None  # the probe gate the γ sweep uses (see _build)
        self._reference_dropped: list[str] = []  # built-in packs the probe gate did not take (_reference)
        self._sweep_probe_pairs = ""  # which fit pairs the sweep's probe learnt from (_build)
        self._probe_layers: dict = {}  # each layer's scores when the probe's layer was chosen
        if len(self.split.fit) < 2:
            raise ValueError(
                f"concept {concept.name!r}: fewer than 2 pairs left to fit after the held-out split"
            )
        self.preserve = resolve_preserve(
            concept,
            opts.preserve,
            opts.preserve_prompts,
            kind=opts.kind,
            mask=opts.mask,
            gate=opts.gate,
            seed=self.search_config.seed,
            held_out_pairs=self.split.held_out_indices if len(self.split.held_out) else None,
        )
        self.search_result = search_result
        self.result: RunResult | None = None

    # ------------------------------------------------------------------------------------ stages
    def run(self, should_stop: Callable[[], bool] | None = None) -> Iterator[Stage]:
        start = time.perf_counter()
        fit = self.split.fit
        yield Stage(
            "capture",
            0.0,
            f"capturing {len(fit)} pairs on {self.encoder.model_id} ({len(self.split.held_out)} held out)",
        )
        pos = self.encoder.capture(fit.positives, self.capture_config)
        neg = self.encoder.capture(fit.negatives, self.capture_config)
        yield Stage(
            "capture", 0.1, f"captured {pos.n_tokens + neg.n_tokens:,} tokens × {pos.n_layers} layers"
        )
        protected = None
        if self.preserve:  # look-alikes to keep: extra negatives in the search, protected in the mask
            yield Stage("capture", 0.1, f"capturing look-alikes to keep: {', '.join(self.preserve.names)}")
            protected = self.encoder.capture(self.preserve.protect_prompts, self.capture_config)

        found: dict = {}
        yield from self._search(pos, neg, protected, should_stop, found)
        search, brute = found["search"], found["brute"]
        eraser = self._build(search, brute, pos, neg, protected)
        if found["verdict"] is not None:
            eraser.meta["block_verdict"] = found["verdict"].to_json()

        report = None
        if self.options.calibrate:
            yield Stage("calibrate", 0.8, self._calibration_message())
            report = self._calibrate(eraser)
        held_out = None
        if len(self.split.held_out):
            yield Stage("held-out", 0.92, f"measuring on {len(self.split.held_out)} held-out pairs")
            held_out = self._held_out(eraser)
        eraser.meta["splits"] = splits_record(
            self.split,
            self.implicit,
            self.unrelated,
            self.preserve.to_json() if self.preserve and eraser.kind == "sae" else None,
        )
        self.result = RunResult(
            eraser,
            search,
            report,
            pos,
            neg,
            brute,
            found["history"],
            found["cancelled"],
            time.perf_counter() - start,
            self.preserve if eraser.kind == "sae" else None,
            self.split,
            held_out,
        )
        yield Stage("done", 1.0, self._done_message(eraser, search))

    def _search(self, pos, neg, protected, should_stop, found: dict) -> Iterator[Stage]:
        """The layer search (or brute force); fills ``found`` with the result, history and state."""
        brute = None
        if self.search_result is not None:
            done = self.search_result
            found.update(
                search=done, brute=None, history=done.history, cancelled=done.cancelled, verdict=None
            )
            return
        if self.options.method == "brute_force":
            gen = brute_force_search(pos, neg, self.search_config, should_stop, protected=protected)
            n = len(self.search_config.layers or pos.block_indices)
            while True:
                try:
                    i, event = next(gen)
                except StopIteration as stop:
                    brute = stop.value
                    break
                frac = (i + event.step / event.total) / n
                yield Stage(
                    "search", 0.1 + 0.7 * frac, f"brute force: block {i + 1}/{n}, step {event.step}", event
                )
            search = brute.results[brute.candidates.index(brute.layer)] if brute.results else None
            if search is None:
                raise ValueError("the brute-force search was stopped before any block finished")
            history, cancelled = [e for r in brute.results for e in r.history], len(brute.results) < n
        else:
            runner = LayerSearch(pos, neg, self.search_config, protected=protected)
            for event in runner.run(should_stop):
                yield Stage("search", 0.1 + 0.7 * event.step / event.total, _search_message(event), event)
            search, history, cancelled = runner.result, runner.result.history, runner.result.cancelled
        verdict = None
        extra = self.search_config.verdict_seeds
        if extra and not cancelled and self.options.layer is None and brute is None:
            results = [search]
            for i in range(1, extra + 1):
                config = replace(self.search_config, seed=self.search_config.seed + i, verdict_seeds=0)
                yield Stage("verdict", 0.8, f"checking the block with seed {config.seed} ({i}/{extra})")
                other = LayerSearch(pos, neg, config, protected=protected)
                for _ in other.run(should_stop):
                    pass
                if other.result.cancelled:
                    break
                results.append(other.result)
            verdict = block_verdict(results) if len(results) > 1 else None
        found.update(search=search, brute=brute, history=history, cancelled=cancelled, verdict=verdict)

    def _build(self, search, brute, pos, neg, protected) -> Eraser:
        """The eraser of the chosen kind at the chosen (or forced) block, with its provenance."""
        opts = self.options
        self._sweep_probe = None
        layer = opts.layer if opts.layer is not None else (brute.layer if brute else search.layer)
        if opts.kind in ("steering", "leace"):
            make = steering_eraser if opts.kind == "steering" else leace_eraser
            eraser = make(pos, neg, layer, self.concept.name, self.encoder.model_id, opts.gamma)
            eraser.meta.update(
                layer_probs=search.probs,
                candidates=search.candidates,
                search=search.config.to_json(),
                layer_uncertainty=search.uncertainty.to_json(),
            )
        else:
            unrelated_cal = self._prompt_negatives() if opts.prompt_gate or opts.probe_gate else None
            probe_sets = sweep_sets = probe_layer = None
            if opts.probe_gate and layer in search.candidates:  # (build_eraser refuses another layer)
                probe_sets, sweep_sets = self._probe_sets(search, pos, neg, unrelated_cal, protected, layer)
                probe_layer, self._probe_layers = self._probe_layer(
                    pos, neg, layer, probe_sets, sweep_sets, unrelated_cal, protected
                )
            eraser = build_eraser(
                search,
                pos,
                neg,
                self.concept.name,
                self.encoder.model_id,
                opts.mask,
                opts.gamma,
                layer,
                protected=protected,
                protect_weight=opts.protect_weight,
                gate=opts.gate,  # ClearRun refused a gate without look-alikes
                context_gate=opts.context_gate,
                null_space=opts.null_space,
                gate_negatives=self._gate_negatives(neg) if opts.context_gate else None,
                gate_ramp=opts.gate_ramp if opts.context_gate else 1.0,
                gate_scope=opts.gate_scope,
                prompt_negatives=unrelated_cal if opts.prompt_gate else None,
                probe_sets=probe_sets,
                probe_layer=probe_layer,
            )
            if eraser.probe is not None:
                eraser.meta["probe_gate"]["reference_dropped"] = self._reference_dropped
                eraser.meta["probe_gate"]["layers"] = self._probe_layers
                score = float(_probe_logits(eraser.probe, probe_sets[3], eraser)[0])
                if score >= 0:  # it would edit every video (the unconditional branch): off, said so
                    off = f"probe gate off: it calls the empty prompt the concept (logit {score:+.2f})"
                    eraser.probe = eraser.probe_layer = None
                    eraser.meta.pop("probe_gate")
                    eraser.meta["probe_gate_skipped"] = off
                    warnings.warn(f"concept {self.concept.name!r}: {off}", ClearWarning, stacklevel=2)
            if eraser.probe is not None and self._reference_dropped:
                warnings.warn(
                    f"concept {self.concept.name!r}: the probe gate does not take the built-in packs "
                    f"{', '.join(self._reference_dropped)} as concept-free (their prompts read as this "
                    "concept)",
                    ClearWarning,
                    stacklevel=2,
                )
            if eraser.probe is not None and opts.calibrate:
                # the γ sweep's probe: fitted on none of the calibration's pairs, paraphrases, unrelated
                # prompts or look-alikes, so the sweep meets them as it will meet unseen ones; with
                # too few other fit pairs, on the calibration pairs too (said in eraser.json)
                cal = set(self._calibration_indices())
                rest = [i for i in range(pos.n_prompts) if i not in cal]
                own = len(rest) >= SWEEP_PROBE_MIN_PAIRS
                if not own:
                    rest = list(range(pos.n_prompts))
                self._sweep_probe_pairs = "other fit pairs" if own else "every fit pair (too few others)"
                self._sweep_probe = fitted_probe(
                    [pos.select(rest)],
                    [neg.select(rest), *sweep_sets[1]],
                    eraser.probe_layer or layer,
                    layer,
                    eraser.scale,
                    *sweep_sets[2:],
                )
                if own:
                    self._negatives_caught(eraser, neg.select(sorted(cal)))
            if self.preserve:
                eraser.meta["preserve"] = {
                    **self.preserve.to_json(),
                    "seed": self.search_config.seed,
                    "lookalike_min": opts.lookalike_min,
                    "in_search": True,  # the protect half were extra negatives of the search too
                    "gate": opts.gate,
                }
        eraser.meta["model_revision"] = self.encoder.revision
        eraser.meta.update(self.encoder.provenance())  # component, encoding profile, weights fingerprint
        if brute is not None:
            eraser.meta["brute_force_scores"] = dict(zip(map(str, brute.candidates), brute.scores))
        return eraser

    def _calibration_indices(self) -> list[int]:
        """Positions (in the fit pairs) of the pairs the γ calibration uses: evenly spaced."""
        n = len(self.split.fit)
        k = min(self.options.calibration_pairs, n)
        return list(range(0, n, max(1, n // k)))[:k]

    def _calibration_pairs(self) -> list:
        return [self.split.fit.pairs[i] for i in self._calibration_indices()]

    def _frame_indices(self) -> list[int]:
        """Positions (in the fit pairs) of the calibration pairs rendered when γ is calibrated on
        frames: at most :data:`FRAME_CALIBRATION_PAIRS` of the calibration pairs, evenly spaced."""
        cal = self._calibration_indices()
        k = min(len(cal), FRAME_CALIBRATION_PAIRS)
        return cal[:: max(1, len(cal) // k)][:k]

    def _gate_negatives(self, neg: Activations) -> Activations:
        """The fit negatives the context gate is fitted on: those the calibration does not render,
        so a γ chosen on the calibration pairs' frames sees the gate as unseen prompts would."""
        if not self.options.calibrate or self.options.calibrate_on != "frames":
            return neg
        used = set(self._frame_indices())
        rest = [i for i in range(neg.n_prompts) if i not in used]
        return neg.select(rest) if len(rest) >= 4 else neg

    def _prompt_negatives(self) -> Activations | None:
        """The calibration half of the unrelated prompts, captured for the prompt gate (None if empty)."""
        prompts = alternate(self.unrelated)[0]
        return self.encoder.capture(prompts, self.capture_config) if prompts else None

    def _probe_layer(self, pos, neg, layer, probe_sets, sweep_sets, unrelated_cal, protected):
        """(the layer the probe gate reads, a record of each layer's scores). Each layer from the
        eraser's up is scored by a probe fitted as the γ sweep's is (none of the calibration's
        paraphrases, unrelated prompts or look-alikes): the share of the calibration paraphrases it
        catches, less the larger share of the calibration's unrelated prompts or look-alikes it
        catches. The best wins, ties to the eraser's own layer (no first pass); without paraphrases,
        the eraser's own layer. A deeper layer is read from an unedited first pass (docs/precision.md)."""

        if not probe_sets[0]:  # no paraphrases to score the layers on
            return None, {}
        paraphrases = probe_sets[0][0]
        looks = self._protected_part(protected, calibration=True)
        scores, record = {}, {}
        for at in range(layer, pos.n_layers):
            scale = layer_scales([pos, neg], [at])[0]
            probe = probe_gate([pos], [neg, *sweep_sets[1]], at, scale, *sweep_sets[2:])

            def share(acts, at=at, scale=scale, probe=probe):
                if acts is None:
                    return 0.0
                return float((probe_logits(probe, acts, at, scale) > 0).mean())

            row = {"paraphrases": share(paraphrases), "unrelated": share(unrelated_cal)}
            row["lookalikes"] = share(looks)
            scores[at] = row["paraphrases"] - max(row["unrelated"], row["lookalikes"])
            record[str(at)] = row
        best = max(scores.values())
        chosen = min(at for at, v in scores.items() if v >= best - 1e-9)
        return (None if chosen == layer else chosen), record

    def _negatives_caught(self, eraser: Eraser, negatives: Activations) -> None:
        """Record (and warn above :data:`PROBE_NEGATIVES_WARN`) the share of the calibration pairs'
        negatives that the sweep's probe, which never saw them, calls the concept: each is erased in
        full, so its scene changes (nudity's probe calls clothed people nudity: 0.625 of its held-out
        negatives' frames unchanged, docs/precision.md)."""
        share = float((_probe_logits(self._sweep_probe, negatives, eraser) > 0).mean())
        eraser.meta["probe_gate"]["calibration_negatives_caught"] = share
        if share >= PROBE_NEGATIVES_WARN:
            warnings.warn(
                f"concept {self.concept.name!r}: the probe gate calls {share:.0%} of the calibration pairs' "
                "negatives the concept; the scenes of prompts like them will change (review them, or "
                "search without --probe-gate)",
                ClearWarning,
                stacklevel=2,
            )

    def _probe_sets(self, search, pos, neg, unrelated_cal, protected, layer) -> tuple[tuple, tuple]:
        """(concept, concept-free, kept) captures the probe gate learns from beside the fit pairs, for
        the artifact's probe and for the γ sweep's (clear_core/build.py:probe_gate).

        The artifact's: the calibration half of the implicit prompts; the calibration half of the
        unrelated prompts and prompts about the other built-in concepts; every protected look-alike
        prompt, weighted as much as all the other concept-free prompts together. The sweep's: none of
        the calibration's paraphrases, unrelated prompts or look-alikes, so the floors it reads are out
        of sample: the other concepts' prompts and the protected look-alike prompts past the first
        :data:`CALIBRATION_LOOKALIKES` of each."""
        capture = lambda prompts: self.encoder.capture(prompts, self.capture_config)  # noqa: E731
        implicit_cal = alternate(self.implicit)[0]
        concept = [capture(implicit_cal)] if implicit_cal else []
        reference = self._reference(
            pos, neg, unrelated_cal, layer, search.scales[search.candidates.index(layer)]
        )
        free = [a for a in (unrelated_cal, reference) if a is not None]
        kept_sweep = self._protected_part(protected, calibration=False)
        null = self.encoder.capture([""], self.capture_config, empty_ok=True)  # what CFG encodes
        free_sweep = [reference] if reference is not None else []
        return (concept, free, protected, null), ([], free_sweep, kept_sweep, null)

    def _protected_part(self, protected: Activations | None, calibration: bool) -> Activations | None:
        """The captured protect-half look-alike prompts the γ calibration measures (the first
        :data:`CALIBRATION_LOOKALIKES` of each look-alike, ``calibration``) or the rest (None: none)."""
        if protected is None:
            return None
        rank = [j for n in self.preserve.names for j in range(len(self.preserve.protect[n]))]
        rows = [i for i, j in enumerate(rank) if (j < CALIBRATION_LOOKALIKES) == calibration]
        return protected.select(rows) if rows else None

    def _reference(self, pos, neg, unrelated_cal, layer: int, scale: float) -> Activations | None:
        """The other built-in concepts' prompts (clear_core/splits.py:reference_packs), captured.

        A concept that is no built-in pack may be one by another name ("nude"): each pack is scored by
        a probe fitted on the fit pairs, the unrelated prompts and every *other* pack as concept-free,
        and a pack whose median score reaches the first quartile of the fit positives' is dropped
        (clear_core/build.py:same_concept_packs). ``self._reference_dropped`` lists the dropped packs."""
        import numpy as np

        packs = reference_packs(self.concept.name)
        prompts = [p for group in packs.values() for p in group]
        self._reference_dropped = []
        if not prompts:
            return None
        reference = self.encoder.capture(prompts, self.capture_config)
        if len(packs) < len(builtin_packs()):  # a built-in pack: its own left out by name
            return reference
        free = [neg] + ([unrelated_cal] if unrelated_cal is not None else [])
        sizes = {slug: len(group) for slug, group in packs.items()}
        self._reference_dropped = same_concept_packs(pos, free, reference, sizes, layer, scale)
        starts = dict(zip(sizes, np.cumsum([0, *sizes.values()])))
        keep = [
            i
            for slug, n in sizes.items()
            if slug not in self._reference_dropped
            for i in range(starts[slug], starts[slug] + n)
        ]
        return reference.select(keep) if keep else None

    def _calibration_message(self) -> str:
        n_unrelated = len(alternate(self.unrelated)[0])
        return (
            f"calibrating γ on {len(self._calibration_pairs())} fit pairs and {n_unrelated} unrelated prompts"
        )

    def _calibrate(self, eraser: Eraser) -> Report:
        """Sweep γ on the calibration prompts and set the eraser's default γ."""
        opts = self.options
        pairs = self._calibration_pairs()
        implicit_cal = alternate(self.implicit)[0] if opts.calibrate_on_implicit else []
        unrelated_cal = alternate(self.unrelated)[0]
        # γ is the strength of the edit where the prompt gate lets it through: swept without that gate,
        # whose margin was fitted on these same unrelated prompts (they would read 1.0 at every γ)
        swept = eraser.without_prompt_gate()
        if eraser.probe is not None:  # the gates' own sweep; the probe gets its own below
            swept = replace(swept, probe=None, probe_layer=None, meta=dict(swept.meta))
        baseline = Baseline.build(
            self.encoder,
            [p.positive for p in pairs],
            [p.negative for p in pairs],
            implicit_cal or None,
            unrelated_cal,
            concept_probe=False,
            lookalikes=self._calibration_lookalikes(),
        )

        def sweep(eraser: Eraser) -> Report:
            report = evaluate(self.encoder, eraser, gammas=opts.gammas, baseline=baseline)
            for row in report.rows:  # calibration prompts, not held out: keep "leakage_implicit" honest
                row.leakage_implicit_calibration, row.leakage_implicit = row.leakage_implicit, None
            return report

        report = sweep(swept)
        eraser.gamma = calibrate_gamma(report, opts.preserve_min, opts.lookalike_min)
        probe_sweep = None
        if eraser.probe is not None:
            probe_sweep = self._calibrate_probe(eraser, swept, report, sweep, baseline)
        report.chosen_gamma = eraser.gamma
        frames = None
        if opts.calibrate_on == "frames":
            frames = self._calibrate_on_frames(swept, implicit_cal)
            eraser.gamma = report.chosen_gamma = frames.chosen_gamma
        eraser.meta["calibration"] = {
            "preserve_min": opts.preserve_min,
            "n_pairs": len(pairs),
            "n_implicit": len(implicit_cal),
            "n_unrelated": len(unrelated_cal),
            "n_lookalike": report.n_lookalike,
            "lookalike_min": opts.lookalike_min if report.n_lookalike else None,
            "rows": [asdict(r) for r in report.rows],
            "on": opts.calibrate_on,
            "prompt_gate": "off while sweeping γ" if eraser.prompt_margin is not None else None,
            "probe_gate": probe_sweep,
        }
        if frames is not None:
            eraser.meta["calibration"]["frames"] = frames.to_json()
        return report

    def _calibrate_probe(self, eraser: Eraser, swept: Eraser, gated: Report, sweep, baseline) -> dict:
        """The probe gate's strength s: the prompts it catches are erased at s·γ (at least their gates'
        edit), every other prompt at the gates' γ (``eraser.gamma``, already calibrated on ``gated``).

        A second sweep edits only the prompts the sweep's probe catches (``Eraser.probe_only``); r is
        its calibrated γ over the gates' γ, the largest of those with the lowest calibration leakage
        (on the 21 built-in concepts, held-out chain-saw paraphrases needed γ 4 where the calibration
        ones reached 0 leakage at 2), or 1 where that leakage is no lower than at γ 0. That probe never
        saw the calibration's pairs, paraphrases, unrelated prompts or look-alikes (``_build``,
        ``_probe_sets``), so what the sweep reads is out of sample. s is the first of max(r, 1), 1 and
        r that, measured with the gates at their γ, takes no calibration floor (:func:`_costs`: the
        unrelated prompts', the look-alikes' and, for the probe alone, the calibration pairs'
        negatives') lower than the gates alone do and below it: caught prompts are erased in full at
        no less than the gates' γ where the floors allow. Where none does, the probe is switched off,
        and a warning and ``eraser.json`` say which floor and by how much."""
        import torch

        from clear_core.evaluation import calibration_leakage

        opts = self.options
        probe = self._sweep_probe
        record = {
            "probe": "fitted on none of the calibration's paraphrases, unrelated prompts or look-alikes; "
            f"of the pairs, on the {self._sweep_probe_pairs}",
            "gamma_gates": eraser.gamma,
            "reference_dropped": self._reference_dropped,
            "tried": [],
        }
        caught = sweep(
            replace(swept, probe=probe, probe_layer=eraser.probe_layer, meta=dict(swept.meta)).probe_only()
        )
        gamma_probe = calibrate_gamma(caught, opts.preserve_min, opts.lookalike_min, strongest=True)
        unerased = [r for r in caught.rows if r.gamma == 0]
        lowered = not unerased or calibration_leakage(caught.row(gamma_probe)) < calibration_leakage(
            unerased[0]
        )
        ratio = gamma_probe / eraser.gamma if lowered else 1.0
        record.update(gamma_probe=gamma_probe, rows_probe=[asdict(r) for r in caught.rows])
        gates_row = gated.row(eraser.gamma)
        for strength in dict.fromkeys((max(ratio, 1.0), 1.0, ratio)):  # calibrate_gamma gives γ > 0
            with_probe = replace(
                swept,
                probe={**probe, "strength": torch.tensor([strength])},
                probe_layer=eraser.probe_layer,
                meta=dict(swept.meta),
            )
            row = evaluate(self.encoder, with_probe, gammas=[eraser.gamma], baseline=baseline)
            row = row.row(eraser.gamma)  # calibration prompts: their paraphrase leakage is not held out
            row.leakage_implicit_calibration, row.leakage_implicit = row.leakage_implicit, None
            costs = _costs(row, gates_row, opts)
            record["tried"].append({"strength": strength, "row": asdict(row), "costs": costs})
            if not costs:
                record["strength"] = strength
                eraser.probe = {**eraser.probe, "strength": torch.tensor([strength])}
                return record
        # every strength costs what the floors protect: off, and said so
        eraser.probe = eraser.probe_layer = None
        eraser.meta.pop("probe_gate", None)
        off = f"probe gate off: with it at γ {eraser.gamma:g} (s {strength:.3g}), {costs}"
        record["off"] = eraser.meta["probe_gate_skipped"] = off
        warnings.warn(f"concept {self.concept.name!r}: {off}", ClearWarning, stacklevel=3)
        return record

    def _calibrate_on_frames(self, eraser: Eraser, implicit_cal: list[str]):
        """γ from the testbed's frames of the calibration prompts (clear_core/testbed/calibrate.py):
        the calibration pairs' positives and implicit half against their negatives and the protected
        look-alike prompts."""
        from clear_core.testbed.calibrate import calibrate_on_frames

        chosen = [self.split.fit.pairs[i] for i in self._frame_indices()]
        k = len(chosen)
        neutral = [p.negative for p in chosen] + (self._calibration_lookalikes() or [])[:k]
        return calibrate_on_frames(
            eraser,
            [p.positive for p in chosen],
            neutral,
            self.options.gammas,
            implicit=implicit_cal,
            preserve_min=self.options.preserve_min,
        )

    def _held_out(self, eraser: Eraser) -> Report:
        """The eraser at γ 0 and at its default γ on everything the run held out."""
        held = self.split.held_out
        lookalikes = self.preserve.held_out_prompts if self.preserve and eraser.kind == "sae" else []
        report = evaluate(
            self.encoder,
            eraser,
            held.positives,
            held.negatives,
            implicit=alternate(self.implicit)[1] or None,
            unrelated=alternate(self.unrelated)[1] or None,
            gammas=sorted({0.0, eraser.gamma}),
            lookalikes=lookalikes if len(lookalikes) >= 4 else None,
        )
        row, base = report.row(eraser.gamma), report.row(0.0)
        eraser.meta["held_out"] = {
            "gamma": eraser.gamma,
            "n_pairs": report.n_positive,
            "n_implicit": report.n_implicit,
            "n_unrelated": report.n_unrelated,
            "n_lookalike": report.n_lookalike,
            "unerased": asdict(base),
            "erased": asdict(row),
        }
        return report

    def _done_message(self, eraser: Eraser, search: SearchResult) -> str:
        u = search.uncertainty
        verdict = eraser.meta.get("block_verdict")
        if self.options.layer is not None:
            note = ""
        elif verdict and not verdict["stable"]:
            note = f"; {verdict['verdict']}: compare blocks before trusting it"
        elif not u.decisive:
            note = f"; undecided search (p = {u.top_prob:.2f}, margin {u.margin:.2f}): compare blocks before trusting it"
        else:
            note = f"; {verdict['verdict']}" if verdict else ""
        stop = f"; search {search.stop_reason}" if search.stop_reason else ""
        return (
            f"erase at {eraser.layer_name} (layer {eraser.layer}), default γ = {eraser.gamma:g}{note}{stop}"
        )

    def _calibration_lookalikes(self) -> list[str] | None:
        """Up to :data:`CALIBRATION_LOOKALIKES` protect-half prompts per look-alike (the held-out half
        is never used), or None when nothing is protected."""
        if not self.preserve or self.options.kind != "sae":
            return None
        return [p for n in self.preserve.names for p in self.preserve.protect[n][:CALIBRATION_LOOKALIKES]]


def _probe_logits(probe: dict, acts: Activations, eraser: Eraser):
    """(prompts,) logits of ``probe`` (weights for states divided by the eraser's scale, as
    ``Eraser.probe_scores`` reads them) on ``acts`` at the layer the eraser's probe gate reads."""
    return probe_logits(probe, acts, eraser.probe_layer or eraser.layer, eraser.scale)


def _costs(row, gates: object, opts: EraserOptions) -> str:
    """What ``row`` (the probe gate on) costs below the calibration floors that the ``gates`` row (the
    same γ, the probe off) does not: "" when nothing, else e.g. "the unrelated preservation 0.931 is
    below its floor 0.95 (0.962 without the probe)". A floor the gates already break counts only where
    the probe takes it lower still."""
    costs = []
    for name, floor, label in (
        ("preservation_unrelated", opts.preserve_min, "unrelated"),
        ("preservation_lookalike", opts.lookalike_min, "look-alike"),
        # the probe's own error: calling the concept's near-negatives the concept (nudity's clothed
        # people), which the gates do not make; a floor only for the probe
        ("preservation_negative", opts.preserve_min, "pair-negative"),
    ):
        value, without = getattr(row, name), getattr(gates, name)
        if value is None or value >= floor or (without is not None and value >= without - 1e-6):
            continue
        costs.append(
            f"the calibration's {label} preservation {value:.3f} is below its floor {floor:g}"
            + (f" ({without:.3f} without the probe)" if without is not None else "")
        )
    return "; ".join(costs)


FRAME_CALIBRATION_PAIRS = 24
"""Calibration pairs rendered per γ when γ is calibrated on frames (each one 2 seeds × 2 prompts)."""

SWEEP_PROBE_MIN_PAIRS = 16
"""Fit pairs the γ sweep's probe needs beside the calibration pairs; with fewer it takes them all."""

PROBE_NEGATIVES_WARN = 0.25
"""Share of the calibration pairs' negatives the probe gate may call the concept before a warning."""

CALIBRATION_LOOKALIKES = 16
"""Look-alike prompts per look-alike in the γ calibration (each one costs an encode per γ)."""


def _search_message(event: SearchEvent) -> str:
    return f"step {event.step}/{event.total}  τ={event.tau:.2f}  L_SAE={event.loss_sae:.4f}  L_con={event.loss_con:.3f}"


def save_run(result: RunResult, folder: str | Path) -> Path:
    """Write ``eraser.safetensors``, ``eraser.json`` and ``history.jsonl`` into ``folder``."""
    folder = Path(folder)
    result.eraser.meta["elapsed_s"] = round(result.elapsed, 2)
    result.eraser.save(folder)
    # a diverged step may hold NaN losses: written as null, never as the invalid JSON literal NaN
    lines = [json.dumps(_nan_to_none(event.to_json()), allow_nan=False) for event in result.history]
    with atomic_path(folder / "history.jsonl") as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder


def _nan_to_none(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj
