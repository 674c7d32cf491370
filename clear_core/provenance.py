"""Versions of everything that decides a run's numbers, recorded in eraser.json and run reports."""

from __future__ import annotations

import importlib.metadata
import platform

from clear_core import __version__

__all__ = ["PACKAGES", "library_versions"]

PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "numpy",
    "safetensors",
    "scikit-learn",
    "umap-learn",
    "plotly",
    "gradio",
    "diffusers",
)


def library_versions() -> dict[str, str]:
    """Python, the platform, the workbench and each package in :data:`PACKAGES` ("not installed" if absent)."""
    out = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "clear_workbench": __version__,
    }
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
