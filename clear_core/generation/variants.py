"""What is rendered side by side: the original, CLEAR at each γ, and the baselines, on one seed.

* ``original`` — no eraser.
* ``erased`` (or ``erased_g<γ>`` for a γ sweep) — the given erasers applied together, each at γ (or at
  its own calibrated default when no γ is given).
* ``negprompt`` — the paper's NegPrompt baseline: no eraser, the concept's name as negative prompt
  (joined to the user's negative prompt when there is one).
* ``steering`` — the dense steering-vector baseline (mean positive − mean negative state at the
  CLEAR eraser's block), at the γ whose preservation on unrelated prompts matches CLEAR's: comparing
  an SAE eraser with a steering vector is only meaningful at equal preservation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from clear_core.build import steering_eraser
from clear_core.erasure import Eraser, applied_many

__all__ = ["BASELINES", "Variant", "concept_phrase", "eraser_id", "plan_variants", "steering_baseline"]

BASELINES = ("negprompt", "steering")


@dataclass
class Variant:
    """One row of the grid."""

    name: str
    """Folder and label ("original", "erased_g3", "negprompt", "steering")."""
    erasers: list[tuple[Eraser, float | None]] = field(default_factory=list)
    """Erasers applied while encoding, with their γ (None: the eraser's default)."""
    negative_prompt: str | None = None
    """Replaces the run's negative prompt (NegPrompt baseline); None keeps it."""
    negative_erased: bool = True
    """Apply the erasers to the negative prompt too (see conditioning.py)."""
    gamma: float | None = None
    """The γ this row shows (None for rows without an eraser)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Recorded in each video's JSON (e.g. how a baseline was calibrated)."""

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "gamma": self.gamma,
            "negative_prompt": self.negative_prompt,
            "negative_erased": self.negative_erased,
            "erasers": [
                {
                    "concept": e.concept,
                    "kind": e.kind,
                    "id": eraser_id(e),
                    "layer": e.layer,
                    "layer_name": e.layer_name,
                    "gamma": e.gamma if g is None else g,
                }
                for e, g in self.erasers
            ],
            **self.info,
        }


def eraser_id(eraser: Eraser) -> str:
    """A short digest of everything that decides the edit (:meth:`Eraser.digest`): equal ids, equal edits."""
    return eraser.digest()[:16]


def concept_phrase(eraser: Eraser) -> str:
    """How the concept is named in a NegPrompt: the built-in pack's display name, else the concept."""
    from clear_core.packs import PACKS

    spec = PACKS.get(eraser.concept)
    return spec.name if spec is not None else eraser.concept.replace("_", " ")


def plan_variants(
    erasers: Sequence[Eraser],
    gammas: Sequence[float] | None = None,
    baselines: Sequence[str] = (),
    negative_prompt: str | None = None,
    negative_erased: bool = True,
) -> list[Variant]:
    """The rows for ``erasers`` (applied together) at each γ, plus the named baselines."""
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; expected {', '.join(BASELINES)}")
    if baselines and not erasers:
        raise ValueError("baselines are rendered for an eraser's concept: give an --eraser")
    rows = [Variant("original")]
    gammas = list(gammas or [])
    for g in gammas:
        if not (np.isfinite(g) and g >= 0):
            raise ValueError(f"γ must be a finite number ≥ 0, got {g}")
    if len(set(gammas)) != len(gammas):
        raise ValueError(f"γ values repeat: {gammas}")
    if erasers:
        if not gammas:
            default = erasers[0].gamma if len(erasers) == 1 else None
            rows.append(Variant("erased", [(e, None) for e in erasers], None, negative_erased, default))
        for g in gammas:
            name = "erased" if len(gammas) == 1 else f"erased_g{g:g}"
            rows.append(Variant(name, [(e, float(g)) for e in erasers], None, negative_erased, float(g)))
    if "negprompt" in baselines:
        phrase = ", ".join(dict.fromkeys(concept_phrase(e) for e in erasers))
        negative = f"{phrase}, {negative_prompt}" if negative_prompt else phrase
        rows.append(Variant("negprompt", [], negative, True, None, {"baseline": "negprompt"}))
    if "steering" in baselines:
        rows.append(Variant("steering", [], None, negative_erased, None, {"baseline": "steering"}))
    return rows


def _mean_cosine(encoder: Any, prompts: list[str], original: np.ndarray, pairs) -> float:
    with applied_many(pairs, encoder):
        erased = encoder.encode(prompts)
    num = (original * erased).sum(-1)
    den = np.linalg.norm(original, axis=-1) * np.linalg.norm(erased, axis=-1)
    return float((num / np.maximum(den, 1e-12)).mean())


@torch.no_grad()
def steering_baseline(
    encoder: Any,
    eraser: Eraser,
    gamma: float,
    positives: Sequence[str],
    negatives: Sequence[str],
    unrelated: Sequence[str],
    grid: Sequence[float] = (0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16),
    progress: Callable[[float, str], None] | None = None,
) -> tuple[Eraser, float, dict]:
    """A steering eraser at ``eraser``'s block, at the γ matching CLEAR's unrelated-prompt preservation.

    ``encoder`` is the pipeline's text encoder run under its own profile (TextEncoder.from_pipeline),
    so the steering vector is computed on the states the pipeline computes. Returns (eraser, γ,
    calibration info). ``progress(fraction, message)`` hears of every stage (a minute on a CPU).
    """
    report = progress or (lambda _fraction, _message: None)
    steps = 3 + len(grid)
    report(0.0, f"steering baseline: capturing {len(positives)} pairs")
    pos, neg = encoder.capture(list(positives)), encoder.capture(list(negatives))
    steer = steering_eraser(pos, neg, eraser.layer, eraser.concept, encoder.model_id)
    steer.meta.update(encoder.provenance())
    unrelated = list(unrelated)
    report(1 / steps, f"steering baseline: CLEAR's preservation on {len(unrelated)} unrelated prompts")
    original = encoder.encode(unrelated)
    target = _mean_cosine(encoder, unrelated, original, [(eraser, gamma)])
    scores = {}
    for i, g in enumerate(grid):
        report((3 + i) / steps, f"steering baseline: matching it, γ {g:g} ({i + 1}/{len(grid)})")
        scores[float(g)] = _mean_cosine(encoder, unrelated, original, [(steer, float(g))])
    report(1.0, "steering baseline: matched")
    best = min(scores, key=lambda g: (abs(scores[g] - target), g))
    steer.gamma = best
    info = {
        "matched_preservation": {
            "clear_gamma": gamma,
            "clear_unrelated_cosine": target,
            "steering_gamma": best,
            "steering_unrelated_cosine": scores[best],
            "n_unrelated": len(unrelated),
            "n_pairs": len(positives),
        }
    }
    return steer, best, info
