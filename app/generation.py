"""The shared video pipeline and clip cache behind the Erase & preview tab's video panel.

A pipeline is loaded once per process and shared by every visitor (like the text encoders of
:mod:`app.models`), and so is the clip cache (:class:`clear_core.generation.preview.PreviewCache`:
one clip per pipeline, prompt, seed, steps, eraser and γ). Concurrent visitors are safe: erasers reach
the text encoder through context-local hooks, and denoising calls on one pipeline run one at a time
(clear_core/generation/render.py); the app's queue shows a waiting visitor their place.

The CPU testbed (``testbed``) is the default pipeline when its weights are installed; otherwise the
visitor names a local diffusers folder or Hugging Face id, or a ``tiny-*`` pipeline (random weights,
to check the plumbing).
"""

from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from typing import Any

__all__ = [
    "MAX_PIPELINES",
    "NO_PIPELINE",
    "default_pipeline",
    "get_pipeline",
    "pipeline_choices",
    "preview_cache",
    "render_settings",
    "testbed_available",
]

NO_PIPELINE = (
    "**No video pipeline is installed here**: the CPU testbed's weights are missing. Name a diffusers "
    "pipeline folder or Hugging Face id (or `tiny-wan` to check the plumbing with random weights) to render "
    "original and erased videos with the same seed."
)
MAX_PIPELINES = 1
"""Pipelines kept in memory at once (a real video pipeline is tens of GB)."""

_LOCK = threading.Lock()
_PIPES: OrderedDict[str, Any] = OrderedDict()
_LOADING: dict[str, threading.Lock] = {}
_CACHE: list[Any] = []


def testbed_available() -> bool:
    """Whether the CPU testbed and its shipped weights are installed (checked without importing torch)."""
    if importlib.util.find_spec("clear_core.testbed") is None:
        return False
    from clear_core.paths import asset

    return asset("testbed", "transformer", "config.json").is_file()


def default_pipeline() -> str:
    """``testbed`` when available, else "" (the visitor names one)."""
    return "testbed" if testbed_available() else ""


def pipeline_choices() -> list[str]:
    """The pipelines the dropdown offers: those an eraser made in the app can drive (on a public
    server, the operator's list: app/public.py). The testbed reads the app's default encoder (MiniLM);
    the ``tiny-*`` pipelines have random encoders of their own, which no eraser searched here fits, so
    they are not offered (typing one still renders, for the plumbing)."""
    from app.public import policy

    if policy().public:
        return [p for p in policy().pipelines if p != "testbed" or testbed_available()]
    return ["testbed"] if testbed_available() else []


def render_settings(name: str, steps: int) -> Any:
    """The preview's RenderSettings for pipeline ``name``: its own defaults, tiny sizes for ``tiny-*``
    (steps checked against clear_core/limits.py there, as on the command line)."""
    from clear_core.generation import RenderSettings
    from clear_core.generation.tiny import TINY_SETTINGS
    from clear_core.validation import check_int

    return RenderSettings(
        steps=check_int(steps, "steps", minimum=1), **TINY_SETTINGS.get(str(name).strip(), {})
    )


def get_pipeline(name: str) -> Any:
    """The loaded pipeline ``name`` (loading it on first use; one loader per name at a time)."""
    from app.public import check_pipeline
    from clear_core.generation import load_pipeline

    if not name or not str(name).strip():
        raise ValueError("choose a pipeline: 'testbed', a diffusers folder or a Hugging Face id")
    name = check_pipeline(name)  # a public server loads only what its operator offers
    with _LOCK:
        if name in _PIPES:
            _PIPES.move_to_end(name)
            return _PIPES[name]
        lock = _LOADING.setdefault(name, threading.Lock())
    with lock:
        with _LOCK:
            if name in _PIPES:
                return _PIPES[name]
        pipe = load_pipeline(name)
        with _LOCK:
            _PIPES[name] = pipe
            while len(_PIPES) > MAX_PIPELINES:
                _PIPES.popitem(last=False)
        return pipe


def preview_cache() -> Any:
    """The process-wide clip cache (created on first use)."""
    from clear_core.generation.preview import PreviewCache

    with _LOCK:
        if not _CACHE:
            _CACHE.append(PreviewCache())
        return _CACHE[0]
