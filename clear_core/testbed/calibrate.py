"""γ calibrated on generated frames of the testbed, from calibration prompts only.

Text-side leakage agrees with what is drawn on only part of the prompts, so a user with a generator can
pick γ by what the generator draws: for every γ of the grid, the testbed renders the calibration
positives (fit pairs, and the calibration half of the implicit prompts) and the concept-free
calibration prompts (the same pairs' negatives and the protected look-alike prompts), all from the same
latents. The chosen γ has the lowest concept rate among those whose preservation (the share of frames
whose detected object, style, avatar, clothing and setting are unchanged) stays ≥ ``preserve_min``;
ties go to the smallest γ. Nothing held out is rendered here, so the held-out numbers stay honest.

It needs the testbed's own encoder (MiniLM, the default model): an eraser for another encoder cannot
drive it (``check_erasers`` refuses it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from clear_core.erasure import Eraser

__all__ = ["FrameCalibration", "FrameRow", "calibrate_on_frames"]


@dataclass
class FrameRow:
    gamma: float
    rate: float
    """Share of the positives' frames where the detector finds the concept."""
    implicit_rate: float | None
    """The same on the calibration half of the implicit prompts (None without them)."""
    preservation: float
    """Share of the concept-free prompts' frames that read the same as at γ = 0."""

    @property
    def score(self) -> float:
        """What the calibration minimises: the mean of the explicit and implicit rates."""
        return self.rate if self.implicit_rate is None else 0.5 * (self.rate + self.implicit_rate)


@dataclass
class FrameCalibration:
    rows: list[FrameRow] = field(default_factory=list)
    chosen_gamma: float = 0.0
    preserve_min: float = 0.95
    n_positive: int = 0
    n_implicit: int = 0
    n_neutral: int = 0
    seeds: int = 2

    def to_json(self) -> dict:
        return {**asdict(self), "rows": [asdict(r) for r in self.rows]}


def choose_gamma(rows: Sequence[FrameRow], preserve_min: float) -> float:
    """Lowest :attr:`FrameRow.score` among γ > 0 with preservation ≥ ``preserve_min`` (ties: smallest
    γ); the smallest γ > 0 when none keeps it."""
    ok = [r for r in rows if r.gamma > 0 and r.preservation >= preserve_min]
    if not ok:
        return min(r.gamma for r in rows if r.gamma > 0)
    best = min(r.score for r in ok)
    return min(r.gamma for r in ok if r.score <= best + 1e-9)


def calibrate_on_frames(
    eraser: Eraser,
    positives: Sequence[str],
    neutral: Sequence[str],
    gammas: Sequence[float],
    implicit: Sequence[str] = (),
    preserve_min: float = 0.95,
    seeds: int = 2,
    steps: int = 10,
    pipe=None,
    detector=None,
    progress=None,
) -> FrameCalibration:
    """Render the calibration prompts at every γ of ``gammas`` and pick the default γ (module docstring)."""
    from clear_core.erasure import check_erasers
    from clear_core.testbed.detector import HEADS, concept_attribute, concept_present, load_detector
    from clear_core.testbed.pipeline import load_testbed_pipeline
    from clear_core.testbed.rate import _flat, generate_frames

    concept_attribute(eraser.concept)  # a concept the testbed's detector knows, else a clear error
    pipe = pipe or load_testbed_pipeline()
    detector = detector or load_detector()
    check_erasers(pipe, [eraser])
    gammas = sorted({0.0, *map(float, gammas)})
    gen = torch.Generator().manual_seed(1234)
    sets = {"positive": list(positives), "implicit": list(implicit), "neutral": list(neutral)}
    latents = {k: torch.randn((len(v) * seeds, 9, 16), generator=gen) for k, v in sets.items() if v}
    base: dict[str, dict] = {}
    out = FrameCalibration(
        preserve_min=preserve_min,
        n_positive=len(positives),
        n_implicit=len(implicit),
        n_neutral=len(neutral),
        seeds=seeds,
    )
    for i, gamma in enumerate(gammas):
        read = {
            k: detector.predict(
                _flat(generate_frames(pipe, sets[k], lat, eraser if gamma else None, gamma, steps))
            )
            for k, lat in latents.items()
        }
        if gamma == 0:
            base = read
        agree = np.all([read["neutral"][h] == base["neutral"][h] for h in HEADS], axis=0)
        out.rows.append(
            FrameRow(
                gamma=gamma,
                rate=float(concept_present(read["positive"], eraser.concept).mean()),
                implicit_rate=float(concept_present(read["implicit"], eraser.concept).mean())
                if "implicit" in read
                else None,
                preservation=float(agree.mean()),
            )
        )
        if progress:
            progress(i + 1, len(gammas))
    out.chosen_gamma = choose_gamma(out.rows, preserve_min)
    return out
