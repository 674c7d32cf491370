"""The one cached text-encoder loader every visitor shares (the app's only module-level mutable state).

Loading a model is slow (MiniLM ~5 s on 2 cores, a T5-XXL minutes), so each model is loaded once per
process and kept, keyed by its name; at most :data:`MAX_MODELS` stay in memory (least recently used
first out). Loaded models are never modified: erasers reach them through context-local hooks
(clear_core/hooks.py), so concurrent visitors share one model without seeing each other's edits.

``torch``/``transformers`` are imported inside the functions so that importing the app (and the first
page render of ``python app.py``) does not wait for them; :func:`preload` warms the default model in a
background thread after the server is up.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clear_core.encoders import TextEncoder

__all__ = ["MAX_MODELS", "clean_name", "ensure_loading", "get_encoder", "is_loaded", "load_error", "preload"]

MAX_MODELS = 2
"""Models kept in memory at once (a T5-XXL is ~10 GB in bfloat16)."""

_LOCK = threading.Lock()  # guards the three dicts below
_CACHE: OrderedDict[str, TextEncoder] = OrderedDict()
_LOADING: dict[str, threading.Lock] = {}  # one lock per name: a second caller waits for the first load
_ERRORS: dict[str, str] = {}  # last load failure per name (for the status line)
_PRELOADS: dict[str, threading.Thread] = {}  # background loads started by preload()


def clean_name(name: str | None) -> str:
    """The cache key of a model name; ValueError (the library's wording) when empty, and on a public
    server unless the operator offers it (app/public.py: no visitor's path is ever looked up)."""
    if name is None or not str(name).strip():
        raise ValueError("no model given; use 'minilm', a Hugging Face id or a local folder")
    from app.public import check_model

    return check_model(name)


def is_loaded(name: str) -> bool:
    """True when ``name`` is in memory (a call to :func:`get_encoder` returns at once)."""
    with _LOCK:
        return name in _CACHE


def load_error(name: str) -> str | None:
    """The message of the last failed load of ``name``, if any."""
    with _LOCK:
        return _ERRORS.get(name)


def get_encoder(name: str) -> TextEncoder:
    """The loaded encoder for ``name`` (loading it on first use); ValueError if it cannot be loaded."""
    name = clean_name(name)
    with _LOCK:
        if name in _CACHE:
            _CACHE.move_to_end(name)
            return _CACHE[name]
        lock = _LOADING.setdefault(name, threading.Lock())
    with lock:  # only one thread loads a given model; the others wait and then read the cache
        with _LOCK:
            if name in _CACHE:
                return _CACHE[name]
        from clear_core.encoders import load_encoder

        try:
            encoder = load_encoder(name)
        except ValueError as err:
            with _LOCK:
                _ERRORS[name] = str(err)
            raise
        with _LOCK:
            _ERRORS.pop(name, None)
            _CACHE[name] = encoder
            while len(_CACHE) > MAX_MODELS:
                _CACHE.popitem(last=False)
        return encoder


def preload(name: str) -> threading.Thread:
    """Load ``name`` in a daemon thread (errors are kept for :func:`load_error`, not raised)."""

    def work() -> None:
        with contextlib.suppress(ValueError):  # recorded in _ERRORS; the status line shows it
            get_encoder(name)

    thread = threading.Thread(target=work, name=f"preload-{name}", daemon=True)
    with _LOCK:
        _PRELOADS[name] = thread
    thread.start()
    return thread


def ensure_loading(name: str) -> None:
    """Start a background load of ``name`` unless it is loaded, failed, or already loading."""
    with _LOCK:
        busy = name in _CACHE or name in _ERRORS or (name in _PRELOADS and _PRELOADS[name].is_alive())
    if not busy:
        preload(name)
