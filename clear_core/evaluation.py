"""What an eraser erased and what it kept, measured on the encoder's final output.

* **Leakage**: the share of prompts a probe still classifies as the concept. The probe is a logistic
  regression on the *unmodified* encoder's mean-pooled final outputs, trained on the concept's
  positive vs negative prompts. Reported on the positive prompts and on the implicit paraphrases
  (which never name the concept and are never used for training).
* **Preservation**: mean cosine between original and erased final outputs, on the negative prompts
  and on unrelated prompts (1.0 means untouched).

Calibration picks the eraser's default γ: among the γ values whose preservation on unrelated prompts
stays ≥ ``preserve_min``, the one with the lowest leakage on the positive prompts (ties: the
smallest γ). Only training prompts and unrelated prompts are used, never the implicit ones, so the
implicit leakage reported afterwards is an honest held-out number.

This lives in the engine (not ``analysis/``) because the search needs it to calibrate γ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from clear_core.encoders import TextEncoder
from clear_core.erasure import Eraser, applied_many

__all__ = [
    "DEFAULT_GAMMAS",
    "Baseline",
    "GammaRow",
    "LeakageProbe",
    "Report",
    "calibrate_gamma",
    "evaluate",
    "fit_probe",
]

DEFAULT_GAMMAS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
Progress = Callable[[int, int], None]


@dataclass
class LeakageProbe:
    """A concept detector on the unmodified encoder's final output."""

    model: object
    """The fitted scikit-learn pipeline (scaler + logistic regression)."""
    train_accuracy: float
    """Accuracy on its own training prompts (a sanity check, not a score)."""

    def detect(self, embeddings: np.ndarray) -> np.ndarray:
        """(N,) booleans: classified as the concept."""
        return self.model.predict(embeddings).astype(bool)

    def probability(self, embeddings: np.ndarray) -> np.ndarray:
        """(N,) the probe's probability that each embedding carries the concept."""
        return self.model.predict_proba(embeddings)[:, 1]


def fit_probe(pos_emb: np.ndarray, neg_emb: np.ndarray, seed: int = 0) -> LeakageProbe:
    """Fit the leakage probe on original (N, d) embeddings of positive and negative prompts."""
    if len(pos_emb) < 2 or len(neg_emb) < 2:
        raise ValueError("the leakage probe needs at least 2 positive and 2 negative prompts")
    x = np.concatenate([pos_emb, neg_emb])
    y = np.r_[np.ones(len(pos_emb)), np.zeros(len(neg_emb))]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, random_state=seed))
    model.fit(x, y)
    return LeakageProbe(model, float(model.score(x, y)))


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
    """Fitted on original positive vs negative."""

    @classmethod
    def build(
        cls,
        encoder: TextEncoder,
        positives: Sequence[str],
        negatives: Sequence[str],
        implicit: Sequence[str] | None = None,
        unrelated: Sequence[str] | None = None,
        batch_size: int = 64,
    ) -> Baseline:
        sets = {"positive": list(positives), "negative": list(negatives)}
        if implicit:
            sets["implicit"] = list(implicit)
        if unrelated:
            sets["unrelated"] = list(unrelated)
        original = _split(sets, encoder.encode(_flat(sets), batch_size=batch_size))
        return cls(sets, original, fit_probe(original["positive"], original["negative"]))


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
        baseline = Baseline.build(encoder, positives, negatives, implicit, unrelated, batch_size)
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
        chosen_gamma=erasers[0].gamma if len(erasers) == 1 else 1.0,
    )
    for i, gamma in enumerate(gammas, start=2):
        if gamma == 0:
            erased = original
        else:
            pairs = [(e, gamma if len(erasers) == 1 else gamma * e.gamma) for e in erasers]
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
        if progress:
            progress(i, total)
    return report


def calibrate_gamma(report: Report, preserve_min: float = 0.95) -> float:
    """The default γ: lowest positive leakage while unrelated preservation ≥ ``preserve_min``."""
    rows = [r for r in report.rows if r.gamma > 0]
    if not rows:
        raise ValueError("calibration needs at least one γ > 0")
    if rows[0].preservation_unrelated is None:
        raise ValueError("calibration needs unrelated prompts to measure preservation")
    ok = [r for r in rows if r.preservation_unrelated >= preserve_min]
    if not ok:
        return min(r.gamma for r in rows)
    best = min(r.leakage_positive for r in ok)
    return min(r.gamma for r in ok if r.leakage_positive <= best + 1e-9)
