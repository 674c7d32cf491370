"""What an eraser erased and what it kept, measured on the encoder's final output.

* **Leakage**: the share of prompts a probe still classifies as the concept. The probe is a logistic
  regression on the *unmodified* encoder's mean-pooled final outputs, trained on the concept's
  positive vs negative prompts. Reported on the positive prompts and on the implicit paraphrases
  (which never name the concept and are never used for training).
* **Preservation**: mean cosine between original and erased final outputs, on the negative prompts
  and on unrelated prompts (1.0 means untouched).

Calibration picks the eraser's default γ: among the γ values whose preservation on unrelated prompts
stays ≥ ``preserve_min``, the one with the lowest leakage (ties: the smallest γ). Leakage there is
what erasure is for: the mean of the positive prompts' leakage and, when the concept has implicit
prompts, the leakage of the *calibration half* of them (:func:`split_implicit`). Explicit positives
alone reach 0 by γ ≈ 3 and stop the sweep before prompts that only evoke the concept are erased
(measured: nudity's implicit leakage 0.96 → 0.76 that way). The other half of the implicit
prompts is never used for calibration, so the implicit leakage reported on it is an honest held-out
number.

**Concept probability** (what a user reads for one prompt) is a different question from leakage: "does
this prompt carry the concept?" for *any* prompt, not only the pack's pairs. The leakage probe never saw
a prompt outside the pack's scenes and reads "a bowl of ramen" as 0.52 parachute (measured). So
:class:`Baseline` also fits a ``concept_probe`` on positives against negatives *and* half of the
unrelated prompts (:func:`split_unrelated`), as an ensemble of bootstrap refits whose spread is the
uncertainty shown with the probability; the other half of the unrelated prompts stays held out to
report how often an unrelated prompt still reads as the concept. Leakage keeps the pair-trained probe,
so leakage numbers stay comparable across versions.

This lives in the engine (not ``analysis/``) because the search needs it to calibrate γ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from clear_core.config import DEFAULT_GAMMAS
from clear_core.encoders import TextEncoder
from clear_core.erasure import Eraser, applied_many
from clear_core.prefix import encode_gammas

__all__ = [
    "DEFAULT_GAMMAS",
    "Baseline",
    "GammaRow",
    "LeakageProbe",
    "Report",
    "calibrate_gamma",
    "calibration_leakage",
    "evaluate",
    "fit_probe",
    "split_implicit",
    "split_unrelated",
]

Progress = Callable[[int, int], None]


@dataclass
class LeakageProbe:
    """A concept detector on the unmodified encoder's final output."""

    model: object
    """The fitted scikit-learn pipeline (scaler + logistic regression)."""
    train_accuracy: float
    """Accuracy on its own training prompts (a sanity check, not a score)."""
    ensemble: list = field(default_factory=list)
    """Refits on bootstrap resamples of the training prompts (empty unless ``n_bootstrap`` > 0)."""

    def detect(self, embeddings: np.ndarray) -> np.ndarray:
        """(N,) booleans: classified as the concept."""
        return self.model.predict(embeddings).astype(bool)

    def probability(self, embeddings: np.ndarray) -> np.ndarray:
        """(N,) the probe's probability that each embedding carries the concept."""
        return self.model.predict_proba(embeddings)[:, 1]

    def probability_interval(
        self, embeddings: np.ndarray, level: float = 0.9
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(probability, low, high), each (N,): the probe's probability and the central ``level``
        range of the bootstrap refits' probabilities (low = high = probability without an ensemble)."""
        p = self.probability(embeddings)
        if not self.ensemble:
            return p, p.copy(), p.copy()
        boot = np.stack([m.predict_proba(embeddings)[:, 1] for m in self.ensemble])
        tail = (1 - level) / 2
        return p, np.quantile(boot, tail, axis=0), np.quantile(boot, 1 - tail, axis=0)


def _probe_model(seed: int):
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, random_state=seed))


def fit_probe(
    pos_emb: np.ndarray,
    neg_emb: np.ndarray,
    seed: int = 0,
    extra_negatives: np.ndarray | None = None,
    n_bootstrap: int = 0,
) -> LeakageProbe:
    """Fit a probe on original (N, d) embeddings of positive and negative prompts.

    ``extra_negatives``: more prompts without the concept (unrelated prompts: the concept probability's
    calibration). ``n_bootstrap``: refits on resamples (stratified by class) for an uncertainty range.
    """
    if len(pos_emb) < 2 or len(neg_emb) < 2:
        raise ValueError("the leakage probe needs at least 2 positive and 2 negative prompts")
    negatives = neg_emb if extra_negatives is None else np.concatenate([neg_emb, extra_negatives])
    x = np.concatenate([pos_emb, negatives])
    y = np.r_[np.ones(len(pos_emb)), np.zeros(len(negatives))]
    model = _probe_model(seed).fit(x, y)
    rng = np.random.default_rng(seed)
    ensemble = []
    pos_idx, neg_idx = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    for _ in range(n_bootstrap):
        rows = np.r_[rng.choice(pos_idx, len(pos_idx)), rng.choice(neg_idx, len(neg_idx))]
        ensemble.append(_probe_model(seed).fit(x[rows], y[rows]))
    return LeakageProbe(model, float(model.score(x, y)), ensemble)


@dataclass
class GammaRow:
    """Metrics at one γ."""

    gamma: float
    leakage_positive: float
    """Share of positive prompts still detected."""
    leakage_implicit: float | None
    """Share of implicit prompts still detected (None without implicit prompts)."""
    preservation_negative: float
    """Mean cosine original vs erased on negative prompts."""
    preservation_unrelated: float | None
    """Mean cosine original vs erased on unrelated prompts."""
    min_preservation_unrelated: float | None = None
    """Worst single unrelated prompt's cosine."""
    leakage_implicit_calibration: float | None = None
    """Share of the *calibration half* of the implicit prompts still detected (set by a calibration,
    which moves its implicit leakage here so that ``leakage_implicit`` always means held-out prompts)."""
    preservation_lookalike: float | None = None
    """Mean cosine original vs erased on look-alike prompts (clear_core/lookalikes.py): what
    *near* the concept is kept, apart from unrelated prompts (None without look-alikes)."""
    lookalike_told_apart: float | None = None
    """Share of look-alike prompts (odd positions) that a probe trained on clean outputs of positives vs
    the even-position look-alike prompts still reads as the look-alike, not the concept."""


@dataclass
class Report:
    """An eraser's evaluation: baseline leakage and the γ sweep."""

    concept: str
    layer_name: str
    n_positive: int
    n_implicit: int
    n_unrelated: int
    probe_train_accuracy: float
    rows: list[GammaRow] = field(default_factory=list)
    chosen_gamma: float | None = None
    """The eraser's default γ (what ``gamma`` would be without an override)."""
    n_lookalike: int = 0
    """Look-alike prompts measured (0: none given)."""

    def row(self, gamma: float) -> GammaRow:
        for r in self.rows:
            if abs(r.gamma - gamma) < 1e-9:
                return r
        raise ValueError(f"γ = {gamma} was not evaluated; evaluated: {[r.gamma for r in self.rows]}")

    def to_json(self) -> dict:
        return asdict(self)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return num / np.maximum(den, 1e-12)


@dataclass
class Baseline:
    """The unmodified encoder's outputs on the evaluation prompts, and the probe fitted on them.

    Build once per (encoder, prompt sets) with :meth:`build` and pass to :func:`evaluate` to skip
    re-encoding the originals (the app's γ slider does this).
    """

    sets: dict[str, list[str]]
    """"positive", "negative" and optionally "implicit", "unrelated" prompts."""
    original: dict[str, np.ndarray]
    """Their mean-pooled final outputs, (N, d_model) each."""
    probe: LeakageProbe
    """Fitted on original positive vs negative: the leakage detector."""
    concept_probe: LeakageProbe | None = None
    """Fitted on positive vs negative + the calibration half of the unrelated prompts, with bootstrap
    refits: the concept probability to show for any prompt (None without unrelated prompts)."""
    unrelated_false_positive: float | None = None
    """Share of the held-out half of the unrelated prompts ``concept_probe`` calls the concept."""
    lookalike_probe: LeakageProbe | None = None
    """Concept (positives) vs look-alike (even-position look-alike prompts), on clean outputs."""

    @classmethod
    def build(
        cls,
        encoder: TextEncoder,
        positives: Sequence[str],
        negatives: Sequence[str],
        implicit: Sequence[str] | None = None,
        unrelated: Sequence[str] | None = None,
        batch_size: int = 64,
        concept_probe: bool = True,
        lookalikes: Sequence[str] | None = None,
    ) -> Baseline:
        """Encode the sets and fit the probes (``concept_probe=False`` skips the bootstrap refits of
        the concept probe when only leakage is wanted, as in a calibration)."""
        sets = {"positive": list(positives), "negative": list(negatives)}
        if implicit:
            sets["implicit"] = list(implicit)
        if unrelated:
            sets["unrelated"] = list(unrelated)
        if lookalikes:
            if len(lookalikes) < 4:
                raise ValueError(f"look-alike preservation needs at least 4 prompts, got {len(lookalikes)}")
            sets["lookalike"] = list(lookalikes)
        original = _split(sets, encoder.encode(_flat(sets), batch_size=batch_size))
        probe = fit_probe(original["positive"], original["negative"])
        lookalike_probe = fit_probe(original["positive"], original["lookalike"][0::2]) if lookalikes else None
        calibrated = false_positive = None
        if concept_probe and unrelated and len(unrelated) >= 4:
            fit_rows, held_rows = split_unrelated(len(unrelated))
            calibrated = fit_probe(
                original["positive"],
                original["negative"],
                extra_negatives=original["unrelated"][fit_rows],
                n_bootstrap=20,
            )
            false_positive = float(calibrated.detect(original["unrelated"][held_rows]).mean())
        return cls(sets, original, probe, calibrated, false_positive, lookalike_probe)


def _flat(sets: dict[str, list[str]]) -> list[str]:
    return [p for prompts in sets.values() for p in prompts]


def _split(sets: dict[str, list[str]], emb: np.ndarray) -> dict[str, np.ndarray]:
    bounds = np.cumsum([0] + [len(v) for v in sets.values()])
    return {n: emb[bounds[i] : bounds[i + 1]] for i, n in enumerate(sets)}


def evaluate(
    encoder: TextEncoder,
    eraser: Eraser | Sequence[Eraser],
    positives: Sequence[str] = (),
    negatives: Sequence[str] = (),
    implicit: Sequence[str] | None = None,
    unrelated: Sequence[str] | None = None,
    gammas: Sequence[float] = DEFAULT_GAMMAS,
    progress: Progress | None = None,
    batch_size: int = 64,
    baseline: Baseline | None = None,
    lookalikes: Sequence[str] | None = None,
) -> Report:
    """Leakage and preservation of ``eraser`` (or several applied together) at each γ.

    With several erasers, γ multiplies each one's default γ (γ = 1 means "every eraser at its own
    default"); with one, γ is its absolute strength. Pass a :class:`Baseline` instead of the prompt
    lists to reuse the original outputs and probe.
    """
    erasers = [eraser] if isinstance(eraser, Eraser) else list(eraser)
    if not erasers:
        raise ValueError("no eraser to evaluate")
    total = len(gammas) + 1
    if baseline is None:
        baseline = Baseline.build(
            encoder, positives, negatives, implicit, unrelated, batch_size, False, lookalikes
        )
    sets, original, probe = baseline.sets, baseline.original, baseline.probe
    flat = _flat(sets)
    if progress:
        progress(1, total)
    report = Report(
        concept=" + ".join(e.concept for e in erasers),
        layer_name=", ".join(e.layer_name for e in erasers),
        n_positive=len(sets["positive"]),
        n_implicit=len(sets.get("implicit", [])),
        n_unrelated=len(sets.get("unrelated", [])),
        probe_train_accuracy=probe.train_accuracy,
        n_lookalike=len(sets.get("lookalike", [])),
        chosen_gamma=erasers[0].gamma if len(erasers) == 1 else 1.0,
    )
    swept = None
    if len(erasers) == 1 and any(g != 0 for g in gammas):  # the blocks below the eraser run once
        unerased = np.concatenate([original[name] for name in sets])
        edited = [g for g in gammas if g != 0]
        swept = encode_gammas(encoder, flat, erasers[0], edited, batch_size, original=unerased)
    for i, gamma in enumerate(gammas, start=2):
        if gamma == 0:
            erased = original
        elif swept is not None:
            erased = _split(sets, swept[float(gamma)])
        else:
            pairs = [(e, gamma * e.gamma) for e in erasers]
            with applied_many(pairs, encoder):
                erased = _split(sets, encoder.encode(flat, batch_size=batch_size))
        unrelated_cos = _cosine(original["unrelated"], erased["unrelated"]) if "unrelated" in sets else None
        report.rows.append(
            GammaRow(
                gamma=float(gamma),
                leakage_positive=float(probe.detect(erased["positive"]).mean()),
                leakage_implicit=float(probe.detect(erased["implicit"]).mean())
                if "implicit" in sets
                else None,
                preservation_negative=float(_cosine(original["negative"], erased["negative"]).mean()),
                preservation_unrelated=None if unrelated_cos is None else float(unrelated_cos.mean()),
                min_preservation_unrelated=None if unrelated_cos is None else float(unrelated_cos.min()),
            )
        )
        if "lookalike" in sets:
            row = report.rows[-1]
            row.preservation_lookalike = float(_cosine(original["lookalike"], erased["lookalike"]).mean())
            misread = baseline.lookalike_probe.detect(erased["lookalike"][1::2])
            row.lookalike_told_apart = float(1.0 - misread.mean())
        if progress:
            progress(i, total)
    return report


def split_implicit(prompts: Sequence[str]) -> tuple[list[str], list[str]]:
    """(calibration half, held-out half) of a concept's implicit prompts: even and odd positions.

    Deterministic, so the app, the CLI and the benchmarks hold out the same prompts; packs list
    paraphrases of one template family next to each other, so alternating splits every family.
    """
    prompts = list(prompts)
    return prompts[0::2], prompts[1::2]


def split_unrelated(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out rows) of ``n`` unrelated prompts for the concept probe: even and odd."""
    rows = np.arange(n)
    return rows[0::2], rows[1::2]


def calibration_leakage(row: GammaRow) -> float:
    """What calibration minimises at one γ: mean of positive and (if any) implicit leakage
    (``leakage_implicit_calibration`` when set, else ``leakage_implicit``)."""
    implicit = row.leakage_implicit_calibration
    if implicit is None:
        implicit = row.leakage_implicit
    if implicit is None:
        return row.leakage_positive
    return 0.5 * (row.leakage_positive + implicit)


def calibrate_gamma(
    report: Report, preserve_min: float = 0.95, lookalike_min: float | None = None, strongest: bool = False
) -> float:
    """The default γ: lowest :func:`calibration_leakage` while unrelated preservation ≥ ``preserve_min``
    (and, with ``lookalike_min`` and look-alike rows, look-alike preservation ≥ ``lookalike_min``); the
    smallest such γ, or with ``strongest`` the largest (the probe gate's caught prompts: held-out
    paraphrases need more than the calibration ones, which reach the lowest leakage first).

    Pass a report evaluated with the *calibration half* of the implicit prompts (never the held-out
    half). When no γ keeps preservation, the smallest γ is returned.
    """
    rows = [r for r in report.rows if r.gamma > 0]
    if not rows:
        raise ValueError("calibration needs at least one γ > 0")
    if rows[0].preservation_unrelated is None:
        raise ValueError("calibration needs unrelated prompts to measure preservation")
    ok = [r for r in rows if r.preservation_unrelated >= preserve_min]
    if lookalike_min is not None:
        ok = [r for r in ok if r.preservation_lookalike is None or r.preservation_lookalike >= lookalike_min]
    if not ok:
        return min(r.gamma for r in rows)
    best = min(calibration_leakage(r) for r in ok)
    return (max if strongest else min)(r.gamma for r in ok if calibration_leakage(r) <= best + 1e-9)
