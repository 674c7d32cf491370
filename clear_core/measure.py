"""One measurement of an eraser on its concept: the same sample, function and numbers in the app's
Erase tab and in ``python -m clear_core evaluate``.

Leakage and preservation depend on the prompts they are measured on, and most of all on the pairs the
leakage probe is trained on (docs/measurement.md has the measured example: the app once trained its
probe on 32 evenly spaced pairs and the command line on all 240, and the two reported paraphrase
leakage 0.46 and 0.21 for the same eraser at the same γ). So the sample is chosen here, once, and it
is the part of every prompt set that decided nothing about the eraser (clear_core/splits.py):

* **pairs**: the pairs the search held out, when ``eraser.json`` records a split and these are the
  pairs it was made on (the held-out digest matches); otherwise every pair given. The leakage probe
  is trained on their unmodified outputs, and positive leakage and negative preservation are measured
  on them;
* **paraphrases**: when the eraser's γ was calibrated on the even positions of the paraphrases, only
  the odd, held-out ones; otherwise all of them;
* **unrelated prompts**: the held-out (odd) half when the calibration saw the even half of these very
  prompts (digest recorded), else all of them;
* **look-alikes**: the held-out prompts of the look-alikes the eraser protected (else the pack's
  built-in list), written from the pairs with the search's seed: from the held-out pairs when the
  pairs are split, so none was seen by the eraser.

For an eraser searched with splits, these are the prompts of ``eraser.json``'s ``held_out`` record,
so the app, ``evaluate`` and that record give the same numbers at the eraser's γ.

:func:`evaluation_sample` picks it, :func:`measure` runs :func:`clear_core.evaluation.evaluate` on it,
and :meth:`Sample.describe` is the sentence shown next to every number.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from clear_core.concepts import ConceptSet, unrelated_prompts

if TYPE_CHECKING:  # torch: imported by the functions that encode, so choosing a sample stays light
    from clear_core.encoders import TextEncoder
    from clear_core.erasure import Eraser
    from clear_core.evaluation import Baseline, GammaRow, Report

__all__ = ["Measurement", "Measurer", "Sample", "build_baseline", "evaluation_sample", "measure"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Sample:
    """The prompts an eraser is measured on, and how each set was chosen (see the module docstring)."""

    concept: str
    """The concept's name (the pairs' name)."""
    positives: tuple[str, ...]
    negatives: tuple[str, ...]
    implicit: tuple[str, ...]
    """Paraphrases that evoke the concept without naming it (empty: none measured)."""
    implicit_note: str
    """Which paraphrases these are ("held-out half (odd positions) of 24", "all 24", "none")."""
    unrelated: tuple[str, ...]
    lookalike_names: tuple[str, ...]
    lookalikes: tuple[str, ...]
    """Held-out prompts about the look-alikes (empty: none measured)."""
    pairs_note: str = ""
    """Which pairs these are ("held out by the search: 60 of 240", "all 240")."""
    unrelated_note: str = ""
    """Which unrelated prompts these are ("held-out half of 124", "all 124")."""

    def key(self) -> str:
        """A digest of every prompt (equal keys, equal samples): what caches of originals key on."""
        payload = [self.positives, self.negatives, self.implicit, self.unrelated, self.lookalikes]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:20]

    def counts(self) -> dict[str, int]:
        return {
            "pairs": len(self.positives),
            "implicit": len(self.implicit),
            "unrelated": len(self.unrelated),
            "lookalike": len(self.lookalikes),
        }

    def describe(self) -> str:
        """One sentence naming the sample (shown next to the numbers, printed by ``evaluate``)."""
        pairs = f"; {self.pairs_note}" if self.pairs_note else ""
        unrelated = f" ({self.unrelated_note})" if self.unrelated_note else ""
        parts = [
            f"{len(self.positives)} pairs of {self.concept} (the leakage probe is trained on their "
            f"unerased outputs{pairs})",
            f"{len(self.implicit)} paraphrases ({self.implicit_note})" if self.implicit else "no paraphrases",
            f"{len(self.unrelated)} unrelated prompts{unrelated}",
        ]
        if self.lookalikes:
            parts.append(
                f"{len(self.lookalikes)} held-out look-alike prompts ({', '.join(self.lookalike_names)})"
            )
        return "; ".join(parts)

    def to_json(self) -> dict:
        return {
            "concept": self.concept,
            **{f"n_{k}": v for k, v in self.counts().items()},
            "implicit": self.implicit_note,
            "pairs": self.pairs_note,
            "unrelated": self.unrelated_note,
            "lookalikes": list(self.lookalike_names),
            "description": self.describe(),
        }


def _calibrated_on_implicit(eraser: Eraser) -> bool:
    return bool((eraser.meta.get("calibration") or {}).get("n_implicit"))


def _held_out_pairs(concept: ConceptSet, eraser: Eraser):
    """The :class:`clear_core.splits.PairSplit` of ``concept`` when the eraser was searched on these
    pairs with a split (its recorded held-out digest matches), else None."""
    from clear_core.splits import HOLDOUT_SHARE, prompts_digest, split_pairs

    record = (eraser.meta.get("splits") or {}).get("pairs") or {}
    if not record.get("n_held_out"):
        return None
    split = split_pairs(concept, record.get("share", HOLDOUT_SHARE))
    if not len(split.held_out) or prompts_digest(split.held_out.positives) != record.get("held_out_digest"):
        return None
    return split


def _held_out_unrelated(unrelated: list[str], eraser: Eraser) -> tuple[list[str], str]:
    """(prompts, note): the odd half when the calibration saw the even half of these very prompts."""
    from clear_core.splits import alternate, prompts_digest

    record = (eraser.meta.get("splits") or {}).get("unrelated") or {}
    held = alternate(unrelated)[1]
    if held and record.get("held_out_digest") == prompts_digest(held):
        return held, f"held-out half (odd positions) of {len(unrelated)}; the even half calibrated γ"
    return unrelated, f"all {len(unrelated)}"


def _lookalikes(
    eraser: Eraser, concept: ConceptSet, held_out_pairs: Sequence[int] | None = None
) -> tuple[list[str], list[str]]:
    """(names, held-out prompts): the look-alikes the eraser protected (its eraser.json), else the
    pack's built-in list, so an unprotected eraser is measured on them too; ([], []) when none can be
    written from these pairs."""
    from clear_core.lookalikes import default_preserve, preserve_set

    record = eraser.meta.get("preserve") or {}
    names = [n for n in record.get("lookalikes", []) if n != "file"] or default_preserve(concept.name)
    if not names:
        return [], []
    seed = record.get("seed", (eraser.meta.get("search") or {}).get("seed", 0))
    try:
        held_out = preserve_set(
            concept, names, seed=int(seed), held_out_pairs=held_out_pairs
        ).held_out_prompts
    except ValueError:  # look-alike prompts cannot be written from these pairs: measure without them
        return [], []
    return (names, held_out) if len(held_out) >= 4 else ([], [])


def evaluation_sample(
    concept: ConceptSet,
    eraser: Eraser,
    implicit: Sequence[str] | None = None,
    unrelated: Sequence[str] | None = None,
) -> Sample:
    """The sample :func:`measure` uses for ``eraser`` on ``concept`` (see the module docstring).

    ``implicit``: the concept's paraphrases (the caller resolves a pack's own or a user's file; None or
    empty: none). ``unrelated``: None reads ``assets/prompts/unrelated.txt``.
    """
    implicit = list(implicit or [])
    if implicit and _calibrated_on_implicit(eraser):
        held = implicit[1::2]  # clear_core.evaluation.split_implicit: the odd positions are held out
        note = f"held-out half (odd positions) of {len(implicit)}; the even half calibrated γ"
        implicit = held
    else:
        note = f"all {len(implicit)}; none was used to calibrate γ"
    split = _held_out_pairs(concept, eraser)
    pairs = split.held_out if split is not None else concept
    pairs_note = (
        f"held out by the search: {len(split.held_out)} of {len(concept)}, it fit the other {len(split.fit)}"
        if split is not None
        else f"all {len(concept)}"
    )
    unrelated, unrelated_note = _held_out_unrelated(
        list(unrelated_prompts() if unrelated is None else unrelated), eraser
    )
    names, lookalikes = _lookalikes(eraser, concept, split.held_out_indices if split is not None else None)
    return Sample(
        concept=concept.name,
        positives=tuple(pairs.positives),
        negatives=tuple(pairs.negatives),
        implicit=tuple(implicit),
        implicit_note=note if implicit else "none",
        unrelated=tuple(unrelated),
        lookalike_names=tuple(names),
        lookalikes=tuple(lookalikes),
        pairs_note=pairs_note,
        unrelated_note=unrelated_note,
    )


def build_baseline(encoder: TextEncoder, sample: Sample) -> Baseline:
    """The unerased outputs of the sample and the leakage probe fitted on them (reusable for any γ)."""
    from clear_core.evaluation import Baseline

    return Baseline.build(
        encoder,
        sample.positives,
        sample.negatives,
        list(sample.implicit) or None,
        list(sample.unrelated) or None,
        concept_probe=False,
        lookalikes=list(sample.lookalikes) or None,
    )


@dataclass
class Measurement:
    """Leakage and preservation of one eraser at a few γ on one :class:`Sample`."""

    sample: Sample
    report: Report

    def row(self, gamma: float) -> GammaRow:
        return self.report.row(gamma)

    @property
    def unerased(self) -> GammaRow:
        return self.report.row(0.0)

    def summary(self, gamma: float) -> dict:
        """The numbers at ``gamma`` next to the unerased ones, and the sample they were measured on."""
        row, base = self.row(gamma), self.unerased
        return {
            "gamma": gamma,
            "leakage": {
                "positive": row.leakage_positive,
                "implicit": row.leakage_implicit,
                "unerased_positive": base.leakage_positive,
                "unerased_implicit": base.leakage_implicit,
            },
            "preservation": {
                "negative": row.preservation_negative,
                "unrelated": row.preservation_unrelated,
                "min_unrelated": row.min_preservation_unrelated,
                "lookalike": row.preservation_lookalike,
                "lookalike_told_apart": row.lookalike_told_apart,
                "unerased_lookalike_told_apart": base.lookalike_told_apart,
            },
            "sample": self.sample.to_json(),
        }

    def rows_json(self) -> list[dict]:
        return [asdict(r) for r in self.report.rows]


def measure(
    encoder: TextEncoder,
    eraser: Eraser,
    sample: Sample,
    gammas: Sequence[float],
    baseline: Baseline | None = None,
    progress: Progress | None = None,
) -> Measurement:
    """Leakage and preservation of ``eraser`` at each γ of ``gammas`` (0 is added: the unerased row)
    on ``sample``. Pass the :func:`build_baseline` of this sample to skip re-encoding the originals."""
    from clear_core.evaluation import evaluate

    gammas = sorted({0.0, *(float(g) for g in gammas)})
    report = evaluate(
        encoder,
        eraser,
        gammas=gammas,
        baseline=baseline if baseline is not None else build_baseline(encoder, sample),
        progress=progress,
    )
    return Measurement(sample, report)


class Measurer:
    """:func:`measure` for one eraser and sample at γ after γ, as the app's γ slider asks: the unerased
    outputs and the leakage probe are built once, and every γ measured is kept, so that a γ seen
    before costs nothing and a new one one erased pass (clear_core.evaluation.evaluate runs the
    blocks below the eraser once per call)."""

    def __init__(self, encoder: TextEncoder, eraser: Eraser, sample: Sample) -> None:
        self.encoder, self.eraser, self.sample = encoder, eraser, sample
        self.baseline = build_baseline(encoder, sample)
        self._rows: dict[float, GammaRow] = {}
        self._report: Report | None = None

    def key(self) -> tuple:
        """What this measurer is valid for: the encoder, the eraser and the sample."""
        return (self.encoder.model_id, self.encoder.revision, self.eraser.digest(), self.sample.key())

    def measure(self, gammas: Sequence[float], progress: Progress | None = None) -> Measurement:
        """The measurement at ``gammas`` (and 0), encoding only the γ not measured before."""
        import dataclasses

        from clear_core.evaluation import evaluate

        wanted = sorted({0.0, *(float(g) for g in gammas)})
        todo = [g for g in wanted if g not in self._rows]
        if todo:
            report = evaluate(
                self.encoder, self.eraser, gammas=todo, baseline=self.baseline, progress=progress
            )
            self._rows.update((r.gamma, r) for r in report.rows)
            self._report = report
        report = dataclasses.replace(self._report, rows=[self._rows[g] for g in wanted])
        return Measurement(self.sample, report)
