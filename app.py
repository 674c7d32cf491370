"""CLEAR Workbench: ``python app.py`` serves the app (also the entry point of a Hugging Face Space).

Spaces and ``gradio app.py`` (reload mode) look for the module-level ``demo``. Everything else —
the private temporary folder chosen before gradio loads, public mode, preloading the model — is
:mod:`app.__main__` (also ``python -m app``, or ``clear-workbench`` once installed).
"""

from __future__ import annotations

from app.__main__ import TEMP_ROOT, build, serve

__all__ = ["TEMP_ROOT", "demo"]

demo = build()  # module level: Spaces and `gradio app.py` (reload mode) look for `demo`

if __name__ == "__main__":
    serve(demo)
