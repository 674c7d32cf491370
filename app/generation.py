"""The plug point for original-vs-erased media in the Erase & preview tab.

Video generation arrives with the generation issues (``clear_core/generation.py``). The tab only needs
a :class:`MediaBackend`: something that renders a prompt twice with the same seed, once as is and
once with the eraser applied to its text encoder, and returns two media files. :func:`find_backend`
returns None until such a backend exists, and the tab then says plainly that no pipeline is loaded.

To plug one in, give ``clear_core.generation`` a ``workbench_backend()`` function returning an object
with this interface (load the pipeline lazily and cache it: it is shared by every visitor, and the
eraser must be applied with ``eraser.applied(pipe, gamma=...)``, which is context-local).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["NO_PIPELINE", "MediaBackend", "MediaPair", "backend_installed", "find_backend"]

NO_PIPELINE = (
    "**No video generation pipeline is loaded**, so this preview shows only what the erased text "
    "encoder outputs (the scores above). Original and erased videos, rendered with the same seed, "
    "appear here once a generation backend is installed."
)


@dataclass
class MediaPair:
    """Two renders of one prompt with the same seed."""

    original: str
    """Path of the media generated without erasure (mp4 or image)."""
    erased: str
    """Path of the media generated with the eraser applied."""
    info: str = ""
    """One line for the UI: pipeline, steps, seed, time."""


class MediaBackend(Protocol):
    """What the preview tab needs from a generation pipeline."""

    name: str
    """Shown in the UI ("Wan2.2-TI2V-5B", ...)."""

    def generate(self, prompt: str, eraser: Any, gamma: float, seed: int) -> MediaPair:
        """Render ``prompt`` without and with ``eraser`` at strength ``gamma``."""
        ...


def backend_installed() -> bool:
    """Whether a generation module is installed at all (checked without importing it: page build stays fast)."""
    try:
        return importlib.util.find_spec("clear_core.generation") is not None
    except (ImportError, ValueError):
        return False


def find_backend() -> MediaBackend | None:
    """The installed generation backend, or None (the case until the generation issues land)."""
    try:
        module = importlib.import_module("clear_core.generation")
    except ImportError:
        return None
    factory = getattr(module, "workbench_backend", None)
    return factory() if callable(factory) else None
