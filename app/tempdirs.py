"""One temporary folder per app process: uploads, session folders and the clip cache live inside it.

:func:`use_private_temp` runs first thing in ``app.py`` (before gradio is imported, which reads
``GRADIO_TEMP_DIR`` at import): it makes ``<tmp>/clear-app-<pid>-XXXX``, points Python's ``tempfile``
and Gradio's upload cache at it, and removes it when the process exits. On start-up it also removes
the folders of app processes that no longer run (killed, or a crashed Space), so the disk does not
fill over restarts. Within a run, session folders go when the session ends (``gr.State``'s delete
callback, app/state.py), a failed upload's folder at once (app/uploads.py), Gradio's cached files
after an hour (``delete_cache``, app/launch.py).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["PREFIX", "remove_stale", "use_private_temp"]

PREFIX = "clear-app-"
LEGACY = ("clear-workbench-", "clear-preview-")
"""Folders earlier versions made directly in the system temp folder (removed once a day old)."""
LEGACY_AGE_S = 24 * 3600
_ROOT = re.compile(rf"^{PREFIX}(\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(base: str | Path) -> list[Path]:
    """Remove the temporary roots under ``base`` of app processes that no longer run (and legacy
    per-session folders older than a day); returns what was removed."""
    base, removed, now = Path(base), [], time.time()
    for entry in base.iterdir() if base.is_dir() else ():
        m = _ROOT.match(entry.name)
        stale = (m is not None and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1)))) or (
            entry.name.startswith(LEGACY) and now - entry.stat().st_mtime > LEGACY_AGE_S
        )
        if stale and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def use_private_temp(base: str | Path | None = None) -> Path:
    """Make this process's temporary root and send every temporary file there (module docstring).

    An operator's own ``GRADIO_TEMP_DIR`` is kept (Gradio's ``delete_cache`` cleans it).
    """
    base = Path(base or tempfile.gettempdir())
    remove_stale(base)
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
    os.environ.setdefault("GRADIO_TEMP_DIR", str(root / "gradio"))
    tempfile.tempdir = str(root)
    atexit.register(shutil.rmtree, root, True)
    return root
