"""``python -m app`` (or the ``clear-workbench`` command of an installed package): serve the workbench;
``python app.py`` in a checkout runs the same code.

The page is built from ``app/`` without importing torch and the server starts; the embedded default
model then loads in a background thread, started by the first page view (its status timer) or at the
latest :data:`PRELOAD_AFTER_S` seconds after start, so the first screen never waits for it nor
competes with it for the CPU.
Host and port: see :func:`app.launch.launch_options` (``GRADIO_SERVER_PORT`` / ``PORT``; 0.0.0.0 only
on a Space, where ``SPACE_ID`` is set). On 0.0.0.0 the app runs in public mode (app/public.py,
docs/safety.md). Every temporary file of the process (uploads, sessions, clips) lives in one folder
that goes when it exits; folders of earlier processes that died are removed at start (app/tempdirs.py).
"""

from __future__ import annotations

from app.tempdirs import use_private_temp

TEMP_ROOT = use_private_temp()  # before gradio is imported: it reads GRADIO_TEMP_DIR once, at import

import signal  # noqa: E402
import threading  # noqa: E402

from app import models, public  # noqa: E402
from app.launch import DELETE_CACHE, HEAVY_CONCURRENCY, launch_options, server_name  # noqa: E402

public.configure(public.from_environment(server_name=server_name()))  # before the layout reads it

from app.layout import build_demo  # noqa: E402
from app.state import DEFAULT_MODEL  # noqa: E402

__all__ = ["PRELOAD_AFTER_S", "TEMP_ROOT", "build", "main", "serve"]

PRELOAD_AFTER_S = 5.0
"""Seconds after start at which the default model loads even if nobody has opened the page yet."""


def build():
    """The page, with the cache clean-up of this process."""
    demo = build_demo()
    demo.delete_cache = DELETE_CACHE
    return demo


def serve(demo) -> None:
    """Queue, launch and block on ``demo``, preloading the default model; SIGTERM stops it like Ctrl-C
    (so the temporary folder goes)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    demo.queue(default_concurrency_limit=max(2, HEAVY_CONCURRENCY))
    demo.launch(prevent_thread_lock=True, **launch_options())
    timer = threading.Timer(PRELOAD_AFTER_S, models.ensure_loading, args=(DEFAULT_MODEL,))
    timer.daemon = True
    timer.start()
    demo.block_thread()


def main() -> None:
    serve(build())


if __name__ == "__main__":
    main()
