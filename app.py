"""CLEAR Workbench: ``python app.py`` serves the app (also the entry point of a Hugging Face Space).

The page is built from ``app/`` without importing torch and the server starts; the embedded default
model then loads in a background thread, started by the first page view (its status timer) or at the
latest :data:`PRELOAD_AFTER_S` seconds after start, so the first screen never waits for it nor
competes with it for the CPU.
Host and port: see :func:`app.launch.launch_options` (``GRADIO_SERVER_PORT`` / ``PORT``; 0.0.0.0 only
on a Space, where ``SPACE_ID`` is set).
"""

from __future__ import annotations

import threading

from app import models
from app.launch import HEAVY_CONCURRENCY, launch_options
from app.layout import build_demo
from app.state import DEFAULT_MODEL

PRELOAD_AFTER_S = 5.0
"""Seconds after start at which the default model loads even if nobody has opened the page yet."""

demo = build_demo()  # module level: Spaces and `gradio app.py` (reload mode) look for `demo`


def main() -> None:
    demo.queue(default_concurrency_limit=max(2, HEAVY_CONCURRENCY))
    demo.launch(prevent_thread_lock=True, **launch_options())
    timer = threading.Timer(PRELOAD_AFTER_S, models.ensure_loading, args=(DEFAULT_MODEL,))
    timer.daemon = True
    timer.start()
    demo.block_thread()


if __name__ == "__main__":
    main()
