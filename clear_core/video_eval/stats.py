"""Intervals over prompts: the unit of replication in the paper's protocol is the prompt, not the frame.

Frames of one video, and videos of one prompt under different seeds, are correlated; resampling
them as if independent gives intervals that are too narrow. So a variant's value is first averaged
per prompt, and the 95% interval is a percentile bootstrap over prompts (seeded, so the same numbers
come back on every machine). The paired difference (erased - original) is taken per prompt on the
prompts both variants share, then bootstrapped the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Interval", "bootstrap_mean", "paired_difference", "per_prompt_means"]

N_BOOT = 10_000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean over prompts with its percentile-bootstrap interval."""

    mean: float
    low: float
    high: float
    n: int
    """Number of prompts (the resampled unit)."""

    def to_dict(self) -> dict:
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()
        }


def bootstrap_mean(
    values: Iterable[float], n_boot: int = N_BOOT, confidence: float = CONFIDENCE, seed: int = 0
) -> Interval:
    """Mean of ``values`` (one per prompt; NaN dropped) with a seeded percentile-bootstrap interval."""
    x = np.asarray(list(values), dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    if len(x) == 1:
        return Interval(float(x[0]), float(x[0]), float(x[0]), 1)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Interval(float(x.mean()), float(low), float(high), len(x))


def per_prompt_means(items: Iterable[tuple[int, float]]) -> dict[int, float]:
    """(prompt_index, value) pairs -> mean value per prompt (over seeds), NaN values ignored."""
    groups: dict[int, list[float]] = defaultdict(list)
    for prompt, value in items:
        if value is not None and np.isfinite(value):
            groups[prompt].append(float(value))
    return {p: float(np.mean(v)) for p, v in sorted(groups.items())}


def paired_difference(
    treated: dict[tuple[int, int], float], control: dict[tuple[int, int], float], seed: int = 0
) -> Interval:
    """Mean over prompts of (treated - control), pairing videos by (prompt_index, seed)."""
    shared = sorted(set(treated) & set(control))
    diffs = per_prompt_means((key[0], treated[key] - control[key]) for key in shared)
    return bootstrap_mean(diffs.values(), seed=seed)
