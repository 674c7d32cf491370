"""How the workbench is served: theme, CSS, host and port (shared by app.py and the tests).

Locally it listens on 127.0.0.1 only; on a Hugging Face Space (``SPACE_ID`` is set) on 0.0.0.0, as a
Space's proxy requires. The port comes from ``GRADIO_SERVER_PORT``, then ``PORT``, else 7860.
Listening on 0.0.0.0 turns public mode on unless ``CLEAR_PUBLIC=0`` (app/public.py); uploads are
capped by the policy's size, and Gradio's cached files are deleted after :data:`DELETE_CACHE`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import gradio as gr

__all__ = [
    "CSS",
    "DEFAULT_PORT",
    "DELETE_CACHE",
    "HEAVY_CONCURRENCY",
    "launch_options",
    "server_name",
    "theme",
]

DEFAULT_PORT = 7860
HEAVY_CONCURRENCY = 1
"""Searches / layer maps run at once per process (each one uses every core of a small machine)."""
DELETE_CACHE = (600, 3600)
"""``gr.Blocks.delete_cache``: every 10 minutes, Gradio's uploaded and served files older than an hour go
(and all of them when the server stops)."""

CSS = """
#clear-title h1 {margin-bottom: 0.1em}
#session-status {font-size: 0.92em; padding: 0.4em 0.8em; border-radius: 6px;
  background: var(--block-background-fill); border: 1px solid var(--border-color-primary)}
.step-intro {color: var(--body-text-color-subdued)}
"""


def theme() -> gr.themes.Base:
    """Gradio's default theme in indigo, with the visitor's own system fonts (nothing to download; the
    bundled web font's bold weight rendered with mixed glyphs in headless Chromium)."""
    return gr.themes.Default(
        primary_hue="indigo",
        secondary_hue="slate",
        font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


def server_name(environ: Mapping[str, str] | None = None) -> str:
    """0.0.0.0 on a Hugging Face Space (``SPACE_ID`` set), else 127.0.0.1."""
    env = os.environ if environ is None else environ
    return "0.0.0.0" if env.get("SPACE_ID") else "127.0.0.1"


def launch_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``demo.launch`` (host, port, theme, CSS, error display, upload size)."""
    from app.public import from_environment

    env = os.environ if environ is None else environ
    raw = env.get("GRADIO_SERVER_PORT") or env.get("PORT") or str(DEFAULT_PORT)
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"GRADIO_SERVER_PORT/PORT must be a port number, got {raw!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"GRADIO_SERVER_PORT/PORT must be in 1..65535, got {port}")
    host = server_name(env)
    return {
        "server_name": host,
        "server_port": port,
        "max_file_size": from_environment(env, host).max_upload_bytes,
        "theme": theme(),
        "css": CSS,
        "show_error": True,
        "footer_links": ["api"],
    }
