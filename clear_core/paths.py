"""Where the shipped data files live, in a checkout and in an installed package alike.

The data (concept packs, unrelated prompts, the testbed's weights) is the repository's top-level
``assets/`` folder. A wheel built from ``pyproject.toml`` installs the same folder as the package data
``clear_core/assets/``, next to this module, because a top-level ``assets`` folder would not travel with
``pip install .``. :data:`ASSETS_DIR` is the installed copy when there is one, else the checkout's, so
every module reads its files the same way whatever the working directory.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ASSETS_DIR", "asset"]


def _assets_dir() -> Path:
    here = Path(__file__).resolve().parent
    installed = here / "assets"
    if (installed / "concepts").is_dir():
        return installed
    return here.parent / "assets"


ASSETS_DIR = _assets_dir()
"""The folder with ``concepts/``, ``prompts/`` and ``testbed/``."""


def asset(*parts: str) -> Path:
    """A path under :data:`ASSETS_DIR` (not checked: callers say what is missing in their own words)."""
    return ASSETS_DIR.joinpath(*parts)
