"""Step 6, Export: download the eraser artifact and the run report; upload an artifact to continue.

The artifact is a zip of the folder :func:`clear_core.workflow.save_run` writes (``eraser.safetensors``,
``eraser.json``, ``history.jsonl``) plus the concept's pairs as ``concept.jsonl``, so that the report's
command line reproduces the run. Uploads go through :meth:`clear_core.erasure.Eraser.load` (safetensors
and JSON only, never pickle) and are checked against the session's model.
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import gradio as gr

from app.common import (
    ProgressFn,
    block_label,
    encoder_for,
    escape_md,
    hide_path,
    require_eraser,
    session_status,
    user_errors,
)
from app.preview_tab import calibration_chart
from app.report import BUNDLE_CONCEPT, BUNDLE_IMPLICIT, build_report, render_html, report_figures
from app.search_tab import GAMMA_MAX
from app.state import Session
from app.uploads import unpack_artifact, unpacked
from clear_core.io import atomic_write_text
from clear_core.limits import MAX_ZIP_BYTES

__all__ = ["MAX_UPLOAD_BYTES", "export_run", "load_eraser", "unpack_upload"]

MAX_UPLOAD_BYTES = MAX_ZIP_BYTES
"""Largest uncompressed artifact accepted off a public server (app/public.py sets a lower one there)."""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "concept"


def export_run(session: Session, progress: ProgressFn = gr.Progress()) -> tuple[list[str], str, Session]:
    """Write the artifact zip, report.json and report.html: (file paths, message, session)."""
    with user_errors():
        from clear_core.workflow import save_run

        eraser = require_eraser(session)
        new, root = session.folder()
        out = root / f"export-{time.strftime('%Y%m%d-%H%M%S')}-{time.perf_counter_ns() % 10**6}"
        folder = out / "eraser"
        progress(0.1, desc="saving the eraser")
        if new.run is not None and new.run.eraser is eraser:
            save_run(new.run, folder)
        else:
            eraser.save(folder)
        settings = new.run_settings if new.run is not None and new.run.eraser is eraser else {}
        if settings.get("pairs"):  # what the run read, for the report's command line
            atomic_write_text(folder / BUNDLE_CONCEPT, settings["pairs"])
            if settings.get("implicit"):
                atomic_write_text(folder / BUNDLE_IMPLICIT, "\n".join(settings["implicit"]) + "\n")
        elif new.concept is not None and new.concept.name == eraser.concept:
            new.concept.save(folder / BUNDLE_CONCEPT)
        archive = out / f"clear-eraser-{_slug(eraser.concept)}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.iterdir()):
                zf.write(path, path.name)
        progress(0.5, desc="writing the report")
        report = build_report(new)
        json_path = out / "report.json"
        atomic_write_text(json_path, json.dumps(report, indent=1, ensure_ascii=False, default=str))
        html_path = out / "report.html"
        atomic_write_text(html_path, render_html(report, report_figures(new)))
    size = archive.stat().st_size / 2**20  # binary megabytes, as the file list below counts them
    message = (
        f"Wrote `{archive.name}` ({size:.1f} MiB: eraser.safetensors, eraser.json"
        f"{', history.jsonl' if (folder / 'history.jsonl').exists() else ''}"
        f"{', concept.jsonl' if (folder / BUNDLE_CONCEPT).exists() else ''}"
        f"{', implicit.txt' if (folder / BUNDLE_IMPLICIT).exists() else ''}), `report.json` and `report.html`."
    )
    return [str(archive), str(json_path), str(html_path)], message, new


def unpack_upload(paths: list[str], dest: Path) -> Path:
    """Put an uploaded artifact (a zip, or eraser.json + eraser.safetensors) into ``dest``, every size
    checked before anything is unpacked (app/uploads.py)."""
    return unpack_artifact(paths, dest)


def load_eraser(files: list[str] | str | None, session: Session) -> tuple[str, Any, float, str, Session]:
    """Continue from an uploaded artifact: (message, calibration plot, γ slider, status, session)."""
    with user_errors():
        from clear_core.erasure import Eraser

        paths = [files] if isinstance(files, str) else list(files or [])
        if not paths:
            raise ValueError(
                "no file uploaded; expected the exported .zip, or eraser.json with eraser.safetensors"
            )
        new, root = session.folder()
        name = ", ".join(Path(p).name for p in paths)
        folder = root / f"upload-{time.perf_counter_ns()}"
        try:
            with unpacked(paths, folder):  # the folder goes again if anything below fails
                eraser = Eraser.load(folder)
                eraser.check_encoder(encoder_for(new))
        except ValueError as err:  # name the user's file, not the server's temp folder
            raise ValueError(hide_path(str(err), folder, f"uploaded {name}")) from None
    new = new.with_eraser(eraser, f"uploaded {name}", None, run=None, run_settings={})
    message = (
        f"Loaded the **{eraser.kind}** eraser for *{escape_md(eraser.concept)}* at "
        f"{block_label(eraser.layer, eraser.layer_name)}, default γ = {eraser.gamma:g}. Preview it in the Erase tab."
    )
    return message, calibration_chart(eraser), min(eraser.gamma, GAMMA_MAX), session_status(new), new
