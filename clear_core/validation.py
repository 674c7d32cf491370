"""Checks for the numbers that cross a boundary: the command line, the app, an artifact read from disk.

One place says what a valid γ, scale or count is, so that the CLI, the app and :meth:`Eraser.load`
refuse the same things with the same words. Every check raises ``ValueError`` naming the field, what
was expected and what arrived; none of them lets NaN or infinity through (``float("nan") >= 0`` is
False, but ``not nan < 0`` is True, so range checks alone are not enough).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

__all__ = [
    "GAMMA_LIMIT",
    "GAMMA_WARN",
    "ClearWarning",
    "check_finite",
    "check_gamma",
    "check_int",
    "check_number",
]

GAMMA_WARN = 20.0
"""Above this γ a warning is given: the calibrated defaults are 1-6 and the paper's best is ≈ 10."""
GAMMA_LIMIT = 1000.0
"""Largest γ accepted anywhere: beyond it the erased output is essentially −γ·v, not a prompt."""


class ClearWarning(UserWarning):
    """A legal but suspicious input (a huge γ, a tiny concept): shown as one ``warning:`` line."""


def _describe(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def check_number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
) -> float:
    """``value`` as a finite float in ``[minimum, maximum]`` (and ``> above``), else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"{name} must be a number, got {_describe(value)}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x}")
    if above is not None and not x > above:
        raise ValueError(f"{name} must be > {above:g}, got {x:g}")
    if minimum is not None and x < minimum:
        raise ValueError(f"{name} must be ≥ {minimum:g}, got {x:g}")
    if maximum is not None and x > maximum:
        raise ValueError(f"{name} must be ≤ {maximum:g}, got {x:g}")
    return x


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (a float such as 4.0 is accepted, 4.5 is not)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise ValueError(f"{name} must be an integer, got {_describe(value)}")
    if not math.isfinite(float(value)) or float(value) != int(value):
        raise ValueError(f"{name} must be an integer, got {value}")
    i = int(value)
    if minimum is not None and i < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {i}")
    if maximum is not None and i > maximum:
        raise ValueError(f"{name} must be ≤ {maximum}, got {i}")
    return i


def check_gamma(value: Any, name: str = "γ") -> float:
    """A finite γ in [0, GAMMA_LIMIT]; a :class:`ClearWarning` above :data:`GAMMA_WARN`."""
    gamma = check_number(value, name, minimum=0.0, maximum=GAMMA_LIMIT)
    if gamma > GAMMA_WARN:
        warnings.warn(
            f"{name} = {gamma:g} is far above the usual range (calibrated defaults are 1-6, "
            f"the paper's best ≈ 10): the erased output will mostly be the subtracted vector",
            ClearWarning,
            stacklevel=2,
        )
    return gamma


def check_finite(array: Any, name: str) -> None:
    """Raise if ``array`` (numpy or torch) holds NaN or infinity, saying how many values do."""
    a = array.detach().cpu().numpy() if hasattr(array, "detach") else np.asarray(array)
    if a.dtype.kind not in "fc":
        return
    bad = int(a.size - np.count_nonzero(np.isfinite(a)))
    if bad:
        raise ValueError(f"{name}: {bad:,} of {a.size:,} values are not finite (NaN or infinity)")
