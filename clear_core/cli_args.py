"""argparse types for the numbers of every command: one definition, the same words everywhere.

Each type refuses what :mod:`clear_core.validation` and the caps of :mod:`clear_core.limits` refuse,
so a bad number is an argparse error (``error: generate: argument --frames: must be in 1..1,024, got
100,000 (see --help)``, exit 2) before anything is read or loaded. The plugins (``generate``,
``testbed rate``, ``evaluate-videos``) use them as the core commands do.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from clear_core.validation import check_gamma, check_number

__all__ = ["count_arg", "finite_arg", "gamma_arg", "seed_arg"]

SEED_MAX = 2**63 - 1
"""Largest seed torch's generators take."""


def gamma_arg(text: str) -> float:
    """``--gamma``: finite, in [0, GAMMA_LIMIT] (a warning above the usual range)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    try:
        return check_gamma(value, "--gamma")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--gamma ")) from None


def count_arg(maximum: int, minimum: int = 1) -> Callable[[str], int]:
    """A count in ``[minimum, maximum]`` (``--steps``, ``--frames``, ``--seeds`` ...)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be in {minimum}..{maximum:,}, got {value:,}")
        return value

    parse.__name__ = "integer"  # argparse names the type in "invalid <name> value" messages
    return parse


def finite_arg(minimum: float | None = None, above: float | None = None) -> Callable[[str], float]:
    """A finite number (``--guidance``, ``--lr-alpha``): NaN and infinity refused."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        try:
            return check_number(value, "value", minimum=minimum, above=above)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("value ")) from None

    parse.__name__ = "number"
    return parse


seed_arg = count_arg(SEED_MAX, minimum=0)
"""``--seed``: an integer in 0..2**63 − 1."""
